/**
 * The browser UI's file chooser (`host.browse`): a folder listing rooted at the user's home folder.
 * The desktop app uses the system's own dialog instead; a browser page cannot see host paths, so the
 * engine lists them — and therefore never lists anything outside home.
 *
 * Confinement: the asked folder is resolved with realpath (every symbolic link followed) and must
 * land inside realpath(home); entries that are links are resolved too, and one that leads outside
 * home (or nowhere) is left out. `..` segments never get here (the contract's AbsPath refuses them),
 * and path.resolve would fold them anyway before the realpath check.
 */
import type { Dir } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BROWSE_EXTENSIONS, FILTER_ALL, MAX_BROWSE_ENTRIES, type BrowseEntry, type BrowseFilter, type BrowseListing, type BrowseOptions } from '../../common/contract/host';
import { ErrorCode, VivariumError } from '../../common/errors';

/** How many directory entries one listing looks at before it stops (a folder with a million files
 *  must not stall the engine); what was seen is sorted and cut to MAX_BROWSE_ENTRIES. */
const MAX_SCANNED = 20_000;

/** Whether a file name is one the chooser lists under `filter`. */
export function matchesFilter(name: string, filter: BrowseFilter): boolean {
  const all = FILTER_ALL[filter];
  if (all !== undefined) return all;
  return BROWSE_EXTENSIONS[filter].includes(path.extname(name).slice(1).toLowerCase());
}

/** `p` is `root` or lies below it (both already real paths). */
function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function invalid(message: string): VivariumError {
  return new VivariumError(ErrorCode.InvalidArgument, message, undefined, { field: 'path' });
}

export interface ChooserRoot {
  /** The user's home folder (os.homedir(), which honours $HOME). */
  readonly home: string;
}

/**
 * Lists `options.path` (default: home) for the file chooser.
 * @throws VivariumError invalid-argument (field "path": outside home, a file, unreadable),
 *   not-found (no such folder)
 */
export async function browseFolder(options: BrowseOptions, root: ChooserRoot): Promise<BrowseListing> {
  const filter = options.filter ?? 'images';
  let realRoot: string;
  try {
    realRoot = await fs.realpath(root.home);
  } catch {
    throw new VivariumError(ErrorCode.NotFound, `Your home folder ${root.home} does not exist, so there is nothing to browse. Type the file's path instead.`);
  }
  const asked = path.resolve(options.path ?? realRoot);
  let real: string;
  try {
    real = await fs.realpath(asked);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new VivariumError(ErrorCode.NotFound, `${asked} does not exist. Choose a folder in your home folder (${realRoot}).`, undefined, { field: 'path' });
    }
    throw invalid(`${asked} cannot be opened (${code ?? 'error'}). Choose another folder.`);
  }
  if (!inside(realRoot, real)) {
    const via = real === asked ? '' : ` (it leads to ${real})`;
    throw invalid(`The file chooser shows only your home folder (${realRoot}); ${asked} is outside it${via}. Type the path of a file elsewhere instead.`);
  }
  const st = await fs.stat(real);
  if (!st.isDirectory()) throw invalid(`${asked} is a file, not a folder. Choose the folder that holds it.`);

  let dir: Dir;
  try {
    dir = await fs.opendir(real);
  } catch (e) {
    throw invalid(`${asked} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}): you may not have permission. Choose another folder.`);
  }
  const entries: BrowseEntry[] = [];
  let scanned = 0;
  let more = false;
  try {
    for await (const d of dir) {
      if (++scanned > MAX_SCANNED) {
        more = true;
        break;
      }
      if (!options.showHidden && d.name.startsWith('.')) continue;
      const full = path.join(real, d.name);
      let isDir = d.isDirectory();
      let isFile = d.isFile();
      if (d.isSymbolicLink()) {
        // Follow it only to see where it leads; one that leaves home (or dangles) is not listed.
        let target: string;
        try {
          target = await fs.realpath(full);
        } catch {
          continue;
        }
        if (!inside(realRoot, target)) continue;
        const t = await fs.stat(target).catch(() => null);
        if (!t) continue;
        isDir = t.isDirectory();
        isFile = t.isFile();
      }
      if (isDir) entries.push({ name: d.name, path: full, kind: 'dir', sizeBytes: null });
      else if (isFile && matchesFilter(d.name, filter)) {
        const s = await fs.stat(full).catch(() => null);
        if (s) entries.push({ name: d.name, path: full, kind: 'file', sizeBytes: s.size });
      }
    }
  } finally {
    // Breaking out of for-await closes the Dir; closing again throws ERR_DIR_CLOSED.
    await dir.close().catch(() => undefined);
  }
  entries.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' }) : a.kind === 'dir' ? -1 : 1));
  return {
    path: real,
    parent: real === realRoot ? null : path.dirname(real),
    root: realRoot,
    entries: entries.slice(0, MAX_BROWSE_ENTRIES),
    truncated: more || entries.length > MAX_BROWSE_ENTRIES,
  };
}
