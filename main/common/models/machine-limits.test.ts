/**
 * The vCPU limit rule (pure). That QEMU 7.2 really starts at the limit and refuses one above it is
 * checked against real QEMU in main/services/qemu/argv.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { vcpuLimit } from './machine-limits';

const V72 = { major: 7, minor: 2, micro: 22 };

describe('vcpuLimit', () => {
  it('x86: 255 without an IOMMU, whatever q35 says its cpu-max is', () => {
    expect(vcpuLimit({ arch: 'x86_64', machine: null, accel: 'tcg', qemuVersion: V72, cpuMax: 288 })).toMatchObject({ max: 255, raiseBy: null });
    expect(vcpuLimit({ arch: 'x86_64', machine: null, accel: 'kvm', qemuVersion: V72, cpuMax: null }).because).toContain('IOMMU');
  });

  it('a machine whose cpu-max is lower wins (and is named)', () => {
    const l = vcpuLimit({ arch: 'x86_64', machine: 'pc-i440fx-2.0', accel: 'tcg', qemuVersion: V72, cpuMax: 128 });
    expect(l).toEqual({ max: 128, because: 'QEMU\'s "pc-i440fx-2.0" machine supports at most 128 CPUs', raiseBy: null });
  });

  it('aarch64 virt: GICv3 up to cpu-max; GICv2 (HVF before 8.0) 8; no highmem (HVF before 7.0) 123', () => {
    expect(vcpuLimit({ arch: 'aarch64', machine: null, accel: 'tcg', qemuVersion: V72, cpuMax: 512 }).max).toBe(512);
    expect(vcpuLimit({ arch: 'aarch64', machine: null, accel: 'kvm', qemuVersion: V72, cpuMax: null }).max).toBe(512);
    expect(vcpuLimit({ arch: 'aarch64', machine: null, accel: 'hvf', qemuVersion: V72, cpuMax: 512 })).toMatchObject({ max: 8, raiseBy: 'update QEMU to 8.0 or later' });
    expect(vcpuLimit({ arch: 'aarch64', machine: null, accel: 'hvf', qemuVersion: { major: 9, minor: 2, micro: 0 }, cpuMax: 512 }).max).toBe(512);
  });
});
