/**
 * Child processes of long jobs (qemu-img convert in a clone, a flatten, an image import) that die
 * with the Vivarium process that started them (issue 10 finding 4: a CLI killed mid-clone left
 * `qemu-img convert` running for a minute, holding the source image's lock).
 *
 * - On Linux each child is started through util-linux's `setpriv --pdeathsig KILL` (prctl
 *   PR_SET_PDEATHSIG, then exec: the child keeps its pid), so the kernel kills it when its parent
 *   dies, even by SIGKILL. Without setpriv (another OS, a host without util-linux) it is spawned
 *   as it is.
 * - On SIGINT, SIGTERM or SIGHUP of this process, the live children are killed and the registered
 *   clean-ups run (`onInterrupt`: e.g. removing an export's `.part` file); when nothing else
 *   listens for that signal the process then dies of it as it would have (exit 128+n).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams, type SpawnOptionsWithoutStdio } from 'node:child_process';
import * as fs from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

let setprivWorks: boolean | null = null;

/** Whether `setpriv --pdeathsig` runs here (checked once per process: util-linux ≥ 2.33 has it). */
export function canTieChildren(): boolean {
  if (setprivWorks === null) {
    setprivWorks =
      // eslint-disable-next-line no-restricted-syntax -- once per process (memoised in setprivWorks)
      process.platform === 'linux' && fs.existsSync(SETPRIV) && spawnSync(SETPRIV, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  }
  return setprivWorks;
}

const cleanups = new Set<() => void>();
const children = new Set<ChildProcessWithoutNullStreams>();
let listening = false;
/** Signals someone else (`vivarium serve`'s shutdown) already handled when we started listening. */
const handledElsewhere = new Set<NodeJS.Signals>();

function onSignal(sig: NodeJS.Signals): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  children.clear();
  for (const f of [...cleanups]) {
    try {
      f();
    } catch {
      // best effort: the process is going away
    }
  }
  cleanups.clear();
  const elsewhere = handledElsewhere.has(sig);
  unlisten();
  // Nobody else handles this signal (a once-listener may already be gone from the count, hence the
  // note taken when we started listening): die of it, as without our handler.
  if (!elsewhere && process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function listen(): void {
  if (listening) return;
  listening = true;
  handledElsewhere.clear();
  for (const s of SIGNALS) {
    if (process.listenerCount(s) > 0) handledElsewhere.add(s);
    process.on(s, onSignal);
  }
}

function unlisten(): void {
  if (!listening) return;
  listening = false;
  for (const s of SIGNALS) process.off(s, onSignal);
}

function settle(): void {
  if (cleanups.size === 0 && children.size === 0) unlisten();
}

/**
 * Runs the synchronous `cleanup` if this process gets SIGINT, SIGTERM or SIGHUP before the returned
 * function is called (which unregisters it).
 */
export function onInterrupt(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  listen();
  return () => {
    cleanups.delete(cleanup);
    settle();
  };
}

/**
 * `spawn(command, args, options)` (stdio pipes), tied to this process: killed by the kernel when it
 * dies (Linux, setpriv), and by SIGKILL when it gets SIGINT/SIGTERM/SIGHUP.
 */
export function spawnTied(command: string, args: readonly string[], options: SpawnOptionsWithoutStdio = {}): ChildProcessWithoutNullStreams {
  const child = canTieChildren() ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args], options) : spawn(command, [...args], options);
  children.add(child);
  listen();
  const done = (): void => {
    children.delete(child);
    settle();
  };
  child.once('exit', done);
  child.once('error', done);
  return child;
}
