/**
 * VM bundles on disk: one folder per VM, named by its id, holding config.json and the VM's own
 * files. State on disk is the truth; this module only reads and writes it atomically.
 *
 * A bundle that cannot be loaded is reported as broken with the reason; it never hides the others.
 * Parsed configs are cached by (mtime, size) so that listing a large library every second is cheap.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from '../../common/errors';
import { diskImages, parseVmConfig, type VmConfig } from '../../common/models/vm-config';
import { BundleFile, KEPT_DISKS_DIR, type Layout, expectedFsError, mkdirPrivate, PRIVATE_DIR_MODE, readFileNoFollow, symlinkError, writeFileAtomic } from '../paths';

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
   * Reads one bundle; null when the folder has no config.json at all (not a VM). Links are never
   * followed: a VM folder that is a symbolic link, or a config.json that is one, shows as broken
   * with a sentence that holds nothing read from the link's target.
   */
  read(id: string): BundleEntry | null {
    const b = this.layout.bundle(id);
    let st: fs.Stats;
    try {
      const dirSt = fs.lstatSync(b.dir);
      if (dirSt.isSymbolicLink()) {
        this.cache.delete(id);
        return {
          id,
          dir: b.dir,
          ok: false,
          error: 'This VM folder is a symbolic link; Vivarium does not follow links in its library. Move the real folder into the library instead.',
          name: null,
        };
      }
      st = fs.lstatSync(b.config);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      return { id, dir: b.dir, ok: false, error: `Cannot read config.json: ${(e as Error).message}`, name: null };
    }
    if (st.isSymbolicLink()) {
      this.cache.delete(id);
      return { id, dir: b.dir, ok: false, error: symlinkError(b.config).message, name: null };
    }
    const slot = this.cache.get(id);
    if (slot && slot.mtimeMs === st.mtimeMs && slot.size === st.size) return slot.entry;
    let entry: BundleEntry;
    try {
      const text = readFileNoFollow(b.config).toString('utf8');
      const result = parseVmConfig(text);
      if (result.ok && result.config.id !== id) {
        entry = {
          id,
          dir: b.dir,
          ok: false,
          error: `config.json says its id is ${result.config.id} but its folder is ${id}. Rename the folder or fix the id.`,
          name: result.config.name,
        };
      } else if (result.ok) {
        entry = { id, dir: b.dir, ok: true, config: result.config };
      } else {
        entry = { id, dir: b.dir, ok: false, error: result.error, name: guessName(text) };
      }
    } catch (e) {
      entry = { id, dir: b.dir, ok: false, error: `Cannot read config.json: ${(e as Error).message}`, name: null };
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
    mkdirPrivate(this.layout.home);
    mkdirPrivate(this.layout.bundlesDir);
    const finalDir = this.layout.bundle(config.id).dir;
    const staging = path.join(this.layout.bundlesDir, `${STAGING_PREFIX}${config.id}-${process.pid}`);
    try {
      fs.mkdirSync(staging, { mode: PRIVATE_DIR_MODE });
      fs.chmodSync(staging, PRIVATE_DIR_MODE);
    } catch (e) {
      throw expectedFsError(e, staging);
    }
    try {
      await prepare(staging);
      writeFileAtomic(path.join(staging, BundleFile.config), serializeConfig(config));
      fs.renameSync(staging, finalDir);
    } catch (e) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw expectedFsError(e, finalDir);
    }
  }

  save(config: VmConfig): void {
    const b = this.layout.bundle(config.id);
    let dir: fs.Stats;
    try {
      dir = fs.lstatSync(b.dir);
    } catch {
      throw errors.notFound(config.id);
    }
    if (dir.isSymbolicLink()) throw symlinkError(b.dir);
    writeFileAtomic(b.config, serializeConfig(config));
  }

  /**
   * Deletes a bundle. With keepDisks, the bundle's own disk images are first moved to
   * `<home>/kept-disks/<name>-<id8>/`; external disks (given by path) are never touched either way.
   */
  remove(entry: BundleEntry, keepDisks: boolean): string[] {
    const kept: string[] = [];
    if (keepDisks && entry.ok) {
      // Every image of every disk's chain that lives in the bundle (a linked clone's base layers too).
      const owned = [...new Set(entry.config.disks.flatMap((d) => diskImages(d).flatMap((l) => ('bundle' in l.source ? [l.source.bundle] : []))))];
      if (owned.length > 0) {
        const dest = path.join(this.layout.home, KEPT_DISKS_DIR, `${safeFileStem(entry.config.name)}-${entry.id.slice(0, 8)}`);
        mkdirPrivate(dest);
        for (const file of owned) {
          const from = this.layout.bundle(entry.id).file(file);
          if (!fs.existsSync(from)) continue;
          const to = path.join(dest, file);
          fs.renameSync(from, to);
          kept.push(to);
        }
      }
    }
    // Move aside first so a half-deleted bundle never shows up as a broken VM.
    const trash = path.join(this.layout.bundlesDir, `${DELETING_PREFIX}${entry.id}-${process.pid}`);
    fs.renameSync(entry.dir, trash);
    fs.rmSync(trash, { recursive: true, force: true });
    this.cache.delete(entry.id);
    return kept;
  }

  /**
   * Removes staging folders left by a create or delete that was interrupted (killed, power cut): at
   * once when the process that made one is gone (its pid is in the name), else once it is older than
   * `maxAgeMs` (a pid reused by another program). A link is removed as a link, never followed.
   */
  sweepStaging(maxAgeMs = 10 * 60_000): void {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.layout.bundlesDir);
    } catch {
      return;
    }
    for (const n of names) {
      if (!n.startsWith(STAGING_PREFIX) && !n.startsWith(DELETING_PREFIX)) continue;
      const p = path.join(this.layout.bundlesDir, n);
      try {
        const pid = Number(LEFTOVER_RE.exec(n)?.[1] ?? NaN);
        const ownerGone = Number.isSafeInteger(pid) && pid !== process.pid && !processAlive(pid);
        if (ownerGone || Date.now() - fs.lstatSync(p).mtimeMs > maxAgeMs) fs.rmSync(p, { recursive: true, force: true });
      } catch {
        // Someone else removed it first.
      }
    }
  }
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
