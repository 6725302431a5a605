/**
 * The per-VM UEFI variable store (efivars.qcow2) is state Vivarium generated from the firmware's
 * template, so when it is missing or cannot be used it is rebuilt at start instead of leaving the
 * person with a raw QEMU error that no setting can fix. The rebuilt store holds the template's
 * defaults: boot entries and other UEFI settings the guest saved are gone, so the caller shows the
 * returned notice.
 */
import * as fs from 'node:fs';
import { errors } from '../../common/errors';
import type { UefiFirmware } from '../../common/models/host';
import type { VmConfig } from '../../common/models/vm-config';
import type { VmBundlePaths } from '../paths';
import type { QemuImg } from './qemu-img';

/** Why the store was rebuilt, for the notice. */
export type UefiVarsFault = 'missing' | 'unreadable' | 'damaged' | 'link';

export interface UefiVarsNotice {
  readonly fault: UefiVarsFault;
  /** Where the old file was moved (kept for a person who wants it back), or null when there was none. */
  readonly keptAs: string | null;
  /** A sentence for the person (logged to the VM's event log and shown by the front end). */
  readonly message: string;
}

/** Writes a fresh qcow2 copy of the firmware's variable template (qcow2, so internal snapshots
 *  include it: qemu-notes §2). Written under a temporary name and renamed into place. */
export async function makeUefiVars(qemuImg: QemuImg, fw: Pick<UefiFirmware, 'varsTemplate' | 'varsFormat'>, dest: string): Promise<void> {
  const tmp = `${dest}.${process.pid}.new`;
  try {
    await qemuImg.convert(fw.varsTemplate, fw.varsFormat, tmp, 'qcow2');
    await fs.promises.rename(tmp, dest);
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}

async function fault(file: string, qemuImg: QemuImg): Promise<UefiVarsFault | null> {
  // A link planted in the VM folder is never handed to QEMU (it would write the target): it is
  // moved aside like a damaged store (rename moves the link, not its target).
  if ((await fs.promises.lstat(file).catch(() => null))?.isSymbolicLink()) return 'link';
  try {
    await fs.promises.access(file, fs.constants.F_OK);
  } catch {
    return 'missing';
  }
  try {
    await fs.promises.access(file, fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return 'unreadable';
  }
  const r = await qemuImg.tryInfo(file, { format: 'qcow2' });
  if (!r.ok || r.info.corrupt || r.info.backingFilename !== null) return 'damaged';
  return null;
}

const WHY: Readonly<Record<UefiVarsFault, string>> = {
  missing: 'was missing',
  unreadable: 'could not be read and written',
  damaged: 'was damaged',
  link: 'was a symbolic link (Vivarium does not follow links in a VM folder)',
};

/**
 * For a UEFI VM: checks its variable store and rebuilds it from `fw`'s template when it is missing,
 * not readable and writable, or not a sound standalone qcow2. A store that exists is first moved
 * aside to `<name>.broken-<time>` (never deleted). Returns a notice when it rebuilt, null when the
 * store was fine or the VM does not boot with UEFI. Throws invalid-state when the old store cannot
 * be moved aside (an immutable file, a read-only folder), qemu-failed when qemu-img cannot write the
 * new one.
 */
export async function ensureUefiVars(
  config: VmConfig,
  bundle: Pick<VmBundlePaths, 'file'>,
  fw: Pick<UefiFirmware, 'varsTemplate' | 'varsFormat'> | undefined,
  qemuImg: QemuImg,
  now: Date = new Date(),
): Promise<UefiVarsNotice | null> {
  if (config.firmware !== 'uefi' || !config.uefiVars || !fw) return null;
  const file = bundle.file(config.uefiVars);
  const found = await fault(file, qemuImg);
  if (found === null) return null;
  let keptAs: string | null = null;
  if (found !== 'missing') {
    keptAs = `${file}.broken-${now.toISOString().replace(/[:.]/g, '-')}`;
    try {
      await fs.promises.rename(file, keptAs);
    } catch (e) {
      throw errors.state(
        `The UEFI settings store of "${config.name}" (${file}) ${WHY[found]}, and Vivarium cannot move it aside to make a new one (${(e as NodeJS.ErrnoException).code ?? 'error'}). Fix the permissions of the file and its folder (or delete the file to reset the VM's UEFI settings), then start the VM again.`,
      );
    }
  }
  await makeUefiVars(qemuImg, fw, file);
  const kept = keptAs ? ` The old file was kept as ${keptAs}.` : '';
  return {
    fault: found,
    keptAs,
    message: `The UEFI settings store of "${config.name}" ${WHY[found]}, so Vivarium made a new one from the firmware's defaults: the VM's UEFI settings (boot entries, boot order) were reset.${kept}`,
  };
}
