/**
 * Runtime records: what Vivarium knows about a running VM, kept in its runtime folder so that any
 * process (the app, `vivarium serve`, a short-lived CLI) sees the same truth. Plain data and files;
 * nothing here talks to QEMU.
 *
 * Files (see paths.ts RuntimeFile): vm.json (the record), qemu.pid (QEMU's own, locked pidfile),
 * exit-status (written by the supervising shell), stop-requested (what the stop ladder did),
 * start.lock (held while a start is in progress).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { Accel } from '../../common/models/vm-config';
import type { StopProgress, StopRungName } from '../../common/models/vm-state';
import { writeFileAtomic, writeFileAtomicAsync, type VmRuntimePaths } from '../paths';
import { isQemuProcessFor } from './process-identity';

export type { StopProgress, StopRungName };

/** What we know about a running VM; written to the runtime folder as vm.json. */
export interface RuntimeRecord {
  readonly pid: number;
  readonly supervisorPid: number;
  /** The VM's id (a uuid); QEMU carries it as `-name guest=<id>`, which proves a pid is this VM's. */
  readonly id: string;
  /** ISO time QEMU was launched. */
  readonly startedAt: string;
  readonly accel: Accel;
  /** QEMU's argv, argv[0] the binary. */
  readonly argv: readonly string[];
  /** Last known run state, updated by whoever performs a transition or hears QEMU's STOP/RESUME. */
  readonly status: 'running' | 'paused' | 'stopping';
  /** With status "paused": QEMU's run state (query-status `status`: "paused", "io-error",
   *  "guest-panicked", "internal-error", …), null when unknown. */
  readonly pausedReason?: string | null;
  /** With status "stopping": where the stop ladder is. */
  readonly stopping?: StopProgress | null;
}

/** What the stop ladder asked of QEMU, written to `stop-requested` before a forceful rung so that the
 *  exit is read as "stopped by Vivarium", with the ladder's own sentence. */
export interface StopRequest {
  /** Pid of the Vivarium process that ran the ladder. */
  readonly by: number;
  /** The rung in effect when QEMU went away. */
  readonly rung: StopRungName;
  /** What happened, as a sentence for the person ("The guest did not respond to the power button; forced off after 30 s."). */
  readonly message: string;
}

function isRecordShape(r: unknown): r is RuntimeRecord {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  return (
    typeof o.pid === 'number' &&
    Number.isInteger(o.pid) &&
    o.pid > 0 &&
    typeof o.id === 'string' &&
    typeof o.supervisorPid === 'number' &&
    Array.isArray(o.argv) &&
    (o.status === 'running' || o.status === 'paused' || o.status === 'stopping')
  );
}

/** Parses a vm.json text; null when it is not a record (a half-written or foreign file). */
export function parseRecord(text: string): RuntimeRecord | null {
  try {
    const r = JSON.parse(text) as unknown;
    return isRecordShape(r) ? r : null;
  } catch {
    return null;
  }
}

export function readRecord(rt: VmRuntimePaths): RuntimeRecord | null {
  return parseRecord(safeRead(rt.record));
}

export async function readRecordAsync(rt: VmRuntimePaths): Promise<RuntimeRecord | null> {
  return parseRecord(await safeReadAsync(rt.record));
}

export function writeRecord(rt: VmRuntimePaths, record: RuntimeRecord): void {
  writeFileAtomic(rt.record, JSON.stringify(record), 0o600);
}

/** writeRecord without blocking the event loop. */
export async function writeRecordAsync(rt: VmRuntimePaths, record: RuntimeRecord): Promise<void> {
  await writeFileAtomicAsync(rt.record, JSON.stringify(record), 0o600);
}

export function writeStopRequest(rt: VmRuntimePaths, request: StopRequest): void {
  writeFileAtomic(rt.stopRequested, `${JSON.stringify(request)}\n`, 0o600);
}

/** writeStopRequest without blocking the event loop. */
export async function writeStopRequestAsync(rt: VmRuntimePaths, request: StopRequest): Promise<void> {
  await writeFileAtomicAsync(rt.stopRequested, `${JSON.stringify(request)}\n`, 0o600);
}

/** The stop request left by a ladder; a bare pid (older engines wrote just that) reads as a plain stop. */
export function readStopRequest(rt: VmRuntimePaths): StopRequest | null {
  const text = safeRead(rt.stopRequested);
  // eslint-disable-next-line no-restricted-syntax -- RunStates' synchronous reconciliation (run-state.ts): once per exit
  if (text === '' && !fs.existsSync(rt.stopRequested)) return null;
  return parseStopRequest(text);
}

/** readStopRequest without blocking the event loop. */
export async function readStopRequestAsync(rt: VmRuntimePaths): Promise<StopRequest | null> {
  const text = await safeReadAsync(rt.stopRequested);
  if (text === '' && !(await fsp.lstat(rt.stopRequested).then(() => true, () => false))) return null;
  return parseStopRequest(text);
}

function parseStopRequest(text: string): StopRequest {
  try {
    const r = JSON.parse(text) as Partial<StopRequest>;
    if (typeof r === 'object' && r !== null && typeof r.message === 'string' && typeof r.rung === 'string') {
      return { by: typeof r.by === 'number' ? r.by : 0, rung: r.rung, message: r.message };
    }
  } catch {
    // older format
  }
  return { by: Number.parseInt(text, 10) || 0, rung: 'quit', message: 'Stopped by Vivarium.' };
}

export function readPidFile(file: string): number | null {
  const n = Number.parseInt(safeRead(file).trim(), 10);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** The supervisor's record of how QEMU exited: exit code, or 128+signal; null when not written. */
export function readExitStatus(file: string): number | null {
  const text = safeRead(file).trim();
  if (text === '') return null;
  const n = Number.parseInt(text, 10);
  return Number.isInteger(n) ? n : null;
}

/** readPidFile without blocking the event loop. */
export async function readPidFileAsync(file: string): Promise<number | null> {
  const n = Number.parseInt((await safeReadAsync(file)).trim(), 10);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** readExitStatus without blocking the event loop. */
export async function readExitStatusAsync(file: string): Promise<number | null> {
  const text = (await safeReadAsync(file)).trim();
  if (text === '') return null;
  const n = Number.parseInt(text, 10);
  return Number.isInteger(n) ? n : null;
}

/** The files clearRuntime removes. */
function leftFiles(rt: VmRuntimePaths): string[] {
  return [rt.record, rt.pidfile, rt.exitStatus, rt.stopRequested, rt.qmp, rt.serial, rt.vnc, rt.qga];
}

/** clearRuntime without blocking the event loop. */
export async function clearRuntimeAsync(rt: VmRuntimePaths): Promise<void> {
  for (const f of leftFiles(rt)) await fsp.rm(f, { force: true });
}

/** Removes what a previous QEMU left behind (sockets, pidfile, status, record), never the start lock. */
export function clearRuntime(rt: VmRuntimePaths): void {
  for (const f of leftFiles(rt)) {
    // eslint-disable-next-line no-restricted-syntax -- RunStates' synchronous reconciliation and qemu-driver.ts (TODO(lead): async form): unlinks in the runtime folder
    fs.rmSync(f, { force: true });
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Is `pid` alive and really the QEMU for VM `id`? (A pid may be reused after a reboot or crash; the
 * uuid on QEMU's command line — `-name guest=<uuid>` — proves identity.)
 */
export function isQemuFor(pid: number, id: string): boolean {
  if (!pidAlive(pid)) return false;
  if (process.platform === 'linux') {
    const cmdline = safeRead(`/proc/${pid}/cmdline`);
    return cmdline.split('\0').some((a) => a === `guest=${id}` || a.startsWith(`guest=${id},`));
  }
  // No /proc (macOS, the BSDs): ps prints the command line (process-identity.ts).
  return isQemuProcessFor(pid, id);
}

/** isQemuFor without blocking the event loop on /proc. */
export async function isQemuForAsync(pid: number, id: string): Promise<boolean> {
  if (!pidAlive(pid)) return false;
  if (process.platform !== 'linux') return isQemuProcessFor(pid, id);
  const cmdline = await safeReadAsync(`/proc/${pid}/cmdline`);
  return cmdline.split('\0').some((a) => a === `guest=${id}` || a.startsWith(`guest=${id},`));
}

/**
 * The kernel's scheduling state of a process (Linux /proc/PID/stat, field 3): "R" running, "S"
 * sleeping, "D" in uninterruptible I/O, "T" stopped by a signal (kill -STOP), "t" traced, "Z" zombie.
 * null when unknown (not Linux, or gone).
 */
export function processState(pid: number): string | null {
  if (process.platform !== 'linux') return null;
  const stat = safeRead(`/proc/${pid}/stat`);
  const after = stat.slice(stat.lastIndexOf(')') + 2);
  return after.length > 0 ? after[0]! : null;
}

/** processState without blocking the event loop. */
export async function processStateAsync(pid: number): Promise<string | null> {
  if (process.platform !== 'linux') return null;
  const stat = await safeReadAsync(`/proc/${pid}/stat`);
  const after = stat.slice(stat.lastIndexOf(')') + 2);
  return after.length > 0 ? after[0]! : null;
}

/**
 * Finds the live QEMU of VM `id` by process identity alone (Linux: every /proc/PID/cmdline carrying
 * `guest=<id>`), for when its runtime folder or pidfile was removed while it ran. Returns the pid, or
 * null when there is none (or on hosts without /proc).
 */
export async function findQemuByIdentity(id: string): Promise<number | null> {
  return (await scanQemuProcesses()).get(id) ?? null;
}

let scanInFlight: Promise<ReadonlyMap<string, number>> | null = null;

/** Every live QEMU started by a Vivarium (`-name guest=<uuid>`), by VM id. Linux only; empty elsewhere.
 *  Callers that ask while a scan runs share it (issue 8: many clients listing at once must not
 *  multiply a walk over every process of the machine). */
export function scanQemuProcesses(): Promise<ReadonlyMap<string, number>> {
  scanInFlight ??= scanOnce().finally(() => {
    scanInFlight = null;
  });
  return scanInFlight;
}

async function scanOnce(): Promise<ReadonlyMap<string, number>> {
  const found = new Map<string, number>();
  if (process.platform !== 'linux') return found;
  let names: string[];
  try {
    names = await fsp.readdir('/proc');
  } catch {
    return found;
  }
  // procfs files are made by the kernel from memory on read: they never wait on a disk, so reading
  // them synchronously holds the thread for microseconds each (~1 ms for 100 processes), where one
  // thread-pool round trip per process costs 10-25 ms in all (measured on a busy 2-core host).
  for (const p of names) {
    if (!/^\d+$/.test(p)) continue;
    const cmdline = safeRead(`/proc/${p}/cmdline`);
    if (!cmdline.includes('qemu-system')) continue;
    for (const a of cmdline.split('\0')) {
      const m = /^guest=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(,|$)/.exec(a);
      if (m) found.set(m[1]!, Number(p));
    }
  }
  return found;
}

/** recordFromProcess without blocking the event loop. */
export async function recordFromProcessAsync(pid: number, id: string, startedAtMs: number): Promise<RuntimeRecord> {
  return recordOf(pid, id, startedAtMs, await safeReadAsync(`/proc/${pid}/cmdline`), await safeReadAsync(`/proc/${pid}/stat`));
}

/** The record of a QEMU found without one: rebuilt from its own command line (Linux /proc). */
export function recordFromProcess(pid: number, id: string, startedAtMs: number): RuntimeRecord {
  return recordOf(pid, id, startedAtMs, safeRead(`/proc/${pid}/cmdline`), safeRead(`/proc/${pid}/stat`));
}

function recordOf(pid: number, id: string, startedAtMs: number, cmdline: string, stat: string): RuntimeRecord {
  const argv = cmdline.split('\0').filter((a) => a.length > 0);
  const accelArg = argv[argv.indexOf('-accel') + 1] ?? '';
  const accel: Accel = accelArg.startsWith('kvm') ? 'kvm' : accelArg.startsWith('hvf') ? 'hvf' : 'tcg';
  const ppid = Number(stat.split(') ').pop()?.split(' ')[1]);
  return {
    pid,
    supervisorPid: Number.isInteger(ppid) && ppid > 1 ? ppid : pid,
    id,
    startedAt: new Date(startedAtMs).toISOString(),
    accel,
    argv,
    status: 'running',
  };
}

export function safeRead(file: string): string {
  try {
    // eslint-disable-next-line no-restricted-syntax -- the synchronous readers RunStates.get builds on (run-state.ts), and scanOnce's /proc reads (in memory; see there); safeReadAsync elsewhere
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export async function safeReadAsync(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch {
    return '';
  }
}
