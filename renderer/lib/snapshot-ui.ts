/**
 * Pure logic of the Snapshots tab and the Clone / Export / Import / Delete dialogs (issue 10): how
 * the tree is laid out, what a snapshot's default name will be, when a linked clone is impossible,
 * which VMs are linked clones of a VM, and export file names. No React, no engine: unit-tested in
 * snapshot-ui.test.ts.
 */
import type { SnapshotInfo, SnapshotProgressEvent } from '../../main/common/contract/snapshots';
import type { VmConfig } from '../../main/common/models/vm-config';
import type { VmInfo } from '../../main/common/models/vm-state';

/** The most read-only layers a disk's chain may have (models/vm-config.ts MAX_BACKING_LAYERS;
 *  repeated to keep zod out of this module's imports). */
const MAX_BACKING_LAYERS = 8;

/** What the UI says while the engine reports progress of an operation on a VM (started by this
 *  page, a dialog, another window or the CLI through the same engine). */
export const PROGRESS_LABELS: Readonly<Record<SnapshotProgressEvent['operation'], string>> = {
  create: 'Saving snapshot',
  revert: 'Reverting',
  delete: 'Deleting snapshot',
  clone: 'Cloning',
  suspend: 'Suspending',
  export: 'Exporting',
  import: 'Importing',
};

/** One row of the snapshot tree: the snapshot and how many steps it is indented. */
export interface TreeRow {
  readonly snap: SnapshotInfo;
  readonly depth: number;
  /** The parent's name when the row above is not the parent (a branch that starts further up),
   *  so the tree reads without lines; null otherwise. */
  readonly after: string | null;
}

/**
 * The snapshots (oldest first, as `snapshots.list` gives them) in tree order: each snapshot's
 * children right after it. A straight history stays at one indent; only where a snapshot has
 * several children (a revert followed by a new snapshot) do those children go one step in, so a
 * long chain does not drift right. A snapshot whose parent is unknown is a root.
 */
export function snapshotTreeRows(list: readonly SnapshotInfo[]): TreeRow[] {
  const ids = new Set(list.map((s) => s.id));
  const kids = new Map<string | null, SnapshotInfo[]>();
  for (const s of list) {
    const p = s.parentId !== null && ids.has(s.parentId) ? s.parentId : null;
    kids.set(p, [...(kids.get(p) ?? []), s]);
  }
  const out: TreeRow[] = [];
  const seen = new Set<string>();
  const byId = new Map(list.map((s) => [s.id, s]));
  const walk = (p: string | null, depth: number): void => {
    const children = kids.get(p) ?? [];
    // Several roots (a recovered snapshot) are siblings at the left edge, not a branch.
    const childDepth = p !== null && children.length > 1 ? depth + 1 : depth;
    for (const s of children) {
      if (seen.has(s.id)) continue;
      seen.add(s.id);
      const above = out[out.length - 1]?.snap.id ?? null;
      out.push({ snap: s, depth: childDepth, after: p !== null && p !== above ? (byId.get(p)?.name ?? null) : null });
      walk(s.id, childDepth);
    }
  };
  walk(null, 0);
  return out;
}

/** The name the engine gives a snapshot taken without one: "Snapshot N" with the lowest N from
 *  the count of snapshots + 1 that is not taken (main/services/snapshots/tree.ts defaultName). */
export function nextSnapshotName(list: readonly Pick<SnapshotInfo, 'name'>[]): string {
  const names = new Set(list.map((s) => s.name));
  for (let n = list.length + 1; ; n++) if (!names.has(`Snapshot ${n}`)) return `Snapshot ${n}`;
}

const ISO_TIME = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})\b/g;

/** A snapshot's date as the tab shows it; "date unknown" for the engine's stand-in (the epoch: a
 *  recovered snapshot whose time the images did not hold). `format` renders a valid date. */
export function snapshotDate(iso: string, format: (d: Date) => string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) || d.getTime() === 0 ? 'date unknown' : format(d);
}

/** Text with every ISO 8601 time in it ("taken 2026-12-01T02:57:33.000Z", in a recovered
 *  snapshot's description) written as `format` writes dates, like the other rows' dates. */
export function localizeIsoTimes(text: string, format: (d: Date) => string): string {
  return text.replace(ISO_TIME, (m) => {
    const d = new Date(m);
    return Number.isNaN(d.getTime()) ? m : format(d);
  });
}

/**
 * Why the VM cannot have a linked clone, in one line, or null when it can. The engine refuses the
 * same cases (main/services/library/clone.ts): snapshots (they live in the images the clone would
 * share), a writable disk attached in place (a file outside the VM's folder), a chain already at
 * the most layers. `snapshotCount` null: not known yet (no reason given for it).
 */
export function linkedCloneBlock(config: Pick<VmConfig, 'disks'> | null, snapshotCount: number | null): string | null {
  if (snapshotCount !== null && snapshotCount > 0) {
    return `Not for a VM with snapshots (it has ${snapshotCount}): they live in the disks a linked clone would share. Make a full clone, or delete the snapshots first.`;
  }
  for (const d of config?.disks ?? []) {
    if (d.readOnly) continue;
    if ('path' in d.source) return `Not while disk ${d.id} is a file outside the VM's folder (${d.source.path}): a full clone copies it.`;
    if (d.backing.length + 1 > MAX_BACKING_LAYERS) return `Not while disk ${d.id} already stands on ${d.backing.length} layers, the most there can be: make a full clone.`;
  }
  return null;
}

/**
 * Why the VM can never take a snapshot as its disks are, in one sentence, or null. The engine
 * refuses the same disks (main/services/drivers/qemu/snapshotter.ts snapshotPlanOf): a writable disk
 * used in place (a file outside the VM's folder), or a raw one (no room for a snapshot).
 */
export function snapshotBlock(config: Pick<VmConfig, 'disks'> | null): string | null {
  for (const d of config?.disks ?? []) {
    if (d.readOnly) continue;
    if ('path' in d.source) return `Its disk ${d.id} is ${d.source.path}, used in place: snapshots are written only into disks in the VM's folder. A full clone copies the disk in.`;
    if (d.format !== 'qcow2') return `Its disk ${d.id} is a raw image, which has no room for a snapshot: convert it to qcow2 to use snapshots.`;
  }
  return null;
}

/** Whether `file` lies inside the folder `dir`. */
function inside(dir: string, file: string): boolean {
  return file.startsWith(`${dir.replace(/\/+$/, '')}/`);
}

/**
 * The names of the VMs whose disks read a file in `vm`'s folder (its linked clones: their disks
 * stand on its frozen images), sorted. What the Delete dialog offers to flatten before it asks the
 * engine; the engine's refusal (data `linkedClones`) has the last word.
 */
export function linkedClonesOf(vm: Pick<VmInfo, 'id' | 'path'>, all: Iterable<Pick<VmInfo, 'id' | 'name' | 'config'>>): string[] {
  const names: string[] = [];
  for (const other of all) {
    if (other.id === vm.id || !other.config) continue;
    const uses = other.config.disks.some((d) => [d.source, ...d.backing.map((b) => b.source)].some((s) => 'path' in s && inside(vm.path, s.path)));
    if (uses) names.push(other.name);
  }
  return names.sort((a, b) => a.localeCompare(b));
}

/** A list of names as a sentence: “a”, “a” and “b”, “a”, “b” and “c”. */
export function namesText(names: readonly string[]): string {
  const q = names.map((n) => `“${n}”`);
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]}`;
}

/** The export's default file name: the VM's name with characters no file name may hold replaced,
 *  and the .vivarium extension. */
export function exportFileName(vmName: string): string {
  const base = vmName.replace(/[/\\\0:*?"<>|]/g, '_').replace(/^\.+/, '').trim() || 'vm';
  return `${base}.vivarium`;
}

/**
 * The absolute path of the export: `folder` (absolute) joined with `fileName`, or the reason it
 * cannot be one, in words for the Export dialog's fields.
 */
export function exportPath(folder: string, fileName: string): { readonly ok: true; readonly path: string } | { readonly ok: false; readonly field: 'folder' | 'fileName'; readonly message: string } {
  const dir = folder.trim();
  const file = fileName.trim();
  if (dir === '') return { ok: false, field: 'folder', message: 'Choose the folder to write the export to.' };
  if (!dir.startsWith('/')) return { ok: false, field: 'folder', message: 'Give the folder as a full path, starting with /.' };
  if (file === '') return { ok: false, field: 'fileName', message: 'Give the export a file name.' };
  if (file.includes('/') || file === '.' || file === '..') return { ok: false, field: 'fileName', message: 'A file name cannot contain “/”: choose the folder above.' };
  return { ok: true, path: `${dir.replace(/\/+$/, '')}/${file}` };
}
