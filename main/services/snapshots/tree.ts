/**
 * A VM's snapshot tree as Vivarium keeps it: `snapshots.json` in the VM's folder. Pure functions
 * over plain data; main/services/snapshots/snapshot-service.ts reads and writes the file.
 *
 * The images hold the data (internal qcow2 snapshots tagged with the snapshot's id); the tree holds
 * what qcow2 cannot: parents, the "you are here" marker, names, descriptions, thumbnails. A snapshot
 * is written to the tree as `saving` before its data is made and marked `complete` after, so
 * `reconcile` can make a half-made one either complete (every image holds it) or absent.
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
  /** Tags found in some image but in no complete snapshot: half-made leftovers to delete. */
  readonly strayTags: readonly string[];
}

/**
 * Makes the tree agree with the images. `held` maps each image (bundle file name) the VM has now to
 * the tags it holds. A snapshot is whole when every one of its images that still exists holds its
 * tag: a `saving` one that is whole becomes complete (the save finished, the write after it did
 * not), one that is not whole is dropped (its children move up). Tags of Vivarium's shape that no
 * complete snapshot claims are returned as strays.
 */
export function reconcile(tree: SnapshotTree, held: ReadonlyMap<string, readonly string[]>): ReconcileResult {
  const notes: string[] = [];
  let out = tree;
  for (const s of tree.snapshots) {
    const present = s.images.filter((f) => held.has(f));
    const whole = present.length > 0 && present.every((f) => held.get(f)!.includes(s.id));
    if (whole && s.state === 'saving') {
      out = { ...out, snapshots: out.snapshots.map((x) => (x.id === s.id ? { ...x, state: 'complete' as const } : x)) };
      notes.push(`snapshot "${s.name}" was saved completely before an interruption; kept`);
    } else if (!whole) {
      out = removeSnapshot(out, s.id);
      notes.push(
        s.state === 'saving'
          ? `snapshot "${s.name}" was interrupted while being saved; removed`
          : `snapshot "${s.name}" is missing from the VM's images; removed from the tree`,
      );
    }
  }
  const claimed = new Set(out.snapshots.map((s) => s.id));
  const strays = new Set<string>();
  for (const tags of held.values()) for (const t of tags) if (SnapshotId.safeParse(t).success && !claimed.has(t)) strays.add(t);
  return { tree: out, notes, strayTags: [...strays] };
}
