/**
 * Editing a stopped VM's settings. The rules are main/common/models/vm-settings.ts (`applyEdit`); this
 * adds the file checks, creates a UEFI variable store for a VM switched to UEFI, and saves atomically.
 */
import type { EditVmSpec } from '../../common/contract';
import { ErrorCode, VivariumError } from '../../common/errors';
import type { HostCapabilities } from '../../common/models/host';
import type { VmConfig } from '../../common/models/vm-config';
import { applyEdit, firmwarePackages, unwrapSettings, type SettingIssue } from '../../common/models/vm-settings';
import { checkCdImage } from '../disks/preflight';
import { QemuImg } from '../disks/qemu-img';
import { hostFacts } from '../host-defaults';
import { BundleFile } from '../paths';
import { buildQemuArgs, uefiFirmwareFor } from '../qemu/argv';
import { assertReadableFile, libraryNames, makeUefiVars } from './checks';
import type { Library, OkEntry } from './library';

export interface EditDeps {
  readonly library: Library;
  readonly host: () => Promise<HostCapabilities>;
}

export interface Edited {
  readonly config: VmConfig;
  /** Settings that work but are unwise (more vCPUs than host cores, an accelerator auto would not pick). */
  readonly warnings: readonly SettingIssue[];
}

/** Applies `patch` to a stopped VM (the caller checks it is stopped) and returns the saved config. */
export async function editVm(deps: EditDeps, entry: OkEntry, patch: EditVmSpec): Promise<Edited> {
  const { library } = deps;
  const layout = library.layout;
  const c = entry.config;
  for (const [field, what, p] of [
    ['iso', 'ISO', patch.iso],
    ['kernel', 'Kernel', patch.kernel],
    ['initrd', 'Initrd', patch.initrd],
  ] as const) {
    if (typeof p === 'string') await assertReadableFile(field, what, p);
  }
  if (typeof patch.iso === 'string') await checkCdImage(patch.iso);
  const caps = await deps.host();
  const { config: next, warnings } = unwrapSettings(applyEdit(c, patch, hostFacts(caps), { files: { uefiVars: BundleFile.uefiVars }, library: libraryNames(library) }));
  buildQemuArgs(next, caps, layout.paths(c.id));
  // A new store for a VM switched to UEFI, or to/from Secure Boot (its variables come from the other
  // build's template: enrolled keys or none); the old store's settings do not carry over.
  if (next.uefiVars !== null && (c.uefiVars === null || next.secureBoot !== c.secureBoot)) {
    const uefi = uefiFirmwareFor(next, caps);
    if (!uefi) {
      throw new VivariumError(ErrorCode.Unsupported, `No UEFI firmware for ${c.arch} guests was found on this host.`, undefined, {
        field: 'firmware',
        remedy: { kind: 'install', what: `UEFI firmware for ${c.arch} guests`, packages: firmwarePackages(c.arch) },
      });
    }
    await makeUefiVars(new QemuImg(caps.qemuImg), uefi.varsTemplate, uefi.varsFormat, layout.bundle(c.id).file(next.uefiVars));
  }
  await library.store.saveAsync(next);
  return { config: next, warnings };
}
