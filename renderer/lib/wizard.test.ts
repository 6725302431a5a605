import { describe, expect, it } from 'vitest';
import { hostDefaults, type HostDefaults, type HostFacts } from '../../main/common/models/vm-settings';
import {
  applyPreset,
  downloadFailure,
  expandHomePaths,
  hasHomePath,
  firstStepWithError,
  formatDownload,
  formatDuration,
  guessPreset,
  INITIAL_WIZARD,
  parsePackages,
  refusalErrors,
  sandboxSummary,
  shellLine,
  stepErrors,
  suggestName,
  toWizardSpec,
  wizardFieldOf,
  type WizardValues,
} from './wizard';

const facts: HostFacts = {
  os: 'linux',
  arch: 'x86_64',
  binaries: ['x86_64'],
  firmware: ['x86_64'],
  accels: { x86_64: [{ accel: 'tcg', usable: true, reason: 'emulation.' }] },
  memoryMiB: 8192,
  cores: 4,
  maxCpus: { x86_64: 255 },
};
const big: HostDefaults = hostDefaults(facts);
const small: HostDefaults = hostDefaults({ ...facts, memoryMiB: 3072, cores: 1 });
const arm: HostDefaults = hostDefaults({ ...facts, arch: 'aarch64', binaries: ['aarch64'], firmware: ['aarch64'], maxCpus: { aarch64: 512 } });

/** A wizard filled as far as the summary for an ISO install. */
function filled(patch: Partial<WizardValues> = {}): WizardValues {
  return { ...INITIAL_WIZARD, ...applyPreset('debian', big).values, preset: 'debian', name: 'deb', iso: '/home/me/debian.iso', ...patch };
}

describe('presets', () => {
  it('Windows 11 gets UEFI, Secure Boot, a TPM, 4 GiB and 64 GiB, and says what it set', () => {
    const p = applyPreset('windows11', big);
    expect(p.values).toEqual({ cpus: '2', memory: '4G', firmware: 'uefi', tpm: true, secureBoot: true, diskGiB: '64', diskBus: 'sata' });
    expect(p.shown).toContainEqual({ label: 'Disk bus', value: 'SATA' });
    expect(p.shown).toContainEqual({ label: 'TPM 2.0', value: 'on' });
    expect(p.shown).toContainEqual({ label: 'Secure Boot', value: 'on' });
    // Windows has no virtio drivers on its installer: a SATA disk, and the wizard says so for the network.
    expect(p.notes.join(' ')).toMatch(/system disk is SATA .* virtio-win/);
  });

  it('sizes to the host: CPUs to its cores, memory to half of it but not below the minimum', () => {
    const deb = applyPreset('debian', small);
    expect(deb.values.cpus).toBe('1');
    expect(deb.values.memory).toBe('1536M');
    expect(deb.notes.join(' ')).toMatch(/this host has 1/);
    // Fedora needs 2 GiB: more than half of 3 GiB, still within the host.
    expect(applyPreset('fedora', small).values.memory).toBe('2G');
    // Windows 11's 4 GiB is more than the host has: the host's memory, and a note.
    const win = applyPreset('windows11', small);
    expect(win.values.memory).toBe('3G');
    expect(win.notes.join(' ')).toMatch(/needs at least 4 GiB/);
  });

  it('gives UEFI where BIOS cannot run (aarch64), and says so', () => {
    const p = applyPreset('debian', arm);
    expect(p.values.firmware).toBe('uefi');
    expect(p.notes.join(' ')).toMatch(/prefers BIOS firmware, which this host cannot give a aarch64 VM; it gets UEFI/);
  });

  it("uses a catalog entry's hints for its own preset", () => {
    const p = applyPreset('debian', big, { preset: 'debian', minMemoryMiB: 1024, recommendedMemoryMiB: 3072, recommendedDiskGiB: 30, recommendedCpus: 1, firmware: 'uefi', diskBus: 'virtio', nic: 'virtio-net-pci' });
    expect(p.values).toMatchObject({ cpus: '1', memory: '3G', diskGiB: '30', firmware: 'uefi' });
  });

  it('guesses the preset from a file name', () => {
    expect(guessPreset('debian-13.1.0-amd64-netinst.iso')).toBe('debian');
    expect(guessPreset('Win11_24H2_English_x64.iso')).toBe('windows11');
    expect(guessPreset('archlinux-2025.01.01-x86_64.iso')).toBe('arch');
    expect(guessPreset('Fedora-Workstation-Live-x86_64-41.iso')).toBe('fedora');
    expect(guessPreset('memtest86+x64.iso')).toBe('other');
    expect(guessPreset('search.iso')).toBe('other');
  });
});

describe('step checks', () => {
  it('step 1 asks for the file of the chosen source, as a full path', () => {
    expect(stepErrors('source', INITIAL_WIZARD, big)).toEqual({ iso: 'Choose an ISO image (Browse, or type its full path).' });
    expect(stepErrors('source', { ...INITIAL_WIZARD, iso: 'debian.iso' }, big).iso).toMatch(/full path/);
    expect(stepErrors('source', { ...INITIAL_WIZARD, source: 'kernel' }, big)).toHaveProperty('kernel');
    expect(stepErrors('source', { ...INITIAL_WIZARD, source: 'import' }, big)).toHaveProperty('importPath');
  });

  it('a catalog OS must be chosen and downloaded before Next', () => {
    expect(stepErrors('source', { ...INITIAL_WIZARD, source: 'catalog' }, big)).toEqual({ catalog: 'Choose an operating system to download.' });
    expect(stepErrors('source', { ...INITIAL_WIZARD, source: 'catalog', catalogId: 'debian-13-netinst-x86_64' }, big).catalog).toMatch(/Download it first/);
    expect(stepErrors('source', { ...INITIAL_WIZARD, source: 'catalog', catalogId: 'x', downloadedPath: '/lib/media/d.iso' }, big)).toEqual({});
  });

  it('a sandbox checks its user, host name and packages on their fields', () => {
    const e = stepErrors('source', { ...INITIAL_WIZARD, source: 'cloud', cloudImage: '/img/debian.qcow2', user: 'Root', hostname: '-x', packages: 'git, rm;-rf' }, big);
    expect(Object.keys(e).sort()).toEqual(['hostname', 'packages', 'user']);
    expect(e.packages).toMatch(/"rm;-rf" is not a package name/);
  });

  it('step 2 checks the name, numbers and the host limits', () => {
    const e = stepErrors('os', filled({ name: '', memory: 'lots', cpus: '300' }), big);
    expect(e.name).toBe('Name is required.');
    expect(e.memory).toMatch(/Memory must be a size/);
    expect(e.cpus).toBeUndefined();
    expect(stepErrors('os', filled({ cpus: '300' }), big).cpus).toMatch(/255/);
    expect(stepErrors('os', filled({ secureBoot: true, firmware: 'bios' }), big).secureBoot).toMatch(/needs UEFI/);
    expect(stepErrors('os', filled({ network: false, forwards: 'tcp:2222:22' }), big).forwards).toMatch(/need networking/);
  });

  it('step 3: a new disk needs a size; an existing one a path', () => {
    expect(stepErrors('storage', filled({ diskGiB: 'big' }), big)).toHaveProperty('diskGiB');
    expect(stepErrors('storage', filled({ diskMode: 'existing' }), big)).toHaveProperty('diskPath');
    expect(stepErrors('storage', filled({ diskMode: 'none' }), big)).toEqual({});
    // Imports bring their own disks: nothing to check.
    expect(stepErrors('storage', filled({ source: 'import', diskGiB: 'big' }), big)).toEqual({});
  });
});

describe('toWizardSpec', () => {
  it('an ISO install with the preset hardware', () => {
    const r = toWizardSpec(filled({ tpm: true, forwards: 'tcp:8080:80' }), big);
    expect(r).toEqual({
      ok: true,
      spec: { name: 'deb', os: 'Debian', cpus: 2, memoryMiB: 2048, net: 'user', display: 'vnc', firmware: 'bios', tpm: true, forwards: [{ protocol: 'tcp', hostPort: 8080, guestPort: 80 }], diskSizeBytes: 20 * 1024 ** 3, iso: '/home/me/debian.iso' },
    });
  });

  it('"Show boot menu" is sent only when checked', () => {
    const on = toWizardSpec(filled({ bootMenu: true }), big);
    expect(on.ok && on.spec.bootMenu).toBe(true);
    const off = toWizardSpec(filled({}), big);
    expect(off.ok && 'bootMenu' in off.spec).toBe(false);
  });

  it('a Windows install gets its preset bus; a sandbox stays on virtio', () => {
    const win = toWizardSpec(filled({ ...applyPreset('windows11', big).values, preset: 'windows11' }), big);
    expect(win.ok && win.spec).toMatchObject({ diskBus: 'sata', tpm: true, secureBoot: true, firmware: 'uefi', diskSizeBytes: 64 * 1024 ** 3, nicModel: 'e1000e' });
    const cloud = toWizardSpec(filled({ source: 'cloud', cloudImage: '/img/x.qcow2', diskBus: 'sata' }), big);
    expect(cloud.ok && cloud.spec.diskBus).toBeUndefined();
    const none = toWizardSpec(filled({ diskMode: 'none', diskBus: 'nvme' }), big);
    expect(none.ok && none.spec.diskBus).toBeUndefined();
  });

  it('a downloaded OS boots the verified file', () => {
    const r = toWizardSpec(filled({ source: 'catalog', catalogId: 'debian-13', downloadedPath: '/lib/media/debian.iso', iso: '' }), big);
    expect(r.ok && r.spec.iso).toBe('/lib/media/debian.iso');
  });

  it('an import sends no disk, a sandbox its cloud-init settings', () => {
    const imp = toWizardSpec(filled({ source: 'import', importPath: '/home/me/app.ova', importMode: 'copy' }), big);
    expect(imp.ok && imp.spec).toMatchObject({ import: { path: '/home/me/app.ova', mode: 'copy' } });
    expect(imp.ok && 'diskSizeBytes' in imp.spec).toBe(false);
    const cloud = toWizardSpec(filled({ source: 'cloud', preset: 'alpine', cloudImage: '/img/alpine.qcow2', user: 'dev', packages: 'git curl', hostname: 'box', diskGiB: '8', shareFolder: '/home/me/src', shareReadOnly: true }), big);
    expect(cloud.ok && cloud.spec).toMatchObject({ diskSizeBytes: 8 * 1024 ** 3, cloud: { image: '/img/alpine.qcow2', user: 'dev', hostname: 'box', packages: ['git', 'curl'], shell: '/bin/sh', shares: [{ hostPath: '/home/me/src', readOnly: true }] } });
    expect(stepErrors('source', filled({ source: 'cloud', cloudImage: '/img/a.qcow2', shareFolder: 'src' }), big).shareFolder).toMatch(/full path of the folder to share/);
    expect(wizardFieldOf('cloud.shares.0.hostPath', 'cloud')).toBe('shareFolder');
    expect(cloud.ok && cloud.spec.iso).toBeUndefined();
  });

  it('a sandbox sends its password file and user-data file as paths, only when given, each checked on its field', () => {
    const base = { source: 'cloud', cloudImage: '/img/debian.qcow2' } as const;
    const r = toWizardSpec(filled({ ...base, passwordFile: ' /home/me/.vm-password ', userDataFile: '/home/me/user-data.yaml' }), big);
    expect(r.ok && r.spec.cloud).toMatchObject({ passwordFile: '/home/me/.vm-password', userDataFile: '/home/me/user-data.yaml' });
    // Left empty: neither is sent (no password login; only Vivarium's user-data).
    const none = toWizardSpec(filled(base), big);
    expect(none.ok && none.spec.cloud).not.toHaveProperty('passwordFile');
    expect(none.ok && none.spec.cloud).not.toHaveProperty('userDataFile');
    // A relative path is refused on its own field, on the first step.
    const bad = toWizardSpec(filled({ ...base, passwordFile: 'pw.txt', userDataFile: 'user-data' }), big);
    expect(bad).toMatchObject({ ok: false, step: 'source', errors: { passwordFile: expect.stringMatching(/full path of the password file/), userDataFile: expect.stringMatching(/full path of the user-data file/) } });
    // Other sources never send them.
    const iso = toWizardSpec(filled({ passwordFile: '/home/me/pw', userDataFile: '/home/me/ud' }), big);
    expect(iso.ok && iso.spec.cloud).toBeUndefined();
  });

  it("the summary names a sandbox's files (the password file by its path only) and what an empty field means", () => {
    const rows = Object.fromEntries(sandboxSummary(filled({ source: 'cloud', cloudImage: '/img/d.qcow2', passwordFile: '/home/me/pw', userDataFile: '/home/me/ud.yaml', shareFolder: '/home/me/src', shareReadOnly: true, packages: 'git curl' })));
    expect(rows).toEqual({
      User: 'your user name on this computer (or "vivarium")',
      'SSH key': 'a new key pair made for this VM',
      Password: 'from /home/me/pw (not shown)',
      'Extra user-data': '/home/me/ud.yaml',
      Packages: 'git, curl',
      'Shared folder': '/home/me/src (read-only), mounted under /mnt',
    });
    expect(Object.fromEntries(sandboxSummary(filled({ source: 'cloud', cloudImage: '/img/d.qcow2' }))).Password).toBe('none: password login stays off');
    expect(sandboxSummary(filled({}))).toEqual([]);
  });

  it('a kernel boot, no disk', () => {
    const r = toWizardSpec(filled({ source: 'kernel', iso: '', kernel: '/boot/vmlinuz', initrd: '/boot/initrd.img', append: 'console=ttyS0', diskMode: 'none' }), big);
    expect(r.ok && r.spec).toMatchObject({ kernel: '/boot/vmlinuz', initrd: '/boot/initrd.img', append: 'console=ttyS0', diskSizeBytes: 0 });
  });

  it('says which step to go back to', () => {
    const r = toWizardSpec(filled({ name: '', diskGiB: 'x' }), big);
    expect(r).toMatchObject({ ok: false, step: 'os' });
    expect(!r.ok && Object.keys(r.errors).sort()).toEqual(['diskGiB', 'name']);
    expect(firstStepWithError({ diskGiB: 'x' })).toBe('storage');
  });
});

describe('engine refusals', () => {
  it('land on the field they concern, and on its step', () => {
    expect(refusalErrors({ message: 'ISO not found: /x.iso', field: 'iso' }, 'iso')).toEqual({ errors: { iso: 'ISO not found: /x.iso' }, step: 'source' });
    expect(refusalErrors({ message: 'ISO not found', field: 'iso' }, 'catalog').errors).toHaveProperty('catalog');
    expect(refusalErrors({ message: 'Bad', fields: [{ field: 'memoryMiB', message: 'memory must be at most 8 GiB' }, { field: 'name', message: 'taken' }] }, 'iso')).toEqual({
      errors: { memory: 'Memory must be at most 8 GiB.', name: 'Taken.' },
      step: 'os',
    });
    // Imports and cloud images carry their field in `data`.
    expect(refusalErrors({ message: 'x.ova is damaged.', data: { field: 'import' } }, 'import')).toEqual({ errors: { importPath: 'x.ova is damaged.' }, step: 'source' });
    expect(refusalErrors({ message: 'QEMU crashed' }, 'iso')).toEqual({ errors: { form: 'QEMU crashed' }, step: 'summary' });
  });

  it('maps field paths', () => {
    expect(wizardFieldOf('cloud.user', 'cloud')).toBe('user');
    expect(wizardFieldOf('cloud.image', 'cloud')).toBe('cloudImage');
    expect(wizardFieldOf('diskSizeBytes', 'iso')).toBe('diskGiB');
    expect(wizardFieldOf('forwards.0.hostPort', 'iso')).toBe('forwards');
    expect(wizardFieldOf(undefined, 'iso')).toBe('form');
    expect(wizardFieldOf('cloud.passwordFile', 'cloud')).toBe('passwordFile');
    expect(wizardFieldOf('cloud.userDataFile', 'cloud')).toBe('userDataFile');
  });

  it("puts the engine's checks of a sandbox's files on their fields (the seed's own field names)", () => {
    // As main/services/provisioning/provision.ts names them when it reads the files at create.
    expect(refusalErrors({ message: 'The user-data file is already MIME multi-part.', field: 'extraUserData' }, 'cloud')).toEqual({ errors: { userDataFile: 'The user-data file is already MIME multi-part.' }, step: 'source' });
    expect(refusalErrors({ message: 'The password file is empty.', field: 'passwordFile' }, 'cloud')).toEqual({ errors: { passwordFile: 'The password file is empty.' }, step: 'source' });
    expect(refusalErrors({ message: 'x does not exist.', data: { field: 'cloud.userDataFile' } }, 'cloud').errors).toEqual({ userDataFile: 'x does not exist.' });
    expect(wizardFieldOf('sshPublicKeyFile', 'cloud')).toBe('sshKeyFile');
    expect(wizardFieldOf('user.name', 'cloud')).toBe('user');
    expect(wizardFieldOf('shares', 'cloud')).toBe('shareFolder');
    // Outside a sandbox those names mean nothing to the wizard.
    expect(wizardFieldOf('passwordFile', 'iso')).toBe('form');
  });
});

describe('words', () => {
  it('a download in progress: bytes, rate, time left', () => {
    const mib = 1024 * 1024;
    expect(formatDownload({ state: 'downloading', receivedBytes: 1.5 * mib, totalBytes: 4 * mib, bytesPerSecond: 512 * 1024, secondsLeft: 5, error: null })).toBe('Downloading: 1.5 MiB of 4 MiB (37%) · 512 KiB/s · 5 s left');
    expect(formatDownload({ state: 'paused', receivedBytes: mib, totalBytes: 4 * mib, bytesPerSecond: 0, secondsLeft: null, error: null })).toBe('Paused at 1 MiB of 4 MiB (25%).');
    expect(formatDownload({ state: 'failed', receivedBytes: 0, totalBytes: null, bytesPerSecond: 0, secondsLeft: null, error: 'The checksum did not match.' })).toBe('The checksum did not match.');
    expect(formatDuration(130)).toBe('2 min 10 s');
    expect(formatDuration(7300)).toBe('2 h 1 min');
  });

  it('the command line as one pasteable line', () => {
    expect(shellLine(['/usr/bin/qemu-system-x86_64', '-name', "my vm's", '-m', '256'])).toBe(`/usr/bin/qemu-system-x86_64 -name 'my vm'\\''s' -m 256`);
  });

  it('parses packages and suggests names', () => {
    expect(parsePackages(' git,curl  vim ')).toEqual({ ok: true, value: ['git', 'curl', 'vim'] });
    expect(suggestName({ ...INITIAL_WIZARD, iso: '/d/debian-13.1.0-amd64-netinst.iso' }, null)).toBe('debian-13.1.0-amd64-netinst');
  });
});

describe('"~" paths and disk size messages (tester-9 #10, #11)', () => {
  it('expands "~" and "~/…" in path fields to the home folder, and only those', () => {
    const v: WizardValues = { ...INITIAL_WIZARD, iso: '~/Downloads/grub rescue (1).iso', kernel: '/boot/vmlinuz', sshKeyFile: '~' };
    expect(hasHomePath(v)).toBe(true);
    expect(expandHomePaths(v, '/home/ann/')).toEqual({ iso: '/home/ann/Downloads/grub rescue (1).iso', sshKeyFile: '/home/ann' });
    expect(hasHomePath({ ...INITIAL_WIZARD, iso: '~bob/x.iso' })).toBe(false);
    expect(hasHomePath({ ...INITIAL_WIZARD, iso: '/x/~/y.iso' })).toBe(false);
  });
  it('a "~" path not expanded asks for the full path or Browse', () => {
    expect(stepErrors('source', { ...INITIAL_WIZARD, source: 'iso', iso: '~/x.iso' }, null).iso).toBe('Type the full path of an ISO image, starting with / (not ~), or use Browse….');
  });
  it('one message for a disk size that is not a number and for 0', () => {
    const at = (diskGiB: string): string | undefined => stepErrors('storage', { ...INITIAL_WIZARD, source: 'iso', diskMode: 'new', diskGiB }, null).diskGiB;
    const want = 'A new disk needs a size in GiB above 0, such as 20; choose "No disk" for none.';
    expect(at('-5')).toBe(want);
    expect(at('abc')).toBe(want);
    expect(at('0')).toBe(want);
    expect(at('20')).toBeUndefined();
  });
});

describe('downloadFailure (tester-9 #13)', () => {
  it('a checksum mismatch: a plain first line, the hashes only in the details', () => {
    const engine = `badsum.iso did not match its SHA-256 checksum from SHA256SUMS at http://127.0.0.1:8792/SHA256SUMS (checksum not signed) (expected ${'1'.repeat(64)}, got ${'8'.repeat(64)}), so it was deleted. The file was damaged or altered on the way; download it again, from another mirror if it happens again.`;
    const f = downloadFailure(engine);
    expect(f.headline).toBe('The download was damaged and has been deleted. Download it again; if it happens again, the mirror may be broken.');
    expect(f.headline).not.toMatch(/[0-9a-f]{16}/);
    expect(f.details).toBe(engine);
  });
  it('other failures are shown as they are', () => {
    expect(downloadFailure('The server answered 404 Not Found.')).toEqual({ headline: 'The server answered 404 Not Found.', details: null });
  });
});

describe('the preset line follows the architecture (tester-9 #23)', () => {
  it('aarch64 has no BIOS: a BIOS preset shows UEFI there', () => {
    const line = (d: HostDefaults): string | undefined => applyPreset('debian', d, null).shown.find((c) => c.label === 'Firmware')?.value;
    expect(line(big)).toBe('BIOS');
    expect(line(arm)).toBe('UEFI');
  });
});
