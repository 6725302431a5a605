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

describe('snapshot tree', () => {
  it('removing a middle snapshot moves its children and "you are here" up to its parent', () => {
    const t = removeSnapshot(tree, B);
    expect(t.snapshots.map((s) => [s.id, s.parentId])).toEqual([
      [A, null],
      [C, A],
    ]);
    expect(t.current).toBe(A);
  });

  it('reconcile: a saving snapshot in every image becomes complete; one missing from an image is dropped; strays are reported', () => {
    const t: SnapshotTree = { ...tree, snapshots: [rec(A, null), rec(B, A, { state: 'saving' }), rec(C, A, { state: 'saving' })] };
    const held = new Map([
      ['disk0.qcow2', [A, B, C, 'snap-0000000000ff', 'user-tag']],
      ['efivars.qcow2', [A, B]],
    ]);
    const r = reconcile(t, held);
    expect(r.tree.snapshots.map((s) => [s.id, s.state])).toEqual([
      [A, 'complete'],
      [B, 'complete'],
    ]);
    expect([...r.strayTags].sort()).toEqual([C, 'snap-0000000000ff']);
    expect(r.notes).toHaveLength(2);
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
});
