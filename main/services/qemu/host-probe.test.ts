import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostCapabilities } from '../../common/models/host';
import { pickAccel } from '../../common/models/host';
import type { HostFacts, ProbeProblem } from './host-probe';
import {
  KVM_DEVICE,
  KVM_MODULE,
  KVM_PVM_MODULE,
  accelStatuses,
  distroFromOsRelease,
  hostReport,
  kvmStatus,
  parseAccelHelp,
  parseQemuVersion,
  probeHost,
  realHostFacts,
} from './host-probe';

const LAYOUT = { home: '/home/u/.local/share/vivarium', runtimeRoot: '/run/user/1000/vivarium/abcd1234' };
const DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n';

/** A Linux host with the given KVM situation; everything else as real. */
function linuxFacts(kvm: { module?: boolean; pvm?: boolean; open?: string | null }): HostFacts {
  const present = new Set<string>();
  if (kvm.module ?? true) present.add(KVM_MODULE);
  if (kvm.pvm) present.add(KVM_PVM_MODULE);
  if ((kvm.open ?? null) !== 'ENOENT') present.add(KVM_DEVICE);
  return {
    exists: async (p) => (p === KVM_MODULE || p === KVM_PVM_MODULE || p === KVM_DEVICE ? present.has(p) : fs.existsSync(p)),
    openReadWrite: async (p) => (p === KVM_DEVICE ? (kvm.open ?? null) : realHostFacts.openReadWrite(p)),
    sysctl: async () => null,
    readText: realHostFacts.readText,
  };
}

function macFacts(hvSupport: string | null): HostFacts {
  return { exists: async () => false, openReadWrite: async () => 'ENOENT', sysctl: async (n) => (n === 'kern.hv_support' ? hvSupport : null), readText: async () => null };
}

describe('parsers', () => {
  it('reads QEMU version lines', () => {
    expect(parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright')).toEqual({ major: 7, minor: 2, micro: 22 });
    expect(parseQemuVersion('qemu-img version 9.1.0\n')).toEqual({ major: 9, minor: 1, micro: 0 });
    expect(parseQemuVersion('QEMU emulator version 8.0')).toEqual({ major: 8, minor: 0, micro: 0 });
    expect(parseQemuVersion('hello')).toBeNull();
  });

  it('reads -accel help, keeping the accelerators Vivarium knows', () => {
    expect(parseAccelHelp('Accelerators supported in QEMU binary:\ntcg\nkvm\n')).toEqual(['tcg', 'kvm']);
    expect(parseAccelHelp('Accelerators supported in QEMU binary:\ntcg\nhvf\nxen\n')).toEqual(['tcg', 'hvf']);
  });

  it('maps os-release to a package family', () => {
    expect(distroFromOsRelease(DEBIAN)).toBe('debian');
    expect(distroFromOsRelease('ID=linuxmint\nID_LIKE="ubuntu debian"\n')).toBe('debian');
    expect(distroFromOsRelease('ID="rocky"\nID_LIKE="rhel centos fedora"\n')).toBe('fedora');
    expect(distroFromOsRelease('ID=endeavouros\nID_LIKE=arch\n')).toBe('arch');
    expect(distroFromOsRelease('ID=opensuse-tumbleweed\nID_LIKE="opensuse suse"\n')).toBe('suse');
    expect(distroFromOsRelease(null)).toBe('other');
  });
});

describe('accelerator status (simulated hosts)', () => {
  const linux = (facts: HostFacts) => ({ platform: 'linux' as const, hostArch: 'x86_64' as const, facts });

  it('KVM usable when the module is loaded and /dev/kvm opens', async () => {
    expect(await kvmStatus('x86_64', ['tcg', 'kvm'], linux(linuxFacts({})))).toMatchObject({ accel: 'kvm', usable: true });
  });

  it('no /dev/kvm', async () => {
    const s = await kvmStatus('x86_64', ['tcg', 'kvm'], linux(linuxFacts({ open: 'ENOENT' })));
    expect(s.usable).toBe(false);
    expect(s.reason).toMatch(/\/dev\/kvm does not exist/);
  });

  it('kvm module not loaded', async () => {
    const s = await kvmStatus('x86_64', ['tcg', 'kvm'], linux(linuxFacts({ module: false, open: 'ENOENT' })));
    expect(s).toMatchObject({ usable: false });
    expect(s.reason).toMatch(/KVM kernel module not loaded/);
  });

  it('EACCES says to join the kvm group', async () => {
    const s = await kvmStatus('x86_64', ['tcg', 'kvm'], linux(linuxFacts({ open: 'EACCES' })));
    expect(s.usable).toBe(false);
    expect(s.reason).toContain('sudo usermod -aG kvm $USER');
    expect(s.reason).toMatch(/log in again/);
  });

  it('kvm_pvm: listed, not usable, auto picks TCG, a forced kvm still resolves', async () => {
    const accels = await accelStatuses('x86_64', ['tcg', 'kvm'], linux(linuxFacts({ pvm: true })));
    expect(accels.map((a) => [a.accel, a.usable])).toEqual([
      ['kvm', false],
      ['tcg', true],
    ]);
    expect(accels[0]?.reason).toMatch(/kvm_pvm/);
    const caps = { accels: { x86_64: accels } } as unknown as HostCapabilities;
    expect(pickAccel(caps, 'x86_64', 'auto')?.accel).toBe('tcg');
    expect(pickAccel(caps, 'x86_64', 'kvm')).toMatchObject({ accel: 'kvm', usable: false });
  });

  it('KVM never runs a foreign guest arch, nor from a build without it', async () => {
    expect((await kvmStatus('aarch64', ['tcg', 'kvm'], linux(linuxFacts({})))).reason).toMatch(/only x86_64 guests/);
    expect((await kvmStatus('x86_64', ['tcg'], linux(linuxFacts({})))).reason).toMatch(/no KVM support/);
  });

  it('darwin: hvf when kern.hv_support = 1', async () => {
    const ctx = { platform: 'darwin' as const, hostArch: 'aarch64' as const, facts: macFacts('1') };
    const accels = await accelStatuses('aarch64', ['tcg', 'hvf'], ctx);
    expect(accels.map((a) => [a.accel, a.usable])).toEqual([
      ['hvf', true],
      ['tcg', true],
    ]);
    expect(pickAccel({ accels: { aarch64: accels } } as unknown as HostCapabilities, 'aarch64', 'auto')?.accel).toBe('hvf');
    // An x86_64 guest on Apple silicon: TCG only.
    const x86 = await accelStatuses('x86_64', ['tcg', 'hvf'], ctx);
    expect(x86.map((a) => [a.accel, a.usable])).toEqual([
      ['hvf', false],
      ['tcg', true],
    ]);
  });

  it('darwin: no hvf when kern.hv_support is 0 or sysctl fails', async () => {
    for (const hv of ['0', null]) {
      const ctx = { platform: 'darwin' as const, hostArch: 'aarch64' as const, facts: macFacts(hv) };
      const [hvf, tcg] = await accelStatuses('aarch64', ['tcg', 'hvf'], ctx);
      expect(hvf).toMatchObject({ accel: 'hvf', usable: false });
      expect(hvf?.reason).toMatch(/kern.hv_support/);
      expect(tcg).toMatchObject({ accel: 'tcg', usable: true, reason: 'software emulation: works everywhere, slower' });
    }
  });
});

describe('probeHost on this machine (real QEMU 7.2)', () => {
  it('finds qemu-system-x86_64 7.2 with TCG usable and KVM refused because of kvm_pvm', async () => {
    expect(fs.existsSync('/sys/module/kvm_pvm')).toBe(true); // the premise: this host's KVM is kvm_pvm
    const caps = await probeHost();
    const x86 = caps.binaries.x86_64;
    expect(x86?.path).toMatch(/\/qemu-system-x86_64$/);
    expect(x86?.version).toMatchObject({ major: 7, minor: 2 });
    expect(x86?.accels).toEqual(expect.arrayContaining(['tcg', 'kvm']));
    const accels = caps.accels.x86_64 ?? [];
    expect(accels.find((a) => a.accel === 'tcg')).toEqual({ accel: 'tcg', usable: true, reason: 'software emulation: works everywhere, slower' });
    const kvm = accels.find((a) => a.accel === 'kvm');
    expect(kvm?.usable).toBe(false);
    expect(kvm?.reason).toMatch(/kvm_pvm/);
    expect(pickAccel(caps, 'x86_64', 'auto')?.accel).toBe('tcg');
    expect(caps.firmware.x86_64?.code).toBe('/usr/share/OVMF/OVMF_CODE_4M.fd');
    expect(caps.qemuImg).toMatch(/\/qemu-img$/);
    expect(caps).toMatchObject({ os: 'linux', hostArch: 'x86_64', seccomp: true, nativeAio: true, probeProblems: [] });
    // cpu-max per machine from QMP query-machines: i440fx 255, q35 288 on 7.2 (by alias and name).
    expect(x86?.cpuMax).toMatchObject({ pc: 255, q35: 288, 'pc-q35-7.2': 288 });
    expect(caps.hostCpus).toBe(os.availableParallelism());

    const report = await hostReport(caps, LAYOUT, { osRelease: DEBIAN });
    expect(report.binaries.find((b) => b.arch === 'x86_64')?.version).toMatch(/^7\.2\.\d+$/);
    expect(report.qemuImg.ok).toBe(true);
    // One UEFI firmware per installed QEMU architecture (CI installs qemu-system-arm + AAVMF too).
    expect(report.firmware).toHaveLength(Object.keys(caps.binaries).length);
    if (caps.binaries.aarch64) expect(caps.firmware.aarch64?.code).toMatch(/AAVMF_CODE/);
    // The only problem: no hardware acceleration, and why.
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatch(/TCG software emulation.*kvm_pvm/);
    expect(report.runtimeDir).toBe(LAYOUT.runtimeRoot);
  });

  it('with KVM facts simulated as healthy, the real binary gets KVM', async () => {
    const caps = await probeHost({ facts: linuxFacts({}) });
    expect(pickAccel(caps, 'x86_64', 'auto')).toMatchObject({ accel: 'kvm', usable: true });
    expect((await hostReport(caps, LAYOUT, { osRelease: DEBIAN })).problems).toEqual([]);
  });

  it('with /dev/kvm not accessible, the report says how to fix it', async () => {
    const caps = await probeHost({ facts: linuxFacts({ open: 'EACCES' }) });
    const problems = (await hostReport(caps, LAYOUT, { osRelease: DEBIAN })).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('sudo usermod -aG kvm $USER');
  });

  it('simulating macOS: no seccomp, no native AIO, hvf listed but not in this (Linux) build', async () => {
    const caps = await probeHost({ platform: 'darwin', facts: macFacts('1') });
    expect(caps).toMatchObject({ os: 'darwin', seccomp: false, nativeAio: false });
    expect(caps.accels.x86_64?.map((a) => [a.accel, a.usable])).toEqual([
      ['hvf', false],
      ['tcg', true],
    ]);
    expect(caps.accels.x86_64?.[0]?.reason).toMatch(/no HVF support/);
  });
});

describe('VIVARIUM_QEMU_DIR and broken binaries', () => {
  let tmp = '';
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-probe-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('an empty VIVARIUM_QEMU_DIR: no binaries (PATH is not searched) and a problem sentence', async () => {
    const caps = await probeHost({ env: { ...process.env, VIVARIUM_QEMU_DIR: tmp } });
    expect(caps.binaries).toEqual({});
    expect(caps.accels).toEqual({});
    expect(caps.qemuImg).toBeNull();
    expect(caps.seccomp).toBe(false);
    expect(caps.probeProblems).toEqual([{ kind: 'qemu-dir', dir: tmp, dirExists: true, missing: ['qemu-system-x86_64', 'qemu-img'] }]);
    const report = await hostReport(caps, LAYOUT, { osRelease: DEBIAN });
    expect(report.problems).toEqual([
      `VIVARIUM_QEMU_DIR is set to ${tmp}, so Vivarium looks for QEMU only there, but it has no qemu-system-x86_64 or qemu-img. Put QEMU there, or unset VIVARIUM_QEMU_DIR to use the installed QEMU.`,
    ]);
    expect(report.binaries.every((b) => b.path === null)).toBe(true);
  });

  it('a VIVARIUM_QEMU_DIR that does not exist says so', async () => {
    const caps = await probeHost({ env: { ...process.env, VIVARIUM_QEMU_DIR: path.join(tmp, 'nope') } });
    expect((await hostReport(caps, LAYOUT, { osRelease: DEBIAN })).problems[0]).toMatch(/that folder does not exist/);
  });

  it('broken binaries are reported, not thrown', async () => {
    fs.writeFileSync(path.join(tmp, 'qemu-system-x86_64'), '#!/bin/sh\necho "error while loading shared libraries: libfoo.so" >&2\nexit 127\n', { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, 'qemu-img'), '#!/bin/sh\necho "not qemu"\n', { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, 'qemu-system-aarch64'), 'not a program', { mode: 0o755 });
    const caps = await probeHost({ env: { ...process.env, VIVARIUM_QEMU_DIR: tmp } });
    expect(caps.binaries).toEqual({});
    expect(caps.qemuImg).toBeNull();
    const broken = caps.probeProblems.filter((p): p is Extract<ProbeProblem, { kind: 'broken-binary' }> => p.kind === 'broken-binary');
    expect(broken.map((p) => p.tool).sort()).toEqual(['aarch64', 'qemu-img', 'x86_64']);
    expect(broken.find((p) => p.tool === 'x86_64')?.detail).toMatch(/libfoo\.so/);
    const report = await hostReport(caps, LAYOUT, { osRelease: DEBIAN });
    expect(report.problems.some((p) => p.includes(`${tmp}/qemu-system-x86_64 is installed but does not work`) && p.includes('sudo apt install qemu-system-x86'))).toBe(true);
    expect(report.qemuImg).toEqual({ path: path.join(tmp, 'qemu-img'), ok: false });
    expect(report.binaries.find((b) => b.arch === 'x86_64')).toMatchObject({ path: path.join(tmp, 'qemu-system-x86_64'), version: null });
  });
});

describe('cache', () => {
  let tmp = '';
  let calls = '';
  let env: NodeJS.ProcessEnv = {};
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-cache-'));
    calls = path.join(tmp, 'calls');
    // Fake binaries: this tests the cache, not QEMU. Each run appends its argv to `calls`.
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    const script = (body: string) => `#!/bin/sh\necho "$0 $*" >> '${calls}'\n${body}\n`;
    fs.writeFileSync(
      path.join(bin, 'qemu-system-x86_64'),
      script(`case "$*" in
  *accel*) printf 'Accelerators supported in QEMU binary:\\ntcg\\nkvm\\n' ;;
  *) echo 'QEMU emulator version 7.2.0' ;;
esac`),
      { mode: 0o755 },
    );
    fs.writeFileSync(path.join(bin, 'qemu-img'), script("echo 'qemu-img version 7.2.0'"), { mode: 0o755 });
    env = { ...process.env, VIVARIUM_QEMU_DIR: bin };
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const spawned = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n').length : 0);

  it('a second probe with the same fingerprint spawns nothing', async () => {
    const cacheFile = path.join(tmp, 'home', 'host-probe.json');
    const first = await probeHost({ env, cacheFile });
    // -version, -accel help, -sandbox on -version, query-machines (-machine none -qmp stdio), qemu-img --version.
    expect(spawned()).toBe(5);
    expect(first.binaries.x86_64?.version).toEqual({ major: 7, minor: 2, micro: 0 });
    expect(first.seccomp).toBe(true);
    expect(JSON.parse(fs.readFileSync(cacheFile, 'utf8')).caps).toEqual(first);

    const second = await probeHost({ env, cacheFile });
    // The spawn count is the proof; timings belong in bench/.
    expect(spawned()).toBe(5);
    expect(second).toEqual(first);
  });

  it('a changed binary, or a change in KVM state, invalidates the cache', async () => {
    const cacheFile = path.join(tmp, 'host-probe.json');
    await probeHost({ env, cacheFile });
    expect(spawned()).toBe(5);
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(tmp, 'bin', 'qemu-system-x86_64'), later, later);
    await probeHost({ env, cacheFile });
    expect(spawned()).toBe(10);
    // kvm_pvm gone (simulated): re-probed, and the result differs.
    const caps = await probeHost({ env, cacheFile, facts: linuxFacts({}) });
    expect(spawned()).toBe(15);
    expect(caps.accels.x86_64?.[0]).toMatchObject({ accel: 'kvm', usable: true });
    // Same files, but /dev/kvm stops opening (left the kvm group): re-probed too.
    const denied = await probeHost({ env, cacheFile, facts: linuxFacts({ open: 'EACCES' }) });
    expect(spawned()).toBe(20);
    expect(denied.accels.x86_64?.[0]).toMatchObject({ accel: 'kvm', usable: false });
  });

  it('a corrupt cache file is ignored and rewritten', async () => {
    const cacheFile = path.join(tmp, 'host-probe.json');
    for (const junk of ['{"version": 1, "finger', '{"version":1,"fingerprint":"x","caps":{"os":"plan9"}}', '']) {
      fs.writeFileSync(cacheFile, junk);
      const before = spawned();
      const caps = await probeHost({ env, cacheFile });
      expect(spawned()).toBe(before + 5);
      expect(JSON.parse(fs.readFileSync(cacheFile, 'utf8')).caps).toEqual(caps);
    }
    // And the rewritten file is a hit again.
    const before = spawned();
    await probeHost({ env, cacheFile });
    expect(spawned()).toBe(before);
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('hostReport install advice', () => {
  const nothing = (os: HostCapabilities['os'], hostArch: HostCapabilities['hostArch'] = 'x86_64'): HostCapabilities => ({
    os,
    hostArch,
    qemuImg: null,
    binaries: {},
    accels: {},
    firmware: {},
    seccomp: false,
    nativeAio: os === 'linux',
  });

  it.each([
    ['debian', DEBIAN, 'sudo apt install qemu-system-x86 qemu-utils ovmf'],
    ['ubuntu', 'ID=ubuntu\nID_LIKE=debian\n', 'sudo apt install qemu-system-x86 qemu-utils ovmf'],
    ['fedora', 'ID=fedora\n', 'sudo dnf install qemu-kvm qemu-img edk2-ovmf'],
    ['arch', 'ID=arch\n', 'sudo pacman -S qemu-full edk2-ovmf'],
  ])('nothing installed on %s', async (_name, osRelease, cmd) => {
    const problems = (await hostReport(nothing('linux'), LAYOUT, { osRelease })).problems;
    expect(problems).toEqual([
      `Missing: qemu-system-x86_64, qemu-img, UEFI firmware for x86_64 guests (BIOS guests still work). Install with \`${cmd}\`.`,
    ]);
  });

  it('nothing installed on macOS', async () => {
    const problems = (await hostReport(nothing('darwin', 'aarch64'), LAYOUT)).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^Missing: qemu-system-aarch64, qemu-img, UEFI firmware for aarch64 guests.*`brew install qemu`/);
  });

  it('an unknown distribution gets generic advice', async () => {
    expect((await hostReport(nothing('linux'), LAYOUT, { osRelease: 'ID=gentoo\n' })).problems[0]).toMatch(/your distribution's package manager/);
  });

  it('names only what is missing: firmware and qemu-img present, emulator absent', async () => {
    const caps: HostCapabilities = {
      ...nothing('linux'),
      qemuImg: '/usr/bin/qemu-img',
      firmware: { x86_64: { code: '/c', codeFormat: 'raw', varsTemplate: '/v', varsFormat: 'raw', secureBoot: false, source: '/d.json' } },
    };
    expect((await hostReport(caps, LAYOUT, { osRelease: DEBIAN })).problems).toEqual([
      'Missing: qemu-system-x86_64. Install with `sudo apt install qemu-system-x86`.',
    ]);
  });
});
