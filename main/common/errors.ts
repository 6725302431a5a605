/**
 * Expected errors. Every failure a user can cause or fix carries a stable code and a message that
 * says what went wrong *and what to do*. Anything else that escapes is a bug.
 *
 * Errors cross every transport as plain `{code, message, data}` and are rebuilt here on the other
 * side, so a CLI talking to a running engine reports exactly what an in-process engine would.
 */

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

export interface SerializedError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly data?: unknown;
}

export class VivariumError extends Error {
  override readonly name = 'VivariumError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }

  toJSON(): SerializedError {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
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
    return new VivariumError(code, message, r.data);
  }
  return new VivariumError(ErrorCode.Internal, String(raw));
}

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`Unexpected ${what}: ${JSON.stringify(x)}`);
}

// Small constructors keep call sites short and messages consistent.
export const errors = {
  invalid: (message: string, data?: unknown) => new VivariumError(ErrorCode.InvalidArgument, message, data),
  notFound: (ref: string) =>
    new VivariumError(
      ErrorCode.NotFound,
      `No VM named or with id "${ref}". Run \`vivarium list\` to see your VMs.`,
      { ref },
    ),
  state: (message: string, data?: unknown) => new VivariumError(ErrorCode.InvalidState, message, data),
  busy: (message: string, data?: unknown) => new VivariumError(ErrorCode.Busy, message, data),
  timeout: (message: string, data?: unknown) => new VivariumError(ErrorCode.Timeout, message, data),
  qemu: (message: string, data?: unknown) => new VivariumError(ErrorCode.QemuFailed, message, data),
} as const;
