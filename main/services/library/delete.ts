/**
 * Deleting a VM's bundle — never under a live QEMU: the start lock is held while the bundle goes (so
 * no start from another process slips in), and the run state is read under it, with QEMUs found by
 * process identity too (a VM whose runtime folder was removed still counts as running).
 *
 * A VM whose folder holds the base of linked clones (issue 10) is refused, unless the caller asks
 * to flatten them (`flattenClones`): each such clone, shut down and held by its own start lock, gets
 * every disk that reads a file from the folder copied into one standalone qcow2 of its own
 * (`qemu-img convert` of the whole chain, qemu-notes §5 "Linked clones"), its config switched to it,
 * and only then is the VM deleted. A clone is switched over whole or not at all: the new image is
 * written under a new name, the config (written atomically) names it, then the old overlay goes.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errors } from '../../common/errors';
import type { HostCapabilities } from '../../common/models/host';
import { diskImages, type Disk, type ImageSource, type VmConfig } from '../../common/models/vm-config';
import type { BundleEntry } from '../bundles/bundle-store';
import { deleteBlockedBy, usesOfFilesIn, type ImageUse } from '../disks/image-users';
import { scanQemuProcesses } from '../runtime/records';
import type { RunStates } from '../runtime/run-state';
import { acquireStartLockAsync } from '../runtime/start-lock';
import { copyStandalone, hasSnapshots, imageSnapshotCount } from './clone';
import type { Library, OkEntry } from './library';
import { nameOf } from './resolve';

export interface DeleteDeps {
  readonly library: Library;
  readonly runStates: RunStates;
  /** The host probe (qemu-img), needed only to flatten linked clones. */
  readonly host?: () => Promise<HostCapabilities>;
  /** A VM's event log (vivarium.log), for what flattening did to a clone. */
  readonly events?: { append(vmId: string, line: string): void };
}

export interface DeleteOptions {
  readonly keepDisks?: boolean;
  /** Give linked clones standing on this VM's disks images of their own first (else refused). */
  readonly flattenClones?: boolean;
}

/** What a delete did: where kept disks went, which linked clones were flattened (their names). */
export interface DeleteResult {
  readonly kept: readonly string[];
  readonly flattened: readonly string[];
}

/** Data of the refusal when linked clones stand on the VM: the front ends offer `flattenClones`. */
export interface LinkedClonesData {
  readonly linkedClones: readonly string[];
}

/** Whether a use is a linked clone's (or any VM's disk's) — what flattening can take away. CDs,
 *  kernels and initrds pointed at by path stay refusals. */
const isDiskUse = (u: ImageUse) => u.as.startsWith('its disk ') || u.as.startsWith('a backing image of its disk ');

/**
 * Removes the VM.
 * @throws VivariumError invalid-state when it runs, when other VMs use its files (data
 *   `LinkedClonesData` when flattening would help), or when a clone to flatten is not shut down or
 *   has snapshots; busy when being started; qemu-failed when a copy fails (nothing deleted then).
 */
export async function deleteVm(deps: DeleteDeps, entry: BundleEntry, options: DeleteOptions): Promise<DeleteResult> {
  const layout = deps.library.layout;
  const name = nameOf(entry) ?? entry.id;
  const rt = layout.runtime(entry.id);
  await layout.ensureRuntimeDirAsync(rt.dir);
  const live = await scanQemuProcesses();
  const release = await acquireStartLockAsync(rt, name);
  let kept: string[];
  const flattened: string[] = [];
  try {
    const rs = await deps.runStates.getLockedAsync({ id: entry.id, name }, live);
    if (rs.state !== 'stopped') {
      throw errors.mustStop(name, rs.state, 'delete it');
    }
    // Another VM using a file from this folder (a linked clone's base, a disk by path) keeps it here.
    const usesNow = async () => {
      const others = (await deps.library.entriesAsync()).flatMap((e) => (e.ok && e.id !== entry.id ? [{ config: e.config, dir: e.dir }] : []));
      return usesOfFilesIn(entry.id, entry.dir, others);
    };
    let uses = await usesNow();
    const clones = [...new Set(uses.filter(isDiskUse).map((u) => u.vmId))];
    if (options.flattenClones && clones.length > 0) {
      const blocking = uses.filter((u) => !isDiskUse(u));
      const blocked = deleteBlockedBy(name, blocking);
      if (blocked) throw errors.state(blocked);
      // Every clone is locked and checked before any is copied: a refusal changes nothing.
      const held: { readonly clone: OkEntry; readonly release: () => Promise<void> }[] = [];
      try {
        for (const id of clones) {
          const clone = (await deps.library.entriesAsync()).find((e): e is OkEntry => e.ok && e.id === id);
          if (clone) held.push({ clone, release: await lockForFlatten(deps, clone, name) });
        }
        const dropped: string[] = [];
        for (const { clone } of held) {
          const r = await flattenClone(deps, clone, entry.dir, name);
          flattened.push(r.name);
          dropped.push(...r.dropped);
        }
        // A flattened clone that was itself the source of a linked clone kept its frozen base (its
        // old disk image, read-only) in its folder; once every clone is flattened, a base no
        // remaining VM uses is gigabytes of nothing: it goes.
        await removeUnused(deps, entry.id, dropped);
      } finally {
        for (const h of held) await h.release();
      }
      uses = await usesNow();
    }
    const blocked = deleteBlockedBy(name, uses);
    if (blocked) {
      const data: LinkedClonesData | undefined = uses.every(isDiskUse) ? { linkedClones: [...new Set(uses.map((u) => u.vmName))] } : undefined;
      throw errors.state(blocked, data);
    }
    kept = await deps.library.store.removeAsync(entry, options.keepDisks ?? false);
  } finally {
    await release();
  }
  await fsp.rm(rt.dir, { recursive: true, force: true });
  return { kept, flattened };
}

function inside(dir: string, file: string): boolean {
  return file.startsWith(`${dir.replace(/\/+$/, '')}/`);
}

/**
 * Takes `clone`'s start lock and checks that it can be flattened: shut down, not suspended, without
 * snapshots (they live in its overlay and read unchanged clusters from the base, which a copy leaves
 * behind). Returns the lock's release. @throws VivariumError invalid-state, busy, qemu-failed
 */
async function lockForFlatten(deps: DeleteDeps, clone: OkEntry, sourceName: string): Promise<() => Promise<void>> {
  const layout = deps.library.layout;
  const cname = clone.config.name;
  const crt = layout.runtime(clone.id);
  await layout.ensureRuntimeDirAsync(crt.dir);
  const live = await scanQemuProcesses();
  const release = await acquireStartLockAsync(crt, cname);
  try {
    const rs = await deps.runStates.getLockedAsync({ id: clone.id, name: cname }, live);
    if (rs.state !== 'stopped') throw errors.mustStop(cname, rs.state, `flatten it before "${sourceName}" is deleted`);
    if (clone.config.suspended) {
      throw errors.state(`"${cname}" is suspended on disks that stand on "${sourceName}": start it and shut it down, then delete "${sourceName}" again.`, undefined, {
        remedy: { kind: 'start-vm', vm: cname },
      });
    }
    const bundle = layout.bundle(clone.id);
    const qemuImg = await qemuImgOf(deps);
    const tops = clone.config.disks.filter((d) => !d.readOnly && 'bundle' in d.source).map((d) => ('bundle' in d.source ? bundle.file(d.source.bundle) : ''));
    if ((await hasSnapshots(bundle.file('snapshots.json'))) || (await imageSnapshotCount(qemuImg, tops)) > 0) {
      throw errors.state(
        `"${cname}" is a linked clone of "${sourceName}" with snapshots of its own, which read from "${sourceName}"'s disks and would not survive a flattened copy. Delete the snapshots of "${cname}" (or "${cname}" itself) first.`,
      );
    }
    return release;
  } catch (e) {
    await release();
    throw e;
  }
}

async function qemuImgOf(deps: DeleteDeps): Promise<string> {
  const qemuImg = deps.host ? (await deps.host()).qemuImg : null;
  if (!qemuImg) throw errors.qemu('qemu-img was not found. Install QEMU and check what this host can run (the doctor) before trying again.', undefined, { remedy: { kind: 'check-host' } });
  return qemuImg;
}

/**
 * Gives `clone` (locked and checked by lockForFlatten) standalone copies of its disks that read
 * files from `sourceDir`; returns its name.
 */
async function flattenClone(deps: DeleteDeps, clone: OkEntry, sourceDir: string, sourceName: string): Promise<{ readonly name: string; readonly dropped: readonly string[] }> {
  const layout = deps.library.layout;
  const cname = clone.config.name;
  const bundle = layout.bundle(clone.id);
  const abs = (s: ImageSource): string => ('bundle' in s ? bundle.file(s.bundle) : s.path);
  const qemuImg = await qemuImgOf(deps);
  const stamp = randomBytes(3).toString('hex');
  const made: string[] = [];
  const old: string[] = [];
  const dropped: string[] = [];
  const disks: Disk[] = [];
  try {
    for (const d of clone.config.disks) {
      const layers = diskImages(d);
      if (!layers.some((l) => inside(sourceDir, abs(l.source)))) {
        disks.push(d);
        continue;
      }
      const out = `${d.id}-${stamp}.qcow2`;
      made.push(bundle.file(out));
      await copyStandalone(qemuImg, abs(d.source), d.format, bundle.file(out), d.backing.map((l) => ({ file: abs(l.source), format: l.format })));
      const fh = await fsp.open(bundle.file(out), 'r+');
      await fh.sync();
      await fh.close();
      if ('bundle' in d.source && !d.readOnly) old.push(bundle.file(d.source.bundle));
      // The layers below that lie in the clone's own folder (frozen bases of its own linked clones):
      // removed afterwards if no VM uses them any more (removeUnused).
      for (const l of d.backing) if ('bundle' in l.source) dropped.push(bundle.file(l.source.bundle));
      disks.push({ ...d, source: { bundle: out }, format: 'qcow2', backing: [] });
    }
  } catch (e) {
    for (const f of made) await fsp.rm(f, { force: true });
    throw e;
  }
  const next: VmConfig = { ...clone.config, disks };
  await deps.library.store.saveAsync(next);
  for (const f of old) await fsp.rm(f, { force: true });
  deps.events?.append(clone.id, `flattened: its disks got images of their own, so that "${sourceName}" (its linked clone source) could be deleted`);
  return { name: cname, dropped };
}

/**
 * Removes each of `files` (absolute paths of images in flattened clones' folders) that no VM of the
 * library but `deletedId` (about to go) uses any more (none, while any VM's config does not load): as a disk or layer of a disk, a CD, a kernel
 * or an initrd, by bundle name or by path. A file that cannot be removed stays (said nowhere: the
 * delete itself succeeded; it is only space).
 */
async function removeUnused(deps: DeleteDeps, deletedId: string, files: readonly string[]): Promise<void> {
  if (files.length === 0) return;
  const used = new Set<string>();
  for (const e of await deps.library.entriesAsync()) {
    if (e.id === deletedId) continue;
    // A VM whose config does not load might stand on any of them: keep them all.
    if (!e.ok) return;
    const b = deps.library.layout.bundle(e.id);
    const c = e.config;
    for (const d of c.disks) for (const l of diskImages(d)) used.add(path.resolve('bundle' in l.source ? b.file(l.source.bundle) : l.source.path));
    for (const cd of c.cdroms) if (cd.path) used.add(path.resolve(cd.path));
    if (c.kernel) {
      used.add(path.resolve(c.kernel.path));
      if (c.kernel.initrd) used.add(path.resolve(c.kernel.initrd));
    }
    if (c.uefiVars) used.add(path.resolve(b.file(c.uefiVars)));
  }
  for (const f of new Set(files)) if (!used.has(path.resolve(f))) await fsp.rm(f, { force: true }).catch(() => undefined);
}
