import { describe, expect, it } from 'vitest';
import { CreateVmSpec, EditVmSpec } from '../contract';
import { VivariumError } from '../errors';
import type { AccelStatus } from './host';
import { VmConfig } from './vm-config';
import {
  applyEdit,
  findNameClash,
  hostDefaults,
  nameKey,
  newConfig,
  settingsError,
  type HostFacts,
  type NewConfigContext,
  type SettingsResult,
} from './vm-settings';

const TCG: AccelStatus = { accel: 'tcg', usable: true, reason: 'software emulation.' };
const KVM_OK: AccelStatus = { accel: 'kvm', usable: true, reason: 'hardware virtualization with KVM.' };
const KVM_NO: AccelStatus = { accel: 'kvm', usable: false, reason: '/dev/kvm does not exist: the CPU has no virtualization or it is off in the firmware.' };

/** A Linux x86_64 host with 8 GiB and 4 cores, QEMU for x86_64 only, OVMF installed. */
const linux: HostFacts = {
  os: 'linux',
  arch: 'x86_64',
  binaries: ['x86_64'],
  firmware: ['x86_64'],
  accels: { x86_64: [KVM_OK, TCG] },
  memoryMiB: 8192,
  cores: 4,
  maxCpus: { x86_64: 255 },
};
/** An Apple Silicon Mac: aarch64 only, UEFI only. */
const mac: HostFacts = {
  os: 'darwin',
  arch: 'aarch64',
  binaries: ['aarch64'],
  firmware: ['aarch64'],
  accels: { aarch64: [{ accel: 'hvf', usable: true, reason: 'HVF.' }, TCG] },
  memoryMiB: 16384,
  cores: 8,
  maxCpus: { aarch64: 512 },
};

let n = 0;
const ctx = (patch: Partial<NewConfigContext> = {}): NewConfigContext => ({
  id: `4f0c7f8e-4b7a-4d8e-9c55-2d1f0b7f6a${String(10 + (n++ % 80)).padStart(2, '0')}`,
  createdAt: '2026-01-01T00:00:00.000Z',
  mac: '52:54:00:12:34:56',
  files: { uefiVars: 'efivars.qcow2' },
  ...patch,
});

function errorsOf(r: SettingsResult) {
  expect(r.ok).toBe(false);
  return r.ok ? [] : r.errors;
}
function configOf(r: SettingsResult) {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.errors)}`);
  return r.config;
}

describe('defaults come from one place and fit the host', () => {
  it('a New VM with only a name gets the host defaults the dialog shows', () => {
    const d = hostDefaults(linux);
    const c = configOf(newConfig({ name: 'web' }, linux, ctx()));
    expect({ arch: c.arch, firmware: c.firmware, cpus: c.cpus, memoryMiB: c.memoryMiB }).toEqual({ arch: d.arch, firmware: d.firmware, cpus: d.cpus, memoryMiB: d.memoryMiB });
    expect(d).toMatchObject({ arch: 'x86_64', firmware: 'bios', cpus: 2, memoryMiB: 2048, diskSizeBytes: 20 * 1024 ** 3 });
    expect(c.disks).toHaveLength(1);
    expect(c.uefiVars).toBeNull();
  });
  it('an Apple Silicon host gets an aarch64 guest with UEFI (no BIOS there) and its variable store', () => {
    const d = hostDefaults(mac);
    expect(d).toMatchObject({ arch: 'aarch64', firmware: 'uefi', firmwares: ['uefi'] });
    const c = configOf(newConfig({ name: 'arm' }, mac, ctx()));
    expect(c).toMatchObject({ arch: 'aarch64', firmware: 'uefi', uefiVars: 'efivars.qcow2' });
  });
  it('a small host gets less memory and fewer CPUs by default', () => {
    const tiny: HostFacts = { ...linux, memoryMiB: 1000, cores: 1 };
    expect(hostDefaults(tiny)).toMatchObject({ cpus: 1, memoryMiB: 256, limits: { maxMemoryMiB: 1000, hostCores: 1 } });
  });
  it('asking for BIOS on aarch64 is refused on the firmware field, with UEFI as the remedy', () => {
    const [e] = errorsOf(newConfig({ name: 'arm', firmware: 'bios' }, mac, ctx()));
    expect(e).toMatchObject({ field: 'firmware', remedy: { kind: 'change-setting', field: 'firmware', to: 'uefi' } });
  });
});

describe('cross-field rules live on the schemas, with field paths', () => {
  it('forwards need networking: a form gets the error on the forwards field from safeParse', () => {
    const r = CreateVmSpec.safeParse({ name: 'x', net: 'none', forwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['forwards', 'port forwards need networking']]);
    const e = EditVmSpec.safeParse({ net: 'none', forwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] });
    expect(e.error?.issues[0]?.path).toEqual(['forwards']);
  });
  it('an ISO together with a kernel is refused (the kernel no longer silently wins)', () => {
    const [e] = errorsOf(newConfig({ name: 'x', iso: '/i/a.iso', kernel: '/k/vmlinuz' }, linux, ctx()));
    expect(e).toMatchObject({ field: 'kernel', message: expect.stringMatching(/ISO image or from a kernel, not both/) });
  });
  it('initrd and a kernel command line need a kernel', () => {
    const errs = errorsOf(newConfig({ name: 'x', initrd: '/k/initrd', append: 'console=ttyS0' }, linux, ctx()));
    expect(errs.map((e) => e.field).sort()).toEqual(['append', 'initrd']);
  });
  it('a stored config without networking cannot carry forwards', () => {
    const base = configOf(newConfig({ name: 'x' }, linux, ctx()));
    const r = VmConfig.safeParse({ ...base, network: { ...base.network, mode: 'none', forwards: [{ protocol: 'tcp', hostPort: 1, guestPort: 2 }] } });
    expect(r.error?.issues[0]?.path).toEqual(['network', 'forwards']);
  });
});

describe('rules that need the host', () => {
  it('names clash after Unicode NFC normalisation and case folding', () => {
    const nfc = 'caf\u00e9';
    const nfd = 'cafe\u0301';
    expect(nfc).not.toBe(nfd);
    expect(nameKey(nfc)).toBe(nameKey(nfd));
    expect(nameKey('STRASSE')).toBe(nameKey('straße'));
    const library = [{ id: 'a', name: nfc }];
    expect(findNameClash(nfd, library)).toEqual({ id: 'a', name: nfc });
    expect(findNameClash(nfd, library, 'a')).toBeNull(); // renaming a VM to itself
    const [e] = errorsOf(newConfig({ name: 'CAFE\u0301' }, linux, ctx({ library })));
    expect(e).toMatchObject({ code: 'already-exists', field: 'name', remedy: { kind: 'rename', taken: nfc } });
  });
  it('--accel kvm where KVM cannot work is refused at create, with the reason', () => {
    const noKvm: HostFacts = { ...linux, accels: { x86_64: [KVM_NO, TCG] } };
    const [e] = errorsOf(newConfig({ name: 'x', accel: 'kvm' }, noKvm, ctx()));
    expect(e).toMatchObject({ code: 'unsupported', field: 'accel', remedy: { kind: 'change-setting', field: 'accel', to: 'auto' } });
    expect(e!.message).toContain('/dev/kvm does not exist');
    // kvm_pvm style: not picked by auto, but a user who asks explicitly may try it.
    const forceable: HostFacts = { ...linux, accels: { x86_64: [{ ...KVM_NO, forceable: true }, TCG] } };
    const forced = newConfig({ name: 'x', accel: 'kvm' }, forceable, ctx());
    expect(forced.ok && forced.warnings).toEqual([expect.objectContaining({ field: 'accel', message: expect.stringContaining('/dev/kvm does not exist') })]);
    expect(newConfig({ name: 'x', accel: 'tcg' }, noKvm, ctx()).ok).toBe(true);
  });
  it('memory is at most what the host has, with a lower value as the remedy', () => {
    const [e] = errorsOf(newConfig({ name: 'x', memoryMiB: 16384 }, linux, ctx()));
    // The remedy is the limit that is checked (the host's 8 GiB), never a lower figure: what it
    // suggests is accepted, and anything above it is not.
    expect(e).toMatchObject({ field: 'memoryMiB', remedy: { kind: 'lower', field: 'memoryMiB', max: 8192 } });
    expect(newConfig({ name: 'x', memoryMiB: 8192 }, linux, ctx()).ok).toBe(true);
    expect(newConfig({ name: 'x', memoryMiB: 8193 }, linux, ctx()).ok).toBe(false);
  });
  it('CPUs at most what the machine type starts; more than the host cores is a warning', () => {
    const [e] = errorsOf(newConfig({ name: 'x', cpus: 256 }, linux, ctx()));
    expect(e).toMatchObject({ field: 'cpus', remedy: { kind: 'lower', field: 'cpus', max: 255 } });
    const r = newConfig({ name: 'x', cpus: 6 }, linux, ctx());
    expect(r.ok && r.warnings).toEqual([expect.objectContaining({ field: 'cpus', remedy: { kind: 'lower', field: 'cpus', max: 4 } })]);
    // One source of truth (machine-limits.ts): x86 stops at 255, aarch64 virt goes to 512; the
    // schema's bound is the largest of them, so no arch is capped below its machine.
    expect(errorsOf(newConfig({ name: 'x', cpus: 300 }, linux, ctx()))[0]).toMatchObject({ field: 'cpus', message: 'the x86_64 machine starts with at most 255 CPUs' });
    expect(newConfig({ name: 'x', cpus: 512 }, { ...mac, cores: 512 }, ctx()).ok).toBe(true);
    expect(errorsOf(newConfig({ name: 'x', cpus: 513 }, { ...mac, cores: 512 }, ctx()))[0]).toMatchObject({ field: 'cpus' });
    const within = newConfig({ name: 'x', cpus: 4 }, linux, ctx());
    expect(within.ok && within.warnings).toEqual([]);
  });
  it('missing QEMU for the arch names the packages to install', () => {
    const [e] = errorsOf(newConfig({ name: 'x', arch: 'aarch64' }, linux, ctx()));
    expect(e).toMatchObject({ code: 'qemu-missing', field: 'arch', remedy: { kind: 'install', packages: { debian: ['qemu-system-arm', 'qemu-efi-aarch64'] } } });
  });
  it('UEFI without firmware on x86_64 offers BIOS; the rule reports every field at once', () => {
    const noOvmf: HostFacts = { ...linux, firmware: [] };
    const errs = errorsOf(newConfig({ name: 'x', firmware: 'uefi', memoryMiB: 99999 }, noOvmf, ctx()));
    expect(errs.map((e) => e.field)).toEqual(['firmware', 'memoryMiB']);
    expect(errs[0]!.remedy).toEqual({ kind: 'change-setting', field: 'firmware', to: 'bios' });
  });
  it('an existing disk needs its format from the caller', () => {
    expect(errorsOf(newConfig({ name: 'x', diskPath: '/d/a.img' }, linux, ctx()))[0]!.field).toBe('diskPath');
    const c = configOf(newConfig({ name: 'x', diskPath: '/d/a.img' }, linux, ctx({ diskPathFormat: 'raw' })));
    expect(c.disks[0]).toMatchObject({ role: 'system', source: { path: '/d/a.img' }, format: 'raw' });
  });
});

describe('applyEdit', () => {
  const base = configOf(newConfig({ name: 'web', iso: '/i/a.iso', cpus: 2 }, linux, ctx()));
  const edit = (patch: unknown, host: HostFacts = linux, library = [{ id: base.id, name: base.name }]) =>
    applyEdit(base, patch, host, { files: { uefiVars: 'efivars.qcow2' }, library });

  it('keeps what the patch does not touch and clears with null', () => {
    const c = configOf(edit({ cpus: 4, iso: null }));
    expect(base.cdroms).toEqual([{ id: 'cd0', path: '/i/a.iso' }]);
    // The drive stays, empty (a CD can go in while the VM runs).
    expect(c).toMatchObject({ cpus: 4, cdroms: [{ id: 'cd0', path: null }], memoryMiB: base.memoryMiB, name: 'web', network: base.network });
  });
  it('switching to UEFI names the variable store the caller must create', () => {
    expect(configOf(edit({ firmware: 'uefi' })).uefiVars).toBe('efivars.qcow2');
  });
  it('refuses a kernel added to a VM that boots an ISO, and forwards on a VM without networking', () => {
    expect(errorsOf(edit({ kernel: '/k/vmlinuz' }))[0]).toMatchObject({ field: 'kernel', remedy: { kind: 'change-setting', field: 'iso', to: null, vm: 'web' } });
    const offline = configOf(edit({ net: 'none' }));
    const r = applyEdit(offline, { forwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] }, linux, { files: { uefiVars: 'e' } });
    expect(errorsOf(r)[0]).toMatchObject({ field: 'forwards', message: 'port forwards need networking' });
  });
  it('renaming to another VM\'s name (in another normalisation) is refused; to its own is fine', () => {
    const library = [
      { id: base.id, name: 'web' },
      { id: 'other', name: 'caf\u00e9' },
    ];
    expect(errorsOf(edit({ name: 'CAFE\u0301' }, linux, library))[0]).toMatchObject({ field: 'name', remedy: { kind: 'rename', vm: 'web' } });
    // Width forms too (NFKC): fullwidth "ｃａｆé" is "café".
    expect(errorsOf(edit({ name: '\uff43\uff41\uff46\u00e9' }, linux, library))[0]).toMatchObject({ field: 'name', message: expect.stringContaining('character width') });
    expect(edit({ name: 'WEB' }, linux, library).ok).toBe(true);
  });
  it('host rules apply only to what changes, naming the VM in the remedy', () => {
    const small: HostFacts = { ...linux, memoryMiB: 1024 };
    expect(edit({ cpus: 3 }, small).ok).toBe(true); // memory is over this host, but untouched
    expect(errorsOf(edit({ memoryMiB: 2048 }, small))[0]!.remedy).toEqual({ kind: 'lower', field: 'memoryMiB', max: 1024, vm: 'web' });
  });
});

describe('settingsError', () => {
  it('is one VivariumError with every field and the first remedy, in words without flags', () => {
    const r = newConfig({ name: 'x', cpus: 600, memoryMiB: 1 }, linux, ctx());
    const e = settingsError(errorsOf(r));
    expect(e).toBeInstanceOf(VivariumError);
    expect(e.code).toBe('invalid-argument');
    expect(e.fields.map((f) => f.field)).toEqual(['cpus', 'memoryMiB']);
    expect(e.message).toMatch(/^CPUs: .*; Memory must be at least 16 MiB\.$/);
    expect(e.message).not.toMatch(/--|memoryMiB|arg\d/);
    expect(e.toJSON()).toMatchObject({ field: 'cpus', remedy: { kind: 'change-setting', field: 'cpus' } });
  });
});
