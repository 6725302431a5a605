/**
 * Creating a VM: a new bundle from a CreateVmSpec. The settings rules and defaults are
 * main/common/models/vm-settings.ts (`newConfig`); this adds what needs the file system (the files a
 * person names must be readable, an existing disk image must be standalone qcow2 or raw), then writes
 * the bundle whole or not at all (BundleStore.create stages it).
 */
import { randomUUID } from 'node:crypto';
import type { CreateVmSpec } from '../../common/contract';
import { ErrorCode } from '../../common/errors';
import type { HostCapabilities } from '../../common/models/host';
import type { LaunchPlan } from '../qemu/launch-plan';
import type { DiskFormat, VmConfig } from '../../common/models/vm-config';
import { hostDefaults, newConfig, unwrapSettings, type SettingIssue } from '../../common/models/vm-settings';
import { applyPresetToSpec } from '../../common/models/presets';
import { checkCdImage, checkDiskImage } from '../disks/preflight';
import { foreignDiskRefusal, sharedBaseRefusal } from '../disks/foreign-files';
import { QemuImg } from '../disks/qemu-img';
import { hostFacts } from '../host-defaults';
import { BundleFile } from '../paths';
import { buildQemuArgs, uefiFirmwareFor } from '../qemu/argv';
import type { PreparedImport } from '../imports/create-import';
import type { PreparedCloud } from '../sandbox/cloud-create';
import { assertReadableFile, libraryNames, makeUefiVars, randomMac } from './checks';
import type { Library } from './library';

export interface CreateDeps {
  readonly library: Library;
  readonly host: () => Promise<HostCapabilities>;
}

export interface Created {
  readonly config: VmConfig;
  /** Settings that work but are unwise (more vCPUs than host cores). */
  readonly warnings: readonly SettingIssue[];
}

/**
 * Creates the VM's bundle.
 * @throws VivariumError with field and remedy: invalid-argument, already-exists, qemu-missing, unsupported
 */
export async function createVm(deps: CreateDeps, spec: CreateVmSpec): Promise<Created> {
  const { library } = deps;
  const { config, warnings, caps, cloud, imported, spec: effective } = await planCreate(deps, spec);
  const uefi = config.uefiVars !== null ? uefiFirmwareFor(config, caps) : undefined;
  const qemuImg = new QemuImg(caps.qemuImg);
  const size = effective.diskSizeBytes ?? 20 * 1024 ** 3;
  await library.store.create(config, async (dir) => {
    if (cloud) await cloud.materialize(dir, config);
    else if (imported?.copies) await imported.materialize(dir, config);
    else for (const d of config.disks) {
      if ('bundle' in d.source) await qemuImg.createQcow2(`${dir}/${d.source.bundle}`, size);
    }
    if (uefi && config.uefiVars !== null) await makeUefiVars(qemuImg, uefi.varsTemplate, uefi.varsFormat, `${dir}/${config.uefiVars}`);
  });
  return { config, warnings };
}

/** A create worked out but not written: the config, its warnings, and the QEMU launch plan it would
 *  start with on this host. */
export interface CreatePlan extends Created {
  readonly caps: HostCapabilities;
  readonly plan: LaunchPlan;
  readonly cloud: PreparedCloud | null;
  readonly imported: PreparedImport | null;
  /** The spec as created: an OS preset's hardware filled in (models/presets.ts). */
  readonly spec: CreateVmSpec;
}

/**
 * Everything a create checks and decides, without writing anything (the `vms.preview` dry run and
 * `createVm` share it): files named are readable and of the right kind, an import or cloud image is
 * inspected, the settings rules applied, and the command line built for this host.
 * @throws the same VivariumErrors as createVm
 */
export async function planCreate(deps: CreateDeps, spec: CreateVmSpec): Promise<CreatePlan> {
  const { library } = deps;
  const layout = library.layout;
  const caps = await deps.host();
  for (const [field, what, p] of [
    ['iso', 'ISO', spec.iso],
    ['kernel', 'Kernel', spec.kernel],
    ['initrd', 'Initrd', spec.initrd],
    ['diskPath', 'Disk', spec.diskPath],
  ] as const) {
    if (p !== undefined) await assertReadableFile(field, what, p);
  }
  // A disk used in place must not be another VM's file (its folder, a base its disks stand on):
  // disks/foreign-files.ts. Before the image checks, whose advice would be about the wrong thing.
  const assertNotForeign = async (file: string, field: 'diskPath' | 'import') => {
    const refusal = await foreignDiskRefusal(file, field, layout.bundlesDir, await library.entriesAsync());
    if (refusal) throw refusal;
  };
  if (spec.diskPath !== undefined) await assertNotForeign(spec.diskPath, 'diskPath');
  // The CD must really be a CD image (not /etc/passwd, not a qcow2): disks/preflight.ts.
  if (spec.iso !== undefined) await checkCdImage(spec.iso);
  // An existing image must really be a disk image (not /etc/passwd, not an ISO): disks/preflight.ts.
  const diskPathFormat: DiskFormat | undefined = spec.diskPath !== undefined ? (await checkDiskImage(spec.diskPath, new QemuImg(caps.qemuImg))).format : undefined;
  // --import: the image's disks and the appliance's settings (main/services/imports/create-import.ts).
  // Both are loaded on use: their parsers (XML, YAML, SSH keys) are start-up time every other
  // command would pay (issue 7).
  const imported = spec.import ? await (await import('../imports/create-import.js')).prepareImport(spec, caps.qemuImg ?? 'qemu-img') : null;
  // --cloud-image: an overlay on the image, a cloud-init seed (main/services/sandbox/cloud-create.ts).
  // The cloud image becomes a read-only base: no VM may be writing it (disks/foreign-files.ts).
  if (spec.cloud) {
    const refusal = await sharedBaseRefusal(spec.cloud.image, 'cloudImage', await library.entriesAsync());
    if (refusal) throw refusal;
  }
  const cloud = spec.cloud ? await (await import('../sandbox/cloud-create.js')).prepareCloud(spec, caps.qemuImg) : null;
  // --preset: the OS's hardware where the spec (or the import/cloud image) leaves it open.
  const base = cloud?.spec ?? imported?.spec ?? spec;
  const preset = applyPresetToSpec(base, hostDefaults(hostFacts(caps), base.arch));
  const { config: made, warnings: settingWarnings } = unwrapSettings(
    newConfig(preset.spec, hostFacts(caps), {
      id: randomUUID(),
      createdAt: new Date().toISOString(),
      mac: randomMac(),
      files: { uefiVars: BundleFile.uefiVars },
      diskPathFormat: imported?.diskPathFormat ?? diskPathFormat,
      library: libraryNames(library),
    }),
  );
  const warnings: SettingIssue[] = [
    ...preset.notes.map((note): SettingIssue => ({ code: ErrorCode.InvalidArgument, field: 'os', message: note.replace(/\.$/, ''), remedy: { kind: 'change-setting', field: 'os' } })),
    ...settingWarnings,
  ];
  const config = cloud ? cloud.complete(made, layout.bundle(made.id).dir) : imported ? imported.complete(made) : made;
  // An image attached in place by an import must not be another VM's file either (see above).
  if (imported) for (const disk of config.disks) if (!disk.readOnly && 'path' in disk.source) await assertNotForeign(disk.source.path, 'import');
  // Fail before writing anything if this host can't build a command line for it.
  const plan = buildQemuArgs(config, caps, layout.paths(config.id));
  return { config, warnings, caps, plan, cloud, imported, spec: preset.spec };
}
