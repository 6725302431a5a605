/**
 * Hashing a file while it is being written, on a worker thread: the download's thread only says how
 * far the file is written (`advance`), and the worker reads the new bytes back (from the page cache)
 * and hashes them. Hashing 1 GiB with SHA-256 costs about 2 s of a core; on the download's own
 * thread it would halve a fast download's throughput.
 *
 * The file must only grow by appends while a hasher follows it (a truncate needs a new hasher). A
 * new hasher on a partial file hashes what is already there as soon as it is told its size.
 */
import { Worker } from 'node:worker_threads';
import type { ChecksumAlgorithm } from '../../common/contract/media';

// Plain CommonJS, run with `eval: true`, so it works the same from tsc's output and from the
// CLI's single-file bundle.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const hashes = workerData.algorithms.map((a) => [a, crypto.createHash(a)]);
const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
let fd = null;
let done = 0;
function upTo(n) {
  if (fd === null) fd = fs.openSync(workerData.file, 'r');
  while (done < n) {
    const len = fs.readSync(fd, buf, 0, Math.min(buf.length, n - done), done);
    if (len <= 0) throw new Error('the file is shorter than expected (' + done + ' of ' + n + ' bytes)');
    const chunk = buf.subarray(0, len);
    for (const [, h] of hashes) h.update(chunk);
    done += len;
  }
}
parentPort.on('message', (m) => {
  try {
    if (m.upTo !== undefined) upTo(m.upTo);
    if (m.finish !== undefined) {
      upTo(m.finish);
      if (fd !== null) fs.closeSync(fd);
      parentPort.postMessage({ digests: Object.fromEntries(hashes.map(([a, h]) => [a, h.digest('hex')])), bytes: done });
    }
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message || e) });
  }
});
`;

const STEP = 4 * 1024 * 1024;

export type Digests = Partial<Record<ChecksumAlgorithm, string>>;

export class FileHasher {
  private readonly worker: Worker;
  private told = 0;
  private failure: Error | null = null;
  private result: Promise<{ digests: Digests; bytes: number }> | null = null;

  /** Follows `file`, computing every algorithm in `algorithms`. */
  constructor(file: string, algorithms: readonly ChecksumAlgorithm[]) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, algorithms: [...new Set(algorithms)] } });
    this.worker.unref();
    this.worker.on('message', (m: { error?: string }) => {
      if (m.error) this.failure = new Error(m.error);
    });
    this.worker.on('error', (e) => {
      this.failure = e;
    });
  }

  /** The first `bytes` bytes of the file are written and final. The worker is told in steps of
   *  4 MiB (or at once with `now`). */
  advance(bytes: number, now = false): void {
    if (bytes > this.told && (now || bytes - this.told >= STEP)) {
      this.told = bytes;
      this.worker.postMessage({ upTo: bytes });
    }
  }

  /** Hashes up to `size` and returns the hex digests; the hasher is done after this. */
  finish(size: number): Promise<{ digests: Digests; bytes: number }> {
    this.result ??= new Promise((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      const onMessage = (m: { digests?: Digests; bytes?: number; error?: string }) => {
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

  /** Stops the worker (the hash so far is lost). */
  dispose(): void {
    void this.worker.terminate();
  }
}
