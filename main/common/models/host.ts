/**
 * What the host can run, as found by the host probe (main/services/qemu/host-probe.ts). Pure data:
 * the argv builder takes it as an argument, so golden tests can pin the argv for any host kind.
 */
import type { Accel, Arch } from './vm-config';

export type HostOs = 'linux' | 'darwin' | 'win32';

export interface QemuVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
}

export interface QemuBinary {
  readonly arch: Arch;
  readonly path: string;
  readonly version: QemuVersion;
  /** Accelerators this binary was built with (`-accel help`). */
  readonly accels: readonly Accel[];
  /** `cpu-max` per machine type, by name and by alias ("q35", "pc-q35-7.2", "virt"), from QMP
   *  `query-machines`; absent when not probed. See machine-limits.ts. */
  readonly cpuMax?: Readonly<Record<string, number>>;
}

export interface AccelStatus {
  readonly accel: Accel;
  /** True when Vivarium's `auto` will pick it / a forced choice will work. */
  readonly usable: boolean;
  /** A sentence for the user: why it is (not) usable and what to do. */
  readonly reason: string;
  /** Not picked by `auto`, but a user who chooses it explicitly may try it (kvm_pvm). */
  readonly forceable?: boolean;
}

export interface UefiFirmware {
  /** Read-only code image. */
  readonly code: string;
  readonly codeFormat: 'raw' | 'qcow2';
  /** Template for the per-VM variable store; copied (as qcow2) into each bundle. */
  readonly varsTemplate: string;
  readonly varsFormat: 'raw' | 'qcow2';
  readonly secureBoot: boolean;
  /** Where it was found: a descriptor JSON path, or "fallback:<path>". */
  readonly source: string;
}

export interface HostCapabilities {
  readonly os: HostOs;
  /** Host CPU architecture, in QEMU's naming. */
  readonly hostArch: Arch;
  readonly qemuImg: string | null;
  readonly binaries: Partial<Readonly<Record<Arch, QemuBinary>>>;
  /** Per guest arch: which accelerators would work for that guest on this host. */
  readonly accels: Partial<Readonly<Record<Arch, readonly AccelStatus[]>>>;
  readonly firmware: Partial<Readonly<Record<Arch, UefiFirmware>>>;
  /** Per guest arch, the firmware's Secure Boot build with Microsoft-enrolled variables (descriptor
   *  features secure-boot + enrolled-keys, e.g. Debian's OVMF_CODE_4M.ms.fd/OVMF_VARS_4M.ms.fd);
   *  absent when not installed. */
  readonly secureFirmware?: Partial<Readonly<Record<Arch, UefiFirmware>>>;
  /** `-sandbox` (seccomp) support; Linux builds only. */
  readonly seccomp: boolean;
  /** `aio=native` needs O_DIRECT and Linux AIO: Linux only. */
  readonly nativeAio: boolean;
  /** The swtpm TPM emulator (a VM's TPM 2.0 runs in one per VM), absolute path; null/absent: not
   *  installed. */
  readonly swtpm?: string | null;
  /** CPU threads the host can run at once (os.availableParallelism()); absent when not probed. */
  readonly hostCpus?: number;
}

export function versionAtLeast(v: QemuVersion, major: number, minor = 0): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

export function formatVersion(v: QemuVersion): string {
  return `${v.major}.${v.minor}.${v.micro}`;
}

/** What `auto` resolves to for a guest arch, or null if nothing can run it. */
export function pickAccel(caps: HostCapabilities, arch: Arch, choice: Accel | 'auto'): AccelStatus | null {
  const list = caps.accels[arch] ?? [];
  if (choice !== 'auto') return list.find((a) => a.accel === choice) ?? null;
  return list.find((a) => a.usable && a.accel !== 'tcg') ?? list.find((a) => a.usable) ?? null;
}
