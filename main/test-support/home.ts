/**
 * A private Vivarium library and runtime folder per test, and a cleanup that leaves nothing behind:
 * no QEMU, no engine, no temp folder.
 *
 *   let t: TestHome;
 *   beforeEach(() => { t = makeTestHome(); });
 *   afterEach(() => t.cleanup());
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RuntimeFile } from '../services/paths';
import { isAlive, processesMentioning, processesWithEnv } from './qemu-procs';

export interface TestHome {
  /** VIVARIUM_HOME: the library (bundles). */
  readonly home: string;
  /** VIVARIUM_RUNTIME_DIR: sockets and pidfiles; short, because unix socket paths are capped at 108 bytes. */
  readonly runtimeDir: string;
  /** process.env plus the two variables above: pass it to every process the test starts. */
  readonly env: NodeJS.ProcessEnv;
  /** Kills every process started for this home (SIGKILL), waits for them, removes both folders. */
  cleanup(): Promise<void>;
}

const KILL_WAIT_MS = 10_000;

export function makeTestHome(): TestHome {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-home-'));
  const runtimeDir = fs.mkdtempSync('/tmp/viv-');
  const env: NodeJS.ProcessEnv = { ...process.env, VIVARIUM_HOME: home, VIVARIUM_RUNTIME_DIR: runtimeDir };
  let done = false;
  return {
    home,
    runtimeDir,
    env,
    cleanup: async () => {
      if (done) return;
      done = true;
      const survivors = await killLeftovers(home, runtimeDir);
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(runtimeDir, { recursive: true, force: true });
      if (survivors.length > 0) {
        throw new Error(`Processes ${survivors.join(', ')} of test home ${home} survived SIGKILL for ${KILL_WAIT_MS} ms.`);
      }
    },
  };
}

/** PIDs from every <runtimeDir>/<vm>/qemu.pid (and one in the root itself, should a VM put it there). */
export function pidfilePids(runtimeDir: string): readonly number[] {
  // <runtimeDir>/<library tag>/<vm id>/qemu.pid, and one level up for safety.
  const files = [path.join(runtimeDir, RuntimeFile.pid)];
  const subdirs = (dir: string): string[] => {
    try {
      return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name));
    } catch {
      return [];
    }
  };
  for (const lib of subdirs(runtimeDir)) {
    files.push(path.join(lib, RuntimeFile.pid));
    for (const vm of subdirs(lib)) files.push(path.join(vm, RuntimeFile.pid));
  }
  const pids: number[] = [];
  for (const f of files) {
    try {
      const pid = Number.parseInt(fs.readFileSync(f, 'utf8').trim(), 10);
      if (Number.isInteger(pid) && pid > 1) pids.push(pid);
    } catch {
      // no pidfile there
    }
  }
  return pids;
}

/** Everything started for this home: returns the PIDs still alive after SIGKILL and a wait. */
async function killLeftovers(home: string, runtimeDir: string): Promise<readonly number[]> {
  const mentioning = new Set([...processesMentioning(runtimeDir), ...processesMentioning(home)].map((p) => p.pid));
  // A pidfile left by a crash may name a PID since reused by someone else: only kill it if the
  // process is really one of ours (its command line names our folders).
  const fromPidfiles = pidfilePids(runtimeDir).filter((pid) => mentioning.has(pid));
  // Backstop for processes whose arguments don't name the folders (an engine, a CLI): they were
  // started with our environment.
  const withEnv = processesWithEnv('VIVARIUM_RUNTIME_DIR', runtimeDir);
  const targets = [...new Set([...fromPidfiles, ...mentioning, ...withEnv])].filter(
    (pid) => pid !== process.pid && pid !== process.ppid,
  );
  for (const pid of targets) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  let alive = targets.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    alive = alive.filter(isAlive);
  }
  return alive;
}
