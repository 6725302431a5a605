/**
 * The start lock: `start.lock` in a VM's runtime folder, created atomically and holding the owner's
 * pid, so two concurrent starts (two CLIs, a CLI and the app) can never both launch QEMU. Deletes and
 * exit reconciliation hold it too, so neither runs under a start. A lock whose owner died is stale and
 * taken over.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { errors } from '../../common/errors';
import type { VmRuntimePaths } from '../paths';
import { pidAlive, safeRead, safeReadAsync } from './records';

/**
 * Takes the start lock of a VM (`name` is for messages). Returns the release function.
 * Blocking: for RunStates.get's synchronous reconciliation (run-state.ts), a few small files in the
 * runtime folder; everything else takes acquireStartLockAsync.
 * @throws VivariumError busy — another live process (or this one) holds it.
 */
export function acquireStartLock(rt: VmRuntimePaths, name: string): () => void {
  /* eslint-disable no-restricted-syntax -- the synchronous lock RunStates.get needs (see above) */
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written whole under a temporary name, then hard-linked into place (atomic, fails if it exists):
    // a reader never sees an empty lock and takes it for a stale one.
    const tmp = `${rt.startLock}.${process.pid}.${randomBytes(4).toString('hex')}`;
    fs.writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
    try {
      fs.linkSync(tmp, rt.startLock);
      return () => fs.rmSync(rt.startLock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = lockOwner(rt);
      if (owner !== null && owner !== process.pid && pidAlive(owner)) {
        throw errors.busy(`"${name}" is being ${lockDoing(safeRead(rt.startLock))} by another Vivarium process (pid ${owner}). Wait for it to finish.`);
      }
      if (owner === process.pid) {
        throw errors.busy(`"${name}" is already being started. Wait for it to finish.`);
      }
      fs.rmSync(rt.startLock, { force: true });
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  /* eslint-enable no-restricted-syntax */
  throw errors.busy(`Could not lock "${name}" for starting. Try again.`);
}

/** acquireStartLock without blocking the event loop; the release function is async too. */
export async function acquireStartLockAsync(rt: VmRuntimePaths, name: string, doing: LockDoing = 'started'): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const tmp = `${rt.startLock}.${process.pid}.${randomBytes(4).toString('hex')}`;
    // The pid, then what the holder does with the VM (said to whoever finds it locked).
    await fsp.writeFile(tmp, doing === 'started' ? `${process.pid}\n` : `${process.pid}\n${doing}\n`, { mode: 0o600 });
    try {
      await fsp.link(tmp, rt.startLock);
      return () => fsp.rm(rt.startLock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = parseOwner(await safeReadAsync(rt.startLock));
      if (owner !== null && owner !== process.pid && pidAlive(owner)) {
        throw errors.busy(`"${name}" is being ${lockDoing(await safeReadAsync(rt.startLock))} by another Vivarium process (pid ${owner}). Wait for it to finish.`);
      }
      if (owner === process.pid) throw errors.busy(`"${name}" is already being started. Wait for it to finish.`);
      await fsp.rm(rt.startLock, { force: true });
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }
  throw errors.busy(`Could not lock "${name}" for starting. Try again.`);
}

/** What a holder of the start lock does with the VM, as in "is being cloned". */
export type LockDoing = 'started' | 'cloned' | 'exported' | 'snapshotted' | 'reverted' | 'changed';

/** The second line of a lock file (what its holder does), "started" when absent or unknown. */
function lockDoing(text: string): LockDoing {
  const d = text.split('\n')[1]?.trim();
  return d === 'cloned' || d === 'exported' || d === 'snapshotted' || d === 'reverted' || d === 'changed' ? d : 'started';
}

function parseOwner(text: string): number | null {
  const owner = Number.parseInt(text, 10);
  return Number.isInteger(owner) && owner > 0 ? owner : null;
}

/** Whether a live process holds the VM's start lock. */
export function startLockHeld(rt: VmRuntimePaths): boolean {
  const owner = lockOwner(rt);
  return owner !== null && pidAlive(owner);
}

/** startLockHeld without blocking the event loop. */
export async function startLockHeldAsync(rt: VmRuntimePaths): Promise<boolean> {
  const owner = parseOwner(await safeReadAsync(rt.startLock));
  return owner !== null && pidAlive(owner);
}

function lockOwner(rt: VmRuntimePaths): number | null {
  const owner = Number.parseInt(safeRead(rt.startLock), 10);
  return Number.isInteger(owner) && owner > 0 ? owner : null;
}
