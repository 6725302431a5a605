/**
 * The New VM and Settings forms as pure data: text the user typed → a CreateVmSpec or an EditVmSpec
 * patch, or a message per field. The contract's zod schemas and the settings rules
 * (main/common/models/vm-settings.ts) decide what is valid — one home with the engine; this module
 * only turns form text into numbers and issues into sentences.
 *
 * A new VM's defaults come from the engine (`host.defaults`): the form shows them, and sends only
 * what the user changed, so the engine fills the rest with the same values for this host.
 */
import type { z } from 'zod';
import { CreateVmSpec, EditVmSpec, issueRemedy } from '../../main/common/contract';
import { parseSize, primaryIso, type Arch, type BootDevice, type Firmware, type VmConfig } from '../../main/common/models/vm-config';
import { checkLimits, type HostDefaults } from '../../main/common/models/vm-settings';
import { formatMemoryMiB } from './format';
import { SETTING_TO_FORM_FIELD, uiRemedy, type VmFormField } from './remedy';

export type { VmFormField } from './remedy';

export type BootSource = 'iso' | 'kernel' | 'none';

export interface VmFormValues {
  readonly name: string;
  readonly os: string;
  readonly bootSource: BootSource;
  readonly iso: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly append: string;
  readonly cpus: string;
  /** "2048" (MiB), "512M", "2G", "1.5GiB". */
  readonly memory: string;
  /** GiB; "0" = no disk. Only when creating. */
  readonly diskGiB: string;
  /** The guest architecture (New VM only); "" or absent = the host's default. */
  readonly arch?: Arch | '';
  /** "" = the host's default (New VM only). */
  readonly firmware: Firmware | '';
  readonly network: boolean;
  /** "tcp:2222:22, udp:5353:53": host port (bound to 127.0.0.1) → guest port. */
  readonly forwards: string;
  readonly display: boolean;
  /** Boot options (Settings; the engine's `edit --boot-order/--boot-menu/--secure-boot/--tpm`).
   *  Absent = not shown, nothing sent. The boot order lists the kinds booted from, first first. */
  readonly bootOrder?: readonly BootDevice[];
  readonly bootMenu?: boolean;
  readonly secureBoot?: boolean;
  readonly tpm?: boolean;
}

/** The boot devices in words, for the boot order list. */
export const BOOT_DEVICE_LABELS: Readonly<Record<BootDevice, string>> = { disk: 'Hard disk', cd: 'CD drive', net: 'Network (PXE)' };

/**
 * The boot order list as the Settings form shows it: every kind once, the ones booted from first
 * (in their order) and checked, the others after them unchecked.
 */
export function bootOrderRows(order: readonly BootDevice[]): readonly { readonly device: BootDevice; readonly enabled: boolean }[] {
  const all: readonly BootDevice[] = ['disk', 'cd', 'net'];
  return [...order.map((device) => ({ device, enabled: true })), ...all.filter((d) => !order.includes(d)).map((device) => ({ device, enabled: false }))];
}

/** Moves a row of the boot order list up (-1) or down (+1); returns the new order of the checked
 *  rows. `rows` as bootOrderRows gives them. */
export function moveBootDevice(order: readonly BootDevice[], device: BootDevice, by: -1 | 1): BootDevice[] {
  const rows = [...bootOrderRows(order)];
  const i = rows.findIndex((r) => r.device === device);
  const j = i + by;
  if (i < 0 || j < 0 || j >= rows.length) return [...order];
  [rows[i], rows[j]] = [rows[j]!, rows[i]!];
  return rows.filter((r) => r.enabled).map((r) => r.device);
}

/** Turns a kind on (added after the others booted from) or off (removed) in the boot order. */
export function toggleBootDevice(order: readonly BootDevice[], device: BootDevice, on: boolean): BootDevice[] {
  const rows = bootOrderRows(order).map((r) => (r.device === device ? { ...r, enabled: on } : r));
  return rows.filter((r) => r.enabled).map((r) => r.device);
}

export type FieldErrors = Readonly<Partial<Record<VmFormField, string>>>;

export type FormResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: FieldErrors };

export const FIELD_LABELS: Readonly<Record<VmFormField, string>> = {
  name: 'Name',
  os: 'Operating system',
  iso: 'ISO image',
  kernel: 'Kernel',
  initrd: 'Initrd',
  append: 'Kernel command line',
  cpus: 'CPUs',
  memory: 'Memory',
  diskGiB: 'Disk size',
  firmware: 'Firmware',
  network: 'Network',
  display: 'Graphical display',
  forwards: 'Port forwards',
  form: '',
};

/** The New VM form before the engine's defaults arrive: hardware fields empty (= the host's
 *  default; nothing is sent for them). */
export const DEFAULT_VM_FORM: VmFormValues = {
  name: '',
  os: '',
  bootSource: 'iso',
  iso: '',
  kernel: '',
  initrd: '',
  append: '',
  cpus: '',
  memory: '',
  diskGiB: '',
  firmware: '',
  network: true,
  forwards: '',
  display: true,
};

/** Memory as the form writes it: "2G" for whole GiB, else "1536M". */
export function memoryText(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}G` : `${mib}M`;
}

function diskText(bytes: number): string {
  const gib = bytes / GIB;
  return Number.isInteger(gib) ? String(gib) : gib.toFixed(1);
}

/** The New VM form showing this host's defaults (`host.defaults`). */
export function formFromDefaults(d: HostDefaults): VmFormValues {
  return { ...DEFAULT_VM_FORM, cpus: String(d.cpus), memory: memoryText(d.memoryMiB), diskGiB: diskText(d.diskSizeBytes), firmware: d.firmware };
}

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Which form field a spec property belongs to. */
const SPEC_FIELD: Readonly<Record<string, VmFormField>> = {
  name: 'name',
  os: 'os',
  iso: 'iso',
  kernel: 'kernel',
  initrd: 'initrd',
  append: 'append',
  cpus: 'cpus',
  memoryMiB: 'memory',
  diskSizeBytes: 'diskGiB',
  forwards: 'forwards',
};

// ---- text → numbers ---------------------------------------------------------------------------------

type Parsed = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly message: string };

export function parseCpus(text: string): Parsed {
  return /^\s*\d+\s*$/.test(text)
    ? { ok: true, value: Number(text) }
    : { ok: false, message: 'CPUs must be a whole number, such as 2.' };
}

/** Plain numbers are MiB; units are accepted ("512M", "2G", "1.5GiB"). */
export function parseMemoryMiB(text: string): Parsed {
  const bytes = parseSize(text, 'M');
  if (bytes === null) return { ok: false, message: 'Memory must be a size such as 2048, 512M or 2G.' };
  const mib = bytes / MIB;
  if (!Number.isInteger(mib)) return { ok: false, message: 'Memory must be a whole number of MiB, such as 1536M.' };
  return { ok: true, value: mib };
}

export function parseDiskBytes(text: string): Parsed {
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text)) return { ok: false, message: 'Disk size must be a number of GiB, such as 20 (0 for no disk).' };
  return { ok: true, value: Math.round(Number(text) * GIB) };
}

type PortForwardValue = { readonly protocol: 'tcp' | 'udp'; readonly hostPort: number; readonly guestPort: number };

/** "tcp:2222:22, udp:5353:53" (commas or spaces between entries; empty = none). */
export function parseForwards(text: string): { readonly ok: true; readonly value: PortForwardValue[] } | { readonly ok: false; readonly message: string } {
  const out: PortForwardValue[] = [];
  for (const item of text.split(/[\s,]+/).filter((x) => x !== '')) {
    const m = /^(tcp|udp):(\d{1,5}):(\d{1,5})$/i.exec(item);
    if (!m) return { ok: false, message: `"${item}" is not a port forward; write them like tcp:2222:22 (host port, then guest port).` };
    out.push({ protocol: m[1]!.toLowerCase() as 'tcp' | 'udp', hostPort: Number(m[2]), guestPort: Number(m[3]) });
  }
  return { ok: true, value: out };
}

export function formatForwards(list: readonly PortForwardValue[]): string {
  return list.map((f) => `${f.protocol}:${f.hostPort}:${f.guestPort}`).join(', ');
}

/** Forwards that do not parse. (Forwards without networking are the schema's rule.) */
function forwardErrors(v: VmFormValues): FieldErrors {
  const f = parseForwards(v.forwards);
  return f.ok ? {} : { forwards: f.message };
}

// ---- issues → sentences -------------------------------------------------------------------------------

function formatLimit(field: VmFormField, n: number): string {
  if (field === 'memory') return formatMemoryMiB(n);
  if (field === 'diskGiB') return `${Math.floor(n / GIB)} GiB`;
  return String(n);
}

function sentence(s: string): string {
  const t = s.trim();
  const capital = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** A zod issue as a sentence that names the field ("Memory must be at least 16 MiB."). */
export function issueMessage(issue: z.core.$ZodIssue, field: VmFormField): string {
  const label = FIELD_LABELS[field] || 'This value';
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    const limit = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
    const isText = issue.origin === 'string';
    if (isText && issue.code === 'too_small' && limit <= 1) return `${label} is required.`;
    const bound = issue.code === 'too_small' ? 'at least' : 'at most';
    return isText ? `${label} must be ${bound} ${limit} characters.` : `${label} must be ${bound} ${formatLimit(field, limit)}.`;
  }
  // Custom messages in the schemas read "name must not…" or "must not contain NUL"; a rule's own
  // remedy follows in the form's words ("Port forwards need networking. Turn Network on.").
  const msg = issue.message.trim();
  const base = /^(must|needs)\b/i.test(msg) ? sentence(`${label} ${msg}`) : sentence(msg);
  const rule = issueRemedy(issue);
  const extra = rule ? uiRemedy(rule, 'form') : null;
  return extra && extra.kind === 'field' ? `${base} ${extra.text}` : base;
}

function errorsFromIssues(issues: readonly z.core.$ZodIssue[], prior: FieldErrors): FieldErrors {
  const out: Partial<Record<VmFormField, string>> = { ...prior };
  for (const issue of issues) {
    const key = issue.path[0];
    const field = typeof key === 'string' ? (SPEC_FIELD[key] ?? 'form') : 'form';
    out[field] ??= issueMessage(issue, field);
  }
  return out;
}

/** The host's limits (from `host.defaults`) applied to the form, with the engine's own rule. */
function limitIssues(values: Common, defaults: HostDefaults | null, vm?: string): { readonly errors: FieldErrors; readonly warnings: FieldErrors } {
  if (!defaults) return { errors: {}, warnings: {} };
  const checked = checkLimits({ cpus: values.cpus, memoryMiB: values.memoryMiB, arch: defaults.arch }, defaults.limits, vm);
  const words = (list: typeof checked.errors): FieldErrors => {
    const out: Partial<Record<VmFormField, string>> = {};
    for (const i of list) {
      const field = SETTING_TO_FORM_FIELD[i.field];
      const r = uiRemedy(i.remedy, 'form');
      out[field] ??= `${sentence(i.message)}${r.kind === 'field' ? ` ${r.text}` : ''}`;
    }
    return out;
  };
  return { errors: words(checked.errors), warnings: words(checked.warnings) };
}

/** Notes that do not block (more CPUs than the host has cores), per field. */
export function formWarnings(v: VmFormValues, defaults: HostDefaults | null): FieldErrors {
  const { values } = parseCommon(v, false, true);
  return limitIssues(values, defaults).warnings;
}

// ---- building the spec ---------------------------------------------------------------------------------

interface Common {
  readonly cpus?: number;
  readonly memoryMiB?: number;
  readonly diskSizeBytes?: number;
}

/** Numbers from the form's text. With `emptyIsDefault` (New VM), an empty field means "the host's
 *  default" and yields no value. */
function parseCommon(v: VmFormValues, withDisk: boolean, emptyIsDefault = false): { readonly values: Common; readonly errors: FieldErrors } {
  const errors: Partial<Record<VmFormField, string>> = {};
  const values: { cpus?: number; memoryMiB?: number; diskSizeBytes?: number } = {};
  const skip = (text: string): boolean => emptyIsDefault && text.trim() === '';
  if (!skip(v.cpus)) {
    const cpus = parseCpus(v.cpus);
    if (cpus.ok) values.cpus = cpus.value;
    else errors.cpus = cpus.message;
  }
  if (!skip(v.memory)) {
    const mem = parseMemoryMiB(v.memory);
    if (mem.ok) values.memoryMiB = mem.value;
    else errors.memory = mem.message;
  }
  if (withDisk && !skip(v.diskGiB)) {
    const disk = parseDiskBytes(v.diskGiB);
    if (disk.ok) values.diskSizeBytes = disk.value;
    else errors.diskGiB = disk.message;
  }
  return { values, errors };
}

function bootErrors(v: VmFormValues): FieldErrors {
  if (v.bootSource === 'iso' && v.iso.trim() === '') {
    return { iso: 'Enter the path of an ISO image, or choose another boot source.' };
  }
  if (v.bootSource === 'kernel' && v.kernel.trim() === '') {
    return { kernel: 'Enter the path of a kernel image, or choose another boot source.' };
  }
  return {};
}

function hasErrors(e: FieldErrors): boolean {
  return Object.keys(e).length > 0;
}

/**
 * The create spec: only what the user chose. A hardware value equal to the host's default (or left
 * empty) is not sent, so the engine fills it — the same value, decided in one place.
 */
export function toCreateSpec(v: VmFormValues, defaults: HostDefaults | null = null): FormResult<CreateVmSpec> {
  const { values, errors } = parseCommon(v, true, true);
  const limits = limitIssues(values, defaults);
  const pre: FieldErrors = { ...errors, ...limits.errors, ...bootErrors(v), ...forwardErrors(v) };
  const chosen: { cpus?: number; memoryMiB?: number; diskSizeBytes?: number } = {};
  if (values.cpus !== undefined && values.cpus !== defaults?.cpus) chosen.cpus = values.cpus;
  if (values.memoryMiB !== undefined && values.memoryMiB !== defaults?.memoryMiB) chosen.memoryMiB = values.memoryMiB;
  if (values.diskSizeBytes !== undefined && values.diskSizeBytes !== defaults?.diskSizeBytes) chosen.diskSizeBytes = values.diskSizeBytes;
  const raw: Record<string, unknown> = {
    name: v.name,
    ...chosen,
    net: v.network ? 'user' : 'none',
    display: v.display ? 'vnc' : 'none',
  };
  if (v.arch) raw.arch = v.arch;
  if (v.firmware !== '' && v.firmware !== defaults?.firmware) raw.firmware = v.firmware;
  const forwards = parseForwards(v.forwards);
  if (forwards.ok && forwards.value.length > 0) raw.forwards = forwards.value;
  if (v.os.trim() !== '') raw.os = v.os.trim();
  if (v.bootSource === 'iso') raw.iso = v.iso.trim();
  if (v.bootSource === 'kernel') {
    raw.kernel = v.kernel.trim();
    if (v.initrd.trim() !== '') raw.initrd = v.initrd.trim();
    if (v.append.trim() !== '') raw.append = v.append.trim();
  }
  const parsed = CreateVmSpec.safeParse(raw);
  if (!parsed.success) return { ok: false, errors: errorsFromIssues(parsed.error.issues, pre) };
  if (hasErrors(pre)) return { ok: false, errors: pre };
  return { ok: true, value: parsed.data };
}

/** The form as it shows an existing VM. */
export function formFromConfig(c: VmConfig): VmFormValues {
  const iso = primaryIso(c);
  const bootSource: BootSource = c.kernel ? 'kernel' : iso ? 'iso' : 'none';
  return {
    name: c.name,
    os: c.os,
    bootSource,
    iso: iso ?? '',
    kernel: c.kernel?.path ?? '',
    initrd: c.kernel?.initrd ?? '',
    append: c.kernel?.append ?? '',
    cpus: String(c.cpus),
    memory: c.memoryMiB % 1024 === 0 ? `${c.memoryMiB / 1024}G` : `${c.memoryMiB}M`,
    diskGiB: '0',
    firmware: c.firmware,
    network: c.network.mode !== 'none',
    forwards: formatForwards(c.network.forwards),
    display: c.display !== 'none',
    bootOrder: c.bootOrder,
    bootMenu: c.bootMenu,
    secureBoot: c.secureBoot,
    tpm: c.tpm,
  };
}

/** Only what changed, so editing the CPU count never touches the boot media. */
export function toEditPatch(v: VmFormValues, c: VmConfig, defaults: HostDefaults | null = null): FormResult<EditVmSpec> {
  const { values, errors } = parseCommon(v, false);
  // Host limits only for what changes: an old VM is not refused for a value nobody touched.
  const touched: Common = {
    ...(values.cpus !== c.cpus ? { cpus: values.cpus } : {}),
    ...(values.memoryMiB !== c.memoryMiB ? { memoryMiB: values.memoryMiB } : {}),
  };
  const limits = limitIssues(touched, defaults ? { ...defaults, arch: c.arch } : null, c.name);
  // The ISO is not typed here (the Hardware tab has the CD drives): only a kernel path is required.
  const pre: Partial<Record<VmFormField, string>> = { ...errors, ...limits.errors, ...(v.bootSource === 'kernel' ? bootErrors(v) : {}), ...forwardErrors(v) };
  const before = formFromConfig(c);
  const raw: Record<string, unknown> = {};
  if (v.name.trim() !== c.name) raw.name = v.name;
  if (v.os.trim() !== c.os) raw.os = v.os.trim();
  if (values.cpus !== undefined && values.cpus !== c.cpus) raw.cpus = values.cpus;
  if (values.memoryMiB !== undefined && values.memoryMiB !== c.memoryMiB) raw.memoryMiB = values.memoryMiB;
  if (v.firmware !== '' && v.firmware !== c.firmware) raw.firmware = v.firmware;
  if (v.network !== before.network) raw.net = v.network ? 'user' : 'none';
  const forwards = parseForwards(v.forwards);
  if (forwards.ok && formatForwards(forwards.value) !== before.forwards) raw.forwards = forwards.value;
  if (v.display !== before.display) raw.display = v.display ? 'vnc' : 'none';

  // Settings boot either with the firmware (the boot order: disks, CD drives — whose ISOs the
  // Hardware tab changes —, network) or a Linux kernel. Going to the kernel takes the ISO out
  // (as before); going back to the firmware only drops the kernel: the CD drives stay as they are.
  if (v.bootSource === 'kernel') {
    if (before.bootSource !== 'kernel' || v.kernel.trim() !== before.kernel || v.initrd.trim() !== before.initrd || v.append.trim() !== before.append) {
      raw.kernel = v.kernel.trim();
      raw.initrd = v.initrd.trim() === '' ? null : v.initrd.trim();
      raw.append = v.append.trim();
      if (primaryIso(c)) raw.iso = null;
    }
  } else if (c.kernel) raw.kernel = null;
  if (v.bootOrder && v.bootOrder.join(',') !== c.bootOrder.join(',')) {
    if (v.bootOrder.length === 0) return { ok: false, errors: { ...pre, form: 'Choose at least one device to boot from.' } };
    raw.bootOrder = [...v.bootOrder];
  }
  if (v.bootMenu !== undefined && v.bootMenu !== c.bootMenu) raw.bootMenu = v.bootMenu;
  if (v.secureBoot !== undefined && v.secureBoot !== c.secureBoot) raw.secureBoot = v.secureBoot;
  if (v.tpm !== undefined && v.tpm !== c.tpm) raw.tpm = v.tpm;
  if (v.secureBoot && (v.firmware || c.firmware) !== 'uefi') pre.firmware = 'Secure Boot needs UEFI firmware: choose UEFI.';
  const parsed = EditVmSpec.safeParse(raw);
  if (!parsed.success) return { ok: false, errors: errorsFromIssues(parsed.error.issues, pre) };
  // The rules on the whole picture (forwards need networking even when only one of them changed).
  const whole = EditVmSpec.safeParse({ ...raw, net: v.network ? 'user' : 'none', ...(forwards.ok ? { forwards: forwards.value } : {}) });
  const wholeErrors = whole.success ? pre : errorsFromIssues(whole.error.issues, pre);
  if (hasErrors(wholeErrors)) return { ok: false, errors: wholeErrors };
  return { ok: true, value: parsed.data };
}
