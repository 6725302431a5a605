/**
 * The RPC wire protocol: a handful of small JSON messages, the same on every transport (Electron IPC,
 * WebSocket, unix socket, in-memory).
 *
 *   client → engine   {t:'call', id, s, m, a}     call method `m` of service `s` with arguments `a`
 *                     {t:'sub', id, s, ev}         subscribe to event `ev` (an `onDidX` member)
 *                     {t:'unsub', id}              drop the subscription made with `id`
 *   engine → client   {t:'result', id, ok, v | e}  the outcome of a call, or the ack of a sub
 *                     {t:'event', id, v}           one event for the subscription `id`
 *
 * Ids are chosen by the client, one counter for calls and subscriptions. Everything that arrives is
 * untrusted: `parseMessage` checks the shape before anyone looks inside.
 */
import type { Disposable } from '../contract';
import type { SerializedError } from '../errors';

export type RpcId = number;

export interface CallMessage {
  readonly t: 'call';
  readonly id: RpcId;
  readonly s: string;
  readonly m: string;
  readonly a: readonly unknown[];
}
export interface OkResultMessage {
  readonly t: 'result';
  readonly id: RpcId;
  readonly ok: true;
  readonly v?: unknown;
}
export interface ErrorResultMessage {
  readonly t: 'result';
  readonly id: RpcId;
  readonly ok: false;
  readonly e: SerializedError;
}
export interface SubMessage {
  readonly t: 'sub';
  readonly id: RpcId;
  readonly s: string;
  readonly ev: string;
}
export interface UnsubMessage {
  readonly t: 'unsub';
  readonly id: RpcId;
}
export interface EventMessage {
  readonly t: 'event';
  readonly id: RpcId;
  readonly v?: unknown;
}

export type ResultMessage = OkResultMessage | ErrorResultMessage;
export type RpcMessage = CallMessage | ResultMessage | SubMessage | UnsubMessage | EventMessage;

/**
 * What every transport provides. Incoming messages are `unknown` on purpose: the peer is untrusted
 * and the receiver must run them through `parseMessage`.
 *
 * Guarantees (see `createConnection`): `send` after close is a no-op; `onClose` listeners run
 * exactly once, also when registered after the close; `close` is idempotent.
 */
export interface Connection {
  send(msg: RpcMessage): void;
  onMessage(listener: (msg: unknown) => void): Disposable;
  onClose(listener: () => void): Disposable;
  close(): void;
}

/** The single Electron IPC channel (main/app/ipc-transport.ts). preload.ts repeats the literal
 *  because a sandboxed preload may only require 'electron'. */
export const IPC_CHANNEL = 'vivarium:rpc';

/** The desktop app's file channel (main/app/ipc-transport.ts `serveFileDialog`): the system's Open
 *  dialog for the New VM wizard's Browse. preload.ts repeats the literal. */
export const FILE_DIALOG_CHANNEL = 'vivarium:choose-file';

/** Which files an Open dialog offers (contract/host.ts BrowseFilter). */
export interface FileDialogRequest {
  readonly filter: 'iso' | 'disk' | 'images' | 'ssh-key' | 'any' | 'folder' | 'vivarium';
  /** The dialog's title (at most 200 characters). */
  readonly title: string;
}

/** What the desktop app adds for host files. Not RPC: both need the window itself. */
export interface DesktopFiles {
  /** The system's Open dialog; resolves with the chosen file's (filter `folder`: folder's) path, or
   *  null when cancelled. */
  chooseFile(request: FileDialogRequest): Promise<string | null>;
  /** The path of a File dropped onto the window (Electron's webUtils.getPathForFile; "" if none). */
  pathForFile(file: object): string;
}

/** What the preload script exposes as `window.vivarium`: one generic pipe, never one function per
 *  method. Messages are plain JSON values. `files` is the desktop app's file helpers. */
export interface VivariumBridge {
  send(msg: unknown): void;
  /** Returns a function that removes the listener. */
  onMessage(listener: (msg: unknown) => void): () => void;
  readonly files?: DesktopFiles;
}

/** The largest message an engine accepts from a client. Arguments are small (the largest schema
 *  fields are a few KiB), so anything bigger is an attack or a bug. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** The largest message a client accepts from the engine (a screenshot PNG in base64 fits). */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

const MAX_NAME_LENGTH = 64;
const MAX_ARGS = 16;

// ---- parsing untrusted messages --------------------------------------------------------------------

export type ParseResult =
  | { readonly ok: true; readonly msg: RpcMessage }
  /** `id` is set when the message looked like a call or sub with a usable id, so the receiver can
   *  answer with an error instead of leaving the caller waiting. */
  | { readonly ok: false; readonly reason: string; readonly id: RpcId | null; readonly t: string | null };

function isRecord(x: unknown): x is Readonly<Record<string, unknown>> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isId(x: unknown): x is RpcId {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function isName(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= MAX_NAME_LENGTH;
}

function isSerializedError(x: unknown): x is SerializedError {
  return isRecord(x) && typeof x.code === 'string' && typeof x.message === 'string';
}

/** Checks the envelope only; argument values are checked later against the contract's schemas. */
export function parseMessage(raw: unknown): ParseResult {
  if (!isRecord(raw)) return fail('not a JSON object', raw);
  const { t, id } = raw;
  if (!isId(id)) return fail('id must be a non-negative integer', raw);
  switch (t) {
    case 'call':
      if (!isName(raw.s) || !isName(raw.m)) return fail('call needs service and method names', raw);
      if (!Array.isArray(raw.a) || raw.a.length > MAX_ARGS) return fail(`call arguments must be an array of at most ${MAX_ARGS}`, raw);
      return { ok: true, msg: { t, id, s: raw.s, m: raw.m, a: raw.a } };
    case 'sub':
      if (!isName(raw.s) || !isName(raw.ev)) return fail('sub needs service and event names', raw);
      return { ok: true, msg: { t, id, s: raw.s, ev: raw.ev } };
    case 'unsub':
      return { ok: true, msg: { t, id } };
    case 'event':
      return { ok: true, msg: { t, id, v: raw.v } };
    case 'result':
      if (raw.ok === true) return { ok: true, msg: { t, id, ok: true, v: raw.v } };
      if (raw.ok === false && isSerializedError(raw.e)) return { ok: true, msg: { t, id, ok: false, e: raw.e } };
      return fail('result needs ok:true with v, or ok:false with e', raw);
    default:
      return fail('unknown message type', raw);
  }
}

function fail(reason: string, raw: unknown): ParseResult {
  const id = isRecord(raw) && isId(raw.id) ? raw.id : null;
  const t = isRecord(raw) && typeof raw.t === 'string' ? raw.t.slice(0, MAX_NAME_LENGTH) : null;
  return { ok: false, reason, id, t };
}

// ---- a connection skeleton shared by the transports -------------------------------------------------

export interface ConnectionIo {
  /** Put one message on the wire. Called only while open. May throw (e.g. a value JSON can't encode). */
  write(msg: RpcMessage): void;
  /** Tear the underlying channel down. Called once, by `close()`. */
  end(): void;
}

export interface ConnectionHandle {
  readonly connection: Connection;
  /** The transport got a message (already decoded from its framing). */
  receive(msg: unknown): void;
  /** The transport's channel is gone (peer closed, error, our own end()). Idempotent. */
  closed(): void;
}

/** The event plumbing every transport needs, so they all behave the same at the edges (send after
 *  close, late onClose, listener removal during dispatch). */
export function createConnection(io: ConnectionIo): ConnectionHandle {
  let open = true;
  const messageListeners = new Set<(msg: unknown) => void>();
  const closeListeners = new Set<() => void>();

  const closed = (): void => {
    if (!open) return;
    open = false;
    messageListeners.clear();
    const listeners = [...closeListeners];
    closeListeners.clear();
    for (const l of listeners) l();
  };

  const connection: Connection = {
    send(msg) {
      if (open) io.write(msg);
    },
    onMessage(listener) {
      if (open) messageListeners.add(listener);
      return { dispose: () => void messageListeners.delete(listener) };
    },
    onClose(listener) {
      if (!open) {
        let cancelled = false;
        queueMicrotask(() => cancelled || listener());
        return { dispose: () => void (cancelled = true) };
      }
      closeListeners.add(listener);
      return { dispose: () => void closeListeners.delete(listener) };
    },
    close() {
      if (!open) return;
      try {
        io.end();
      } finally {
        closed();
      }
    },
  };

  return {
    connection,
    receive(msg) {
      if (!open) return;
      for (const l of [...messageListeners]) l(msg);
    },
    closed,
  };
}
