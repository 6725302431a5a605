/**
 * HostCapabilities for the five host kinds the golden tests pin the argv on. Hand-written to look
 * like what the host probe reports on each kind of machine (Debian packages on Linux, Homebrew on
 * macOS), so a change to the argv builder shows up as a diff per host kind.
 *
 * Deliberately uneven, so the goldens cover the error paths too:
 *  - linux-x86_64-kvm has no qemu-system-aarch64 (aarch64 guests fail: QEMU missing);
 *  - linux-x86_64-tcg is this CI machine: /dev/kvm is kvm_pvm, so KVM is present but not usable,
 *    and qemu-system-arm + AAVMF are installed (aarch64 guests run under TCG);
 *  - linux-aarch64-kvm has qemu-system-x86 but no OVMF (x86 UEFI guests fail: no firmware).
 */
import type { AccelStatus, HostCapabilities, QemuVersion, UefiFirmware } from '../../../common/models/host';

export const HOST_KIND_NAMES = [
  'linux-x86_64-kvm',
  'linux-x86_64-tcg',
  'darwin-arm64-hvf',
  'darwin-x86_64-hvf',
  'linux-aarch64-kvm',
] as const;
export type HostKind = (typeof HOST_KIND_NAMES)[number];

const DEBIAN_QEMU: QemuVersion = { major: 7, minor: 2, micro: 22 };
const HOMEBREW_QEMU: QemuVersion = { major: 9, minor: 2, micro: 2 };

const TCG_OK: AccelStatus = {
  accel: 'tcg',
  usable: true,
  reason: 'TCG emulation works everywhere, but is several times slower than a hypervisor.',
};
const KVM_OK: AccelStatus = { accel: 'kvm', usable: true, reason: 'KVM is available: /dev/kvm can be opened read-write.' };
const HVF_OK: AccelStatus = { accel: 'hvf', usable: true, reason: 'Hypervisor.framework is available (kern.hv_support = 1).' };

function foreignArch(accel: 'kvm' | 'hvf', hostArch: string): AccelStatus {
  return {
    accel,
    usable: false,
    reason: `${accel.toUpperCase()} runs only guests of the host's own architecture (${hostArch}); this guest needs TCG emulation.`,
  };
}

const DEBIAN_OVMF: UefiFirmware = {
  code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  codeFormat: 'raw',
  varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd',
  varsFormat: 'raw',
  secureBoot: false,
  source: '/usr/share/qemu/firmware/60-edk2-x86_64.json',
};
const DEBIAN_AAVMF: UefiFirmware = {
  code: '/usr/share/AAVMF/AAVMF_CODE.fd',
  codeFormat: 'raw',
  varsTemplate: '/usr/share/AAVMF/AAVMF_VARS.fd',
  varsFormat: 'raw',
  secureBoot: false,
  source: '/usr/share/qemu/firmware/60-edk2-aarch64.json',
};

function homebrewFirmware(prefix: string): HostCapabilities['firmware'] {
  return {
    x86_64: {
      code: `${prefix}/share/qemu/edk2-x86_64-code.fd`,
      codeFormat: 'raw',
      varsTemplate: `${prefix}/share/qemu/edk2-i386-vars.fd`,
      varsFormat: 'raw',
      secureBoot: false,
      source: `${prefix}/share/qemu/firmware/60-edk2-x86_64.json`,
    },
    aarch64: {
      code: `${prefix}/share/qemu/edk2-aarch64-code.fd`,
      codeFormat: 'raw',
      varsTemplate: `${prefix}/share/qemu/edk2-arm-vars.fd`,
      varsFormat: 'raw',
      secureBoot: false,
      source: `${prefix}/share/qemu/firmware/60-edk2-aarch64.json`,
    },
  };
}

export const HOST_KINDS: Readonly<Record<HostKind, HostCapabilities>> = {
  'linux-x86_64-kvm': {
    os: 'linux',
    hostArch: 'x86_64',
    qemuImg: '/usr/bin/qemu-img',
    binaries: {
      x86_64: { arch: 'x86_64', path: '/usr/bin/qemu-system-x86_64', version: DEBIAN_QEMU, accels: ['kvm', 'tcg'] },
    },
    accels: { x86_64: [KVM_OK, TCG_OK] },
    firmware: { x86_64: DEBIAN_OVMF },
    seccomp: true,
    nativeAio: true,
  },
  'linux-x86_64-tcg': {
    os: 'linux',
    hostArch: 'x86_64',
    qemuImg: '/usr/bin/qemu-img',
    binaries: {
      x86_64: { arch: 'x86_64', path: '/usr/bin/qemu-system-x86_64', version: DEBIAN_QEMU, accels: ['kvm', 'tcg'] },
      // Debian's qemu-system-aarch64 for amd64 is built with TCG only (`-accel help`).
      aarch64: { arch: 'aarch64', path: '/usr/bin/qemu-system-aarch64', version: DEBIAN_QEMU, accels: ['tcg'] },
    },
    accels: {
      x86_64: [
        {
          accel: 'kvm',
          usable: false,
          reason:
            '/dev/kvm is provided by kvm_pvm (a nested, paravirtual KVM) under which stock guests and UEFI firmware hang, so Vivarium uses TCG.',
        },
        TCG_OK,
      ],
      aarch64: [foreignArch('kvm', 'x86_64'), TCG_OK],
    },
    firmware: { x86_64: DEBIAN_OVMF, aarch64: DEBIAN_AAVMF },
    seccomp: true,
    nativeAio: true,
  },
  'darwin-arm64-hvf': {
    os: 'darwin',
    hostArch: 'aarch64',
    qemuImg: '/opt/homebrew/bin/qemu-img',
    binaries: {
      aarch64: { arch: 'aarch64', path: '/opt/homebrew/bin/qemu-system-aarch64', version: HOMEBREW_QEMU, accels: ['hvf', 'tcg'] },
      x86_64: { arch: 'x86_64', path: '/opt/homebrew/bin/qemu-system-x86_64', version: HOMEBREW_QEMU, accels: ['tcg'] },
    },
    accels: {
      aarch64: [HVF_OK, TCG_OK],
      x86_64: [foreignArch('hvf', 'aarch64'), TCG_OK],
    },
    firmware: homebrewFirmware('/opt/homebrew'),
    seccomp: false,
    nativeAio: false,
  },
  'darwin-x86_64-hvf': {
    os: 'darwin',
    hostArch: 'x86_64',
    qemuImg: '/usr/local/bin/qemu-img',
    binaries: {
      x86_64: { arch: 'x86_64', path: '/usr/local/bin/qemu-system-x86_64', version: HOMEBREW_QEMU, accels: ['hvf', 'tcg'] },
      aarch64: { arch: 'aarch64', path: '/usr/local/bin/qemu-system-aarch64', version: HOMEBREW_QEMU, accels: ['tcg'] },
    },
    accels: {
      x86_64: [HVF_OK, TCG_OK],
      aarch64: [foreignArch('hvf', 'x86_64'), TCG_OK],
    },
    firmware: homebrewFirmware('/usr/local'),
    seccomp: false,
    nativeAio: false,
  },
  'linux-aarch64-kvm': {
    os: 'linux',
    hostArch: 'aarch64',
    qemuImg: '/usr/bin/qemu-img',
    binaries: {
      aarch64: { arch: 'aarch64', path: '/usr/bin/qemu-system-aarch64', version: DEBIAN_QEMU, accels: ['kvm', 'tcg'] },
      x86_64: { arch: 'x86_64', path: '/usr/bin/qemu-system-x86_64', version: DEBIAN_QEMU, accels: ['tcg'] },
    },
    accels: {
      aarch64: [KVM_OK, TCG_OK],
      x86_64: [foreignArch('kvm', 'aarch64'), TCG_OK],
    },
    // The ovmf package is not installed on this host: x86_64 UEFI guests cannot start.
    firmware: { aarch64: DEBIAN_AAVMF },
    seccomp: true,
    nativeAio: true,
  },
};
