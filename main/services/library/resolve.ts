/**
 * Resolving a reference a person typed (a name, an id, an id prefix) to one VM of the library — or
 * refusing when it could mean two. Pure.
 */
import { ErrorCode, VivariumError, errors } from '../../common/errors';
import { nameKey } from '../../common/models/vm-settings';
import type { BundleEntry } from '../bundles/bundle-store';

/** The shortest id prefix accepted as a reference (as `vivarium list` prints ids: 8 characters). */
export const MIN_ID_PREFIX = 8;

/** A VM's name as shown (a broken bundle may have none). */
export function nameOf(e: BundleEntry): string | null {
  return e.ok ? e.config.name : e.name;
}


type Match = { readonly entry: BundleEntry; readonly how: 'id' | 'name' | 'id prefix' | 'name (ignoring case)' };

/**
 * The one VM `rawRef` means. Forms, all considered together: the full id, the exact name, an id
 * prefix of at least 8 characters, the name compared without case. An exact name is preferred over
 * names that only match without case; any other overlap (one VM's name is another's id prefix…)
 * is ambiguous.
 * @throws VivariumError not-found; invalid-argument when ambiguous (naming every candidate).
 */
export function resolveRef(all: readonly BundleEntry[], rawRef: string): BundleEntry {
  const ref = rawRef.trim();
  const lower = ref.toLowerCase();
  const matches: Match[] = [];
  for (const e of all) {
    const name = nameOf(e);
    if (e.id === lower) matches.push({ entry: e, how: 'id' });
    else if (name !== null && name.normalize('NFC') === ref.normalize('NFC')) matches.push({ entry: e, how: 'name' });
    else if (ref.length >= MIN_ID_PREFIX && /^[0-9a-f-]+$/.test(lower) && e.id.startsWith(lower)) matches.push({ entry: e, how: 'id prefix' });
    else if (name !== null && nameKey(name) === nameKey(ref)) matches.push({ entry: e, how: 'name (ignoring case)' });
  }
  const strong = matches.filter((m) => m.how !== 'name (ignoring case)');
  const pick = strong.length > 0 ? strong : matches;
  if (pick.length === 1) return pick[0]!.entry;
  if (pick.length === 0) throw errors.notFound(ref);
  const list = pick.map((m) => `"${nameOf(m.entry) ?? m.entry.id}" (id ${m.entry.id}, by its ${m.how})`).join(', ');
  throw new VivariumError(
    ErrorCode.InvalidArgument,
    `"${ref}" could mean more than one VM: ${list}. Nothing was done; refer to the VM by its full id.`,
    { ref, candidates: pick.map((m) => m.entry.id) },
    { remedy: { kind: 'use-id' } },
  );
}
