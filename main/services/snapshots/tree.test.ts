import { describe, expect, it } from 'vitest';
import { defaultName, findSnapshot, parseTree, reconcile, removeSnapshot, type SnapshotRecord, type SnapshotTree } from './tree';

const rec = (id: string, parentId: string | null, extra: Partial<SnapshotRecord> = {}): SnapshotRecord => ({
  id,
  name: `n-${id.slice(-2)}`,
  description: '',
  createdAt: '2026-11-30T12:00:00.000Z',
  parentId,
  withMemory: false,
  images: ['disk0.qcow2', 'efivars.qcow2'],
  thumbnail: null,
  state: 'complete',
  ...extra,
});
const A = 'snap-00000000000a';
const B = 'snap-00000000000b';
const C = 'snap-00000000000c';
const tree: SnapshotTree = { version: 1, current: B, snapshots: [rec(A, null), rec(B, A), rec(C, B)] };
const EMPTY: SnapshotTree = { version: 1, current: null, snapshots: [] };

describe('snapshot tree', () => {
  it('removing a middle snapshot moves its children and "you are here" up to its parent', () => {
    const t = removeSnapshot(tree, B);
    expect(t.snapshots.map((s) => [s.id, s.parentId])).toEqual([
      [A, null],
      [C, A],
    ]);
    expect(t.current).toBe(A);
  });

  it('reconcile: a saving snapshot in every image becomes complete; one missing from an image is dropped and is the only stray', () => {
    const t: SnapshotTree = { ...tree, snapshots: [rec(A, null), rec(B, A, { state: 'saving' }), rec(C, A, { state: 'saving' })] };
    const held = new Map([
      ['disk0.qcow2', [A, B, C, 'user-tag']],
      ['efivars.qcow2', [A, B]],
    ]);
    const r = reconcile(t, held);
    expect(r.tree.snapshots.map((s) => [s.id, s.state])).toEqual([
      [A, 'complete'],
      [B, 'complete'],
    ]);
    expect(r.strayTags).toEqual([C]);
    expect(r.notes).toHaveLength(2);
  });

  it('reconcile never gives up a snapshot the images hold: unknown tags are adopted, oldest first; a complete one keeps the images that hold it', () => {
    const D = 'snap-00000000000d';
    const E = 'snap-00000000000e';
    const held = new Map([
      ['disk0.qcow2', [A, C, E, D, 'user-tag']],
      ['efivars.qcow2', [C, D]],
    ]);
    const details = new Map([
      [D, { vmStateBytes: 0, createdAt: '2026-11-30T10:00:00.000Z' }],
      [E, { vmStateBytes: 4096, createdAt: '2026-11-30T09:00:00.000Z' }],
    ]);
    const r = reconcile(tree, held, details, 'snapshots.json could not be read.');
    // B is in no image any more (deleted by hand): gone from the tree, C moves up to A.
    // A lost its efivars copy: kept with the image that holds it.
    expect(r.tree.snapshots.map((s) => [s.id, s.name, s.parentId, s.images, s.withMemory])).toEqual([
      [A, 'n-0a', null, ['disk0.qcow2'], false],
      [C, 'n-0c', A, ['disk0.qcow2', 'efivars.qcow2'], false],
      [E, 'Recovered 1', null, ['disk0.qcow2'], true],
      [D, 'Recovered 2', null, ['disk0.qcow2', 'efivars.qcow2'], false],
    ]);
    expect(r.tree.snapshots[2]!.createdAt).toBe('2026-11-30T09:00:00.000Z');
    expect(r.tree.snapshots[2]!.description).toMatch(/name and parent were lost.*snapshots\.json could not be read\.$/);
    expect(r.strayTags).toEqual([]);
    // An empty tree (a lost file) gets every snapshot back.
    expect(reconcile(EMPTY, held, details).tree.snapshots.map((s) => s.id)).toEqual([A, C, E, D]); // undated ones first
  });

  it('reconcile leaves a whole tree alone, and only checks images the VM still has', () => {
    const held = new Map([['disk0.qcow2', [A, B, C]]]);
    const r = reconcile(tree, held);
    expect(r.tree).toEqual(tree);
    expect(r.notes).toEqual([]);
  });

  it('finds by id or name; default names skip taken ones; a broken file starts an empty tree with a reason', () => {
    expect(findSnapshot(tree, B)?.id).toBe(B);
    expect(findSnapshot(tree, 'n-0c')?.id).toBe(C);
    expect(findSnapshot(tree, 'nope')).toBeNull();
    expect(defaultName({ ...tree, snapshots: [rec(A, null, { name: 'Snapshot 2' })] })).toBe('Snapshot 3');
    expect(parseTree('{').problem).toMatch(/not valid JSON/);
    expect(parseTree(null)).toEqual({ tree: { version: 1, current: null, snapshots: [] }, problem: null });
  });

  it('reconcile keeps a snapshot with settings whose disks were all removed since (a revert attaches them again), not one without', () => {
    const t: SnapshotTree = { version: 1, current: A, snapshots: [rec(A, null, { images: ['disk0.qcow2'], settings: { memoryMiB: 256 } }), rec(B, A, { images: ['disk0.qcow2'] })] };
    const r = reconcile(t, new Map([['disk1.qcow2', []]]));
    expect(r.tree.snapshots.map((s) => s.id)).toEqual([A]);
    expect(r.notes).toEqual([`snapshot "n-0b" is in none of the VM's images any more; removed from the tree`]);
  });
});
