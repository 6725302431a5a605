/**
 * A process's CPU time and resident memory: /proc on Linux, ps elsewhere (macOS). Used for QEMU's
 * own figures (per VM) and for its vCPU threads (Linux only: /proc/PID/task/TID/stat, with the
 * thread ids from QMP query-cpus-fast).
 *
 * CPU time is reported as cumulative seconds so the caller turns it into a rate like any other
 * counter (rates.ts); a decaying average such as `ps -o %cpu` would not compose with that.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';

export interface ProcStat {
  /** utime + stime, in clock ticks (fields 14 and 15 of proc(5)). */
  readonly cpuTicks: number;
  /** Field 3: R, S, D, Z, … */
  readonly state: string;
  /** Field 22: start time after boot, in clock ticks; tells a reused pid apart. */
  readonly startTicks: number;
}

/**
 * Parses /proc/PID/stat (or …/task/TID/stat). The command name (field 2) is in parentheses and may
 * itself hold spaces and parentheses (QEMU names its threads "CPU 0/TCG"), so the fields are split
 * after the *last* ")".
 */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // fields[0] is field 3 of proc(5); field N is at N - 3.
  const state = fields[0];
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  const start = Number(fields[22 - 3]);
  if (!state || !Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(start)) return null;
  return { cpuTicks: utime + stime, state, startTicks: start };
}

/** VmRSS from /proc/PID/status, in bytes (the kernel reports kB, meaning KiB). */
export function parseVmRssBytes(status: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

/** ps's `time` column: "[[dd-]hh:]mm:ss[.cc]" (procps and BSD ps both; minutes may exceed 59). */
export function parsePsTime(text: string): number | null {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (!m) return null;
  const [, days, hours, minutes, seconds] = m;
  return Number(days ?? 0) * 86400 + Number(hours ?? 0) * 3600 + Number(minutes) * 60 + Number(seconds);
}

export interface ProcessReading {
  /** Cumulative user + system CPU time, seconds. */
  readonly cpuSeconds: number;
  readonly rssBytes: number | null;
}

/** `ps -o time=,rss= -p PID` output: CPU time and RSS in KiB. */
export function parsePsLine(text: string): ProcessReading | null {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 2) return null;
  const cpuSeconds = parsePsTime(parts[0]!);
  const rssKiB = Number(parts[1]);
  if (cpuSeconds === null) return null;
  return { cpuSeconds, rssBytes: Number.isFinite(rssKiB) ? rssKiB * 1024 : null };
}

let clockTicks: Promise<number> | null = null;

/** Clock ticks per second for /proc times: `getconf CLK_TCK`, asked once; 100 if that fails. */
export function clockTicksPerSecond(): Promise<number> {
  clockTicks ??= new Promise((resolve) => {
    execFile('getconf', ['CLK_TCK'], { timeout: 2000 }, (err, stdout) => {
      const n = Number.parseInt(String(stdout).trim(), 10);
      // 100 is what every mainstream Linux uses (USER_HZ); a wrong guess only scales the figures.
      resolve(!err && Number.isInteger(n) && n > 0 ? n : 100);
    });
  });
  return clockTicks;
}

async function readText(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return null;
  }
}

function psReading(pid: number): Promise<ProcessReading | null> {
  return new Promise((resolve) => {
    execFile('ps', ['-o', 'time=,rss=', '-p', String(pid)], { timeout: 2000 }, (err, stdout) => {
      resolve(err ? null : parsePsLine(String(stdout)));
    });
  });
}

/** CPU time and RSS of a process; null when it is gone (or not ours to read). */
export async function readProcess(pid: number, platform: NodeJS.Platform = process.platform): Promise<ProcessReading | null> {
  if (platform !== 'linux') return psReading(pid);
  const [statText, statusText, hz] = await Promise.all([readText(`/proc/${pid}/stat`), readText(`/proc/${pid}/status`), clockTicksPerSecond()]);
  const stat = statText === null ? null : parseProcStat(statText);
  if (!stat) return null;
  return { cpuSeconds: stat.cpuTicks / hz, rssBytes: statusText === null ? null : parseVmRssBytes(statusText) };
}

/** Cumulative CPU seconds of one thread of `pid` (Linux); null elsewhere or when it is gone. */
export async function readThreadCpuSeconds(pid: number, tid: number, platform: NodeJS.Platform = process.platform): Promise<number | null> {
  if (platform !== 'linux') return null;
  const [text, hz] = await Promise.all([readText(`/proc/${pid}/task/${tid}/stat`), clockTicksPerSecond()]);
  const stat = text === null ? null : parseProcStat(text);
  return stat ? stat.cpuTicks / hz : null;
}
