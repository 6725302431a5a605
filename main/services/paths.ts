/**
 * Every file and socket name Vivarium uses, in one place (after Lima's filenames.go).
 *
 * Two roots:
 *  - the library (`home`): VM bundles, persistent; `$VIVARIUM_HOME` or the platform data folder.
 *  - the runtime dir: sockets, pidfiles, locks of running VMs; short (unix socket paths are capped at
 *    108 bytes on Linux and 104 on macOS), private (0700) and per library, so two libraries (two
 *    test runs) never see each other's VMs.
 */
import { createHash, randomBytes } from 'node:crypto';
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
  /** Held (O_EXCL, with the holder's pid) by a `vivarium serial` attached straight to serial.sock,
   *  which takes one client: a second attach is refused instead of queued. */
  serialAttachLock: 'serial-attach.lock',
} as const;

export const ENGINE_SOCKET = 'engine.sock';
export const ENGINE_INFO = 'engine.json';

/**
 * The absolute path a folder variable names. A relative one is refused: it would be read against
 * whichever folder a command happens to run in, so two commands could see two different libraries
 * (or runtime folders, and so disagree about what is running).
 * @throws VivariumError invalid-argument naming the variable.
 */
export function absoluteFromEnv(variable: 'VIVARIUM_HOME' | 'VIVARIUM_RUNTIME_DIR', value: string): string {
  if (!path.isAbsolute(value)) {
    throw new VivariumError(
      ErrorCode.InvalidArgument,
      `${variable} is "${value}", a relative path: it would mean a different folder in each folder you run Vivarium from. Set it to an absolute path (e.g. ${variable}="$PWD/${value}") and try again.`,
      { variable, value },
    );
  }
  return path.resolve(value);
}

export function defaultHome(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.VIVARIUM_HOME) return absoluteFromEnv('VIVARIUM_HOME', env.VIVARIUM_HOME);
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

/**
 * The longest unix socket path a platform accepts, in bytes without the terminating NUL:
 * sockaddr_un.sun_path is 108 bytes on Linux, 104 on macOS and the BSDs (sys/un.h).
 */
export function maxSocketPathBytes(platform: NodeJS.Platform = process.platform): number {
  return platform === 'linux' ? 107 : 103;
}

/** Refuses a socket path QEMU could not bind on this platform, saying what to change. */
export function assertSocketPathFits(socketPath: string, platform: NodeJS.Platform = process.platform): void {
  const bytes = Buffer.byteLength(socketPath);
  const max = maxSocketPathBytes(platform);
  if (bytes <= max) return;
  const os = platform === 'darwin' ? 'macOS' : platform === 'linux' ? 'Linux' : platform;
  throw new VivariumError(
    ErrorCode.InvalidArgument,
    `The runtime folder's path is too long for unix sockets on ${os}: ${socketPath} is ${bytes} bytes, at most ${max} work. ` +
      'Set VIVARIUM_RUNTIME_DIR to a shorter folder (e.g. /tmp/vivarium-$UID), or unset it to use the default.',
  );
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
  readonly serialAttachLock: string;
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
  /** The top runtime folder; it and everything below must be ours and closed to other users. */
  readonly runtimeBase: string;
  /** The runtime base is the user's VIVARIUM_RUNTIME_DIR (a folder Vivarium may not have made):
   *  it is checked but never chmod'ed; Vivarium's private folder is the level below it. */
  readonly runtimeBaseGiven: boolean;
  constructor(
    readonly home: string,
    readonly runtimeRoot: string,
    runtimeBase?: string,
    runtimeBaseGiven = false,
  ) {
    this.bundlesDir = path.join(home, BUNDLES_DIR);
    this.runtimeBase = runtimeBase ?? runtimeRoot;
    this.runtimeBaseGiven = runtimeBaseGiven;
  }

  /** @throws VivariumError invalid-argument when VIVARIUM_HOME or VIVARIUM_RUNTIME_DIR is relative. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): Layout {
    const home = defaultHome(env);
    // VIVARIUM_RUNTIME_DIR replaces the base; each library still gets its own folder below it, so
    // two libraries (and their engines) never share sockets.
    const given = !!env.VIVARIUM_RUNTIME_DIR;
    const base = env.VIVARIUM_RUNTIME_DIR ? absoluteFromEnv('VIVARIUM_RUNTIME_DIR', env.VIVARIUM_RUNTIME_DIR) : defaultRuntimeBase(env);
    return new Layout(home, path.join(base, runtimeTag(home)), base, given);
  }

  /** Creates (if needed) and verifies a runtime folder and every level above it up to runtimeBase:
   *  each must be a real directory (not a symlink), owned by us, that no other user may write to;
   *  the levels Vivarium names are made 0700 (tightened if looser), a given base is left as it is. */
  ensureRuntimeDir(dir: string): void {
    ensurePrivateDir(dir, this.runtimeBase, { baseGiven: this.runtimeBaseGiven });
  }

  /** ensureRuntimeDir without blocking the event loop. */
  ensureRuntimeDirAsync(dir: string): Promise<void> {
    return ensurePrivateDirAsync(dir, this.runtimeBase, { baseGiven: this.runtimeBaseGiven });
  }

  /** For clients: whether the runtime root exists, verifying it is ours before anything in it is
   *  trusted (another local user could pre-create a shared /tmp path and plant a fake engine). */
  runtimeRootIsOurs(): boolean {
    // eslint-disable-next-line no-restricted-syntax -- clients only (the CLI asks before it connects; no engine runs this)
    if (!fs.existsSync(this.runtimeRoot)) return false;
    verifyPrivateChain(this.runtimeRoot, this.runtimeBase, this.runtimeBaseGiven);
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

  runtime(id: string, platform: NodeJS.Platform = process.platform): VmRuntimePaths {
    assertUuid(id);
    // serial.sock is the longest socket name (qmp/vnc/qga are shorter).
    assertSocketPathFits(path.join(this.runtimeRoot, id.replace(/-/g, ''), RuntimeFile.serial), platform);
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
      serialAttachLock: f(RuntimeFile.serialAttachLock),
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

/** Folders that belong to everyone: never a runtime folder of ours, never chmod'ed. */
const SHARED_FOLDERS: ReadonlySet<string> = new Set(['/', '/tmp', '/var/tmp', '/dev/shm', '/run', '/private/tmp', path.resolve(os.tmpdir())]);

/** A folder Vivarium must never narrow, even when it is (mis)used as the library: a shared one, or
 *  the user's own home folder. */
function neverNarrow(dir: string): boolean {
  const d = path.resolve(dir);
  return SHARED_FOLDERS.has(d) || d === path.resolve(os.homedir());
}

/** What to do about VIVARIUM_RUNTIME_DIR itself: the fix is the variable, never the folder it names. */
const SET_RUNTIME_DIR = 'Set VIVARIUM_RUNTIME_DIR to the absolute path of a folder of your own that no one else can write to (a missing one is created), or unset it, and try again.';

function refusePrivate(dir: string, why: string, advice: string): never {
  throw new VivariumError(ErrorCode.InvalidState, `${dir} ${why}, so it is not safe for Vivarium's sockets. ${advice}`, { path: dir });
}

/**
 * Checks one level: a real directory owned by us that no other user may write to. A level Vivarium
 * names itself (`given` false) is tightened to 0700 when looser; the folder the user gave as
 * VIVARIUM_RUNTIME_DIR (`given`) is never chmod'ed — a 0755 folder of theirs (even their home) stays
 * 0755, since Vivarium keeps its sockets in a 0700 folder of its own below it.
 */
function checkPrivate(dir: string, given = false): void {
  // eslint-disable-next-line no-restricted-syntax -- the synchronous forms' check (ensureRuntimeDir: RunStates.get's one-turn reconciliation and adoption, engine-host.ts once before the engine serves; runtimeRootIsOurs: clients only); one lstat
  const st = fs.lstatSync(dir);
  // eslint-disable-next-line no-restricted-syntax -- as above
  if (mustTighten(dir, st, given)) fs.chmodSync(dir, 0o700);
}

/** checkPrivate without blocking the event loop. */
async function checkPrivateAsync(dir: string, given = false): Promise<void> {
  const st = await fs.promises.lstat(dir);
  if (mustTighten(dir, st, given)) await fs.promises.chmod(dir, 0o700);
}

/** checkPrivate's verdict on a level's lstat: a refusal (thrown), or whether to chmod it 0700. */
function mustTighten(dir: string, st: fs.Stats, given: boolean): boolean {
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  // For the given folder the user changes the variable; for a folder Vivarium names (/tmp/vivarium-UID…)
  // a stray link or file of theirs can go.
  const removeOrSet = given ? SET_RUNTIME_DIR : 'Remove it (or set VIVARIUM_RUNTIME_DIR to a new, empty folder of your own) and try again.';
  if (st.isSymbolicLink()) refusePrivate(dir, 'is a symbolic link', removeOrSet);
  if (!st.isDirectory()) refusePrivate(dir, 'is not a directory', removeOrSet);
  if (st.uid !== uid) refusePrivate(dir, `belongs to another user (uid ${st.uid})`, SET_RUNTIME_DIR);
  const modeText = (st.mode & 0o7777).toString(8).padStart(4, '0');
  // A shared folder (/tmp itself, mode 1777, or one anybody may write to) is refused, never
  // chmod'ed: narrowing /tmp to 0700 as root would break every other program on the machine. The
  // system's shared folders are refused by name too, whatever their mode today.
  if ((st.mode & 0o1000) !== 0 || (st.mode & 0o002) !== 0 || SHARED_FOLDERS.has(path.resolve(dir))) {
    refusePrivate(dir, `is a shared folder (mode ${modeText}: others may create files in it)`, 'Set VIVARIUM_RUNTIME_DIR to a new, empty folder of your own (or unset it) and try again.');
  }
  if (given) {
    // Group members could rename Vivarium's folder away and plant their own: refused, not narrowed.
    if ((st.mode & 0o020) !== 0) refusePrivate(dir, `can be written by its group (mode ${modeText})`, SET_RUNTIME_DIR);
    return false;
  }
  return (st.mode & 0o077) !== 0;
}

function verifyPrivateChain(dir: string, base: string, baseGiven = false): void {
  for (const level of chain(dir, base)) checkPrivate(level, baseGiven && level === base);
}

/* eslint-disable no-restricted-syntax -- the synchronous form, as checkPrivate: a mkdir per missing level, then the checks */
/**
 * Creates a private directory (0700) and every level from `base` down to it, one mkdir at a time,
 * refusing any level that is a symlink or owned by someone else — the runtime base may live in a
 * shared /tmp where another user could have created it first. `baseGiven`: `base` is the user's
 * VIVARIUM_RUNTIME_DIR, checked but never chmod'ed (checkPrivate).
 */
export function ensurePrivateDir(dir: string, base: string = dir, opts: { readonly baseGiven?: boolean } = {}): void {
  const levels = chain(dir, base);
  fs.mkdirSync(path.dirname(levels[0]!), { recursive: true });
  for (const level of levels) {
    try {
      fs.mkdirSync(level, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    checkPrivate(level, opts.baseGiven === true && level === base);
  }
}
/* eslint-enable no-restricted-syntax */

/** ensurePrivateDir without blocking the event loop (same levels, same checks, same errors). */
export async function ensurePrivateDirAsync(dir: string, base: string = dir, opts: { readonly baseGiven?: boolean } = {}): Promise<void> {
  const levels = chain(dir, base);
  await fs.promises.mkdir(path.dirname(levels[0]!), { recursive: true });
  for (const level of levels) {
    try {
      await fs.promises.mkdir(level, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    await checkPrivateAsync(level, opts.baseGiven === true && level === base);
  }
}


// ---- private files ------------------------------------------------------------------------------
//
// Everything Vivarium writes is private to its user: a VM's disk, serial log and config are as
// personal as a home folder. Three layers make that true whoever does the writing:
//  1. the process umask is 077 (usePrivateUmask), so files QEMU, qemu-img and the supervising shell
//     create — which never pass through our code — are born owner-only;
//  2. our own writers pass explicit modes and fchmod the new file, so a writer in a process that
//     could not set the umask (a worker thread) is still private;
//  3. a library made by an older version, or touched by other tools, is tightened once on first use
//     (tightenLibrary), and the user is told.

/** Mode of every folder Vivarium creates: owner only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of every file Vivarium creates: owner read/write only. */
export const PRIVATE_FILE_MODE = 0o600;
/** The umask Vivarium runs with (and its children inherit). */
export const PRIVATE_UMASK = 0o077;
/** The largest config.json (or other small JSON file of ours) read: real ones are a few KiB. */
export const MAX_SMALL_FILE_BYTES = 1024 * 1024;

const IS_WINDOWS = process.platform === 'win32';
const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const NONBLOCK = fs.constants.O_NONBLOCK ?? 0;

/**
 * Sets the process umask to (at least) 077, so every file this process and the programs it spawns
 * (QEMU with its logfile and serial.log, qemu-img outputs, the supervisor's exit-status file) create
 * is owner-only whatever the user's umask. Returns false where a umask cannot be set (Windows, a
 * worker thread); our own writers set modes explicitly either way.
 */
export function usePrivateUmask(): boolean {
  if (IS_WINDOWS) return false;
  try {
    const old = process.umask(PRIVATE_UMASK);
    if ((old | PRIVATE_UMASK) !== PRIVATE_UMASK) process.umask(old | PRIVATE_UMASK);
    return true;
  } catch {
    return false; // ERR_WORKER_UNSUPPORTED_OPERATION
  }
}

/** The file's name as a person would look for it in a VM folder: `config.json`, `vivarium.log`. */
function shortName(file: string): string {
  return path.basename(file);
}

/** The error for a symbolic link where Vivarium expects a file or folder of its own. The message
 *  never includes anything read from the link's target. */
export function symlinkError(file: string): VivariumError {
  return new VivariumError(
    ErrorCode.BrokenBundle,
    `${shortName(file)} is a symbolic link; Vivarium does not follow links in a VM folder. Replace it with a real file (or remove it) and try again.`,
    { path: file },
  );
}

function notRegularError(file: string): VivariumError {
  return new VivariumError(
    ErrorCode.BrokenBundle,
    `${shortName(file)} is not a regular file (a folder, pipe or device sits in its place). Remove it and try again.`,
    { path: file },
  );
}

function mib(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / (1024 * 1024)));
}

/** Free bytes on the filesystem holding `p` (its nearest existing ancestor), or null. */
function freeBytes(p: string): number | null {
  for (let dir = p; ; dir = path.dirname(dir)) {
    try {
      // eslint-disable-next-line no-restricted-syntax -- expectedFsError is synchronous (used in sync and async writers' catch blocks); one statfs, only when a write already failed for space
      const s = fs.statfsSync(dir);
      return s.bavail * s.bsize;
    } catch {
      if (path.dirname(dir) === dir) return null;
    }
  }
}

/**
 * Turns a file system failure into an expected error a person can act on — a full disk (ENOSPC), a
 * used-up quota (EDQUOT), a read-only filesystem (EROFS), a symbolic link where we refuse one
 * (ELOOP from an O_NOFOLLOW open) — and returns anything else unchanged (a bug stays a bug).
 * `neededBytes`, when known, is said in the message ("N MB needed").
 */
export function expectedFsError(e: unknown, file: string, neededBytes?: number): unknown {
  if (e instanceof VivariumError) return e;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const need = neededBytes !== undefined && neededBytes > 0 ? `; ${mib(neededBytes)} MB needed` : '';
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT': {
      const free = freeBytes(path.dirname(file));
      const what = code === 'EDQUOT' ? 'your disk quota on the disk holding your library is used up' : 'the disk holding your library is full';
      const freeText = free !== null ? ` (${Math.floor(free / (1024 * 1024))} MB free)` : '';
      return new VivariumError(
        ErrorCode.DiskFull,
        `Could not write ${shortName(file)}: ${what}${need}${freeText}. Free some space and try again.`,
        { path: file, errno: code, ...(neededBytes !== undefined ? { neededBytes } : {}), ...(free !== null ? { freeBytes: free } : {}) },
      );
    }
    case 'EROFS':
      return new VivariumError(ErrorCode.InvalidState, `Could not write ${file}: its filesystem is read-only. Remount it read-write and try again.`, {
        path: file,
        errno: code,
      });
    case 'ELOOP':
      return symlinkError(file);
    default:
      return e;
  }
}

/** Writes all of `buf` (write(2) may take less than asked). */
function writeAll(fd: number, buf: Uint8Array): void {
  // eslint-disable-next-line no-restricted-syntax -- writeFileAtomic's step (see there)
  for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
}

function tempName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

/* eslint-disable no-restricted-syntax -- writeFileAtomic's step (see there) */
function fsyncDir(dir: string): void {
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // Directory fsync is not supported everywhere (Windows); the rename is still atomic.
  }
}
/* eslint-enable no-restricted-syntax */

/* eslint-disable no-restricted-syntax -- the synchronous form for callers that cannot await (runtime records under RunStates.get, the driver's stop ladder); writeFileAtomicAsync elsewhere */
/**
 * Atomic write: a new temp file in the same folder (O_EXCL|O_NOFOLLOW, mode `mode`, fchmod'ed so the
 * umask cannot loosen or tighten it), fsync, rename over `file`, fsync the folder. A failure at any
 * step removes the temp file and throws; a full disk becomes an expected error (expectedFsError).
 * `file` being a symbolic link does not matter: rename replaces the link, never its target.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode: number = PRIVATE_FILE_MODE): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const tmp = tempName(file);
  let fd: number;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW, mode);
  } catch (e) {
    throw expectedFsError(e, file, buf.length);
  }
  try {
    try {
      if (!IS_WINDOWS) fs.fchmodSync(fd, mode);
      writeAll(fd, buf);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw expectedFsError(e, file, buf.length);
  }
  fsyncDir(path.dirname(file));
}
/* eslint-enable no-restricted-syntax */

/** writeFileAtomic without blocking the event loop (same guarantees). */
export async function writeFileAtomicAsync(file: string, data: string | Uint8Array, mode: number = PRIVATE_FILE_MODE): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const tmp = tempName(file);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW, mode);
  } catch (e) {
    throw expectedFsError(e, file, buf.length);
  }
  try {
    try {
      if (!IS_WINDOWS) await fh.chmod(mode);
      await fh.writeFile(buf);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw expectedFsError(e, file, buf.length);
  }
  try {
    const dh = await fs.promises.open(path.dirname(file), 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // as fsyncDir
  }
}

const APPEND_FLAGS = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | NOFOLLOW | NONBLOCK;

/* eslint-disable no-restricted-syntax -- the synchronous form (tests, scripts); the engine appends with appendFileNoFollowAsync */
/**
 * Appends to a log in a VM folder without ever following a link: O_NOFOLLOW (a planted
 * `vivarium.log -> ~/.bashrc` is refused with symlinkError, nothing is written), O_NONBLOCK plus an
 * fstat check (a FIFO or device in its place is refused instead of blocking or writing to it). A new
 * file is created `mode` (0600).
 */
export function appendFileNoFollow(file: string, data: string | Uint8Array, mode: number = PRIVATE_FILE_MODE): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let fd: number;
  try {
    fd = fs.openSync(file, APPEND_FLAGS, mode);
  } catch (e) {
    throw expectedFsError(e, file, buf.length);
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw notRegularError(file);
    writeAll(fd, buf);
  } catch (e) {
    throw expectedFsError(e, file, buf.length);
  } finally {
    fs.closeSync(fd);
  }
}
/* eslint-enable no-restricted-syntax */

/** appendFileNoFollow without blocking the event loop. */
export async function appendFileNoFollowAsync(file: string, data: string | Uint8Array, mode: number = PRIVATE_FILE_MODE): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, APPEND_FLAGS, mode);
  } catch (e) {
    throw expectedFsError(e, file, buf.length);
  }
  try {
    if (!(await fh.stat()).isFile()) throw notRegularError(file);
    await fh.appendFile(buf);
  } catch (e) {
    throw expectedFsError(e, file, buf.length);
  } finally {
    await fh.close();
  }
}

const READ_FLAGS = fs.constants.O_RDONLY | NOFOLLOW | NONBLOCK;

function tooBigError(file: string, size: number, maxBytes: number): VivariumError {
  return new VivariumError(
    ErrorCode.BrokenBundle,
    `${shortName(file)} is ${mib(size)} MB, far larger than Vivarium ever writes (at most ${mib(maxBytes)} MB); it was not read. Replace it with a valid file.`,
    { path: file, size },
  );
}

/* eslint-disable no-restricted-syntax -- the synchronous form for sync readers (BundleStore.list, RunStates.lastExit, readEngineInfo); readFileNoFollowAsync elsewhere */
/**
 * Reads a small file of ours (config.json, last-exit.json, vm.json) without following a link and
 * without reading more than `maxBytes`: a link is refused with symlinkError (whose text holds none
 * of the target's bytes), a FIFO/device/folder with a sentence, an oversized file is not read.
 */
export function readFileNoFollow(file: string, maxBytes: number = MAX_SMALL_FILE_BYTES): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, READ_FLAGS);
  } catch (e) {
    throw expectedFsError(e, file);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw notRegularError(file);
    if (st.size > maxBytes) throw tooBigError(file, st.size, maxBytes);
    const buf = Buffer.alloc(st.size);
    let filled = 0;
    while (filled < buf.length) {
      const n = fs.readSync(fd, buf, filled, buf.length - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return buf.subarray(0, filled);
  } finally {
    fs.closeSync(fd);
  }
}
/* eslint-enable no-restricted-syntax */

/** readFileNoFollow without blocking the event loop. */
export async function readFileNoFollowAsync(file: string, maxBytes: number = MAX_SMALL_FILE_BYTES): Promise<Buffer> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, READ_FLAGS);
  } catch (e) {
    throw expectedFsError(e, file);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegularError(file);
    if (st.size > maxBytes) throw tooBigError(file, st.size, maxBytes);
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Refuses a symbolic link (or anything but a regular file) at `file` — for files a VM folder names
 * that another program opens (QEMU opens a bundle's disk images and UEFI vars; qemu-img reads them):
 * those programs follow links, so the check is ours to make before handing them the path. Missing
 * files pass (the caller reports those in its own words).
 */
export function assertNotLink(file: string): void {
  let st: fs.Stats;
  try {
    // eslint-disable-next-line no-restricted-syntax -- assertNotLink is a synchronous check (tests); one lstat
    st = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (st.isSymbolicLink()) throw symlinkError(file);
}

/* eslint-disable no-restricted-syntax -- the synchronous form, called by tests only since BundleStore.remove went (TODO(lead): drop it with its tests); the engine takes mkdirPrivateAsync */
/**
 * Creates `dir` (and missing parents) owner-only, or checks an existing one: a symbolic link is
 * refused (symlinkError), a folder of ours that others can read is tightened to 0700. Returns true
 * when it had to tighten.
 */
export function mkdirPrivate(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (e) {
    throw expectedFsError(e, dir);
  }
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) throw symlinkError(dir);
  if (IS_WINDOWS || neverNarrow(dir) || holdsOtherThings(dir)) return false;
  const uid = process.getuid?.() ?? st.uid;
  if (st.uid === uid && (st.mode & 0o077) !== 0) {
    fs.chmodSync(dir, st.mode & 0o700);
    return true;
  }
  return false;
}
/* eslint-enable no-restricted-syntax */

/** mkdirPrivate without blocking the event loop (same checks, same result). */
export async function mkdirPrivateAsync(dir: string): Promise<boolean> {
  try {
    await fs.promises.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (e) {
    throw expectedFsError(e, dir);
  }
  const st = await fs.promises.lstat(dir);
  if (st.isSymbolicLink()) throw symlinkError(dir);
  if (IS_WINDOWS || neverNarrow(dir)) return false;
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return false; // unreadable: counts as holding other things (holdsOtherThings)
  }
  if (names.some((n) => !isLibraryEntryName(n))) return false;
  const uid = process.getuid?.() ?? st.uid;
  if (st.uid === uid && (st.mode & 0o077) !== 0) {
    await fs.promises.chmod(dir, st.mode & 0o700);
    return true;
  }
  return false;
}

/** What tightenLibrary changed. */
export interface TightenResult {
  /** Paths whose mode lost its group/other bits (old mode, octal). */
  readonly tightened: readonly { readonly path: string; readonly from: string }[];
  /** Entries left alone because another user owns them (we never chmod what is not ours). */
  readonly foreign: readonly string[];
}

/** Entries visited at most by tightenLibrary (a library has a handful of files per VM). */
const MAX_TIGHTEN_ENTRIES = 100_000;

/** What Vivarium itself keeps in a library folder: the only entries tightenLibrary walks, so a
 *  VIVARIUM_HOME pointed at a folder with other things in it (even the home folder) changes only
 *  Vivarium's own files. */
const LIBRARY_ENTRIES: readonly string[] = [BUNDLES_DIR, KEPT_DISKS_DIR, MEDIA_DIR, HOST_CACHE_FILE];

/**
 * Whether `dir` holds anything but Vivarium's own library entries (and their atomic-write temp
 * files): then it is a folder of the user's (a VIVARIUM_HOME set to a project folder), whose mode is
 * theirs and never narrowed; Vivarium's entries inside it are still made private (tightenLibrary).
 * An unreadable folder counts as holding other things (left alone).
 */
function holdsOtherThings(dir: string): boolean {
  let names: string[];
  try {
    // eslint-disable-next-line no-restricted-syntax -- mkdirPrivate's check (synchronous, see there)
    names = fs.readdirSync(dir);
  } catch {
    return true;
  }
  return names.some((n) => !isLibraryEntryName(n));
}

/** One of Vivarium's own library entries, or an atomic-write temp file of one. */
function isLibraryEntryName(n: string): boolean {
  return LIBRARY_ENTRIES.some((e) => n === e || (n.startsWith(`${e}.`) && n.endsWith('.tmp')));
}

/* eslint-disable no-restricted-syntax -- once per engine, before it serves anything (see its comment) */
/**
 * Makes an existing library private: `home` and Vivarium's own entries in it (vms/, kept-disks/,
 * media/, the host cache) with everything below them that belongs to this user lose their
 * group/other permission bits (0755 → 0700, 0644 → 0600). Symbolic links are never followed (nor
 * changed); other users' files are listed, not touched; `home` itself is left alone when it is a
 * shared folder or the user's home folder. Synchronous on purpose: it runs once, when an engine is
 * made and before it serves anything (a short CLI command must finish it before it exits); a
 * library is a handful of entries per VM, and the walk stops after MAX_TIGHTEN_ENTRIES.
 */
export function tightenLibrarySync(home: string): TightenResult {
  const tightened: { path: string; from: string }[] = [];
  const foreign: string[] = [];
  if (IS_WINDOWS) return { tightened, foreign };
  const uid = process.getuid?.() ?? -1;
  let visited = 0;
  const visit = (p: string, below: boolean): void => {
    if (++visited > MAX_TIGHTEN_ENTRIES) return;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return; // missing, or vanished meanwhile
    }
    if (st.isSymbolicLink()) return;
    if (st.uid !== uid) {
      foreign.push(p);
      return;
    }
    if ((st.mode & 0o077) !== 0 && (st.isDirectory() || st.isFile())) {
      try {
        fs.chmodSync(p, st.mode & 0o700);
        tightened.push({ path: p, from: (st.mode & 0o777).toString(8).padStart(4, '0') });
      } catch {
        // Removed or locked meanwhile: the next start tries again.
      }
    }
    if (!below || !st.isDirectory()) return;
    let names: string[];
    try {
      names = fs.readdirSync(p);
    } catch {
      return;
    }
    for (const n of names) visit(path.join(p, n), true);
  };
  if (!neverNarrow(home) && !holdsOtherThings(home)) visit(home, false);
  for (const entry of LIBRARY_ENTRIES) visit(path.join(home, entry), true);
  return { tightened, foreign };
}
/* eslint-enable no-restricted-syntax */

/** tightenLibrarySync behind a promise (same result). */
export async function tightenLibrary(home: string): Promise<TightenResult> {
  return tightenLibrarySync(home);
}

/** The sentence for the user (log/stderr) about what tightenLibrary did, or null when nothing. */
export function describeTightening(home: string, r: TightenResult): string | null {
  const parts: string[] = [];
  if (r.tightened.length > 0) {
    parts.push(
      `made ${r.tightened.length} file${r.tightened.length === 1 ? '' : 's'} and folder${r.tightened.length === 1 ? '' : 's'} in the library ${home} private (owner only): other users on this machine could read them before`,
    );
  }
  if (r.foreign.length > 0) {
    parts.push(`${r.foreign.length} entr${r.foreign.length === 1 ? 'y belongs' : 'ies belong'} to another user and were left alone (first: ${r.foreign[0]})`);
  }
  return parts.length ? `${parts.join('; ')}.` : null;
}

/**
 * What every engine does once when it starts on a library: the private umask (usePrivateUmask), then
 * tightenLibrarySync; `tell` gets the sentence for the user when something had to be tightened (the
 * engine's log, or stderr for the CLI). Done when it returns (the promise is for callers that await);
 * never throws.
 */
export function makeLibraryPrivate(home: string, tell: (line: string) => void): Promise<void> {
  usePrivateUmask();
  try {
    const line = describeTightening(home, tightenLibrarySync(home));
    if (line) tell(line);
  } catch (e) {
    tell(`could not check the library's permissions: ${(e as Error).message}`);
  }
  return Promise.resolve();
}
