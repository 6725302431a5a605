/**
 * The first-run facts of the host report (`setup`): which package manager, the exact install
 * command, the kvm group fix, the macOS HVF explanation. Pure: capabilities, /etc/os-release and
 * /dev/kvm are injected; one case probes this host for real with an empty VIVARIUM_QEMU_DIR.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HostCapabilities } from '../../common/models/host';
import { qemuDirAdvice } from '../../common/models/host-report';
import { makeTestHome } from '../../test-support/home';
import type { HostFacts } from './host-probe';
import { KVM_DEVICE, KVM_PVM_MODULE, distroFromOsRelease, hostReport, installCommandLine, kvmPermissionFix, packageManagerFor, probeHost } from './host-probe';

const LAYOUT = { home: '/home/u/.local/share/vivarium', runtimeRoot: '/run/user/1000/vivarium/abcd1234' };
const OS_RELEASE = {
  debian: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
  ubuntu: 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n',
  mint: 'NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n',
  fedora: 'NAME="Fedora Linux"\nID=fedora\n',
  rocky: 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n',
  arch: 'NAME="Arch Linux"\nID=arch\n',
  manjaro: 'NAME="Manjaro Linux"\nID=manjaro\nID_LIKE=arch\n',
  tumbleweed: 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n',
  leap: 'NAME="openSUSE Leap"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\n',
  nixos: 'NAME=NixOS\nID=nixos\n',
};

const NO_KVM: HostFacts = { exists: async () => false, openReadWrite: async () => 'ENOENT', sysctl: async () => null, readText: async () => null };
function kvmFacts(open: string | null, pvm = false): HostFacts {
  return {
    exists: async (p) => p === KVM_DEVICE || (pvm && p === KVM_PVM_MODULE),
    openReadWrite: async (p) => (p === KVM_DEVICE ? open : 'ENOENT'),
    sysctl: async () => null,
    readText: async () => null,
  };
}

const FW = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', codeFormat: 'raw', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd', varsFormat: 'raw', secureBoot: false, source: 'x' } as const;
const QEMU = { arch: 'x86_64', path: '/usr/bin/qemu-system-x86_64', version: { major: 7, minor: 2, micro: 0 }, accels: ['kvm', 'tcg'] } as const;

function caps(over: Partial<HostCapabilities> = {}): HostCapabilities {
  return {
    os: 'linux',
    hostArch: 'x86_64',
    qemuImg: null,
    binaries: {},
    accels: {},
    firmware: {},
    seccomp: false,
    nativeAio: true,
    ...over,
  } as HostCapabilities;
}

describe('package manager from /etc/os-release (ID, then ID_LIKE)', () => {
  it('maps the families', () => {
    const pm = (text: string) => packageManagerFor('linux', distroFromOsRelease(text));
    expect(pm(OS_RELEASE.debian)).toBe('apt');
    expect(pm(OS_RELEASE.ubuntu)).toBe('apt');
    expect(pm(OS_RELEASE.mint)).toBe('apt');
    expect(pm(OS_RELEASE.fedora)).toBe('dnf');
    expect(pm(OS_RELEASE.rocky)).toBe('dnf');
    expect(pm(OS_RELEASE.arch)).toBe('pacman');
    expect(pm(OS_RELEASE.manjaro)).toBe('pacman');
    expect(pm(OS_RELEASE.tumbleweed)).toBe('zypper');
    expect(pm(OS_RELEASE.leap)).toBe('zypper');
    expect(pm(OS_RELEASE.nixos)).toBeNull();
    expect(packageManagerFor('darwin', 'other')).toBe('brew');
    expect(packageManagerFor('win32', 'other')).toBeNull();
  });
});

describe('install command', () => {
  const everything = [{ kind: 'system', arch: 'x86_64' }, { kind: 'img' }, { kind: 'firmware', arch: 'x86_64' }] as const;
  it('names the exact packages for each package manager', () => {
    const cmd = (release: string) => installCommandLine('linux', distroFromOsRelease(release), everything, 'x86_64');
    expect(cmd(OS_RELEASE.debian)).toBe('sudo apt install qemu-system-x86 qemu-utils ovmf');
    expect(cmd(OS_RELEASE.fedora)).toBe('sudo dnf install qemu-kvm qemu-img edk2-ovmf');
    expect(cmd(OS_RELEASE.arch)).toBe('sudo pacman -S qemu-full edk2-ovmf');
    expect(cmd(OS_RELEASE.tumbleweed)).toBe('sudo zypper install qemu-x86 qemu-tools qemu-ovmf-x86_64');
    expect(cmd(OS_RELEASE.nixos)).toBeNull();
    expect(installCommandLine('darwin', 'other', everything, 'aarch64')).toBe('brew install qemu');
    expect(installCommandLine('linux', 'debian', [{ kind: 'system', arch: 'aarch64' }, { kind: 'firmware', arch: 'aarch64' }], 'aarch64')).toBe(
      'sudo apt install qemu-system-arm qemu-efi-aarch64',
    );
  });

  it('is in the report when QEMU is missing, naming only what is missing', async () => {
    const r = await hostReport(caps({ firmware: { x86_64: FW } }), LAYOUT, { osRelease: OS_RELEASE.ubuntu, facts: NO_KVM });
    expect(r.setup).toEqual({ qemuFound: false, qemuDir: null, packageManager: 'apt', installCommand: 'sudo apt install qemu-system-x86 qemu-utils', kvmPermission: null, hvf: null });
    const fedora = await hostReport(caps(), LAYOUT, { osRelease: OS_RELEASE.fedora, facts: NO_KVM });
    expect(fedora.setup.installCommand).toBe('sudo dnf install qemu-kvm qemu-img edk2-ovmf');
    const mac = await hostReport(caps({ os: 'darwin', hostArch: 'aarch64' }), LAYOUT, { facts: NO_KVM });
    expect(mac.setup).toMatchObject({ qemuFound: false, packageManager: 'brew', installCommand: 'brew install qemu' });
  });

  it('is null when everything is there', async () => {
    const full = caps({ qemuImg: '/usr/bin/qemu-img', binaries: { x86_64: QEMU }, firmware: { x86_64: FW }, accels: { x86_64: [{ accel: 'kvm', usable: true, reason: 'ok' }] } });
    const r = await hostReport(full, LAYOUT, { osRelease: OS_RELEASE.debian, facts: kvmFacts(null) });
    expect(r.setup).toEqual({ qemuFound: true, qemuDir: null, packageManager: 'apt', installCommand: null, kvmPermission: null, hvf: null });
  });
});

describe('KVM present but not permitted', () => {
  it('gives the kvm group fix for EACCES/EPERM only', async () => {
    for (const err of ['EACCES', 'EPERM']) {
      expect(await kvmPermissionFix('linux', kvmFacts(err))).toEqual({
        command: 'sudo usermod -aG kvm $USER',
        explanation: expect.stringMatching(/may not open \/dev\/kvm.*kvm group.*log out and back in/),
      });
    }
    expect(await kvmPermissionFix('linux', kvmFacts(null))).toBeNull();
    expect(await kvmPermissionFix('linux', kvmFacts('EBUSY'))).toBeNull();
    expect(await kvmPermissionFix('linux', NO_KVM)).toBeNull();
    // kvm_pvm is refused for other reasons; joining a group would not help.
    expect(await kvmPermissionFix('linux', kvmFacts('EACCES', true))).toBeNull();
    expect(await kvmPermissionFix('darwin', kvmFacts('EACCES'))).toBeNull();
    const r = await hostReport(caps(), LAYOUT, { osRelease: OS_RELEASE.debian, facts: kvmFacts('EACCES') });
    expect(r.setup.kvmPermission?.command).toBe('sudo usermod -aG kvm $USER');
  });
});

describe('macOS HVF', () => {
  it('explains the hypervisor entitlement when HVF is not usable, and says nothing when it is', async () => {
    const hvfCaps = (usable: boolean) =>
      caps({
        os: 'darwin',
        hostArch: 'aarch64',
        qemuImg: '/opt/homebrew/bin/qemu-img',
        binaries: { aarch64: { ...QEMU, arch: 'aarch64', path: '/opt/homebrew/bin/qemu-system-aarch64', accels: ['hvf', 'tcg'] } },
        accels: { aarch64: [{ accel: 'hvf', usable, reason: usable ? 'ok' : 'This QEMU build has no HVF support: reinstall it with `brew reinstall qemu`.' }] },
      });
    const broken = await hostReport(hvfCaps(false), LAYOUT, { facts: NO_KVM });
    expect(broken.setup.hvf?.explanation).toMatch(/com\.apple\.security\.hypervisor.*Homebrew.*HV_DENIED.*brew reinstall qemu/);
    expect(broken.setup.qemuFound).toBe(true);
    expect((await hostReport(hvfCaps(true), LAYOUT, { facts: NO_KVM })).setup.hvf).toBeNull();
  });
});

describe('this host with VIVARIUM_QEMU_DIR pointing at an empty folder', () => {
  it('vivarium doctor leads with VIVARIUM_QEMU_DIR, not with "QEMU is not installed" (missing folder too)', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-noqemu-'));
    const home = makeTestHome();
    try {
      for (const dir of [empty, path.join(empty, 'nope')]) {
        const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', '..', 'bin', 'vivarium.js'), 'doctor'], {
          env: { ...home.env, VIVARIUM_QEMU_DIR: dir },
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(r.status, r.stderr).toBe(1);
        expect(r.stdout).not.toContain('QEMU is not installed');
        expect(r.stdout).toContain(`QEMU was looked for only in VIVARIUM_QEMU_DIR=${dir}, which ${dir === empty ? 'holds no qemu-system-' : 'names a folder that does not exist'}`);
        expect(r.stdout).toContain('Unset VIVARIUM_QEMU_DIR');
        const report = JSON.parse(
          spawnSync(process.execPath, [path.join(__dirname, '..', '..', '..', 'bin', 'vivarium.js'), 'doctor', '--json'], { env: { ...home.env, VIVARIUM_QEMU_DIR: dir }, encoding: 'utf8', timeout: 60_000 }).stdout,
        ) as { setup: { qemuDir: { path: string; exists: boolean } | null } };
        expect(report.setup.qemuDir).toMatchObject({ path: dir, exists: dir === empty });
      }
    } finally {
      await home.cleanup();
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('finds no QEMU and gives the install command for this OS', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-noqemu-'));
    try {
      const probed = await probeHost({ env: { ...process.env, VIVARIUM_QEMU_DIR: empty } });
      const release = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : null;
      const r = await hostReport(probed, LAYOUT);
      expect(r.setup.qemuFound).toBe(false);
      // The first fix is the variable, not an install.
      expect(r.setup.qemuDir).toEqual({ path: empty, exists: true, missing: ['qemu-system-x86_64', 'qemu-img'] });
      expect(qemuDirAdvice(r.setup.qemuDir!)).toBe(
        `QEMU was looked for only in VIVARIUM_QEMU_DIR=${empty}, which holds no qemu-system-x86_64 and no qemu-img. ` +
          'Unset VIVARIUM_QEMU_DIR (then start Vivarium again) to use the QEMU installed on this machine, or point it at a folder with qemu-system-* and qemu-img.',
      );
      if (distroFromOsRelease(release) === 'debian') {
        expect(r.setup.packageManager).toBe('apt');
        expect(r.setup.installCommand).toMatch(/^sudo apt install qemu-system-x86 qemu-utils( ovmf)?$/);
      }
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
