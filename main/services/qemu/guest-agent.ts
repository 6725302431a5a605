/**
 * A client for the QEMU guest agent (qemu-ga) through its virtserialport chardev socket.
 *
 * Unlike QMP there is no greeting: the socket opens as soon as QEMU runs, whether or not an agent
 * listens inside the guest, and the serial line may still hold half a reply meant for an earlier
 * client. So every session starts with the sync handshake (qga/qapi-schema.json): send 0xFF (resets
 * the agent's JSON parser), then `guest-sync-delimited` with a random id; the agent answers with
 * 0xFF followed by that id, and everything before the 0xFF is stale and dropped. No answer means no
 * agent. Commands run one at a time (the agent is serial); after a timeout the next command re-syncs
 * first, so a late reply can never be taken for the answer to a different command.
 */
import { randomInt } from 'node:crypto';
import * as net from 'node:net';
import { errors, type VivariumError } from '../../common/errors';
import { LineFramer, LineTooLongError } from './json-lines';
import { QmpError } from './qmp';

export const DEFAULT_AGENT_TIMEOUT_MS = 5000;
/** guest-shutdown sends no reply on success; this much silence after it counts as accepted. */
export const SHUTDOWN_QUIET_MS = 1000;

const SYNC_MARKER = 0xff;

type Reply = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly errorClass: string; readonly desc: string };

interface Waiter {
  /** Returns true when the message was the awaited one. */
  readonly onMessage: (value: Record<string, unknown>) => boolean;
  readonly onClose: () => void;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toReply(msg: Record<string, unknown>): Reply | null {
  if ('return' in msg) return { ok: true, value: msg.return };
  if (isRecord(msg.error)) {
    return {
      ok: false,
      errorClass: typeof msg.error.class === 'string' ? msg.error.class : 'GenericError',
      desc: typeof msg.error.desc === 'string' ? msg.error.desc : 'unknown error',
    };
  }
  return null;
}

function notRunningError(timeoutMs: number, socketPath: string): VivariumError {
  return errors.timeout(
    `The guest agent did not answer within ${timeoutMs} ms: it isn't running in the guest (or another program holds its socket). Install qemu-guest-agent in the guest and start it, then try again.`,
    { socketPath, timeoutMs },
  );
}

function openSocket(socketPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(errors.timeout(`Could not open the guest agent socket within ${timeoutMs} ms. Try again.`, { socketPath }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    // Stays registered after connecting (then a no-op) so no error is ever emitted without a listener.
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? errors.state("The guest agent's socket is gone: the VM is not running.", { socketPath, cause: e.code })
          : errors.qemu(`Could not connect to the guest agent socket ${socketPath}: ${e.message}`, { socketPath, cause: e.code }),
      );
    });
  });
}

export class GuestAgentClient {
  private readonly framer = new LineFramer();
  private waiter: Waiter | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private needsSync = true;
  private isClosed = false;

  private constructor(
    private readonly socket: net.Socket,
    private readonly socketPath: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.onClosed());
    socket.on('close', () => this.onClosed());
  }

  /** Opens the agent socket and syncs; rejects with 'timeout' when no agent answers in the guest. */
  static async connect(socketPath: string, opts: { readonly timeoutMs?: number } = {}): Promise<GuestAgentClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const client = new GuestAgentClient(await openSocket(socketPath, timeoutMs), socketPath);
    try {
      await client.sync(Math.max(1, deadline - Date.now()));
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Runs an agent command (guest-ping, guest-info, guest-network-get-interfaces, …). */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { readonly timeoutMs?: number } = {}): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS;
    return this.enqueue(async () => {
      if (this.needsSync) await this.sync(timeoutMs);
      const reply = await this.request(command, args, timeoutMs);
      if (!reply.ok) throw new QmpError(reply.errorClass, reply.desc, command);
      return reply.value as T;
    });
  }

  /**
   * Asks the guest OS to power off. The agent sends no reply when it accepts, so this resolves after
   * `quietMs` of silence or when the connection closes, and rejects only if the agent reports an
   * error. Whether the guest really went down is QMP's SHUTDOWN event to tell.
   */
  shutdown(opts: { readonly quietMs?: number; readonly timeoutMs?: number } = {}): Promise<void> {
    const quietMs = opts.quietMs ?? SHUTDOWN_QUIET_MS;
    return this.enqueue(async () => {
      if (this.needsSync) await this.sync(opts.timeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS);
      const reply = await this.request('guest-shutdown', { mode: 'powerdown' }, quietMs, true);
      if (!reply.ok) throw new QmpError(reply.errorClass, reply.desc, 'guest-shutdown');
    });
  }

  close(): void {
    this.socket.destroy();
    this.onClosed();
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.isClosed) {
        throw errors.state('The guest agent connection is closed: the VM stopped. Reconnect when it runs again.', {
          socketPath: this.socketPath,
        });
      }
      return job();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private sync(timeoutMs: number): Promise<void> {
    const id = randomInt(1, 2 ** 31);
    this.framer.discardUntilByte(SYNC_MARKER);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(notRunningError(timeoutMs, this.socketPath));
      }, timeoutMs);
      this.waiter = {
        // Replies to older syncs (a previous, timed-out attempt) carry another id: keep waiting.
        onMessage: (msg) => {
          if (msg.return !== id) return false;
          clearTimeout(timer);
          this.needsSync = false;
          resolve();
          return true;
        },
        onClose: () => {
          clearTimeout(timer);
          reject(errors.state("The guest agent's socket closed: the VM stopped.", { socketPath: this.socketPath }));
        },
      };
      this.socket.write(
        Buffer.concat([
          Buffer.from([SYNC_MARKER]),
          Buffer.from(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } })}\n`),
        ]),
      );
    });
  }

  /** Sends one command and waits for its reply; with `silenceIsSuccess`, timeout and close resolve. */
  private request(command: string, args: Record<string, unknown> | undefined, timeoutMs: number, silenceIsSuccess = false): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        if (silenceIsSuccess) {
          resolve({ ok: true, value: null });
          return;
        }
        this.needsSync = true;
        reject(
          errors.timeout(`The guest agent did not answer "${command}" within ${timeoutMs} ms. The guest may be busy; try again.`, {
            command,
            timeoutMs,
          }),
        );
      }, timeoutMs);
      this.waiter = {
        onMessage: (msg) => {
          const reply = toReply(msg);
          if (!reply) return false;
          clearTimeout(timer);
          resolve(reply);
          return true;
        },
        onClose: () => {
          clearTimeout(timer);
          if (silenceIsSuccess) resolve({ ok: true, value: null });
          else reject(errors.state(`The guest agent's socket closed while running "${command}": the VM stopped.`, { command }));
        },
      };
      const message = args === undefined ? { execute: command } : { execute: command, arguments: args };
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.framer.push(chunk);
    } catch (e) {
      if (!(e instanceof LineTooLongError)) throw e;
      // A runaway line from the guest (the guest is untrusted): drop it and re-sync before the next command.
      this.needsSync = true;
      return;
    }
    for (const line of lines) {
      // A sync reply can follow a stale line in the same chunk, so its 0xFF (decoded as U+FFFD) may
      // still lead the line; the JSON starts at the first brace.
      const start = line.indexOf('{');
      if (start === -1) continue;
      let value: unknown;
      try {
        value = JSON.parse(line.slice(start));
      } catch {
        continue; // half a line left over from an earlier session
      }
      const waiter = this.waiter;
      if (waiter && isRecord(value) && waiter.onMessage(value)) this.waiter = null;
    }
  }

  private onClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.onClose();
  }
}
