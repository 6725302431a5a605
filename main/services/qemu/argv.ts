/**
 * The QEMU command line for a VM, as a pure function of its config, the host's capabilities and its
 * paths: no I/O, no clock, no environment. Everything host-specific (which binary, which
 * accelerator works, where the firmware is) was probed elsewhere and arrives in `caps`, so golden
 * tests can pin the whole argv for every host kind.
 *
 * The argv is assembled from small sections, each returning `readonly string[]`, in a fixed order
 * (see `buildQemuArgs`). The line follows shared/qemu-notes.md §1.1/§1.2; comments here say why a
 * piece deviates from or adds to it.
 *
 * Security rules carried here: QEMU never listens on TCP (QMP, VNC, serial and the guest agent are
 * unix sockets in the private runtime dir; port forwards bind 127.0.0.1), and the extra raw
 * arguments are appended verbatim only because the user set them on purpose.
 */
import { ErrorCode, VivariumError, assertNever } from '../../common/errors';
import { pickAccel, versionAtLeast, formatVersion } from '../../common/models/host';
import type { HostCapabilities, QemuBinary, UefiFirmware } from '../../common/models/host';
import { diskImages } from '../../common/models/vm-config';
import type { Accel, Arch, Disk, DiskFormat, ImageSource, VmConfig } from '../../common/models/vm-config';
import type { VmPaths } from '../paths';
import type { LaunchPlan, SideProcess } from './launch-plan';
import { aarch64HasGicV3, vcpuLimit, type VcpuLimit } from '../../common/models/machine-limits';
import { sharesArgs } from './shares-args';

/** @deprecated the launch plan; kept so callers written before it compile. */
export type BuiltArgv = LaunchPlan;

export interface BuildOptions {
  /** Add `-S`: QEMU sets everything up but leaves the vCPUs stopped until QMP `cont`. */
  readonly startPaused?: boolean;
}

/** Node and device names the rest of the engine refers to (QMP commands, stats). */
export const QemuIds = {
  qmpChardev: 'qmp',
  serialChardev: 'ser0',
  agentChardev: 'qga0',
  agentPort: 'qgaport',
  iothread: 'io0',
  fwCode: 'fw-code',
  fwVars: 'fw-vars',
  /** The first CD drive's node and qdev id (every CD drive's are its id: cd0, cd1, …). */
  cdromNode: 'cd0',
  cdromDevice: 'cd0',
  netdev: 'net0',
  nic: 'nic0',
  balloon: 'balloon0',
  video: 'video0',
  clipboardChardev: 'vdagent0',
  clipboardPort: 'vdaport',
} as const;

/** The guest agent's well-known virtio-serial port name (qemu-guest-agent looks for it). */
const AGENT_PORT_NAME = 'org.qemu.guest_agent.0';
/** The SPICE agent's port name: spice-vdagent in the guest talks to QEMU's qemu-vdagent on it. */
export const VDAGENT_PORT_NAME = 'com.redhat.spice.0';

// ---- option strings ----------------------------------------------------------------------------

/**
 * QEMU's option parser (QemuOpts and keyval, used by -blockdev, -chardev, -device, -vnc, -netdev)
 * splits on commas; a literal comma inside a value is written doubled. Every value that can hold a
 * path or other free text goes through here.
 */
export function escapeOptionValue(value: string): string {
  return value.replace(/,/g, ',,');
}

type OptPart = string | readonly [key: string, value: string | number] | null | false;

/**
 * Joins option parts with commas: a bare string is emitted as is (an implied first value such as
 * the driver or machine type; never user text), a `[key, value]` pair as `key=value` with the value
 * escaped, and null/false parts are dropped so optional pieces read inline.
 */
function opts(...parts: readonly OptPart[]): string {
  const out: string[] = [];
  for (const p of parts) {
    if (p === null || p === false) continue;
    out.push(typeof p === 'string' ? p : `${p[0]}=${escapeOptionValue(String(p[1]))}`);
  }
  return out.join(',');
}

// ---- resolving what the host can do -----------------------------------------------------------

interface Ctx {
  readonly config: VmConfig;
  readonly caps: HostCapabilities;
  readonly paths: VmPaths;
  readonly binary: QemuBinary;
  readonly accel: Accel;
  /** null: no pflash firmware (BIOS/SeaBIOS on x86, or an aarch64 direct kernel boot). */
  readonly firmware: UefiFirmware | null;
}

const ACCEL_NAME: Readonly<Record<Accel, string>> = {
  kvm: 'KVM',
  hvf: 'HVF (Hypervisor.framework)',
  tcg: 'TCG emulation',
};

function unsupported(message: string, data?: unknown): VivariumError {
  return new VivariumError(ErrorCode.Unsupported, message, data);
}

function qemuInstallHint(caps: HostCapabilities, arch: Arch): string {
  switch (caps.os) {
    case 'linux':
      return `Install it (Debian/Ubuntu: sudo apt install ${arch === 'x86_64' ? 'qemu-system-x86' : 'qemu-system-arm'})`;
    case 'darwin':
      return 'Install it with Homebrew (brew install qemu)';
    case 'win32':
      return 'Install QEMU from qemu.org';
    default:
      return assertNever(caps.os, 'host OS');
  }
}

function firmwareInstallHint(caps: HostCapabilities, arch: Arch): string {
  switch (caps.os) {
    case 'linux':
      return `Install it (Debian/Ubuntu: sudo apt install ${arch === 'x86_64' ? 'ovmf' : 'qemu-efi-aarch64'})`;
    case 'darwin':
      return "Homebrew's qemu ships it: reinstall it (brew reinstall qemu)";
    case 'win32':
      return 'Reinstall QEMU from qemu.org, which ships it';
    default:
      return assertNever(caps.os, 'host OS');
  }
}

function resolveBinary(config: VmConfig, caps: HostCapabilities): QemuBinary {
  const binary = caps.binaries[config.arch];
  if (!binary) {
    // qemu-missing rather than unsupported: the fix is an install, and the UI can offer it.
    throw new VivariumError(
      ErrorCode.QemuMissing,
      `No QEMU for ${config.arch} guests was found (qemu-system-${config.arch}). ${qemuInstallHint(caps, config.arch)}, then run \`vivarium doctor\` to check.`,
      { arch: config.arch },
    );
  }
  return binary;
}

function resolveAccel(config: VmConfig, caps: HostCapabilities, binary: QemuBinary): Accel {
  const arch = config.arch;
  const status = pickAccel(caps, arch, config.accel);
  if (config.accel === 'auto') {
    if (!status) {
      throw unsupported(
        `Nothing on this host can run ${arch} guests, not even TCG emulation. Run \`vivarium doctor\` to see what is missing.`,
        { arch },
      );
    }
  } else {
    const fallback = pickAccel(caps, arch, 'auto');
    const instead = fallback ? ` Set the VM's accelerator to "auto" to use ${ACCEL_NAME[fallback.accel]} instead.` : '';
    if (!status) {
      throw unsupported(`The VM is set to use ${ACCEL_NAME[config.accel]}, which this host does not offer for ${arch} guests.${instead}`, {
        arch,
        accel: config.accel,
      });
    }
    if (!status.usable && !status.forceable) {
      throw unsupported(
        `The VM is set to use ${ACCEL_NAME[config.accel]}, but it cannot be used here: ${status.reason}${instead}`,
        { arch, accel: config.accel, reason: status.reason },
      );
    }
  }
  if (!binary.accels.includes(status.accel)) {
    throw unsupported(
      `${binary.path} (QEMU ${formatVersion(binary.version)}) was built without ${ACCEL_NAME[status.accel]}. Install a QEMU build that has it, or set the VM's accelerator to "tcg".`,
      { arch, accel: status.accel },
    );
  }
  return status.accel;
}

/**
 * The UEFI firmware a VM uses on this host: the Secure Boot build with Microsoft-enrolled variables
 * when `config.secureBoot`, else the plain build; undefined when the host has none. Its
 * `varsTemplate` is what the VM's variable store is made from (create, edit, a start that finds the
 * store missing).
 */
export function uefiFirmwareFor(config: Pick<VmConfig, 'arch' | 'secureBoot'>, caps: Pick<HostCapabilities, 'firmware' | 'secureFirmware'>): UefiFirmware | undefined {
  return config.secureBoot ? caps.secureFirmware?.[config.arch] : caps.firmware[config.arch];
}

function resolveFirmware(config: VmConfig, caps: HostCapabilities): UefiFirmware | null {
  const arch = config.arch;
  switch (config.firmware) {
    case 'bios':
      // aarch64 `virt` has no BIOS: without UEFI nothing can boot a disk or CD. A direct kernel boot
      // needs no firmware at all (QEMU loads the kernel itself), so that case is allowed.
      if (arch === 'aarch64' && !config.kernel) {
        throw unsupported(
          'aarch64 virtual machines have no BIOS: they need UEFI firmware to boot from a disk or CD. Set the VM\'s firmware to "uefi" (or boot a kernel directly).',
          { arch, firmware: 'bios' },
        );
      }
      return null;
    case 'uefi': {
      const fw = uefiFirmwareFor(config, caps);
      if (!fw && config.secureBoot) {
        throw unsupported(
          `This VM uses Secure Boot, but no Secure Boot build of the UEFI firmware with Microsoft's keys enrolled was found for ${arch} guests. ${firmwareInstallHint(caps, arch)}, or turn Secure Boot off.`,
          { arch, secureBoot: true },
        );
      }
      if (!fw) {
        const orBios = arch === 'x86_64' ? ' Or set the VM\'s firmware to "bios".' : '';
        throw unsupported(
          `This VM boots with UEFI, but no UEFI firmware for ${arch} guests was found. ${firmwareInstallHint(caps, arch)}, then run \`vivarium doctor\` to check.${orBios}`,
          { arch, firmware: 'uefi' },
        );
      }
      if (!config.uefiVars) {
        throw new VivariumError(
          ErrorCode.InvalidState,
          `This VM boots with UEFI but its config names no UEFI variable store ("uefiVars"). Set "uefiVars" to a qcow2 copy of ${fw.varsTemplate} inside the VM's folder, or set the firmware to "bios".`,
          { firmware: 'uefi' },
        );
      }
      return fw;
    }
    default:
      return assertNever(config.firmware, 'firmware');
  }
}

/** HVF on QEMU before 8.0 has no GICv3, so aarch64 guests get GICv2, which stops at 8 vCPUs. */
function hvfHasGicV3(binary: QemuBinary): boolean {
  return aarch64HasGicV3('hvf', binary.version);
}

/** The vCPU limit (common/models/machine-limits.ts, one home for the rule) for this resolved build. */
function cpuLimit(ctx: Ctx): VcpuLimit {
  const { config, binary, accel } = ctx;
  const machine = config.machine ?? (config.arch === 'x86_64' ? 'q35' : 'virt');
  return vcpuLimit({ arch: config.arch, machine: config.machine, accel, qemuVersion: binary.version, cpuMax: binary.cpuMax?.[machine] ?? null });
}

function checkLimits(ctx: Ctx): void {
  const { config } = ctx;
  const limit = cpuLimit(ctx);
  if (config.cpus > limit.max) {
    const raise = limit.raiseBy ? `, or ${limit.raiseBy}` : '';
    throw new VivariumError(
      ErrorCode.Unsupported,
      `${capitalize(limit.because)}. Lower the VM's CPU count to ${limit.max}${raise}.`,
      { cpus: config.cpus, max: limit.max },
      { field: 'cpus', remedy: { kind: 'lower', field: 'cpus', max: limit.max } },
    );
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// ---- sections ----------------------------------------------------------------------------------

/**
 * Identity: reattach checks `/proc/PID/cmdline` for `guest=<uuid>` and QMP `query-uuid`.
 * `process=` (the Linux comm, shown by top/ps) and `debug-threads=` are Linux-only: elsewhere QEMU
 * exits with "Change of process name not supported" and complains about thread naming.
 */
function identitySection(ctx: Ctx): readonly string[] {
  const { id } = ctx.config;
  const linux = ctx.caps.os === 'linux';
  const name = opts(['guest', id], linux && ['process', `qemu-${id.slice(0, 8)}`], linux && ['debug-threads', 'on']);
  return ['-name', name, '-uuid', id, '-nodefaults', '-no-user-config', '-msg', 'timestamp=on'];
}

/**
 * TCG translation-cache size in MiB: as much as the guest has RAM, between 256 MiB and QEMU 7.2's
 * own default of 1 GiB. The cache holds translated guest code; once full, QEMU flushes all of it and
 * translates again, which is what a full Debian boot (systemd, then cloud-init's Python) paid with a
 * quarter of RAM (a 1 GiB sandbox took 7-14% longer to reach SSH with 256 MiB: issue 11's bench).
 * Pages are touched lazily, so a guest that runs little code never makes a big cache resident; a
 * 256 MiB busybox guest keeps a 256 MiB cap.
 */
export function tcgTranslationCacheMiB(memoryMiB: number): number {
  return Math.min(1024, Math.max(256, Math.floor(memoryMiB)));
}

function accelOption(ctx: Ctx): string {
  switch (ctx.accel) {
    case 'kvm':
    case 'hvf':
      return ctx.accel;
    case 'tcg':
      // MTTCG: one host thread per vCPU. For x86 guests on arm64 hosts QEMU warns about the weaker
      // host memory order, but inserts the barriers the guest needs.
      return opts('tcg', ['thread', 'multi'], ['tb-size', tcgTranslationCacheMiB(ctx.config.memoryMiB)]);
    default:
      return assertNever(ctx.accel, 'accelerator');
  }
}

/**
 * aarch64 interrupt controller. GICv2 (QEMU's default) stops at 8 vCPUs, so ask for GICv3:
 *  - KVM: `max`, the best the host's GIC can virtualize (v2-only hosts such as GIC-400 boards get
 *    v2; a fixed `3` would fail there);
 *  - TCG: `3`, QEMU's emulated GICv3 (`max` would also pick 3 today, but pinning it keeps the
 *    guest hardware stable across QEMU updates);
 *  - HVF: `3` from QEMU 8.0, which added GICv3 to HVF; before that, leave the default (GICv2) —
 *    checkLimits() refuses more than 8 vCPUs there.
 */
function gicVersion(ctx: Ctx): string | null {
  switch (ctx.accel) {
    case 'kvm':
      return 'max';
    case 'tcg':
      return '3';
    case 'hvf':
      return hvfHasGicV3(ctx.binary) ? '3' : null;
    default:
      return assertNever(ctx.accel, 'accelerator');
  }
}

/**
 * Accelerator and board. `config.machine` replaces only the type (e.g. a pinned `pc-q35-7.2` or
 * `virt-7.2`); the arch's properties stay, so an override must be a variant of q35/pc or virt.
 */
function machineSection(ctx: Ctx): readonly string[] {
  const { config, firmware } = ctx;
  const pflash: readonly OptPart[] = firmware ? [['pflash0', QemuIds.fwCode], ['pflash1', QemuIds.fwVars]] : [];
  switch (config.arch) {
    case 'x86_64': {
      // Secure Boot OVMF builds keep their variables safe in SMM and hang without it; the plain
      // build runs with SMM off (less emulated surface).
      const smm = firmware?.secureBoot ? 'on' : 'off';
      const machine = opts(config.machine ?? 'q35', ['smm', smm], ['vmport', 'off'], ['dump-guest-core', 'off'], ...pflash);
      return ['-accel', accelOption(ctx), '-machine', machine, '-rtc', 'base=utc,driftfix=slew'];
    }
    case 'aarch64': {
      // QEMU before 7.0 with HVF rejected the high memory map on Apple's 36-bit IPA ("VCPU supports
      // less PA bits"); from 7.0 highmem=on is right and sizes itself to the host (Lima #703).
      const highmem = ctx.accel === 'hvf' && !versionAtLeast(ctx.binary.version, 7, 0) ? 'off' : 'on';
      const gic = gicVersion(ctx);
      const machine = opts(config.machine ?? 'virt', ['highmem', highmem], gic !== null && ['gic-version', gic], ['dump-guest-core', 'off'], ...pflash);
      return ['-accel', accelOption(ctx), '-machine', machine];
    }
    default:
      return assertNever(config.arch, 'arch');
  }
}

/**
 * CPU model. With a hypervisor, the host CPU. Intel Macs under HVF: 1 GiB pages and AVX-512VL are
 * advertised but break guests there, so they are masked (as Lima does). Under TCG, `max` (all
 * features QEMU can emulate; notes: it aborts only under the broken kvm_pvm, never under TCG). For
 * aarch64 TCG, `pauth-impdef=on` swaps the architected QARMA pointer-auth hash — very slow to
 * emulate — for QEMU's cheap one; guests cannot tell.
 */
function cpuSection(ctx: Ctx): readonly string[] {
  const { config, caps, accel } = ctx;
  let cpu: string;
  if (accel === 'tcg') {
    cpu = config.arch === 'aarch64' && versionAtLeast(ctx.binary.version, 6, 0) ? 'max,pauth-impdef=on' : 'max';
  } else if (accel === 'hvf' && caps.os === 'darwin' && config.arch === 'x86_64') {
    cpu = 'host,-pdpe1gb,-avx512vl';
  } else {
    cpu = 'host';
  }
  const n = config.cpus;
  return ['-cpu', cpu, '-smp', `${n},sockets=1,cores=${n},threads=1`];
}

function memorySection(ctx: Ctx): readonly string[] {
  return ['-m', String(ctx.config.memoryMiB), '-overcommit', 'mem-lock=off'];
}

/**
 * Host-side hardening and bookkeeping. Seccomp with spawn=deny: nothing this argv uses forks
 * (no smb=, no tap scripts, no exec: migration). The pidfile is locked by QEMU while it runs.
 */
function hostSection(ctx: Ctx): readonly string[] {
  const sandbox = ctx.caps.seccomp
    ? ['-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny']
    : [];
  return [...sandbox, '-pidfile', ctx.paths.runtime.pidfile];
}

function qmpSection(ctx: Ctx): readonly string[] {
  return [
    '-chardev',
    opts('socket', ['id', QemuIds.qmpChardev], ['path', ctx.paths.runtime.qmp], ['server', 'on'], ['wait', 'off']),
    '-mon',
    opts(['chardev', QemuIds.qmpChardev], ['mode', 'control']),
  ];
}

/**
 * UEFI as two pflash devices fed by -blockdev: the read-only code image straight from the host's
 * firmware package, and the VM's own variable store (qcow2, so internal snapshots include it).
 * The machine option points pflash0/pflash1 at these nodes (machineSection).
 */
function firmwareSection(ctx: Ctx): readonly string[] {
  const fw = ctx.firmware;
  const varsName = ctx.config.uefiVars;
  if (!fw || !varsName) return [];
  const vars = ctx.paths.bundle.file(varsName);
  const codeFile = `${QemuIds.fwCode}-file`;
  const varsFile = `${QemuIds.fwVars}-file`;
  return [
    '-blockdev',
    opts(['driver', 'file'], ['filename', fw.code], ['node-name', codeFile], ['read-only', 'on']),
    '-blockdev',
    opts(['driver', fw.codeFormat], ['file', codeFile], ['node-name', QemuIds.fwCode], ['read-only', 'on']),
    '-blockdev',
    opts(['driver', 'file'], ['filename', vars], ['node-name', varsFile], imageLockingForced(ctx.caps) && ['locking', 'on']),
    '-blockdev',
    qcow2Node({ file: varsFile, nodeName: QemuIds.fwVars, backing: null, direct: false, readOnly: false, plain: true }),
    // Secure Boot builds also need the varstore flash to be reachable from SMM only.
    ...(fw.secureBoot ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []),
  ];
}

/** Direct kernel boot. Each value is its own argv element: no shell, no escaping (QEMU takes
 *  these strings whole, commas included). */
function kernelSection(ctx: Ctx): readonly string[] {
  const k = ctx.config.kernel;
  if (!k) return [];
  return [
    '-kernel',
    k.path,
    ...(k.initrd ? ['-initrd', k.initrd] : []),
    ...(k.append ? ['-append', k.append] : []),
  ];
}

/**
 * Boot order as bootindex values, from `config.bootOrder` (default disk, then CD): every disk gets
 * one (the system disk first, then the others in list order), each CD drive one, the NIC one; a kind
 * left out of the order gets none, so the firmware never boots it. Disk before CD needs no edit
 * after installing: a blank disk is not bootable (SeaBIOS finds no 0x55AA boot signature, OVMF no
 * EFI system partition), so the firmware goes on to the installer CD, and once the OS is installed
 * the disk boots with the ISO still inserted (checked against SeaBIOS by the boot-order test). A
 * direct kernel boot outranks every bootindex (SeaBIOS's linuxboot ROM has index 0; OVMF/AAVMF try
 * the fw_cfg kernel first), so it needs no special case.
 */
function bootIndexes(config: VmConfig): { readonly disks: ReadonlyMap<string, number>; readonly cdroms: ReadonlyMap<string, number>; readonly nic: number | null } {
  const disks = new Map<string, number>();
  const cdroms = new Map<string, number>();
  let nic: number | null = null;
  let next = 1;
  for (const kind of config.bootOrder) {
    if (kind === 'disk') {
      const ordered = [...config.disks.filter((d) => d.role === 'system'), ...config.disks.filter((d) => d.role !== 'system')];
      for (const d of ordered) disks.set(d.id, next++);
    } else if (kind === 'cd') {
      // Every CD drive, empty ones too: a CD inserted while the VM runs boots at its next reset.
      for (const d of config.cdroms) cdroms.set(d.id, next++);
    } else {
      nic = next++;
    }
  }
  return { disks, cdroms, nic };
}

/** The TPM's files: state in the bundle (kept across starts), the control socket in the private
 *  runtime folder (gone with the run). */
export function tpmPaths(paths: VmPaths): { readonly stateDir: string; readonly socket: string; readonly log: string } {
  return { stateDir: paths.bundle.file('tpm'), socket: `${paths.runtime.dir}/swtpm.sock`, log: paths.bundle.file('swtpm.log') };
}

/**
 * TPM 2.0: a per-VM swtpm, started before QEMU as a launch-plan side process and ended with it
 * (`--terminate`: it also ends by itself once QEMU closes the connection), the way libvirt runs it
 * (`swtpm socket --tpm2 --tpmstate dir=… --ctrl type=unixio,path=… --terminate`). Ready when its
 * control socket exists (a probing connection would count as the client for --terminate). QEMU
 * talks to it over the socket: `-tpmdev emulator`; the device is the TIS interface (x86 `tpm-tis`,
 * which Linux and Windows 11 drive; aarch64 `tpm-tis-device` on the virt board's sysbus).
 */
function tpmPlan(ctx: Ctx): { readonly args: readonly string[]; readonly side: SideProcess | null } {
  if (!ctx.config.tpm) return { args: [], side: null };
  const swtpm = ctx.caps.swtpm;
  if (!swtpm) {
    const hint = ctx.caps.os === 'darwin' ? 'brew install swtpm' : ctx.caps.os === 'linux' ? 'Debian/Ubuntu: sudo apt install swtpm' : 'install swtpm';
    throw unsupported(`This VM has a TPM, which needs swtpm (the TPM emulator), and it was not found. Install it (${hint}), or turn the VM's TPM off.`, { tpm: true });
  }
  const p = tpmPaths(ctx.paths);
  const side: SideProcess = {
    name: 'swtpm',
    binary: swtpm,
    args: ['socket', '--tpm2', '--tpmstate', `dir=${p.stateDir},mode=0600`, '--ctrl', `type=unixio,path=${p.socket},mode=0600`, '--terminate'],
    readyWhen: { kind: 'file', path: p.socket },
    readyTimeoutMs: 10_000,
    lifetime: 'vm',
    stopTimeoutMs: 3000,
    logFile: p.log,
    stateDirs: [p.stateDir],
  };
  const device = ctx.config.arch === 'x86_64' ? 'tpm-tis' : 'tpm-tis-device';
  return {
    args: ['-chardev', opts('socket', ['id', 'chrtpm'], ['path', p.socket]), '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', `${device},tpmdev=tpm0`],
    side,
  };
}

/** `-boot menu=on` when the VM asks for the firmware's boot menu (SeaBIOS: "Press ESC for boot
 *  menu"; OVMF: the boot manager key). */
function bootMenuSection(ctx: Ctx): readonly string[] {
  return ctx.config.bootMenu ? ['-boot', 'menu=on'] : [];
}

function imagePath(ctx: Ctx, source: ImageSource): string {
  return 'bundle' in source ? ctx.paths.bundle.file(source.bundle) : source.path;
}

/** Guest-style device ids: virtio `vda`, `vdb`, … by place in the disk list (the config allows at
 *  most 8 disks); SATA `sda`, … and NVMe `nvme0`, … by place among the disks on that bus. */
function diskDeviceId(disks: readonly Disk[], index: number): string {
  const disk = disks[index] as Disk;
  const letter = (n: number) => String.fromCharCode(0x61 + n);
  const nth = disks.slice(0, index).filter((d) => d.bus === disk.bus).length;
  switch (disk.bus) {
    case 'virtio':
      return `vd${letter(index)}`;
    case 'sata':
      return `sd${letter(nth)}`;
    case 'nvme':
      return `nvme${nth}`;
    default:
      return assertNever(disk.bus, 'disk bus');
  }
}

/** The AHCI controller SATA disks sit on: q35's built-in one (its ports are buses `ide.0`..`ide.5`),
 *  or on aarch64 `virt` (which has none) an `ich9-ahci` Vivarium adds (`ahci0.0`..`ahci0.5`). */
const AHCI_ID = 'ahci0';

/**
 * AHCI port buses, from one place so CD drives and SATA disks never share a port. x86: CD drives
 * first, in list order (so cd0 stays on `ide.0`, where it always was), then SATA disks in disk-list
 * order; adding a CD drive can move a SATA disk to a later port (guests find their disks by UUID and
 * the firmware by bootindex, so nothing depends on the port). aarch64: CDs are on virtio-scsi, so
 * SATA disks take the added controller's ports in order. The config schema keeps the total at six.
 */
export function ahciPorts(config: Pick<VmConfig, 'arch' | 'disks' | 'cdroms'>): { readonly cdroms: ReadonlyMap<string, string>; readonly disks: ReadonlyMap<string, string> } {
  const cdroms = new Map<string, string>();
  const disks = new Map<string, string>();
  const bus = config.arch === 'x86_64' ? (n: number) => `ide.${n}` : (n: number) => `${AHCI_ID}.${n}`;
  let port = 0;
  if (config.arch === 'x86_64') for (const d of config.cdroms) cdroms.set(d.id, bus(port++));
  for (const d of config.disks) if (d.bus === 'sata') disks.set(d.id, bus(port++));
  return { cdroms, disks };
}

/**
 * Node names of one disk's chain, top first: the top image's format node is the disk id (QMP
 * commands and stats refer to it), backing layer i is `<id>-b<i>`; each has a protocol (file)
 * node `<name>-file`. All are at most 15 characters, well under QEMU's 31.
 */
export function diskNodeNames(disk: Pick<Disk, 'id' | 'backing'>): readonly string[] {
  return [disk.id, ...disk.backing.map((_, i) => `${disk.id}-b${i}`)];
}

interface LayerNode {
  readonly path: string;
  readonly format: DiskFormat;
  readonly nodeName: string;
  /** The node below this one, or null: the bottom (or a standalone image). */
  readonly backing: string | null;
  readonly readOnly: boolean;
}

/**
 * Whether writable images get `locking=on`. QEMU's default `auto` locks only where OFD locks exist
 * (`use_lock = qemu_has_ofd_lock()` in block/file-posix.c), and macOS has none: without `on`, a
 * second QEMU could open a running VM's disk. `on` falls back to POSIX locks there (QEMU warns that
 * they "can be lost unexpectedly"; the engine's start lock and the pidfile stay the first guard).
 * Linux keeps `auto` (OFD locks). qemu-notes.md "Stopping double starts".
 */
export function imageLockingForced(caps: Pick<HostCapabilities, 'os'>): boolean {
  return caps.os === 'darwin';
}

/**
 * One image as a protocol node plus a format node. The format is always given (an untrusted image
 * must never pick its own), and a qcow2 node always names its backing explicitly: the next layer's
 * node, or null at the bottom, so a backing file named in an image header is never opened
 * (qemu-notes §8). Writable images get discard + zero detection (guest TRIM shrinks the qcow2);
 * read-only ones are read-only on both nodes. O_DIRECT + native AIO where the host has them.
 */
function imageNodes(layer: LayerNode, direct: boolean, forceLocking: boolean): readonly string[] {
  const fileNode = `${layer.nodeName}-file`;
  const ro = layer.readOnly;
  return [
    '-blockdev',
    opts(
      ['driver', 'file'],
      ['filename', layer.path],
      ['node-name', fileNode],
      direct && ['cache.direct', 'on'],
      direct && ['aio', 'native'],
      ro ? ['read-only', 'on'] : ['discard', 'unmap'],
      !ro && forceLocking && ['locking', 'on'],
    ),
    '-blockdev',
    layer.format === 'qcow2'
      ? qcow2Node({ file: fileNode, nodeName: layer.nodeName, backing: layer.backing, direct, readOnly: ro })
      : opts(
          ['driver', layer.format],
          ['file', fileNode],
          ['node-name', layer.nodeName],
          direct && ['cache.direct', 'on'],
          ro ? ['read-only', 'on'] : ['discard', 'unmap'],
          !ro && ['detect-zeroes', 'unmap'],
        ),
  ];
}

/**
 * Disks, each on its bus: virtio-blk with a shared iothread (the iothread object is made only when
 * a virtio disk exists), SATA as `ide-hd` on an AHCI port (ahciPorts; on aarch64 after an added
 * `ich9-ahci`), NVMe as one `nvme` controller per disk with the disk as its namespace 1 (the
 * controller's `serial` is required; the disk id, so the guest's /dev/disk/by-id name is stable).
 * Each disk's chain is emitted bottom first (a node must exist before another names it as its
 * backing); backing layers are always read-only.
 */
function drivesSection(ctx: Ctx): readonly string[] {
  const { config, caps } = ctx;
  if (config.disks.length === 0) return [];
  const direct = caps.nativeAio;
  const boot = bootIndexes(config).disks;
  const ports = ahciPorts(config).disks;
  const out: string[] = [];
  if (config.disks.some((d) => d.bus === 'virtio')) out.push('-object', opts('iothread', ['id', QemuIds.iothread]));
  if (config.arch === 'aarch64' && ports.size > 0) out.push('-device', opts('ich9-ahci', ['id', AHCI_ID]));
  config.disks.forEach((disk, i) => {
    const names = diskNodeNames(disk);
    const layers = diskImages(disk).map(
      (img, j): LayerNode => ({
        path: imagePath(ctx, img.source),
        format: img.format,
        nodeName: names[j] as string,
        backing: names[j + 1] ?? null,
        readOnly: j > 0 || disk.readOnly,
      }),
    );
    for (const layer of [...layers].reverse()) out.push(...imageNodes(layer, direct, imageLockingForced(ctx.caps)));
    const id: OptPart = ['id', diskDeviceId(config.disks, i)];
    const bootindex: OptPart = boot.has(disk.id) && ['bootindex', boot.get(disk.id) as number];
    switch (disk.bus) {
      case 'virtio':
        out.push('-device', opts('virtio-blk-pci', id, ['drive', disk.id], ['iothread', QemuIds.iothread], bootindex));
        break;
      case 'sata':
        out.push('-device', opts('ide-hd', id, ['bus', ports.get(disk.id) as string], ['drive', disk.id], bootindex));
        break;
      case 'nvme':
        out.push('-device', opts('nvme', id, ['serial', disk.id], ['drive', disk.id], bootindex));
        break;
      default:
        assertNever(disk.bus, 'disk bus');
    }
  });
  return out;
}

/**
 * A qcow2 format node whose backing is exactly what Vivarium says: another node's name, or null.
 * A qcow2 names its own backing file, and an image from elsewhere could name any host file
 * (qemu-notes §8). Only the JSON form can say `"backing": null` — in the dotted form
 * `backing=null` names a node "null".
 */
function qcow2Node(o: { file: string; nodeName: string; backing: string | null; direct: boolean; readOnly: boolean; plain?: boolean }): string {
  return JSON.stringify({
    driver: 'qcow2',
    file: o.file,
    'node-name': o.nodeName,
    backing: o.backing,
    ...(o.direct ? { cache: { direct: true } } : {}),
    ...(o.readOnly ? { 'read-only': true } : o.plain ? {} : { discard: 'unmap', 'detect-zeroes': 'unmap' }),
  });
}

/**
 * CD drives (raw, read-only; an empty drive has no node and QEMU gives it an empty tray, so a CD
 * can be inserted while the VM runs). Node names and qdev ids are the drive ids (cd0, cd1, …;
 * `blockdev-change-medium`/`eject` name the qdev id). x86: ports of the q35 board's built-in AHCI
 * (ahciPorts) — every OS installer has an AHCI driver. aarch64 `virt` has no IDE/AHCI, so:
 * virtio-scsi + scsi-cd (QEMU gives each the next free SCSI target). Chosen over usb-storage
 * because it is fast, AAVMF boots from it, Linux/BSD installers carry the driver, and media can be
 * changed at run time. Guests without virtio drivers (Windows on Arm) will need usb-storage; that
 * is a later OS preset.
 */
function cdromSection(ctx: Ctx): readonly string[] {
  const { config } = ctx;
  if (config.cdroms.length === 0) return [];
  const boot = bootIndexes(config).cdroms;
  const ports = ahciPorts(config).cdroms;
  const out: string[] = [];
  for (const [i, cd] of config.cdroms.entries()) {
    if (cd.path !== null) {
      const fileNode = `${cd.id}-file`;
      out.push(
        '-blockdev',
        opts(['driver', 'file'], ['filename', cd.path], ['node-name', fileNode], ['read-only', 'on']),
        '-blockdev',
        opts(['driver', 'raw'], ['file', fileNode], ['node-name', cd.id], ['read-only', 'on']),
      );
    }
    const bootindex: OptPart = boot.has(cd.id) && ['bootindex', boot.get(cd.id) as number];
    const drive: OptPart = cd.path !== null && ['drive', cd.id];
    switch (config.arch) {
      case 'x86_64':
        out.push('-device', opts('ide-cd', ['id', cd.id], ['bus', ports.get(cd.id) as string], drive, bootindex));
        break;
      case 'aarch64':
        // The controller right before the first drive (where it always was: cd0's line is unchanged).
        if (i === 0) out.push('-device', opts('virtio-scsi-pci', ['id', 'scsi0']));
        out.push('-device', opts('scsi-cd', ['id', cd.id], ['bus', 'scsi0.0'], drive, bootindex));
        break;
      default:
        assertNever(config.arch, 'arch');
    }
  }
  return out;
}

/**
 * User-mode networking. Port forwards always bind 127.0.0.1: a forward on 0.0.0.0 would expose
 * the guest's SSH to the whole network. With mode "none" there is no NIC at all (-nodefaults
 * already dropped QEMU's default one). On aarch64 the NIC gets no option ROM: QEMU's
 * efi-virtio.rom is x86 code (AAVMF has its own virtio-net driver) and a missing ROM file would
 * stop QEMU from starting.
 */
function netSection(ctx: Ctx): readonly string[] {
  const { network, arch } = ctx.config;
  switch (network.mode) {
    case 'none':
      return [];
    case 'user': {
      const forwards = network.forwards.map(
        (f): OptPart => ['hostfwd', `${f.protocol}:127.0.0.1:${f.hostPort}-:${f.guestPort}`],
      );
      return [
        '-netdev',
        opts('user', ['id', QemuIds.netdev], ...forwards),
        '-device',
        opts(
          network.model ?? 'virtio-net-pci',
          ['id', QemuIds.nic],
          ['netdev', QemuIds.netdev],
          ['mac', network.mac],
          arch === 'aarch64' && ['romfile', ''],
          bootIndexes(ctx.config).nic !== null && ['bootindex', bootIndexes(ctx.config).nic as number],
        ),
      ];
    }
    default:
      return assertNever(network.mode, 'network mode');
  }
}

/** Entropy for the guest's early boot, and a balloon that gives memory back to the host. */
function miscDevicesSection(_ctx: Ctx): readonly string[] {
  return [
    '-object',
    'rng-random,id=rng0,filename=/dev/urandom',
    '-device',
    'virtio-rng-pci,rng=rng0',
    '-device',
    opts('virtio-balloon-pci', ['id', QemuIds.balloon], ['deflate-on-oom', 'on'], ['free-page-reporting', 'on']),
  ];
}

/** qemu-guest-agent's channel: IPs, graceful shutdown, time sync after host sleep. */
function agentSection(ctx: Ctx): readonly string[] {
  return [
    '-device',
    'virtio-serial-pci,id=vser0',
    '-chardev',
    opts('socket', ['id', QemuIds.agentChardev], ['path', ctx.paths.runtime.qga], ['server', 'on'], ['wait', 'off']),
    '-device',
    opts(
      'virtserialport',
      ['bus', 'vser0.0'],
      ['chardev', QemuIds.agentChardev],
      ['id', QemuIds.agentPort],
      ['name', AGENT_PORT_NAME],
    ),
    ...clipboardSection(ctx),
  ];
}

/**
 * Clipboard sharing for the graphical console: QEMU's built-in qemu-vdagent (6.1+) speaks to
 * spice-vdagent in the guest and to VNC clients through the extended clipboard (qemu-notes §4).
 * mouse=off because usb-tablet already gives an absolute pointer. Only with a display.
 */
function clipboardSection(ctx: Ctx): readonly string[] {
  if (ctx.config.display !== 'vnc' || !versionAtLeast(ctx.binary.version, 6, 1)) return [];
  return [
    '-chardev',
    opts('qemu-vdagent', ['id', QemuIds.clipboardChardev], ['name', 'vdagent'], ['clipboard', 'on'], ['mouse', 'off']),
    '-device',
    opts('virtserialport', ['bus', 'vser0.0'], ['chardev', QemuIds.clipboardChardev], ['id', QemuIds.clipboardPort], ['name', VDAGENT_PORT_NAME]),
  ];
}

/** The first serial port on a unix socket, logged to the bundle even when no one is connected (the
 *  log is emptied at each start and kept bounded by logs/serial-log.ts). */
function serialSection(ctx: Ctx): readonly string[] {
  return [
    '-chardev',
    opts(
      'socket',
      ['id', QemuIds.serialChardev],
      ['path', ctx.paths.runtime.serial],
      ['server', 'on'],
      ['wait', 'off'],
      ['logfile', ctx.paths.bundle.serialLog],
      // O_APPEND, so Vivarium may truncate the log in place to keep it bounded (logs/serial-log.ts);
      // without it QEMU truncates the log when it opens it and then writes at its own offset.
      ['logappend', 'on'],
    ),
    '-serial',
    `chardev:${QemuIds.serialChardev}`,
  ];
}

/**
 * Display. VNC on a unix socket only (the engine relays it; never TCP). virtio-vga on x86 keeps a
 * VGA core, so SeaBIOS and OVMF both draw on it; aarch64 has no VGA, virtio-gpu-pci is what AAVMF
 * and Linux drive. Both forward client resizes to the guest. Pointer: usb-tablet (absolute, so
 * the VNC cursor lines up); keyboard: q35 has PS/2 built in, virt needs usb-kbd. Headless VMs get
 * no video or input devices at all, and `-display none` so QEMU opens no local window.
 */
function displaySection(ctx: Ctx): readonly string[] {
  const { config, paths } = ctx;
  switch (config.display) {
    case 'none':
      return ['-display', 'none'];
    case 'vnc': {
      const aarch64 = config.arch === 'aarch64';
      return [
        '-device',
        'qemu-xhci,id=xhci',
        '-device',
        'usb-tablet,bus=xhci.0',
        ...(aarch64 ? ['-device', 'usb-kbd,bus=xhci.0'] : []),
        '-device',
        opts(aarch64 ? 'virtio-gpu-pci' : 'virtio-vga', ['id', QemuIds.video]),
        '-vnc',
        `unix:${escapeOptionValue(paths.runtime.vnc)}`,
      ];
    }
    default:
      return assertNever(config.display, 'display');
  }
}

// ---- the whole line ----------------------------------------------------------------------------

/**
 * Builds the full command line. Throws VivariumError when the VM cannot run on this host: no QEMU
 * for its arch (qemu-missing), accelerator forced but unusable, UEFI without firmware, aarch64 with
 * BIOS, too many vCPUs for the interrupt controller (unsupported), UEFI without a variable store
 * (invalid-state).
 */
export function buildQemuArgs(config: VmConfig, caps: HostCapabilities, paths: VmPaths, options: BuildOptions = {}): LaunchPlan {
  const binary = resolveBinary(config, caps);
  const accel = resolveAccel(config, caps, binary);
  const firmware = resolveFirmware(config, caps);
  const ctx: Ctx = { config, caps, paths, binary, accel, firmware };
  checkLimits(ctx);
  const tpm = tpmPlan(ctx);

  const args = [
    ...identitySection(ctx),
    ...machineSection(ctx),
    ...cpuSection(ctx),
    ...memorySection(ctx),
    ...hostSection(ctx),
    ...qmpSection(ctx),
    ...firmwareSection(ctx),
    ...kernelSection(ctx),
    ...bootMenuSection(ctx),
    ...drivesSection(ctx),
    ...cdromSection(ctx),
    ...netSection(ctx),
    ...miscDevicesSection(ctx),
    ...agentSection(ctx),
    ...serialSection(ctx),
    ...displaySection(ctx),
    ...sharesArgs(config.shares),
    ...tpm.args,
    ...(options.startPaused ? ['-S'] : []),
    // Last and verbatim: the user's explicit advanced setting may override anything above.
    ...config.extraArgs,
  ];
  return { binary: binary.path, args, accel, sideProcesses: tpm.side ? [tpm.side] : [], generatedFiles: [], warnings: [] };
}
