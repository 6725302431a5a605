/** Which other VMs use files in a VM's folder (pure): the rule behind a refused delete. */
import { describe, expect, it } from 'vitest';
import { CONFIG_VERSION, VmConfig, type VmConfigInput } from '../../common/models/vm-config';
import { deleteBlockedBy, usesOfFilesIn } from './image-users';

const A = '/lib/vms/aaaaaaaa-0000-4000-8000-000000000001';
function vm(id: string, name: string, extra: Partial<VmConfigInput>): { config: VmConfig; dir: string } {
  const config = VmConfig.parse({
    version: CONFIG_VERSION,
    id,
    name,
    createdAt: '2025-01-01T00:00:00.000Z',
    arch: 'x86_64',
    cpus: 1,
    memoryMiB: 128,
    network: { mac: '52:54:00:00:00:01' },
    ...extra,
  });
  return { config, dir: `/lib/vms/${id}` };
}

describe('usesOfFilesIn', () => {
  it('finds backing layers, disks, CDs and kernels by path inside the folder, and nothing else', () => {
    const clone = vm('bbbbbbbb-0000-4000-8000-000000000002', 'clone', {
      disks: [{ id: 'disk0', source: { bundle: 'disk0.qcow2' }, format: 'qcow2', backing: [{ source: { path: `${A}/disk0.qcow2` }, format: 'qcow2' }] }],
    });
    const other = vm('cccccccc-0000-4000-8000-000000000003', 'other', {
      disks: [{ id: 'disk1', source: { path: `${A}/data.raw` }, format: 'raw' }],
      cdroms: [{ id: 'cd0', path: null }, { id: 'cd1', path: `${A}/../aaaaaaaa-0000-4000-8000-000000000001/cd.iso` }],
      kernel: { path: '/boot/vmlinuz', initrd: `${A}/initrd`, append: '' },
    });
    const unrelated = vm('dddddddd-0000-4000-8000-000000000004', 'unrelated', { cdroms: [{ id: 'cd0', path: `${A}-not-inside/cd.iso` }] });
    const self = vm('aaaaaaaa-0000-4000-8000-000000000001', 'base', { disks: [{ id: 'disk0', source: { path: `${A}/disk0.qcow2` }, format: 'qcow2' }] });
    const uses = usesOfFilesIn(self.config.id, A, [self, clone, other, unrelated]);
    expect(uses.map((u) => `${u.vmName}: ${u.as}`)).toEqual(['clone: a backing image of its disk disk0', 'other: its disk disk1', 'other: its CD (cd1)', 'other: its initrd']);
    expect(deleteBlockedBy('base', uses)).toBe(
      `"base" cannot be deleted: "clone" (and 1 other VM: "other") uses ${A}/disk0.qcow2 from its folder as a backing image of its disk disk0. Delete "clone" and "other" first (or give them their own copies of the files they use).`,
    );
    expect(deleteBlockedBy('base', [])).toBeNull();
  });
});
