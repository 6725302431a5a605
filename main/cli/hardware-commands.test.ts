/** Usage checks of `disk` and `cd` that need no engine (exit 2 with a sentence). */
import { describe, expect, it } from 'vitest';
import type { Parsed } from './args';
import { formatDriveTable, prepareHardware } from './hardware-commands';

const p = (positionals: string[], flags: Parsed['flags'] = {}): Parsed => ({ positionals, flags });

describe('disk and cd usage', () => {
  it('accepts the forms the README documents', () => {
    expect(() => prepareHardware('disk', p(['list', 'vm']))).not.toThrow();
    expect(() => prepareHardware('disk', p(['add', 'vm'], { size: '10G' }))).not.toThrow();
    expect(() => prepareHardware('disk', p(['add', 'vm'], { file: '/x.qcow2', bus: 'virtio' }))).not.toThrow();
    expect(() => prepareHardware('disk', p(['resize', 'vm', 'disk0'], { size: '40G' }))).not.toThrow();
    expect(() => prepareHardware('disk', p(['remove', 'vm', 'disk1'], { 'delete-file': true }))).not.toThrow();
    expect(() => prepareHardware('cd', p(['insert', 'vm', '/a.iso'], { drive: 'cd0' }))).not.toThrow();
    expect(() => prepareHardware('cd', p(['eject', 'vm']))).not.toThrow();
  });

  it('refuses what cannot work, saying what to give instead', () => {
    const msg = (cmd: string, q: Parsed) => {
      try {
        prepareHardware(cmd, q);
      } catch (e) {
        return (e as Error).message;
      }
      return null;
    };
    expect(msg('disk', p(['add', 'vm']))).toBe('disk add needs either --size SIZE (a new disk) or --file PATH (an existing image), not both');
    expect(msg('disk', p(['add', 'vm'], { size: '1G', file: '/x' }))).toContain('not both');
    expect(msg('disk', p(['resize', 'vm', 'disk0']))).toBe('disk resize needs --size, the new size (e.g. 40G)');
    // The command that lists the ids names this VM, quoted for the shell (not a literal NAME).
    expect(msg('disk', p(['resize', 'vm']))).toBe('disk resize needs the DISK_ID (see `vivarium disk list vm`)');
    expect(msg('disk', p(['remove', 'my vm']))).toBe("disk remove needs the DRIVE_ID (a disk or a CD drive) (see `vivarium disk list 'my vm'`)");
    expect(msg('disk', p(['remove', '-x']))).toBe('disk remove needs the DRIVE_ID (a disk or a CD drive) (see `vivarium disk list -- -x`)');
    expect(msg('disk', p(['add', 'vm'], { cdrom: true, size: '1G' }))).toContain('disk add --cdrom takes only --file ISO');
    expect(() => prepareHardware('disk', p(['add', 'vm'], { cdrom: true }))).not.toThrow();
    expect(msg('disk', p(['add', 'vm'], { size: 'big' }))).toBe('--size must be a size from 1M to 64T such as 10G or 512M, not "big"');
    expect(msg('disk', p(['add', 'vm'], { size: '1G', bus: 'ide' }))).toBe('--bus must be virtio, sata or nvme, not "ide"');
    expect(msg('disk', p(['list', 'vm'], { 'delete-file': true }))).toBe('--delete-file goes with disk remove');
    expect(msg('disk', p(['grow', 'vm']))).toBe('unknown action "grow"; use one of list, add, resize, remove');
    expect(msg('cd', p(['insert', 'vm']))).toBe('cd insert needs the PATH of an ISO');
    expect(msg('cd', p(['eject', 'vm', '/a.iso']))).toBe('cd eject takes only NAME (and --drive ID)');
  });
});

describe('disk list (plain)', () => {
  it('lines the columns up and gives a CD its size and format', () => {
    const table = formatDriveTable([
      { id: 'disk0', kind: 'disk', path: '/vms/a/disk0.qcow2', format: 'qcow2', virtualSizeBytes: 2 * 1024 ** 3, bus: 'virtio', readOnly: false, role: 'system' },
      { id: 'disk1', kind: 'disk', path: '/vms/a/disk1.qcow2', format: 'qcow2', virtualSizeBytes: 512 * 1024 ** 2, bus: 'nvme', readOnly: false, role: 'data' },
      { id: 'cd0', kind: 'cdrom', path: '/isos/grub rescue.iso', format: 'raw', virtualSizeBytes: 5081088, bus: 'sata', readOnly: true, role: null },
      { id: 'cd1', kind: 'cdrom', path: null, format: null, virtualSizeBytes: null, bus: 'sata', readOnly: true, role: null },
    ]);
    expect(table.split('\n')).toEqual([
      'disk0  disk   virtio    2 GiB  qcow2  /vms/a/disk0.qcow2  (system)',
      'disk1  disk   nvme    512 MiB  qcow2  /vms/a/disk1.qcow2',
      'cd0    cdrom  sata    4.8 MiB  raw    /isos/grub rescue.iso',
      'cd1    cdrom  sata          -  -      (empty)',
    ]);
  });
});
