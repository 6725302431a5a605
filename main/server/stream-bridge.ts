/**
 * The stream bridge: raw serial and VNC bytes between a VM's unix sockets and WebSocket clients
 * (browser xterm/noVNC, the Electron window, `vivarium serial`). QEMU never listens on TCP; the
 * engine relays.
 *
 * Access: `openStream` (an authenticated RPC) mints a single-use ticket valid for 30 s; the WebSocket
 * URL carries it (`/streams/<ticket>`). The http server redeems the ticket before it completes the
 * upgrade, then hands the socket to `attach`.
 *
 * Serial — one unix connection per VM, fanned out:
 *   QEMU's socket chardev accepts a single client, so the bridge holds the one connection and shares
 *   it. What clients *see* is read from the chardev's logfile (bundle serial.log), not from the
 *   socket: QEMU writes every byte the guest sends to the socket first and to the log right after,
 *   inside one locked call (chardev/char.c qemu_chr_write_buffer), and to the log alone while no
 *   client is connected. So the log is one ordered record of everything, and "scrollback + live"
 *   becomes "read the log from offset X on" — a new client gets the 256 KiB before the hub's current
 *   offset, then every later byte, with no seam: nothing lost and nothing repeated. Socket `data`
 *   events only wake the reader (and are otherwise counted and discarded); when the log is behind
 *   the socket (QEMU preempted between its two writes) the reader retries every millisecond, and a
 *   500 ms poll catches bytes written between our connect() and QEMU's accept() (those went to the
 *   log only). The cost is about 0.3 ms per round trip (measured). Input from any client goes to the
 *   socket. If the VM has no logfile, the hub falls back to relaying socket bytes (no scrollback).
 *   The unix connection is closed when the last client has been gone for `lingerMs` (2 s, so a page
 *   reload does not reconnect): the log keeps recording meanwhile, and the socket is free for
 *   others (socat, a CLI without an engine) when nobody watches.
 *
 * VNC — one unix connection per client (QEMU's VNC server takes several), bytes relayed both ways
 *   as binary frames, with backpressure: the unix socket is paused while the WebSocket has more than
 *   1 MiB queued and resumed when it drains below 256 KiB; a slow unix side pauses the WebSocket.
 *
 * Close codes (4000–4999 are ours): 4000 the VM stopped, 4001 the VM's socket can't be reached,
 * 4002 the client fell too far behind, 1001 the engine is shutting down.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { RawData, WebSocket } from 'ws';
import type { ConsoleService, StreamKind, StreamOptions, VmService } from '../common/contract';
import { ErrorCode, VivariumError, errors } from '../common/errors';
import type { Layout } from '../services/paths';
import { isSocketAlive } from './transports/unix-socket';
import { attachTerminal, type TerminalStream } from './terminal-stream';

export const STREAM_TICKET_TTL_MS = 30_000;
export const SERIAL_SCROLLBACK_BYTES = 256 * 1024;
/** Tickets minted but not yet used, at most. Above what every client the engine accepts at once can
 *  hold together (64 browser + 128 local connections × MAX_TICKETS_PER_CLIENT = 6,144), so only the
 *  per-client limit is ever reached by a client: no number of connections makes others "busy". A
 *  ticket costs ~200 bytes; this bounds them at ~2 MB. */
export const MAX_OUTSTANDING_TICKETS = 8192;
/** Tickets one client (one RPC connection: a browser tab, the app window, a CLI) may hold unused at
 *  once. A window opens at most a display and a serial console per VM at a time, so this is far
 *  above honest use, and far below the total: one client can never starve the others. */
export const MAX_TICKETS_PER_CLIENT = 32;

export const StreamCloseCode = {
  vmStopped: 4000,
  unreachable: 4001,
  tooSlow: 4002,
  goingAway: 1001,
} as const;

const TICKET_RE = /^[A-Za-z0-9_-]{43}$/;
const WS_OPEN = 1;

/** What a redeemed ticket grants: one stream of one VM. */
export interface StreamGrant {
  readonly vmId: string;
  readonly kind: StreamKind;
  /** Serial: send what the guest wrote before this client joined (default true). */
  readonly history?: boolean;
}

// ---- tickets ---------------------------------------------------------------------------------------

/**
 * Single-use, short-lived capabilities. 32 random bytes each, base64url (43 characters).
 *
 * Each ticket is charged to the client that asked for it (`owner`, one per RPC connection): a
 * client may hold at most `perClient` unused tickets, and all clients together `total`, so one
 * client (a buggy page, a script in a loop) can never leave every other client's consoles "busy".
 * A client's tickets are revoked when it disconnects (`revokeOwner`).
 */
export class TicketBook {
  private readonly tickets = new Map<string, { readonly grant: StreamGrant; readonly expires: number; readonly owner: string | null }>();
  private readonly perOwner = new Map<string, number>();

  constructor(
    private readonly ttlMs: number = STREAM_TICKET_TTL_MS,
    private readonly now: () => number = Date.now,
    private readonly limits: { readonly total: number; readonly perClient: number } = { total: MAX_OUTSTANDING_TICKETS, perClient: MAX_TICKETS_PER_CLIENT },
  ) {}

  /** A new ticket for `grant`, charged to `owner` (null: a trusted in-process caller, counted in
   *  the total only). Throws `busy` when the owner or everyone together holds too many. */
  mint(grant: StreamGrant, owner: string | null = null): string {
    this.sweep();
    if (owner !== null && (this.perOwner.get(owner) ?? 0) >= this.limits.perClient) {
      throw errors.busy(
        `This window already has ${this.limits.perClient} consoles waiting to be opened. Open or close those first, or wait half a minute and try again.`,
        { limit: this.limits.perClient, scope: 'client' },
      );
    }
    if (this.tickets.size >= this.limits.total) {
      throw errors.busy(`Too many console streams are waiting to be opened (${this.limits.total}). Wait half a minute and try again.`, {
        limit: this.limits.total,
        scope: 'engine',
      });
    }
    const ticket = randomBytes(32).toString('base64url');
    this.tickets.set(ticket, { grant, expires: this.now() + this.ttlMs, owner });
    if (owner !== null) this.perOwner.set(owner, (this.perOwner.get(owner) ?? 0) + 1);
    return ticket;
  }

  /** Drops every unused ticket of `owner` (it disconnected: nobody can use them any more). */
  revokeOwner(owner: string): void {
    for (const [t, e] of this.tickets) if (e.owner === owner) this.tickets.delete(t);
    this.perOwner.delete(owner);
  }

  /** Unused tickets charged to `owner`. */
  heldBy(owner: string): number {
    this.sweep();
    return this.perOwner.get(owner) ?? 0;
  }

  /** The grant, once: a ticket is deleted when redeemed, and an expired one is worth nothing. */
  redeem(ticket: string): StreamGrant | null {
    if (!TICKET_RE.test(ticket)) return null;
    const entry = this.tickets.get(ticket);
    if (!entry) return null;
    this.drop(ticket, entry.owner);
    return entry.expires > this.now() ? entry.grant : null;
  }

  get size(): number {
    return this.tickets.size;
  }

  private drop(ticket: string, owner: string | null): void {
    this.tickets.delete(ticket);
    if (owner === null) return;
    const n = (this.perOwner.get(owner) ?? 1) - 1;
    if (n > 0) this.perOwner.set(owner, n);
    else this.perOwner.delete(owner);
  }

  private sweep(): void {
    const now = this.now();
    for (const [t, e] of this.tickets) if (e.expires <= now) this.drop(t, e.owner);
  }
}

// ---- serial: one connection, many clients ------------------------------------------------------------

export interface SerialHubOptions {
  readonly socketPath: string;
  readonly logPath: string;
  readonly scrollbackBytes?: number;
  /** How long the unix connection stays open after the last client left. */
  readonly lingerMs?: number;
  /** A client with more than this queued is closed (4002) rather than slowing everyone. */
  readonly maxClientBacklogBytes?: number;
  /** Told once the hub is finished (socket gone or idle); the bridge forgets it then. */
  readonly onClosed?: () => void;
  readonly log?: (line: string) => void;
}

interface SerialClient {
  readonly ws: WebSocket;
  /** Has had its scrollback and now gets live bytes. */
  ready: boolean;
  /** Wants the scrollback at all (a terminal attach from the CLI does not). */
  readonly history: boolean;
}

type HubState = 'connecting' | 'open' | 'closed';

const READ_CHUNK = 256 * 1024;
/** A log write follows its socket write within microseconds, but a busy host can preempt QEMU in
 *  between. When the log is known to be behind (fewer log than socket bytes), re-read every
 *  millisecond, a bounded number of times; a re-read 20 ms after the last socket bytes and the poll
 *  are the backstops. */
const CATCH_UP_MS = 1;
const MAX_CATCH_UP_TRIES = 50;
const LAG_REREAD_MS = 20;
const POLL_MS = 500;
/** Input that arrives while the hub is still connecting (a script piping commands) is held, up to this. */
const MAX_PENDING_INPUT = 64 * 1024;

export class SerialHub {
  private readonly clients = new Set<SerialClient>();
  private readonly scrollbackBytes: number;
  private readonly lingerMs: number;
  private readonly maxBacklog: number;
  private state: HubState = 'connecting';
  private sock: net.Socket | null = null;
  private logFile: fs.promises.FileHandle | null = null;
  /** Log offset up to which every ready client has been sent the bytes. */
  private offset = 0;
  private pumping = false;
  private again = false;
  private lagTimer: NodeJS.Timeout | null = null;
  private catchUpTimer: NodeJS.Timeout | null = null;
  private catchUpTries = 0;
  /** Since the connection opened: bytes the socket delivered, and bytes the log gained. A log-only
   *  write (before QEMU accepted us) can hide a lag, never invent one. */
  private socketBytes = 0;
  private loggedBytes = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private inputPaused = false;
  /** QEMU closed the socket before the hub finished opening. */
  private peerGone = false;
  private pendingInput: Buffer[] = [];
  private pendingInputBytes = 0;

  constructor(private readonly o: SerialHubOptions) {
    this.scrollbackBytes = o.scrollbackBytes ?? SERIAL_SCROLLBACK_BYTES;
    this.lingerMs = o.lingerMs ?? 2000;
    this.maxBacklog = o.maxClientBacklogBytes ?? 8 * 1024 * 1024;
    void this.open();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  attach(ws: WebSocket, options: { readonly history?: boolean } = {}): void {
    if (this.state === 'closed') {
      ws.close(StreamCloseCode.unreachable, 'The serial console is closed. Open it again.');
      return;
    }
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    const client: SerialClient = { ws, ready: false, history: options.history ?? true };
    this.clients.add(client);
    ws.on('message', (data: RawData) => this.input(data));
    const leave = (): void => {
      if (!this.clients.delete(client)) return;
      if (this.clients.size === 0 && this.state !== 'closed') {
        this.lingerTimer = setTimeout(() => this.shutdown(null), this.lingerMs);
        this.lingerTimer.unref();
      }
    };
    ws.on('close', leave);
    ws.on('error', leave);
    if (this.inputPaused) ws.pause();
    if (this.state === 'open') this.pump();
  }

  /** Closes every client with `code`/`reason` and the unix connection. */
  close(code: number, reason: string): void {
    this.shutdown({ code, reason });
  }

  private async open(): Promise<void> {
    const sock = net.connect(this.o.socketPath);
    this.sock = sock;
    sock.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    sock.on('drain', () => this.setInputPaused(false));
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
    } catch (e) {
      this.shutdown({ code: StreamCloseCode.unreachable, reason: unreachableReason('serial console', e) });
      return;
    }
    if (this.state === 'closed') return; // everyone left while we connected
    sock.on('error', (e) => this.o.log?.(`serial ${this.o.socketPath}: ${e.message}`));
    // QEMU closes its end only when it exits (a chardev server keeps its client until then).
    sock.on('close', () => void this.finish());
    try {
      this.logFile = await fs.promises.open(this.o.logPath, 'r');
      // Clients start at the log's current end (plus their scrollback), so their first live byte is
      // the first byte the log gains from now on.
      this.offset = (await this.logFile.stat()).size;
    } catch (e) {
      this.o.log?.(`serial log ${this.o.logPath} unavailable (${(e as Error).message}); relaying the socket without scrollback`);
      this.logFile = null;
    }
    if ((this.state as HubState) === 'closed') {
      await this.logFile?.close().catch(() => {});
      return;
    }
    this.state = 'open';
    const held = this.pendingInput;
    this.pendingInput = [];
    this.pendingInputBytes = 0;
    for (const b of held) this.write(b);
    if (this.logFile) {
      this.pollTimer = setInterval(() => this.pump(), POLL_MS);
      this.pollTimer.unref();
    }
    if (this.peerGone) void this.finish();
    else this.pump();
  }

  private onSocketData(chunk: Buffer): void {
    if (this.state !== 'open') return;
    if (!this.logFile) {
      this.broadcast(chunk);
      return;
    }
    this.socketBytes += chunk.length;
    this.pump();
    if (this.lagTimer) clearTimeout(this.lagTimer);
    this.lagTimer = setTimeout(() => this.pump(), LAG_REREAD_MS);
    this.lagTimer.unref();
  }

  private input(data: RawData): void {
    const buf = toBuffer(data);
    if (buf.length === 0) return;
    if (this.state === 'connecting') {
      if (this.pendingInputBytes + buf.length <= MAX_PENDING_INPUT) {
        this.pendingInput.push(buf);
        this.pendingInputBytes += buf.length;
      }
      return;
    }
    this.write(buf);
  }

  private write(buf: Buffer): void {
    const sock = this.sock;
    if (this.state !== 'open' || !sock || !sock.writable) return;
    if (!sock.write(buf)) this.setInputPaused(true);
  }

  private setInputPaused(paused: boolean): void {
    if (this.inputPaused === paused) return;
    this.inputPaused = paused;
    for (const c of this.clients) {
      if (paused) c.ws.pause();
      else c.ws.resume();
    }
  }

  /** Serialised: one read loop at a time; a request while it runs makes it go round once more. */
  private pump(): void {
    if (this.state !== 'open') return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.pumpLoop()
      .catch((e: unknown) => this.o.log?.(`serial log read failed: ${(e as Error).message}`))
      .finally(() => {
        this.pumping = false;
        this.catchUpIfBehind();
      });
  }

  private async pumpLoop(): Promise<void> {
    do {
      this.again = false;
      if (this.state !== 'open') return;
      if (this.logFile) await this.readNew(this.logFile);
      // Joiners after the live bytes: their scrollback ends exactly at the offset everyone is at.
      for (const c of this.clients) {
        if (c.ready) continue;
        c.ready = true;
        if (this.logFile && c.history) {
          const from = Math.max(0, this.offset - this.scrollbackBytes);
          const back = await readRange(this.logFile, from, this.offset);
          if (back.length) this.sendTo(c, back);
        }
      }
    } while (this.again);
  }

  private catchUpIfBehind(): void {
    if (this.state !== 'open' || !this.logFile || this.catchUpTimer) return;
    if (this.loggedBytes >= this.socketBytes) {
      this.catchUpTries = 0;
      return;
    }
    if (this.catchUpTries++ >= MAX_CATCH_UP_TRIES) return;
    this.catchUpTimer = setTimeout(() => {
      this.catchUpTimer = null;
      this.pump();
    }, CATCH_UP_MS);
    this.catchUpTimer.unref();
  }

  private async readNew(file: fs.promises.FileHandle): Promise<void> {
    for (;;) {
      const { size } = await file.stat();
      // A shorter log means it was truncated under us; start over from its beginning.
      if (size < this.offset) this.offset = 0;
      if (size === this.offset) return;
      const end = Math.min(size, this.offset + READ_CHUNK);
      const buf = await readRange(file, this.offset, end);
      if (buf.length === 0) return;
      this.offset += buf.length;
      this.loggedBytes += buf.length;
      this.broadcast(buf);
    }
  }

  private broadcast(buf: Buffer): void {
    for (const c of this.clients) if (c.ready || !this.logFile) this.sendTo(c, buf);
  }

  private sendTo(c: SerialClient, buf: Buffer): void {
    if (c.ws.readyState !== WS_OPEN) return;
    if (c.ws.bufferedAmount > this.maxBacklog) {
      this.clients.delete(c);
      c.ws.close(StreamCloseCode.tooSlow, 'This connection fell too far behind the console output. Reconnect.');
      return;
    }
    c.ws.send(buf, { binary: true });
  }

  /** The unix socket closed: QEMU exited. Deliver the guest's last words, then say so. */
  private async finish(): Promise<void> {
    if (this.state === 'connecting') {
      this.peerGone = true; // open() finishes us once the log is open
      return;
    }
    if (this.state !== 'open') return;
    this.stopTimers();
    // Wait out a read in flight, then one last round to the end of the log (joiners included),
    // holding `pumping` so nothing else starts one.
    while (this.pumping) await new Promise((r) => setTimeout(r, 5));
    if ((this.state as HubState) !== 'open') return;
    this.pumping = true;
    await this.pumpLoop().catch(() => {});
    this.pumping = false;
    this.shutdown({ code: StreamCloseCode.vmStopped, reason: 'The VM stopped.' });
  }

  private stopTimers(): void {
    for (const t of [this.lagTimer, this.lingerTimer, this.catchUpTimer]) if (t) clearTimeout(t);
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.lagTimer = this.lingerTimer = this.pollTimer = this.catchUpTimer = null;
  }

  private shutdown(close: { readonly code: number; readonly reason: string } | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopTimers();
    this.sock?.destroy();
    this.sock = null;
    void this.logFile?.close().catch(() => {});
    this.logFile = null;
    const clients = [...this.clients];
    this.clients.clear();
    for (const c of clients) c.ws.close(close?.code ?? StreamCloseCode.goingAway, close?.reason ?? 'The serial console closed.');
    this.o.onClosed?.();
  }
}

// ---- VNC: one connection per client --------------------------------------------------------------------

export interface VncRelayOptions {
  readonly socketPath: string;
  /** Pause reading the VM while the WebSocket has more than this queued… */
  readonly highWaterMark?: number;
  /** …and resume once it is below this. */
  readonly lowWaterMark?: number;
  readonly onClosed?: () => void;
  readonly log?: (line: string) => void;
}

export interface VncRelay {
  /** Bytes relayed VM → client, and how often the VM side had to be paused. */
  readonly stats: { bytesOut: number; bytesIn: number; pauses: number };
  close(code: number, reason: string): void;
}

export function relayVnc(ws: WebSocket, o: VncRelayOptions): VncRelay {
  const high = o.highWaterMark ?? 1024 * 1024;
  const low = o.lowWaterMark ?? 256 * 1024;
  const stats = { bytesOut: 0, bytesIn: 0, pauses: 0 };
  let done = false;
  let connected = false;
  let vmPaused = false;

  // Hold client bytes (noVNC may send its version right away) until the VM side is connected.
  ws.pause();
  const sock = net.connect(o.socketPath);

  const end = (code: number, reason: string): void => {
    if (done) return;
    done = true;
    sock.destroy();
    if (ws.readyState <= WS_OPEN) ws.close(code, reason);
    o.onClosed?.();
  };

  const resumeVmIfDrained = (): void => {
    if (vmPaused && ws.bufferedAmount < low) {
      vmPaused = false;
      sock.resume();
    }
  };

  sock.once('connect', () => {
    connected = true;
    ws.resume();
  });
  sock.on('data', (chunk: Buffer) => {
    if (ws.readyState !== WS_OPEN) return;
    stats.bytesOut += chunk.length;
    ws.send(chunk, { binary: true }, resumeVmIfDrained);
    if (!vmPaused && ws.bufferedAmount > high) {
      vmPaused = true;
      stats.pauses++;
      sock.pause();
    }
  });
  sock.on('drain', () => ws.resume());
  sock.on('error', (e) => {
    if (!connected) end(StreamCloseCode.unreachable, unreachableReason('display', e));
    else o.log?.(`vnc ${o.socketPath}: ${e.message}`);
  });
  sock.on('close', () => {
    if (done || !connected) return;
    // QEMU also drops a VNC client for protocol errors; tell "VM gone" from that by whether the
    // socket still answers.
    setTimeout(() => {
      void isSocketAlive(o.socketPath, 300).then((alive) =>
        end(
          alive ? StreamCloseCode.unreachable : StreamCloseCode.vmStopped,
          alive ? "The VM's display closed the connection. Reconnect to try again." : 'The VM stopped.',
        ),
      );
    }, 100).unref();
  });

  ws.on('message', (data: RawData) => {
    if (!connected || done) return;
    const buf = toBuffer(data);
    stats.bytesIn += buf.length;
    if (!sock.write(buf)) ws.pause();
  });
  ws.on('close', () => end(StreamCloseCode.goingAway, ''));
  ws.on('error', () => end(StreamCloseCode.goingAway, ''));

  return { stats, close: end };
}

// ---- the bridge ----------------------------------------------------------------------------------------

export interface StreamBridgeDeps {
  readonly layout: Layout;
  /** Resolves a ref to a VM and tells whether it runs. A getter-backed object is fine: the engine
   *  that owns the VmService is created with this bridge. */
  readonly vms: Pick<VmService, 'get'>;
  /** `ws://127.0.0.1:PORT`, known once the http server listens. */
  readonly baseUrl: () => string;
  readonly ticketTtlMs?: number;
  readonly serialLingerMs?: number;
  readonly log?: (line: string) => void;
}

export class StreamBridge implements ConsoleService {
  private readonly tickets: TicketBook;
  private readonly serialHubs = new Map<string, SerialHub>();
  private readonly vncRelays = new Set<VncRelay>();
  private readonly terminals = new Set<TerminalStream>();
  private disposed = false;

  constructor(private readonly deps: StreamBridgeDeps) {
    this.tickets = new TicketBook(deps.ticketTtlMs ?? STREAM_TICKET_TTL_MS);
  }

  async openStream(ref: string, kind: StreamKind, options: StreamOptions = {}): Promise<{ readonly url: string }> {
    return this.openStreamFor(null, ref, kind, options);
  }

  /**
   * The console service as one client sees it: its tickets are charged to `clientId` (at most
   * MAX_TICKETS_PER_CLIENT unused at once) and revoked by `releaseClient` when it goes away.
   */
  forClient(clientId: string): ConsoleService {
    return { openStream: (ref, kind, options) => this.openStreamFor(clientId, ref, kind, options) };
  }

  /** A client disconnected: its unused tickets are worth nothing any more. */
  releaseClient(clientId: string): void {
    this.tickets.revokeOwner(clientId);
  }

  private async openStreamFor(owner: string | null, ref: string, kind: StreamKind, options: StreamOptions = {}): Promise<{ readonly url: string }> {
    if (this.disposed) throw new VivariumError(ErrorCode.InvalidState, 'The Vivarium engine is shutting down. Reconnect to the new one.');
    const vm = await this.deps.vms.get(ref);
    if (vm.state !== 'running' && vm.state !== 'paused') {
      throw errors.state(`"${vm.name}" is ${vm.state}. Start it first, then open its ${kind === 'vnc' ? 'display' : kind === 'terminal' ? 'terminal' : 'serial console'}.`, {
        id: vm.id,
        state: vm.state,
      });
    }
    if (kind === 'terminal' && !vm.config?.cloudInit) {
      throw errors.state(`"${vm.name}" was not created from a cloud image, so it has no SSH terminal. Use its serial console.`, { id: vm.id });
    }
    if (kind === 'vnc' && vm.config?.display !== 'vnc') {
      throw errors.state(`"${vm.name}" has no display (it runs headless). Use its serial console, or set its display to vnc and restart it.`, {
        id: vm.id,
      });
    }
    const ticket = this.tickets.mint({ vmId: vm.id, kind, history: options.history ?? true }, owner);
    return { url: `${this.deps.baseUrl()}/streams/${ticket}` };
  }

  /** The http server calls this before completing a `/streams/<ticket>` upgrade. */
  redeem(ticket: string): StreamGrant | null {
    if (this.disposed) return null;
    return this.tickets.redeem(ticket);
  }

  /** Takes over an upgraded WebSocket for a redeemed grant. */
  attach(ws: WebSocket, grant: StreamGrant): void {
    if (this.disposed) {
      ws.close(StreamCloseCode.goingAway, 'The Vivarium engine is shutting down.');
      return;
    }
    const log = this.deps.log;
    if (grant.kind === 'serial') {
      let hub = this.serialHubs.get(grant.vmId);
      if (!hub || hub.closed) {
        const created: SerialHub = new SerialHub({
          socketPath: this.deps.layout.runtime(grant.vmId).serial,
          logPath: this.deps.layout.bundle(grant.vmId).serialLog,
          lingerMs: this.deps.serialLingerMs,
          log,
          onClosed: () => {
            if (this.serialHubs.get(grant.vmId) === created) this.serialHubs.delete(grant.vmId);
          },
        });
        hub = created;
        this.serialHubs.set(grant.vmId, hub);
      }
      hub.attach(ws, { history: grant.history });
      return;
    }
    if (grant.kind === 'terminal') {
      // Issue 11: an SSH session on a pty for this client (terminal-stream.ts).
      const term: TerminalStream = attachTerminal(ws, grant.vmId, { layout: this.deps.layout, vms: this.deps.vms, log }, () => this.terminals.delete(term));
      this.terminals.add(term);
      return;
    }
    const relay: VncRelay = relayVnc(ws, {
      socketPath: this.deps.layout.runtime(grant.vmId).vnc,
      log,
      onClosed: () => this.vncRelays.delete(relay),
    });
    this.vncRelays.add(relay);
  }

  /** Open serial hubs (one per VM with clients or lingering). */
  get serialHubCount(): number {
    return this.serialHubs.size;
  }

  get vncRelayCount(): number {
    return this.vncRelays.size;
  }

  /** Closes every stream (1001) and refuses new ones. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const reason = 'The Vivarium engine is shutting down.';
    for (const hub of [...this.serialHubs.values()]) hub.close(StreamCloseCode.goingAway, reason);
    for (const relay of [...this.vncRelays]) relay.close(StreamCloseCode.goingAway, reason);
    for (const term of [...this.terminals]) term.close(StreamCloseCode.goingAway, reason);
    this.serialHubs.clear();
    this.vncRelays.clear();
  }
}

// ---- helpers -------------------------------------------------------------------------------------------

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

async function readRange(file: fs.promises.FileHandle, from: number, to: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.max(0, to - from));
  let filled = 0;
  while (filled < buf.length) {
    const { bytesRead } = await file.read(buf, filled, buf.length - filled, from + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === buf.length ? buf : buf.subarray(0, filled);
}

/** A WebSocket close reason must fit in 123 bytes. */
function unreachableReason(what: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'is the VM still running?' : (code ?? 'error');
  return `Cannot reach the VM's ${what} (${why}).`.slice(0, 123);
}
