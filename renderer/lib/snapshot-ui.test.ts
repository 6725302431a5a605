import { describe, expect, it } from 'vitest';
import type { SnapshotInfo } from '../../main/common/contract/snapshots';
import type { Disk, VmConfig } from '../../main/common/models/vm-config';
import { exportFileName, exportPath, linkedCloneBlock, snapshotBlock, linkedClonesOf, localizeIsoTimes, namesText, nextSnapshotName, snapshotDate, snapshotTreeRows } from './snapshot-ui';

const snap = (id: string, parentId: string | null, name = id): SnapshotInfo => ({
  id,
  name,
  description: '',
  createdAt: '2026-12-01T02:45:08.000Z',
  parentId,
  current: false,
  withMemory: false,
  sizeBytes: 0,
  hasThumbnail: false,
});

const disk = (d: Partial<Disk>): Disk => ({ id: 'disk0', role: 'system', bus: 'virtio', source: { bundle: 'disk0.qcow2' }, format: 'qcow2', readOnly: false, backing: [], ...d }) as Disk;

describe('snapshotTreeRows', () => {
  it('keeps a straight history at one indent', () => {
    const rows = snapshotTreeRows([snap('a', null), snap('b', 'a'), snap('c', 'b'), snap('d', 'c')]);
    expect(rows.map((r) => [r.snap.id, r.depth])).toEqual([
      ['a', 0],
      ['b', 0],
      ['c', 0],
      ['d', 0],
    ]);
  });
  it('indents the children of a branch point, each under its parent', () => {
    // a → b → c, and after a revert to a: a → x → y
    const rows = snapshotTreeRows([snap('a', null), snap('b', 'a'), snap('c', 'b'), snap('x', 'a'), snap('y', 'x')]);
    expect(rows.map((r) => [r.snap.id, r.depth])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 1],
      ['x', 1],
      ['y', 1],
    ]);
    // The second branch says where it starts: its parent is not the row above it.
    expect(rows.map((r) => r.after)).toEqual([null, null, null, 'a', null]);
  });
  it('shows a snapshot whose parent is gone, and several roots, at the left edge', () => {
    const rows = snapshotTreeRows([snap('a', null), snap('r', 'gone'), snap('b', 'a')]);
    expect(rows.map((r) => [r.snap.id, r.depth])).toEqual([
      ['a', 0],
      ['b', 0],
      ['r', 0],
    ]);
  });
});

describe('nextSnapshotName', () => {
  it('is the engine default: Snapshot N from the count + 1, skipping names taken', () => {
    expect(nextSnapshotName([])).toBe('Snapshot 1');
    expect(nextSnapshotName([snap('a', null, 'first'), snap('b', 'a', 'second')])).toBe('Snapshot 3');
    expect(nextSnapshotName([snap('a', null, 'Snapshot 2'), snap('b', 'a', 'Snapshot 3')])).toBe('Snapshot 4');
  });
});

describe('dates', () => {
  const fmt = (d: Date) => `<${d.getUTCHours()}:${d.getUTCMinutes()}>`;
  it('writes ISO times inside text the way the rows write dates', () => {
    expect(localizeIsoTimes('Found in the images; taken 2026-12-01T02:57:33.000Z. More.', fmt)).toBe('Found in the images; taken <2:57>. More.');
    expect(localizeIsoTimes('no dates here', fmt)).toBe('no dates here');
  });
  it('says when a date is unknown instead of 1970', () => {
    expect(snapshotDate(new Date(0).toISOString(), fmt)).toBe('date unknown');
    expect(snapshotDate('2026-12-01T02:57:33Z', fmt)).toBe('<2:57>');
  });
});

describe('linkedCloneBlock', () => {
  it('is null for a VM with its own qcow2 disks and no snapshots', () => {
    expect(linkedCloneBlock({ disks: [disk({})] }, 0)).toBeNull();
    expect(linkedCloneBlock({ disks: [disk({})] }, null)).toBeNull();
  });
  it('names the snapshots, a disk attached in place, a full chain', () => {
    expect(linkedCloneBlock({ disks: [disk({})] }, 2)).toMatch(/^Not for a VM with snapshots \(it has 2\)/);
    expect(linkedCloneBlock({ disks: [disk({ id: 'disk1', source: { path: '/data/raw.img' }, format: 'raw' })] }, 0)).toContain('disk disk1 is a file outside the VM\'s folder (/data/raw.img)');
    const layers = Array.from({ length: 8 }, (_, i) => ({ source: { path: `/l${i}.qcow2` }, format: 'qcow2' as const }));
    expect(linkedCloneBlock({ disks: [disk({ backing: layers })] }, 0)).toContain('already stands on 8 layers');
  });
  it('ignores read-only disks', () => {
    expect(linkedCloneBlock({ disks: [disk({ source: { path: '/iso/tools.img' }, readOnly: true })] }, 0)).toBeNull();
  });
});

describe('snapshotBlock', () => {
  it('says up front which disk cannot hold a snapshot', () => {
    expect(snapshotBlock({ disks: [disk({})] })).toBeNull();
    expect(snapshotBlock({ disks: [disk({ source: { path: '/data/raw.img' }, format: 'raw' })] })).toBe(
      "Its disk disk0 is /data/raw.img, used in place: snapshots are written only into disks in the VM's folder. A full clone copies the disk in.",
    );
    expect(snapshotBlock({ disks: [disk({}), disk({ id: 'disk1', source: { bundle: 'disk1.raw' }, format: 'raw' })] })).toMatch(/^Its disk disk1 is a raw image/);
    expect(snapshotBlock({ disks: [disk({ source: { path: '/iso/x.img' }, format: 'raw', readOnly: true })] })).toBeNull();
  });
});

describe('linkedClonesOf', () => {
  const cfg = (disks: Disk[]) => ({ disks }) as unknown as VmConfig;
  it('names the VMs whose disks stand on a file in the VM folder', () => {
    const base = { id: 'b', name: 'base', path: '/lib/vms/b', config: cfg([disk({ source: { bundle: 'disk0-1a2b3c.qcow2' } })]) };
    const child = { id: 'c', name: 'child', path: '/lib/vms/c', config: cfg([disk({ backing: [{ source: { path: '/lib/vms/b/disk0.qcow2' }, format: 'qcow2' }] })]) };
    const other = { id: 'o', name: 'other', path: '/lib/vms/o', config: cfg([disk({ backing: [{ source: { path: '/lib/vms/bb/disk0.qcow2' }, format: 'qcow2' }] })]) };
    const broken = { id: 'x', name: 'x', path: '/lib/vms/x', config: null };
    expect(linkedClonesOf(base, [base, child, other, broken])).toEqual(['child']);
    expect(linkedClonesOf(child, [base, child, other])).toEqual([]);
  });
});

describe('names and files', () => {
  it('lists names as a sentence', () => {
    expect(namesText(['a'])).toBe('“a”');
    expect(namesText(['a', 'b', 'c'])).toBe('“a”, “b” and “c”');
  });
  it('makes a file name from the VM name', () => {
    expect(exportFileName('web server')).toBe('web server.vivarium');
    expect(exportFileName('a/b')).toBe('a_b.vivarium');
    expect(exportFileName('..')).toBe('vm.vivarium');
  });
  it('joins folder and file, or says which field is wrong', () => {
    expect(exportPath('/home/me/', 'x.vivarium')).toEqual({ ok: true, path: '/home/me/x.vivarium' });
    expect(exportPath('', 'x')).toMatchObject({ ok: false, field: 'folder' });
    expect(exportPath('home', 'x')).toMatchObject({ ok: false, field: 'folder' });
    expect(exportPath('/home', ' ')).toMatchObject({ ok: false, field: 'fileName' });
    expect(exportPath('/home', 'a/b')).toMatchObject({ ok: false, field: 'fileName' });
  });
});
