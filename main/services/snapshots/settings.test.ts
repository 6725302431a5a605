/**
 * The settings a snapshot holds (settings.ts), as pure functions: what is stored, what a revert
 * restores and keeps, which disks it detaches or attaches again, what it refuses, and QEMU's
 * "Size mismatch" line read back as memory sizes.
 */
import { describe, expect, it } from 'vitest';
import { parseVmConfig, type VmConfig } from '../../common/models/vm-config';
import { parseTree } from './tree';
import { ramSizeMismatch, revertTarget, sameHardware, settingsOf } from './settings';

const base: VmConfig = (() => {
  const r = parseVmConfig(
    JSON.stringify({
      version: 3,
      id: '0b7c2a5e-2f35-4c55-9a1b-6f9f3c1d2e4a',
      name: 'm',
      createdAt: '2026-12-01T00:00:00.000Z',
      arch: 'x86_64',
      cpus: 1,
      memoryMiB: 256,
      disks: [{ id: 'disk0', role: 'system', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' }],
      bootOrder: ['disk'],
      network: { mode: 'none', mac: '52:54:00:12:34:56' },
      display: 'none',
    }),
  );
  if (!r.ok) throw new Error(r.error);
  return r.config;
})();

const disk1 = { id: 'disk1', role: 'data' as const, bus: 'virtio' as const, source: { bundle: 'disk1.qcow2' }, format: 'qcow2' as const, readOnly: false, backing: [] };

describe('snapshot settings', () => {
  it('hold the hardware, not the identity, labels, shares or extra QEMU arguments', () => {
    const s = settingsOf({ ...base, os: 'Debian', autostart: true, extraArgs: ['-S'] });
    expect(s).toMatchObject({ version: 3, memoryMiB: 256, cpus: 1, arch: 'x86_64', firmware: 'bios' });
    for (const k of ['id', 'name', 'createdAt', 'os', 'autostart', 'suspended', 'cloudInit', 'shares', 'extraArgs']) expect(s).not.toHaveProperty(k);
    // A tree record with settings reads back (and one without still does).
    const record = { id: 'snap-00000000000a', name: 'a', description: '', createdAt: 'x', parentId: null, withMemory: true, images: ['disk0.qcow2'], thumbnail: null, state: 'complete' };
    expect(parseTree(JSON.stringify({ version: 1, current: null, snapshots: [{ ...record, settings: s }, { ...record, id: 'snap-00000000000b', name: 'b' }] })).problem).toBeNull();
  });

  it('a revert restores memory and a removed disk, detaches an added one, and keeps the present name and labels', () => {
    const then = settingsOf({ ...base, disks: [...base.disks, disk1] });
    const now: VmConfig = { ...base, name: 'renamed', os: 'Alpine', memoryMiB: 512, disks: [...base.disks, { ...disk1, id: 'disk2', source: { bundle: 'disk2.qcow2' } }] };
    const r = revertTarget(now, then);
    if (!r.ok) throw new Error(r.why);
    expect(r.target.config).toMatchObject({ name: 'renamed', os: 'Alpine', memoryMiB: 256, id: base.id });
    expect(r.target.config.disks.map((d) => d.id)).toEqual(['disk0', 'disk1']);
    expect(r.target.restored.map((d) => d.id)).toEqual(['disk1']);
    expect(r.target.detached.map((d) => d.id)).toEqual(['disk2']);
    expect(sameHardware(now, r.target.config)).toBe(false);
    // The MAC address stays the VM's own (an import under a new id gets a new one).
    const imported = revertTarget({ ...now, network: { ...now.network, mac: '52:54:00:aa:bb:cc' } }, then);
    expect(imported.ok && imported.target.config.network.mac).toBe('52:54:00:aa:bb:cc');
    expect(sameHardware(base, { ...base, network: { ...base.network, mac: '52:54:00:aa:bb:cc' } })).toBe(true);
    expect(sameHardware({ ...base, name: 'other', os: 'x' }, base)).toBe(true);
  });

  it('refuses settings that are no valid config, or that attach a file outside the folder the VM does not use', () => {
    const bad = revertTarget(base, { ...settingsOf(base), memoryMiB: 1 });
    expect(bad).toMatchObject({ ok: false });
    expect(!bad.ok && bad.why).toMatch(/do not make a valid VM configuration here \(memoryMiB: memory must be at least 16 MiB\)/);
    const outside = revertTarget(base, { ...settingsOf(base), disks: [{ ...disk1, readOnly: true, source: { path: '/etc/shadow' }, format: 'raw' }] });
    expect(!outside.ok && outside.why).toMatch(/name \/etc\/shadow for disk disk1, a file outside the VM's folder that it does not use now/);
  });

  it('reads the memory sizes out of QEMU\'s "Size mismatch" line (saved first, then the VM\'s)', () => {
    const log = '2026-12-01T02:00:00.000000Z qemu-system-x86_64: Size mismatch: pc.ram: 0x10000000 != 0x20000000: Invalid argument\nError -22 while loading VM state';
    expect(ramSizeMismatch(log)).toEqual({ savedMiB: 256, nowMiB: 512 });
    expect(ramSizeMismatch('Size mismatch: 0000:00:02.0/vga.vram: 0x1 != 0x2')).toBeNull();
    expect(ramSizeMismatch('nothing here')).toBeNull();
  });
});
