/**
 * Host figures, read in a worker thread (host-sampler-worker.ts) that exists only while someone
 * wants them: the first `acquire()` (or `read()`) starts it, and it is terminated `lingerMs` after
 * the last holder lets go. The short linger lets back-to-back one-shot samples (`vivarium stats
 * --watch`, a polling client) share one worker instead of paying its start-up each second.
 *
 * Which script the worker runs: compiled JS next to this file when running from out/ (the app, the
 * CLI). Under the tests the sources are TypeScript and node 20 cannot run a .ts worker, so the
 * worker file is transpiled on the fly with the `typescript` dev dependency and run as an eval'd
 * worker whose `require` resolves from the source folder. That works because the worker imports
 * nothing at run time but node and systeminformation; tests may also pass any `WorkerSource`.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type * as TypeScript from 'typescript';
import type { Disposable } from '../../common/contract';
import { ErrorCode, VivariumError } from '../../common/errors';
import { toDisposable } from '../emitter';
import type { HostCounters, HostWorkerReply, HostWorkerRequest } from './host-counters';

export type WorkerSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'eval'; readonly code: string; readonly from: string };

const WORKER_BASENAME = 'host-sampler-worker';

/**
 * The compiled worker next to this module, else (tests, from sources) the .ts transpiled on the fly.
 * Synchronous (a few stat()s; the read of the .ts only when running from sources): a HostSampler
 * resolves it once, when its first worker starts (ensureWorker), and keeps the answer.
 */
export function defaultWorkerSource(dir: string = __dirname): WorkerSource {
  /* eslint-disable no-restricted-syntax -- once per HostSampler (see above) */
  const js = path.join(dir, `${WORKER_BASENAME}.js`);
  // The packaged app: a worker thread cannot run from inside app.asar, so electron-builder.yml
  // unpacks it (asarUnpack) beside the archive.
  const unpacked = js.replace(/([\\/])app\.asar([\\/])/, '$1app.asar.unpacked$2');
  if (unpacked !== js && fs.existsSync(unpacked)) return { kind: 'file', path: unpacked };
  if (fs.existsSync(js)) return { kind: 'file', path: js };
  const ts = path.join(dir, `${WORKER_BASENAME}.ts`);
  if (fs.existsSync(ts)) return transpiledWorker(ts);
  /* eslint-enable no-restricted-syntax */
  throw new VivariumError(ErrorCode.Internal, `The host statistics worker is missing (${js}). Rebuild Vivarium (npm run build).`);
}

function transpiledWorker(tsFile: string): WorkerSource {
  const req = createRequire(__filename);
  let ts: typeof TypeScript;
  try {
    ts = req('typescript') as typeof TypeScript;
  } catch {
    throw new VivariumError(ErrorCode.Internal, `Cannot run ${tsFile} without the typescript package. Build Vivarium (npm run build) and run it from out/.`);
  }
  // eslint-disable-next-line no-restricted-syntax -- tests only (running from sources), once per HostSampler
  const out = ts.transpileModule(fs.readFileSync(tsFile, 'utf8'), {
    fileName: tsFile,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  const file = JSON.stringify(tsFile);
  // The eval'd script is wrapped like a CommonJS module of tsFile, so 'systeminformation' resolves
  // from the repository's node_modules whatever the current directory is.
  const code =
    `'use strict';\n` +
    `const __m = { exports: {} };\n` +
    `(function (exports, require, module, __filename, __dirname) {\n${out.outputText}\n})` +
    `(__m.exports, require('node:module').createRequire(${file}), __m, ${file}, require('node:path').dirname(${file}));\n`;
  return { kind: 'eval', code, from: tsFile };
}

export interface HostSamplerOptions {
  /** Default: defaultWorkerSource(), resolved when the worker is first needed. */
  readonly source?: WorkerSource;
  /** How long the worker stays after the last holder lets go; default 1500 ms. */
  readonly lingerMs?: number;
  /** A read that takes longer than this gives no host figures; default 5000 ms. */
  readonly readTimeoutMs?: number;
  /** After the worker failed to start, wait this long before trying again; default 30 s. */
  readonly retryMs?: number;
  readonly log?: (line: string) => void;
}

interface PendingRead {
  readonly resolve: (c: HostCounters | null) => void;
  readonly timer: NodeJS.Timeout;
}

export class HostSampler {
  private worker: Worker | null = null;
  private holders = 0;
  private stopTimer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, PendingRead>();
  private failedAt = -Infinity;
  private startedAt = 0;
  private starts = 0;
  private lastStartupMs: number | null = null;
  private disposed = false;
  /** The worker's code, found once (defaultWorkerSource stats and reads files). */
  private source: WorkerSource | null = null;

  constructor(private readonly options: HostSamplerOptions = {}) {}

  /** Whether a worker thread exists right now. */
  get running(): boolean {
    return this.worker !== null;
  }

  /** How many workers were started, and how long the last one took from spawn to its first answer. */
  get metrics(): { readonly starts: number; readonly lastStartupMs: number | null } {
    return { starts: this.starts, lastStartupMs: this.lastStartupMs };
  }

  /** Keeps the worker alive until disposed (then for `lingerMs` more). */
  acquire(): Disposable {
    this.holders++;
    if (this.stopTimer) {
      clearTimeout(this.stopTimer);
      this.stopTimer = null;
    }
    return toDisposable(() => {
      this.holders--;
      if (this.holders === 0) this.scheduleStop();
    });
  }

  /** One reading of the host's counters; null when the worker can't give one (it failed, timed out). */
  async read(): Promise<HostCounters | null> {
    const hold = this.acquire();
    try {
      const worker = this.ensureWorker();
      if (!worker) return null;
      const id = this.nextId++;
      return await new Promise<HostCounters | null>((resolve) => {
        // Not unref'd: a pending read must keep a short-lived CLI process alive until it answers.
        const timer = setTimeout(() => {
          this.pending.delete(id);
          this.options.log?.(`host stats: the worker did not answer within ${this.readTimeout} ms`);
          resolve(null);
        }, this.readTimeout);
        this.pending.set(id, { resolve, timer });
        worker.postMessage({ type: 'read', id } satisfies HostWorkerRequest);
      });
    } finally {
      hold.dispose();
    }
  }

  /** Stops the worker now; later reads start a new one unless disposed. */
  stop(): void {
    if (this.stopTimer) {
      clearTimeout(this.stopTimer);
      this.stopTimer = null;
    }
    const w = this.worker;
    this.worker = null;
    this.settleAll(null);
    if (w) void w.terminate();
  }

  dispose(): void {
    this.disposed = true;
    this.stop();
  }

  private get readTimeout(): number {
    return this.options.readTimeoutMs ?? 5000;
  }

  private scheduleStop(): void {
    const linger = this.options.lingerMs ?? 1500;
    if (linger <= 0) {
      this.stop();
      return;
    }
    this.stopTimer = setTimeout(() => {
      this.stopTimer = null;
      if (this.holders === 0) this.stop();
    }, linger);
    // A lingering worker must not keep a finished CLI process alive.
    this.stopTimer.unref();
  }

  private ensureWorker(): Worker | null {
    if (this.worker) return this.worker;
    if (this.disposed) return null;
    if (performance.now() - this.failedAt < (this.options.retryMs ?? 30_000)) return null;
    let worker: Worker;
    try {
      const source = (this.source ??= this.options.source ?? defaultWorkerSource());
      worker =
        source.kind === 'file'
          ? new Worker(source.path, { stdout: false, stderr: false })
          : new Worker(source.code, { eval: true, stdout: false, stderr: false });
    } catch (e) {
      this.fail(e);
      return null;
    }
    this.worker = worker;
    this.starts++;
    this.startedAt = performance.now();
    this.lastStartupMs = null;
    // Only pending reads (their timers) keep the process alive, never the worker itself.
    worker.unref();
    worker.on('message', (msg: HostWorkerReply) => this.onReply(worker, msg));
    worker.on('error', (e) => {
      if (this.worker !== worker) return;
      this.fail(e);
      this.worker = null;
      this.settleAll(null);
    });
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.settleAll(null);
    });
    return worker;
  }

  private onReply(worker: Worker, msg: HostWorkerReply): void {
    if (worker === this.worker && this.lastStartupMs === null) this.lastStartupMs = performance.now() - this.startedAt;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.type === 'error') this.options.log?.(`host stats: ${msg.message}`);
    p.resolve(msg.type === 'reading' ? msg.counters : null);
  }

  private fail(e: unknown): void {
    this.failedAt = performance.now();
    this.options.log?.(`host stats: the sampler worker failed: ${e instanceof Error ? e.message : String(e)}`);
  }

  private settleAll(value: null): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(value);
    }
    this.pending.clear();
  }
}
