/**
 * Is a pid really the QEMU of a given VM? A pid in a pidfile may belong to another process after a
 * reboot or a crash (pids are reused), and the stop ladder ends with SIGKILL, so "alive" is not
 * enough: QEMU's own command line carries `-name guest=<uuid>,…`, which proves it.
 *
 * Where the command line comes from:
 *  - Linux: /proc/PID/cmdline (NUL-separated argv);
 *  - macOS and the BSDs, which have no /proc: `ps -ww -o command= -p PID` (the whole argv, joined by
 *    spaces; -ww lifts the column limit). Vivarium's own QEMU arguments never contain spaces in
 *    the `guest=<uuid>` part, so splitting on whitespace finds it.
 * Effects are injected (`IdentityProbe`) so the macOS path is unit-tested on Linux.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export interface IdentityProbe {
  readonly platform: NodeJS.Platform;
  /** Linux: the raw /proc/PID/cmdline, '' when unreadable or gone. */
  readProcCmdline(pid: number): string;
  /** Elsewhere: `ps -ww -o command= -p PID` output, null when ps failed (no such process). */
  psCommand(pid: number): string | null;
}

export const realIdentityProbe: IdentityProbe = {
  platform: process.platform,
  readProcCmdline: (pid) => {
    try {
      // eslint-disable-next-line no-restricted-syntax -- IdentityProbe is synchronous (isQemuFor in RunStates.get, qemu-driver.ts): /proc is in memory
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      return '';
    }
  },
  psCommand: (pid) => {
    try {
      return execFileSync('ps', ['-ww', '-o', 'command=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    } catch {
      return null;
    }
  },
};

/** The process's arguments, or null when they cannot be read (gone, or no way on this OS). */
export function processArgs(pid: number, probe: IdentityProbe = realIdentityProbe): readonly string[] | null {
  if (probe.platform === 'win32') return null;
  if (probe.platform === 'linux') {
    const raw = probe.readProcCmdline(pid);
    return raw === '' ? null : raw.split('\0').filter((a) => a !== '');
  }
  const out = probe.psCommand(pid);
  if (out === null || out.trim() === '') return null;
  return out.trim().split(/\s+/);
}

/** Whether argv names VM `id` the way Vivarium starts QEMU (`-name guest=<id>[,…]`). */
export function argsNameGuest(args: readonly string[], id: string): boolean {
  return args.some((a) => a === `guest=${id}` || a.startsWith(`guest=${id},`));
}

/**
 * Whether `pid` (already known alive) is the QEMU of VM `id`. Windows has neither /proc nor a ps
 * that prints argv; there the answer stays "yes" (Vivarium does not run VMs on Windows yet).
 */
export function isQemuProcessFor(pid: number, id: string, probe: IdentityProbe = realIdentityProbe): boolean {
  if (probe.platform === 'win32') return true;
  const args = processArgs(pid, probe);
  return args !== null && argsNameGuest(args, id);
}
