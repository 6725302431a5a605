/**
 * Every file and socket name Vivarium uses, in one place (after Lima's filenames.go).
 *
 * Two roots:
 *  - the library (`home`): VM bundles, persistent; `$VIVARIUM_HOME` or the platform data folder.
 *  - the runtime dir: sockets, pidfiles, locks of running VMs; short (unix socket paths are capped at
 *    108 bytes on Linux and 104 on macOS), private (0700) and per library, so two libraries (two
 *    test runs) never see each other's VMs.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VivariumError, ErrorCode } from '../common/errors';

export const BUNDLES_DIR = 'vms';
export const HOST_CACHE_FILE = 'host-probe.json';

/** Files inside a VM bundle. */
export const BundleFile = {
  config: 'config.json',
  disk0: 'disk0.qcow2',
  uefiVars: 'efivars.qcow2',
  serialLog: 'serial.log',
  qemuLog: 'qemu.log',
  lastExit: 'last-exit.json',
  thumbnail: 'thumbnail.png',
  /** Vivarium's own log of what it did to this VM (each rung of the stop ladder, starts, exits). */
  eventLog: 'vivarium.log',
} as const;

/** Where `delete --keep-disks` moves a deleted VM's own disks. */
export const KEPT_DISKS_DIR = 'kept-disks';

/** Files inside a running VM's runtime folder. */
export const RuntimeFile = {
  qmp: 'qmp.sock',
  serial: 'serial.sock',
  vnc: 'vnc.sock',
  qga: 'qga.sock',
  pid: 'qemu.pid',
  /** Our record of the running VM: pid, argv, accel, startedAt (RuntimeRecord). */
  record: 'vm.json',
  /** Written by the supervising shell when QEMU exits: its exit status. */
  exitStatus: 'exit-status',
  /** Held (O_EXCL) while a start is in progress, so two starts can never race. */
  startLock: 'start.lock',
  /** Written when Vivarium itself asked QEMU to go (quit/TERM/KILL), so the exit reads "stopped". */
  stopRequested: 'stop-requested',
} as const;

export const ENGINE_SOCKET = 'engine.sock';
export const ENGINE_INFO = 'engine.json';

export function defaultHome(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.VIVARIUM_HOME) return path.resolve(env.VIVARIUM_HOME);
  const home = os.homedir();
  switch (platform) {
    case 'darwin':
      return path.join(home, 'Library', 'Application Support', 'Vivarium');
    case 'win32':
      return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'Vivarium');
    default:
      return path.join(env.XDG_DATA_HOME ?? path.join(home, '.local', 'share'), 'vivarium');
  }
}

/** A short, private runtime root for a given library. */
export function defaultRuntimeRoot(home: string, env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  const tag = createHash('sha256').update(home).digest('hex').slice(0, 8);
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  // XDG_RUNTIME_DIR is per user and 0700 already; elsewhere fall back to /tmp (macOS's $TMPDIR is too
  // long for socket paths).
  const base =
    platform === 'linux' && env.XDG_RUNTIME_DIR && env.XDG_RUNTIME_DIR.length < 40
      ? path.join(env.XDG_RUNTIME_DIR, 'vivarium')
      : path.join(platform === 'win32' ? os.tmpdir() : '/tmp', `vivarium-${uid}`);
  return path.join(base, tag);
}

export interface VmRuntimePaths {
  readonly dir: string;
  readonly qmp: string;
  readonly serial: string;
  readonly vnc: string;
  readonly qga: string;
  readonly pidfile: string;
  readonly record: string;
  readonly exitStatus: string;
  readonly startLock: string;
  readonly stopRequested: string;
}

export interface VmBundlePaths {
  readonly dir: string;
  readonly config: string;
  readonly serialLog: string;
  readonly qemuLog: string;
  readonly lastExit: string;
  readonly thumbnail: string;
  readonly eventLog: string;
  file(name: string): string;
}

/** Everything the argv builder needs to know about where things are. */
export interface VmPaths {
  readonly bundle: VmBundlePaths;
  readonly runtime: VmRuntimePaths;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class Layout {
  readonly bundlesDir: string;
  constructor(
    readonly home: string,
    readonly runtimeRoot: string,
  ) {
    this.bundlesDir = path.join(home, BUNDLES_DIR);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): Layout {
    const home = defaultHome(env);
    return new Layout(home, env.VIVARIUM_RUNTIME_DIR ? path.resolve(env.VIVARIUM_RUNTIME_DIR) : defaultRuntimeRoot(home, env));
  }

  get engineSocket(): string {
    return path.join(this.runtimeRoot, ENGINE_SOCKET);
  }
  get engineInfo(): string {
    return path.join(this.runtimeRoot, ENGINE_INFO);
  }
  get hostCache(): string {
    return path.join(this.home, HOST_CACHE_FILE);
  }

  /** Bundle folders are named by id only: a VM's name never becomes a path. */
  bundle(id: string): VmBundlePaths {
    assertUuid(id);
    const dir = path.join(this.bundlesDir, id);
    return {
      dir,
      config: path.join(dir, BundleFile.config),
      serialLog: path.join(dir, BundleFile.serialLog),
      qemuLog: path.join(dir, BundleFile.qemuLog),
      lastExit: path.join(dir, BundleFile.lastExit),
      thumbnail: path.join(dir, BundleFile.thumbnail),
      eventLog: path.join(dir, BundleFile.eventLog),
      file: (name: string) => {
        if (name.includes('/') || name.includes('\\') || name === '..' || name === '.') {
          throw new VivariumError(ErrorCode.InvalidArgument, `"${name}" is not a file name inside the bundle.`);
        }
        return path.join(dir, name);
      },
    };
  }

  runtime(id: string): VmRuntimePaths {
    assertUuid(id);
    // 12 hex chars of the UUID keep socket paths short; collisions are checked on start.
    const dir = path.join(this.runtimeRoot, id.replace(/-/g, '').slice(0, 12));
    const f = (n: string) => path.join(dir, n);
    return {
      dir,
      qmp: f(RuntimeFile.qmp),
      serial: f(RuntimeFile.serial),
      vnc: f(RuntimeFile.vnc),
      qga: f(RuntimeFile.qga),
      pidfile: f(RuntimeFile.pid),
      record: f(RuntimeFile.record),
      exitStatus: f(RuntimeFile.exitStatus),
      startLock: f(RuntimeFile.startLock),
      stopRequested: f(RuntimeFile.stopRequested),
    };
  }

  paths(id: string): VmPaths {
    return { bundle: this.bundle(id), runtime: this.runtime(id) };
  }
}

function assertUuid(id: string): void {
  if (!UUID_RE.test(id)) throw new VivariumError(ErrorCode.InvalidArgument, `"${id}" is not a VM id.`);
}

/**
 * Creates a private directory (0700), refusing one that is a symlink or owned by someone else —
 * the runtime root may live in a shared /tmp.
 */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (!st.isDirectory() || st.uid !== uid) {
    throw new VivariumError(
      ErrorCode.Internal,
      `${dir} is not a private directory owned by you. Remove it or set VIVARIUM_RUNTIME_DIR to another folder.`,
    );
  }
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** Atomic write: temp file in the same folder, fsync, rename, fsync the folder. */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // Directory fsync is not supported everywhere (Windows); the rename is still atomic.
  }
}
