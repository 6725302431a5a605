/**
 * Finding processes a test left behind, by reading /proc (Linux only; the tests run there).
 * Used to assert "no QEMU left" and, in makeTestHome().cleanup(), to kill whatever a test started.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ProcInfo {
  readonly pid: number;
  readonly argv: readonly string[];
}

/** NUL-separated /proc/<pid>/<file>, or null when the process is gone or not ours to read. */
function readNulList(pid: number, file: 'cmdline' | 'environ'): readonly string[] | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
    return raw.split('\0').filter((s) => s.length > 0);
  } catch {
    return null;
  }
}

function allPids(): readonly number[] {
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}

/** A zombie has exited; only its parent's wait() is missing. For our purposes it is gone. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the last ")": comm may contain spaces and parentheses.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `needle` (an absolute path), other than this one. */
export function processesMentioning(needle: string): readonly ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const argv = readNulList(pid, 'cmdline');
    if (argv && argv.some((a) => a.includes(needle)) && isAlive(pid)) out.push({ pid, argv });
  }
  return out;
}

/** Processes started with `name=value` in their environment (children inherit it), other than this one. */
export function processesWithEnv(name: string, value: string): readonly number[] {
  const entry = `${name}=${value}`;
  const out: number[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const env = readNulList(pid, 'environ');
    if (env && env.includes(entry) && isAlive(pid)) out.push(pid);
  }
  return out;
}

function isQemu(argv: readonly string[]): boolean {
  return /^qemu-system-/.test(path.basename(argv[0] ?? ''));
}

/** PIDs of live qemu-system-* processes whose command line mentions `dir`, ascending. */
export function qemuProcessesUnder(dir: string): number[] {
  return processesMentioning(path.resolve(dir))
    .filter((p) => isQemu(p.argv))
    .map((p) => p.pid)
    .sort((a, b) => a - b);
}
