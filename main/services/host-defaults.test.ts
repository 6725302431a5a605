import { describe, expect, it } from 'vitest';
import { newConfig } from '../common/models/vm-settings';
import { defaultsFor, hostFacts } from './host-defaults';
import { HOST_KINDS } from './qemu/test-fixtures/host-kinds';

const machine = { totalMemBytes: 16 * 1024 ** 3, cores: 8 };

describe('host.defaults on each host kind', () => {
  it('an Apple Silicon Mac gets an aarch64 guest with UEFI: the New VM dialog never sends BIOS there', () => {
    const d = defaultsFor(HOST_KINDS['darwin-arm64-hvf'], {}, machine);
    expect(d).toMatchObject({ arch: 'aarch64', firmware: 'uefi', firmwares: ['uefi'], cpus: 2, memoryMiB: 2048, limits: { hostCores: 8, maxMemoryMiB: 16384 } });
    // And what the dialog sends for "all defaults" (only a name) builds a config the argv accepts.
    const r = newConfig({ name: 'mac' }, hostFacts(HOST_KINDS['darwin-arm64-hvf'], machine), {
      id: '4f0c7f8e-4b7a-4d8e-9c55-2d1f0b7f6a11',
      createdAt: '2026-01-01T00:00:00Z',
      mac: '52:54:00:00:00:01',
      files: { uefiVars: 'efivars.qcow2' },
    });
    expect(r.ok && r.config).toMatchObject({ arch: 'aarch64', firmware: 'uefi', uefiVars: 'efivars.qcow2' });
  });
  it('an x86_64 Linux host gets BIOS by default, may choose UEFI, and 255 vCPUs at most (q35 without an IOMMU)', () => {
    const d = defaultsFor(HOST_KINDS['linux-x86_64-tcg'], {}, machine);
    expect(d).toMatchObject({ arch: 'x86_64', firmware: 'bios', firmwares: ['bios', 'uefi'], limits: { maxCpus: 255 } });
    expect(d.arches).toEqual(expect.arrayContaining(['x86_64', 'aarch64']));
    expect(defaultsFor(HOST_KINDS['linux-x86_64-tcg'], { arch: 'aarch64' }, machine)).toMatchObject({ arch: 'aarch64', firmware: 'uefi' });
  });
  it('a host without QEMU for its own arch defaults to one it has', () => {
    const facts = hostFacts(HOST_KINDS['linux-x86_64-kvm'], machine);
    expect(facts.binaries).toEqual(['x86_64']);
    expect(defaultsFor(HOST_KINDS['linux-x86_64-kvm'], {}, { totalMemBytes: 1024 ** 3, cores: 1 })).toMatchObject({ cpus: 1, memoryMiB: 512 });
  });
});
