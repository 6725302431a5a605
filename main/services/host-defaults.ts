/**
 * The engine side of the settings rules: turns the host probe's capabilities (plus the machine's
 * memory and cores) into the plain `HostFacts` that main/common/models/vm-settings.ts reasons on, and
 * answers `host.defaults` — what the New VM dialog shows before the user changes anything.
 */
import * as os from 'node:os';
import type { HostDefaultsOptions } from '../common/contract';
import type { HostCapabilities } from '../common/models/host';
import { vcpuLimitOnHost } from '../common/models/machine-limits';
import type { Arch } from '../common/models/vm-config';
import { defaultArch, hostDefaults, type HostDefaults, type HostFacts } from '../common/models/vm-settings';

/** The machine's own figures, injectable for tests. */
export interface MachineFigures {
  /** Total memory, bytes (os.totalmem()). */
  readonly totalMemBytes: number;
  /** Logical CPUs (os.availableParallelism()). */
  readonly cores: number;
}

export function machineFigures(): MachineFigures {
  return { totalMemBytes: os.totalmem(), cores: os.availableParallelism() };
}

/** HostFacts from the probe. Pure given its arguments. */
export function hostFacts(caps: HostCapabilities, machine: MachineFigures = machineFigures()): HostFacts {
  const arches = (Object.keys(caps.binaries) as Arch[]).filter((a) => caps.binaries[a] !== undefined);
  const maxCpus: Partial<Record<Arch, number>> = {};
  for (const arch of arches) {
    // The one vCPU rule (machine-limits.ts): the default machine type with the accelerator `auto`
    // picks, bounded by QEMU's own cpu-max when the probe has it.
    const limit = vcpuLimitOnHost({ arch, machine: null, accel: 'auto' }, caps);
    if (limit) maxCpus[arch] = limit.max;
  }
  return {
    os: caps.os,
    arch: caps.hostArch,
    binaries: arches,
    firmware: (Object.keys(caps.firmware) as Arch[]).filter((a) => caps.firmware[a] !== undefined),
    accels: caps.accels,
    memoryMiB: Math.floor(machine.totalMemBytes / 1024 ** 2),
    cores: Math.max(1, caps.hostCpus ?? machine.cores),
    maxCpus,
  };
}

/** `host.defaults`: the defaults and limits for a new VM of `options.arch` (else the default arch).
 *  An arch without QEMU still gets an answer; `arches` tells the form what can run. */
export function defaultsFor(caps: HostCapabilities, options: HostDefaultsOptions, machine?: MachineFigures): HostDefaults {
  const facts = hostFacts(caps, machine);
  return hostDefaults(facts, options.arch ?? defaultArch(facts));
}
