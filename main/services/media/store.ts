/**
 * The files of `<library>/media/` (mode 0700, files 0600):
 *
 *   <name>                       a verified download
 *   .meta/<name>.json            what we know about it (MediaMeta: url, sha256, size…)
 *   .downloads/<id>.part         a partial download (bytes 0..n of the file)
 *   .downloads/<id>.json         its state (PartialState), enough to resume after a restart
 *   .downloads/<id>.lock         held (O_EXCL, holds the pid) while a process downloads it
 *
 * All reads of these JSON files are validated: a damaged one is ignored (and its partial redone),
 * never trusted.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { ChecksumAlgorithm } from '../../common/contract/media';

export const PartialState = z.object({
  version: z.literal(1),
  id: z.string().regex(/^[0-9a-f]{16}$/),
  source: z.string(),
  url: z.string(),
  name: z.string(),
  catalogId: z.string().nullable(),
  checksum: z.object({
    algorithm: ChecksumAlgorithm,
    /** null until read from the SUMS file. */
    expected: z.string().regex(/^[0-9a-f]+$/).nullable(),
    sumsUrl: z.string().nullable(),
    /** For people: "SHA512SUMS at https://…" or "the given SHA-256". */
    from: z.string(),
    /** The SUMS file's OpenPGP signature to check before its digest is trusted (signature.ts), or
     *  null: not signed, or no key to check it with (`from` says which). */
    signature: z
      .object({
        kind: z.enum(['detached', 'clearsigned']),
        /** The detached signature's URL; null for clear-signed. */
        url: z.string().nullable(),
        /** A file name in resources/keys/. */
        keyring: z.string(),
        fingerprints: z.array(z.string()),
      })
      .nullable()
      .default(null),
  }),
  /** The validators the server sent, for If-Range on resume. */
  etag: z.string().nullable(),
  lastModified: z.string().nullable(),
  totalBytes: z.number().int().nonnegative().nullable(),
  /** True while a download is meant to run: an engine that died with it true resumes it on start. */
  running: z.boolean(),
  error: z.string().nullable(),
  updatedAt: z.string(),
});
export type PartialState = z.infer<typeof PartialState>;

export const MediaMeta = z.object({
  version: z.literal(1),
  id: z.string(),
  name: z.string(),
  url: z.string(),
  catalogId: z.string().nullable(),
  sizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sha512: z.string().regex(/^[0-9a-f]{128}$/).nullable(),
  verifiedWith: z.string(),
  downloadedAt: z.string(),
});
export type MediaMeta = z.infer<typeof MediaMeta>;

export class MediaStore {
  readonly downloadsDir: string;
  readonly metaDir: string;
  constructor(readonly dir: string) {
    this.downloadsDir = path.join(dir, '.downloads');
    this.metaDir = path.join(dir, '.meta');
  }

  async ensure(): Promise<void> {
    for (const d of [this.dir, this.downloadsDir, this.metaDir]) {
      await fs.mkdir(d, { recursive: true, mode: 0o700 });
      const st = await fs.lstat(d);
      if (!st.isDirectory()) throw new Error(`${d} is not a folder`);
      if ((st.mode & 0o077) !== 0) await fs.chmod(d, 0o700);
    }
  }

  part(id: string): string {
    return path.join(this.downloadsDir, `${id}.part`);
  }
  stateFile(id: string): string {
    return path.join(this.downloadsDir, `${id}.json`);
  }
  lockFile(id: string): string {
    return path.join(this.downloadsDir, `${id}.lock`);
  }
  file(name: string): string {
    return path.join(this.dir, name);
  }
  metaFile(name: string): string {
    return path.join(this.metaDir, `${name}.json`);
  }

  async readState(id: string): Promise<PartialState | null> {
    return readJson(this.stateFile(id), PartialState);
  }
  async writeState(s: PartialState): Promise<void> {
    await writeJsonAtomic(this.stateFile(s.id), s);
  }
  async states(): Promise<PartialState[]> {
    const names = await readdirOrEmpty(this.downloadsDir);
    const out: PartialState[] = [];
    for (const n of names) {
      const m = /^([0-9a-f]{16})\.json$/.exec(n);
      if (!m) continue;
      const s = await this.readState(m[1]!);
      if (s && s.id === m[1]) out.push(s);
    }
    return out;
  }
  /** Removes a download's partial file, state and lock. */
  async removePartial(id: string): Promise<void> {
    await Promise.all([this.part(id), this.stateFile(id), this.lockFile(id)].map((f) => fs.rm(f, { force: true })));
  }

  async readMeta(name: string): Promise<MediaMeta | null> {
    return readJson(this.metaFile(name), MediaMeta);
  }
  async writeMeta(m: MediaMeta): Promise<void> {
    await writeJsonAtomic(this.metaFile(m.name), m);
  }
  async metas(): Promise<MediaMeta[]> {
    const out: MediaMeta[] = [];
    for (const n of await readdirOrEmpty(this.metaDir)) {
      if (!n.endsWith('.json')) continue;
      const m = await this.readMeta(n.slice(0, -5));
      if (m && `${m.name}.json` === n) out.push(m);
    }
    return out;
  }

  /**
   * Takes the download lock for `id`. Returns null when it was taken, or the pid of the live process
   * that holds it. A lock left by a process that is gone is taken over.
   */
  async lock(id: string): Promise<number | null> {
    const file = this.lockFile(id);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await fs.open(file, 'wx', 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        return null;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) return pid;
      await fs.rm(file, { force: true });
    }
    return -1;
  }
  async unlock(id: string): Promise<void> {
    const file = this.lockFile(id);
    const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    if (pid === process.pid) await fs.rm(file, { force: true });
  }
  /** The pid of a live process other than this one downloading `id`, if any. */
  async lockHolder(id: string): Promise<number | null> {
    const pid = Number((await fs.readFile(this.lockFile(id), 'utf8').catch(() => '')).trim());
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) ? pid : null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

async function readJson<T>(file: string, schema: z.ZodType<T>): Promise<T | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** temp file (0600) + fsync + rename. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
