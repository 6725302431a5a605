/**
 * Writing a download's partial file and hashing it, on a worker thread: the download's thread only
 * receives the body and hands each chunk over (`write`); the worker appends it to the file and hashes
 * it while it is still in the CPU's cache. Chunks that own their memory (Node gives each socket read
 * its own ArrayBuffer) are transferred, not copied.
 *
 * Why this split (bench/install.bench.mjs, 1 GiB from 127.0.0.1 on a 2-core host): SHA-256 costs
 * about 0.6 s of a core per GiB even with SHA-NI, so it must not run on the receiving thread; and a
 * worker that instead read the written bytes back from the page cache, with the writes going through
 * libuv's thread pool, cost 0.1–0.2 s more CPU per GiB (the read-back copy, a thread-pool round trip
 * per write) than this. Writes here are synchronous on the worker, so the engine's event loop never
 * waits for the disk.
 *
 * A writer follows one partial file across attempts: `open(start)` before each attempt (bytes before
 * `start` that it has not hashed yet — a partial left by an earlier run — are read back and hashed
 * first), `close()` after it, `finish(size)` once the file is complete. The file must only grow by
 * this writer's appends (a truncate needs a new writer).
 */
import { Worker } from 'node:worker_threads';
import type { ChecksumAlgorithm } from '../../common/contract/media';

// Plain CommonJS, run with `eval: true`, so it works the same from tsc's output and from the
// CLI's single-file bundle. Messages in: {open: start} | Uint8Array[] (append) | {close: true} |
// {finish: size}. Out: {written: n} after each append, {closed: n}, {digests, bytes}, {error}.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const hashes = workerData.algorithms.map((a) => [a, crypto.createHash(a)]);
let hashed = 0;
let out = null;
let failed = false;
function hashFileUpTo(n) {
  if (hashed > n) throw new Error('the partial file is shorter than what was hashed (' + n + ' of ' + hashed + ' bytes)');
  if (hashed === n) return;
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const fd = fs.openSync(workerData.file, 'r');
  try {
    while (hashed < n) {
      const len = fs.readSync(fd, buf, 0, Math.min(buf.length, n - hashed), hashed);
      if (len <= 0) throw new Error('the file is shorter than expected (' + hashed + ' of ' + n + ' bytes)');
      for (const [, h] of hashes) h.update(buf.subarray(0, len));
      hashed += len;
    }
  } finally {
    fs.closeSync(fd);
  }
}
function append(chunks) {
  for (const c of chunks) {
    for (let off = 0; off < c.length; ) off += fs.writeSync(out, c, off, c.length - off);
    for (const [, h] of hashes) h.update(c);
    hashed += c.length;
  }
}
parentPort.on('message', (m) => {
  if (failed) return;
  try {
    if (Array.isArray(m)) {
      append(m);
      parentPort.postMessage({ written: hashed });
    } else if (m.open !== undefined) {
      hashFileUpTo(m.open);
      out = fs.openSync(workerData.file, m.open === 0 ? 'w' : 'a', 0o600);
    } else if (m.close !== undefined) {
      if (out !== null) fs.closeSync(out);
      out = null;
      parentPort.postMessage({ closed: hashed });
    } else if (m.finish !== undefined) {
      hashFileUpTo(m.finish);
      parentPort.postMessage({ digests: Object.fromEntries(hashes.map(([a, h]) => [a, h.digest('hex')])), bytes: hashed });
    }
  } catch (e) {
    failed = true;
    // A terminated worker does not close its files: close the partial now.
    if (out !== null) try { fs.closeSync(out); } catch {}
    out = null;
    parentPort.postMessage({ error: String((e && e.message) || e) });
  }
});
`;

/** Chunks are sent to the worker in batches of about this many bytes (fewer messages). */
const BATCH_BYTES = 256 * 1024;
/** `write` returns false (pause the socket) while more than this many bytes wait for the worker.
 *  Large enough that a worker the OS leaves waiting for a core for a while (a loaded 2-core host)
 *  does not stall the connection too: with 8 MiB the same benchmark took about 40% longer. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

export type Digests = Partial<Record<ChecksumAlgorithm, string>>;

type WorkerMessage = { written?: number; closed?: number; digests?: Digests; bytes?: number; error?: string };

export class FileHasher {
  private readonly worker: Worker;
  private failure: Error | null = null;
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  /** Bytes handed to the worker, and bytes it has written (both counted from the file's start). */
  private sent = 0;
  private written = 0;
  private waiters: (() => void)[] = [];
  private result: Promise<{ digests: Digests; bytes: number }> | null = null;

  /** Follows `file`, computing every algorithm in `algorithms`. */
  constructor(file: string, algorithms: readonly ChecksumAlgorithm[]) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, algorithms: [...new Set(algorithms)] } });
    this.worker.unref();
    this.worker.on('message', (m: WorkerMessage) => {
      if (m.error) this.failure ??= new Error(m.error);
      if (m.written !== undefined) this.written = m.written;
      this.wake();
    });
    this.worker.on('error', (e) => {
      this.failure ??= e;
      this.wake();
    });
  }

  /** Why the worker stopped (a write failed: disk full, file removed…), or null. */
  get error(): Error | null {
    return this.failure;
  }

  /** Starts an attempt that appends from byte `start` (0: the file is created or emptied). Bytes
   *  before `start` that this writer has not hashed are read back from the file and hashed. */
  open(start: number): void {
    this.sent = this.written = start;
    this.worker.postMessage({ open: start });
  }

  /**
   * Queues `chunk` to be appended (the caller must not use it afterwards: its memory may be moved to
   * the worker). Returns false while more than 64 MiB wait to be written: the caller then awaits
   * `drained()` before sending more.
   */
  write(chunk: Buffer): boolean {
    // A view of part of a larger ArrayBuffer (the response's first chunk, after the headers) is
    // copied; a chunk that is its whole ArrayBuffer is transferred.
    const own = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
    this.batch.push(own ? chunk : new Uint8Array(chunk));
    this.batchBytes += chunk.length;
    this.sent += chunk.length;
    if (this.batchBytes >= BATCH_BYTES) this.flush();
    return this.sent - this.written <= MAX_QUEUED_BYTES;
  }

  /** Resolves once at most 16 MiB wait to be written (or the worker failed). */
  drained(): Promise<void> {
    return this.until(() => this.sent - this.written <= MAX_QUEUED_BYTES / 4);
  }

  /** Writes what is queued and closes the file; resolves with the file's size, rejects with the
   *  write's error. */
  async close(): Promise<number> {
    this.flush();
    const closed = new Promise<number>((resolve) => {
      const onMessage = (m: WorkerMessage) => {
        if (m.closed === undefined) return;
        this.worker.off('message', onMessage);
        resolve(m.closed);
      };
      this.worker.on('message', onMessage);
    });
    this.worker.postMessage({ close: true });
    await this.until(() => this.written >= this.sent);
    if (this.failure) throw this.failure;
    return closed;
  }

  /** Hashes up to `size` (reading back what this writer did not write) and returns the hex digests;
   *  the writer is done after this. */
  finish(size: number): Promise<{ digests: Digests; bytes: number }> {
    this.result ??= new Promise((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      const onMessage = (m: WorkerMessage) => {
        if (m.error) {
          cleanup();
          reject(new Error(m.error));
        } else if (m.digests) {
          cleanup();
          resolve({ digests: m.digests, bytes: m.bytes ?? 0 });
        }
      };
      const onError = (e: Error) => {
        cleanup();
        reject(e);
      };
      const cleanup = () => {
        this.worker.off('message', onMessage);
        this.worker.off('error', onError);
        void this.worker.terminate();
      };
      this.worker.on('message', onMessage);
      this.worker.on('error', onError);
      this.worker.postMessage({ finish: size });
    });
    return this.result;
  }

  /** Stops the worker (the hash so far is lost; an open file is closed with the thread). */
  dispose(): void {
    void this.worker.terminate();
  }

  private flush(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    this.worker.postMessage(batch, batch.map((c) => c.buffer as ArrayBuffer));
  }

  private until(done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (done() || this.failure) resolve();
        else this.waiters.push(check);
      };
      check();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
