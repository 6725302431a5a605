/**
 * How many vCPUs a VM can start with, as a pure function of its arch, machine type and accelerator
 * and of what the host probe found. One home for the rule: the argv builder refuses a config above
 * it, and the settings rules (host-defaults.ts → vm-settings.ts) give it to forms as the CPU bound.
 *
 * The rules (each verified on QEMU 7.2 under TCG, see the tests):
 *  - x86 (q35 and pc): at most 255. An x86 vCPU's APIC ID is 8 bits in xAPIC mode; more than 255
 *    vCPUs need x2APIC with interrupt remapping, i.e. an emulated IOMMU (`-device
 *    intel-iommu,intremap=on,eim=on`) and KVM's split irqchip, which Vivarium does not set up. QEMU
 *    7.2 refuses 256 on q35 under TCG with "current -smp configuration requires kernel irqchip and
 *    X2APIC API support", and i440fx (`pc`) has cpu-max 255 anyway.
 *  - aarch64 `virt`: GICv2 stops at 8 vCPUs (HVF before QEMU 8.0 has no GICv3); GICv3 without the
 *    high memory map fits 123 redistributors; with it, the machine's cpu-max (512 on 7.2).
 *  - never above the machine's `cpu-max` as QEMU reports it (`query-machines`), when the probe has it.
 */
import type { HostCapabilities, QemuVersion } from './host';
import { formatVersion, pickAccel, versionAtLeast } from './host';
import type { Accel, AccelChoice, Arch } from './vm-config';

/** The most x86 vCPUs without an IOMMU doing interrupt remapping (8-bit xAPIC IDs, 255 = broadcast). */
export const X86_MAX_VCPUS_WITHOUT_IOMMU = 255;
/** GICv2's limit. */
export const GICV2_MAX_VCPUS = 8;
/** GICv3 on `virt` without the high memory map (redistributor space in low memory). */
export const GICV3_LOWMEM_MAX_VCPUS = 123;
/** `virt`'s cpu-max on QEMU 7.2 (GICv3 with highmem), for hosts whose probe has no cpu-max. */
export const VIRT_MAX_VCPUS = 512;

export interface VcpuLimit {
  /** The most vCPUs this VM can start with. */
  readonly max: number;
  /** Why, as a sentence fragment: "x86 guests need an IOMMU for more than 255 vCPUs". */
  readonly because: string;
  /** What would raise the limit, or null: "update QEMU to 8.0 or later". */
  readonly raiseBy: string | null;
}

export interface VcpuLimitInput {
  readonly arch: Arch;
  /** The config's machine type; null = the arch's default (q35 / virt). */
  readonly machine: string | null;
  readonly accel: Accel;
  readonly qemuVersion: QemuVersion;
  /** `cpu-max` of the machine as QEMU reports it, when known. */
  readonly cpuMax: number | null;
}

/** Whether the aarch64 `virt` board gets GICv3 with this accelerator (see argv.ts gicVersion). */
export function aarch64HasGicV3(accel: Accel, v: QemuVersion): boolean {
  return accel !== 'hvf' || versionAtLeast(v, 8, 0);
}

/** Whether the aarch64 `virt` board gets the high memory map (see argv.ts machineSection). */
export function aarch64Highmem(accel: Accel, v: QemuVersion): boolean {
  return !(accel === 'hvf' && !versionAtLeast(v, 7, 0));
}

/** The vCPU limit from resolved facts (pure). */
export function vcpuLimit(i: VcpuLimitInput): VcpuLimit {
  let limit: VcpuLimit;
  switch (i.arch) {
    case 'x86_64':
      limit = {
        max: X86_MAX_VCPUS_WITHOUT_IOMMU,
        because: `x86 guests need an emulated IOMMU with interrupt remapping for more than ${X86_MAX_VCPUS_WITHOUT_IOMMU} vCPUs, which Vivarium does not add`,
        raiseBy: null,
      };
      break;
    case 'aarch64':
      if (!aarch64HasGicV3(i.accel, i.qemuVersion)) {
        limit = {
          max: GICV2_MAX_VCPUS,
          because: `QEMU ${formatVersion(i.qemuVersion)} with HVF can give an aarch64 guest at most ${GICV2_MAX_VCPUS} CPUs (it lacks GICv3 support)`,
          raiseBy: 'update QEMU to 8.0 or later',
        };
      } else if (!aarch64Highmem(i.accel, i.qemuVersion)) {
        limit = {
          max: GICV3_LOWMEM_MAX_VCPUS,
          because: `QEMU ${formatVersion(i.qemuVersion)} with HVF runs aarch64 guests without the high memory map, which fits at most ${GICV3_LOWMEM_MAX_VCPUS} CPUs`,
          raiseBy: 'update QEMU to 7.0 or later',
        };
      } else {
        limit = { max: i.cpuMax ?? VIRT_MAX_VCPUS, because: `the aarch64 "virt" machine supports at most ${i.cpuMax ?? VIRT_MAX_VCPUS} CPUs`, raiseBy: null };
      }
      break;
  }
  if (i.cpuMax !== null && i.cpuMax < limit.max) {
    const machine = i.machine ?? (i.arch === 'x86_64' ? 'q35' : 'virt');
    limit = { max: i.cpuMax, because: `QEMU's "${machine}" machine supports at most ${i.cpuMax} CPUs`, raiseBy: null };
  }
  return limit;
}

/**
 * The vCPU limit of a VM on this host: resolves the accelerator as the argv builder would and looks
 * the machine's cpu-max up in the probe. null when the host cannot run the arch at all (the argv
 * builder says why).
 */
export function vcpuLimitOnHost(vm: { readonly arch: Arch; readonly machine: string | null; readonly accel: AccelChoice }, caps: HostCapabilities): VcpuLimit | null {
  const binary = caps.binaries[vm.arch];
  const accel = pickAccel(caps, vm.arch, vm.accel)?.accel;
  if (!binary || !accel) return null;
  const machine = vm.machine ?? (vm.arch === 'x86_64' ? 'q35' : 'virt');
  return vcpuLimit({ arch: vm.arch, machine: vm.machine, accel, qemuVersion: binary.version, cpuMax: binary.cpuMax?.[machine] ?? null });
}
