/**
 * A typed client for QEMU's machine protocol (QMP) over a unix socket (docs/interop/qmp-spec.rst).
 *
 * Wire format: newline-delimited JSON. QEMU greets, we send `qmp_capabilities`, then every command
 * carries an id ("vivarium-N") that QEMU echoes, so many commands can be in flight at once and the
 * events QEMU sends between replies never confuse them.
 *
 * A QMP chardev serves one client at a time: a second connection is accepted by the kernel but gets
 * no greeting until the first one leaves (qemu-notes §3). So a connection that opens but stays silent
 * means "someone else holds the VM", not "QEMU is slow".
 */
import * as net from 'node:net';
import { ErrorCode, VivariumError, errors } from '../../common/errors';
import type { QemuVersion } from '../../common/models/host';
import { LineFramer, LineTooLongError } from './json-lines';

export const DEFAULT_CONNECT_TIMEOUT_MS = 3000;
/** Most commands answer in milliseconds; slow ones (HMP savevm on a big VM) pass their own. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

export interface QmpGreeting {
  readonly version: QemuVersion;
  readonly capabilities: readonly string[];
}

export interface QmpEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
  readonly timestamp: { seconds: number; microseconds: number };
}

export interface QmpCloseInfo {
  /** QEMU announced its exit with a SHUTDOWN event; EOF without one means it crashed or was killed. */
  readonly sawShutdown: boolean;
  /** SHUTDOWN's `reason` (host-qmp-quit, host-signal, guest-shutdown, …). */
  readonly shutdownReason: string | null;
  /** Why the connection failed, or null for a plain end of stream / close(). */
  readonly error: Error | null;
}

export interface Disposable {
  dispose(): void;
}

export interface ExecuteOptions {
  /** Reject with VivariumError 'timeout' after this long; `Infinity` waits forever. */
  readonly timeoutMs?: number;
}

/**
 * QEMU (or the guest agent) said no: `{"error":{"class","desc"}}`, or an HMP command printed an
 * error (class 'HmpError'). A VivariumError ('qemu-failed') so it crosses the RPC wire intact.
 */
export class QmpError extends VivariumError {
  constructor(
    readonly errorClass: string,
    readonly desc: string,
    readonly command?: string,
  ) {
    super(ErrorCode.QemuFailed, command ? `"${command}" failed: ${desc}` : desc, {
      class: errorClass,
      desc,
      command,
    });
  }
}

/** One QMP message, classified. Unknown shapes are kept so newer QEMUs do not break older clients. */
export type QmpMessage =
  | { readonly kind: 'greeting'; readonly greeting: QmpGreeting }
  | { readonly kind: 'return'; readonly id: string | null; readonly value: unknown }
  | { readonly kind: 'error'; readonly id: string | null; readonly errorClass: string; readonly desc: string }
  | { readonly kind: 'event'; readonly event: QmpEvent }
  | { readonly kind: 'unknown' };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function parseGreeting(qmp: unknown): QmpGreeting | null {
  if (!isRecord(qmp) || !isRecord(qmp.version) || !isRecord(qmp.version.qemu)) return null;
  const q = qmp.version.qemu;
  const capabilities = Array.isArray(qmp.capabilities)
    ? qmp.capabilities.filter((c): c is string => typeof c === 'string')
    : [];
  return { version: { major: num(q.major), minor: num(q.minor), micro: num(q.micro) }, capabilities };
}

/** Classifies a parsed JSON value from the QMP socket. Pure; never throws. */
export function parseQmpMessage(value: unknown): QmpMessage {
  if (!isRecord(value)) return { kind: 'unknown' };
  const id = typeof value.id === 'string' ? value.id : null;
  if ('QMP' in value) {
    const greeting = parseGreeting(value.QMP);
    return greeting ? { kind: 'greeting', greeting } : { kind: 'unknown' };
  }
  if ('return' in value) return { kind: 'return', id, value: value.return };
  if (isRecord(value.error)) {
    const errorClass = typeof value.error.class === 'string' ? value.error.class : 'GenericError';
    const desc = typeof value.error.desc === 'string' ? value.error.desc : 'unknown error';
    return { kind: 'error', id, errorClass, desc };
  }
  if (typeof value.event === 'string') {
    const ts = isRecord(value.timestamp) ? value.timestamp : {};
    return {
      kind: 'event',
      event: {
        event: value.event,
        data: isRecord(value.data) ? value.data : {},
        timestamp: { seconds: num(ts.seconds), microseconds: num(ts.microseconds) },
      },
    };
  }
  return { kind: 'unknown' };
}

/**
 * HMP reports failure as a *successful* QMP return holding text (qemu-notes §3). Most failures go
 * through hmp_handle_error ("Error: …"), but some commands print with plain error_report, so the
 * few other shapes QEMU 7.2 uses are recognised too. Returns the error text, or null for success.
 */
export function hmpErrorText(output: string): string | null {
  const first = (output.split(/\r?\n/, 1)[0] ?? '').trim();
  const prefixed = /^Error:\s*(.*)$/.exec(first);
  if (prefixed) return prefixed[1] ?? first;
  if (/^unknown command: /.test(first)) return first;
  // drive_del and friends: `error_report("Device '%s' not found")`.
  if (/^Device '.*' not found$/.test(first)) return first;
  return null;
}

interface Pending {
  readonly command: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout | null;
}

/** ECONNRESET/EPIPE only say the peer went away, which the close itself already tells. */
function isPeerGone(e: Error): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/** How long a refused connection is retried (QEMU's bind-then-listen window). */
const REFUSED_RETRY_MS = 500;

function connectError(e: Error, socketPath: string): VivariumError {
  if (e instanceof VivariumError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return errors.state("QEMU's control socket is gone: the VM is not running.", { socketPath, cause: code });
  }
  if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
    // The socket's queue of connections waiting to be accepted is full: QEMU accepts none (it is
    // frozen, or still serving another client), so each new one is turned away at once.
    return errors.busy(
      "QEMU's control socket (QMP) takes no new connection: QEMU is not responding, or another program holds the socket. Close that program (or the other Vivarium), or force the VM off.",
      { socketPath, cause: code },
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return errors.state(
      `Permission denied on QEMU's control socket ${socketPath}. Was the VM started by another user? Stop it as that user.`,
      { socketPath, cause: code },
    );
  }
  // Anything else in words, with the system's code for a bug report, never Node's "connect EXXX <path>".
  return errors.qemu(`QEMU's control socket ${socketPath} could not be reached (${code ?? 'error'}): QEMU may not be responding. Try again, or force the VM off.`, { socketPath, cause: code });
}

function safeCall<A>(listener: (arg: A) => void, arg: A): void {
  try {
    listener(arg);
  } catch (e) {
    // One broken listener must not stop the others or the protocol; still make the bug visible.
    process.emitWarning(e instanceof Error ? e : new Error(String(e)), 'QmpListenerError');
  }
}

export class QmpClient {
  private readonly framer = new LineFramer();
  private readonly pending = new Map<string, Pending>();
  private readonly eventListeners = new Set<(e: QmpEvent) => void>();
  private readonly closeListeners = new Set<(info: QmpCloseInfo) => void>();
  private nextId = 1;
  private greetingValue: QmpGreeting | null = null;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: Error) => void } | null = null;
  private readonly greetingReady: Promise<QmpGreeting>;
  private shutdownReason: string | null = null;
  private sawShutdown = false;
  private closeInfo: QmpCloseInfo | null = null;
  private closedByUs = false;

  private constructor(private readonly socket: net.Socket) {
    this.greetingReady = new Promise((resolve, reject) => {
      this.greetingWaiter = { resolve, reject };
    });
    // Nobody may be awaiting yet when an early error lands; connect() observes it through the race.
    this.greetingReady.catch(() => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.finish(isPeerGone(e) ? null : e));
    socket.on('close', () => this.finish(null));
  }

  /**
   * Opens the socket, waits for QEMU's greeting and negotiates capabilities, all within `timeoutMs`
   * (default 3 s). Rejects with 'busy' when the socket accepts but stays silent (another client holds
   * it), 'invalid-state' when nothing listens there (the VM is not running).
   */
  static async connect(socketPath: string, opts: { readonly timeoutMs?: number } = {}): Promise<QmpClient> {
    // QEMU binds its socket a moment before it listens, so a fresh socket file may refuse the very
    // first connection. Retry a refusal briefly; a socket that keeps refusing belongs to a dead VM.
    const started = Date.now();
    for (;;) {
      try {
        return await QmpClient.connectOnce(socketPath, opts);
      } catch (e) {
        const cause = e instanceof VivariumError ? (e.data as { cause?: string } | undefined)?.cause : undefined;
        if (cause !== 'ECONNREFUSED' || Date.now() - started > REFUSED_RETRY_MS) throw e;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  private static async connectOnce(socketPath: string, opts: { readonly timeoutMs?: number }): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const socket = net.createConnection({ path: socketPath });
    const client = new QmpClient(socket);
    let connected = false;
    socket.once('connect', () => {
      connected = true;
    });

    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          connected
            ? errors.busy(
                "Another program is connected to this VM's control socket (QMP). Close it (or the other Vivarium) and try again.",
                { socketPath, timeoutMs },
              )
            : errors.timeout(`Could not open QEMU's control socket within ${timeoutMs} ms. Try again.`, {
                socketPath,
                timeoutMs,
              }),
        );
      }, timeoutMs);
    });
    try {
      await Promise.race([client.greetingReady, silence]);
    } catch (e) {
      client.close();
      throw connectError(e instanceof Error ? e : new Error(String(e)), socketPath);
    } finally {
      clearTimeout(timer);
    }

    try {
      await client.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) });
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  get greeting(): QmpGreeting {
    if (!this.greetingValue) throw new Error('QmpClient used before its greeting arrived');
    return this.greetingValue;
  }

  get closed(): boolean {
    return this.closeInfo !== null;
  }

  /** Runs a QMP command; resolves with its `return` value, rejects with QmpError when QEMU refuses. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: ExecuteOptions = {}): Promise<T> {
    if (this.closeInfo) {
      return Promise.reject(
        errors.state(`Cannot run "${command}": the connection to QEMU is closed. Is the VM still running?`, { command }),
      );
    }
    const id = `vivarium-${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            // A late reply finds no pending entry and is dropped; the id keeps it from matching another.
            this.pending.delete(id);
            reject(
              errors.timeout(
                `QEMU did not answer "${command}" within ${timeoutMs} ms. The VM may be overloaded or hung; try again, or force it off.`,
                { command, timeoutMs },
              ),
            );
          }, timeoutMs)
        : null;
      this.pending.set(id, { command, resolve: resolve as (value: unknown) => void, reject, timer });
      const message = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Runs a human-monitor command and returns its text; HMP's printed errors become QmpError('HmpError'). */
  async hmp(commandLine: string, opts: ExecuteOptions = {}): Promise<string> {
    const out = await this.execute<unknown>('human-monitor-command', { 'command-line': commandLine }, opts);
    const text = typeof out === 'string' ? out : '';
    const error = hmpErrorText(text);
    if (error !== null) throw new QmpError('HmpError', error, commandLine);
    return text;
  }

  onEvent(listener: (e: QmpEvent) => void): Disposable {
    this.eventListeners.add(listener);
    return { dispose: () => void this.eventListeners.delete(listener) };
  }

  /** Called once when the connection ends; if it already has, the listener runs on the next microtask. */
  onClose(listener: (info: QmpCloseInfo) => void): Disposable {
    const info = this.closeInfo;
    if (info) {
      let disposed = false;
      queueMicrotask(() => {
        if (!disposed) safeCall(listener, info);
      });
      return { dispose: () => void (disposed = true) };
    }
    this.closeListeners.add(listener);
    return { dispose: () => void this.closeListeners.delete(listener) };
  }

  /** Resolves with the next event called `name` (that `match` accepts); subscribe before causing it. */
  waitForEvent(name: string, opts: { readonly timeoutMs: number; readonly match?: (e: QmpEvent) => boolean }): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      if (this.closeInfo) {
        reject(errors.state(`Cannot wait for ${name}: the connection to QEMU is closed.`, { event: name }));
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        events.dispose();
        closes.dispose();
      };
      const timer = setTimeout(() => {
        done();
        reject(errors.timeout(`QEMU did not report ${name} within ${opts.timeoutMs} ms.`, { event: name, timeoutMs: opts.timeoutMs }));
      }, opts.timeoutMs);
      const events = this.onEvent((e) => {
        if (e.event !== name || (opts.match && !opts.match(e))) return;
        done();
        resolve(e);
      });
      const closes = this.onClose((info) => {
        done();
        reject(this.lostError(`waiting for ${name}`, info));
      });
    });
  }

  close(): void {
    this.closedByUs = true;
    this.finish(null);
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.framer.push(chunk);
    } catch (e) {
      const limit = e instanceof LineTooLongError ? e.limit : 0;
      this.finish(errors.qemu(`QEMU sent a QMP message larger than ${limit} bytes; the connection was dropped. Reconnect to continue.`, { limit }));
      return;
    }
    for (const line of lines) {
      if (this.closeInfo) return;
      this.handleLine(line);
    }
  }

  private handleLine(line: string): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.finish(errors.qemu(`QEMU sent a QMP line that is not JSON: ${line.slice(0, 80)}`));
      return;
    }
    const msg = parseQmpMessage(value);
    if (!this.greetingValue && msg.kind !== 'greeting') {
      this.finish(errors.qemu('The socket did not greet like QMP. Is this really a VM control socket?'));
      return;
    }
    switch (msg.kind) {
      case 'greeting':
        if (!this.greetingValue) {
          this.greetingValue = msg.greeting;
          this.greetingWaiter?.resolve(msg.greeting);
          this.greetingWaiter = null;
        }
        return;
      case 'return':
        this.settle(msg.id, (p) => p.resolve(msg.value));
        return;
      case 'error':
        this.settle(msg.id, (p) => p.reject(new QmpError(msg.errorClass, msg.desc, p.command)));
        return;
      case 'event':
        if (msg.event.event === 'SHUTDOWN') {
          this.sawShutdown = true;
          const reason = msg.event.data.reason;
          this.shutdownReason = typeof reason === 'string' ? reason : null;
        }
        for (const listener of [...this.eventListeners]) safeCall(listener, msg.event);
        return;
      case 'unknown':
        return;
    }
  }

  private settle(id: string | null, action: (p: Pending) => void): void {
    // Replies without our id (QEMU could not parse a request) or for timed-out commands are dropped.
    const p = id === null ? undefined : this.pending.get(id);
    if (!p || id === null) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    action(p);
  }

  private lostError(what: string, info: QmpCloseInfo): VivariumError {
    // A sentence a person may read (no QEMU command name: those reach nobody); the command is in
    // `data.lostWhile` for logs, and `isQmpLost` recognises the error without reading its words.
    const why = this.closedByUs
      ? 'Vivarium had closed its connection to QEMU'
      : info.sawShutdown
        ? 'QEMU shut down'
        : info.error
          ? `the connection to QEMU failed (${info.error.message})`
          : 'QEMU exited unexpectedly (it crashed or was killed)';
    return errors.state(`The action did not finish: ${why}.`, {
      qmpLost: true,
      lostWhile: what,
      sawShutdown: info.sawShutdown,
      shutdownReason: info.shutdownReason,
    });
  }

  private finish(error: Error | null): void {
    if (this.closeInfo) return;
    const info: QmpCloseInfo = { sawShutdown: this.sawShutdown, shutdownReason: this.shutdownReason, error };
    this.closeInfo = info;
    this.socket.destroy();
    if (this.greetingWaiter) {
      this.greetingWaiter.reject(
        error ?? errors.state("QEMU closed its control socket before greeting: the VM is not running (or is shutting down)."),
      );
      this.greetingWaiter = null;
    }
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      // QEMU may close the socket before (or instead of) answering quit; the close is the answer.
      if (p.command === 'quit') p.resolve({});
      else p.reject(this.lostError(`running "${p.command}"`, info));
    }
    this.pending.clear();
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    this.eventListeners.clear();
    for (const listener of listeners) safeCall(listener, info);
  }
}

/**
 * Whether `e` is QmpClient's error for a command (or an awaited event) that QEMU's going away cut
 * short: forced off, killed, crashed, or the connection closed. Callers turn it into their own
 * sentence ("… was forced off while it was being paused").
 */
export function isQmpLost(e: unknown): e is VivariumError {
  return e instanceof VivariumError && (e.data as { qmpLost?: unknown } | undefined)?.qmpLost === true;
}
