/**
 * The `media` service (main/common/contract/media.ts): the OS catalog and verified, resumable
 * downloads into `<library>/media/`.
 *
 * A download:
 *  1. resolves the expected digest first (a given SHA-256/512, or the line for the file's name in the
 *     SUMS file), so a file the SUMS file does not list fails before any byte is fetched;
 *  2. streams the body into `.downloads/<id>.part` (0600) while hashing it; a cut connection is
 *     retried with `Range: bytes=<n>-` (and `If-Range` with the server's ETag/Last-Modified, so a
 *     file that changed on the server restarts from zero instead of being spliced — RFC 9110 §14.2,
 *     §13.1.5); the state JSON next to the partial keeps what a resume needs;
 *  3. compares the digest: a mismatch deletes the partial and fails with a sentence saying so;
 *     a match renames it to `<library>/media/<name>` and writes its metadata.
 * Cancel keeps the partial (`paused`); an engine that stops while downloading leaves `running: true`
 * in the state, and the next long-lived engine (`resumeInterrupted`) goes on where it stopped.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { formatBytes } from '../../common/format';
import {
  downloadUrlProblem,
  type CatalogEntry,
  type CatalogQuery,
  type ChecksumAlgorithm,
  type DownloadInfo,
  type DownloadRequest,
  type DownloadState,
  type ImportSummary,
  type MediaItem,
  type MediaService,
} from '../../common/contract/media';
import { ErrorCode, VivariumError, errors } from '../../common/errors';
import { Emitter } from '../emitter';
import { importProgress } from '../imports/progress';
import { CATALOG_FILE, defaultResourcesDir, filterCatalog, loadCatalog } from './catalog';
import { MediaStore, type MediaMeta, type PartialState } from './store';
import type { FileHasher } from './file-hasher';
import { BadSignature, readShippedKeyring, spacedFingerprint, verifySums } from './signature';
import type { HttpGetResponse } from './http-get';
import { describeRequestFailure } from './request-failure';
import { findDigest } from './sums';

export interface MediaManagerOptions {
  /** `<library>/media`. */
  readonly dir: string;
  /** The folder holding catalog/os-catalog.json (default: the repo's or package's resources/). */
  readonly resourcesDir?: string;
  readonly log?: (line: string) => void;
  /** The name of a VM whose settings name `file`, or null (`remove` refuses files in use). */
  readonly inUse?: (file: string) => Promise<string | null>;
  /** The qemu-img to inspect imports with (default: `qemu-img` on PATH). */
  readonly qemuImg?: () => Promise<string | null>;
  /** Consecutive failed attempts (no byte received) before a download pauses. Default 5. */
  readonly maxRetries?: number;
  /** First retry delay, doubled each time (ms). Default 500. */
  readonly retryDelayMs?: number;
}

const PROGRESS_INTERVAL_MS = 250;
const RATE_WINDOW_MS = 5000;
/** One rate sample per this long (a fast download delivers thousands of chunks a second). */
const SAMPLE_INTERVAL_MS = 100;

/** Why a running download was stopped. */
type StopReason = 'cancel' | 'discard' | 'shutdown';

class Stopped extends Error {
  constructor(readonly reason: StopReason) {
    super(`stopped: ${reason}`);
  }
}

/** Whether any string in a VM's settings (`config`, any shape) is `file`: its CD, a disk, a kernel… */
export function configNames(config: unknown, file: string): boolean {
  if (typeof config === 'string') return config === file;
  if (Array.isArray(config)) return config.some((v) => configNames(v, file));
  if (config && typeof config === 'object') return Object.values(config).some((v) => configNames(v, file));
  return false;
}

/** A download id: the first 16 hex digits of SHA-256(url). */
export function downloadId(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 16);
}

/** A safe file name from a URL's last path segment. */
export function fileNameFromUrl(url: string): string {
  let base = '';
  try {
    base = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
  } catch {
    base = '';
  }
  const safe = base.replace(/[^A-Za-z0-9._+-]/g, '_').replace(/^[.]+/, '');
  return safe.length > 0 && safe.length <= 200 ? safe : 'download';
}

const LABEL: Readonly<Record<ChecksumAlgorithm, string>> = { sha256: 'SHA-256', sha512: 'SHA-512' };

export class MediaManager implements MediaService {
  private readonly store: MediaStore;
  private readonly progress = new Emitter<DownloadInfo>();
  readonly onDidProgress = this.progress.event;
  /** Imports run inside `vms.create`; their progress comes from the imports room's emitter. */
  readonly onDidImportProgress = importProgress.event;
  private readonly jobs = new Map<string, Job>();
  /** Downloads being started (see startOnce), by id. */
  private readonly starting = new Map<string, Promise<DownloadInfo>>();
  private catalogCache: Promise<readonly CatalogEntry[]> | null = null;
  private disposed = false;

  constructor(private readonly options: MediaManagerOptions) {
    this.store = new MediaStore(options.dir);
  }

  async catalog(query: CatalogQuery): Promise<readonly CatalogEntry[]> {
    return filterCatalog(await this.entries(), query);
  }

  private resources(): Promise<string> {
    const dir = this.options.resourcesDir;
    return dir !== undefined ? Promise.resolve(dir) : defaultResourcesDir();
  }

  private entries(): Promise<readonly CatalogEntry[]> {
    this.catalogCache ??= this.resources().then((d) => loadCatalog(path.join(d, CATALOG_FILE))).then(
      (c) => c.entries,
      (e: unknown) => {
        this.catalogCache = null;
        throw e;
      },
    );
    return this.catalogCache;
  }

  async list(): Promise<readonly MediaItem[]> {
    const out: MediaItem[] = [];
    for (const m of await this.store.metas()) {
      const st = await fs.stat(this.store.file(m.name)).catch(() => null);
      if (!st || !st.isFile() || st.size !== m.sizeBytes) continue;
      out.push(toItem(this.store, m));
    }
    return out.sort((a, b) => b.downloadedAt.localeCompare(a.downloadedAt));
  }

  async downloads(): Promise<readonly DownloadInfo[]> {
    const out = new Map<string, DownloadInfo>();
    for (const job of this.jobs.values()) out.set(job.id, job.info());
    for (const s of await this.store.states()) {
      if (out.has(s.id)) continue;
      const received = (await fs.stat(this.store.part(s.id)).catch(() => null))?.size ?? 0;
      const holder = await this.store.lockHolder(s.id);
      out.set(s.id, stateInfo(this.store, s, holder !== null ? 'downloading' : 'paused', received, holder !== null ? `Being downloaded by another Vivarium process (pid ${holder}).` : s.error));
    }
    return [...out.values()];
  }

  async download(request: DownloadRequest): Promise<DownloadInfo> {
    this.assertOpen();
    const plan = await this.plan(request);
    return this.startOnce(plan.id, () => this.begin(plan));
  }

  /**
   * Runs `start` for download `id` unless one is already starting in this engine, whose answer is
   * then shared: between a request and its job being registered lie several awaits, and two
   * requests in that window (a double click) would each start a job on the same partial file.
   * Other processes are kept out by the store's lock.
   */
  private startOnce(id: string, start: () => Promise<DownloadInfo>): Promise<DownloadInfo> {
    const pending = this.starting.get(id);
    if (pending) return pending;
    const p = start().finally(() => this.starting.delete(id));
    this.starting.set(id, p);
    return p;
  }

  private async begin(plan: Awaited<ReturnType<MediaManager['plan']>>): Promise<DownloadInfo> {
    const running = this.jobs.get(plan.id);
    if (running) return running.info();
    // Already here and verified (with the same digest, when one was given)?
    const done = await this.findDone(plan.id);
    if (done && (plan.checksum.expected === null || plan.checksum.expected === (plan.checksum.algorithm === 'sha256' ? done.sha256 : done.sha512))) {
      return doneInfo(this.store, done, plan.source);
    }
    const holder = await this.store.lockHolder(plan.id);
    if (holder !== null) {
      throw errors.busy(`${fileNameFromUrl(plan.url)} is already being downloaded by another Vivarium process (pid ${holder}). Wait for it, or cancel it there.`, { id: plan.id });
    }
    const existing = await this.store.readState(plan.id);
    let state: PartialState;
    if (existing && existing.url === plan.url && (plan.checksum.expected === null || existing.checksum.expected === plan.checksum.expected)) {
      // Resume the partial; keep its digest (already read from the SUMS file) and validators.
      state = { ...existing, source: plan.source, running: true, error: null };
    } else {
      if (existing) await this.store.removePartial(plan.id);
      state = {
        version: 1,
        id: plan.id,
        source: plan.source,
        url: plan.url,
        name: await this.freeName(plan.id, fileNameFromUrl(plan.url)),
        catalogId: plan.catalogId,
        checksum: plan.checksum,
        etag: null,
        lastModified: null,
        totalBytes: null,
        running: true,
        error: null,
        updatedAt: new Date().toISOString(),
      };
    }
    return this.startJob(state);
  }

  async resume(id: string): Promise<DownloadInfo> {
    this.assertOpen();
    return this.startOnce(id, () => this.resumeNow(id));
  }

  private async resumeNow(id: string): Promise<DownloadInfo> {
    const running = this.jobs.get(id);
    if (running) return running.info();
    const state = await this.store.readState(id);
    if (!state) {
      const done = await this.findDone(id);
      if (done) return doneInfo(this.store, done, done.catalogId ?? done.url);
      throw noDownload(id);
    }
    return this.startJob({ ...state, running: true, error: null });
  }

  async wait(id: string): Promise<MediaItem> {
    const job = this.jobs.get(id);
    if (job) return job.done;
    const done = await this.findDone(id);
    if (done) return toItem(this.store, done);
    const state = await this.store.readState(id);
    if (state) {
      const holder = await this.store.lockHolder(id);
      throw errors.state(
        holder !== null
          ? `${state.name} is being downloaded by another Vivarium process (pid ${holder}); wait for it there.`
          : `The download of ${state.name} is paused${state.error ? ` (${state.error})` : ''}. Resume it to go on.`,
        { id },
      );
    }
    throw noDownload(id);
  }

  async cancel(id: string): Promise<DownloadInfo> {
    const job = this.jobs.get(id);
    if (job) {
      await job.stop('cancel');
      return job.info();
    }
    const state = await this.store.readState(id);
    if (!state) throw noDownload(id);
    const holder = await this.store.lockHolder(id);
    if (holder !== null) {
      throw errors.busy(`${state.name} is being downloaded by another Vivarium process (pid ${holder}); cancel it there.`, { id });
    }
    if (state.running) await this.store.writeState({ ...state, running: false, updatedAt: new Date().toISOString() });
    const received = (await fs.stat(this.store.part(id)).catch(() => null))?.size ?? 0;
    return stateInfo(this.store, state, 'paused', received, state.error);
  }

  async discard(id: string): Promise<void> {
    const job = this.jobs.get(id);
    if (job) await job.stop('discard');
    else {
      const holder = await this.store.lockHolder(id);
      if (holder !== null) throw errors.busy(`This download is running in another Vivarium process (pid ${holder}); cancel it there first.`, { id });
    }
    await this.store.removePartial(id);
  }

  async remove(file: string): Promise<void> {
    const meta = (await this.store.metas()).find((m) => this.store.file(m.name) === path.resolve(file));
    if (!meta) {
      throw new VivariumError(ErrorCode.NotFound, `${file} is not a file Vivarium downloaded. Run \`vivarium media list\` to see them.`, { path: file });
    }
    const vm = (await this.options.inUse?.(this.store.file(meta.name))) ?? null;
    if (vm !== null) throw errors.state(`${meta.name} is used by the VM "${vm}". Take it out of that VM's settings first.`, { path: file, vm });
    await fs.rm(this.store.file(meta.name), { force: true });
    await fs.rm(this.store.metaFile(meta.name), { force: true });
  }

  async inspectImport(file: string): Promise<ImportSummary> {
    const qemuImg = (await this.options.qemuImg?.()) ?? 'qemu-img';
    // Loaded on use (like http-get and the hasher below): a short CLI command never needs zlib,
    // http(s) or worker threads, and loading them cost it ~10 ms of start-up (bench/cli.bench.mjs).
    const { ImportError, inspectImport } = await import('../imports/import.js');
    try {
      const f = await inspectImport(file, { qemuImg });
      return {
        path: file,
        kind: f.kind,
        name: f.name,
        cpus: f.cpus,
        memoryMiB: f.memoryMiB,
        firmware: f.firmware,
        disks: f.disks.map((d) => ({ label: d.label, format: d.source.format, virtualSizeBytes: d.virtualSizeBytes })),
        attachable: f.attachable,
      };
    } catch (e) {
      if (e instanceof ImportError) throw errors.invalid(e.message, { field: 'import' });
      throw e;
    }
  }

  /** Resumes downloads that were running when the previous engine stopped (long-lived engines only). */
  async resumeInterrupted(): Promise<readonly string[]> {
    const resumed: string[] = [];
    for (const s of await this.store.states()) {
      if (!s.running || this.jobs.has(s.id) || (await this.store.lockHolder(s.id)) !== null) continue;
      try {
        await this.startJob({ ...s, error: null });
        resumed.push(s.id);
      } catch (e) {
        this.options.log?.(`media: could not resume ${s.name}: ${(e as Error).message}`);
      }
    }
    return resumed;
  }

  /** Stops every download (keeping partials and `running: true`, so the next engine resumes them). */
  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.all([...this.jobs.values()].map((j) => j.stop('shutdown')));
    this.progress.dispose();
  }

  // ---- internals -------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.disposed) throw errors.state('The engine is shutting down; try again.');
  }

  private async startJob(state: PartialState): Promise<DownloadInfo> {
    await this.store.ensure();
    const holder = await this.store.lock(state.id);
    if (holder !== null) {
      throw errors.busy(`${state.name} is already being downloaded by another Vivarium process (pid ${holder}). Wait for it, or cancel it there.`, { id: state.id });
    }
    const job = new Job(this.store, state, {
      maxRetries: this.options.maxRetries ?? 5,
      retryDelayMs: this.options.retryDelayMs ?? 500,
      emit: (info) => this.progress.fire(info),
      resources: () => this.resources(),
      onEnd: () => {
        if (this.jobs.get(state.id) === job) this.jobs.delete(state.id);
      },
      log: this.options.log,
    });
    this.jobs.set(state.id, job);
    job.done.catch(() => undefined);
    void job.run();
    return job.info();
  }

  private async findDone(id: string): Promise<MediaMeta | null> {
    for (const m of await this.store.metas()) {
      if (m.id !== id) continue;
      const st = await fs.stat(this.store.file(m.name)).catch(() => null);
      if (st && st.isFile() && st.size === m.sizeBytes) return m;
    }
    return null;
  }

  /** `base`, or `base` with the id in it when another URL's file already has that name. */
  private async freeName(id: string, base: string): Promise<string> {
    const taken = async (n: string) => {
      const meta = await this.store.readMeta(n);
      if (meta && meta.id !== id) return true;
      const exists = await fs.stat(this.store.file(n)).then(() => true, () => false);
      return exists && !meta;
    };
    if (!(await taken(base))) return base;
    const ext = path.extname(base);
    return `${base.slice(0, base.length - ext.length)}-${id.slice(0, 8)}${ext}`;
  }

  private async plan(r: DownloadRequest): Promise<{
    id: string;
    source: string;
    url: string;
    catalogId: string | null;
    checksum: PartialState['checksum'];
  }> {
    const isUrl = /^[a-z][a-z0-9+.-]*:/i.test(r.source);
    let url: string;
    let entry: CatalogEntry | null = null;
    if (isUrl) {
      const problem = downloadUrlProblem(r.source);
      if (problem !== null) throw errors.invalid(`"${r.source}" cannot be downloaded: ${problem}.`);
      url = new URL(r.source).toString();
    } else {
      entry = (await this.entries()).find((e) => e.id === r.source) ?? null;
      if (!entry) throw new VivariumError(ErrorCode.NotFound, `No OS with id "${r.source}" in the catalog. Run \`vivarium catalog\` to see the ids, or give a URL.`, { source: r.source });
      url = entry.url;
    }
    let checksum: PartialState['checksum'];
    if (r.sha256) checksum = { algorithm: 'sha256', expected: r.sha256, sumsUrl: null, from: 'the given SHA-256', signature: null };
    else if (r.sha512) checksum = { algorithm: 'sha512', expected: r.sha512, sumsUrl: null, from: 'the given SHA-512', signature: null };
    else if (r.sumsUrl) checksum = { algorithm: 'sha256', expected: null, sumsUrl: r.sumsUrl, from: `${r.sumsUrl} (checksum not signed)`, signature: null };
    else if (entry) checksum = await this.catalogChecksum(entry);
    else {
      throw errors.invalid(
        `Vivarium only keeps downloads it can verify: give the SHA-256 or SHA-512 checksum of ${url}, or the address of the SUMS file that lists it (the distro publishes one next to the image).`,
        { field: 'checksum' },
      );
    }
    return { id: downloadId(url), source: r.source, url, catalogId: entry?.id ?? null, checksum };
  }

  /**
   * How a catalog entry's download is verified: its SUMS file, and that file's signature when the
   * distro signs it and Vivarium ships the key (`from` says which, for the person: "… (checksum not
   * signed)", "… (signature checked against …)", or why it is not checked).
   */
  private async catalogChecksum(entry: CatalogEntry): Promise<PartialState['checksum']> {
    const base = { algorithm: entry.checksumAlgorithm, expected: null, sumsUrl: entry.checksumUrl };
    const sig = entry.signature;
    switch (sig.kind) {
      case 'none':
        return { ...base, from: `${entry.checksumUrl} (checksum not signed: ${sig.note})`, signature: null };
      case 'image-detached':
        return { ...base, from: `${entry.checksumUrl} (checksum not signed; the distro signs the image itself, which Vivarium does not check: ${sig.url})`, signature: null };
      case 'detached':
      case 'clearsigned': {
        const keyring = sig.keyring !== undefined && sig.fingerprints.length > 0 && (await readShippedKeyring(await this.resources(), sig.keyring)) !== null ? sig.keyring : null;
        if (keyring === null) {
          const expected = sig.fingerprints.length > 0 ? ` (key ${sig.fingerprints.map(spacedFingerprint).join(' or ')})` : '';
          return {
            ...base,
            from: `${entry.checksumUrl} (signed, but Vivarium ships no copy of the signing key${expected}, so the signature is not checked; check it with gpg --verify and the keys at ${sig.keysUrl})`,
            signature: null,
          };
        }
        return {
          ...base,
          from: `${entry.checksumUrl} (its signature checked against ${sig.fingerprints.length === 1 ? 'key' : 'keys'} ${sig.fingerprints.map(spacedFingerprint).join(', ')})`,
          signature: { kind: sig.kind, url: sig.kind === 'detached' ? sig.url : null, keyring, fingerprints: [...sig.fingerprints] },
        };
      }
      default:
        throw new Error(`unknown signature kind ${(sig as { kind: string }).kind}`);
    }
  }
}

function noDownload(id: string): VivariumError {
  return new VivariumError(ErrorCode.NotFound, `No download with id ${id}. Run \`vivarium media status\` to see the downloads.`, { id });
}

function toItem(store: MediaStore, m: MediaMeta): MediaItem {
  return { path: store.file(m.name), name: m.name, sizeBytes: m.sizeBytes, sha256: m.sha256, source: m.url, catalogId: m.catalogId, downloadedAt: m.downloadedAt };
}

function doneInfo(store: MediaStore, m: MediaMeta, source: string): DownloadInfo {
  return {
    id: m.id,
    source,
    url: m.url,
    name: m.name,
    path: store.file(m.name),
    state: 'done',
    receivedBytes: m.sizeBytes,
    totalBytes: m.sizeBytes,
    bytesPerSecond: 0,
    secondsLeft: 0,
    checksum: { algorithm: m.sha512 ? 'sha512' : 'sha256', from: m.verifiedWith },
    error: null,
  };
}

function stateInfo(store: MediaStore, s: PartialState, state: DownloadState, received: number, error: string | null): DownloadInfo {
  return {
    id: s.id,
    source: s.source,
    url: s.url,
    name: s.name,
    path: store.file(s.name),
    state,
    receivedBytes: received,
    totalBytes: s.totalBytes,
    bytesPerSecond: 0,
    secondsLeft: null,
    checksum: { algorithm: s.checksum.algorithm, from: s.checksum.from },
    error,
  };
}

// ---- one download ------------------------------------------------------------------------------------

interface JobOptions {
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  readonly emit: (info: DownloadInfo) => void;
  /** The resources/ folder (resources/keys/ holds the keyrings signatures are checked with). */
  readonly resources: () => Promise<string>;
  /** Called when the job has ended, before its waiters are told. */
  readonly onEnd: () => void;
  readonly log?: (line: string) => void;
}

/** A failure that retrying will not fix (404, wrong checksum, not in the SUMS file). */
class Permanent extends Error {}

/** A failure that retrying will not fix but that keeps what was downloaded, for a resume once the
 *  cause is fixed (a server certificate no trusted authority signs: NODE_EXTRA_CA_CERTS). */
class NotRetried extends Error {}

/** The error for a request that did not get a response (request-failure.ts): NotRetried when
 *  waiting cannot help (a certificate, a port that does not speak HTTPS, a redirect loop), else a
 *  plain Error, which is retried. `role`: what was being fetched ("the file", "the checksum file"). */
function unreachable(url: string, e: unknown, role: string): Error {
  const { message, retry } = describeRequestFailure(e, url, role);
  return retry ? new Error(`${message}.`) : new NotRetried(`${message}.`);
}

class Job {
  readonly id: string;
  readonly done: Promise<MediaItem>;
  private resolveDone!: (item: MediaItem) => void;
  private rejectDone!: (e: unknown) => void;
  private readonly abort = new AbortController();
  private stopReason: StopReason | null = null;
  private stateName: DownloadState = 'downloading';
  private received = 0;
  private error: string | null = null;
  private lastEmit = 0;
  private samples: { t: number; bytes: number }[] = [];
  private ended: Promise<void> | null = null;
  /** What to tell waiters once the job has fully ended. */
  private settle: () => void = () => undefined;
  /** Follows the partial file as it grows (null after a truncate, until the next attempt). */
  private hasher: FileHasher | null = null;

  constructor(
    private readonly store: MediaStore,
    private state: PartialState,
    private readonly o: JobOptions,
  ) {
    this.id = state.id;
    this.done = new Promise<MediaItem>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
  }

  info(): DownloadInfo {
    const rate = this.stateName === 'downloading' ? this.rate() : 0;
    const total = this.state.totalBytes;
    return {
      id: this.id,
      source: this.state.source,
      url: this.state.url,
      name: this.state.name,
      path: this.store.file(this.state.name),
      state: this.stateName,
      receivedBytes: this.received,
      totalBytes: total,
      bytesPerSecond: Math.round(rate),
      secondsLeft: this.stateName === 'done' ? 0 : total !== null && rate > 0 ? Math.max(0, Math.round((total - this.received) / rate)) : null,
      checksum: { algorithm: this.state.checksum.algorithm, from: this.state.checksum.from },
      error: this.error,
    };
  }

  /** Stops the download; resolves once it has stopped and its state is written. */
  async stop(reason: StopReason): Promise<void> {
    if (this.stopReason === null) {
      this.stopReason = reason;
      this.abort.abort(new Stopped(reason));
    }
    await this.ended;
  }

  run(): Promise<void> {
    this.ended ??= this.runInner();
    return this.ended;
  }

  private async runInner(): Promise<void> {
    const name = this.state.name;
    try {
      this.received = (await fs.stat(this.store.part(this.id)).catch(() => null))?.size ?? 0;
      await this.save({ running: true });
      this.emit(true);
      await this.resolveExpected();
      await this.transfer();
      this.setState('verifying');
      const item = await this.verifyAndKeep();
      this.settle = () => {
        this.setState('done');
        this.resolveDone(item);
      };
    } catch (e) {
      if (e instanceof Stopped || this.stopReason !== null) {
        const reason = this.stopReason ?? (e as Stopped).reason;
        if (reason === 'discard') {
          await this.store.removePartial(this.id);
          this.error = 'The download was discarded.';
          this.fail('failed', errors.state(`The download of ${name} was discarded.`, { id: this.id }));
        } else {
          this.error = reason === 'cancel' ? 'Cancelled.' : 'The engine stopped; it resumes when Vivarium runs again.';
          // A shutdown keeps `running` so the next engine resumes; a cancel does not.
          await this.save({ running: reason === 'shutdown', error: this.error }).catch(() => undefined);
          this.fail(
            'paused',
            errors.state(
              reason === 'cancel'
                ? `The download of ${name} was cancelled at ${this.received} bytes; the partial file is kept. Resume it (id ${this.id}) to go on.`
                : `The download of ${name} stopped with the engine at ${this.received} bytes; it resumes when Vivarium runs again.`,
              { id: this.id, receivedBytes: this.received },
            ),
          );
        }
      } else if (e instanceof Permanent) {
        await this.store.removePartial(this.id);
        this.error = e.message;
        this.fail('failed', new VivariumError(ErrorCode.InvalidState, e.message, { id: this.id }));
      } else {
        // Retries exhausted: keep the download paused for a resume (the network may come back; the
        // UI offers Resume). Not worth a retry (a certificate, a port that is not HTTPS): the person
        // must change something first, so with nothing downloaded no paused entry is left to
        // discard (tester-s7 #9); a partial file is kept either way.
        this.error = `${(e as Error).message}`;
        const kept = (await fs.stat(this.store.part(this.id)).catch(() => null))?.size ?? 0;
        if (kept === 0 && e instanceof NotRetried) {
          await this.store.removePartial(this.id);
          this.fail('failed', errors.state(`The download of ${name} failed: ${this.error} Nothing was downloaded; run the same download again once that is fixed.`, { id: this.id }));
        } else {
          await this.save({ running: false, error: this.error }).catch(() => undefined);
          const why = e instanceof NotRetried ? 'stopped' : 'paused after repeated failures';
          const then = kept === 0 ? `Nothing was downloaded yet; resume it (id ${this.id}) when that is fixed.` : `The partial file (${formatBytes(kept)}) is kept; resume it (id ${this.id}) to go on.`;
          this.fail('paused', errors.state(`The download of ${name} ${why}: ${this.error} ${then}`, { id: this.id }));
        }
      }
    } finally {
      this.dropHasher();
      await this.store.unlock(this.id).catch(() => undefined);
      // Settle only once the lock is gone and the job has left the manager, so whoever waited sees
      // the final picture (no lock, no running job).
      this.o.onEnd();
      this.settle();
    }
  }

  private async save(patch: Partial<PartialState>): Promise<void> {
    this.state = { ...this.state, ...patch, updatedAt: new Date().toISOString() };
    await this.store.writeState(this.state);
  }

  /** Ends the job in `state`, rejecting its waiters with `error` (once it has fully ended). */
  private fail(state: DownloadState, error: unknown): void {
    this.settle = () => {
      this.setState(state);
      this.rejectDone(error);
    };
  }

  private setState(s: DownloadState): void {
    this.stateName = s;
    this.emit(true);
  }

  private emit(force = false): void {
    const now = Date.now();
    if (!force && now - this.lastEmit < PROGRESS_INTERVAL_MS) return;
    this.lastEmit = now;
    this.o.emit(this.info());
  }

  private rate(): number {
    const s = this.samples;
    if (s.length < 2) return 0;
    const first = s[0]!;
    const last = s[s.length - 1]!;
    const dt = (last.t - first.t) / 1000;
    return dt > 0 ? (last.bytes - first.bytes) / dt : 0;
  }

  private sample(): void {
    const now = Date.now();
    const last = this.samples[this.samples.length - 1];
    if (last && now - last.t < SAMPLE_INTERVAL_MS) return;
    this.samples.push({ t: now, bytes: this.received });
    while (this.samples.length > 2 && now - this.samples[0]!.t > RATE_WINDOW_MS) this.samples.shift();
  }

  /** The image's GET (http-get.ts); a stop while connecting is a Stopped, anything else a sentence. */
  private async getChecked(url: string, headers: Readonly<Record<string, string>>): Promise<HttpGetResponse> {
    try {
      const { httpGet } = await import('./http-get.js');
      return await httpGet(url, { headers, signal: this.abort.signal });
    } catch (e) {
      if (this.stopReason !== null) throw new Stopped(this.stopReason);
      throw unreachable(url, e, 'the file');
    }
  }

  /** A small file (a SUMS file, a signature): retried like the download, at most 4 MiB. */
  private async fetchSmall(url: string, what: string): Promise<Uint8Array> {
    const { httpGetBytes, BodyTooLarge } = await import('./http-get.js');
    let lastError: unknown = null;
    for (let attempt = 0; attempt <= this.o.maxRetries; attempt++) {
      if (attempt > 0) await this.delay(attempt);
      try {
        let res;
        try {
          res = await httpGetBytes(url, { signal: this.abort.signal, maxBytes: MAX_SMALL_FILE_BYTES });
        } catch (e) {
          if (e instanceof BodyTooLarge) throw new Permanent(`${url} is too large to be a ${what}.`);
          if (this.stopReason !== null) throw new Stopped(this.stopReason);
          throw unreachable(url, e, `the ${what}`);
        }
        if (res.status >= 400 && res.status < 500) {
          throw new Permanent(`The ${what} ${url} could not be fetched (${res.status} ${res.statusText}). Check the address, or give the checksum itself.`);
        }
        if (res.status < 200 || res.status >= 300) throw new Error(`${url} answered ${res.status} ${res.statusText}.`);
        return res.body;
      } catch (e) {
        if (e instanceof Permanent || e instanceof Stopped || e instanceof NotRetried) throw e;
        lastError = e;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** Reads the expected digest from the SUMS file (once; it is kept in the state), after checking
   *  the SUMS file's signature when the catalog entry has one Vivarium can check. */
  private async resolveExpected(): Promise<void> {
    const c = this.state.checksum;
    if (c.expected !== null) return;
    const sumsUrl = c.sumsUrl!;
    const sumsName = path.posix.basename(new URL(sumsUrl).pathname) || 'the SUMS file';
    const sums = await this.fetchSmall(sumsUrl, 'checksum file');
    let text = Buffer.from(sums).toString('utf8');
    let from = `${sumsName} at ${sumsUrl}${c.signature ? '' : ' (checksum not signed)'}`;
    if (c.signature) {
      const sig = c.signature;
      const signature = sig.url !== null ? await this.fetchSmall(sig.url, 'signature of the checksum file') : null;
      const keyring = await readShippedKeyring(await this.o.resources(), sig.keyring);
      if (!keyring) throw new Permanent(`Vivarium's copy of the signing keys (resources/keys/${sig.keyring}) is missing, so the checksum file ${sumsUrl} cannot be checked. Reinstall Vivarium.`);
      try {
        const good = await verifySums(sums, { kind: sig.kind, signature, keyring, fingerprints: sig.fingerprints });
        text = good.signedText;
        from = `${sumsName} at ${sumsUrl}, signed by ${good.signer} (key ${spacedFingerprint(good.fingerprint)})`;
      } catch (e) {
        if (!(e instanceof BadSignature)) throw e;
        throw new Permanent(
          `The signature of the checksum file ${sumsUrl} does not verify: ${e.message}. The file may not be the distro's (a mirror changed it, or someone in between did), so nothing was downloaded. Try again later or from another mirror, and tell the distro if it persists.`,
        );
      }
    }
    const fileName = decodeURIComponent(new URL(this.state.url).pathname.split('/').pop() ?? '');
    // A catalog entry names the algorithm; a SUMS URL given by the user may list either.
    const entry = findDigest(text, fileName, this.state.catalogId ? c.algorithm : undefined);
    if (!entry) {
      throw new Permanent(`The checksum file ${sumsUrl} does not list ${fileName}, so the download cannot be verified. Check that they belong together, or give the checksum itself.`);
    }
    await this.save({ checksum: { ...c, algorithm: entry.algorithm, expected: entry.digest, from } });
  }

  private async delay(attempt: number): Promise<void> {
    const ms = this.o.retryDelayMs * 2 ** (attempt - 1);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      this.abort.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(new Stopped(this.stopReason ?? 'cancel'));
        },
        { once: true },
      );
    });
  }

  /** Fetches until the partial holds the whole file, retrying cut connections with Range. */
  private async transfer(): Promise<void> {
    let failures = 0;
    for (;;) {
      if (this.stopReason !== null) throw new Stopped(this.stopReason);
      const before = this.received;
      try {
        const complete = await this.attempt();
        if (complete) return;
      } catch (e) {
        if (e instanceof Permanent || e instanceof Stopped || e instanceof NotRetried || this.stopReason !== null) throw e;
        failures = this.received > before ? 1 : failures + 1;
        this.o.log?.(`media: ${this.state.name}: ${(e as Error).message} (attempt ${failures} of ${this.o.maxRetries})`);
        if (failures > this.o.maxRetries) throw e;
        this.error = `${(e as Error).message} Retrying…`;
        this.emit(true);
        await this.delay(failures);
        this.error = null;
      }
    }
  }

  /** One request. Returns true when the partial file is complete. */
  private async attempt(): Promise<boolean> {
    const part = this.store.part(this.id);
    const offset = (await fs.stat(part).catch(() => null))?.size ?? 0;
    this.received = offset;
    const total = this.state.totalBytes;
    if (total !== null && offset === total && offset > 0) return true;
    if (total !== null && offset > total) {
      this.dropHasher();
      await fs.truncate(part, 0);
      this.received = 0;
      return this.attempt();
    }
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      const validator = this.state.etag && !this.state.etag.startsWith('W/') ? this.state.etag : this.state.lastModified;
      if (validator) headers['if-range'] = validator;
    }
    const res = await this.getChecked(this.state.url, headers);
    let start = 0;
    let newTotal: number | null = null;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.header('content-range') ?? '');
      if (!m || Number(m[1]) !== offset) {
        res.cancel();
        // The server sent some other range: start over.
        this.dropHasher();
        await fs.truncate(part, 0).catch(() => undefined);
        throw new Error(`${new URL(this.state.url).host} sent an unexpected range (${res.header('content-range') ?? 'none'}); starting over.`);
      }
      start = offset;
      newTotal = m[3] === '*' ? null : Number(m[3]);
    } else if (res.status === 200) {
      start = 0;
      const len = res.header('content-length');
      newTotal = len !== null && /^\d+$/.test(len) ? Number(len) : null;
      if (offset > 0) this.o.log?.(`media: ${this.state.name}: the server did not resume (200 instead of 206); starting over.`);
    } else if (res.status === 416 && offset > 0) {
      res.cancel();
      // Nothing past our end: the partial may already be complete (state saved before the last
      // byte's bookkeeping); verification decides. Otherwise start over.
      if (total === null || total === offset) {
        this.state = { ...this.state, totalBytes: offset };
        return true;
      }
      this.dropHasher();
      await fs.truncate(part, 0);
      throw new Error(`${new URL(this.state.url).host} refused to resume; starting over.`);
    } else {
      res.cancel();
      const what = `${res.status} ${res.statusText}`.trim();
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        throw new Permanent(`${this.state.url} could not be downloaded: the server answered ${what}. Check the address${this.state.catalogId ? ' (the catalog may be out of date; a newer Vivarium has newer links)' : ''}.`);
      }
      throw new Error(`the server answered ${what}.`);
    }
    await this.save({
      totalBytes: newTotal,
      etag: res.header('etag'),
      lastModified: res.header('last-modified'),
      error: null,
    });
    if (newTotal !== null) await this.checkSpace(newTotal - start);
    // A 200 rewrites the file from its first byte: what was hashed no longer holds.
    if (start === 0) this.dropHasher();
    // The body (a Node stream: http-get.ts says why not fetch's) is handed chunk by chunk to the
    // writer's worker thread, which appends each to the partial file and hashes it (file-hasher.ts);
    // this thread only receives, and waits when more than 64 MiB are not written yet.
    const writer = await this.followHasher(part);
    writer.open(start);
    this.received = start;
    this.samples = [{ t: Date.now(), bytes: start }];
    let size: number;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (writer.error) throw writer.error;
        this.received += chunk.length;
        this.sample();
        this.emit();
        if (!writer.write(chunk)) await writer.drained();
      }
    } catch (e) {
      res.cancel();
      // What arrived before the break is good: keep it for the resume.
      const failed = writer.error;
      await writer.close().catch(() => undefined);
      if (this.stopReason !== null) throw new Stopped(this.stopReason);
      if (failed) throw new Permanent(`${part} could not be written (${failed.message}).`);
      throw new Error(`the connection broke at ${this.received} bytes (${describeRequestFailure(e, this.state.url, 'the file').words}).`);
    }
    try {
      size = await writer.close();
    } catch (e) {
      throw new Permanent(`${part} could not be written (${(e as Error).message}).`);
    }
    this.received = size;
    if (newTotal !== null && size < newTotal) throw new Error(`the connection ended early at ${size} of ${newTotal} bytes.`);
    if (newTotal === null) this.state = { ...this.state, totalBytes: size };
    await this.save({});
    return true;
  }

  /** The hasher following the partial file (a new one hashes what is already there). */
  private async followHasher(part: string): Promise<FileHasher> {
    const { FileHasher } = await import('./file-hasher.js');
    this.hasher ??= new FileHasher(part, this.state.checksum.algorithm === 'sha512' ? ['sha256', 'sha512'] : ['sha256']);
    return this.hasher;
  }

  private dropHasher(): void {
    this.hasher?.dispose();
    this.hasher = null;
  }

  private async checkSpace(needed: number): Promise<void> {
    const st = await fs.statfs(this.store.downloadsDir).catch(() => null);
    if (!st) return;
    const free = st.bavail * st.bsize;
    if (needed > free) {
      throw new Permanent(
        `${this.state.name} needs ${(needed / 1024 ** 3).toFixed(1)} GiB more but only ${(free / 1024 ** 3).toFixed(1)} GiB is free in ${this.store.dir}. Free some space and download it again.`,
      );
    }
  }

  private async verifyAndKeep(): Promise<MediaItem> {
    const part = this.store.part(this.id);
    const size = (await fs.stat(part)).size;
    const { digests, bytes } = await (await this.followHasher(part)).finish(size);
    this.hasher = null;
    if (bytes !== size) throw new Error(`the partial file changed while it was verified (${bytes} of ${size} bytes hashed).`);
    const sha256 = digests.sha256!;
    const sha512 = digests.sha512 ?? null;
    const c = this.state.checksum;
    const got = c.algorithm === 'sha256' ? sha256 : sha512!;
    if (got !== c.expected) {
      throw new Permanent(
        `${this.state.name} did not match its ${LABEL[c.algorithm]} checksum from ${c.from} (expected ${c.expected}, got ${got}), so it was deleted. The file was damaged or altered on the way; download it again, from another mirror if it happens again.`,
      );
    }
    const file = this.store.file(this.state.name);
    await fs.chmod(part, 0o600);
    await fs.rename(part, file);
    const meta: MediaMeta = {
      version: 1,
      id: this.id,
      name: this.state.name,
      url: this.state.url,
      catalogId: this.state.catalogId,
      sizeBytes: size,
      sha256,
      sha512,
      verifiedWith: `${LABEL[c.algorithm]} from ${c.from}`,
      downloadedAt: new Date().toISOString(),
    };
    await this.store.writeMeta(meta);
    await fs.rm(this.store.stateFile(this.id), { force: true });
    this.received = size;
    return toItem(this.store, meta);
  }
}

/** A small file's limit (a SUMS file, a signature). */
const MAX_SMALL_FILE_BYTES = 4 * 1024 * 1024;

