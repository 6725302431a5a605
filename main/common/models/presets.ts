/**
 * OS presets: the hardware an operating system's installer wants, as one table that the engine
 * (`vms.create`/`vms.preview` with `preset`, `vivarium create --preset`) and the New VM wizard
 * (renderer/lib/wizard.ts) both use, so a preset gives the same VM from either front end.
 *
 * A preset is a set of defaults: whatever a create names explicitly (CPUs, memory, firmware, disk
 * size or bus, TPM, Secure Boot, OS label) wins over it (`applyPresetToSpec`).
 */
import type { CreateVmSpec, PresetHints } from '../contract';
import { formatBytes } from '../format';
import type { DiskBus, Firmware } from './vm-config';
import type { HostDefaults } from './vm-settings';

/** debian | ubuntu | fedora | alpine | arch | linux | windows11 | windows10 | other. */
export type PresetId = PresetHints['preset'];

/** What an OS wants from its VM. Sources: the distributions' and Microsoft's published minimums
 *  (Windows 11: 2 CPUs, 4 GB, 64 GB, UEFI with Secure Boot, TPM 2.0 —
 *  learn.microsoft.com/windows/whats-new/windows-11-requirements; Fedora Workstation: 2 GB minimum,
 *  4 GB recommended — docs.fedoraproject.org; Ubuntu Desktop: 4 GB, 25 GB — ubuntu.com/download/desktop;
 *  Alpine: 256 MB — wiki.alpinelinux.org). Memory in MiB, disk in GiB. */
export interface Preset {
  readonly label: string;
  /** The library's OS label a VM of this preset gets unless the source names one. */
  readonly osLabel: string;
  readonly minMemoryMiB: number;
  readonly recommendedMemoryMiB: number;
  readonly recommendedCpus: number;
  readonly recommendedDiskGiB: number;
  readonly firmware: Firmware;
  readonly tpm: boolean;
  readonly secureBoot: boolean;
  /** What its installer has drivers for: the system disk gets `diskBus`, the network card `nic`. */
  readonly diskBus: DiskBus;
  readonly nic: PresetHints['nic'];
}

export const PRESETS: Readonly<Record<PresetId, Preset>> = {
  debian: { label: 'Debian', osLabel: 'Debian', minMemoryMiB: 512, recommendedMemoryMiB: 2048, recommendedCpus: 2, recommendedDiskGiB: 20, firmware: 'bios', tpm: false, secureBoot: false, diskBus: 'virtio', nic: 'virtio-net-pci' },
  ubuntu: { label: 'Ubuntu', osLabel: 'Ubuntu', minMemoryMiB: 1024, recommendedMemoryMiB: 4096, recommendedCpus: 2, recommendedDiskGiB: 25, firmware: 'uefi', tpm: false, secureBoot: false, diskBus: 'virtio', nic: 'virtio-net-pci' },
  fedora: { label: 'Fedora', osLabel: 'Fedora', minMemoryMiB: 2048, recommendedMemoryMiB: 4096, recommendedCpus: 2, recommendedDiskGiB: 20, firmware: 'uefi', tpm: false, secureBoot: false, diskBus: 'virtio', nic: 'virtio-net-pci' },
  alpine: { label: 'Alpine Linux', osLabel: 'Alpine Linux', minMemoryMiB: 256, recommendedMemoryMiB: 512, recommendedCpus: 1, recommendedDiskGiB: 4, firmware: 'bios', tpm: false, secureBoot: false, diskBus: 'virtio', nic: 'virtio-net-pci' },
  arch: { label: 'Arch Linux', osLabel: 'Arch Linux', minMemoryMiB: 512, recommendedMemoryMiB: 2048, recommendedCpus: 2, recommendedDiskGiB: 20, firmware: 'uefi', tpm: false, secureBoot: false, diskBus: 'virtio', nic: 'virtio-net-pci' },
  linux: { label: 'Other Linux', osLabel: 'Linux', minMemoryMiB: 256, recommendedMemoryMiB: 2048, recommendedCpus: 2, recommendedDiskGiB: 20, firmware: 'bios', tpm: false, secureBoot: false, diskBus: 'virtio', nic: 'virtio-net-pci' },
  windows11: { label: 'Windows 11', osLabel: 'Windows 11', minMemoryMiB: 4096, recommendedMemoryMiB: 4096, recommendedCpus: 2, recommendedDiskGiB: 64, firmware: 'uefi', tpm: true, secureBoot: true, diskBus: 'sata', nic: 'e1000e' },
  windows10: { label: 'Windows 10', osLabel: 'Windows 10', minMemoryMiB: 2048, recommendedMemoryMiB: 4096, recommendedCpus: 2, recommendedDiskGiB: 64, firmware: 'uefi', tpm: false, secureBoot: false, diskBus: 'sata', nic: 'e1000e' },
  other: { label: 'Other', osLabel: 'Other', minMemoryMiB: 256, recommendedMemoryMiB: 2048, recommendedCpus: 2, recommendedDiskGiB: 20, firmware: 'bios', tpm: false, secureBoot: false, diskBus: 'virtio', nic: 'virtio-net-pci' },
};

export const PRESET_IDS = Object.keys(PRESETS) as PresetId[];

/** Human words for the disk buses ("SATA"). */
export const BUS_WORDS: Readonly<Record<DiskBus, string>> = { virtio: 'virtio', sata: 'SATA', nvme: 'NVMe' };

/** The hardware a preset gives a VM on one host (numbers; front ends format them). */
export interface PresetHardware {
  readonly preset: Preset;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly diskGiB: number;
  readonly firmware: Firmware;
  readonly tpm: boolean;
  readonly secureBoot: boolean;
  readonly diskBus: DiskBus;
  readonly nic: PresetHints['nic'];
  /** Sentences about what this host or Vivarium changes from the preset. */
  readonly notes: readonly string[];
}

/**
 * The hardware preset `id` gives a VM on this host: the preset's (or a catalog entry's
 * `presetHints`, when they are for the same preset) recommendations, cut to what the host has —
 * CPUs to its cores, memory to half its memory but never below the OS's minimum while the host has
 * that much — and UEFI only where the host has UEFI firmware for the architecture.
 */
export function presetHardware(id: PresetId, defaults: HostDefaults, hints?: PresetHints | null): PresetHardware {
  const base = PRESETS[id];
  const p: Preset =
    hints && hints.preset === id
      ? { ...base, minMemoryMiB: hints.minMemoryMiB, recommendedMemoryMiB: hints.recommendedMemoryMiB, recommendedCpus: hints.recommendedCpus, recommendedDiskGiB: hints.recommendedDiskGiB, firmware: hints.firmware, diskBus: hints.diskBus, nic: hints.nic }
      : base;
  const notes: string[] = [];
  const { limits } = defaults;
  const mem = (mib: number) => formatBytes(mib * 1024 ** 2);
  const cpus = Math.max(1, Math.min(p.recommendedCpus, limits.hostCores, limits.maxCpus));
  if (cpus < p.recommendedCpus) notes.push(`${p.label} recommends ${p.recommendedCpus} CPUs; this host has ${limits.hostCores}.`);
  const half = Math.max(limits.minMemoryMiB, Math.floor(limits.maxMemoryMiB / 2 / 256) * 256);
  let memoryMiB = Math.min(p.recommendedMemoryMiB, Math.max(half, p.minMemoryMiB));
  if (memoryMiB > limits.maxMemoryMiB) {
    memoryMiB = Math.max(limits.minMemoryMiB, Math.floor(limits.maxMemoryMiB / 256) * 256);
    notes.push(`${p.label} needs at least ${mem(p.minMemoryMiB)} of memory; this host has ${mem(limits.maxMemoryMiB)}, so its installer may refuse to run.`);
  } else if (memoryMiB < p.recommendedMemoryMiB) {
    notes.push(`${mem(memoryMiB)} of memory: half of this host's ${mem(limits.maxMemoryMiB)} (${p.label} recommends ${mem(p.recommendedMemoryMiB)}).`);
  }
  let firmware: Firmware = p.firmware;
  if (!defaults.firmwares.includes(firmware)) {
    const fallback = defaults.firmwares[0] ?? defaults.firmware;
    notes.push(`${p.label} prefers ${firmware === 'uefi' ? 'UEFI' : 'BIOS'} firmware, which this host cannot give a ${defaults.arch} VM; it gets ${fallback === 'uefi' ? 'UEFI' : 'BIOS'}.`);
    firmware = fallback;
  }
  const secureBoot = p.secureBoot && firmware === 'uefi';
  if (p.nic !== 'virtio-net-pci' || p.diskBus !== 'virtio') {
    notes.push(`${p.label}'s installer has no virtio drivers: its system disk is ${BUS_WORDS[p.diskBus]}${p.nic === 'e1000e' ? ' and its network card an Intel e1000e' : ''}, which it has drivers for. For virtio's speed later, install Red Hat's virtio-win drivers (its ISO as a second CD).`);
  }
  return { preset: p, cpus, memoryMiB, diskGiB: p.recommendedDiskGiB, firmware, tpm: p.tpm, secureBoot, diskBus: p.diskBus, nic: p.nic, notes };
}

/**
 * A create spec with `spec.preset`'s hardware filled in where the spec leaves it open; what the spec
 * names wins. A disk size is only filled for a new empty disk (not with an existing disk, an import
 * or a cloud image). When an explicit `firmware: 'bios'` meets a preset with Secure Boot, Secure Boot
 * is left off and a note says so (Secure Boot needs UEFI). `notes` are for the user (warnings).
 * Returns the spec unchanged (and no notes) without a preset.
 */
export function applyPresetToSpec(spec: CreateVmSpec, defaults: HostDefaults): { readonly spec: CreateVmSpec; readonly notes: readonly string[] } {
  if (spec.preset === undefined) return { spec, notes: [] };
  const hw = presetHardware(spec.preset, defaults);
  const notes = [...hw.notes];
  const firmware = spec.firmware ?? hw.firmware;
  let secureBoot = spec.secureBoot ?? hw.secureBoot;
  if (spec.secureBoot === undefined && secureBoot && firmware !== 'uefi') {
    secureBoot = false;
    notes.push(`The ${hw.preset.label} preset turns Secure Boot on, but the firmware chosen is BIOS, which has none: Secure Boot is off.`);
  }
  const newDisk = spec.diskPath === undefined && spec.import === undefined && spec.cloud === undefined;
  const out: CreateVmSpec = {
    ...spec,
    cpus: spec.cpus ?? hw.cpus,
    memoryMiB: spec.memoryMiB ?? hw.memoryMiB,
    firmware,
    tpm: spec.tpm ?? hw.tpm,
    secureBoot,
    diskBus: spec.diskBus ?? hw.diskBus,
    nicModel: spec.nicModel ?? hw.nic,
    os: spec.os ?? hw.preset.osLabel,
    ...(newDisk && spec.diskSizeBytes === undefined ? { diskSizeBytes: hw.diskGiB * 1024 ** 3 } : {}),
  };
  return { spec: out, notes };
}
