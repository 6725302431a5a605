/**
 * Running QEMU so that it outlives whoever started it, and finding it again later.
 *
 * QEMU is spawned detached (its own session) under a tiny supervising `/bin/sh` whose only job is to
 * wait for QEMU and write its exit status to a file (the conmon pattern, with sh instead of a C
 * binary). That way an engine that starts later — or `vivarium list` after `vivarium start` has long
 * returned — can still tell "the guest shut down" (status 0, pidfile removed by QEMU) from "QEMU was
 * killed by SIGKILL" (status 137, pidfile left behind). stdout/stderr go to the bundle's qemu.log,
 * never into our process.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { errors } from '../../common/errors';
import type { VmRuntimePaths } from '../paths';
import { isQemuForAsync, readExitStatusAsync, readPidFileAsync } from '../runtime/records';
import { lastLinesAsync } from '../runtime/tail';
import { QmpClient } from './qmp';

/**
 * The supervising shell: `$1` = exit-status file, the rest is QEMU's argv. `$?` is 128+N when QEMU died
 * of signal N. After QEMU exits it ends the VM's side processes (VIVARIUM_SIDE_PIDS: SIGTERM, up to
 * VIVARIUM_SIDE_WAIT tenths of a second, then SIGKILL) and removes its transient files
 * (VIVARIUM_TRANSIENT, one path a line), then records the status — so helpers end with QEMU even when
 * no Vivarium runs.
 */
export const SUPERVISOR_SCRIPT =
  'f="$1"; shift; "$@"; s=$?; ' +
  'if [ -n "$VIVARIUM_SIDE_PIDS" ]; then ' +
  'for p in $VIVARIUM_SIDE_PIDS; do kill -TERM "$p" 2>/dev/null; done; i=0; ' +
  'while [ "$i" -lt "${VIVARIUM_SIDE_WAIT:-50}" ]; do a=; for p in $VIVARIUM_SIDE_PIDS; do kill -0 "$p" 2>/dev/null && a=1; done; [ -z "$a" ] && break; sleep 0.1; i=$((i+1)); done; ' +
  'for p in $VIVARIUM_SIDE_PIDS; do kill -KILL "$p" 2>/dev/null; done; fi; ' +
  'if [ -n "$VIVARIUM_TRANSIENT" ]; then printf "%s\\n" "$VIVARIUM_TRANSIENT" | while IFS= read -r t; do rm -f -- "$t"; done; fi; ' +
  'printf "%s\\n" "$s" > "$f.tmp" && mv -f "$f.tmp" "$f"';

export interface LaunchRequest {
  readonly binary: string;
  readonly args: readonly string[];
  readonly runtime: VmRuntimePaths;
  readonly logFile: string;
  /** Files QEMU itself will open for writing (the serial log): a symlink there is removed first, so a
   *  planted link can never make QEMU truncate or fill another file. */
  readonly qemuWrites?: readonly string[];
  readonly timeoutMs?: number;
  /** Side processes already running for this VM: the supervisor ends them when QEMU exits. */
  readonly sides?: readonly { readonly pid: number; readonly stopTimeoutMs: number }[];
  /** Files the supervisor removes when QEMU exits. */
  readonly transientFiles?: readonly string[];
}

export interface Launched {
  readonly pid: number;
  readonly supervisorPid: number;
}

export async function launchQemu(req: LaunchRequest): Promise<Launched> {
  for (const f of [req.logFile, ...(req.qemuWrites ?? [])]) await removeIfSymlink(f);
  const log = await fsp.open(req.logFile, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
  let child;
  try {
    const sides = req.sides ?? [];
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.VIVARIUM_SIDE_PIDS;
    delete env.VIVARIUM_TRANSIENT;
    if (sides.length > 0) {
      env.VIVARIUM_SIDE_PIDS = sides.map((s) => s.pid).join(' ');
      env.VIVARIUM_SIDE_WAIT = String(Math.ceil(Math.max(...sides.map((s) => s.stopTimeoutMs)) / 100));
    }
    if ((req.transientFiles ?? []).length > 0) env.VIVARIUM_TRANSIENT = req.transientFiles!.join('\n');
    child = spawn('/bin/sh', ['-c', SUPERVISOR_SCRIPT, 'vivarium-supervisor', req.runtime.exitStatus, req.binary, ...req.args], {
      detached: true,
      env,
      stdio: ['ignore', log.fd, log.fd],
      cwd: req.runtime.dir,
    });
  } finally {
    await log.close();
  }
  const supervisorPid = child.pid;
  child.unref();
  if (supervisorPid === undefined) throw errors.qemu('Could not start /bin/sh to supervise QEMU.');
  let childExited = false;
  child.once('exit', () => {
    childExited = true;
  });

  // Ready = QEMU answers on QMP. Its pidfile and QMP socket appear early, before it has set up
  // disks, networking (a host port forward that is taken fails here) or the display; the monitor
  // greets only once initialisation is over and the main loop runs. Failed = the supervisor recorded
  // an exit status.
  const deadline = Date.now() + (req.timeoutMs ?? 30_000);
  const failed = async (status: number | null) => {
    const last = await lastLinesAsync(req.logFile, 3);
    const lockedImage = lockedImageOf(last);
    return errors.qemu(`QEMU refused to start: ${explainQemuError(last) || `exit status ${status}`}`, {
      stderrTail: await lastLinesAsync(req.logFile, 20),
      ...(lockedImage !== null ? { lockedImage } : {}),
    });
  };
  for (;;) {
    const status = await readExitStatusAsync(req.runtime.exitStatus);
    if (status !== null || childExited) throw await failed(status);
    const pid = await readPidFileAsync(req.runtime.pidfile);
    if (pid !== null && (await fileExists(req.runtime.qmp))) {
      try {
        const qmp = await QmpClient.connect(req.runtime.qmp, { timeoutMs: Math.max(500, deadline - Date.now()) });
        qmp.close();
        return { pid, supervisorPid };
      } catch {
        // QEMU died while initialising (the loop reports why), or is still busy: look again.
      }
    }
    if (Date.now() > deadline) {
      try {
        process.kill(-supervisorPid, 'SIGKILL');
      } catch {
        // already gone
      }
      const secs = Math.round((req.timeoutMs ?? 30_000) / 1000);
      throw errors.timeout(`QEMU did not come up within ${secs} seconds; it was stopped. See qemu.log in the VM folder.`);
    }
    await sleep(10);
  }
}

/**
 * QEMU's last words as a sentence: without the timestamp and program prefix, and with the common
 * cases (a host port already taken, an image locked by another VM) said plainly.
 */
export function explainQemuError(lines: readonly string[]): string {
  const text = lines.map((l) => l.replace(/^\S+Z /, '').replace(/^qemu-system-[\w-]+: /, '')).join(' ');
  const port = /Could not set up host forwarding rule '(tcp|udp):[^:]*:(\d+)-/.exec(text);
  if (port) {
    return `host port ${port[2]} (${port[1]}) is already in use by another program, so the port forward cannot be set up. Free the port or change the VM's port forwards.`;
  }
  if (/Failed to get "write" lock/.test(text)) {
    const image = lockedImageOf(lines);
    return `${image !== null ? `the disk image ${image}` : 'a disk image of this VM'} is in use by another program (another VM, or a disk tool), and two programs writing one image would corrupt it. Stop that program first, then start the VM again.`;
  }
  if (/HV_DENIED/.test(text)) {
    // macOS: Hypervisor.framework needs the com.apple.security.hypervisor entitlement on the binary.
    return (
      `${text} (macOS refused this QEMU the Hypervisor framework: the binary lacks the com.apple.security.hypervisor entitlement. ` +
      "Homebrew's QEMU has it (`brew reinstall qemu`); sign a QEMU you built with it, or set the VM's accelerator to tcg.)"
    );
  }
  if (/Could not access KVM kernel module: Permission denied/.test(text)) {
    return `${text} (Add yourself to the kvm group: \`sudo usermod -aG kvm $USER\`, then log out and back in; or set the VM's accelerator to tcg.)`;
  }
  return text;
}

/** The image named by QEMU's 'Failed to get "write" lock … Is another process using the image
 *  [PATH]?' (block/file-posix.c raw_check_lock_bytes), or null. */
export function lockedImageOf(lines: readonly string[]): string | null {
  const text = lines.join(' ');
  if (!/Failed to get "write" lock/.test(text)) return null;
  return /Is another process using the image \[(.+?)\]\?/.exec(text)?.[1] ?? null;
}

async function removeIfSymlink(file: string): Promise<void> {
  try {
    if ((await fsp.lstat(file)).isSymbolicLink()) await fsp.rm(file);
  } catch {
    // absent: fine
  }
}

async function fileExists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `pid` is no longer the VM's QEMU. Returns false on timeout. */
export async function waitForExit(pid: number, id: string, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isQemuForAsync(pid, id)) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}
