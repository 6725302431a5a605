/**
 * The `snapshots` service: a VM's snapshot tree over the driver's Snapshotter capability.
 *
 *   snapshot-service.ts   resolve · job · driver (data in the images) · tree (tree.ts, snapshots.json)
 *
 * Every operation runs as a job on the VM (runtime/jobs.ts), so Force Off stays possible while a
 * snapshot is saved, and a second mutating operation is refused with a sentence naming this one.
 * A stopped VM's images are changed under its start lock (no start from another process slips in).
 * The tree is written before the data is made (`saving`) and after (`complete`); reading it
 * reconciles it with what the images hold (tree.ts `reconcile`), so whatever is killed in between, a
 * snapshot is either complete or absent. Each snapshot keeps the VM's hardware settings
 * (settings.ts); a revert puts them back, restarting a running VM whose machine differs.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { SnapshotName, type CloneSpec, type CreateSnapshotSpec, type EditSnapshotSpec, type RevertResult, type SnapshotInfo, type SnapshotJobInfo, type SnapshotProgressEvent, type SnapshotService } from '../../common/contract/snapshots';
import { ErrorCode, errors, VivariumError } from '../../common/errors';
import type { HostCapabilities } from '../../common/models/host';
import { formatMiB, type Disk } from '../../common/models/vm-config';
import type { VmInfo } from '../../common/models/vm-state';
import { hasScreenshotter, hasSnapshotter, hasSuspender, type DriverVm, type ImageSnapshot, type Snapshotter, type VmDriver } from '../drivers/driver';
import { Emitter } from '../emitter';
import type { OkEntry } from '../library/library';
import { writeFileAtomicAsync, type Layout } from '../paths';
import type { JobName } from '../runtime/jobs';
import type { RuntimeRecord } from '../runtime/records';
import { isQemuForAsync, readStopRequestAsync, scanQemuProcesses } from '../runtime/records';
import { isQemuEnded } from '../drivers/qemu/snapshotter';
import { acquireStartLockAsync, type LockDoing } from '../runtime/start-lock';
import type { LocalVmService } from '../vm-service';
import { cloneVm } from '../library/clone';
import { QemuIds } from '../qemu/argv';
import { toVmInfo } from '../library/info';
import { ramSizeMismatch, revertTarget, sameHardware, settingsOf, type RevertTarget } from './settings';
import { defaultName, findSnapshot, parseTree, reconcile, removeSnapshot, TREE_FILE, type SnapshotRecord, type SnapshotTree, type TagDetails } from './tree';

export interface SnapshotServiceDeps {
  readonly vms: LocalVmService;
  readonly layout: Layout;
  readonly host: () => Promise<HostCapabilities>;
  readonly log?: (line: string) => void;
}

type SnapDriver = VmDriver & Snapshotter;

/** A long operation under way on a VM (LocalSnapshotService.jobs/cancel). */
interface Op {
  readonly operation: SnapshotProgressEvent['operation'];
  /** 0..1, or null when not known. */
  fraction: number | null;
  readonly startedAt: string;
  readonly snapshot?: { readonly id: string; readonly name: string };
  /** Set when the operation can be cancelled. */
  readonly abort: AbortController | null;
  /** Whether it ended because it was cancelled (not: it finished before the cancel reached it). */
  cancelled: boolean;
  readonly ended: Promise<void>;
  readonly end: () => void;
}

/** Where the VM is, for a snapshot operation. */
type Where = { readonly kind: 'running'; readonly record: RuntimeRecord } | { readonly kind: 'stopped'; readonly release: () => Promise<void> };

export class LocalSnapshotService implements SnapshotService {
  private readonly changes = new Emitter<{ readonly vmId: string }>();
  private readonly progress = new Emitter<SnapshotProgressEvent>();
  readonly onDidChange = this.changes.event;
  readonly onDidProgress = this.progress.event;

  /** Per VM: tags of snapshots the tree marked `saving` that were not saved whole (half-made
   *  leftovers), as the last reconcile found them; the next snapshot taken removes them. Never a
   *  tag the tree does not know: those are adopted (tree.ts reconcile). */
  private readonly strays = new Map<string, readonly string[]>();

  /** The long operation under way on each VM (by id), for `jobs` and `cancel`. */
  private readonly ops = new Map<string, Op>();

  constructor(private readonly deps: SnapshotServiceDeps) {}

  async jobs(ref: string): Promise<readonly SnapshotJobInfo[]> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const op = this.ops.get(entry.id);
    if (!op) return [];
    return [
      {
        vmId: entry.id,
        operation: op.operation,
        fraction: op.fraction,
        startedAt: op.startedAt,
        ...(op.snapshot ? { snapshot: op.snapshot } : {}),
        cancellable: op.abort !== null,
      },
    ];
  }

  async cancel(ref: string): Promise<boolean> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const op = this.ops.get(entry.id);
    if (!op?.abort) return false;
    op.abort.abort();
    await op.ended;
    return op.cancelled;
  }

  async list(ref: string): Promise<readonly SnapshotInfo[]> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const driver = this.driverOf(entry, false);
    if (!driver) return [];
    // While this engine saves, reverts or deletes a snapshot of it, the tree is read as it is.
    const busy = this.deps.vms.jobs.running(entry.id).some((j) => j.name.startsWith('snapshot'));
    // One look at the images serves the reconcile and the sizes (qemu-img info per image).
    const seen: { images?: ReadonlyMap<string, readonly ImageSnapshot[]> } = {};
    const tree = await this.loadTree(entry, driver, !busy, null, undefined, seen);
    const sizes = seen.images ? sizesOf(seen.images) : await this.sizes(entry, driver);
    return tree.snapshots.filter((s) => s.state === 'complete').map((s) => infoOf(tree, s, sizes.get(s.id) ?? 0));
  }

  async create(ref: string, spec: CreateSnapshotSpec): Promise<SnapshotInfo> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const driver = this.driverOf(entry, true)!;
    const vm = vmOf(entry);
    const plan = driver.snapshotPlan(vm); // refuses a VM with a disk that cannot take one, before any job
    return this.job(entry, 'snapshotSave', async () => {
      // Where the VM is comes first: a running VM's images are then read through its QEMU, on the
      // monitor connection the save needs anyway (no qemu-img run before or after the save). When
      // the VM has a runtime record, that connection is opened while where() scans the processes
      // (where() takes the record read here rather than reading it again). The tree file is read
      // meanwhile too.
      const recorded = await this.deps.vms.runStates.currentRecordAsync(entry.id);
      if (recorded) driver.watch(vm.id);
      const treeText = this.readTreeText(entry.id);
      treeText.catch(() => undefined); // awaited below; where() may throw first
      const where = await this.where(entry, 'take a snapshot', recorded);
      const live = where.kind === 'running' ? where.record : null;
      const bundle = this.deps.layout.bundle(entry.id);
      try {
        if (live) assertNoShares(entry, 'snapshot'); // before any QEMU work
        let tree = await this.loadTree(entry, driver, true, live, treeText);
        // Left out: "Snapshot N". Given, it must be a name (an empty or blank one is refused, as a rename's is).
        const name = spec.name === undefined ? defaultName(tree) : checkedName(spec.name);
        assertNameFree(tree, name, null, entry.config.name);
        const id = `snap-${randomBytes(6).toString('hex')}`;
        // Leftovers of an interrupted save take space in the images: remove them first.
        for (const tag of this.strays.get(entry.id) ?? []) {
          await driver.deleteSnapshot(vm, live, tag).then(
            () => this.deps.vms.events.append(entry.id, `removed ${tag}, left in the images by an interrupted snapshot`),
            (e: unknown) => this.deps.log?.(`could not remove ${tag}: ${(e as Error).message}`),
          );
        }
        this.strays.delete(entry.id);
        // The thumbnail's screendump is asked for before the save (QEMU answers its monitor in order,
        // so it shows the screen as the snapshot has it); reading and writing the PNG overlap the save.
        // A VM without a display has nothing to draw.
        const thumbName = live && entry.config.display !== 'none' && hasScreenshotter(driver) ? `${id}.png` : null;
        const thumbDone: Promise<boolean> =
          live && thumbName && hasScreenshotter(driver)
            ? driver
                .screenshot(vm, live)
                .then((shot) => writeFileAtomicAsync(bundle.file(thumbName), shot.png))
                .then(
                  () => true,
                  (e: unknown) => {
                    this.deps.log?.(`snapshot thumbnail of ${entry.config.name}: ${(e as Error).message}`);
                    return false;
                  },
                )
            : Promise.resolve(false);
        const record: SnapshotRecord = {
          id,
          name,
          description: spec.description ?? '',
          createdAt: new Date().toISOString(),
          parentId: tree.current,
          withMemory: live !== null,
          images: plan.images.map((i) => i.file),
          thumbnail: thumbName,
          state: 'saving',
          settings: settingsOf(entry.config),
        };
        tree = { ...tree, snapshots: [...tree.snapshots, record] };
        // The `saving` entry is on disk before QEMU is asked for anything: a tag in the images then
        // always has its entry, so whatever ends the save (the engine killed, the host's power) the
        // next reconcile completes it under its name or drops it (tree.ts); a tag no entry claims
        // would come back as a nameless "Recovered N" (tester-s6 #1). The write is one small
        // atomic file, milliseconds against the save's seconds.
        const savingWritten = this.writeTree(entry.id, tree).then(
          () => null,
          (e: unknown) => e,
        );
        // QEMU's snapshot-save holds its main loop and says nothing until it ends (7.2: its job's
        // progress goes 0/1 → 1/1), so how far it is cannot be known: indeterminate, not a stuck 0 %.
        const snapshot = { id, name };
        this.fireProgress(entry.id, 'create', null, false, snapshot);
        let endedBy: 'qemu-ended' | null = null;
        /** Whether the images were already made to agree (settleFailedSave). */
        let settledImages = false;
        try {
          const notWritten = await savingWritten;
          if (notWritten) throw notWritten;
          let saveError: unknown = null;
          await driver.saveSnapshot(vm, live, id).catch((e: unknown) => (saveError = e ?? new Error('the save failed')));
          if (saveError !== null) {
            // Complete or absent, by what the images hold once nothing writes them (tester-s6 #1).
            const outcome = await this.settleFailedSave(entry, driver, vm, live, id, name, saveError);
            settledImages = true;
            if (!outcome.kept) throw outcome.error;
            endedBy = 'qemu-ended';
          }
        } catch (e) {
          // Complete or absent: take back what was made (settleFailedSave did when the save failed),
          // then the tree entry.
          await savingWritten;
          if (!settledImages) await driver.deleteSnapshot(vm, live, id).catch(() => undefined);
          await this.writeTree(entry.id, removeSnapshot(tree, id)).catch(() => undefined); // else reconcile drops the entry
          if (thumbName && (await thumbDone)) await fsp.rm(bundle.file(thumbName), { force: true });
          throw e;
        }
        const thumbnail = thumbName && (await thumbDone) ? thumbName : null;
        tree = { ...tree, current: id, snapshots: tree.snapshots.map((s) => (s.id === id ? { ...s, thumbnail, state: 'complete' as const } : s)) };
        const [sizes] = await Promise.all([this.sizes(entry, driver, endedBy ? null : live), this.writeTree(entry.id, tree)]);
        this.deps.vms.events.append(entry.id, `snapshot "${name}" (${id}) taken${record.withMemory ? ' with memory' : ''}${endedBy ? '; QEMU ended as the save finished, and every image holds the snapshot, so it was kept' : ''}`);
        this.deps.vms.jobs.afterJobs(entry.id, () => this.changes.fire({ vmId: entry.id })); // after the job: a listener may act at once
        return infoOf(tree, tree.snapshots.find((s) => s.id === id)!, sizes.get(id) ?? 0);
      } finally {
        this.fireProgress(entry.id, 'create', 1, true);
        if (where.kind === 'stopped') await where.release();
      }
    });
  }

  async revert(ref: string, snapshot: string): Promise<RevertResult> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const driver = this.driverOf(entry, true)!;
    const vm = vmOf(entry);
    return this.job(entry, 'snapshotLoad', async () => {
      let tree = await this.loadTree(entry, driver);
      const snap = requireSnapshot(tree, snapshot, entry.config.name);
      const where = await this.where(entry, 'revert to a snapshot');
      const live = where.kind === 'running' ? where.record : null;
      let released = false;
      try {
        if (live && !snap.withMemory) {
          // The CLI and the UI add the remedy (shut it down): the sentence does not repeat it.
          throw errors.state(
            `Snapshot "${snap.name}" was taken while "${entry.config.name}" was shut down, so it holds no memory to resume: only the disks of a shut-down VM can go back to it.`,
            undefined,
            { remedy: { kind: 'stop-vm', vm: entry.config.name } },
          );
        }
        // The settings the snapshot was taken with (none in records from before they were kept).
        const target = this.revertTargetOf(entry, snap);
        const targetVm: DriverVm = { id: entry.id, config: target.config };
        await this.assertDiskFilesExist(entry, snap, target);
        // Every image is checked before any is touched: a revert that fails on a later disk would
        // already have reverted the earlier ones (qemu-img and snapshot-load go image by image).
        await this.assertEveryImageHolds(entry, driver, snap, targetVm, live);
        const changed = !sameHardware(entry.config, target.config);
        this.fireProgress(entry.id, 'revert', null, false); // snapshot-load reports no progress either
        if (snap.withMemory && (!live || changed)) {
          // Back to a moment it ran, on the hardware it ran on: a running VM whose hardware differs
          // (memory, devices, disks) is ended first, as QEMU loads a state only into the machine it
          // was saved from. Then it starts with its vCPUs stopped, loads the snapshot (disks,
          // memory, devices) and runs on from there.
          if (where.kind === 'running') await this.endForRevert(entry, driver, where.record, snap);
          if (changed) await this.deps.vms.store.saveAsync(target.config);
          if (where.kind === 'stopped') {
            await where.release(); // the start below takes the start lock itself
            released = true;
          }
          await this.resumeInto(entry, driver, snap, targetVm).catch(async (e: unknown) => {
            // Nothing was loaded when QEMU did not start: the settings go back to what they were.
            if (changed && e instanceof StartFailed) await this.deps.vms.store.saveAsync(entry.config);
            throw await this.loadFailure(entry, snap, e instanceof StartFailed ? e.cause : e);
          });
        } else if (live) {
          await driver.loadSnapshot(vm, live, snap.id).catch(async (e: unknown) => {
            // QEMU puts the disks back before it reads the memory, and when the memory fails it lets
            // the guest run on over disks that are no longer the ones its memory knows (savevm.c
            // snapshot_load_job_bh): the revert discards the present state anyway, so it is ended.
            if (loadedDisks(e)) await this.endForRevert(entry, driver, live, snap, 'its memory could not be loaded after QEMU had put its disks back').catch(() => undefined);
            throw await this.loadFailure(entry, snap, e);
          });
        } else {
          await driver.loadSnapshot(targetVm, null, snap.id);
          if (changed) await this.deps.vms.store.saveAsync(target.config);
        }
        tree = { ...tree, current: snap.id };
        await this.writeTree(entry.id, tree);
        const notices = revertNotices(entry, snap, target, changed);
        this.deps.vms.events.append(entry.id, `reverted to snapshot "${snap.name}" (${snap.id})`);
        for (const n of notices) this.deps.vms.events.append(entry.id, n);
        const sizes = await this.sizes({ ...entry, config: target.config }, driver);
        this.deps.vms.jobs.afterJobs(entry.id, () => this.changes.fire({ vmId: entry.id })); // after the job: a listener may act at once
        const info: RevertResult = infoOf(tree, snap, sizes.get(snap.id) ?? 0);
        if (notices.length === 0) return info;
        return {
          ...info,
          ...(target.detached.length > 0 ? { detachedDisks: target.detached.map((d) => d.id) } : {}),
          ...(target.restored.length > 0 ? { restoredDisks: target.restored.map((d) => d.id) } : {}),
          notices,
        };
      } finally {
        this.fireProgress(entry.id, 'revert', 1, true);
        if (where.kind === 'stopped' && !released) await where.release();
      }
    });
  }

  /**
   * The VM's config after a revert to `snap`: the snapshot's settings (settings.ts), or, for a
   * record from before snapshots kept them, the present config.
   * @throws VivariumError invalid-state when the saved settings cannot be used (named why).
   */
  private revertTargetOf(entry: OkEntry, snap: SnapshotRecord): RevertTarget {
    if (!snap.settings) return { config: entry.config, restored: [], detached: [] };
    const r = revertTarget(entry.config, snap.settings);
    if (r.ok) return r.target;
    throw errors.state(`Cannot revert "${entry.config.name}" to snapshot "${snap.name}": the VM settings saved with it cannot be used: ${r.why}. Nothing was changed.`, { snapshot: snap.name });
  }

  /**
   * Refuses, changing nothing, a revert that would attach again a disk removed since the snapshot
   * whose image file is gone (deleted with the disk, or by hand): the snapshot's data was in it.
   * @throws VivariumError invalid-state naming each such disk and its file.
   */
  private async assertDiskFilesExist(entry: OkEntry, snap: SnapshotRecord, target: RevertTarget): Promise<void> {
    const bundle = this.deps.layout.bundle(entry.id);
    const gone: string[] = [];
    for (const d of target.restored) {
      for (const layer of [d.source, ...d.backing.map((b) => b.source)]) {
        const file = 'bundle' in layer ? bundle.file(layer.bundle) : layer.path;
        const exists = await fsp.stat(file).then((st) => st.isFile(), () => false);
        if (!exists) gone.push(`disk ${d.id} (${'bundle' in layer ? `${layer.bundle} in its folder` : file})`);
      }
    }
    if (gone.length === 0) return;
    const n = entry.config.name;
    throw errors.state(
      `Cannot revert "${n}" to snapshot "${snap.name}": it had ${list(gone)}, which ${gone.length === 1 ? 'was' : 'were'} removed since and whose image ${gone.length === 1 ? 'file is' : 'files are'} gone, so the snapshot's data in ${gone.length === 1 ? 'it' : 'them'} is lost. Nothing was changed. Put the ${gone.length === 1 ? 'file' : 'files'} back to revert, or keep "${n}" as it is.`,
      { snapshot: snap.name, disks: target.restored.map((d) => d.id) },
    );
  }

  /** Ends the running VM for a revert to `snap` (what it was doing is what the revert discards
   *  anyway): by default because its hardware differs and it starts again with the snapshot's. */
  private async endForRevert(entry: OkEntry, driver: SnapDriver, record: RuntimeRecord, snap: SnapshotRecord, why = 'which was taken with other settings'): Promise<void> {
    this.deps.vms.events.append(entry.id, `ending QEMU to revert to snapshot "${snap.name}", ${why}`);
    await driver.stop(vmOf(entry), record, { force: true, timeoutSec: 0 });
    await this.deps.vms.runStates.getAsync({ id: entry.id, name: entry.config.name }); // records the exit (a transition: getAsync hands it to RunStates.get, see run-state.ts)
  }

  /**
   * A failed load of `snap`'s memory as a sentence. QEMU says only "Error -22 while loading VM
   * state"; its log says why ("Size mismatch: pc.ram: …" when the memory size differs, which only a
   * snapshot without saved settings can meet). QEMU's snapshot-load puts the disks back before it
   * reads the memory; the VM was ended (loadedDisks).
   */
  private async loadFailure(entry: OkEntry, snap: SnapshotRecord, e: unknown): Promise<unknown> {
    if (isQemuEnded(e)) {
      const how = (await this.forcedOff(entry)) ? 'was forced off' : 'stopped (QEMU ended: it crashed or was killed)';
      return errors.state(
        `"${entry.config.name}" ${how} while it was being reverted to snapshot "${snap.name}": the revert did not finish, and its disks may be partly back at the snapshot. Revert to "${snap.name}" again to finish it.`,
        { snapshot: snap.name, qemuEnded: true },
      );
    }
    if (!loadedDisks(e)) return e;
    const n = entry.config.name;
    const log = await fsp.readFile(this.deps.layout.bundle(entry.id).qemuLog, 'utf8').then((t) => t.slice(-16_384), () => '');
    const ram = ramSizeMismatch(log);
    const disks = `QEMU had already put its disks back to the snapshot, so "${n}" is shut down.`;
    if (ram) {
      return errors.state(
        `Cannot load the memory of snapshot "${snap.name}" into "${n}": it was taken with ${formatMiB(ram.savedMiB)} of memory, and "${n}" has ${formatMiB(ram.nowMiB)} now. ${disks} Set its memory to ${formatMiB(ram.savedMiB)}, then revert again.`,
        { snapshot: snap.name, memoryMiB: ram.savedMiB },
        { field: 'memoryMiB', remedy: { kind: 'change-setting', field: 'memoryMiB', to: String(ram.savedMiB), vm: n } },
      );
    }
    const why = (e as Error).message.replace(/^QEMU could not revert "[^"]*": /, '').replace(/\.$/, '');
    return errors.state(
      `Cannot load the memory of snapshot "${snap.name}" into "${n}": QEMU refused it (${why}), which happens when the VM's devices or QEMU itself differ from those it was taken with. ${disks} ${snap.settings ? 'Start it to boot afresh from the snapshot\'s disks.' : 'Set its hardware back to what it had when the snapshot was taken, then revert again.'}`,
      { snapshot: snap.name },
    );
  }

  /**
   * Refuses, changing nothing, a revert to `snap` when one of the images it would load does not hold
   * it (a disk added after a snapshot from before snapshots kept settings, or one whose snapshot was
   * deleted by hand). `vm`: the VM as the revert leaves it (its config the snapshot's settings).
   * `live`: the VM's runtime record when it runs with those same disks (its QEMU is asked), else
   * null (qemu-img reads each image, also one a running QEMU holds).
   * @throws VivariumError invalid-state naming each such disk and what to do.
   */
  private async assertEveryImageHolds(entry: OkEntry, driver: SnapDriver, snap: SnapshotRecord, vm: DriverVm, live: RuntimeRecord | null): Promise<void> {
    const plan = driver.snapshotPlan(vm);
    // A running QEMU answers by node name: only when it runs the same disks is its answer theirs.
    const sameDisks = live !== null && JSON.stringify(vm.config.disks) === JSON.stringify(entry.config.disks);
    const held = await driver.imageSnapshots(vm, sameDisks ? live : null);
    const missing = plan.images.filter((i) => !(held.get(i.file) ?? []).some((s) => s.tag === snap.id));
    if (missing.length === 0) return;
    const n = entry.config.name;
    const added = missing.filter((i) => !snap.images.includes(i.file));
    const lost = missing.filter((i) => snap.images.includes(i.file));
    const parts: string[] = [];
    if (added.length > 0) {
      parts.push(`${list(added.map((i) => i.label))} ${added.length === 1 ? 'was' : 'were'} added after snapshot "${snap.name}" was taken, so ${added.length === 1 ? 'it holds' : 'they hold'} no state to go back to.`);
    }
    if (lost.length > 0) parts.push(`${list(lost.map((i) => i.label))} no longer ${lost.length === 1 ? 'holds' : 'hold'} snapshot "${snap.name}".`);
    const disks = missing.filter((i) => i.node !== QemuIds.fwVars).map((i) => i.node);
    const todo =
      disks.length > 0
        ? `To revert the other disks, remove ${list(disks.map((d) => `disk ${d}`))} from "${n}" first (${disks.length === 1 ? 'its image file can be kept' : 'their image files can be kept'}), then revert again; or keep "${n}" as it is.`
        : `Keep "${n}" as it is, or take a new snapshot.`;
    throw errors.state(`Cannot revert "${n}" to snapshot "${snap.name}": ${parts.join(' ')} Nothing was changed. ${todo}`, {
      snapshot: snap.name,
      disks: missing.map((i) => i.node),
    });
  }

  /**
   * Starts the shut-down VM `vm` (its config as the revert leaves it) paused (QEMU `-S`), loads
   * snapshot `snap` with its memory, and resumes it; a failure ends that QEMU again (the VM stays
   * shut down, its disks as the load left them: snapshot-load reverts every image before the
   * memory, so a retry starts from the same place).
   * @throws StartFailed when QEMU did not start (nothing was loaded); else the load's error
   */
  private async resumeInto(entry: OkEntry, driver: SnapDriver, snap: SnapshotRecord, vm: DriverVm): Promise<void> {
    const record = await driver.start(vm, { timeoutMs: 120_000, paused: true }).catch((e: unknown) => {
      throw new StartFailed(e);
    });
    try {
      await driver.loadSnapshot(vm, record, snap.id);
      await driver.resume(vm, record);
    } catch (e) {
      await driver.stop(vm, record, { force: true, timeoutSec: 0 }).catch(() => undefined);
      throw e;
    }
    this.deps.vms.events.append(entry.id, `started at snapshot "${snap.name}" (${snap.id}), where it was running`);
  }

  async delete(ref: string, snapshot: string): Promise<void> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const driver = this.driverOf(entry, true)!;
    const vm = vmOf(entry);
    await this.job(entry, 'snapshotDelete', async () => {
      const tree = await this.loadTree(entry, driver);
      const snap = requireSnapshot(tree, snapshot, entry.config.name);
      const where = await this.where(entry, 'delete a snapshot');
      try {
        this.fireProgress(entry.id, 'delete', null, false);
        await driver.deleteSnapshot(vm, where.kind === 'running' ? where.record : null, snap.id).catch(async (e: unknown) => {
          if (!isQemuEnded(e)) throw e;
          const how = (await this.forcedOff(entry)) ? 'was forced off' : 'stopped (QEMU ended: it crashed or was killed)';
          throw errors.state(`"${entry.config.name}" ${how} while snapshot "${snap.name}" was being deleted: the delete may not have finished. Delete "${snap.name}" again if it is still listed.`, { snapshot: snap.name, qemuEnded: true });
        });
        await this.writeTree(entry.id, removeSnapshot(tree, snap.id));
        if (snap.thumbnail) await fsp.rm(this.deps.layout.bundle(entry.id).file(snap.thumbnail), { force: true });
        this.deps.vms.events.append(entry.id, `snapshot "${snap.name}" (${snap.id}) deleted`);
        this.deps.vms.jobs.afterJobs(entry.id, () => this.changes.fire({ vmId: entry.id })); // after the job: a listener may act at once
      } finally {
        this.fireProgress(entry.id, 'delete', 1, true);
        if (where.kind === 'stopped') await where.release();
      }
    });
  }

  async edit(ref: string, snapshot: string, patch: EditSnapshotSpec): Promise<SnapshotInfo> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const driver = this.driverOf(entry, true)!;
    return this.job(entry, 'snapshotEdit', async () => {
      let tree = await this.loadTree(entry, driver);
      const snap = requireSnapshot(tree, snapshot, entry.config.name);
      const name = patch.name === undefined ? snap.name : checkedName(patch.name);
      assertNameFree(tree, name, snap.id, entry.config.name);
      const next = { ...snap, name, description: patch.description ?? snap.description };
      tree = { ...tree, snapshots: tree.snapshots.map((s) => (s.id === snap.id ? next : s)) };
      await this.writeTree(entry.id, tree);
      if (name !== snap.name) this.deps.vms.events.append(entry.id, `snapshot "${snap.name}" renamed "${name}"`);
      this.deps.vms.jobs.afterJobs(entry.id, () => this.changes.fire({ vmId: entry.id })); // after the job: a listener may act at once
      const sizes = await this.sizes(entry, driver);
      return infoOf(tree, next, sizes.get(next.id) ?? 0);
    });
  }

  async thumbnail(ref: string, snapshot: string): Promise<{ readonly pngBase64: string } | null> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const { tree } = parseTree(await this.readTreeText(entry.id));
    const snap = requireSnapshot(tree, snapshot, entry.config.name);
    if (!snap.thumbnail) return null;
    try {
      const png = await fsp.readFile(this.deps.layout.bundle(entry.id).file(snap.thumbnail));
      return { pngBase64: png.toString('base64') };
    } catch {
      return null;
    }
  }

  async clone(ref: string, spec: CloneSpec): Promise<VmInfo> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const info = await this.job(entry, 'clone', async () => {
      // A full copy can be cancelled (cancel()): its qemu-img is ended and the half-made clone removed.
      const abort = spec.linked ? null : new AbortController();
      this.fireProgress(entry.id, 'clone', 0, false, undefined, abort);
      const where = await this.where(entry, 'clone it').catch((e: unknown) => {
        this.fireProgress(entry.id, 'clone', 1, true);
        throw e;
      });
      try {
        if (where.kind === 'running') {
          throw errors.mustStop(entry.config.name, 'running', 'clone it');
        }
        return await cloneVm(
          { library: this.deps.vms.library, host: this.deps.host, progress: (f) => this.fireProgress(entry.id, 'clone', f, false), ...(abort ? { signal: abort.signal } : {}) },
          entry,
          spec,
        ).catch((e: unknown) => {
          const op = this.ops.get(entry.id);
          if (op && abort?.signal.aborted) op.cancelled = true; // cloneVm failed after the cancel: it removed what it made
          throw e;
        });
      } finally {
        this.fireProgress(entry.id, 'clone', 1, true);
        if (where.kind === 'stopped') await where.release();
      }
    });
    this.deps.vms.events.append(entry.id, `cloned as "${info.config.name}" (${spec.linked ? 'linked' : 'full'})`);
    this.deps.vms.events.append(info.config.id, `created as a ${spec.linked ? 'linked' : 'full'} clone of "${entry.config.name}"`);
    for (const n of info.notices) this.deps.vms.events.append(info.config.id, n);
    // The clone's info from the config just written (not a new listing of the whole library, nor
    // its command line: a clone is made in milliseconds, issue 10).
    const made = this.deps.layout.bundle(info.config.id);
    const key = { id: info.config.id, name: info.config.name };
    const [rs, lastExit] = await Promise.all([this.deps.vms.runStates.getAsync(key), this.deps.vms.runStates.lastExitAsync(key.id)]);
    const vm = toVmInfo({ id: key.id, dir: made.dir, ok: true, config: info.config }, rs, lastExit);
    return info.notices.length > 0 ? { ...vm, notices: [...(vm.notices ?? []), ...info.notices] } : vm;
  }

  async suspend(ref: string): Promise<VmInfo> {
    const entry = this.deps.vms.library.resolveOk(ref);
    const vm = vmOf(entry);
    const driver = this.deps.vms.driverFor(vm);
    if (!hasSuspender(driver)) throw new VivariumError(ErrorCode.Unsupported, `"${entry.config.name}" cannot be suspended by its ${driver.name} driver.`);
    await this.job(entry, 'suspend', async () => {
      const rs = await this.deps.vms.runStates.getAsync({ id: entry.id, name: entry.config.name }, await scanQemuProcesses());
      if ((rs.state !== 'running' && rs.state !== 'paused') || !('record' in rs)) {
        throw errors.state(`"${entry.config.name}" is ${entry.config.suspended ? 'suspended already' : rs.state}. Only a running VM can be suspended.`);
      }
      assertNoShares(entry, 'suspend');
      try {
        this.fireProgress(entry.id, 'suspend', 0, false);
        await driver.suspend(vm, rs.record, (f) => this.fireProgress(entry.id, 'suspend', f, false)).catch(async (e: unknown) => {
          // QEMU gone under the migration: Force Off says so in the VM's words (the driver cannot tell why).
          if (!isQemuEnded(e) || !(await this.forcedOff(entry))) throw e;
          throw errors.state(`"${entry.config.name}" was forced off while it was being suspended: the suspend did not finish and nothing was saved, so its next start boots afresh.`, { qemuEnded: true });
        });
      } finally {
        this.fireProgress(entry.id, 'suspend', 1, true);
      }
      await this.deps.vms.runStates.getAsync({ id: entry.id, name: entry.config.name }); // records the exit (a transition: getAsync hands it to RunStates.get, see run-state.ts)
      this.deps.vms.events.append(entry.id, 'suspended to disk');
    });
    return this.deps.vms.get(entry.id);
  }

  async exportVm(ref: string, path: string): Promise<{ readonly path: string; readonly bytes: number }> {
    const entry = this.deps.vms.library.resolveOk(ref);
    return this.job(entry, 'diskConvert', async () => {
      const where = await this.where(entry, 'export it');
      try {
        if (where.kind === 'running') throw errors.mustStop(entry.config.name, 'running', 'export it');
        const bundle = this.deps.layout.bundle(entry.id);
        // Loaded when used: the archive code (tar, the seed ISO writer, yaml) is no part of any other command.
        const { exportVm } = await import('./bundle-archive.js');
        this.fireProgress(entry.id, 'export', 0, false);
        const r = await exportVm(entry, (n) => bundle.file(n), path, (f) => this.fireProgress(entry.id, 'export', f, false));
        this.deps.vms.events.append(entry.id, `exported to ${path}`);
        return { path, bytes: r.bytes };
      } finally {
        this.fireProgress(entry.id, 'export', 1, true);
        if (where.kind === 'stopped') await where.release();
      }
    });
  }

  async importVm(path: string, options: { readonly name?: string }): Promise<VmInfo> {
    const { importVm } = await import('./bundle-archive.js');
    const { config, notices } = await importVm(this.deps.vms.library, path, options, (await this.deps.host()).qemuImg);
    this.deps.vms.events.append(config.id, `imported from ${path}`);
    for (const n of notices) this.deps.vms.events.append(config.id, n);
    const vm = await this.deps.vms.get(config.id);
    return notices.length > 0 ? { ...vm, notices: [...(vm.notices ?? []), ...notices] } : vm;
  }

  dispose(): void {
    this.changes.dispose();
    this.progress.dispose();
  }

  // ---- internals ---------------------------------------------------------------------------------

  private job<T>(entry: OkEntry, name: JobName, fn: () => Promise<T>): Promise<T> {
    return this.deps.vms.jobs.run(entry.id, entry.config.name, name, fn);
  }

  private driverOf(entry: OkEntry, required: boolean): SnapDriver | null {
    const driver = this.deps.vms.driverFor(vmOf(entry));
    if (hasSnapshotter(driver)) return driver;
    if (!required) return null;
    throw new VivariumError(ErrorCode.Unsupported, `"${entry.config.name}" cannot take snapshots with its ${driver.name} driver.`);
  }

  /**
   * Running (with its record) or stopped (holding the start lock: release it when done).
   * `recorded`: the VM's runtime record as the caller just read it (currentRecordAsync), when it did.
   */
  private async where(entry: OkEntry, what: string, recorded?: RuntimeRecord | null): Promise<Where> {
    if (entry.config.suspended) {
      // Both ways out in front-end-neutral words; each front end words the force-off remedy (CLI: `vivarium stop NAME --force`).
      throw errors.state(
        `"${entry.config.name}" is suspended: its disks must stay as they were until it resumes. Start it (it resumes where it was) and shut it down, or force it off to discard its saved state (the next start then boots afresh); then ${what}.`,
        undefined, { remedy: { kind: 'force-stop', vm: entry.config.name } });
    }
    const vmKey = { id: entry.id, name: entry.config.name };
    // A running VM is known by its record and its QEMU's command line (RunStates.get's first look);
    // the scan of every process below is for the rest (a QEMU whose runtime folder vanished).
    const rec = recorded === undefined ? await this.deps.vms.runStates.currentRecordAsync(entry.id) : recorded;
    if (rec && (rec.status === 'running' || rec.status === 'paused') && (await isQemuForAsync(rec.pid, entry.id))) return { kind: 'running', record: rec };
    // One scan of the host's processes serves both looks (it is most of a quick clone's time); a
    // QEMU started after it cannot be ours: starts take the lock taken below.
    const live = await scanQemuProcesses();
    const rs = await this.deps.vms.runStates.getAsync(vmKey, live);
    if ((rs.state === 'running' || rs.state === 'paused') && 'record' in rs) return { kind: 'running', record: rs.record };
    if (rs.state !== 'stopped') throw errors.state(`"${entry.config.name}" is ${rs.state}. Wait for it to finish, then ${what}.`);
    const rt = this.deps.layout.runtime(entry.id);
    await this.deps.layout.ensureRuntimeDirAsync(rt.dir);
    const doing: LockDoing = what === 'clone it' ? 'cloned' : what === 'export it' ? 'exported' : what === 'revert to a snapshot' ? 'reverted' : what === 'take a snapshot' ? 'snapshotted' : 'changed';
    const release = await acquireStartLockAsync(rt, entry.config.name, doing);
    try {
      // Under the lock, as the driver's start() looks (qemu-driver.ts): the lock keeps every start
      // out until it is released, so this look may await.
      const locked = await this.deps.vms.runStates.getLockedAsync(vmKey, live);
      if (locked.state !== 'stopped') throw errors.state(`"${entry.config.name}" was just started. Try again to ${what}.`);
    } catch (e) {
      await release();
      throw e;
    }
    return { kind: 'stopped', release };
  }

  private async readTreeText(id: string): Promise<string | null> {
    const file = this.deps.layout.bundle(id).file(TREE_FILE);
    try {
      const st = await fsp.lstat(file);
      if (!st.isFile()) return null;
      return await fsp.readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  private async writeTree(id: string, tree: SnapshotTree): Promise<void> {
    await writeFileAtomicAsync(this.deps.layout.bundle(id).file(TREE_FILE), `${JSON.stringify(tree, null, 2)}\n`);
  }

  /** The tree, reconciled with the images (unless a snapshot job of this engine is under way). */
  private async loadTree(
    entry: OkEntry,
    driver: SnapDriver,
    doReconcile = true,
    live: RuntimeRecord | null = null,
    text: Promise<string | null> = this.readTreeText(entry.id),
    seen?: { images?: ReadonlyMap<string, readonly ImageSnapshot[]> },
  ): Promise<SnapshotTree> {
    const { tree, problem } = parseTree(await text);
    if (!doReconcile) return tree;
    const aside = problem ? await this.keepAside(entry, problem) : null;
    const vm = vmOf(entry);
    let held: ReadonlyMap<string, readonly string[]>;
    const details = new Map<string, TagDetails>();
    try {
      const images = await driver.imageSnapshots(vm, live);
      if (seen) seen.images = images;
      held = new Map([...images].map(([f, list]) => [f, list.map((s) => s.tag)]));
      for (const list of images.values()) {
        for (const s of list) {
          const had = details.get(s.tag);
          const createdAt = had?.createdAt && s.createdAt ? (had.createdAt < s.createdAt ? had.createdAt : s.createdAt) : (had?.createdAt ?? s.createdAt);
          details.set(s.tag, { vmStateBytes: (had?.vmStateBytes ?? 0) + s.vmStateBytes, ...(createdAt ? { createdAt } : {}) });
        }
      }
    } catch {
      return tree; // a VM whose disks cannot hold snapshots has none to reconcile
    }
    // Only what the tree marks `saving` may be removed from the images; what the images hold and the
    // tree does not know (a lost or damaged snapshots.json) is adopted (tree.ts reconcile).
    const r = reconcile(tree, held, details, aside ? `snapshots.json could not be read and was kept as ${aside}.` : '');
    this.strays.set(entry.id, r.strayTags);
    if (r.notes.length > 0) {
      for (const n of r.notes) this.deps.vms.events.append(entry.id, n);
      await this.writeTree(entry.id, r.tree);
    }
    return r.tree;
  }

  /**
   * Moves an unreadable snapshots.json aside (`snapshots.json.damaged-<time>`, never overwritten: it
   * holds the names, descriptions and parents the images do not) and says so in the VM's event log.
   * The tree is then rebuilt from what the images hold (reconcile adopts their snapshots).
   * @returns the name the file was kept as, or null when it was gone already.
   */
  private async keepAside(entry: OkEntry, problem: string): Promise<string | null> {
    const bundle = this.deps.layout.bundle(entry.id);
    const aside = `${TREE_FILE}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try {
      await fsp.rename(bundle.file(TREE_FILE), bundle.file(aside));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null; // another process moved it first
      throw e;
    }
    const warning = `${problem}. It was kept as ${aside} and the snapshot tree was rebuilt from the snapshots the VM's images hold (as "Recovered N": their names, descriptions and parents were in the damaged file)`;
    this.deps.vms.events.append(entry.id, `warning: ${warning}`);
    this.deps.log?.(`${entry.config.name}: ${warning}`);
    return aside;
  }

  /** Bytes of saved memory per snapshot id, over the images (asked of QEMU when `live`). */
  private async sizes(entry: OkEntry, driver: SnapDriver, live: RuntimeRecord | null = null): Promise<ReadonlyMap<string, number>> {
    try {
      return sizesOf(await driver.imageSnapshots(vmOf(entry), live));
    } catch {
      return new Map(); // none
    }
  }

  /**
   * Tells the UI how far `operation` on VM `vmId` is (`fraction` null: not known) and keeps it for
   * `jobs` (a page opened meanwhile); `done` ends it. The first call of an operation registers it,
   * with its snapshot (create) and its AbortController when it can be cancelled.
   */
  private fireProgress(
    vmId: string,
    operation: SnapshotProgressEvent['operation'],
    fraction: number | null,
    done: boolean,
    snapshot?: { readonly id: string; readonly name: string },
    abort: AbortController | null = null,
  ): void {
    let op = this.ops.get(vmId);
    if (done) {
      if (op?.operation === operation) {
        this.ops.delete(vmId);
        op.end();
      }
    } else if (!op || op.operation !== operation) {
      let end!: () => void;
      const ended = new Promise<void>((r) => (end = r));
      op = { operation, fraction, startedAt: new Date().toISOString(), abort, cancelled: false, ended, end, ...(snapshot ? { snapshot } : {}) };
      this.ops.set(vmId, op);
    } else {
      op.fraction = fraction;
    }
    const snap = snapshot ?? op?.snapshot;
    const f = done ? 1 : fraction;
    this.progress.fire({ vmId, operation, fraction: f ?? 0, done, ...(f === null ? { indeterminate: true } : {}), ...(snap ? { snapshot: snap } : {}) });
  }

  /**
   * `qemu-img check -r leaks` on the VM's bundle images `files` (after QEMU was killed in the middle
   * of writing a snapshot's memory: the clusters it had allocated for it belong to nothing, which
   * `qemu-img check` reports as leaks; repairing leaks frees them and touches no data). Only while
   * nothing has the images open (the caller holds the VM's job, QEMU is gone). The header's backing
   * file is not opened. Failures are logged, not thrown: leaks waste space, they lose nothing.
   */
  private async repairLeaks(entry: OkEntry, files: readonly string[]): Promise<void> {
    const qemuImg = (await this.deps.host()).qemuImg;
    if (!qemuImg) return;
    const bundle = this.deps.layout.bundle(entry.id);
    for (const f of files) {
      const spec = `json:${JSON.stringify({ driver: 'qcow2', backing: null, file: { driver: 'file', filename: bundle.file(f) } })}`;
      await new Promise<void>((resolve) => {
        execFile(qemuImg, ['check', '-q', '-r', 'leaks', spec], { timeout: 120_000 }, (err, _out, stderr) => {
          // Exit 0: clean or repaired; anything else is said in the log (the next check shows it too).
          if (err) this.deps.log?.(`qemu-img check -r leaks of ${f} (${entry.config.name}): ${String(stderr).trim() || err.message}`);
          resolve();
        });
      });
    }
  }

  /** Whether the VM's QEMU was ended by a Force Off (this engine's, or another process's stop
   *  request in the runtime folder) rather than by a crash or a kill from outside. */
  private async forcedOff(entry: OkEntry): Promise<boolean> {
    if (this.deps.vms.jobs.running(entry.id).some((j) => j.name === 'forceOff')) return true;
    // (Not the last exit on record: it may still be the previous run's while this one's is written.)
    return (await readStopRequestAsync(this.deps.layout.runtime(entry.id)).catch(() => null)) !== null;
  }

  /**
   * After a snapshot save that failed (`e`): makes snapshot `id` complete or absent by what the
   * images hold (issue 10: "a half-made snapshot is either complete or absent").
   * - QEMU still runs (it refused the save, with its reason): what it made is removed through it.
   * - QEMU ended (Force Off, killed, crashed; `live` given) or the VM is shut down: once the process
   *   is gone, every writable image is read (qemu-img). Every one holds the tag → kept, complete,
   *   with its name, description and settings (`kept: true`). Some hold it → the tag is deleted
   *   from those and the entry dropped. None → the entry is dropped.
   * @returns kept, or the error to throw (the images agree with it either way)
   */
  private async settleFailedSave(
    entry: OkEntry,
    driver: SnapDriver,
    vm: DriverVm,
    live: RuntimeRecord | null,
    id: string,
    snapName: string,
    e: unknown,
  ): Promise<{ kept: true } | { kept: false; error: unknown }> {
    // Asked first: a Force Off's job and stop request are gone once it has recorded the exit.
    const forced = live !== null && (await this.forcedOff(entry));
    const qemuEnded = live !== null && (isQemuEnded(e) || !(await isQemuForAsync(live.pid, entry.id)));
    if (live && !qemuEnded) {
      await driver.deleteSnapshot(vm, live, id).catch(() => undefined);
      return { kept: false, error: e };
    }
    if (live) {
      // The images are read and written only once QEMU has let go of them.
      for (let waited = 0; waited < 15_000 && (await isQemuForAsync(live.pid, entry.id)); waited += 50) await new Promise((r) => setTimeout(r, 50));
    }
    const plan = driver.snapshotPlan(vm);
    const held = await driver.imageSnapshots(vm, null).catch(() => null);
    const holding = held ? plan.images.filter((i) => (held.get(i.file) ?? []).some((s) => s.tag === id)) : [];
    if (held && plan.images.length > 0 && holding.length === plan.images.length) {
      if (qemuEnded) await this.repairLeaks(entry, plan.images.map((i) => i.file));
      return { kept: true };
    }
    let removed = holding.length === 0;
    if (holding.length > 0) {
      removed = await driver.deleteSnapshot(vm, null, id).then(
        () => true,
        (err: unknown) => {
          this.deps.log?.(`could not remove the half-made snapshot ${id} of ${entry.config.name}: ${(err as Error).message}`);
          return false;
        },
      );
    }
    if (holding.length > 0) this.deps.vms.events.append(entry.id, `snapshot ${id} was in ${holding.length} of ${plan.images.length} images when the save ended; ${removed ? 'removed from them' : 'left for the next snapshot to remove'}`);
    if (!removed) this.strays.set(entry.id, [...(this.strays.get(entry.id) ?? []), id]);
    if (!qemuEnded) return { kept: false, error: e };
    await this.repairLeaks(entry, plan.images.map((i) => i.file));
    const how = forced ? 'was forced off' : 'stopped (QEMU ended: it crashed or was killed)';
    return {
      kept: false,
      error: errors.state(`"${entry.config.name}" ${how} while snapshot "${snapName}" was being saved: the save did not finish, so the snapshot was not kept.`, { snapshot: snapName, qemuEnded: true }),
    };
  }
}

/** Whether `e` is QEMU failing to load a snapshot's memory ("Error -22 while loading VM state"),
 *  which it reports after it has put the disks back (migration/savevm.c load_snapshot). */
function loadedDisks(e: unknown): boolean {
  return e instanceof VivariumError && e.code === ErrorCode.QemuFailed && /while loading VM state/i.test(e.message);
}

/** A start for a revert that failed before anything was loaded (`cause`: the start's error). */
class StartFailed extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** The sentences a revert says besides "reverted": disks detached or attached again, settings put back. */
function revertNotices(entry: OkEntry, snap: SnapshotRecord, target: RevertTarget, changed: boolean): string[] {
  const bundleFile = (d: Disk) => ('bundle' in d.source ? `${d.source.bundle} in its folder` : d.source.path);
  const out: string[] = [];
  for (const d of target.detached) {
    out.push(`Disk ${d.id} was added after snapshot "${snap.name}" and was detached by the revert; its image file is kept (${bundleFile(d)}).`);
  }
  for (const d of target.restored) out.push(`Disk ${d.id}, removed after snapshot "${snap.name}", is attached again (${bundleFile(d)}).`);
  if (changed && target.detached.length === 0 && target.restored.length === 0) {
    out.push(`The settings of "${entry.config.name}" are back to those it had at snapshot "${snap.name}"${entry.config.memoryMiB !== target.config.memoryMiB ? ` (memory ${formatMiB(target.config.memoryMiB)})` : ''}.`);
  } else if (changed) {
    const others = !sameHardware({ ...entry.config, disks: [] }, { ...target.config, disks: [] });
    if (others) out.push(`Its other settings are back to those at snapshot "${snap.name}" too${entry.config.memoryMiB !== target.config.memoryMiB ? ` (memory ${formatMiB(target.config.memoryMiB)})` : ''}.`);
  }
  return out;
}

/** Bytes of saved memory per snapshot id (tag), summed over the images. */
function sizesOf(images: ReadonlyMap<string, readonly ImageSnapshot[]>): ReadonlyMap<string, number> {
  const out = new Map<string, number>();
  for (const list of images.values()) for (const s of list) out.set(s.tag, (out.get(s.tag) ?? 0) + s.vmStateBytes);
  return out;
}

/** "a", "a and b", "a, b and c". */
function list(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]!}`;
}

function vmOf(entry: OkEntry): DriverVm {
  return { id: entry.id, config: entry.config };
}

function infoOf(tree: SnapshotTree, s: SnapshotRecord, sizeBytes: number): SnapshotInfo {
  return {
    id: s.id,
    name: s.name,
    description: s.description,
    createdAt: s.createdAt,
    parentId: s.parentId,
    current: tree.current === s.id,
    withMemory: s.withMemory,
    sizeBytes,
    hasThumbnail: s.thumbnail !== null,
  };
}

function requireSnapshot(tree: SnapshotTree, ref: string, vmName: string): SnapshotRecord {
  const s = findSnapshot(tree, ref);
  if (!s || s.state !== 'complete') {
    const names = tree.snapshots.filter((x) => x.state === 'complete').map((x) => `"${x.name}"`);
    throw new VivariumError(
      ErrorCode.NotFound,
      `"${vmName}" has no snapshot named or with id "${ref}".${names.length ? ` Its snapshots: ${names.slice(0, 10).join(', ')}.` : ' It has no snapshots.'}`,
      { snapshot: ref },
    );
  }
  return s;
}

/**
 * Refuses to save the memory of a running VM that has shared folders: QEMU's 9p device (virtio-9p)
 * adds a migration blocker while its export is mounted in the guest ("Migration is disabled when
 * VirtFS export path … is mounted", hw/9pfs/9p.c), and both a live snapshot (snapshot-save) and a
 * suspend (migrate) are migrations. A sandbox mounts its shares at boot, so this is known before
 * trying. @throws VivariumError invalid-state naming the shares and what works instead.
 */
export function assertNoShares(entry: OkEntry, what: 'snapshot' | 'suspend'): void {
  const shares = entry.config.shares ?? [];
  if (shares.length === 0) return;
  const n = entry.config.name;
  const list = shares.map((s) => `${s.hostPath} (tag ${s.tag})`).join(', ');
  const why = `"${n}" has ${shares.length === 1 ? 'a shared folder' : 'shared folders'} (${list}), and QEMU cannot save the memory of a running VM whose shared folders are mounted in the guest.`;
  const ways =
    what === 'snapshot'
      ? `Shut "${n}" down and take the snapshot then (a snapshot of a shut-down VM holds its disks), or remove the shared folders from the VM first.`
      : `Shut "${n}" down instead, or remove the shared folders from the VM first.`;
  throw errors.state(`${why} ${ways}`, { vm: n, shares: shares.map((s) => s.tag) });
}

/** A snapshot name by the contract's rule (SnapshotName: trimmed, not blank, visible characters),
 *  also for callers inside the engine. @throws VivariumError invalid-argument saying which rule */
function checkedName(raw: string): string {
  const r = SnapshotName.safeParse(raw);
  if (!r.success) throw errors.invalid(`Invalid snapshot name: ${r.error.issues[0]?.message ?? 'not allowed'}. Choose another name.`, { snapshot: raw }, { field: 'name' });
  return r.data;
}

/** Refuses a name another snapshot of the VM has, or that is another snapshot's id (a reference by
 *  it would mean that one). @throws VivariumError already-exists */
function assertNameFree(tree: SnapshotTree, name: string, self: string | null, vmName: string): void {
  const byId = tree.snapshots.find((s) => s.id !== self && s.id === name);
  if (byId) {
    throw new VivariumError(ErrorCode.AlreadyExists, `"${name}" is the id of snapshot "${byId.name}" of "${vmName}", so it cannot name another snapshot. Choose another name.`, { snapshot: name }, { field: 'name' });
  }
  const clash = tree.snapshots.find((s) => s.id !== self && s.name === name);
  if (clash) {
    throw new VivariumError(ErrorCode.AlreadyExists, `"${vmName}" already has a snapshot named "${name}". Choose another name.`, { snapshot: name }, { field: 'name' });
  }
}
