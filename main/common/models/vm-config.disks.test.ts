/**
 * The disk list in the config: the v1 → v2 migration (pure; existing bundles keep working) and the
 * rules of explicit backing chains.
 */
import { describe, expect, it } from 'vitest';
import { CONFIG_VERSION, Disk, MIGRATIONS, VmConfig, diskImages, nextCdDriveId, nextDiskId, parseVmConfig, primaryIso, withPrimaryIso } from './vm-config';

/** A config.json exactly as Vivarium 1 wrote it (version 1, disks without role/bus/backing). */
const V1_TEXT = JSON.stringify({
  version: 1,
  id: '0b7e1f2a-3c4d-4e5f-8a6b-7c8d9e0f1a2b',
  name: 'Old',
  createdAt: '2025-01-01T00:00:00.000Z',
  arch: 'x86_64',
  accel: 'auto',
  machine: null,
  cpus: 2,
  memoryMiB: 1024,
  firmware: 'bios',
  uefiVars: null,
  disks: [
    { id: 'disk0', source: { bundle: 'disk0.qcow2' }, format: 'qcow2', readOnly: false },
    { id: 'disk1', source: { path: '/srv/data.raw' }, format: 'raw', readOnly: true },
  ],
  cdrom: null,
  kernel: null,
  network: { mode: 'user', mac: '52:54:00:0b:7e:1f', forwards: [] },
  display: 'vnc',
  os: 'Other',
  extraArgs: [],
});

function v2(disks: unknown[]): ReturnType<typeof VmConfig.safeParse> {
  const { cdrom: _cdrom, ...raw } = JSON.parse(V1_TEXT) as Record<string, unknown>;
  return VmConfig.safeParse({ ...raw, version: CONFIG_VERSION, disks });
}

describe('config v1 → v2 (disks with role, bus and an explicit backing chain)', () => {
  it('loads a v1 bundle: the first disk becomes the system disk, the chain is empty', () => {
    const r = parseVmConfig(V1_TEXT);
    if (!r.ok) throw new Error(r.error);
    expect(r.migrated).toBe(true);
    expect(r.config.version).toBe(CONFIG_VERSION);
    expect(r.config.disks).toEqual([
      { id: 'disk0', role: 'system', bus: 'virtio', source: { bundle: 'disk0.qcow2' }, format: 'qcow2', readOnly: false, backing: [] },
      { id: 'disk1', role: 'data', bus: 'virtio', source: { path: '/srv/data.raw' }, format: 'raw', readOnly: true, backing: [] },
    ]);
  });

  it('is pure: the input is not changed and the same input gives the same output', () => {
    const raw = JSON.parse(V1_TEXT) as Record<string, unknown>;
    const before = JSON.stringify(raw);
    const step = MIGRATIONS[1];
    if (!step) throw new Error('no migration from v1');
    expect(step(raw)).toEqual(step(raw));
    expect(JSON.stringify(raw)).toBe(before);
  });

  it('a hand-written config without a version goes 0 → 1 → 2', () => {
    const raw = JSON.parse(V1_TEXT) as Record<string, unknown>;
    delete raw.version;
    const r = parseVmConfig(JSON.stringify(raw));
    if (!r.ok) throw new Error(r.error);
    expect(r.config.disks[0]?.role).toBe('system');
  });

  it('keeps values a v1 file already had, and leaves a malformed disk list for the schema to reject', () => {
    const raw = JSON.parse(V1_TEXT) as Record<string, unknown>;
    const step = MIGRATIONS[1];
    if (!step) throw new Error('no migration from v1');
    expect(step({ ...raw, disks: 'nonsense' }).disks).toBe('nonsense');
    const r = parseVmConfig(JSON.stringify({ ...raw, disks: 'nonsense' }));
    expect(r.ok).toBe(false);
  });

  it('a v2 config is read as is, and a newer one is refused with a sentence', () => {
    const r = parseVmConfig(V1_TEXT);
    if (!r.ok) throw new Error(r.error);
    const again = parseVmConfig(JSON.stringify(r.config));
    expect(again).toMatchObject({ ok: true, migrated: false });
    const newer = parseVmConfig(JSON.stringify({ ...r.config, version: CONFIG_VERSION + 1 }));
    expect(newer).toMatchObject({ ok: false });
    if (!newer.ok) expect(newer.error).toContain('Update Vivarium');
  });
});

describe('config v2 → v3 (the one `cdrom` becomes a list of CD drives)', () => {
  const v2Text = (cdrom: unknown) => JSON.stringify({ ...(JSON.parse(V1_TEXT) as object), version: 2, disks: [], cdrom });

  it('an ISO becomes drive cd0; no ISO means no CD drive (the VM\'s command line does not change)', () => {
    const withIso = parseVmConfig(v2Text('/isos/debian.iso'));
    if (!withIso.ok) throw new Error(withIso.error);
    expect(withIso).toMatchObject({ migrated: true, config: { version: 3, cdroms: [{ id: 'cd0', path: '/isos/debian.iso' }] } });
    expect('cdrom' in withIso.config).toBe(false);
    const without = parseVmConfig(v2Text(null));
    if (!without.ok) throw new Error(without.error);
    expect(without.config.cdroms).toEqual([]);
    expect(primaryIso(withIso.config)).toBe('/isos/debian.iso');
    expect(primaryIso(without.config)).toBeNull();
  });

  it('is pure, and a malformed cdrom is left for the schema to refuse', () => {
    const raw = JSON.parse(v2Text('/a.iso')) as Record<string, unknown>;
    const before = JSON.stringify(raw);
    const step = MIGRATIONS[2];
    if (!step) throw new Error('no migration from v2');
    expect(step(raw)).toEqual(step(raw));
    expect(JSON.stringify(raw)).toBe(before);
    const bad = parseVmConfig(v2Text(42));
    expect(bad.ok).toBe(false);
  });

  it('CD drives: unique ids, at most four; x86 CDs and SATA disks share six AHCI ports', () => {
    const { cdrom: _cdrom, ...base } = JSON.parse(v2Text(null)) as Record<string, unknown>;
    const parse = (extra: Record<string, unknown>) => VmConfig.safeParse({ ...base, version: CONFIG_VERSION, disks: [], ...extra });
    const msgs = (r: ReturnType<typeof parse>) => (r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
    expect(msgs(parse({ cdroms: [{ id: 'cd0' }, { id: 'cd0', path: '/b.iso' }] }))).toEqual(['cdroms.1.id: two CD drives are called cd0']);
    expect(msgs(parse({ cdroms: ['cd0', 'cd1', 'cd2', 'cd3', 'cd4'].map((id) => ({ id })) }))).toEqual(['cdroms: at most 4 CD drives']);
    const sata = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `disk${i}`, bus: 'sata', source: { bundle: `d${i}.qcow2` }, format: 'qcow2' }));
    expect(msgs(parse({ disks: sata(3), cdroms: [{ id: 'cd0' }, { id: 'cd1' }, { id: 'cd2' }] }))).toEqual([]);
    expect(msgs(parse({ disks: sata(4), cdroms: [{ id: 'cd0' }, { id: 'cd1' }, { id: 'cd2' }] }))).toEqual([
      'disks: SATA disks and CD drives share 6 SATA ports, and this VM would need 7; put a disk on virtio or NVMe, or remove a CD drive',
    ]);
    // aarch64 CDs are on virtio-scsi: six SATA disks plus CDs fit.
    expect(msgs(parse({ arch: 'aarch64', firmware: 'uefi', uefiVars: 'v.qcow2', disks: sata(6), cdroms: [{ id: 'cd0' }] }))).toEqual([]);
  });

  it('withPrimaryIso: the ISO goes into the first drive (cd0 is made when there is none); null empties the drive holding one', () => {
    expect(withPrimaryIso([], '/a.iso')).toEqual([{ id: 'cd0', path: '/a.iso' }]);
    expect(withPrimaryIso([{ id: 'cd0', path: null }, { id: 'cd1', path: '/d.iso' }], '/a.iso')).toEqual([{ id: 'cd0', path: '/a.iso' }, { id: 'cd1', path: '/d.iso' }]);
    expect(withPrimaryIso([{ id: 'cd0', path: null }, { id: 'cd1', path: '/d.iso' }], null)).toEqual([{ id: 'cd0', path: null }, { id: 'cd1', path: null }]);
    expect(withPrimaryIso([], null)).toEqual([]);
    expect(nextCdDriveId([{ id: 'cd0' }, { id: 'cd2' }])).toBe('cd1');
  });
});

describe('disk rules', () => {
  const top = { id: 'disk0', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' };

  it('a chain lists layers nearest first; diskImages gives top then layers', () => {
    const d = Disk.parse({
      ...top,
      backing: [
        { source: { bundle: 'snap.qcow2' }, format: 'qcow2' },
        { source: { path: '/srv/base.raw' }, format: 'raw' },
      ],
    });
    expect(diskImages(d).map((l) => ('bundle' in l.source ? l.source.bundle : l.source.path))).toEqual(['disk0.qcow2', 'snap.qcow2', '/srv/base.raw']);
    expect(d.role).toBe('data');
  });

  it('only qcow2 images can have something below them', () => {
    const rawTop = Disk.safeParse({ ...top, format: 'raw', backing: [{ source: { bundle: 'b.qcow2' }, format: 'qcow2' }] });
    expect(rawTop.success).toBe(false);
    expect(rawTop.error?.issues[0]).toMatchObject({ path: ['format'], message: 'only a qcow2 image can have a backing image below it' });
    const rawMiddle = Disk.safeParse({
      ...top,
      backing: [
        { source: { bundle: 'mid.raw' }, format: 'raw' },
        { source: { bundle: 'base.qcow2' }, format: 'qcow2' },
      ],
    });
    expect(rawMiddle.error?.issues[0]?.path).toEqual(['backing', 0, 'format']);
  });

  it('a bundle layer cannot escape the bundle', () => {
    expect(Disk.safeParse({ ...top, backing: [{ source: { bundle: '../other/disk.qcow2' }, format: 'qcow2' }] }).success).toBe(false);
  });

  it('the list: unique ids, one system disk, no image used as two tops or in a loop; a shared base is fine', () => {
    const issues = (disks: unknown[]) => {
      const r = v2(disks);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues([top, { ...top }])).toEqual(expect.arrayContaining(['disks.1.id: two disks are called disk0', 'disks.1.source: this image is already used by another disk']));
    expect(issues([{ ...top, role: 'system' }, { id: 'disk1', role: 'system', source: { bundle: 'd1.qcow2' }, format: 'qcow2' }])).toEqual([
      'disks.1.role: only one disk can be the system disk',
    ]);
    expect(issues([{ ...top, backing: [{ source: { bundle: 'disk0.qcow2' }, format: 'qcow2' }] }])).toEqual([
      'disks.0.backing.0.source: this image is already in the chain above it (a loop)',
    ]);
    const base = { source: { path: '/srv/base.qcow2' }, format: 'qcow2' };
    expect(issues([{ ...top, backing: [base] }, { id: 'disk1', source: { bundle: 'd1.qcow2' }, format: 'qcow2', backing: [base] }])).toEqual([]);
    expect(issues([{ ...top, backing: [{ source: { bundle: 'd1.qcow2' }, format: 'qcow2' }] }, { id: 'disk1', source: { bundle: 'd1.qcow2' }, format: 'qcow2' }])).toEqual([
      'disks.1.source: this image is already used by another disk',
    ]);
  });

  it('nextDiskId fills the first free number', () => {
    expect(nextDiskId([])).toBe('disk0');
    expect(nextDiskId([{ id: 'disk0' }, { id: 'disk2' }])).toBe('disk1');
  });
});
