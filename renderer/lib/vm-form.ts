/**
 * The New VM and Settings forms as pure data: text the user typed → a CreateVmSpec or an EditVmSpec
 * patch, or a message per field. The contract's zod schemas decide what is valid (one source of
 * rules with the engine); this module only turns form text into numbers and issues into sentences.
 */
import type { z } from 'zod';
import { CreateVmSpec, EditVmSpec } from '../../main/common/contract';
import { parseSize, type Firmware, type VmConfig } from '../../main/common/models/vm-config';
import { formatMemoryMiB } from './format';

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
  readonly firmware: Firmware;
  readonly network: boolean;
  /** "tcp:2222:22, udp:5353:53": host port (bound to 127.0.0.1) → guest port. */
  readonly forwards: string;
  readonly display: boolean;
}

/** Fields that can carry a message; `form` is for issues no field owns. */
export type VmFormField = 'name' | 'os' | 'iso' | 'kernel' | 'initrd' | 'append' | 'cpus' | 'memory' | 'diskGiB' | 'forwards' | 'form';
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
  forwards: 'Port forwards',
  form: '',
};

export const DEFAULT_VM_FORM: VmFormValues = {
  name: '',
  os: '',
  bootSource: 'iso',
  iso: '',
  kernel: '',
  initrd: '',
  append: '',
  cpus: '2',
  memory: '2G',
  diskGiB: '20',
  firmware: 'bios',
  network: true,
  forwards: '',
  display: true,
};

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

function forwardErrors(v: VmFormValues): FieldErrors {
  const f = parseForwards(v.forwards);
  if (!f.ok) return { forwards: f.message };
  if (!v.network && f.value.length > 0) return { forwards: 'Port forwards need networking: clear them or turn Network on.' };
  return {};
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
  // Custom messages in the schemas read "name must not…" or "must not contain NUL".
  const msg = issue.message.trim();
  if (/^must\b/i.test(msg)) return sentence(`${label} ${msg}`);
  return sentence(msg);
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

// ---- building the spec ---------------------------------------------------------------------------------

interface Common {
  readonly cpus?: number;
  readonly memoryMiB?: number;
  readonly diskSizeBytes?: number;
}

function parseCommon(v: VmFormValues, withDisk: boolean): { readonly values: Common; readonly errors: FieldErrors } {
  const errors: Partial<Record<VmFormField, string>> = {};
  const values: { cpus?: number; memoryMiB?: number; diskSizeBytes?: number } = {};
  const cpus = parseCpus(v.cpus);
  if (cpus.ok) values.cpus = cpus.value;
  else errors.cpus = cpus.message;
  const mem = parseMemoryMiB(v.memory);
  if (mem.ok) values.memoryMiB = mem.value;
  else errors.memory = mem.message;
  if (withDisk) {
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

export function toCreateSpec(v: VmFormValues): FormResult<CreateVmSpec> {
  const { values, errors } = parseCommon(v, true);
  const pre: FieldErrors = { ...errors, ...bootErrors(v), ...forwardErrors(v) };
  const raw: Record<string, unknown> = {
    name: v.name,
    ...values,
    firmware: v.firmware,
    net: v.network ? 'user' : 'none',
    display: v.display ? 'vnc' : 'none',
  };
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
  const bootSource: BootSource = c.kernel ? 'kernel' : c.cdrom ? 'iso' : 'none';
  return {
    name: c.name,
    os: c.os,
    bootSource,
    iso: c.cdrom ?? '',
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
  };
}

/** Only what changed, so editing the CPU count never touches the boot media. */
export function toEditPatch(v: VmFormValues, c: VmConfig): FormResult<EditVmSpec> {
  const { values, errors } = parseCommon(v, false);
  const pre: FieldErrors = { ...errors, ...bootErrors(v), ...forwardErrors(v) };
  const before = formFromConfig(c);
  const raw: Record<string, unknown> = {};
  if (v.name.trim() !== c.name) raw.name = v.name;
  if (v.os.trim() !== c.os) raw.os = v.os.trim();
  if (values.cpus !== undefined && values.cpus !== c.cpus) raw.cpus = values.cpus;
  if (values.memoryMiB !== undefined && values.memoryMiB !== c.memoryMiB) raw.memoryMiB = values.memoryMiB;
  if (v.firmware !== c.firmware) raw.firmware = v.firmware;
  if (v.network !== before.network) raw.net = v.network ? 'user' : 'none';
  const forwards = parseForwards(v.forwards);
  if (forwards.ok && formatForwards(forwards.value) !== before.forwards) raw.forwards = forwards.value;
  if (v.display !== before.display) raw.display = v.display ? 'vnc' : 'none';

  const bootChanged =
    v.bootSource !== before.bootSource ||
    (v.bootSource === 'iso' && v.iso.trim() !== before.iso) ||
    (v.bootSource === 'kernel' &&
      (v.kernel.trim() !== before.kernel || v.initrd.trim() !== before.initrd || v.append.trim() !== before.append));
  if (bootChanged) {
    if (v.bootSource === 'iso') {
      raw.iso = v.iso.trim();
      if (c.kernel) raw.kernel = null;
    } else if (v.bootSource === 'kernel') {
      raw.kernel = v.kernel.trim();
      raw.initrd = v.initrd.trim() === '' ? null : v.initrd.trim();
      raw.append = v.append.trim();
      if (c.cdrom) raw.iso = null;
    } else {
      if (c.cdrom) raw.iso = null;
      if (c.kernel) raw.kernel = null;
    }
  }
  const parsed = EditVmSpec.safeParse(raw);
  if (!parsed.success) return { ok: false, errors: errorsFromIssues(parsed.error.issues, pre) };
  if (hasErrors(pre)) return { ok: false, errors: pre };
  return { ok: true, value: parsed.data };
}
