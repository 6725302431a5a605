/** Reading the end of a log file (qemu.log, serial.log) without loading all of it. */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';

/** Read-only, never through a symbolic link planted in a VM folder, never blocking on a FIFO. */
const READ_NOFOLLOW = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);

/**
 * The last `n` non-empty lines among the last `maxBytes` of a file ([] when it does not exist).
 * Blocking: for RunStates' synchronous reconciliation (a 64 KiB read); elsewhere lastLinesAsync.
 */
export function lastLines(file: string, n: number, maxBytes = 64 * 1024): string[] {
  return splitLast(readTail(file, maxBytes), n);
}

/** lastLines without blocking the event loop. */
export async function lastLinesAsync(file: string, n: number, maxBytes = 64 * 1024): Promise<string[]> {
  return splitLast(await readTailAsync(file, maxBytes), n);
}

function splitLast(text: string, n: number): string[] {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-n);
}

/** Reads the last `maxBytes` of a file as text ('' when it does not exist). */
export function readTail(file: string, maxBytes: number): string {
  /* eslint-disable no-restricted-syntax -- the synchronous form lastLines needs (RunStates' reconciliation); one bounded read */
  try {
    const fd = fs.openSync(file, READ_NOFOLLOW);
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, maxBytes);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
    /* eslint-enable no-restricted-syntax */
  } catch {
    return '';
  }
}

/** readTail without blocking the event loop. */
export async function readTailAsync(file: string, maxBytes: number): Promise<string> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, READ_NOFOLLOW);
  } catch {
    return '';
  }
  try {
    const size = (await fh.stat()).size;
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, size - len);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch {
    return '';
  } finally {
    await fh.close();
  }
}

/**
 * Up to `maxBytes` of a file from `offset`, and the file's size then (empty data when it is no longer
 * than `offset`, gone or unreadable; size -1 when gone). A size below `offset` means the file was
 * truncated (serial.log is, when it is rotated): the caller starts again from 0.
 */
export async function readFrom(file: string, offset: number, maxBytes = 1024 * 1024): Promise<{ readonly data: Buffer; readonly size: number }> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, READ_NOFOLLOW);
  } catch {
    return { data: Buffer.alloc(0), size: -1 };
  }
  try {
    const size = (await fh.stat()).size;
    if (size <= offset) return { data: Buffer.alloc(0), size };
    const len = Math.min(size - offset, maxBytes);
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, offset);
    return { data: buf.subarray(0, bytesRead), size };
  } catch {
    return { data: Buffer.alloc(0), size: -1 };
  } finally {
    await fh.close();
  }
}
