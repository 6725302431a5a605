/**
 * A VM's serial log, kept bounded.
 *
 * QEMU writes everything the guest prints on its first serial port to `<bundle>/serial.log` through
 * `-chardev …,logfile=…,logappend=on` (argv.ts). A chatty guest writes ~300 KiB/s, forever, so the
 * log is kept under SERIAL_LOG_CAP_BYTES (8 MiB) by rotating it while keeping its tail:
 *
 *   serial.log     the newest output; QEMU appends to it
 *   serial.log.0   the older tail (at most SERIAL_LOG_KEEP_BYTES), written only by Vivarium
 *
 * Rotating: when serial.log passes SERIAL_LOG_ROTATE_AT_BYTES, the last SERIAL_LOG_KEEP_BYTES of
 * serial.log.0 + serial.log are written to serial.log.0 (atomically), and serial.log is truncated to
 * zero in place. Truncating in place is safe only because QEMU opened the file with O_APPEND
 * (`logappend=on`; verified on QEMU 7.2 in /proc/PID/fdinfo: flags 02102001): its next write goes to
 * the new end, offset 0, instead of leaving a hole at its old offset. Bytes QEMU appends in the
 * instant between Vivarium's last read and the truncation are lost (the read is repeated until the
 * size holds still, so this is at most one write).
 *
 * Who rotates:
 *  - every start: `resetSerialLog` empties both files before QEMU opens the log, so each run's log
 *    starts empty (as it did when QEMU truncated it) and `start --wait-serial` only sees this run;
 *  - a long-lived engine (`vivarium serve`, the app) runs `SerialLogKeeper` over the running VMs,
 *    checking each log once a second (one stat each);
 *  - a short-lived engine (a CLI command with no engine running) makes one `rotateSerialLog` pass
 *    over the running VMs when it starts. A VM left running with no engine and no command at all
 *    grows its log until one of these happens (the next command, engine or start).
 * Between checks the log can outgrow the rotation threshold by what the guest writes in one
 * interval; the threshold leaves 512 KiB of room for that below the cap. Two engines looking at once
 * take turns: a rotation holds `serial.log.rotating` (created exclusively; one older than 30 s was
 * left by a process that died and is taken over), and the other skips.
 *
 * Readers read both files: `readSerialLogTail` (what `vivarium serial --log` prints).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';

/** The most serial.log + serial.log.0 take on disk together (documented in the README). */
export const SERIAL_LOG_CAP_BYTES = 8 * 1024 * 1024;

export interface SerialLogLimits {
  /** serial.log is rotated once it is larger than this. */
  readonly rotateAtBytes: number;
  /** The most serial.log.0 keeps. */
  readonly keepBytes: number;
}

/** The defaults: rotate at 3.5 MiB, keep 4 MiB, so both files stay under 8 MiB with 512 KiB of room
 *  for what a guest writes between two checks. */
export const SERIAL_LOG_LIMITS: SerialLogLimits = {
  rotateAtBytes: 3.5 * 1024 * 1024,
  keepBytes: 4 * 1024 * 1024,
};

/** The older part of a rotated serial log. */
export function olderSerialLog(file: string): string {
  return `${file}.0`;
}

/** Opening flags for the log: never through a symbolic link (a link planted in a VM folder must not
 *  make Vivarium truncate or fill another file). */
const RW_NOFOLLOW = fs.constants.O_RDWR | fs.constants.O_NOFOLLOW;

/** Empties a VM's serial log (both parts) before a start. Missing files are fine; a symbolic link in
 *  its place is removed, not followed. */
export async function resetSerialLog(file: string): Promise<void> {
  await fsp.rm(olderSerialLog(file), { force: true });
  await fsp.rm(`${file}.rotating`, { force: true });
  try {
    const fh = await fsp.open(file, RW_NOFOLLOW);
    try {
      await fh.truncate(0);
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') await fsp.rm(file, { force: true });
    else if (code !== 'ENOENT') throw e;
  }
}

async function readRange(fh: fsp.FileHandle, from: number, to: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.max(0, to - from));
  let filled = 0;
  while (filled < buf.length) {
    const { bytesRead } = await fh.read(buf, filled, buf.length - filled, from + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
}

async function readAll(file: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file, { flag: fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW });
  } catch (e) {
    // A link in place of serial.log.0 reads as empty; the atomic write replaces the link itself.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ELOOP') return Buffer.alloc(0);
    throw e;
  }
}

/** Writes a file whole under a temporary name and renames it into place. */
async function writeAtomic(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await fsp.writeFile(tmp, data, { mode: 0o600 });
    await fsp.rename(tmp, file);
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

/**
 * Rotates `file` (a serial.log QEMU appends to with O_APPEND) when it is over the threshold.
 * Returns whether it rotated. Missing log: nothing to do. Never throws for a log that vanished
 * meanwhile (the VM's bundle was deleted); other I/O errors propagate.
 */
export async function rotateSerialLog(file: string, limits: SerialLogLimits = SERIAL_LOG_LIMITS): Promise<boolean> {
  // Cheap first look, so the common case (under the threshold) takes no lock.
  try {
    if ((await fsp.lstat(file)).size <= limits.rotateAtBytes) return false;
  } catch {
    return false;
  }
  // Two engines (a long-lived one and a CLI's) may look at once: one rotates, the other skips.
  const lock = await takeRotationLock(file);
  if (!lock) return false;
  try {
    return await rotateLocked(file, limits);
  } finally {
    await fsp.rm(lock, { force: true });
  }
}

/** A lock older than this was left by a process that died mid-rotation: taken over. */
const STALE_LOCK_MS = 30_000;

/** Creates `<file>.rotating` exclusively; returns its path, or null when another rotation holds it. */
async function takeRotationLock(file: string): Promise<string | null> {
  const lock = `${file}.rotating`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await (await fsp.open(lock, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)).close();
      return lock;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const st = await fsp.lstat(lock).catch(() => null);
      if (st && Date.now() - st.mtimeMs < STALE_LOCK_MS) return null;
      await fsp.rm(lock, { force: true });
    }
  }
  return null;
}

async function rotateLocked(file: string, limits: SerialLogLimits): Promise<boolean> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, RW_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') return false;
    throw e;
  }
  try {
    let size = (await fh.stat()).size;
    if (size <= limits.rotateAtBytes) return false;
    // What serial.log.0 will hold: the last keepBytes of (old serial.log.0 + serial.log up to `size`).
    const fromLog = Math.max(0, size - limits.keepBytes);
    const newest = await readRange(fh, fromLog, size);
    const older = newest.length < limits.keepBytes ? await readAll(olderSerialLog(file)) : Buffer.alloc(0);
    const kept = Buffer.concat([older.subarray(Math.max(0, older.length - (limits.keepBytes - newest.length))), newest]);
    await writeAtomic(olderSerialLog(file), kept);
    // What QEMU appended while serial.log.0 was written: read until the size holds still, then cut.
    const late: Buffer[] = [];
    for (;;) {
      const now = (await fh.stat()).size;
      if (now <= size) break;
      late.push(await readRange(fh, size, now));
      size = now;
    }
    await fh.truncate(0);
    if (late.length > 0) {
      // Kept in order after the tail; serial.log.0 may exceed keepBytes by these few bytes until the
      // next rotation trims it.
      const older = await fsp.open(olderSerialLog(file), fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW);
      try {
        await older.write(Buffer.concat(late));
      } finally {
        await older.close();
      }
    }
    return true;
  } finally {
    await fh.close();
  }
}

/**
 * The last `maxBytes` of a VM's serial output across both files (older part first), as text. ''
 * when there is none.
 */
export async function readSerialLogTail(file: string, maxBytes: number): Promise<string> {
  const tailOf = async (f: string, n: number): Promise<Buffer> => {
    if (n <= 0) return Buffer.alloc(0);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(f, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch {
      return Buffer.alloc(0);
    }
    try {
      const size = (await fh.stat()).size;
      return await readRange(fh, Math.max(0, size - n), size);
    } finally {
      await fh.close();
    }
  };
  const newest = await tailOf(file, maxBytes);
  const older = await tailOf(olderSerialLog(file), maxBytes - newest.length);
  return Buffer.concat([older, newest]).toString('utf8');
}

/**
 * Keeps the serial logs of running VMs bounded from a long-lived engine: every `intervalMs` it asks
 * `files()` for the serial.log paths of the running VMs and rotates those over the threshold. One
 * pass at a time; errors go to `log` and never stop the keeper.
 */
export class SerialLogKeeper {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly files: () => readonly string[],
    private readonly options: { readonly intervalMs?: number; readonly limits?: SerialLogLimits; readonly log?: (line: string) => void } = {},
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.pass(), this.options.intervalMs ?? 1000);
    this.timer.unref?.();
  }

  /** One pass over the running VMs' logs, or over `files` when given (what a short-lived engine runs
   *  once). */
  async pass(files: readonly string[] = this.files()): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const f of files) {
        try {
          await rotateSerialLog(f, this.options.limits);
        } catch (e) {
          this.options.log?.(`could not rotate ${f}: ${(e as Error).message}`);
        }
      }
    } finally {
      this.running = false;
    }
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
