/**
 * Deleting a VM's bundle — never under a live QEMU: the start lock is held while the bundle goes (so
 * no start from another process slips in), and the run state is read under it, with QEMUs found by
 * process identity too (a VM whose runtime folder was removed still counts as running).
 */
import * as fsp from 'node:fs/promises';
import { errors } from '../../common/errors';
import type { BundleEntry } from '../bundles/bundle-store';
import { deleteBlockedBy, usesOfFilesIn } from '../disks/image-users';
import { scanQemuProcesses } from '../runtime/records';
import type { RunStates } from '../runtime/run-state';
import { acquireStartLockAsync } from '../runtime/start-lock';
import type { Library } from './library';
import { nameOf } from './resolve';

export interface DeleteDeps {
  readonly library: Library;
  readonly runStates: RunStates;
}

/** Removes the VM; returns where kept disks went. @throws invalid-state when it runs, busy when being started */
export async function deleteVm(deps: DeleteDeps, entry: BundleEntry, options: { readonly keepDisks?: boolean }): Promise<readonly string[]> {
  const layout = deps.library.layout;
  const name = nameOf(entry) ?? entry.id;
  const rt = layout.runtime(entry.id);
  layout.ensureRuntimeDir(rt.dir);
  const live = await scanQemuProcesses();
  const release = await acquireStartLockAsync(rt, name);
  let kept: string[];
  try {
    const rs = deps.runStates.getLocked({ id: entry.id, name }, live);
    if (rs.state !== 'stopped') {
      throw errors.mustStop(name, rs.state, 'delete it');
    }
    // Another VM using a file from this folder (a linked clone's base, a disk by path) keeps it here.
    const others = deps.library.entries().flatMap((e) => (e.ok && e.id !== entry.id ? [{ config: e.config, dir: e.dir }] : []));
    const blocked = deleteBlockedBy(name, usesOfFilesIn(entry.id, entry.dir, others));
    if (blocked) throw errors.state(blocked);
    kept = deps.library.store.remove(entry, options.keepDisks ?? false);
  } finally {
    await release();
  }
  await fsp.rm(rt.dir, { recursive: true, force: true });
  return kept;
}
