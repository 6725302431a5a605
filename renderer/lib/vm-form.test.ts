import { describe, expect, it } from 'vitest';
import { CONFIG_VERSION, MAX_CPUS, VmConfig } from '../../main/common/models/vm-config';
import { hostDefaults, type HostDefaults, type HostFacts } from '../../main/common/models/vm-settings';
import { bootOrderRows, DEFAULT_VM_FORM, formFromConfig, formFromDefaults, formWarnings, moveBootDevice, parseMemoryMiB, toCreateSpec, toEditPatch, toggleBootDevice, type VmFormValues } from './vm-form';

const linux: HostFacts = {
  os: 'linux',
  arch: 'x86_64',
  binaries: ['x86_64'],
  firmware: ['x86_64'],
  accels: { x86_64: [{ accel: 'tcg', usable: true, reason: 'emulation.' }] },
  memoryMiB: 8192,
  cores: 4,
  maxCpus: { x86_64: 255 },
};
const defaults: HostDefaults = hostDefaults(linux);
/** The New VM form as it shows once the engine's defaults arrived. */
const shown = formFromDefaults(defaults);
const form = (patch: Partial<VmFormValues>): VmFormValues => ({ ...shown, name: 'web', iso: '/isos/debian.iso', ...patch });

describe('parseMemoryMiB', () => {
  it('reads plain MiB and units', () => {
    expect(parseMemoryMiB('2048')).toEqual({ ok: true, value: 2048 });
    expect(parseMemoryMiB('1G')).toEqual({ ok: true, value: 1024 });
    expect(parseMemoryMiB('1.5GiB')).toEqual({ ok: true, value: 1536 });
    expect(parseMemoryMiB('512m')).toEqual({ ok: true, value: 512 });
  });
  it('rejects text and fractions of a MiB', () => {
    expect(parseMemoryMiB('lots').ok).toBe(false);
    expect(parseMemoryMiB('1.1G').ok).toBe(false);
  });
});

describe('toCreateSpec', () => {
  it('shows the host defaults, and sends only what the user chose (never a firmware the host did not pick)', () => {
    expect(shown).toMatchObject({ cpus: '2', memory: '2G', diskGiB: '20', firmware: 'bios' });
    expect(toCreateSpec(form({}), defaults)).toEqual({ ok: true, value: { name: 'web', net: 'user', display: 'vnc', iso: '/isos/debian.iso' } });
    // Before the defaults arrive, empty hardware fields send nothing either: the engine fills them.
    expect(toCreateSpec({ ...DEFAULT_VM_FORM, name: 'web', iso: '/isos/debian.iso' })).toEqual({
      ok: true,
      value: { name: 'web', net: 'user', display: 'vnc', iso: '/isos/debian.iso' },
    });
  });
  it('an Apple Silicon host offers UEFI only, and a default New VM does not send firmware at all', () => {
    const mac = hostDefaults({ ...linux, os: 'darwin', arch: 'aarch64', binaries: ['aarch64'], firmware: ['aarch64'], accels: {}, maxCpus: {} });
    const f = formFromDefaults(mac);
    expect(f.firmware).toBe('uefi');
    const r = toCreateSpec({ ...f, name: 'arm', iso: '/i.iso' }, mac);
    expect(r.ok && 'firmware' in r.value).toBe(false);
  });
  it('sends the architecture chosen in New VM (an aarch64 guest on an x86_64 host), with that arch’s firmware default', () => {
    const both = { ...linux, binaries: ['x86_64', 'aarch64'], firmware: ['x86_64', 'aarch64'], maxCpus: { x86_64: 255, aarch64: 512 } } satisfies HostFacts;
    expect(hostDefaults(both).arches).toEqual(['x86_64', 'aarch64']);
    const arm = hostDefaults(both, 'aarch64');
    // Choosing aarch64 resets the firmware to '' (vm-form-fields.tsx); the form then shows aarch64's default.
    const f = { ...formFromDefaults(arm), arch: 'aarch64' as const, name: 'arm', iso: '/i.iso' };
    expect(f.firmware).toBe('uefi');
    expect(toCreateSpec(f, arm)).toEqual({ ok: true, value: { name: 'arm', arch: 'aarch64', net: 'user', display: 'vnc', iso: '/i.iso' } });
    // Not chosen: nothing sent, the engine picks the host's own.
    const r = toCreateSpec(form({}), defaults);
    expect(r.ok && 'arch' in r.value).toBe(false);
  });
  it('builds a direct-kernel spec and drops the ISO', () => {
    const r = toCreateSpec(
      form({ bootSource: 'kernel', kernel: '/k/vmlinuz', initrd: '/k/initrd', append: 'console=ttyS0', network: false, display: false, diskGiB: '0', os: 'Linux', cpus: '1', firmware: 'uefi' }),
      defaults,
    );
    expect(r).toEqual({
      ok: true,
      value: {
        name: 'web',
        os: 'Linux',
        cpus: 1,
        diskSizeBytes: 0,
        firmware: 'uefi',
        net: 'none',
        display: 'none',
        kernel: '/k/vmlinuz',
        initrd: '/k/initrd',
        append: 'console=ttyS0',
      },
    });
  });
  it('reports every field at once, in sentences, using the contract limits', () => {
    const r = toCreateSpec(form({ name: '   ', cpus: '0', memory: '8M', diskGiB: 'big', iso: '' }), defaults);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual({
      name: 'Name is required.',
      cpus: 'CPUs must be at least 1.',
      memory: 'Memory must be at least 16 MiB.',
      diskGiB: 'Disk size must be a number of GiB, such as 20 (0 for no disk).',
      iso: 'Enter the path of an ISO image, or choose another boot source.',
    });
  });
  it('uses upper limits and custom schema messages', () => {
    const r = toCreateSpec(form({ name: 'a\u0001b', cpus: '999', memory: '2T', diskGiB: '100000' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.name).toBe('Name must not contain control characters.');
    // The schema's bound is the largest machine limit (machine-limits.ts); host rules narrow it per arch.
    expect(r.errors.cpus).toBe(`CPUs must be at most ${MAX_CPUS}.`);
    expect(r.errors.memory).toBe('Memory must be at most 1 TiB.');
    expect(r.errors.diskGiB).toBe('Disk size must be at most 65536 GiB.');
  });
  it('applies the host limits with the engine\'s own rule: an error above them, a note above the cores', () => {
    const r = toCreateSpec(form({ cpus: '300', memory: '16G' }), defaults);
    expect(!r.ok && r.errors).toMatchObject({
      cpus: 'The x86_64 machine starts with at most 255 CPUs. Use 255 CPUs or fewer.',
      memory: '16 GiB is more memory than this host has (8 GiB). Use 8 GiB or less.',
    });
    expect(formWarnings(form({ cpus: '6' }), defaults).cpus).toMatch(/^6 CPUs is more than this host's 4; .* Use 4 CPUs or fewer\.$/);
    expect(toCreateSpec(form({ cpus: '6' }), defaults).ok).toBe(true);
  });
  it('no message names a CLI flag', () => {
    const r = toCreateSpec(form({ network: false, forwards: 'tcp:2222:22', bootSource: 'kernel', kernel: '', cpus: 'x' }), defaults);
    expect(Object.values(r.ok ? {} : r.errors).join(' ')).not.toMatch(/--|vivarium /);
  });
  it('needs a kernel path for kernel boot', () => {
    const r = toCreateSpec(form({ bootSource: 'kernel' }));
    expect(r.ok ? null : r.errors.kernel).toMatch(/kernel image/);
  });
});

const config = VmConfig.parse({
  version: CONFIG_VERSION,
  id: '4f0c7f8e-4b7a-4d8e-9c55-2d1f0b7f6a11',
  name: 'web',
  createdAt: '2025-01-01T00:00:00Z',
  arch: 'x86_64',
  cpus: 2,
  memoryMiB: 1536,
  cdroms: [{ id: 'cd0', path: '/isos/a.iso' }],
  network: { mac: '52:54:00:12:34:56' },
});

describe('formFromConfig / toEditPatch', () => {
  it('shows a config as form values', () => {
    expect(formFromConfig(config)).toMatchObject({ name: 'web', bootSource: 'iso', iso: '/isos/a.iso', cpus: '2', memory: '1536M', network: true, display: true });
  });
  it('sends nothing when nothing changed', () => {
    expect(toEditPatch(formFromConfig(config), config)).toEqual({ ok: true, value: {} });
  });
  it('sends only changed fields', () => {
    const v = { ...formFromConfig(config), cpus: '4', memory: '4G', display: false };
    expect(toEditPatch(v, config)).toEqual({ ok: true, value: { cpus: 4, memoryMiB: 4096, display: 'none' } });
  });
  it('removes the CD when switching to kernel boot; back to the firmware drops only the kernel (the CD drives are the Hardware tab\'s)', () => {
    const k = { ...formFromConfig(config), bootSource: 'kernel' as const, kernel: '/k/vmlinuz' };
    expect(toEditPatch(k, config)).toEqual({ ok: true, value: { kernel: '/k/vmlinuz', initrd: null, append: '', iso: null } });
    const none = { ...formFromConfig(config), bootSource: 'none' as const };
    expect(toEditPatch(none, config)).toEqual({ ok: true, value: {} });
    const withKernel = VmConfig.parse({ ...config, kernel: { path: '/k/vmlinuz' } });
    expect(toEditPatch({ ...formFromConfig(withKernel), bootSource: 'iso', iso: '' }, withKernel)).toEqual({ ok: true, value: { kernel: null } });
  });
  it('boot options: the boot order, boot menu, Secure Boot and TPM are sent when changed', () => {
    expect(formFromConfig(config)).toMatchObject({ bootOrder: ['disk', 'cd'], bootMenu: false, secureBoot: false, tpm: false });
    const v = { ...formFromConfig(config), bootOrder: ['cd', 'disk', 'net'] as const, bootMenu: true, tpm: true };
    expect(toEditPatch(v, config)).toEqual({ ok: true, value: { bootOrder: ['cd', 'disk', 'net'], bootMenu: true, tpm: true } });
    const sb = { ...formFromConfig(config), secureBoot: true, firmware: 'uefi' as const };
    expect(toEditPatch(sb, config)).toEqual({ ok: true, value: { firmware: 'uefi', secureBoot: true } });
    const sbBios = { ...formFromConfig(config), secureBoot: true };
    expect(toEditPatch(sbBios, config)).toEqual({ ok: false, errors: { firmware: 'Secure Boot needs UEFI firmware: choose UEFI.' } });
    const empty = { ...formFromConfig(config), bootOrder: [] };
    expect(toEditPatch(empty, config)).toEqual({ ok: false, errors: { form: 'Choose at least one device to boot from.' } });
  });
  it('the boot order list: checked kinds first in order, moved up and down, turned on and off', () => {
    expect(bootOrderRows(['disk', 'cd'])).toEqual([
      { device: 'disk', enabled: true },
      { device: 'cd', enabled: true },
      { device: 'net', enabled: false },
    ]);
    expect(moveBootDevice(['disk', 'cd'], 'cd', -1)).toEqual(['cd', 'disk']);
    expect(moveBootDevice(['disk', 'cd'], 'disk', -1)).toEqual(['disk', 'cd']);
    expect(moveBootDevice(['disk', 'cd'], 'cd', 1)).toEqual(['disk', 'cd']);
    expect(toggleBootDevice(['disk', 'cd'], 'net', true)).toEqual(['disk', 'cd', 'net']);
    expect(toggleBootDevice(['disk', 'cd'], 'disk', false)).toEqual(['cd']);
    // A kind turned off keeps its place in the list and comes back there.
    expect(bootOrderRows(toggleBootDevice(['disk', 'cd', 'net'], 'cd', false)).map((r) => r.device)).toEqual(['disk', 'net', 'cd']);
  });
  it('validates edits like creation', () => {
    const r = toEditPatch({ ...formFromConfig(config), memory: 'x', name: '' }, config);
    expect(r.ok ? null : r.errors).toEqual({ memory: 'Memory must be a size such as 2048, 512M or 2G.', name: 'Name is required.' });
  });
});

describe('port forwards in the form', () => {
  const valid: VmFormValues = { ...DEFAULT_VM_FORM, name: 'web', iso: '/isos/x.iso' };

  it('turns "tcp:2222:22, udp:5353:53" into forwards, and refuses malformed ones next to the field', () => {
    const ok = toCreateSpec({ ...valid, forwards: 'tcp:2222:22, udp:5353:53' });
    expect(ok.ok && ok.value.forwards).toEqual([
      { protocol: 'tcp', hostPort: 2222, guestPort: 22 },
      { protocol: 'udp', hostPort: 5353, guestPort: 53 },
    ]);
    const bad = toCreateSpec({ ...valid, forwards: 'ssh' });
    expect(!bad.ok && bad.errors.forwards).toMatch(/"ssh" is not a port forward/);
    const noNet = toCreateSpec({ ...valid, network: false, forwards: 'tcp:2222:22' });
    expect(!noNet.ok && noNet.errors.forwards).toBe('Port forwards need networking. Turn Network on.');
  });

  it('lets Settings clear the forwards of a VM that has them', () => {
    const c = VmConfig.parse({ ...config, network: { ...config.network, forwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] } });
    const form = formFromConfig(c);
    expect(form.forwards).toBe('tcp:2222:22');
    const patch = toEditPatch({ ...form, network: false, forwards: '' }, c);
    expect(patch.ok && patch.value).toEqual({ net: 'none', forwards: [] });
    // Turning Network off while keeping forwards: the same rule, on the forwards field.
    const kept = toEditPatch({ ...form, network: false }, c);
    expect(!kept.ok && kept.errors.forwards).toBe('Port forwards need networking. Turn Network on.');
  });
});

describe('paths in the form', () => {
  it('asks for absolute paths: a relative one would resolve against whichever engine serves the call', () => {
    const r = toCreateSpec({ ...DEFAULT_VM_FORM, name: 'x', iso: '../../etc/passwd' });
    expect(!r.ok && r.errors.iso).toMatch(/absolute path/);
  });
});
