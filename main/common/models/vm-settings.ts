/**
 * One home for every settings rule and default of a VM: what a new VM gets when the user leaves a
 * setting alone, and which combinations are refused — with the field each refusal concerns and a
 * structured remedy (main/common/errors.ts), so every front end shows the same rule in its own words.
 *
 * Pure: no I/O, no clock, no randomness. The host is a plain object of facts (`HostFacts`, built by
 * main/services/host-defaults.ts from the host probe); ids, the creation time and the MAC address
 * come in with the call. The rules that need no host (forwards need networking, an ISO or a kernel
 * but not both…) sit on the zod schemas themselves (contract/vms.ts, VmConfig) with field paths, so
 * a form gets them from `safeParse` too; this module adds the ones that need the host or the
 * current config, and fills the defaults.
 */
import type { AccelStatus, HostOs } from './host';
import { VIRT_MAX_VCPUS, X86_MAX_VCPUS_WITHOUT_IOMMU } from './machine-limits';
import {
  type AccelChoice,
  type Arch,
  type DiskFormat,
  type Firmware,
  MIN_MEMORY_MIB,
  RULE_MESSAGES,
  VmConfig,
  CONFIG_VERSION,
  bundleDiskFile,
  formatMiB,
  nextDiskId,
  primaryIso,
  withPrimaryIso,
} from './vm-config';
import type { z } from 'zod';
import { CreateVmSpec, EditVmSpec, issueRemedy } from '../contract/vms';
import { issueText, pathWords } from '../rpc/issue-words';
import { ErrorCode, VivariumError, type FieldIssue as WireFieldIssue, type Packages, type Remedy, type SettingField } from '../errors';

// ---- facts and defaults ------------------------------------------------------------------------------

/** What the settings rules need to know about the host. Plain data: tests write it by hand. */
export interface HostFacts {
  readonly os: HostOs;
  /** The host's CPU architecture (QEMU's naming). */
  readonly arch: Arch;
  /** Guest architectures with a qemu-system binary. */
  readonly binaries: readonly Arch[];
  /** Guest architectures with UEFI firmware found. */
  readonly firmware: readonly Arch[];
  /** Per guest architecture, every accelerator the probe knows and whether it works (with why). */
  readonly accels: Partial<Readonly<Record<Arch, readonly AccelStatus[]>>>;
  /** Total host memory, MiB. */
  readonly memoryMiB: number;
  /** Logical host CPUs. */
  readonly cores: number;
  /** Per guest architecture, the most vCPUs its default machine type starts with here. */
  readonly maxCpus: Partial<Readonly<Record<Arch, number>>>;
}

/** Settings a new VM gets on this host when the user leaves them alone, and the form's limits. */
export interface HostDefaults {
  readonly arch: Arch;
  /** Guest architectures this host can run (a qemu-system binary is installed). */
  readonly arches: readonly Arch[];
  readonly firmware: Firmware;
  /** Firmware kinds a VM of `arch` can use here ("bios" is x86_64 only; "uefi" needs firmware). */
  readonly firmwares: readonly Firmware[];
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly diskSizeBytes: number;
  readonly limits: {
    readonly minCpus: 1;
    /** What the machine type starts (vCPUs). */
    readonly maxCpus: number;
    /** More vCPUs than this runs but slowly: a warning, not an error. */
    readonly hostCores: number;
    readonly minMemoryMiB: number;
    /** The host's memory, MiB. */
    readonly maxMemoryMiB: number;
  };
}

/** Fixed defaults: the one place they are written. Host-aware ones are derived in `hostDefaults`. */
export const DEFAULTS = {
  cpus: 2,
  memoryMiB: 2048,
  diskSizeBytes: 20 * 1024 ** 3,
  stopTimeoutSec: 30,
  startTimeoutSec: 120,
  accel: 'auto',
  net: 'user',
  display: 'vnc',
  os: 'Other',
} as const;

/** vCPUs the default machine type starts with, for hosts whose facts do not say (the engine's
 *  facts come from machine-limits.ts `vcpuLimitOnHost`, the one vCPU rule). */
export const MACHINE_MAX_CPUS: Readonly<Record<Arch, number>> = { x86_64: X86_MAX_VCPUS_WITHOUT_IOMMU, aarch64: VIRT_MAX_VCPUS };

function maxCpusFor(host: HostFacts, arch: Arch): number {
  return host.maxCpus[arch] ?? MACHINE_MAX_CPUS[arch];
}

/** The guest architecture a VM gets unless told: the host's own when it can run it. */
export function defaultArch(host: HostFacts): Arch {
  if (host.binaries.includes(host.arch)) return host.arch;
  return host.binaries[0] ?? 'x86_64';
}

/** aarch64 `virt` has no BIOS: UEFI there; BIOS on x86_64 (what the most installers expect). */
export function defaultFirmware(arch: Arch): Firmware {
  return arch === 'aarch64' ? 'uefi' : 'bios';
}

/** Round down to a multiple of 256 MiB. */
const round256 = (mib: number): number => Math.floor(mib / 256) * 256;

/** The host-aware defaults and limits for a new VM of `arch` (default: `defaultArch`). */
export function hostDefaults(host: HostFacts, arch: Arch = defaultArch(host)): HostDefaults {
  const maxCpus = maxCpusFor(host, arch);
  const cores = Math.max(1, host.cores);
  const maxMemoryMiB = Math.max(MIN_MEMORY_MIB, Math.floor(host.memoryMiB));
  const firmwares: Firmware[] = arch === 'x86_64' ? ['bios', 'uefi'] : ['uefi'];
  return {
    arch,
    arches: [...host.binaries],
    firmware: defaultFirmware(arch),
    firmwares,
    cpus: Math.max(1, Math.min(DEFAULTS.cpus, cores, maxCpus)),
    // Never more than half the host, and a whole number of 256 MiB steps.
    memoryMiB: Math.max(MIN_MEMORY_MIB, Math.min(DEFAULTS.memoryMiB, round256(maxMemoryMiB / 2) || MIN_MEMORY_MIB)),
    diskSizeBytes: DEFAULTS.diskSizeBytes,
    limits: { minCpus: 1, maxCpus, hostCores: cores, minMemoryMiB: MIN_MEMORY_MIB, maxMemoryMiB },
  };
}

// ---- names -----------------------------------------------------------------------------------------

/**
 * The form of a name used to compare two names: trimmed, Unicode NFKC (so "café" typed as one code
 * point or as "e" + combining accent is the same name, and so are width and compatibility forms:
 * fullwidth "ｇ1" is "g1", "ﬁ" is "fi") and case-folded. JavaScript has no full case folding; upper-
 * then lower-casing covers the cases lowercasing misses ("ß" and "SS", final sigma). UAX #15.
 */
export function nameKey(name: string): string {
  return name.trim().normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/** Two names the library treats as the same. */
export function sameName(a: string, b: string): boolean {
  return nameKey(a) === nameKey(b);
}

export interface LibraryName {
  readonly id: string;
  readonly name: string;
}

/** The VM whose name clashes with `name`, ignoring `exceptId` (the VM being renamed). */
export function findNameClash(name: string, library: readonly LibraryName[], exceptId: string | null = null): LibraryName | null {
  const key = nameKey(name);
  return library.find((v) => v.id !== exceptId && nameKey(v.name) === key) ?? null;
}

// ---- results ----------------------------------------------------------------------------------------

/** A problem with one setting, as the rules find it: which code it is, the field, a sentence
 *  fragment in words every front end can show (no flags, no control names), and a remedy. */
export interface SettingIssue {
  readonly code: ErrorCode;
  readonly field: SettingField;
  readonly message: string;
  readonly remedy: Remedy;
}

export type SettingsResult =
  | { readonly ok: true; readonly config: VmConfig; readonly warnings: readonly SettingIssue[] }
  | { readonly ok: false; readonly errors: readonly SettingIssue[] };

/**
 * The error a create or edit throws for a failed result: the first issue's code, field and remedy,
 * every issue in `fields`, and a message that lists them ("Memory: …; CPUs: …").
 */
export function settingsError(errs: readonly SettingIssue[]): VivariumError {
  const first = errs[0];
  if (!first) return new VivariumError(ErrorCode.Internal, 'Internal error: a settings check failed without saying why. Please report this as a bug.');
  const parts = errs.map(issueClause);
  const fields: WireFieldIssue[] = errs.map((e, i) => ({ field: e.field, message: parts[i]!, remedy: e.remedy }));
  const message = parts.join('; ');
  return new VivariumError(first.code, `${message}.`, undefined, { field: first.field, remedy: first.remedy, fields });
}

/** An issue as a clause that names its field in words ("Memory must be…", "CPUs: the machine…"):
 *  no flag, no form control. */
function issueClause(e: SettingIssue): string {
  const word = FIELD_WORDS[e.field];
  // A message that names its field already, or is a sentence of its own (capital or number first:
  // "4 GiB is more memory than…", "KVM cannot work here…"), needs no "Field:" before it.
  const standsAlone = e.message.toLowerCase().startsWith(word.toLowerCase()) || /^[A-Z0-9]/.test(e.message);
  return standsAlone ? capitalize(e.message) : `${capitalize(word)}: ${e.message}`;
}

/** A warning (settings that work but are unwise) as a sentence for any front end, without its
 *  remedy: "4 CPUs is more than this host's 2; the VM will run, but slower than with 2 or fewer." */
export function noticeText(w: SettingIssue): string {
  return `${issueClause(w)}.`;
}

/** Human words for each setting, for sentences that must not name a flag or a form control. */
export const FIELD_WORDS: Readonly<Record<SettingField, string>> = {
  name: 'name',
  arch: 'architecture',
  cpus: 'CPUs',
  memoryMiB: 'memory',
  accel: 'accelerator',
  firmware: 'firmware',
  diskSizeBytes: 'disk size',
  diskPath: 'disk image',
  iso: 'ISO image',
  kernel: 'kernel',
  initrd: 'initrd',
  append: 'kernel command line',
  net: 'network',
  forwards: 'port forwards',
  display: 'display',
  os: 'operating system label',
};

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Where a VmConfig path or a spec key lands among the settings ("network.forwards" → forwards). */
export function settingFieldOf(path: readonly PropertyKey[]): SettingField | null {
  const [a, b] = path.map(String);
  switch (a) {
    case 'cdroms':
      return 'iso';
    case 'kernel':
      return b === 'initrd' ? 'initrd' : b === 'append' ? 'append' : 'kernel';
    case 'network':
      return b === 'forwards' ? 'forwards' : 'net';
    case 'disks':
      return 'diskPath';
    case 'uefiVars':
      return 'firmware';
    default: {
      const parsed = SETTING_FIELDS.has(a ?? '') ? (a as SettingField) : null;
      return parsed;
    }
  }
}
const SETTING_FIELDS: ReadonlySet<string> = new Set<SettingField>(Object.keys(FIELD_WORDS) as SettingField[]);

/** zod issues → setting issues (issues no setting owns go to `name`'s neighbour: the first field). */
function schemaIssues(issues: readonly z.core.$ZodIssue[], vm: string | undefined): SettingIssue[] {
  const out: SettingIssue[] = [];
  const onVm = vm ? { vm } : {};
  for (const i of issues) {
    const field = settingFieldOf(i.path) ?? 'name';
    const rule = issueRemedy(i);
    const remedy: Remedy = rule ? ('vm' in rule || !['change-setting', 'lower', 'rename'].includes(rule.kind) ? rule : ({ ...rule, ...onVm } as Remedy)) : { kind: 'change-setting', field, ...onVm };
    out.push({ code: ErrorCode.InvalidArgument, field, message: `${pathWordsPrefix(i.path, field)}${issueText(i)}`, remedy });
  }
  return out;
}

/** "port forward 1: host port " for nested paths; "" for a setting itself (the setting's word is
 *  added by `settingsError`). */
function pathWordsPrefix(path: readonly PropertyKey[], field: SettingField): string {
  const rest = path.slice(field === 'forwards' && path[0] === 'network' ? 2 : 1);
  const words = pathWords(rest);
  return words === '' ? '' : `${words} `;
}

// ---- the host rules ------------------------------------------------------------------------------------

/** Packages that bring QEMU for a guest architecture, per platform. */
export function qemuPackages(arch: Arch): Packages {
  return arch === 'aarch64'
    ? { debian: ['qemu-system-arm', 'qemu-efi-aarch64'], fedora: ['qemu-system-aarch64', 'edk2-aarch64'], macos: ['qemu'] }
    : { debian: ['qemu-system-x86'], fedora: ['qemu-kvm'], macos: ['qemu'] };
}

/** Packages that bring UEFI firmware for a guest architecture, per platform. */
export function firmwarePackages(arch: Arch): Packages {
  return arch === 'aarch64'
    ? { debian: ['qemu-efi-aarch64'], fedora: ['edk2-aarch64'], macos: ['qemu'] }
    : { debian: ['ovmf'], fedora: ['edk2-ovmf'], macos: ['qemu'] };
}

interface Candidate {
  readonly arch: Arch;
  readonly firmware: Firmware;
  readonly accel: AccelChoice;
  readonly cpus: number;
  readonly memoryMiB: number;
}

/** Rules that need the host; `changed` limits them to what a create sets or an edit touches, so an
 *  old VM is not refused for a setting nobody changed. */
function hostIssues(c: Candidate, host: HostFacts, changed: ReadonlySet<SettingField>, vm: string | undefined): { errors: SettingIssue[]; warnings: SettingIssue[] } {
  const errors: SettingIssue[] = [];
  const warnings: SettingIssue[] = [];
  const onVm = vm ? { vm } : {};
  if (!host.binaries.includes(c.arch) && changed.has('arch')) {
    errors.push({
      code: ErrorCode.QemuMissing,
      field: 'arch',
      message: `QEMU for ${c.arch} guests (qemu-system-${c.arch}) is not installed`,
      remedy: { kind: 'install', what: `QEMU for ${c.arch} guests`, packages: qemuPackages(c.arch) },
    });
  }
  if (changed.has('firmware') || changed.has('arch')) {
    if (c.firmware === 'bios' && c.arch !== 'x86_64') {
      errors.push({
        code: ErrorCode.InvalidArgument,
        field: 'firmware',
        message: `${c.arch} guests boot with UEFI only`,
        remedy: { kind: 'change-setting', field: 'firmware', to: 'uefi', ...onVm },
      });
    } else if (c.firmware === 'uefi' && !host.firmware.includes(c.arch) && host.binaries.includes(c.arch)) {
      errors.push({
        code: ErrorCode.Unsupported,
        field: 'firmware',
        message: `no UEFI firmware for ${c.arch} guests was found on this host`,
        remedy:
          c.arch === 'x86_64' && changed.has('firmware') && vm === undefined
            ? { kind: 'change-setting', field: 'firmware', to: 'bios' }
            : { kind: 'install', what: `UEFI firmware for ${c.arch} guests`, packages: firmwarePackages(c.arch) },
      });
    }
  }
  if (changed.has('accel') && c.accel !== 'auto' && host.binaries.includes(c.arch)) {
    const status = (host.accels[c.arch] ?? []).find((a) => a.accel === c.accel);
    if (!status) {
      errors.push({
        code: ErrorCode.Unsupported,
        field: 'accel',
        message: `${c.accel.toUpperCase()} is not available for ${c.arch} guests on this host`,
        remedy: { kind: 'change-setting', field: 'accel', to: 'auto', ...onVm },
      });
    } else if (!status.usable && !status.forceable) {
      errors.push({
        code: ErrorCode.Unsupported,
        field: 'accel',
        message: `${c.accel.toUpperCase()} cannot work here: ${status.reason.replace(/\.$/, '')}`,
        remedy: { kind: 'change-setting', field: 'accel', to: 'auto', ...onVm },
      });
    }
    if (status && !status.usable && status.forceable) {
      // Chosen on purpose where `auto` would not pick it (kvm_pvm): allowed, with the probe's reason.
      warnings.push({
        code: ErrorCode.Unsupported,
        field: 'accel',
        // The probe's reason ends with what `auto` does instead, which is not what happens now.
        message: `${c.accel.toUpperCase()} may not work here (auto would not pick it): ${status.reason.replace(/\.$/, '').replace(/, so Vivarium uses .*$/, '')}`,
        remedy: { kind: 'change-setting', field: 'accel', to: 'auto', ...onVm },
      });
    }
  }
  const limits = hostDefaults(host, c.arch).limits;
  const checked = checkLimits(
    { cpus: changed.has('cpus') || changed.has('arch') ? c.cpus : undefined, memoryMiB: changed.has('memoryMiB') ? c.memoryMiB : undefined, arch: c.arch },
    limits,
    vm,
  );
  errors.push(...checked.errors);
  warnings.push(...checked.warnings);
  return { errors, warnings };
}

/**
 * The host's limits on CPUs and memory, for the engine and a form alike (a form passes the `limits`
 * of `host.defaults`): CPUs above what the machine type starts and memory above the host's are
 * errors; CPUs above the host's cores a warning. Undefined values are not checked.
 */
export function checkLimits(
  values: { readonly cpus?: number; readonly memoryMiB?: number; readonly arch: Arch },
  limits: HostDefaults['limits'],
  vm?: string,
): { readonly errors: SettingIssue[]; readonly warnings: SettingIssue[] } {
  const errors: SettingIssue[] = [];
  const warnings: SettingIssue[] = [];
  const onVm = vm ? { vm } : {};
  const { cpus, memoryMiB } = values;
  if (cpus !== undefined) {
    if (cpus > limits.maxCpus) {
      errors.push({
        code: ErrorCode.InvalidArgument,
        field: 'cpus',
        message: `the ${values.arch} machine starts with at most ${limits.maxCpus} CPUs`,
        remedy: { kind: 'lower', field: 'cpus', max: limits.maxCpus, ...onVm },
      });
    } else if (cpus > limits.hostCores) {
      warnings.push({
        code: ErrorCode.InvalidArgument,
        field: 'cpus',
        message: `${cpus} CPUs is more than this host's ${limits.hostCores}; the VM will run, but slower than with ${limits.hostCores} or fewer`,
        remedy: { kind: 'lower', field: 'cpus', max: limits.hostCores, ...onVm },
      });
    }
  }
  if (memoryMiB !== undefined && memoryMiB > limits.maxMemoryMiB) {
    errors.push({
      code: ErrorCode.InvalidArgument,
      field: 'memoryMiB',
      message: `${formatMiB(memoryMiB)} is more memory than this host has (${formatMiB(limits.maxMemoryMiB)})`,
      // The remedy names the limit this rule checks (the host's memory, down to a 256 MiB step), not
      // a lower figure: 16G on a 24G host is accepted, so "use 12032M or less" would be untrue.
      remedy: { kind: 'lower', field: 'memoryMiB', max: Math.max(MIN_MEMORY_MIB, round256(limits.maxMemoryMiB) || limits.maxMemoryMiB), ...onVm },
    });
  }
  return { errors, warnings };
}

function nameIssue(name: string, library: readonly LibraryName[], exceptId: string | null, vm: string | undefined): SettingIssue | null {
  const clash = findNameClash(name, library, exceptId);
  if (!clash) return null;
  const same = clash.name.trim() === name.trim();
  return {
    code: ErrorCode.AlreadyExists,
    field: 'name',
    message: same
      ? `A VM named "${clash.name}" already exists`
      : `A VM named "${clash.name}" already exists (names are compared ignoring case, character width and how accents are encoded)`,
    remedy: { kind: 'rename', taken: clash.name, ...(vm ? { vm } : {}) },
  };
}

// ---- create and edit ------------------------------------------------------------------------------------

/** What a new config needs that is not a setting: made by the caller (ids, time, randomness, files). */
export interface NewConfigContext {
  /** A fresh UUID. */
  readonly id: string;
  /** ISO 8601 time of creation. */
  readonly createdAt: string;
  /** A fresh locally administered MAC ("52:54:00:xx:xx:xx"). */
  readonly mac: string;
  /** Bundle file names (main/services/paths.ts BundleFile). */
  readonly files: { readonly uefiVars: string };
  /** The format of `spec.diskPath` as qemu-img found it; required when the spec gives one. */
  readonly diskPathFormat?: DiskFormat;
  /** The VMs already in the library, for the name rule. */
  readonly library?: readonly LibraryName[];
}

/**
 * A new VM's config from a create spec: defaults filled (host-aware, the same values `hostDefaults`
 * shows a form), every rule applied. Returns the config and warnings (vCPUs above the host's cores),
 * or every error found, each with its field and remedy.
 *
 * The spec may be raw (it is parsed with CreateVmSpec first, so the schema's own rules apply).
 */
export function newConfig(rawSpec: unknown, host: HostFacts, ctx: NewConfigContext): SettingsResult {
  const parsedSpec = CreateVmSpec.safeParse(rawSpec);
  if (!parsedSpec.success) return { ok: false, errors: schemaIssues(parsedSpec.error.issues, undefined) };
  const spec = parsedSpec.data;
  const errors: SettingIssue[] = [];
  const nameProblem = nameIssue(spec.name, ctx.library ?? [], null, undefined);
  if (nameProblem) errors.push(nameProblem);

  const arch = spec.arch ?? defaultArch(host);
  const d = hostDefaults(host, arch);
  const candidate: Candidate = {
    arch,
    firmware: spec.firmware ?? d.firmware,
    accel: spec.accel ?? DEFAULTS.accel,
    cpus: spec.cpus ?? d.cpus,
    memoryMiB: spec.memoryMiB ?? d.memoryMiB,
  };
  // A create checks everything it sets, default or chosen.
  const all = new Set<SettingField>(['arch', 'firmware', 'accel', 'cpus', 'memoryMiB']);
  const fromHost = hostIssues(candidate, host, all, undefined);
  errors.push(...fromHost.errors);

  const disks: unknown[] = [];
  const systemDisk = nextDiskId([]);
  if (spec.diskPath !== undefined) {
    if (ctx.diskPathFormat === undefined) {
      errors.push({
        code: ErrorCode.InvalidArgument,
        field: 'diskPath',
        message: 'the disk image could not be identified as qcow2 or raw',
        remedy: { kind: 'change-setting', field: 'diskPath' },
      });
    }
    disks.push({ id: systemDisk, role: 'system', bus: spec.diskBus ?? 'virtio', source: { path: spec.diskPath }, format: ctx.diskPathFormat ?? 'raw', readOnly: false });
  } else if ((spec.diskSizeBytes ?? d.diskSizeBytes) > 0) {
    disks.push({ id: systemDisk, role: 'system', bus: spec.diskBus ?? 'virtio', source: { bundle: bundleDiskFile(systemDisk) }, format: 'qcow2', readOnly: false });
  }
  const raw = {
    version: CONFIG_VERSION,
    id: ctx.id,
    name: spec.name,
    createdAt: ctx.createdAt,
    arch,
    accel: candidate.accel,
    machine: null,
    cpus: candidate.cpus,
    memoryMiB: candidate.memoryMiB,
    firmware: candidate.firmware,
    uefiVars: candidate.firmware === 'uefi' ? ctx.files.uefiVars : null,
    disks,
    cdroms: withPrimaryIso([], spec.iso ?? null),
    kernel: spec.kernel !== undefined ? { path: spec.kernel, initrd: spec.initrd ?? null, append: spec.append ?? '' } : null,
    network: { mode: spec.net ?? DEFAULTS.net, mac: ctx.mac, forwards: spec.forwards ?? [], ...(spec.nicModel !== undefined && spec.nicModel !== 'virtio-net-pci' ? { model: spec.nicModel } : {}) },
    display: spec.display ?? DEFAULTS.display,
    os: spec.os ?? DEFAULTS.os,
    autostart: spec.autostart ?? false,
    bootOrder: spec.bootOrder,
    bootMenu: spec.bootMenu ?? false,
    tpm: spec.tpm ?? false,
    secureBoot: spec.secureBoot ?? false,
    extraArgs: [],
  };
  const parsed = VmConfig.safeParse(raw);
  if (!parsed.success) errors.push(...schemaIssues(parsed.error.issues, undefined));
  if (errors.length > 0 || !parsed.success) return { ok: false, errors: dedupe(errors) };
  return { ok: true, config: parsed.data, warnings: fromHost.warnings };
}

/** What an edit needs besides the config and the patch. */
export interface EditContext {
  /** Bundle file names (main/services/paths.ts BundleFile), for a VM switched to UEFI. */
  readonly files: { readonly uefiVars: string };
  /** The VMs in the library, for the name rule. */
  readonly library?: readonly LibraryName[];
}

/**
 * The config after an edit: unchanged settings kept, null clears (no ISO, no kernel), every rule
 * applied to the result; host rules only for what the patch changes. When the result switches a VM
 * to UEFI and it has no variable store yet, `uefiVars` is set to `ctx.files.uefiVars`: the caller
 * creates that file when `config.uefiVars` was null before.
 */
export function applyEdit(config: VmConfig, rawPatch: unknown, host: HostFacts, ctx: EditContext): SettingsResult {
  const vm = config.name;
  const parsedPatch = EditVmSpec.safeParse(rawPatch);
  if (!parsedPatch.success) return { ok: false, errors: schemaIssues(parsedPatch.error.issues, vm) };
  const patch = parsedPatch.data;
  const errors: SettingIssue[] = [];
  if (patch.name !== undefined) {
    const n = nameIssue(patch.name, ctx.library ?? [], config.id, vm);
    if (n) errors.push(n);
  }
  const kernelPath = patch.kernel === undefined ? (config.kernel?.path ?? null) : patch.kernel;
  if (kernelPath === null && (typeof patch.initrd === 'string' || patch.append !== undefined)) {
    const field: SettingField = typeof patch.initrd === 'string' ? 'initrd' : 'append';
    errors.push({ code: ErrorCode.InvalidArgument, field, message: RULE_MESSAGES.kernelPartsNeedKernel, remedy: { kind: 'change-setting', field: 'kernel', vm } });
  }
  const kernel =
    kernelPath === null
      ? null
      : {
          path: kernelPath,
          initrd: patch.initrd === undefined ? (config.kernel?.initrd ?? null) : patch.initrd,
          append: patch.append ?? config.kernel?.append ?? '',
        };
  const cdroms = patch.iso === undefined ? config.cdroms : withPrimaryIso(config.cdroms, patch.iso);
  const cdrom = primaryIso({ cdroms });
  // A VM may carry both from before this rule; refuse only an edit that touches either.
  if (cdrom !== null && kernel !== null && (patch.iso !== undefined || patch.kernel !== undefined)) {
    const field: SettingField = typeof patch.kernel === 'string' ? 'kernel' : 'iso';
    errors.push({ code: ErrorCode.InvalidArgument, field, message: RULE_MESSAGES.isoOrKernel, remedy: { kind: 'change-setting', field: field === 'kernel' ? 'iso' : 'kernel', to: null, vm } });
  }
  // Secure Boot on a BIOS VM implies UEFI, as at create (`--secure-boot` alone), with a notice.
  const impliedUefi = patch.secureBoot === true && patch.firmware === undefined && config.firmware !== 'uefi';
  const firmware = patch.firmware ?? (impliedUefi ? 'uefi' : config.firmware);
  const candidate: Candidate = {
    arch: config.arch,
    firmware,
    accel: patch.accel ?? config.accel,
    cpus: patch.cpus ?? config.cpus,
    memoryMiB: patch.memoryMiB ?? config.memoryMiB,
  };
  const changed = new Set<SettingField>();
  for (const k of ['firmware', 'accel', 'cpus', 'memoryMiB'] as const) if (patch[k] !== undefined) changed.add(k);
  if (impliedUefi) changed.add('firmware');
  const fromHost = hostIssues(candidate, host, changed, vm);
  errors.push(...fromHost.errors);
  const warnings: SettingIssue[] = [...fromHost.warnings];
  if (impliedUefi) {
    warnings.push({
      code: ErrorCode.InvalidArgument,
      field: 'firmware',
      message: 'Secure Boot needs UEFI firmware, so the firmware was switched from BIOS to UEFI (an operating system installed under BIOS may not boot under UEFI)',
      remedy: { kind: 'change-setting', field: 'firmware', to: 'bios', vm },
    });
  }
  const bootOrder = patch.bootOrder ?? config.bootOrder;
  const netMode = patch.net ?? config.network.mode;
  if ((patch.bootOrder !== undefined || patch.net !== undefined) && netMode === 'none' && bootOrder?.includes('net')) {
    warnings.push({
      code: ErrorCode.InvalidArgument,
      field: 'net',
      message: 'The boot order has net, but the VM has no network, so it never boots from the network',
      remedy: { kind: 'change-setting', field: 'net', to: 'user', vm },
    });
  }
  const raw = {
    ...config,
    name: patch.name ?? config.name,
    cpus: candidate.cpus,
    memoryMiB: candidate.memoryMiB,
    accel: candidate.accel,
    firmware,
    uefiVars: firmware === 'uefi' && config.uefiVars === null ? ctx.files.uefiVars : config.uefiVars,
    cdroms,
    kernel,
    network: { ...config.network, mode: patch.net ?? config.network.mode, forwards: patch.forwards ?? config.network.forwards },
    display: patch.display ?? config.display,
    os: patch.os ?? config.os,
    autostart: patch.autostart ?? config.autostart,
    bootOrder: patch.bootOrder ?? config.bootOrder,
    bootMenu: patch.bootMenu ?? config.bootMenu,
    tpm: patch.tpm ?? config.tpm,
    secureBoot: patch.secureBoot ?? config.secureBoot,
  };
  const parsed = VmConfig.safeParse(raw);
  if (!parsed.success) errors.push(...schemaIssues(parsed.error.issues, vm));
  if (errors.length > 0 || !parsed.success) return { ok: false, errors: dedupe(errors) };
  return { ok: true, config: parsed.data, warnings };
}

/** One issue per field: the first found (the most specific rule runs first). */
function dedupe(list: readonly SettingIssue[]): SettingIssue[] {
  const seen = new Set<SettingField>();
  return list.filter((i) => (seen.has(i.field) ? false : (seen.add(i.field), true)));
}

/** Throws the result's errors as one VivariumError, or returns the config and warnings. */
export function unwrapSettings(r: SettingsResult): { readonly config: VmConfig; readonly warnings: readonly SettingIssue[] } {
  if (!r.ok) throw settingsError(r.errors);
  return { config: r.config, warnings: r.warnings };
}
