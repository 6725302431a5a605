/**
 * Progress of running imports, for whoever shows it: the media service re-exposes it as
 * `media.onDidImportProgress` (the New VM wizard's progress bar, `create --import` on stderr).
 * One emitter per process: an import runs inside `vms.create`, which knows nothing of front ends.
 */
import type { ImportProgress } from '../../common/contract/media';
import { Emitter } from '../emitter';

export const importProgress = new Emitter<ImportProgress>();

/** A reporter for one import of `path` that fires at most every 250 ms (and always at the end). */
export function importReporter(path: string): (p: { readonly fraction: number; readonly disk: number; readonly disks: number }) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (p.fraction < 1 && now - last < 250) return;
    last = now;
    importProgress.fire({ path, fraction: p.fraction, disk: p.disk, disks: p.disks });
  };
}
