import { describe, expect, it } from 'vitest';
import { driveSizeBytes, removeConfirmation } from './hardware';

const GIB = 1024 ** 3;

describe('driveSizeBytes', () => {
  it('reads a bare number as GiB, like the wizard', () => {
    expect(driveSizeBytes('40')).toBe(40 * GIB);
    expect(driveSizeBytes(' 1.5 ')).toBe(1.5 * GIB);
    // Rounded to whole MiB (an image size QEMU takes).
    expect(driveSizeBytes('0.1')! % (1024 * 1024)).toBe(0);
  });
  it('reads sizes with a unit', () => {
    expect(driveSizeBytes('512M')).toBe(512 * 1024 * 1024);
    expect(driveSizeBytes('2.5G')).toBe(2.5 * GIB);
  });
  it('refuses what is not a size', () => {
    expect(driveSizeBytes('')).toBeNull();
    expect(driveSizeBytes('abc')).toBeNull();
    expect(driveSizeBytes('-5')).toBeNull();
  });
});

describe('removeConfirmation', () => {
  const dir = '/lib/vms/1234';
  it('says a data disk in the VM folder is deleted with "delete file", and kept without', () => {
    const d = { id: 'disk1', kind: 'disk', path: `${dir}/disk1.qcow2`, role: 'data' } as const;
    expect(removeConfirmation(d, true, 'web', dir)).toEqual({
      title: 'Remove the disk disk1?',
      text: `Its file ${dir}/disk1.qcow2 is deleted: everything on this disk is lost.`,
      confirmLabel: 'Remove and delete',
    });
    expect(removeConfirmation(d, false, 'web', dir).text).toBe(`Its file stays where it is (${dir}/disk1.qcow2); you can add it again later.`);
  });
  it('never promises to delete a file outside the folder (a folder whose name only starts the same is outside)', () => {
    const d = { id: 'disk1', kind: 'disk', path: `${dir}5/disk1.qcow2`, role: 'data' } as const;
    const c = removeConfirmation(d, true, 'web', dir);
    expect(c.text).toMatch(/stays where it is .*outside the VM's folder, so it is never deleted/);
    expect(c.confirmLabel).toBe('Remove disk');
  });
  it('names the system disk and what the VM loses', () => {
    const c = removeConfirmation({ id: 'disk0', kind: 'disk', path: `${dir}/disk0.qcow2`, role: 'system' }, false, 'web', dir);
    expect(c.text).toMatch(/It is the system disk: "web" will not boot from a disk until you add one\.$/);
  });
  it('a CD drive: the ISO is never touched', () => {
    expect(removeConfirmation({ id: 'cd0', kind: 'cdrom', path: '/isos/a.iso', role: null }, true, 'web', dir)).toEqual({
      title: 'Remove the CD drive cd0?',
      text: '"web" will have one CD drive fewer. The ISO file stays where it is (/isos/a.iso).',
      confirmLabel: 'Remove drive',
    });
  });
});
