/** Pure helpers of the VM window's Hardware tab (renderer/views/hardware-view.tsx). */
import { parseSize } from '../../main/common/models/vm-config';

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
