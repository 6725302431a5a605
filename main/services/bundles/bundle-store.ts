/**
 * VM bundles on disk: one folder per VM, named by its id, holding config.json and the VM's own
 * files. State on disk is the truth; this module only reads and writes it atomically.
 *
 * A bundle that cannot be loaded is reported as broken with the reason; it never hides the others.
 * Parsed configs are cached by (mtime, size) so that listing a large library every second is cheap.
 *
 * Blocking file system calls (issue 7): list/read stay synchronous — the library's sync getters
 * (Library.entries, VmService.listSync) are built on them; a listing is one readdir of a folder of
 * VM folders plus two lstats and a cached parse per VM. Everything that may take long — removing a
 * deleted VM's files (gigabytes of disks), writing a config — runs on libuv's thread pool.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { errors } from '../../common/errors';
import { diskImages, parseVmConfig, type VmConfig } from '../../common/models/vm-config';
import { BundleFile, KEPT_DISKS_DIR, type Layout, expectedFsError, mkdirPrivateAsync, PRIVATE_DIR_MODE, readFileNoFollow, readFileNoFollowAsync, symlinkError, writeFileAtomicAsync } from '../paths';

export type BundleEntry =
  | { readonly id: string; readonly dir: string; readonly ok: true; readonly config: VmConfig }
  | { readonly id: string; readonly dir: string; readonly ok: false; readonly error: string; readonly name: string | null };

const UUID_DIR_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STAGING_PREFIX = '.creating-';
const DELETING_PREFIX = '.deleting-';
/** `.creating-<id>-<pid>` / `.deleting-<id>-<pid>`: the pid says whether its maker still lives. */
const LEFTOVER_RE = /^\.(?:creating|deleting)-[0-9a-f-]{36}-(\d+)$/;

interface CacheSlot {
  readonly mtimeMs: number;
  readonly size: number;
  readonly entry: BundleEntry;
}

export class BundleStore {
  private readonly cache = new Map<string, CacheSlot>();
  private swept = false;
  /** Folders being removed in the background (remove, sweepStaging), by path. */
  private readonly removing = new Map<string, Promise<void>>();

  constructor(private readonly layout: Layout) {}

  list(): BundleEntry[] {
    // Any process that lists (the CLI too, not only a long-running engine) clears what an
    // interrupted create or delete left behind.
    if (!this.swept) {
      this.swept = true;
      this.sweepStaging();
    }
    let names: string[];
    try {
      // eslint-disable-next-line no-restricted-syntax -- list() is the library's synchronous API (see the file's comment): one readdir
      names = fs.readdirSync(this.layout.bundlesDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const seen = new Set<string>();
    const out: BundleEntry[] = [];
    for (const name of names) {
      if (!UUID_DIR_RE.test(name)) continue;
      seen.add(name);
      const entry = this.read(name);
      if (entry) out.push(entry);
    }
    for (const id of this.cache.keys()) if (!seen.has(id)) this.cache.delete(id);
    return out;
  }

  /**
   * list() without blocking the event loop (same entries, same cache): for async callers such as
   * VmService.list (TODO(lead): vm-service.ts can switch to it through Library.entriesAsync).
   */
  async listAsync(): Promise<BundleEntry[]> {
    if (!this.swept) {
      this.swept = true;
      this.sweepStaging();
    }
    let names: string[];
    try {
      names = await fsp.readdir(this.layout.bundlesDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const seen = new Set<string>();
    const out: BundleEntry[] = [];
    for (const name of names) {
      if (!UUID_DIR_RE.test(name)) continue;
      seen.add(name);
      const entry = await this.readAsync(name);
      if (entry) out.push(entry);
    }
    for (const id of this.cache.keys()) if (!seen.has(id)) this.cache.delete(id);
    return out;
  }

  /** read() without blocking the event loop. */
  async readAsync(id: string): Promise<BundleEntry | null> {
    const b = this.layout.bundle(id);
    let dirSt: fs.Stats;
    let st: fs.Stats;
    try {
      dirSt = await fsp.lstat(b.dir);
      st = dirSt.isSymbolicLink() ? dirSt : await fsp.lstat(b.config);
    } catch (e) {
      return missingOrBroken(id, b.dir, e);
    }
    const known = this.known(id, b, dirSt, st);
    if (known !== undefined) return known;
    let text: string | Error;
    try {
      text = (await readFileNoFollowAsync(b.config)).toString('utf8');
    } catch (e) {
      text = e as Error;
    }
    return this.remember(id, b.dir, st, text);
  }

  /**
   * Reads one bundle; null when the folder has no config.json at all (not a VM). Links are never
   * followed: a VM folder that is a symbolic link, or a config.json that is one, shows as broken
   * with a sentence that holds nothing read from the link's target.
   */
  read(id: string): BundleEntry | null {
    const b = this.layout.bundle(id);
    let dirSt: fs.Stats;
    let st: fs.Stats;
    try {
      // eslint-disable-next-line no-restricted-syntax -- read() serves the synchronous list(): one lstat
      dirSt = fs.lstatSync(b.dir);
      // eslint-disable-next-line no-restricted-syntax -- read() serves the synchronous list(): one lstat (the cache key)
      st = dirSt.isSymbolicLink() ? dirSt : fs.lstatSync(b.config);
    } catch (e) {
      return missingOrBroken(id, b.dir, e);
    }
    const known = this.known(id, b, dirSt, st);
    if (known !== undefined) return known;
    let text: string | Error;
    try {
      text = readFileNoFollow(b.config).toString('utf8');
    } catch (e) {
      text = e as Error;
    }
    return this.remember(id, b.dir, st, text);
  }

  /** What read()/readAsync() answer from the folder's and config.json's lstat alone — a link, or
   *  the cached entry of an unchanged config.json — or undefined: config.json must be read. */
  private known(id: string, b: { readonly dir: string; readonly config: string }, dirSt: fs.Stats, st: fs.Stats): BundleEntry | undefined {
    if (dirSt.isSymbolicLink()) {
      this.cache.delete(id);
      return linkedFolderEntry(id, b.dir);
    }
    if (st.isSymbolicLink()) {
      this.cache.delete(id);
      return { id, dir: b.dir, ok: false, error: symlinkError(b.config).message, name: null };
    }
    const slot = this.cache.get(id);
    return slot && slot.mtimeMs === st.mtimeMs && slot.size === st.size ? slot.entry : undefined;
  }

  /** The entry for config.json's text (or the error reading it), cached under its lstat. */
  private remember(id: string, dir: string, st: fs.Stats, text: string | Error): BundleEntry {
    let entry: BundleEntry;
    try {
      if (text instanceof Error) throw text;
      entry = entryFromText(id, dir, text);
    } catch (e) {
      entry = { id, dir, ok: false, error: `Cannot read config.json: ${(e as Error).message}`, name: null };
    }
    this.cache.set(id, { mtimeMs: st.mtimeMs, size: st.size, entry });
    return entry;
  }

  /**
   * Creates a bundle atomically: everything is prepared in a hidden staging folder which is renamed
   * into place at the end, so a failed create leaves nothing behind. `prepare` writes the VM's
   * files (disks, UEFI vars) into the staging folder.
   */
  async create(config: VmConfig, prepare: (stagingDir: string) => Promise<void>): Promise<void> {
    await mkdirPrivateAsync(this.layout.home);
    await mkdirPrivateAsync(this.layout.bundlesDir);
    const finalDir = this.layout.bundle(config.id).dir;
    const staging = path.join(this.layout.bundlesDir, `${STAGING_PREFIX}${config.id}-${process.pid}`);
    try {
      await fsp.mkdir(staging, { mode: PRIVATE_DIR_MODE });
      await fsp.chmod(staging, PRIVATE_DIR_MODE);
    } catch (e) {
      throw expectedFsError(e, staging);
    }
    try {
      await prepare(staging);
      await writeFileAtomicAsync(path.join(staging, BundleFile.config), serializeConfig(config));
      await fsp.rename(staging, finalDir);
    } catch (e) {
      await fsp.rm(staging, { recursive: true, force: true });
      throw expectedFsError(e, finalDir);
    }
  }

  /**
   * Writes a VM's config.json atomically (writeFileAtomicAsync).
   * @throws VivariumError not-found (no bundle folder), invalid-state (the folder is a link), disk-full
   */
  async saveAsync(config: VmConfig): Promise<void> {
    const b = this.layout.bundle(config.id);
    let dir: fs.Stats;
    try {
      dir = await fsp.lstat(b.dir);
    } catch {
      throw errors.notFound(config.id);
    }
    if (dir.isSymbolicLink()) throw symlinkError(b.dir);
    await writeFileAtomicAsync(b.config, serializeConfig(config));
  }

  /**
   * Deletes a bundle. With keepDisks, the bundle's own disk images are first moved to
   * `<home>/kept-disks/<name>-<id8>/`; external disks (given by path) are never touched either way.
   * The bundle leaves the library at once (renamed to a hidden `.deleting-<id>-<pid>` folder, so it
   * never shows up half-deleted); its files — gigabytes of disks — are then removed on libuv's
   * thread pool, and the promise resolves once that has ended. A removal that failed or was cut
   * short (the process killed) is finished by the next sweepStaging. Returns the kept files' new paths.
   */
  async removeAsync(entry: BundleEntry, keepDisks: boolean): Promise<string[]> {
    const kept: string[] = [];
    // Every image of every disk's chain that lives in the bundle (a linked clone's base layers too).
    const owned = keepDisks && entry.ok ? ownDiskFiles(entry.config) : [];
    if (owned.length > 0 && entry.ok) {
      const dest = path.join(this.layout.home, KEPT_DISKS_DIR, `${safeFileStem(entry.config.name)}-${entry.id.slice(0, 8)}`);
      await mkdirPrivateAsync(dest);
      for (const file of owned) {
        const from = this.layout.bundle(entry.id).file(file);
        if (!(await fsp.access(from).then(() => true, () => false))) continue; // a disk file already gone
        const to = path.join(dest, file);
        await fsp.rename(from, to);
        kept.push(to);
      }
    }
    // Moved aside first, so a half-deleted bundle never shows up as a broken VM.
    const trash = path.join(this.layout.bundlesDir, `${DELETING_PREFIX}${entry.id}-${process.pid}`);
    await fsp.rename(entry.dir, trash);
    this.cache.delete(entry.id);
    this.removeInBackground(trash);
    await this.removing.get(trash);
    return kept;
  }

  /** Resolves once every background removal started so far has ended (never rejects). */
  async settled(): Promise<void> {
    while (this.removing.size > 0) await Promise.all([...this.removing.values()]);
  }

  /** Removes a folder of ours (not followed if a link) off the event loop; a failure leaves it for
   *  the next sweepStaging. */
  private removeInBackground(p: string): void {
    if (this.removing.has(p)) return;
    const done = fsp
      .rm(p, { recursive: true, force: true })
      .catch(() => undefined)
      .finally(() => this.removing.delete(p));
    this.removing.set(p, done);
  }

  /**
   * Removes staging folders left by a create or delete that was interrupted (killed, power cut): at
   * once when the process that made one is gone (its pid is in the name), else once it is older than
   * `maxAgeMs` (a pid reused by another program). A link is removed as a link, never followed.
   * The removals run in the background (settled() waits for them); the scan is synchronous because
   * list() runs it (a readdir and an lstat per leftover).
   */
  sweepStaging(maxAgeMs = 10 * 60_000): void {
    let names: string[] = [];
    try {
      // eslint-disable-next-line no-restricted-syntax -- called from the synchronous list() (see above): one readdir
      names = fs.readdirSync(this.layout.bundlesDir);
    } catch {
      return;
    }
    for (const n of names) {
      if (!n.startsWith(STAGING_PREFIX) && !n.startsWith(DELETING_PREFIX)) continue;
      const p = path.join(this.layout.bundlesDir, n);
      if (this.removing.has(p)) continue;
      try {
        const pid = Number(LEFTOVER_RE.exec(n)?.[1] ?? NaN);
        const ownerGone = Number.isSafeInteger(pid) && pid !== process.pid && !processAlive(pid);
        // eslint-disable-next-line no-restricted-syntax -- called from the synchronous list() (see above): one lstat
        if (ownerGone || Date.now() - fs.lstatSync(p).mtimeMs > maxAgeMs) this.removeInBackground(p);
      } catch {
        // Someone else removed it first.
      }
    }
  }
}

/** Every image of every disk's chain that lives in the bundle (a linked clone's base layers too). */
function ownDiskFiles(config: VmConfig): string[] {
  return [...new Set(config.disks.flatMap((d) => diskImages(d).flatMap((l) => ('bundle' in l.source ? [l.source.bundle] : []))))];
}

/** The entry for a VM folder that is a symbolic link (never followed). */
function linkedFolderEntry(id: string, dir: string): BundleEntry {
  return {
    id,
    dir,
    ok: false,
    error: 'This VM folder is a symbolic link; Vivarium does not follow links in its library. Move the real folder into the library instead.',
    name: null,
  };
}

/** The entry a config.json's text makes: the config, or broken with the reason (and a guessed name). */
function entryFromText(id: string, dir: string, text: string): BundleEntry {
  const result = parseVmConfig(text);
  if (result.ok && result.config.id !== id) {
    return {
      id,
      dir,
      ok: false,
      error: `config.json says its id is ${result.config.id} but its folder is ${id}. Rename the folder or fix the id.`,
      name: result.config.name,
    };
  }
  if (result.ok) return { id, dir, ok: true, config: result.config };
  return { id, dir, ok: false, error: result.error, name: guessName(text) };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

export function serializeConfig(config: VmConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** A display name for a broken bundle whose JSON still has a readable "name". */
function guessName(text: string): string | null {
  try {
    const raw = JSON.parse(text) as { name?: unknown };
    return typeof raw.name === 'string' ? raw.name : null;
  } catch {
    const m = /"name"\s*:\s*"([^"\\]{1,100})"/.exec(text);
    return m?.[1] ?? null;
  }
}

/** A VM name reduced to something safe as a folder name (names are any text). */
export function safeFileStem(name: string): string {
  const stem = name
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 40);
  return stem || 'vm';
}

/** A bundle whose folder or config.json could not be looked at: none (no such folder or file: not
 *  a VM), or a broken entry that says why. */
function missingOrBroken(id: string, dir: string, e: unknown): BundleEntry | null {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return null;
  return { id, dir, ok: false, error: `Cannot read config.json: ${(e as Error).message}`, name: null };
}
