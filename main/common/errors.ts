/**
 * Expected errors. Every failure a user can cause or fix carries a stable code, the field it
 * concerns (when one does) and a structured remedy; each front end words the remedy its own way —
 * the CLI as a command that exists (main/cli/remedy.ts), the UI as a field message or a button
 * (renderer/lib/remedy.ts). The message says what went wrong in words every front end can show: it
 * names no CLI flag and no UI control. Anything else that escapes is a bug.
 *
 * Errors cross every transport as plain `{code, message, field?, remedy?, data?}` and are rebuilt
 * here on the other side (the remedy re-checked against its schema: the peer is untrusted), so a CLI
 * talking to a running engine reports exactly what an in-process engine would.
 */
import { z } from 'zod';

export const ErrorCode = {
  InvalidArgument: 'invalid-argument',
  NotFound: 'not-found',
  AlreadyExists: 'already-exists',
  InvalidState: 'invalid-state',
  Busy: 'busy',
  BrokenBundle: 'broken-bundle',
  QemuMissing: 'qemu-missing',
  QemuFailed: 'qemu-failed',
  Timeout: 'timeout',
  Unsupported: 'unsupported',
  Unauthorized: 'unauthorized',
  /** No space left (ENOSPC) or quota used up (EDQUOT) where Vivarium writes: expected, not a bug. */
  DiskFull: 'disk-full',
  Internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

// ---- remedies ------------------------------------------------------------------------------------

/**
 * The settings a field error or a remedy can name: the keys of CreateVmSpec / EditVmSpec
 * (main/common/contract/vms.ts). Each front end maps them to its own words (a form field, a flag).
 */
export const SettingField = z.enum([
  'name',
  'arch',
  'cpus',
  'memoryMiB',
  'accel',
  'firmware',
  'diskSizeBytes',
  'diskPath',
  'iso',
  'kernel',
  'initrd',
  'append',
  'net',
  'forwards',
  'display',
  'os',
]);
export type SettingField = z.infer<typeof SettingField>;

/** Package names per platform for an `install` remedy (what to type after apt/dnf/brew install). */
export const Packages = z
  .object({
    debian: z.array(z.string().max(100)).max(8).optional(),
    fedora: z.array(z.string().max(100)).max(8).optional(),
    macos: z.array(z.string().max(100)).max(8).optional(),
  })
  .strict();
export type Packages = z.infer<typeof Packages>;

const VmLabel = z.string().max(200);

/**
 * What the person can do about an expected error, as data. A discriminated union on `kind`:
 *  - `stop-vm`: shut the VM down first (then retry).
 *  - `force-stop`: power the VM off without asking the guest.
 *  - `start-vm`: start the VM first.
 *  - `lower`: lower `field` (cpus or memoryMiB) to at most `max` (CPUs, or MiB).
 *  - `install`: install what is missing (`what`, a sentence fragment such as "QEMU for ARM guests";
 *    `packages` per platform).
 *  - `rename`: choose another name (`taken` is the existing VM's name).
 *  - `change-setting`: change `field`; `to` is a suggested value ("user", "tcg"), `null` clears the
 *    setting (no ISO, no kernel), absent lets the person choose. `vm` when the VM exists already
 *    (an edit), absent while creating.
 *  - `use-id`: a name matches several VMs: refer to it by id.
 *  - `list-vms`: the reference matched nothing: look at the list.
 *  - `retry-later`: someone else is busy with it; `afterSec` when known.
 *  - `start-engine`: the operation needs a long-running engine (the app or `vivarium serve`).
 *  - `see-log`: the VM's log file at `file` (absolute path) says why.
 *  - `check-host`: look at what this host can run (doctor / the Host view).
 */
export const Remedy = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('stop-vm'), vm: VmLabel }).strict(),
  z.object({ kind: z.literal('force-stop'), vm: VmLabel }).strict(),
  z.object({ kind: z.literal('start-vm'), vm: VmLabel }).strict(),
  z.object({ kind: z.literal('lower'), field: z.enum(['cpus', 'memoryMiB']), max: z.number().int().min(0), vm: VmLabel.optional() }).strict(),
  z.object({ kind: z.literal('install'), what: z.string().max(200), packages: Packages }).strict(),
  z.object({ kind: z.literal('rename'), taken: VmLabel, vm: VmLabel.optional() }).strict(),
  z
    .object({ kind: z.literal('change-setting'), field: SettingField, to: z.string().max(4096).nullable().optional(), vm: VmLabel.optional() })
    .strict(),
  z.object({ kind: z.literal('use-id') }).strict(),
  z.object({ kind: z.literal('list-vms') }).strict(),
  z.object({ kind: z.literal('retry-later'), afterSec: z.number().min(0).max(86_400).optional() }).strict(),
  z.object({ kind: z.literal('start-engine') }).strict(),
  z.object({ kind: z.literal('see-log'), file: z.string().max(4096) }).strict(),
  z.object({ kind: z.literal('check-host') }).strict(),
]);
export type Remedy = z.infer<typeof Remedy>;
export type RemedyKind = Remedy['kind'];

/** One field's problem: the path within the argument (a SettingField for VM settings), a sentence
 *  fragment without a flag or control name ("memory must be at least 16 MiB"), and maybe a remedy. */
export const FieldIssue = z
  .object({ field: z.string().max(200), message: z.string().max(2000), remedy: Remedy.optional() })
  .strict();
export type FieldIssue = z.infer<typeof FieldIssue>;

export interface SerializedError {
  readonly code: ErrorCode;
  readonly message: string;
  /** The setting (or argument path) the error concerns, when one does. */
  readonly field?: string;
  readonly remedy?: Remedy;
  /** Every field's problem when several were found at once (a form shows each by its field). */
  readonly fields?: readonly FieldIssue[];
  readonly data?: unknown;
}

export interface ErrorDetails {
  readonly field?: string;
  readonly remedy?: Remedy;
  readonly fields?: readonly FieldIssue[];
}

export class VivariumError extends Error {
  override readonly name = 'VivariumError';
  readonly field: string | undefined;
  readonly remedy: Remedy | undefined;
  readonly fields: readonly FieldIssue[];
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly data?: unknown,
    details: ErrorDetails = {},
  ) {
    super(message);
    this.field = details.field;
    this.remedy = details.remedy;
    this.fields = details.fields ?? [];
  }

  toJSON(): SerializedError {
    return {
      code: this.code,
      message: this.message,
      ...(this.field !== undefined ? { field: this.field } : {}),
      ...(this.remedy !== undefined ? { remedy: this.remedy } : {}),
      ...(this.fields.length > 0 ? { fields: this.fields } : {}),
      ...(this.data !== undefined ? { data: this.data } : {}),
    };
  }

  /** Whether retrying the same call later may succeed (someone else held the VM, a timeout). */
  get retryable(): boolean {
    return this.code === ErrorCode.Busy || this.code === ErrorCode.Timeout;
  }
}

export function isVivariumError(e: unknown): e is VivariumError {
  return e instanceof VivariumError;
}

/** Turns anything thrown into something safe to send: expected errors keep their code, bugs become
 *  `internal` with a message that does not leak a stack trace. */
export function serializeError(e: unknown): SerializedError {
  if (e instanceof VivariumError) return e.toJSON();
  // A full disk can surface from any write (ours, a library's): an expected error, said plainly.
  const errno = (e as { code?: unknown } | null)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return {
      code: ErrorCode.DiskFull,
      message: `The disk holding your library is full${errno === 'EDQUOT' ? ' (your disk quota is used up)' : ''}. Free some space and try again.`,
    };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: ErrorCode.Internal, message: `Internal error: ${message}. Please report this as a bug.` };
}

export function deserializeError(raw: unknown): VivariumError {
  if (raw && typeof raw === 'object') {
    const r = raw as Record<string, unknown>;
    const code = typeof r.code === 'string' && KNOWN_CODES.has(r.code) ? (r.code as ErrorCode) : ErrorCode.Internal;
    const message = typeof r.message === 'string' ? r.message : 'Unknown error';
    // The peer is untrusted: a remedy or field list that does not parse is dropped, the message kept.
    const remedy = Remedy.safeParse(r.remedy);
    const fields = z.array(FieldIssue).max(100).safeParse(r.fields);
    return new VivariumError(code, message, r.data, {
      field: typeof r.field === 'string' && r.field.length <= 200 ? r.field : undefined,
      remedy: remedy.success ? remedy.data : undefined,
      fields: fields.success ? fields.data : undefined,
    });
  }
  return new VivariumError(ErrorCode.Internal, String(raw));
}

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`Unexpected ${what}: ${JSON.stringify(x)}`);
}

// Small constructors keep call sites short and messages consistent.
export const errors = {
  invalid: (message: string, data?: unknown, details?: ErrorDetails) => new VivariumError(ErrorCode.InvalidArgument, message, data, details),
  notFound: (ref: string) =>
    new VivariumError(ErrorCode.NotFound, `No VM named or with id "${ref}".`, { ref }, { remedy: { kind: 'list-vms' } }),
  /** The VM must be shut down before `what` ("change its settings"). */
  mustStop: (vm: string, state: string, what: string) =>
    new VivariumError(ErrorCode.InvalidState, `"${vm}" is ${state}; it must be shut down to ${what}.`, { vm, state }, { remedy: { kind: 'stop-vm', vm } }),
  /** A field of a setting is wrong; `remedy` defaults to "change this setting". */
  field: (code: ErrorCode, field: SettingField, message: string, remedy?: Remedy) =>
    new VivariumError(code, message, undefined, { field, remedy: remedy ?? { kind: 'change-setting', field } }),
  state: (message: string, data?: unknown, details?: ErrorDetails) => new VivariumError(ErrorCode.InvalidState, message, data, details),
  busy: (message: string, data?: unknown, details?: ErrorDetails) => new VivariumError(ErrorCode.Busy, message, data, details),
  timeout: (message: string, data?: unknown, details?: ErrorDetails) => new VivariumError(ErrorCode.Timeout, message, data, details),
  qemu: (message: string, data?: unknown, details?: ErrorDetails) => new VivariumError(ErrorCode.QemuFailed, message, data, details),
} as const;
