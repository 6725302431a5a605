/**
 * The VM service: the contract's `vms` facade. It resolves a reference (library/), runs the work as a
 * job (runtime/jobs.ts), hands it to the VM's driver (drivers/), and emits changes. The rooms below
 * never call it; they tell it about changes through their `onDidChange` events.
 *
 * Two ways to host it, same code:
 *  - short-lived (the CLI with no engine running): reads state from disk, acts, exits. VMs keep
 *    running; the next process finds them through the runtime folder.
 *  - long-lived (`vivarium serve`, the app): additionally `watch()`es — holds one monitor connection
 *    per running VM for events, and re-reads the library once a second so changes made by anyone show.
 *
 *   vm-service.ts          resolve · job · driver · emit
 *   drivers/qemu/          start, stop ladder, typed monitor           (drivers/driver.ts: interfaces)
 *   library/  runtime/     bundles, resolve, create/edit/delete  ·  records, start lock, run state,
 *                          exit classification, jobs, event log
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { CreatePreview, CreateVmSpec, DeleteOptions, EditVmSpec, StartOptions, StopOptions, VmService } from '../common/contract';
import { errors, VivariumError } from '../common/errors';
import type { VmConfig } from '../common/models/vm-config';
import type { HostCapabilities } from '../common/models/host';
import type { VmChange, VmDetails, VmInfo, VmState } from '../common/models/vm-state';
import { DEFAULTS, noticeText } from '../common/models/vm-settings';
import type { BundleEntry } from './bundles/bundle-store';
import { hasKeySender, hasScreenshotter, type DriverVm, type LiveStatus, type VmDriver } from './drivers/driver';
import { ioErrorCause, notRespondingWhy, QemuDriver } from './drivers/qemu/qemu-driver';
import { discardSuspendedState } from './drivers/qemu/suspender';
import { Emitter } from './emitter';
import { createVm, planCreate } from './library/create';
import { deleteVm } from './library/delete';
import { editVm } from './library/edit';
import { byName, toVmInfo } from './library/info';
import { Library, requireOk, type OkEntry } from './library/library';
import { nameOf } from './library/resolve';
import type { Layout } from './paths';
import type { QmpClient } from './qemu/qmp';
import { compileSerialPattern, waitForSerial, type SerialPattern } from './runtime/serial-wait';
import { EventLog } from './runtime/event-log';
import { Jobs, JOBS, type JobName } from './runtime/jobs';
import { isQemuFor, processState, processStateAsync, scanQemuProcesses, type RuntimeRecord } from './runtime/records';
import { RunStates, type RunState } from './runtime/run-state';
import { SerialLogKeeper, readSerialLogTail } from './logs/serial-log';

export { DEFAULTS };

export interface VmServiceDeps {
  readonly layout: Layout;
  readonly host: () => Promise<HostCapabilities>;
  readonly log?: (line: string) => void;
}

/** How long `list` (short-lived hosts) asks each running QEMU for its real run state. */
const LIVE_STATUS_MS = 500;


/** Settings whose change never affects a running QEMU, so they may be edited while it runs. */
const RUNNING_EDITABLE: ReadonlySet<string> = new Set(['autostart', 'os']);
/** Settings a suspended VM may change: none is part of QEMU's command line (the name is not: QEMU
 *  knows the VM by its id, qemu/argv.ts identitySection), so the saved state still resumes. */
const SUSPENDED_EDITABLE: ReadonlySet<string> = new Set(['name', 'autostart', 'os']);
/** What each other setting of an edit is, in a sentence about a suspended VM. */
const SETTING_WORDS: Readonly<Record<string, string>> = {
  cpus: 'its number of CPUs',
  memoryMiB: 'its memory size',
  accel: 'its accelerator',
  firmware: 'its firmware',
  iso: 'its CD',
  kernel: 'its kernel',
  initrd: 'its initrd',
  append: 'its kernel command line',
  net: 'its network',
  forwards: 'its port forwards',
  display: 'its display',
  bootOrder: 'its boot order',
  bootMenu: 'its boot menu',
  tpm: 'its TPM',
  secureBoot: 'its Secure Boot setting',
};

/**
 * Refuses an edit of a suspended VM that would keep its saved state from resuming: QEMU loads a
 * saved state only into the machine it was saved from (drivers/qemu/suspender.ts compares the
 * command line). A setting given with the value it has already changes nothing and is let through.
 * @throws VivariumError invalid-state naming the settings and what can change now
 */
function assertSuspendedEditable(config: VmConfig, patch: EditVmSpec): void {
  const same = (k: string, v: unknown): boolean => v === (config as unknown as Record<string, unknown>)[k];
  const blocked = Object.entries(patch).filter(([k, v]) => v !== undefined && !SUSPENDED_EDITABLE.has(k) && !same(k, v)).map(([k]) => SETTING_WORDS[k] ?? k);
  if (blocked.length === 0) return;
  const what = blocked.length === 1 ? blocked[0]! : `${blocked.slice(0, -1).join(', ')} and ${blocked.at(-1)!}`;
  // The front ends add the remedy (start it): the sentence does not repeat it.
  throw errors.state(
    `"${config.name}" is suspended, and its saved state resumes only on the machine it was saved from: a change to ${what} would keep it from resuming. Its name, OS label and autostart can change now; other settings once it has resumed and been shut down.`,
    { settings: Object.keys(patch).filter((k) => !SUSPENDED_EDITABLE.has(k)) },
    { remedy: { kind: 'start-vm', vm: config.name } },
  );
}
export class LocalVmService implements VmService {
  readonly library: Library;
  readonly runStates: RunStates;
  readonly jobs = new Jobs();
  readonly events: EventLog;
  private readonly driver: QemuDriver;
  private readonly changes = new Emitter<VmChange>();
  readonly onDidChange = this.changes.event;
  private lastSeen = new Map<string, string>();
  /** Long-lived mode: every VM as of the watcher's last pass (or a later change), by id. */
  private lastInfos: Map<string, VmInfo> | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private watching = false;
  private readonly subscriptions: { dispose(): void }[] = [];
  /** serial.log of each running VM, as of the last refresh: kept bounded (logs/serial-log.ts). */
  private runningSerialLogs: readonly string[] = [];
  private readonly serialLogKeeper: SerialLogKeeper;

  constructor(private readonly deps: VmServiceDeps) {
    this.serialLogKeeper = new SerialLogKeeper(() => this.runningSerialLogs, { log: deps.log });
    this.library = new Library(deps.layout);
    this.events = new EventLog(deps.layout, deps.log);
    this.runStates = new RunStates({ layout: deps.layout, events: this.events, log: deps.log });
    this.driver = new QemuDriver({ layout: deps.layout, host: deps.host, runStates: this.runStates, events: this.events, log: deps.log });
    this.subscriptions.push(
      this.runStates.onDidChange((e) => {
        if (e.kind === 'exited') this.driver.forget(e.id);
        if (this.watching) this.emitSoon(e.id);
      }),
      this.driver.onDidChange((e) => {
        if (this.changes.size > 0) this.emitInfo(e.id);
      }),
    );
  }

  /** The bundle store (for tests and tools that read bundles directly). */
  get store(): Library['store'] {
    return this.library.store;
  }

  /** The driver that runs a VM. One today; a VM's config will choose once there are more. */
  driverFor(_vm: DriverVm): VmDriver {
    return this.driver;
  }

  // ---- queries ---------------------------------------------------------------------------------

  /** Every VM. A short-lived host also asks each running QEMU whether it is really running (another
   *  program may have paused it); a long-lived one hears that as events. A long-lived host also
   *  announces what this read finds changed (as its watcher would), so a client never holds a state
   *  that was not announced: a QEMU stopped (kill -STOP) and continued between two watcher passes
   *  would otherwise stay "not responding" in a window that listed it meanwhile, as its recovery is
   *  no change from what the watcher last announced. */
  async list(): Promise<readonly VmInfo[]> {
    const live = await scanQemuProcesses();
    const entries = await this.library.entriesAsync();
    const infos = await Promise.all(
      entries.map(async (e) => {
        const rs = await this.runStateAsync(e, live);
        if (!this.watching && e.ok && 'record' in rs && (rs.state === 'running' || rs.state === 'paused') && !this.driver.holds(e.id)) {
          const status = await this.driver.liveStatus(vmOf(e), rs.record, LIVE_STATUS_MS);
          return this.infoAfterProbe(e, status);
        }
        return this.infoOfAsync(e, rs);
      }),
    );
    if (this.watching) for (const info of infos) this.announceIfChanged(info);
    // No long-lived engine keeps serial logs bounded: a short-lived one trims them as it passes.
    if (!this.watching) await this.serialLogKeeper.pass(this.serialLogsOf(infos));
    return infos.sort(byName);
  }

  /** Every VM from the files alone (no process scan, no monitor): for callers that cannot wait.
   *  A long-lived engine answers from its watcher's last pass (at most a second old), without I/O. */
  listSync(): VmInfo[] {
    if (this.watching && this.lastInfos !== null) return [...this.lastInfos.values()].sort(byName);
    return this.library
      .entries()
      .map((e) => this.infoOf(e, this.runState(e)))
      .sort(byName);
  }

  async get(ref: string): Promise<VmDetails> {
    const entry = this.library.resolve(ref);
    const info = this.info(entry);
    let argv: readonly string[] | null = null;
    let error = info.error;
    const rs = this.runState(entry);
    if ('record' in rs) {
      argv = rs.record.argv;
    } else if (entry.ok) {
      try {
        argv = await this.driverFor(vmOf(entry)).commandLine(vmOf(entry));
      } catch (e) {
        if (!(e instanceof Error) || !('code' in e)) throw e;
        error = error ?? e.message;
      }
    }
    return { ...info, error, argv };
  }

  async serialLog(ref: string, options: { maxBytes?: number }): Promise<string> {
    const entry = this.library.resolve(ref);
    return readSerialLogTail(this.deps.layout.bundle(entry.id).serialLog, options.maxBytes ?? 1024 * 1024);
  }

  /** Resolves a reference to a bundle. @throws not-found, invalid-argument (ambiguous) */
  resolve(ref: string): BundleEntry {
    return this.library.resolve(ref);
  }

  // ---- library edits ---------------------------------------------------------------------------

  async create(spec: CreateVmSpec): Promise<VmInfo> {
    const { config, warnings } = await createVm({ library: this.library, host: this.deps.host }, spec);
    this.events.append(config.id, `created "${config.name}"`);
    const notices = [...warnings.map(noticeText), ...(await this.sharedDiskNotices(config))];
    for (const n of notices) this.events.append(config.id, `warning: ${n}`);
    return withNotices(this.emitInfo(config.id), notices);
  }

  /** `create` without the writing: the checks and the QEMU command line (vms.preview). */
  async preview(spec: CreateVmSpec): Promise<CreatePreview> {
    const { plan, warnings } = await planCreate({ library: this.library, host: this.deps.host }, spec);
    return { argv: [plan.binary, ...plan.args], accel: plan.accel, notices: warnings.map(noticeText) };
  }

  async edit(ref: string, patch: EditVmSpec): Promise<VmInfo> {
    const entry = this.library.resolveOk(ref);
    return this.job(entry, 'edit', async () => {
      // A suspended VM resumes only on the command line it was saved from (drivers/qemu/suspender.ts):
      // what is no part of it (its name, labels) may change.
      if (entry.config.suspended) assertSuspendedEditable(entry.config, patch);
      // Autostart and the OS label change nothing about a running QEMU: they may be edited any time.
      if (Object.keys(patch).some((k) => !RUNNING_EDITABLE.has(k))) this.assertStopped(entry, 'change its settings');
      const { warnings } = await editVm({ library: this.library, host: this.deps.host }, entry, patch);
      this.events.append(entry.id, `settings changed: ${Object.keys(patch).join(', ')}`);
      const notices = warnings.map(noticeText);
      for (const n of notices) this.events.append(entry.id, `warning: ${n}`);
      return withNotices(this.emitInfo(entry.id), notices);
    });
  }

  async delete(ref: string, options: DeleteOptions): Promise<{ readonly keptFiles: readonly string[]; readonly flattenedClones: readonly string[] }> {
    const entry = this.library.resolve(ref);
    return this.job(entry, 'delete', async () => {
      const { kept, flattened } = await deleteVm({ library: this.library, runStates: this.runStates, host: this.deps.host, events: this.events }, entry, options);
      this.driver.forget(entry.id);
      this.lastSeen.delete(entry.id);
      this.lastInfos?.delete(entry.id);
      this.jobs.afterJobs(entry.id, () => this.changes.fire({ kind: 'removed', id: entry.id }));
      return { keptFiles: kept, flattenedClones: flattened };
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  async start(ref: string, options: StartOptions): Promise<VmInfo> {
    const entry = this.library.resolveOk(ref);
    const pattern: SerialPattern | null = options.waitSerial === undefined ? null : compileSerialPattern(options.waitSerial);
    const timeoutMs = (options.timeoutSec ?? DEFAULTS.startTimeoutSec) * 1000;
    const startedAt = Date.now();
    const vm = vmOf(entry);
    const notices: string[] = [];
    const record = await this.job(entry, 'start', () => this.driverFor(vm).start(vm, { timeoutMs, notice: (n) => notices.push(n) })).catch(async (e: unknown) => {
      throw (await this.explainLockedImage(entry, e)) ?? e;
    });
    const info = this.emitInfo(entry.id);
    if (this.watching) this.driver.watch(entry.id);
    if (pattern) {
      await this.waitForSerialOrSayWhy(entry, vm, record, pattern, {
        file: this.deps.layout.bundle(entry.id).serialLog,
        pattern,
        timeoutMs: Math.max(1000, timeoutMs - (Date.now() - startedAt)),
        alive: () => isQemuFor(record.pid, entry.id),
        name: entry.config.name,
        lastExit: () => this.info(this.library.resolve(entry.id)).lastExit,
      });
    }
    return withNotices(this.info(this.library.resolve(entry.id)) ?? info, notices);
  }

  /** waitForSerial(), except that a wait that times out while QEMU has paused the VM over a disk
   *  write error (a full disk: serial.log cannot grow either) says that instead of "did not match". */
  private async waitForSerialOrSayWhy(entry: OkEntry, vm: DriverVm, record: RuntimeRecord, pattern: SerialPattern, w: Parameters<typeof waitForSerial>[0]): Promise<void> {
    try {
      await waitForSerial(w);
    } catch (e) {
      if (!(e instanceof VivariumError) || e.code !== 'timeout') throw e;
      const live = await this.driverFor(vm).liveStatus(vm, record, 1_000).catch(() => null);
      if (live?.kind !== 'paused' || live.reason !== 'io-error') throw e;
      throw errors.timeout(
        `"${entry.config.name}" did not print /${pattern.source}/ on its serial console because QEMU paused it: ${(await ioErrorCause(this.deps.layout, vm)).replace(/^a disk write still fails/, 'a disk write failed')}`,
        { pausedReason: live.reason },
      );
    }
  }

  /** Shut Down (the stop ladder from the ACPI power button) or, with force, Force Off (from QMP quit).
   *  Force Off runs even while another job (a shutdown, a snapshot save) is in progress. */
  async stop(ref: string, options: StopOptions): Promise<VmInfo> {
    const entry = this.library.resolveOk(ref);
    const force = options.force === true;
    return this.job(entry, force ? 'forceOff' : 'stop', async () => {
      const rs = this.runState(entry, await scanQemuProcesses());
      if (rs.state === 'stopped' && entry.config.suspended) {
        // Suspended: nothing runs. Force Off discards the saved state; a shutdown cannot do anything.
        if (!force) {
          throw errors.state(`"${entry.config.name}" is suspended: nothing runs, its state is saved on disk. Start it to resume it, or force it off to discard the saved state (the next start then boots afresh).`, undefined, { remedy: { kind: 'force-stop', vm: entry.config.name } });
        }
        await discardSuspendedState(this.deps.layout, vmOf(entry));
        this.events.append(entry.id, 'saved state discarded (Force Off of a suspended VM); the next start boots afresh');
        return this.emitInfo(entry.id);
      }
      if (rs.state === 'stopped') return this.info(entry);
      if (rs.state === 'starting') throw errors.busy(`"${entry.config.name}" is starting. Try again in a moment.`);
      const vm = vmOf(entry);
      await this.driverFor(vm).stop(vm, rs.record, { force, timeoutSec: options.timeoutSec ?? DEFAULTS.stopTimeoutSec });
      this.runState(entry); // reconciles: records lastExit (with the ladder's sentence), clears the runtime folder
      return this.emitInfo(entry.id);
    });
  }

  async pause(ref: string): Promise<VmInfo> {
    return this.transition(ref, 'pause', 'running', (d, vm, rec) => d.pause(vm, rec));
  }

  async resume(ref: string): Promise<VmInfo> {
    return this.transition(ref, 'resume', 'paused', (d, vm, rec) => d.resume(vm, rec));
  }

  async reset(ref: string): Promise<VmInfo> {
    return this.transition(ref, 'reset', null, (d, vm, rec) => d.reset(vm, rec));
  }

  async sendKeys(ref: string, keys: readonly string[]): Promise<void> {
    const entry = this.library.resolveOk(ref);
    const vm = vmOf(entry);
    const driver = this.driverFor(vm);
    if (!hasKeySender(driver)) throw errors.state(`"${entry.config.name}" cannot be sent keys by its ${driver.name} driver.`);
    await this.job(entry, 'sendKeys', async () => driver.sendKeys(vm, this.requireRunning(entry, 'send keys to it'), keys));
  }

  async screenshot(ref: string): Promise<{ readonly pngBase64: string; readonly width: number; readonly height: number }> {
    const entry = this.library.resolveOk(ref);
    if (entry.config.display === 'none') {
      throw errors.state(`"${entry.config.name}" has no display (it was created with --display none). Use its serial console.`);
    }
    const vm = vmOf(entry);
    const driver = this.driverFor(vm);
    if (!hasScreenshotter(driver)) throw errors.state(`"${entry.config.name}" cannot be captured by its ${driver.name} driver.`);
    return this.job(entry, 'screenshot', async () => {
      const shot = await driver.screenshot(vm, this.requireRunning(entry, 'take a screenshot'));
      return { pngBase64: shot.png.toString('base64'), width: shot.width, height: shot.height };
    });
  }

  /**
   * The engine's QMP connection to a running VM, for other services (stats) that must not open a
   * second one: QEMU serves one QMP client at a time. Do not close it; it lives as long as the VM.
   */
  qmpFor(id: string): Promise<QmpClient> {
    return this.driver.qmpFor(id);
  }

  // ---- long-lived mode -------------------------------------------------------------------------

  /** Re-reads the library once a second and holds the monitor of running VMs (events, crash detection). */
  watch(intervalMs = 1000): void {
    if (this.watching) return;
    this.watching = true;
    this.library.store.sweepStaging();
    let busy = false;
    const tick = () => {
      if (busy) return;
      busy = true;
      this.refresh()
        .catch((e: unknown) => this.deps.log?.(`refresh failed: ${(e as Error).message}`))
        .finally(() => (busy = false));
    };
    tick();
    this.watchTimer = setInterval(tick, intervalMs);
    this.watchTimer.unref?.();
    this.serialLogKeeper.start();
  }

  /** The serial.log files of the running (or paused) VMs among `infos`. */
  private serialLogsOf(infos: readonly VmInfo[]): string[] {
    return infos.filter((i) => i.state === 'running' || i.state === 'paused').map((i) => this.deps.layout.bundle(i.id).serialLog);
  }

  /** Re-reads the library and fires a change for every VM that differs from what was last announced. */
  async refresh(): Promise<void> {
    const live = await scanQemuProcesses();
    // Taken before the listing: a VM created while this pass reads (announced by create) is not
    // in the listing, and must not be announced as removed.
    const announced = new Set(this.lastSeen.keys());
    const listed = new Set<string>();
    const infos: VmInfo[] = [];
    for (const entry of await this.library.entriesAsync()) {
      const info = await this.infoOfAsync(entry, await this.runStateAsync(entry, live));
      infos.push(info);
      listed.add(info.id);
      this.announceIfChanged(info);
      if (this.watching && (info.state === 'running' || info.state === 'paused') && !this.driver.holds(info.id)) {
        this.driver.watch(info.id);
      }
    }
    for (const id of announced) {
      if (listed.has(id) || !this.lastSeen.has(id)) continue;
      this.lastSeen.delete(id);
      this.changes.fire({ kind: 'removed', id });
    }
    this.lastInfos = new Map(infos.map((i) => [i.id, i]));
    this.runningSerialLogs = this.serialLogsOf(infos);
  }

  dispose(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.serialLogKeeper.dispose();
    this.watching = false;
    for (const s of this.subscriptions) s.dispose();
    this.driver.dispose();
    this.runStates.dispose();
    this.changes.dispose();
  }

  // ---- internals -------------------------------------------------------------------------------

  /** Runs `fn` as job `name`. Its result is handed back only once no other job holds the VM either:
   *  a Shut Down that ends because a Force Off beside it killed QEMU must not tell the caller
   *  "stopped" (and so let it press Delete) while the Force Off is still finishing. */
  private async job<T>(entry: BundleEntry, name: JobName, fn: () => Promise<T>): Promise<T> {
    const result = await this.jobs.run(entry.id, nameOf(entry) ?? entry.id, name, fn);
    if (JOBS[name].kind !== 'query') await this.jobs.idle(entry.id);
    return result;
  }

  private async transition(
    ref: string,
    job: 'pause' | 'resume' | 'reset',
    from: 'running' | 'paused' | null,
    act: (d: VmDriver, vm: DriverVm, rec: RuntimeRecord) => Promise<void>,
  ): Promise<VmInfo> {
    const entry = this.library.resolveOk(ref);
    return this.job(entry, job, async () => {
      const rs = this.runState(entry);
      const vm = vmOf(entry);
      const driver = this.driverFor(vm);
      if (!('record' in rs) || (rs.state !== 'running' && rs.state !== 'paused')) {
        throw errors.state(`Cannot ${job} "${entry.config.name}": it is ${rs.state === 'stopped' && entry.config.suspended ? 'suspended (start it to resume it)' : rs.state}.`);
      }
      let state: VmState = rs.state;
      if (from !== null) {
        // Another program (or QEMU itself) may have paused or resumed it since the record was written.
        const live = await driver.liveStatus(vm, rs.record, 3_000);
        if (live.kind === 'not-responding') throw errors.state(`Cannot ${job} "${entry.config.name}": QEMU ${live.why}.`);
        if (live.kind === 'running' || live.kind === 'paused') state = live.kind;
        if (state !== from) throw errors.state(`Cannot ${job} "${entry.config.name}": it is ${state}.`);
      }
      await act(driver, vm, rs.record);
      this.events.append(entry.id, job);
      return this.emitInfo(entry.id);
    });
  }

  private runState(entry: BundleEntry, live?: ReadonlyMap<string, number>): RunState {
    return entry.ok ? this.runStates.get({ id: entry.id, name: entry.config.name }, live) : { state: 'stopped' };
  }

  private runStateAsync(entry: BundleEntry, live?: ReadonlyMap<string, number>): Promise<RunState> | RunState {
    return entry.ok ? this.runStates.getAsync({ id: entry.id, name: entry.config.name }, live) : { state: 'stopped' };
  }

  private async infoOfAsync(entry: BundleEntry, rs: RunState): Promise<VmInfo> {
    const pid = runningPid(rs);
    const error = pid === null ? null : stoppedError(pid, await processStateAsync(pid));
    return toVmInfo(entry, rs, await this.runStates.lastExitAsync(entry.id), error);
  }

  private info(entry: BundleEntry): VmInfo {
    return this.infoOf(entry, this.runState(entry));
  }

  private infoOf(entry: BundleEntry, rs: RunState): VmInfo {
    // The same error as infoOfAsync (one read of /proc, in memory): a change announced from here
    // (emitInfo) or an answer (get) must not drop the "not responding" a list shows.
    const pid = runningPid(rs);
    const error = pid === null ? null : stoppedError(pid, processState(pid));
    // The run state first: it may just have recorded an exit that lastExit must show.
    return toVmInfo(entry, rs, this.runStates.lastExit(entry.id), error);
  }

  /** Info after asking QEMU: its record was brought up to date by the probe. */
  private async infoAfterProbe(entry: OkEntry, status: LiveStatus): Promise<VmInfo> {
    const info = await this.infoOfAsync(entry, await this.runStateAsync(entry));
    if (status.kind === 'not-responding') return { ...info, error: `QEMU ${status.why}.` };
    return info;
  }

  /**
   * Announces `info` when it differs from what was last announced for its VM (lastSeen). The
   * comparison, the record and the event happen in one step, so lastSeen is always what listeners
   * last heard, whichever read (a watcher pass, a list, an action) found the change: a pass that
   * read a VM before a list announced a newer state only announces its older one again, and the
   * next pass corrects it. A resting state of a VM a job holds is announced when the job ends
   * (emitInfo), never midway: a listener acting on it (stopped, during Force Off) would be refused
   * as busy.
   */
  private announceIfChanged(info: VmInfo): void {
    if (heldAtRest(this.jobs, info)) return;
    const key = JSON.stringify(info);
    if (this.lastSeen.get(info.id) === key) return;
    this.lastSeen.set(info.id, key);
    this.lastInfos?.set(info.id, info);
    this.changes.fire({ kind: 'updated', vm: info });
  }

  /** The VM's info now, announced as a change. A resting state (stopped, running, paused…) reached
   *  while a job still holds the VM is announced once no job does (Jobs.afterJobs), with the info as
   *  it is then, so a listener acting on it (Delete after Force Off) is not refused as busy; progress
   *  (starting, stopping with the ladder's countdown) goes out at once. */
  private emitInfo(id: string): VmInfo {
    const info = this.info(this.library.resolve(id));
    if (!heldAtRest(this.jobs, info)) {
      this.lastSeen.set(id, JSON.stringify(info));
      this.lastInfos?.set(id, info);
      this.changes.fire({ kind: 'updated', vm: info });
      return info;
    }
    this.jobs.afterJobs(id, () => {
      let now: VmInfo;
      try {
        now = this.info(this.library.resolve(id));
      } catch {
        return; // deleted meanwhile
      }
      this.lastSeen.set(id, JSON.stringify(now));
      this.lastInfos?.set(id, now);
      this.changes.fire({ kind: 'updated', vm: now });
    });
    return info;
  }

  /** An exit noticed during a read: emit once the read is over (never re-enter it). */
  private emitSoon(id: string): void {
    setImmediate(() => {
      try {
        this.emitInfo(id);
      } catch {
        // deleted meanwhile
      }
    });
  }

  /** Other VMs of the library with a disk on the same image file as one of `config`'s (by path,
   *  then by the file itself: links and `..` do not hide a match), as [image, VM name] pairs. */
  private async sharingDisks(config: VmConfig): Promise<{ readonly image: string; readonly vm: string; readonly id: string }[]> {
    const mine = config.disks.flatMap((d) => ('path' in d.source ? [d.source.path] : []));
    if (mine.length === 0) return [];
    const real = async (p: string) => fsp.realpath(p).catch(() => path.resolve(p));
    const mineReal = new Map(await Promise.all(mine.map(async (p) => [await real(p), p] as const)));
    const found: { image: string; vm: string; id: string }[] = [];
    for (const e of await this.library.entriesAsync()) {
      if (!e.ok || e.id === config.id) continue;
      for (const d of e.config.disks) {
        if (!('path' in d.source) || d.readOnly) continue;
        const image = mineReal.get(await real(d.source.path));
        if (image !== undefined) found.push({ image, vm: e.config.name, id: e.id });
      }
    }
    return found;
  }

  /** Create's notice for a disk image another VM already uses (two VMs on one image: finding 9). */
  private async sharedDiskNotices(config: VmConfig): Promise<string[]> {
    return (await this.sharingDisks(config)).map(
      (s) => `The disk image ${s.image} is also a disk of "${s.vm}". Only one of the two can run at a time (two VMs writing one image would corrupt it): Vivarium refuses to start one while the other runs.`,
    );
  }

  /** A start QEMU refused because another program holds a disk image's write lock: when that
   *  program is another VM of the library, an error naming it (with "stop it" as the remedy). */
  private async explainLockedImage(entry: OkEntry, e: unknown): Promise<VivariumError | null> {
    if (!(e instanceof VivariumError)) return null;
    const locked = (e.data as { lockedImage?: unknown } | undefined)?.lockedImage;
    if (typeof locked !== 'string') return null;
    const live = await scanQemuProcesses();
    const lockedReal = await fsp.realpath(locked).catch(() => path.resolve(locked));
    for (const s of await this.sharingDisks(entry.config)) {
      if ((await fsp.realpath(s.image).catch(() => path.resolve(s.image))) !== lockedReal) continue;
      const other = (await this.library.entriesAsync()).find((x) => x.id === s.id);
      if (!other) continue;
      const rs = this.runState(other, live);
      if (rs.state === 'stopped') continue;
      return errors.state(
        `"${entry.config.name}" cannot start: its disk image ${s.image} is in use by "${s.vm}", which is ${rs.state}, and two VMs writing one image would corrupt it.`,
        { lockedImage: locked, heldBy: s.vm },
        { remedy: { kind: 'stop-vm', vm: s.vm } },
      );
    }
    return null;
  }

  private assertStopped(entry: BundleEntry, what: string): void {
    const rs = this.runState(entry);
    if (rs.state !== 'stopped') throw errors.mustStop(nameOf(entry) ?? entry.id, rs.state, what);
  }

  private requireRunning(entry: OkEntry, what: string): RuntimeRecord {
    const rs = this.runState(entry);
    if ((rs.state !== 'running' && rs.state !== 'paused') || !('record' in rs)) {
      throw errors.state(`"${entry.config.name}" is ${rs.state}. Start it to ${what}.`);
    }
    return rs.record;
  }
}

/** `info` with the action's notices (none: unchanged, so results without any keep their shape). */
function withNotices(info: VmInfo, notices: readonly string[]): VmInfo {
  return notices.length > 0 ? { ...info, notices } : info;
}

/** States a person acts from (start, delete, edit…), as opposed to a job's progress. */
const TRANSITIONAL: ReadonlySet<VmState> = new Set<VmState>(['starting', 'stopping']);

/** Whether `info` shows a resting state while a job still holds its VM: such a change is held back
 *  until the job ends (see emitInfo). */
export function heldAtRest(jobs: Pick<Jobs, 'holds'>, info: Pick<VmInfo, 'id' | 'state'>): boolean {
  return jobs.holds(info.id) && !TRANSITIONAL.has(info.state);
}

/** QEMU's pid when the VM runs (or is paused), else null. */
function runningPid(rs: RunState): number | null {
  return 'record' in rs && (rs.state === 'running' || rs.state === 'paused') ? rs.record.pid : null;
}

/**
 * The VM's error when QEMU `pid` is stopped by a signal (kill -STOP): it cannot answer anyone,
 * whoever holds its monitor. `state` is the kernel's word for the process (records.ts processState:
 * "T" stopped, "t" traced); null when it is not stopped.
 */
function stoppedError(pid: number, state: string | null): string | null {
  return state === 'T' || state === 't' ? `QEMU ${notRespondingWhy(pid, 'is stopped')}. Continue its process (SIGCONT), or force the VM off.` : null;
}

function vmOf(entry: BundleEntry): DriverVm {
  const ok = requireOk(entry);
  return { id: ok.id, config: ok.config };
}
