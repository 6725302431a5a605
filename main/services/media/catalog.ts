/**
 * The OS catalog: resources/catalog/os-catalog.json, validated by the contract's `Catalog` schema.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Catalog, type CatalogEntry, type CatalogQuery } from '../../common/contract/media';
import { ErrorCode, VivariumError } from '../../common/errors';

export const CATALOG_FILE = path.join('catalog', 'os-catalog.json');

/**
 * The `resources/` folder: found by walking up from this file (main/services/media when run from the
 * sources, out/main/services/media when built) to the folder that holds `resources/catalog`.
 * `VIVARIUM_RESOURCES` overrides it (a packaged app's resources path).
 */
export async function defaultResourcesDir(env: NodeJS.ProcessEnv = process.env, from: string = __dirname): Promise<string> {
  if (env.VIVARIUM_RESOURCES) return path.resolve(env.VIVARIUM_RESOURCES);
  let dir = from;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'resources');
    if (await fs.access(path.join(candidate, CATALOG_FILE)).then(() => true, () => false)) return candidate;
    dir = path.dirname(dir);
  }
  return path.resolve(from, '..', '..', '..', 'resources');
}

/** Reads and validates a catalog file. Throws `internal` naming the file and the bad field. */
export async function loadCatalog(file: string): Promise<Catalog> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new VivariumError(ErrorCode.Internal, `The OS catalog ${file} could not be read (${(e as Error).message}). Reinstall Vivarium.`);
  }
  const parsed = Catalog.safeParse(raw);
  if (!parsed.success) {
    throw new VivariumError(ErrorCode.Internal, `The OS catalog ${file} is invalid: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}. Reinstall Vivarium.`);
  }
  return parsed.data;
}

export function filterCatalog(entries: readonly CatalogEntry[], q: CatalogQuery): CatalogEntry[] {
  return entries.filter((e) => (q.arch ? e.arch === q.arch : true) && (q.kind ? e.kind === q.kind : true));
}
