/**
 * Run state: is a VM stopped, starting, running, paused or stopping — read from its runtime folder and
 * the process table, never from QEMU's monitor, so listing never fights QMP's single client slot.
 *
 * A QEMU that is gone is reconciled here, once, under the start lock: its exit is classified
 * (classifyExit) and written to the bundle's last-exit.json, and the runtime folder is cleared. A
 * live QEMU whose record, pidfile or whole runtime folder vanished is adopted again (found by its
 * pidfile, or by process identity: `guest=<id>` on its command line), so it never looks stopped,
 * startable twice or deletable.
 *
 * Changes travel upward as events (onDidExit, onDidAdopt); nothing here calls into a higher layer.
 *
 * get/getLocked/update are synchronous on purpose: VmService.listSync and the driver's state changes
 * build on them, and get()'s check-and-act under the start lock must not be interleaved (getAsync).
 * Listings take getAsync; holders of the start lock take getLockedAsync (getLocked serves get()
 * alone). What stays blocking touches small files in the runtime folder on a state transition.
 */
import * as fs from 'node:fs';
import type { LastExit } from '../../common/models/vm-state';
import { Emitter } from '../emitter';
import * as fsp from 'node:fs/promises';
import { readFileNoFollow, readFileNoFollowAsync, writeFileAtomic, writeFileAtomicAsync, type Layout, type VmRuntimePaths } from '../paths';
import { lastLines, lastLinesAsync } from './tail';
import type { EventLog } from './event-log';
import { classifyExit, signalInQemuLog } from './exit';
import {
  clearRuntime,
  clearRuntimeAsync,
  isQemuFor,
  isQemuForAsync,
  parseRecord,
  safeReadAsync,
  pidAlive,
  readExitStatus,
  readExitStatusAsync,
  readPidFile,
  readPidFileAsync,
  readRecord,
  readRecordAsync,
  readStopRequest,
  readStopRequestAsync,
  recordFromProcess,
  recordFromProcessAsync,
  writeRecord,
  writeRecordAsync,
  type RuntimeRecord,
} from './records';
import { acquireStartLock, startLockHeld, startLockHeldAsync } from './start-lock';

export type RunState =
  | { readonly state: 'stopped' }
  | { readonly state: 'starting'; readonly pid: null }
  | { readonly state: 'running' | 'paused' | 'stopping'; readonly record: RuntimeRecord };

/** A VM as this layer needs it: its id, and a name for messages. */
export interface VmKey {
  readonly id: string;
  readonly name: string;
}

export type RuntimeEvent =
  | { readonly kind: 'exited'; readonly id: string; readonly exit: LastExit }
  | { readonly kind: 'adopted'; readonly id: string; readonly pid: number; readonly how: 'pidfile' | 'identity' };

export interface RunStatesDeps {
  readonly layout: Layout;
  readonly events: EventLog;
  readonly log?: (line: string) => void;
}

export class RunStates {
  private readonly emitter = new Emitter<RuntimeEvent>();
  /** Fired after an exit is recorded (last-exit.json written, runtime folder cleared) or a QEMU adopted. */
  readonly onDidChange = this.emitter.event;

  constructor(private readonly deps: RunStatesDeps) {}

  /**
   * The VM's run state; a dead QEMU is reconciled into lastExit here.
   * @param live pids of live QEMUs by VM id (scanQemuProcesses), to find one whose runtime folder vanished.
   */
  get(entry: VmKey, live?: ReadonlyMap<string, number>): RunState {
    const rt = this.deps.layout.runtime(entry.id);
    const rec = this.recordOf(entry.id, rt, live);
    if (rec && isQemuFor(rec.pid, entry.id)) return { state: rec.status, record: rec };
    // eslint-disable-next-line no-restricted-syntax -- synchronous get() (see the file's comment): one stat
    if (!rec && !fs.existsSync(rt.startLock)) return { state: 'stopped' };
    // QEMU is gone but its supervisor has not written the exit status yet: a moment's transition.
    if (rec && readExitStatus(rt.exitStatus) === null && rec.supervisorPid !== rec.pid && pidAlive(rec.supervisorPid)) {
      return { state: 'stopping', record: rec };
    }
    // Either a start is in progress, or a QEMU died and nobody has noticed yet: take the start lock
    // so we never clean up under a concurrent start.
    let release: (() => void) | null = null;
    try {
      this.deps.layout.ensureRuntimeDir(rt.dir);
      release = acquireStartLock(rt, entry.name);
    } catch {
      return { state: 'starting', pid: null };
    }
    try {
      return this.getLocked(entry, live);
    } finally {
      release();
    }
  }

  /**
   * get() without blocking the event loop on the paths a listing takes every second: a live QEMU
   * with its record, a stopped VM with nothing left behind, a start in progress (its QEMU has no
   * record yet; get() would find the lock taken and answer the same). A transition to record — an
   * exit to reconcile, a QEMU to adopt, a stale lock to take over — goes through get(), whose
   * check-and-act under the start lock runs within one turn of the event loop, so a start in this
   * process never finds the lock taken by a listing midway (it would be refused as busy). That is a
   * few small files in the runtime folder, once per transition.
   */
  async getAsync(entry: VmKey, live?: ReadonlyMap<string, number>): Promise<RunState> {
    const rt = this.deps.layout.runtime(entry.id);
    const rec = parseRecord(await safeReadAsync(rt.record));
    if (rec && rec.id === entry.id && (await isQemuForAsync(rec.pid, entry.id))) return { state: rec.status, record: rec };
    if (!rec && !live?.has(entry.id) && !(await exists(rt.startLock)) && !(await exists(rt.pidfile))) return { state: 'stopped' };
    if (!rec && (await startLockHeldAsync(rt))) return { state: 'starting', pid: null };
    return this.get(entry, live);
  }

  /**
   * getLocked() without blocking the event loop, for callers holding the start lock (a start, a
   * delete, a snapshot job): the same adoption and exit reconciliation, every file on the thread
   * pool.
   */
  async getLockedAsync(entry: VmKey, live?: ReadonlyMap<string, number>): Promise<RunState> {
    const rt = this.deps.layout.runtime(entry.id);
    const rec = await this.recordOfAsync(entry.id, rt, live);
    if (rec && (await isQemuForAsync(rec.pid, entry.id))) return { state: rec.status, record: rec };
    if (rec) await this.reconcileExitAsync(entry.id, rt);
    return { state: 'stopped' };
  }

  /** lastExit() without blocking the event loop. */
  async lastExitAsync(id: string): Promise<LastExit | null> {
    try {
      return JSON.parse((await readFileNoFollowAsync(this.deps.layout.bundle(id).lastExit, 256 * 1024)).toString('utf8')) as LastExit;
    } catch {
      return null;
    }
  }

  /** Same as get, once get() holds the start lock (others holding it take getLockedAsync). */
  private getLocked(entry: VmKey, live?: ReadonlyMap<string, number>): RunState {
    const rt = this.deps.layout.runtime(entry.id);
    const rec = this.recordOf(entry.id, rt, live);
    if (rec && isQemuFor(rec.pid, entry.id)) return { state: rec.status, record: rec };
    if (rec) this.reconcileExit(entry.id, rt);
    return { state: 'stopped' };
  }

  /**
   * Rewrites the record of a running VM with `patch`, only if it still describes QEMU `pid` (a stop
   * that finished meanwhile must not bring a record back). Returns the new record, or null.
   */
  update(id: string, pid: number, patch: Partial<Pick<RuntimeRecord, 'status' | 'pausedReason' | 'stopping'>>): RuntimeRecord | null {
    const rt = this.deps.layout.runtime(id);
    const rec = readRecord(rt);
    if (!rec || rec.pid !== pid || rec.id !== id) return null;
    const next = { ...rec, ...patch };
    writeRecord(rt, next);
    return next;
  }

  /** The VM's runtime record as it is on disk now (no reconciliation), or null. */
  currentRecord(id: string): RuntimeRecord | null {
    const rec = readRecord(this.deps.layout.runtime(id));
    return rec && rec.id === id ? rec : null;
  }

  /** currentRecord() without blocking the event loop. (update() has no async twin: its
   *  read-modify-write of the record must not interleave with another in this process.) */
  async currentRecordAsync(id: string): Promise<RuntimeRecord | null> {
    const rec = await readRecordAsync(this.deps.layout.runtime(id));
    return rec && rec.id === id ? rec : null;
  }

  /** Records the end of a start that QEMU refused, and clears what it left. */
  recordFailedStart(id: string, message: string): void {
    const rt = this.deps.layout.runtime(id);
    const qemuLog = this.deps.layout.bundle(id).qemuLog;
    const verdict = classifyExit({
      status: readExitStatus(rt.exitStatus),
      stopRequest: null,
      pidfileLeft: false,
      signalInLog: null,
      startFailure: message,
    });
    this.writeLastExit(id, { ...verdict, at: new Date().toISOString(), stderrTail: lastLines(qemuLog, 10) });
    clearRuntime(rt);
  }

  /** recordFailedStart() without blocking the event loop (the caller holds the start lock). */
  async recordFailedStartAsync(id: string, message: string): Promise<void> {
    const rt = this.deps.layout.runtime(id);
    const qemuLog = this.deps.layout.bundle(id).qemuLog;
    const verdict = classifyExit({
      status: await readExitStatusAsync(rt.exitStatus),
      stopRequest: null,
      pidfileLeft: false,
      signalInLog: null,
      startFailure: message,
    });
    await this.writeLastExitAsync(id, { ...verdict, at: new Date().toISOString(), stderrTail: await lastLinesAsync(qemuLog, 10) });
    await clearRuntimeAsync(rt);
  }

  /** The last exit recorded for a VM, or null. */
  lastExit(id: string): LastExit | null {
    try {
      return JSON.parse(readFileNoFollow(this.deps.layout.bundle(id).lastExit, 256 * 1024).toString('utf8')) as LastExit;
    } catch {
      return null;
    }
  }

  dispose(): void {
    this.emitter.dispose();
  }

  /**
   * The runtime record of this VM. A record for another id is ignored. When the record is missing
   * but a live QEMU for this VM is found — by QEMU's pidfile, or by process identity when the whole
   * runtime folder is gone — the VM is adopted: a record is rebuilt from QEMU's own command line, so
   * it is never orphaned or started twice.
   */
  private recordOf(id: string, rt: VmRuntimePaths, live?: ReadonlyMap<string, number>): RuntimeRecord | null {
    const rec = readRecord(rt);
    if (rec) return rec.id === id ? rec : null;
    // While a start is in progress its QEMU has a pidfile but no record yet: that one is not an
    // orphan, and must not be adopted (or its QMP taken) under the starter.
    if (startLockHeld(rt)) return null;
    if (process.platform !== 'linux') return null;
    const fromPidfile = readPidFile(rt.pidfile);
    let pid: number | null = null;
    let how: 'pidfile' | 'identity' = 'pidfile';
    if (fromPidfile !== null && isQemuFor(fromPidfile, id)) {
      pid = fromPidfile;
    } else {
      const found = live?.get(id);
      if (found !== undefined && isQemuFor(found, id)) {
        pid = found;
        how = 'identity';
      }
    }
    if (pid === null) return null;
    this.deps.layout.ensureRuntimeDir(rt.dir);
    let startedAtMs = Date.now();
    try {
      // eslint-disable-next-line no-restricted-syntax -- synchronous get() (see the file's comment): adopting a QEMU, once
      startedAtMs = fs.statSync(how === 'pidfile' ? rt.pidfile : `/proc/${pid}`).mtimeMs;
    } catch {
      // keep now
    }
    const adopted = recordFromProcess(pid, id, startedAtMs);
    writeRecord(rt, adopted);
    this.adopted(id, pid, how);
    return adopted;
  }

  /** recordOf without blocking the event loop. */
  private async recordOfAsync(id: string, rt: VmRuntimePaths, live?: ReadonlyMap<string, number>): Promise<RuntimeRecord | null> {
    const rec = await readRecordAsync(rt);
    if (rec) return rec.id === id ? rec : null;
    if (await startLockHeldAsync(rt)) return null;
    if (process.platform !== 'linux') return null;
    const fromPidfile = await readPidFileAsync(rt.pidfile);
    let pid: number | null = null;
    let how: 'pidfile' | 'identity' = 'pidfile';
    if (fromPidfile !== null && (await isQemuForAsync(fromPidfile, id))) {
      pid = fromPidfile;
    } else {
      const found = live?.get(id);
      if (found !== undefined && (await isQemuForAsync(found, id))) {
        pid = found;
        how = 'identity';
      }
    }
    if (pid === null) return null;
    await this.deps.layout.ensureRuntimeDirAsync(rt.dir);
    const startedAtMs = await fsp.stat(how === 'pidfile' ? rt.pidfile : `/proc/${pid}`).then(
      (st) => st.mtimeMs,
      () => Date.now(),
    );
    const adopted = await recordFromProcessAsync(pid, id, startedAtMs);
    await writeRecordAsync(rt, adopted);
    this.adopted(id, pid, how);
    return adopted;
  }

  private adopted(id: string, pid: number, how: 'pidfile' | 'identity'): void {
    this.deps.events.append(
      id,
      how === 'pidfile'
        ? `adopted QEMU pid ${pid} from its pidfile (its record was missing)`
        : `adopted QEMU pid ${pid} by its process identity (its runtime folder was removed; its control sockets are gone, so it can only be forced off)`,
    );
    this.emitter.fire({ kind: 'adopted', id, pid, how });
  }

  /** reconcileExit without blocking the event loop. */
  private async reconcileExitAsync(id: string, rt: VmRuntimePaths): Promise<void> {
    const qemuLog = this.deps.layout.bundle(id).qemuLog;
    const verdict = classifyExit({
      status: await readExitStatusAsync(rt.exitStatus),
      stopRequest: await readStopRequestAsync(rt),
      pidfileLeft: await exists(rt.pidfile),
      signalInLog: signalInQemuLog(await lastLinesAsync(qemuLog, 5)),
    });
    const exit: LastExit = { ...verdict, at: new Date().toISOString(), stderrTail: await lastLinesAsync(qemuLog, 10) };
    await this.writeLastExitAsync(id, exit);
    this.logExit(id, verdict);
    await clearRuntimeAsync(rt);
    this.emitter.fire({ kind: 'exited', id, exit });
  }

  private logExit(id: string, verdict: Pick<LastExit, 'reason' | 'signal' | 'code'>): void {
    const { reason, signal, code } = verdict;
    this.deps.events.append(id, `exited: ${reason}${signal ? ` (${signal})` : code !== null ? ` (status ${code})` : ''}`);
  }

  /** writeLastExit without blocking the event loop. */
  private async writeLastExitAsync(id: string, exit: LastExit): Promise<void> {
    const b = this.deps.layout.bundle(id);
    if (!(await exists(b.dir))) return; // deleted meanwhile: nothing to record it in
    try {
      await writeFileAtomicAsync(b.lastExit, `${JSON.stringify(exit, null, 2)}\n`, 0o600);
    } catch (e) {
      this.deps.log?.(`[${id.slice(0, 8)}] could not record the last exit (${exit.reason}: ${exit.message}): ${(e as Error).message}`);
    }
  }

  private reconcileExit(id: string, rt: VmRuntimePaths): void {
    const qemuLog = this.deps.layout.bundle(id).qemuLog;
    const verdict = classifyExit({
      status: readExitStatus(rt.exitStatus),
      stopRequest: readStopRequest(rt),
      // eslint-disable-next-line no-restricted-syntax -- synchronous getLocked() (see the file's comment): once per exit
      pidfileLeft: fs.existsSync(rt.pidfile),
      signalInLog: signalInQemuLog(lastLines(qemuLog, 5)),
    });
    const exit: LastExit = { ...verdict, at: new Date().toISOString(), stderrTail: lastLines(qemuLog, 10) };
    this.writeLastExit(id, exit);
    this.logExit(id, verdict);
    clearRuntime(rt);
    this.emitter.fire({ kind: 'exited', id, exit });
  }

  private writeLastExit(id: string, exit: LastExit): void {
    const b = this.deps.layout.bundle(id);
    // eslint-disable-next-line no-restricted-syntax -- synchronous getLocked() (see the file's comment): once per exit
    if (!fs.existsSync(b.dir)) return; // deleted meanwhile: nothing to record it in
    try {
      writeFileAtomic(b.lastExit, `${JSON.stringify(exit, null, 2)}\n`, 0o600);
    } catch (e) {
      this.deps.log?.(`[${id.slice(0, 8)}] could not record the last exit (${exit.reason}: ${exit.message}): ${(e as Error).message}`);
    }
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch {
    return false;
  }
}
