/**
 * The QEMU driver: runs a VM as a detached qemu-system process (qemu/process.ts), talks to it through
 * the typed monitor (qemu/monitor.ts) — one QMP connection per VM per engine, since QEMU serves one
 * QMP client at a time — and stops it with the data-driven ladder (stop-ladder.ts).
 *
 * It reads and writes runtime records (runtime/) and tells the layer above about changes only through
 * `onDidChange`.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { ErrorCode, errors, VivariumError } from '../../../common/errors';
import type { HostCapabilities } from '../../../common/models/host';
import { assertNoForeignDisks } from '../../disks/foreign-files';
import { preflightDisks } from '../../disks/preflight';
import { BundleStore } from '../../bundles/bundle-store';
import { QemuImg } from '../../disks/qemu-img';
import { ensureUefiVars } from '../../disks/uefi-vars';
import { Emitter } from '../../emitter';
import { resetSerialLog } from '../../logs/serial-log';
import type { Layout, VmRuntimePaths } from '../../paths';
import { buildQemuArgs, uefiFirmwareFor } from '../../qemu/argv';
import { QemuMonitor, type Monitor } from '../../qemu/monitor';
import { launchQemu, sleep, waitForExit } from '../../qemu/process';
import { isQmpLost, QmpClient } from '../../qemu/qmp';
import type { EventLog } from '../../runtime/event-log';
import {
  clearRuntimeAsync,
  isQemuFor,
  processState,
  scanQemuProcesses,
  writeRecordAsync,
  writeStopRequest,
  type RuntimeRecord,
} from '../../runtime/records';
import type { RunStates } from '../../runtime/run-state';
import { acquireStartLockAsync } from '../../runtime/start-lock';
import type {
  DriverEvent,
  DriverStartOptions,
  DriverStopOptions,
  DriverVm,
  KeySender,
  LiveStatus,
  Screenshotter,
  SnapshotPlan,
  SnapshotProgress,
  Snapshotter,
  Suspender,
  ImageSnapshot,
  StopOutcome,
  VmDriver,
} from '../driver';
import { QemuSnapshotter } from './snapshotter';
import { resumePlan, suspendVm } from './suspender';
import { withSshForward } from '../../sandbox/ssh-forward';
import { agentShutdown } from '../../sandbox/agent-shutdown';
import { startSideProcesses, stopSideProcesses, transientFiles, writeGeneratedFiles, type StartedSide } from './side-processes';
import { nameVmHoldingPort } from './port-holder';
import { assertMediaPresentAsync, assertSocketPathsFit, withDirectIoWhereSupportedAsync, withMissingCdsEmptiedAsync } from './start-checks';
import { planStop, runStopLadder, type LadderPort, type StopCause } from './stop-ladder';

export interface QemuDriverDeps {
  readonly layout: Layout;
  readonly host: () => Promise<HostCapabilities>;
  readonly runStates: RunStates;
  readonly events: EventLog;
  readonly log?: (line: string) => void;
}

/** How long a monitor connection may take before QEMU counts as not answering. */
const MONITOR_CONNECT_MS = 3_000;
/** How long a quick monitor command (query-status, system_powerdown) may take before the stop ladder
 *  counts QEMU as not answering. */
const LIVENESS_MS = 2_000;

/** How long a resume watches for QEMU pausing again (a write error that persists), and how often. */
const RESUME_SETTLE_MS = 600;
const RESUME_POLL_MS = 100;
/** Free space under which a disk's file system counts as full for the io-error sentence. */
const FULL_BELOW_BYTES = 64 * 1024 * 1024;

/**
 * Why a VM paused with io-error, as the rest of a sentence: the first file system holding one of its
 * writable disk images that is (nearly) full — "the disk holding /mnt/vms/data.raw is still full (0 MB
 * free). Free some space there, then resume it." — or a general sentence when none is.
 */
export async function ioErrorCause(layout: Pick<Layout, 'bundle'>, vm: DriverVm): Promise<string> {
  const bundle = layout.bundle(vm.id);
  for (const d of vm.config.disks) {
    if (d.readOnly) continue;
    const file = 'bundle' in d.source ? bundle.file(d.source.bundle) : d.source.path;
    const fsInfo = await fsp.statfs(file).catch(() => null);
    if (!fsInfo) continue;
    const free = fsInfo.bavail * fsInfo.bsize;
    if (free < FULL_BELOW_BYTES) {
      return `a disk write still fails because the disk holding ${file} is still full (${Math.floor(free / 1024 / 1024)} MB free). Free some space there, then resume it.`;
    }
  }
  return 'a disk write still fails (QEMU reports an I/O error). Check the storage of its disk images (its qemu.log may say more), then resume it.';
}

/** "(pid N) is not responding: …" — with the kernel's word when the process is stopped. */
export function notRespondingWhy(pid: number, otherwise: string): string {
  const state = processState(pid);
  return state === 'T' || state === 't'
    ? `(pid ${pid}) is not responding: its process is stopped (SIGSTOP)`
    : `(pid ${pid}) is not responding: it ${otherwise}`;
}

/** The data of an error for a QEMU that does not answer its monitor. */
interface NotResponding {
  readonly notResponding: true;
  /** A clause: "is not responding (its process is stopped …)". */
  readonly why: string;
}

function notRespondingOf(e: unknown): NotResponding | null {
  if (!(e instanceof VivariumError)) return null;
  const d = e.data as Partial<NotResponding> | undefined;
  return d?.notResponding === true && typeof d.why === 'string' ? (d as NotResponding) : null;
}

export class QemuDriver implements VmDriver, Screenshotter, KeySender, Snapshotter, Suspender {
  readonly name = 'qemu';
  private readonly monitors = new Map<string, Promise<Monitor>>();
  private readonly emitter = new Emitter<DriverEvent>();
  readonly onDidChange = this.emitter.event;
  /** VMs whose QEMU main loop is held by a snapshot job of this driver (snapshot-save/-load/-delete
   *  run in QEMU's main loop, so its monitor answers nothing until they end), with the job as a
   *  clause ("a snapshot was being saved"). A Force Off of such a VM does not wait on the monitor. */
  private readonly busyMonitors = new Map<string, string>();

  constructor(private readonly deps: QemuDriverDeps) {}

  async commandLine(vm: DriverVm): Promise<readonly string[]> {
    const paths = this.deps.layout.paths(vm.id);
    const caps = await withDirectIoWhereSupportedAsync(await this.deps.host(), vm.config, paths.bundle.file.bind(paths.bundle));
    const plan = buildQemuArgs(vm.config, caps, paths);
    return [plan.binary, ...plan.args];
  }

  async start(vm: DriverVm, options: DriverStartOptions): Promise<RuntimeRecord> {
    const paths = this.deps.layout.paths(vm.id);
    assertSocketPathsFit(paths.runtime);
    // What does not depend on each other, at once (each is file system round trips on the thread
    // pool; one after another they were ~8 ms of every start, issue 7): the config as this start
    // uses it — a cloud-init sandbox gets a free loopback port forwarded to its sshd
    // (sandbox/ssh-forward.ts), an ISO deleted since (the installer, once installed) starts its
    // drive empty, with a notice —, the host probe, the runtime folder, and the QEMUs that run.
    const [{ config, notices: cdNotices }, host, , live] = await Promise.all([
      withSshForward(vm.config).then(withMissingCdsEmptiedAsync),
      this.deps.host(),
      this.deps.layout.ensureRuntimeDirAsync(paths.runtime.dir),
      scanQemuProcesses(),
    ]);
    const caps = await withDirectIoWhereSupportedAsync(host, config, paths.bundle.file.bind(paths.bundle));
    const plan = buildQemuArgs(config, caps, paths, { startPaused: options.paused === true });
    await assertMediaPresentAsync(config);
    const release = await acquireStartLockAsync(paths.runtime, config.name);
    try {
      this.emitter.fire({ kind: 'changed', id: vm.id });
      const rs = await this.deps.runStates.getLockedAsync({ id: vm.id, name: config.name }, live);
      if (rs.state !== 'stopped') {
        const pid = 'record' in rs ? ` (pid ${rs.record.pid})` : '';
        throw errors.state(`"${config.name}" is already ${rs.state}${pid}. Stop it first or open its console.`);
      }
      await clearRuntimeAsync(paths.runtime);
      // Re-check what create checked, rebuild what Vivarium generated, start the serial log afresh
      // (disks/preflight.ts, disks/uefi-vars.ts, logs/serial-log.ts).
      const qemuImg = new QemuImg(caps.qemuImg);
      const uefiNotice = await ensureUefiVars(config, paths.bundle, uefiFirmwareFor(config, caps), qemuImg);
      if (uefiNotice) {
        this.deps.events.append(vm.id, uefiNotice.message);
        options.notice?.(uefiNotice.message);
      }
      await assertNoForeignDisks(config, this.deps.layout.bundlesDir, () => new BundleStore(this.deps.layout).listAsync());
      await preflightDisks(config, paths.bundle, qemuImg);
      for (const w of [...cdNotices, ...plan.warnings]) {
        this.deps.events.append(vm.id, `warning: ${w}`);
        options.notice?.(w);
      }
      // A suspended VM resumes from its saved state (./suspender.ts): checked before anything runs.
      const resume = await resumePlan(this.deps.layout, vm, [plan.binary, ...plan.args]);
      // A resume is the same boot, so its console output goes on after what the guest printed before
      // the suspend (tester-s6 #18); every other start begins a new boot and a new log.
      if (!resume) await resetSerialLog(paths.bundle.serialLog);
      let launched;
      let sides: StartedSide[] = [];
      try {
        // The plan's files and helpers (swtpm, virtiofsd…) come first; the supervisor ends the
        // helpers and removes transient files when QEMU exits (side-processes.ts, qemu/process.ts).
        await writeGeneratedFiles(plan.generatedFiles);
        sides = await startSideProcesses(plan.sideProcesses, paths.runtime.dir);
        for (const side of sides) this.deps.events.append(vm.id, `started ${side.name}, pid ${side.pid}`);
        launched = await launchQemu({
          binary: plan.binary,
          args: resume ? resume.launchArgs(plan.args) : plan.args,
          runtime: paths.runtime,
          logFile: paths.bundle.qemuLog,
          qemuWrites: [paths.bundle.serialLog],
          timeoutMs: Math.min(options.timeoutMs, 60_000),
          sides,
          transientFiles: transientFiles(plan.generatedFiles),
        });
      } catch (caught) {
        await stopSideProcesses(sides);
        const e = await nameVmHoldingPort(this.deps.layout, vm.id, config.name, caught); // a port another VM forwards: name it
        await this.deps.runStates.recordFailedStartAsync(vm.id, e instanceof Error ? e.message : String(e));
        throw e;
      }
      let rec: RuntimeRecord = {
        pid: launched.pid,
        supervisorPid: launched.supervisorPid,
        id: vm.id,
        startedAt: new Date().toISOString(),
        accel: plan.accel,
        argv: [plan.binary, ...plan.args],
        status: 'running',
        pausedReason: null,
        stopping: null,
      };
      await writeRecordAsync(paths.runtime, rec);
      if (resume) {
        try {
          const resumed = await resume.complete(async () => new QemuMonitor(await this.qmpFor(vm.id)));
          if (resumed.paused) {
            // Suspended while paused: it comes back paused, as the person left it.
            rec = { ...rec, status: 'paused', pausedReason: 'paused' };
            await writeRecordAsync(paths.runtime, rec);
            options.notice?.(`"${config.name}" was paused when it was suspended, so it is back paused; resume it to run on.`);
          }
        } catch (e) {
          try {
            process.kill(rec.pid, 'SIGKILL');
          } catch {
            // gone already: a failed incoming migration ends QEMU
          }
          throw e;
        }
        this.deps.events.append(vm.id, `resumed from the state saved by a suspend${rec.status === 'paused' ? ' (paused, as it was when suspended)' : ''}`);
      }
      this.deps.events.append(vm.id, `started, pid ${rec.pid}, accel ${rec.accel}`);
      return rec;
    } finally {
      await release();
    }
  }

  async stop(vm: DriverVm, record: RuntimeRecord, options: DriverStopOptions): Promise<StopOutcome> {
    const { id } = vm;
    const { pid } = record;
    const rt = this.deps.layout.runtime(id);
    let cause: StopCause = options.force ? { kind: 'force' } : record.status === 'paused' ? { kind: 'paused' } : { kind: 'asked' };
    const busy = this.busyMonitors.get(id);
    if (options.force && busy !== undefined) return this.killBusy(vm, record, busy);
    let monitor: Monitor | null = null;
    try {
      monitor = await this.monitor(id, pid);
    } catch (e) {
      const nr = notRespondingOf(e);
      if (!options.force && !nr && e instanceof VivariumError && e.code === ErrorCode.Busy) {
        // Another program holding the VM's one QMP connection must not turn a polite shutdown into
        // a kill: say so, and let the person retry or force it.
        throw errors.busy(`${e.message} Or force "${vm.config.name}" off without asking the guest.`, undefined, { remedy: { kind: 'force-stop', vm: vm.config.name } });
      }
      const why = nr?.why ?? (e instanceof Error ? `could not be reached (${e.message})` : 'could not be reached');
      this.deps.events.append(id, `stop: QEMU ${why}; going on to signals`);
      if (!options.force) cause = { kind: 'unreachable', why };
    }
    if (monitor && !monitor.closed) {
      // A monitor held from before may belong to a QEMU that stopped answering since (kill -STOP):
      // ask once, briefly, so the ladder does not spend each rung's full command timeout on it.
      // The record may also not know that another client paused it: a paused guest cannot answer.
      try {
        const st = await withTimeout(monitor.queryStatus(), LIVENESS_MS);
        if (cause.kind === 'asked' && !st.running) cause = { kind: 'paused' };
      } catch {
        const why = notRespondingWhy(pid, `did not answer its monitor within ${LIVENESS_MS / 1000} s`);
        this.deps.events.append(id, `stop: QEMU ${why}; going on to signals`);
        monitor = null;
        if (!options.force) cause = { kind: 'unreachable', why };
      }
    }
    if (cause.kind === 'paused') this.deps.events.append(id, 'stop: the VM is paused, so the guest cannot answer an ACPI request; quitting QEMU');
    const mon = monitor;
    let quitSent = false;
    const port: LadderPort = {
      powerdown: async () => {
        if (!mon) throw new Error('no monitor');
        await withTimeout(mon.systemPowerdown(), LIVENESS_MS);
      },
      // Issue 11: a guest that ignores the power button is asked through its agent (sandbox/agent-shutdown.ts).
      agentShutdown: () => agentShutdown(rt.qga),
      quit: async (ms) => {
        quitSent = false;
        if (!mon || mon.closed) throw new Error("QEMU's monitor is not connected");
        quitSent = true;
        await mon.quit({ timeoutMs: ms });
      },
      quitReachedQemu: () => quitSent,
      signal: (sig) => process.kill(pid, sig),
      waitForExit: (ms) => waitForExit(pid, id, ms),
      now: Date.now,
      enter: (rung, progress, forcefulMessage) => {
        this.deps.runStates.update(id, pid, { status: 'stopping', stopping: progress });
        const message = forcefulMessage ?? 'The guest shut down when asked (ACPI power button).';
        try {
          writeStopRequest(rt, { by: process.pid, rung: rung.name, message });
        } catch (e) {
          this.deps.log?.(`[${id.slice(0, 8)}] could not record the stop request: ${(e as Error).message}`);
        }
        this.emitter.fire({ kind: 'changed', id });
      },
      log: (line) => this.deps.events.append(id, line),
    };
    const outcome = await runStopLadder(planStop({ force: options.force, paused: cause.kind === 'paused', timeoutSec: options.timeoutSec, agent: true }), cause, port);
    this.forget(id);
    if (!outcome.exited) throw errors.qemu(`QEMU (pid ${pid}) survived SIGKILL. Check the process with your system tools.`);
    // Give the supervising shell a moment to record the exit status.
    await waitForFile(rt.exitStatus, 2_000);
    return { message: outcome.message, rung: outcome.rung, escalated: outcome.escalated };
  }

  /**
   * Force Off of a VM whose QEMU is inside a snapshot job (busyMonitors): its main loop runs the job,
   * so neither the monitor (QMP quit) nor SIGTERM would act before the job ends (seconds for a large
   * guest). It is killed at once; the snapshot service then keeps a snapshot every image holds and
   * removes one that some hold (complete or absent, issue 10).
   */
  private async killBusy(vm: DriverVm, record: RuntimeRecord, busy: string): Promise<StopOutcome> {
    const { id } = vm;
    const rt = this.deps.layout.runtime(id);
    const message = `Forced off by Vivarium while ${busy}; QEMU was busy with it, so it was ended at once.`;
    this.deps.events.append(id, `stop: forced off while ${busy}; QEMU's monitor is busy with it, so sending SIGKILL`);
    const startedAt = new Date().toISOString();
    this.deps.runStates.update(id, record.pid, { status: 'stopping', stopping: { startedAt, deadline: null, rung: 'SIGKILL' } });
    try {
      writeStopRequest(rt, { by: process.pid, rung: 'SIGKILL', message });
    } catch (e) {
      this.deps.log?.(`[${id.slice(0, 8)}] could not record the stop request: ${(e as Error).message}`);
    }
    this.emitter.fire({ kind: 'changed', id });
    try {
      process.kill(record.pid, 'SIGKILL');
    } catch {
      // gone already
    }
    const exited = await waitForExit(record.pid, id, 5_000);
    this.forget(id);
    if (!exited) throw errors.qemu(`QEMU (pid ${record.pid}) survived SIGKILL. Check the process with your system tools.`);
    await waitForFile(rt.exitStatus, 2_000);
    return { message, rung: 'SIGKILL', escalated: true };
  }

  /** Runs `fn`, a snapshot job that holds a running VM's QEMU main loop, marked in busyMonitors. */
  private async holdingMonitor<T>(id: string, record: RuntimeRecord | null, doing: string, fn: () => Promise<T>): Promise<T> {
    if (record === null) return fn();
    this.busyMonitors.set(id, doing);
    try {
      return await fn();
    } finally {
      if (this.busyMonitors.get(id) === doing) this.busyMonitors.delete(id);
    }
  }

  async pause(vm: DriverVm, record: RuntimeRecord): Promise<void> {
    await whileRunning(vm, 'it was being paused', async () => (await this.monitor(vm.id, record.pid)).stop());
    this.deps.runStates.update(vm.id, record.pid, { status: 'paused', pausedReason: 'paused' });
  }

  async resume(vm: DriverVm, record: RuntimeRecord): Promise<void> {
    const monitor = await this.monitor(vm.id, record.pid);
    await whileRunning(vm, 'it was being resumed', () => monitor.cont());
    this.deps.runStates.update(vm.id, record.pid, { status: 'running', pausedReason: null });
    // QEMU retries the failed writes at once on `cont`: when their cause remains (a full disk with
    // werror=enospc/stop), it pauses again within milliseconds. Look briefly, and say so.
    for (let waited = 0; waited < RESUME_SETTLE_MS; waited += RESUME_POLL_MS) {
      await sleep(RESUME_POLL_MS);
      const st = await withTimeout(monitor.queryStatus(), LIVENESS_MS).catch(() => null);
      if (st === null || st.running) continue;
      this.deps.runStates.update(vm.id, record.pid, { status: 'paused', pausedReason: st.status });
      this.emitter.fire({ kind: 'changed', id: vm.id });
      if (st.status !== 'io-error') return; // paused by someone else meanwhile: that is its state now
      throw errors.state(`"${vm.config.name}" paused again at once: ${await ioErrorCause(this.deps.layout, vm)}`, { pausedReason: st.status });
    }
  }

  async reset(vm: DriverVm, record: RuntimeRecord): Promise<void> {
    await whileRunning(vm, 'it was being reset', async () => (await this.monitor(vm.id, record.pid)).systemReset());
  }

  async liveStatus(vm: DriverVm, record: RuntimeRecord, timeoutMs: number): Promise<LiveStatus> {
    let live: LiveStatus;
    try {
      const monitor = await this.monitor(vm.id, record.pid, timeoutMs);
      const st = await withTimeout(monitor.queryStatus(), timeoutMs);
      live = st.running ? { kind: 'running' } : { kind: 'paused', reason: st.status };
    } catch (e) {
      const nr = notRespondingOf(e);
      if (nr) return { kind: 'not-responding', why: nr.why };
      return { kind: 'unknown', why: e instanceof Error ? e.message : String(e) };
    }
    if (record.status !== 'stopping') this.syncRecord(vm.id, record, live);
    return live;
  }

  async sendKeys(vm: DriverVm, record: RuntimeRecord, qcodes: readonly string[]): Promise<void> {
    await whileRunning(vm, 'keys were being sent to it', async () => (await this.monitor(vm.id, record.pid)).sendKey(qcodes));
  }

  async screenshot(vm: DriverVm, record: RuntimeRecord): Promise<{ readonly png: Buffer; readonly width: number; readonly height: number }> {
    const rt = this.deps.layout.runtime(vm.id);
    const file = `${rt.dir}/screen-${randomBytes(4).toString('hex')}.png`;
    try {
      await whileRunning(vm, 'its screen was being captured', async () => (await this.monitor(vm.id, record.pid)).screendump(file));
      const png = await fsp.readFile(file);
      if (png.length < 24 || png.readUInt32BE(0) !== 0x89504e47) throw errors.qemu('QEMU wrote an invalid screenshot.');
      return { png, width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  // ---- snapshots (./snapshotter.ts) --------------------------------------------------------------

  private snapshotterImpl: QemuSnapshotter | null = null;
  private get snapshotter(): QemuSnapshotter {
    this.snapshotterImpl ??= new QemuSnapshotter({
      layout: this.deps.layout,
      qemuImg: async () => (await this.deps.host()).qemuImg,
      monitor: async (id) => new QemuMonitor(await this.qmpFor(id)),
    });
    return this.snapshotterImpl;
  }

  snapshotPlan(vm: DriverVm): SnapshotPlan {
    return this.snapshotter.plan(vm);
  }

  saveSnapshot(vm: DriverVm, record: RuntimeRecord | null, tag: string, progress?: SnapshotProgress): Promise<void> {
    return this.holdingMonitor(vm.id, record, 'a snapshot was being saved', () => this.snapshotter.save(vm, record, tag, progress));
  }

  loadSnapshot(vm: DriverVm, record: RuntimeRecord | null, tag: string, progress?: SnapshotProgress): Promise<void> {
    return this.holdingMonitor(vm.id, record, 'it was being reverted to a snapshot', () => this.snapshotter.load(vm, record, tag, progress));
  }

  deleteSnapshot(vm: DriverVm, record: RuntimeRecord | null, tag: string): Promise<void> {
    return this.holdingMonitor(vm.id, record, 'a snapshot was being deleted', () => this.snapshotter.delete(vm, record, tag));
  }

  imageSnapshots(vm: DriverVm, record?: RuntimeRecord | null): Promise<ReadonlyMap<string, readonly ImageSnapshot[]>> {
    return this.snapshotter.imageSnapshots(vm, record ?? null);
  }

  /** Suspend to disk (./suspender.ts): the state into the bundle, then QEMU ends. */
  async suspend(vm: DriverVm, record: RuntimeRecord, progress?: SnapshotProgress): Promise<void> {
    await suspendVm(
      { layout: this.deps.layout, monitor: async (id) => new QemuMonitor(await this.qmpFor(id)), waitForExit: (pid, id, ms) => waitForExit(pid, id, ms) },
      vm,
      record,
      progress,
    );
    this.forget(vm.id);
  }

  /** The engine's QMP connection to a running VM, for services that must not open a second one. */
  async qmpFor(id: string): Promise<QmpClient> {
    const m = await this.monitor(id, null);
    return (m as QemuMonitor).client;
  }

  watch(id: string): void {
    this.monitor(id, null).catch((e: unknown) => {
      this.deps.log?.(`could not attach to VM ${id}: ${(e as Error).message}`);
    });
  }

  /** Whether this driver holds (or is opening) a monitor connection to VM `id`. */
  holds(id: string): boolean {
    return this.monitors.has(id);
  }

  forget(id: string): void {
    const p = this.monitors.get(id);
    this.monitors.delete(id);
    p?.then((m) => m.close()).catch(() => undefined);
  }

  dispose(): void {
    for (const id of [...this.monitors.keys()]) this.forget(id);
    this.emitter.dispose();
  }

  // ---- the monitor pool ------------------------------------------------------------------------

  /**
   * One monitor per VM per engine; QEMU allows only one QMP client at a time. Checks the VM's
   * identity (query-uuid) and tells a QEMU that does not answer from one whose monitor another
   * program holds.
   * @param pid QEMU's pid when known (for the not-responding diagnosis).
   */
  private monitor(id: string, pid: number | null, timeoutMs = MONITOR_CONNECT_MS): Promise<Monitor> {
    const existing = this.monitors.get(id);
    if (existing) return existing;
    const rt = this.deps.layout.runtime(id);
    const p: Promise<Monitor> = QmpClient.connect(rt.qmp, { timeoutMs })
      .catch(async (e: unknown) => {
        throw await this.explainUnreachable(e, id, pid, rt);
      })
      .then(async (client) => {
        const monitor = new QemuMonitor(client);
        let uuid: string;
        try {
          // Within the connection's own time: a QEMU stopped (kill -STOP) right after it greeted
          // must not hold every caller of this pool for the command timeout.
          uuid = await withTimeout(monitor.queryUuid(), timeoutMs);
        } catch (e) {
          // Never left open: QEMU serves one QMP client, so a connection abandoned here would hold
          // its monitor for good once it answers again, and every later connection (this engine's
          // too) would be refused as "another program is connected".
          monitor.close();
          throw this.explainSilent(e, id, pid, timeoutMs);
        }
        if (uuid !== id) {
          monitor.close();
          throw errors.state(`The control socket of VM ${id} belongs to another VM (${uuid}).`);
        }
        monitor.onClose(() => {
          if (this.monitors.get(id) === p) this.monitors.delete(id);
          this.emitter.fire({ kind: 'changed', id });
        });
        monitor.onEvent((e) => {
          if (e.event === 'STOP' || e.event === 'RESUME') void this.onRunStateEvent(id, monitor);
        });
        return monitor;
      });
    this.monitors.set(id, p);
    p.catch(() => {
      if (this.monitors.get(id) === p) this.monitors.delete(id);
    });
    return p;
  }

  /** QEMU paused or resumed (by us, another client, an I/O error, a guest panic): record why. */
  private async onRunStateEvent(id: string, monitor: Monitor): Promise<void> {
    const rec = this.deps.runStates.currentRecord(id);
    if (!rec || rec.status === 'stopping') return;
    const st = await monitor.queryStatus().catch(() => null);
    if (!st) return;
    this.syncRecord(id, rec, st.running ? { kind: 'running' } : { kind: 'paused', reason: st.status });
  }

  private syncRecord(id: string, rec: RuntimeRecord, live: LiveStatus): void {
    if (live.kind !== 'running' && live.kind !== 'paused') return;
    const status = live.kind;
    const pausedReason = live.kind === 'paused' ? live.reason : null;
    if (rec.status === status && (rec.pausedReason ?? null) === pausedReason) return;
    if (this.deps.runStates.update(id, rec.pid, { status, pausedReason })) {
      this.deps.events.append(id, live.kind === 'paused' ? `paused (QEMU says: ${live.reason})` : 'running again');
      this.emitter.fire({ kind: 'changed', id });
    }
  }

  /** A monitor that greeted, then did not answer within `timeoutMs`: a QEMU not responding (said
   *  as the stop ladder's liveness check says it), so a stop goes on to the signals with that cause. */
  private explainSilent(e: unknown, id: string, pid: number | null, timeoutMs: number): unknown {
    const qemuPid = pid ?? this.deps.runStates.currentRecord(id)?.pid ?? null;
    if (qemuPid === null || !(e instanceof VivariumError) || e.code !== ErrorCode.Timeout) return e;
    const why = notRespondingWhy(qemuPid, `did not answer its monitor within ${timeoutMs / 1000} s`);
    return errors.timeout(`QEMU ${why}.`, { notResponding: true, why });
  }

  private async explainUnreachable(e: unknown, id: string, pid: number | null, rt: VmRuntimePaths): Promise<unknown> {
    if (!(e instanceof VivariumError)) return e;
    const qemuPid = pid ?? this.deps.runStates.currentRecord(id)?.pid ?? null;
    const cause = (e.data as { cause?: string } | undefined)?.cause;
    if (qemuPid !== null && cause === 'ENOENT' && isQemuFor(qemuPid, id)) {
      const why = `(pid ${qemuPid}) runs, but its control socket was removed`;
      return errors.state(`QEMU ${why}; Vivarium can only force it off.`, { notResponding: true, why });
    }
    if (e.code !== ErrorCode.Busy || qemuPid === null) return e;
    const state = processState(qemuPid);
    if (state === 'T' || state === 't' || (await qmpClientConnected(rt.qmp)) === false) {
      const why = notRespondingWhy(qemuPid, 'accepts no connection on its control socket');
      return errors.timeout(`QEMU ${why}.`, { notResponding: true, why });
    }
    return e;
  }
}

/**
 * Whether a client is connected to the unix socket at `socketPath` (Linux /proc/net/unix: an accepted
 * connection is listed with the listener's path in state 03 "connected"; one waiting in the backlog,
 * never accepted, is state 02). null when that cannot be known (not Linux).
 */
export async function qmpClientConnected(socketPath: string): Promise<boolean | null> {
  if (process.platform !== 'linux') return null;
  let table: string;
  try {
    table = await fsp.readFile('/proc/net/unix', 'utf8');
  } catch {
    return null;
  }
  return table.split('\n').some((line) => {
    const cols = line.trim().split(/\s+/);
    return cols.length >= 8 && cols.slice(7).join(' ') === socketPath && cols[5] === '03';
  });
}

/**
 * Runs `fn` (a monitor command); when QEMU went away under it (forced off, killed, crashed), QMP's
 * error (qmp.ts isQmpLost: "The action did not finish: QEMU shut down.") becomes a sentence:
 * '"web" stopped (forced off, or QEMU ended) while it was being paused.'
 */
async function whileRunning<T>(vm: DriverVm, doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isQmpLost(e)) {
      throw errors.state(`"${vm.config.name}" stopped (forced off, or QEMU ended) while ${doing}.`, { qemuEnded: true });
    }
    throw e;
  }
}

async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fsp.access(file);
      return;
    } catch {
      if (Date.now() >= deadline) return;
      await sleep(20);
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(errors.timeout(`QEMU did not answer within ${ms} ms.`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
