/** Pure helpers of the VM window's Hardware tab (renderer/views/hardware-view.tsx). */
import type { DriveInfo } from '../../main/common/contract/disks';
import { parseSize } from '../../main/common/models/vm-config';
import type { ActionConfirmation } from './vm-actions';

/** Why Add and Remove are greyed out while the VM runs (the CLI says the same in its words). */
export const RUNNING_NOTE = 'Shut the VM down to add or remove drives. Growing a disk and changing CDs work while it runs.';

const MIB = 1024 * 1024;

/**
 * A drive size as typed in the Hardware tab, in bytes: a bare number is GiB, as in the New VM
 * wizard's disk size ("1.5" → 1.5 GiB, rounded to whole MiB); else a size with a unit as
 * main/common/models/vm-config.ts parseSize reads it ("512M", "1.5G", "2T"). Null when it is
 * neither (empty, "abc", "-5"). Limits (at least 1 MiB, at most 64 TiB) are the engine's to say.
 */
export function driveSizeBytes(text: string): number | null {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1024) * MIB;
  return parseSize(t);
}

/**
 * The question before Remove in the Hardware tab: what happens to the drive's file, and what the VM
 * loses. `vmDir`: the VM's folder (VmInfo.path) — only a file in it is ever deleted (the engine's
 * rule, disks.remove). A CD drive only loses the drive (its ISO is never touched).
 */
export function removeConfirmation(drive: Pick<DriveInfo, 'id' | 'kind' | 'path' | 'role'>, deleteFile: boolean, vmName: string, vmDir: string): ActionConfirmation {
  if (drive.kind === 'cdrom') {
    return { title: `Remove the CD drive ${drive.id}?`, text: `"${vmName}" will have one CD drive fewer.${drive.path ? ` The ISO file stays where it is (${drive.path}).` : ''}`, confirmLabel: 'Remove drive' };
  }
  const inFolder = drive.path !== null && drive.path.startsWith(vmDir.endsWith('/') ? vmDir : `${vmDir}/`);
  const file =
    deleteFile && inFolder
      ? `Its file ${drive.path} is deleted: everything on this disk is lost.`
      : `Its file stays where it is${drive.path ? ` (${drive.path})` : ''}${deleteFile ? ' (it is outside the VM\'s folder, so it is never deleted)' : ''}; you can add it again later.`;
  const system = drive.role === 'system' ? ` It is the system disk: "${vmName}" will not boot from a disk until you add one.` : '';
  return { title: `Remove the disk ${drive.id}?`, text: `${file}${system}`, confirmLabel: deleteFile && inFolder ? 'Remove and delete' : 'Remove disk' };
}
