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
/** Downloaded installer ISOs and images (verified), with their partial downloads (main/services/media). */
export const MEDIA_DIR = 'media';

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

/** The folder Vivarium itself creates for runtime state (per user), below which everything must be
 *  a private directory of ours. */
export function defaultRuntimeBase(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  // XDG_RUNTIME_DIR is per user and 0700 already; elsewhere fall back to /tmp (macOS's $TMPDIR is too
  // long for socket paths).
  return platform === 'linux' && env.XDG_RUNTIME_DIR && env.XDG_RUNTIME_DIR.length < 40
    ? path.join(env.XDG_RUNTIME_DIR, 'vivarium')
    : path.join(platform === 'win32' ? os.tmpdir() : '/tmp', `vivarium-${uid}`);
}

/** A short, private runtime root for a given library. */
export function defaultRuntimeRoot(home: string, env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  return path.join(defaultRuntimeBase(env, platform), runtimeTag(home));
}

/** A library's runtime folder name: short, stable, different for different libraries. */
function runtimeTag(home: string): string {
  return createHash('sha256').update(home).digest('hex').slice(0, 8);
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
  /** The top runtime folder Vivarium creates; it and everything below must be private and ours. */
  readonly runtimeBase: string;
  constructor(
    readonly home: string,
    readonly runtimeRoot: string,
    runtimeBase?: string,
  ) {
    this.bundlesDir = path.join(home, BUNDLES_DIR);
    this.runtimeBase = runtimeBase ?? runtimeRoot;
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): Layout {
    const home = defaultHome(env);
    // VIVARIUM_RUNTIME_DIR replaces the base; each library still gets its own folder below it, so
    // two libraries (and their engines) never share sockets.
    const base = env.VIVARIUM_RUNTIME_DIR ? path.resolve(env.VIVARIUM_RUNTIME_DIR) : defaultRuntimeBase(env);
    return new Layout(home, path.join(base, runtimeTag(home)), base);
  }

  /** Creates (if needed) and verifies a runtime folder and every level above it up to runtimeBase:
   *  each must be a real directory (not a symlink), owned by us, mode 0700. */
  ensureRuntimeDir(dir: string): void {
    ensurePrivateDir(dir, this.runtimeBase);
  }

  /** For clients: whether the runtime root exists, verifying it is ours before anything in it is
   *  trusted (another local user could pre-create a shared /tmp path and plant a fake engine). */
  runtimeRootIsOurs(): boolean {
    if (!fs.existsSync(this.runtimeRoot)) return false;
    verifyPrivateChain(this.runtimeRoot, this.runtimeBase);
    return true;
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
  /** `<library>/media`: downloaded installer ISOs and images (main/services/media). */
  get mediaDir(): string {
    return path.join(this.home, MEDIA_DIR);
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
    // The whole id without dashes (32 chars): still well under the 104/108-byte socket path limits
    // with the short runtime roots above, and never shared by two VMs.
    const dir = path.join(this.runtimeRoot, id.replace(/-/g, ''));
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

/** The levels from `base` down to `dir` (just `dir` when it is not below `base`). */
function chain(dir: string, base: string): string[] {
  const rel = path.relative(base, dir);
  if (rel === '' ) return [base];
  if (rel.startsWith('..') || path.isAbsolute(rel)) return [dir];
  const out = [base];
  for (const part of rel.split(path.sep)) out.push(path.join(out[out.length - 1]!, part));
  return out;
}

function refusePrivate(dir: string, why: string): never {
  throw new VivariumError(
    ErrorCode.Internal,
    `${dir} ${why}, so it is not safe for Vivarium's sockets. Remove it (or set VIVARIUM_RUNTIME_DIR to a private folder) and try again.`,
  );
}

/** Checks one level: a real directory owned by us; tightens its mode if it is ours but too open. */
function checkPrivate(dir: string): void {
  const st = fs.lstatSync(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (st.isSymbolicLink()) refusePrivate(dir, 'is a symbolic link');
  if (!st.isDirectory()) refusePrivate(dir, 'is not a directory');
  if (st.uid !== uid) refusePrivate(dir, `belongs to another user (uid ${st.uid})`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

function verifyPrivateChain(dir: string, base: string): void {
  for (const level of chain(dir, base)) checkPrivate(level);
}

/**
 * Creates a private directory (0700) and every level from `base` down to it, one mkdir at a time,
 * refusing any level that is a symlink or owned by someone else — the runtime base may live in a
 * shared /tmp where another user could have created it first.
 */
export function ensurePrivateDir(dir: string, base: string = dir): void {
  const levels = chain(dir, base);
  fs.mkdirSync(path.dirname(levels[0]!), { recursive: true });
  for (const level of levels) {
    try {
      fs.mkdirSync(level, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    checkPrivate(level);
  }
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
