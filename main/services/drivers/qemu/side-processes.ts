/**
 * Running a launch plan's side processes (swtpm, virtiofsd, …) and generated files
 * (main/services/qemu/launch-plan.ts): files are written first, then each helper is started detached
 * in order and waited for (`readyWhen`); if any fails, those already started are ended and the start
 * fails with the helper's own last words. Ending them with QEMU is the supervising shell's job
 * (qemu/process.ts), so they end with it even when no Vivarium is running then.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import { errors } from '../../../common/errors';
import type { GeneratedFile, ReadyCondition, SideProcess } from '../../qemu/launch-plan';
import { PRIVATE_FILE_MODE, writeFileAtomicAsync } from '../../paths';
import { pidAlive } from '../../runtime/records';
import { lastLinesAsync } from '../../runtime/tail';

/** A side process that runs: what ending it needs. */
export interface StartedSide {
  readonly name: string;
  readonly pid: number;
  /** Between SIGTERM and SIGKILL, ms. */
  readonly stopTimeoutMs: number;
}

/** Makes a `generator` file; none are known yet (cloud-init seeds are written by provisioning/). */
export type FileGenerator = (path: string, inputs: Readonly<Record<string, string>>) => Promise<void>;

/**
 * Writes every generated file (text atomically, 0600 unless the plan says otherwise).
 * @throws Error for a generator this driver does not know: a bug in the plan, not a user error.
 */
export async function writeGeneratedFiles(files: readonly GeneratedFile[], generators: Readonly<Record<string, FileGenerator>> = {}): Promise<void> {
  for (const f of files) {
    switch (f.kind) {
      case 'text':
        await writeFileAtomicAsync(f.path, f.contents, f.mode ?? PRIVATE_FILE_MODE);
        break;
      case 'generator': {
        const make = generators[f.generator];
        if (!make) throw new Error(`The launch plan names a file generator this driver does not know: "${f.generator}".`);
        await make(f.path, f.inputs);
        break;
      }
    }
  }
}

/** Transient generated files, removed after QEMU exits. */
export function transientFiles(files: readonly GeneratedFile[]): string[] {
  return files.filter((f) => f.transient).map((f) => f.path);
}

/**
 * Starts the side processes in order, each detached (its own session: it outlives this process like
 * QEMU does), waiting for each one's readiness before the next.
 * @throws VivariumError qemu-failed naming the helper that did not come up, with its log's last lines.
 */
export async function startSideProcesses(sides: readonly SideProcess[], cwd: string): Promise<StartedSide[]> {
  const started: StartedSide[] = [];
  try {
    for (const side of sides) {
      for (const dir of side.stateDirs ?? []) {
        await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
        await fsp.chmod(dir, 0o700);
      }
      const log = side.logFile === null ? null : await fsp.open(side.logFile, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW, PRIVATE_FILE_MODE);
      const out = log === null ? 'ignore' : log.fd;
      let child;
      try {
        child = spawn(side.binary, [...side.args], { detached: true, stdio: ['ignore', out, out], cwd });
      } finally {
        await log?.close();
      }
      const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
      let exited: number | string | null = null;
      child.once('exit', (code, signal) => (exited = signal ?? code));
      child.unref();
      const pid = child.pid;
      if (pid === undefined) throw errors.qemu(`${side.name} could not be started: ${(await spawnError).message}.`);
      started.push({ name: side.name, pid, stopTimeoutMs: side.stopTimeoutMs });
      const deadline = Date.now() + side.readyTimeoutMs;
      while (!(await isReady(side.readyWhen))) {
        const tail = side.logFile ? ` ${(await lastLinesAsync(side.logFile, 3)).join(' ')}` : '';
        if (exited !== null) throw errors.qemu(`${side.name} ended before it was ready (exit ${exited}).${tail}`, { side: side.name });
        if (Date.now() > deadline) {
          throw errors.timeout(`${side.name} was not ready within ${+(side.readyTimeoutMs / 1000).toFixed(1)} s.${tail}`, { side: side.name });
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    return started;
  } catch (e) {
    await stopSideProcesses(started);
    throw e;
  }
}

/** Ends side processes: SIGTERM, then SIGKILL after each one's stop timeout. */
export async function stopSideProcesses(started: readonly StartedSide[]): Promise<void> {
  for (const s of started) signal(s.pid, 'SIGTERM');
  const deadline = Date.now() + Math.max(0, ...started.map((s) => s.stopTimeoutMs));
  while (started.some((s) => pidAlive(s.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const s of started) if (pidAlive(s.pid)) signal(s.pid, 'SIGKILL');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function isReady(c: ReadyCondition): Promise<boolean> {
  switch (c.kind) {
    case 'started':
      return true;
    case 'file':
      try {
        await fsp.lstat(c.path);
        return true;
      } catch {
        return false;
      }
    case 'socket':
      return new Promise((resolve) => {
        const s = net.createConnection(c.path);
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => (s.destroy(), resolve(false)));
      });
  }
}
