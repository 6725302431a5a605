import { describe, expect, it } from 'vitest';
import { VmConfig, type VmConfigInput } from '../../../common/models/vm-config';
import { snapshotPlanOf } from './snapshotter';
import { argvHash } from './suspender';

const base: VmConfigInput = {
  version: 3,
  id: '3f2a9c01-b7de-4c1a-9d2e-0123456789ab',
  name: 'plan',
  createdAt: '2026-11-30T12:00:00.000Z',
  arch: 'x86_64',
  cpus: 1,
  memoryMiB: 256,
  network: { mac: '52:54:00:12:34:56' },
};
const config = (patch: Partial<VmConfigInput>) => VmConfig.parse({ ...base, ...patch });

describe('snapshotPlanOf', () => {
  it('covers every writable bundle qcow2 and the UEFI variable store; memory goes to the system disk', () => {
    const plan = snapshotPlanOf(
      config({
        firmware: 'uefi',
        uefiVars: 'efivars.qcow2',
        disks: [
          { id: 'disk1', role: 'data', source: { bundle: 'disk1.qcow2' }, format: 'qcow2' },
          { id: 'disk0', role: 'system', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' },
          { id: 'disk2', source: { path: '/srv/ro.img' }, format: 'raw', readOnly: true },
        ],
      }),
    );
    expect(plan.images.map((i) => [i.node, i.file])).toEqual([
      ['disk1', 'disk1.qcow2'],
      ['disk0', 'disk0.qcow2'],
      ['fw-vars', 'efivars.qcow2'],
    ]);
    expect(plan.vmstate?.node).toBe('disk0');
  });

  it('refuses a raw disk or a disk used in place, naming it', () => {
    expect(() => snapshotPlanOf(config({ disks: [{ id: 'disk0', source: { bundle: 'disk0.img' }, format: 'raw' }] }))).toThrow(/disk disk0 \(disk0\.img\) is a raw image/);
    expect(() => snapshotPlanOf(config({ disks: [{ id: 'disk3', source: { path: '/home/me/os.qcow2' }, format: 'qcow2' }] }))).toThrow(/disk disk3 is the image \/home\/me\/os\.qcow2, used in place/);
  });

  it('a VM without disks has nowhere to keep memory', () => {
    expect(snapshotPlanOf(config({}))).toEqual({ images: [], vmstate: null });
  });
});

describe('argvHash', () => {
  it('ignores -incoming (a resumed VM can be suspended again) and sees any other change', () => {
    const argv = ['/usr/bin/qemu-system-x86_64', '-m', '256'];
    expect(argvHash([...argv, '-incoming', 'unix:/r/incoming.sock'])).toBe(argvHash(argv));
    expect(argvHash(['/usr/bin/qemu-system-x86_64', '-m', '512'])).not.toBe(argvHash(argv));
  });

  it('ignores the host ports of user-mode forwards (a sandbox gets a fresh SSH port each start), not their guest side', () => {
    const net = (fwd: string) => ['/usr/bin/qemu-system-x86_64', '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,${fwd}`, '-m', '256'];
    expect(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:22'))).toBe(argvHash(net('hostfwd=tcp:127.0.0.1:38011-:22')));
    expect(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:22'))).not.toBe(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:2222')));
    expect(argvHash(net('hostfwd=udp:127.0.0.1:41234-:22'))).not.toBe(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:22')));
    expect(argvHash(net('hostfwd=tcp:127.0.0.1:41234-:22'))).not.toBe(argvHash(net('hostfwd=tcp:0.0.0.0:41234-:22')));
  });
});
