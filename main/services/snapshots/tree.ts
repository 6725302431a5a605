/**
 * A VM's snapshot tree as Vivarium keeps it: `snapshots.json` in the VM's folder. Pure functions
 * over plain data; main/services/snapshots/snapshot-service.ts reads and writes the file.
 *
 * The images hold the data (internal qcow2 snapshots tagged with the snapshot's id); the tree holds
 * what qcow2 cannot: parents, the "you are here" marker, names, descriptions, thumbnails, and the
 * VM's hardware settings at that moment (settings.ts), which a revert puts back. A snapshot
 * is written to the tree as `saving` before its data is made and marked `complete` after, so
 * `reconcile` can make a half-made one either complete (every image holds it) or absent. Only what
 * the tree marks `saving` is ever removed from the images: a snapshot the images hold and the tree
 * does not know is adopted into it.
 */
import { z } from 'zod';

export const TREE_FILE = 'snapshots.json';
export const TREE_VERSION = 1;

/** A snapshot id, also its tag inside the images. */
export const SnapshotId = z.string().regex(/^snap-[0-9a-f]{12}$/);

export const SnapshotRecord = z
  .object({
    id: SnapshotId,
    name: z.string().min(1).max(100),
    description: z.string().max(2000).default(''),
    createdAt: z.string(),
    parentId: SnapshotId.nullable(),
    withMemory: z.boolean(),
    /** Bundle file names of the images the snapshot was written to. */
    images: z.array(z.string().max(128)).max(16),
    /** Bundle file name of its thumbnail (PNG), or null. */
    thumbnail: z.string().max(128).nullable().default(null),
    /** `saving` until every image holds it. */
    state: z.enum(['saving', 'complete']),
    /** The VM's hardware settings when it was taken (settings.ts SnapshotSettings: config.json
     *  without its identity and labels, with its `version`); a revert restores them. Absent in
     *  records written before snapshots held settings, and in recovered ones. Checked as a config
     *  (with migrations) only when used, so a newer config schema never makes the tree unreadable. */
    settings: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type SnapshotRecord = z.infer<typeof SnapshotRecord>;

export const SnapshotTree = z
  .object({
    version: z.literal(TREE_VERSION),
    /** The snapshot the VM's present state descends from ("you are here"), or null. */
    current: SnapshotId.nullable(),
    snapshots: z.array(SnapshotRecord).max(1000),
  })
  .strict();
export type SnapshotTree = z.infer<typeof SnapshotTree>;

export const EMPTY_TREE: SnapshotTree = { version: TREE_VERSION, current: null, snapshots: [] };

/** Parses the file's text; a missing or unreadable file is an empty tree plus a reason. */
export function parseTree(text: string | null): { readonly tree: SnapshotTree; readonly problem: string | null } {
  if (text === null) return { tree: EMPTY_TREE, problem: null };
  try {
    const parsed = SnapshotTree.safeParse(JSON.parse(text));
    if (parsed.success) return { tree: parsed.data, problem: null };
    return { tree: EMPTY_TREE, problem: `snapshots.json is invalid (${parsed.error.issues[0]?.message ?? 'unknown'})` };
  } catch (e) {
    return { tree: EMPTY_TREE, problem: `snapshots.json is not valid JSON (${(e as Error).message})` };
  }
}

/** Finds a snapshot by id, else by name (names are unique within a VM). */
export function findSnapshot(tree: SnapshotTree, ref: string): SnapshotRecord | null {
  return tree.snapshots.find((s) => s.id === ref) ?? tree.snapshots.find((s) => s.name === ref.trim()) ?? null;
}

/** "Snapshot N" with the lowest N not taken. */
export function defaultName(tree: SnapshotTree): string {
  const names = new Set(tree.snapshots.map((s) => s.name));
  for (let n = tree.snapshots.length + 1; ; n++) if (!names.has(`Snapshot ${n}`)) return `Snapshot ${n}`;
}

/** The tree with `id` removed: its children move up to its parent; "you are here" too. */
export function removeSnapshot(tree: SnapshotTree, id: string): SnapshotTree {
  const gone = tree.snapshots.find((s) => s.id === id);
  if (!gone) return tree;
  return {
    ...tree,
    current: tree.current === id ? gone.parentId : tree.current,
    snapshots: tree.snapshots.filter((s) => s.id !== id).map((s) => (s.parentId === id ? { ...s, parentId: gone.parentId } : s)),
  };
}

export interface ReconcileResult {
  readonly tree: SnapshotTree;
  /** What changed, one sentence each (for the VM's event log). */
  readonly notes: readonly string[];
  /** Tags of snapshots the tree itself marked `saving` and that are not whole: half-made leftovers
   *  to delete from the images that hold them. Never a tag the tree does not know. */
  readonly strayTags: readonly string[];
}

/** What an image says of one of its snapshots, for adopting it (qemu-img's `date-sec`, `vm-state-size`). */
export interface TagDetails {
  /** ISO time the snapshot was taken, when the image says. */
  readonly createdAt?: string;
  /** Bytes of saved VM state (RAM, devices); > 0 means a snapshot with memory. */
  readonly vmStateBytes: number;
}

/**
 * Makes the tree agree with the images. `held` maps each image (bundle file name) the VM has now to
 * the tags it holds; `details` (optional) tells each tag's date and saved-memory size; `why` is
 * added to the description of each snapshot adopted.
 *
 * - A `saving` snapshot that every one of its still-existing images holds becomes complete (the
 *   save finished, the write after it did not); one that is not whole is dropped (its children move
 *   up) and its tags are returned as strays, to delete.
 * - A complete snapshot is dropped from the tree only when no image holds it any more (deleted by
 *   hand, or its images are gone; one with settings whose images are all outside the VM's present
 *   disk list stays, as a revert attaches them again); one that
 *   some of its images still hold stays, with `images` narrowed to those (a revert checks every disk).
 * - A tag of Vivarium's shape that the tree does not know (snapshots.json lost, damaged, or a crash
 *   before the `saving` entry reached the disk) is adopted: the images hold a snapshot and only
 *   Vivarium's metadata is missing, so it is never deleted. Its name is "Recovered N", its parent is
 *   not known (a root), withMemory comes from its saved-state size.
 */
export function reconcile(
  tree: SnapshotTree,
  held: ReadonlyMap<string, readonly string[]>,
  details: ReadonlyMap<string, TagDetails> = new Map(),
  /** Why Vivarium's record is missing, added to an adopted snapshot's description (e.g. where the damaged file was kept). */
  why = '',
): ReconcileResult {
  const notes: string[] = [];
  const strays = new Set<string>();
  let out = tree;
  for (const s of tree.snapshots) {
    const present = s.images.filter((f) => held.has(f));
    const holding = present.filter((f) => held.get(f)!.includes(s.id));
    const whole = present.length > 0 && holding.length === present.length;
    if (s.state === 'saving') {
      if (whole) {
        out = { ...out, snapshots: out.snapshots.map((x) => (x.id === s.id ? { ...x, state: 'complete' as const } : x)) };
        notes.push(`snapshot "${s.name}" was saved completely before an interruption; kept`);
      } else {
        out = removeSnapshot(out, s.id);
        if (holding.length > 0) strays.add(s.id);
        notes.push(`snapshot "${s.name}" was interrupted while being saved; removed`);
      }
    } else if (holding.length === 0 && (present.length > 0 || !s.settings)) {
      // (A snapshot with settings none of whose images the VM has now keeps its record: its disks
      // were removed since, and a revert attaches them again when their files are still there.)
      out = removeSnapshot(out, s.id);
      notes.push(`snapshot "${s.name}" is in none of the VM's images any more; removed from the tree`);
    } else if (!whole && present.length > 0) {
      const missing = present.filter((f) => !holding.includes(f));
      out = { ...out, snapshots: out.snapshots.map((x) => (x.id === s.id ? { ...x, images: s.images.filter((f) => !missing.includes(f)) } : x)) };
      notes.push(`snapshot "${s.name}" is missing from ${missing.join(', ')}; kept for the images that hold it`);
    }
  }
  // Tags no entry knows: adopt them, oldest first.
  const known = new Set(tree.snapshots.map((s) => s.id));
  const unknown = new Map<string, string[]>();
  for (const [file, tags] of held) {
    for (const t of tags) if (SnapshotId.safeParse(t).success && !known.has(t)) unknown.set(t, [...(unknown.get(t) ?? []), file]);
  }
  const adopt = [...unknown].sort(([a], [b]) => (details.get(a)?.createdAt ?? '').localeCompare(details.get(b)?.createdAt ?? '') || a.localeCompare(b));
  for (const [tag, files] of adopt) {
    const names = new Set(out.snapshots.map((s) => s.name));
    let n = 1;
    while (names.has(`Recovered ${n}`)) n++;
    const d = details.get(tag);
    const record: SnapshotRecord = {
      id: tag,
      name: `Recovered ${n}`,
      description: `Found in the VM's images without Vivarium's record of it (its name and parent were lost); taken ${d?.createdAt ?? 'at an unknown time'}.${why ? ` ${why}` : ''}`.slice(0, 2000),
      createdAt: d?.createdAt ?? new Date(0).toISOString(),
      parentId: null,
      withMemory: (d?.vmStateBytes ?? 0) > 0,
      images: files,
      thumbnail: null,
      state: 'complete',
    };
    out = { ...out, snapshots: [...out.snapshots, record] };
    notes.push(`snapshot ${tag} is in the images but not in snapshots.json; kept as "${record.name}" (its parent is not known, so it is shown as a root)`);
  }
  return { tree: out, notes, strayTags: [...strays] };
}
