/**
 * The stream bridge over real sockets. The serial hub is first driven against a stand-in for QEMU's
 * socket chardev (a real unix listener that, like QEMU, takes one client and writes every byte to the
 * socket first and to the logfile right after), so the seam between scrollback and live bytes can
 * be checked byte for byte under a continuous writer; then everything runs against a real QEMU
 * through the whole engine (engine-host, tickets, http server, RPC over the engine socket).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { Services } from '../common/contract';
import { createRpcClient } from '../common/rpc/client';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { hostEngine, type HostedEngine } from './engine-host';
import { SerialHub, StreamCloseCode, TicketBook, relayVnc } from './stream-bridge';
import { connectUnix } from './transports/unix-socket';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  // Short: unix socket paths are capped at 108 bytes.
  const dir = fs.mkdtempSync('/tmp/viv-sb-');
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** QEMU's `-chardev socket,server=on,wait=off,logfile=…` as far as the bridge can tell. */
class FakeChardev {
  private client: net.Socket | null = null;
  readonly server: net.Server;
  /** Bytes clients sent (what the guest would read). */
  input = Buffer.alloc(0);
  concurrent = 0;
  maxConcurrent = 0;
  accepted = 0;
  onInput: ((d: Buffer) => void) | null = null;

  private constructor(readonly logPath: string, server: net.Server) {
    this.server = server;
  }

  static async start(socketPath: string, logPath: string): Promise<FakeChardev> {
    fs.writeFileSync(logPath, '');
    const server = net.createServer();
    const dev = new FakeChardev(logPath, server);
    server.on('connection', (s) => dev.onConnection(s));
    await new Promise<void>((r) => server.listen(socketPath, r));
    cleanups.push(() => dev.kill());
    return dev;
  }

  private onConnection(s: net.Socket): void {
    this.concurrent++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.concurrent);
    s.on('close', () => {
      this.concurrent--;
      if (this.client === s) this.client = null;
    });
    s.on('error', () => {});
    if (this.client) return; // QEMU would leave it in the backlog; it never gets data
    this.accepted++;
    this.client = s;
    s.on('data', (d: Buffer) => {
      this.input = Buffer.concat([this.input, d]);
      this.onInput?.(d);
    });
  }

  /** What the guest's UART does: socket (when connected) first, then the log. */
  write(b: Buffer | string): void {
    const buf = Buffer.from(b);
    this.client?.write(buf);
    fs.appendFileSync(this.logPath, buf);
  }

  log(): Buffer {
    return fs.readFileSync(this.logPath);
  }

  get connected(): boolean {
    return this.client !== null;
  }

  /** QEMU exits: the client connection and the listener go. */
  kill(): void {
    this.client?.destroy();
    this.server.close();
  }
}

/** A WebSocket server whose connections go to `onSocket`, and clients for it. */
async function wsServer(onSocket: (ws: WebSocket) => void): Promise<{ connect: () => Promise<Client> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', r));
  wss.on('connection', onSocket);
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );
  const port = (wss.address() as net.AddressInfo).port;
  return { connect: () => openClient(`ws://127.0.0.1:${port}`) };
}

interface Client {
  readonly ws: WebSocket;
  data(): Buffer;
  bytes(): number;
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>;
  /** Resolves once the received bytes satisfy `pred`. */
  until(pred: (b: Buffer) => boolean, timeoutMs?: number): Promise<Buffer>;
}

async function openClient(url: string, options: { origin?: string } = {}): Promise<Client> {
  const ws = new WebSocket(url, options.origin ? { origin: options.origin } : {});
  cleanups.push(() => ws.terminate());
  const chunks: Buffer[] = [];
  let bytes = 0;
  let joined: Buffer | null = null;
  const waiters = new Set<() => void>();
  ws.on('message', (d: Buffer) => {
    chunks.push(d);
    bytes += d.length;
    joined = null;
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const data = () => (joined ??= Buffer.concat(chunks));
  return {
    ws,
    data,
    bytes: () => bytes,
    closed,
    until: (pred, timeoutMs = 5000) =>
      new Promise<Buffer>((resolve, reject) => {
        const check = () => {
          if (!pred(data())) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(data());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; got ${data().length} bytes: ${JSON.stringify(data().subarray(-200).toString())}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('TicketBook', () => {
  it('redeems a ticket once, and not after it expired', () => {
    let now = 1000;
    const book = new TicketBook(30_000, () => now);
    const grant = { vmId: 'x', kind: 'serial' } as const;
    const a = book.mint(grant);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(book.redeem(a)).toEqual(grant);
    expect(book.redeem(a)).toBeNull();
    const b = book.mint(grant);
    now += 30_000;
    expect(book.redeem(b)).toBeNull();
    expect(book.redeem('not a ticket')).toBeNull();
    // Expired tickets are swept on the next mint.
    book.mint(grant);
    now += 30_001;
    book.mint(grant);
    expect(book.size).toBe(1);
  });
});

describe('SerialHub against a chardev stand-in', () => {
  async function setup(options: { scrollbackBytes?: number; lingerMs?: number } = {}, attach: { history?: boolean } = {}) {
    const dir = tempDir();
    const dev = await FakeChardev.start(path.join(dir, 'serial.sock'), path.join(dir, 'serial.log'));
    let hub: SerialHub | null = null;
    let hubsMade = 0;
    const srv = await wsServer((ws) => {
      if (!hub || hub.closed) {
        hubsMade++;
        hub = new SerialHub({ socketPath: path.join(dir, 'serial.sock'), logPath: dev.logPath, ...options });
      }
      hub.attach(ws, attach);
    });
    return { dir, dev, srv, hub: () => hub, hubsMade: () => hubsMade };
  }

  it('gives each client the scrollback and then every live byte, none lost or repeated, over one connection', async () => {
    const { dev, srv } = await setup({ lingerMs: 50 });
    dev.write('early boot line written before anyone connected\n');
    let n = 0;
    let writing = true;
    // A guest that never stops talking: numbered lines in bursts, as fast as the loop allows.
    const writer = (async () => {
      while (writing) {
        for (let i = 0; i < 5; i++) dev.write(`line ${String(n++).padStart(6, '0')}\n`);
        await sleep(1);
      }
    })();
    const clients: Client[] = [];
    for (let i = 0; i < 4; i++) {
      clients.push(await srv.connect());
      await sleep(40 + i * 13);
    }
    clients[0]!.ws.send('typed into client 0\n');
    clients[3]!.ws.send(Buffer.from([0x03])); // Ctrl-C, binary
    await sleep(50);
    writing = false;
    await writer;
    const log = dev.log();
    expect(log.length).toBeLessThan(256 * 1024); // so every client's view must be the whole log
    for (const c of clients) {
      const got = await c.until((b) => b.length >= log.length);
      expect(got.equals(log)).toBe(true);
    }
    expect(n).toBeGreaterThan(100);
    expect(dev.maxConcurrent).toBe(1);
    expect(dev.accepted).toBe(1);
    expect(dev.input.toString()).toBe('typed into client 0\n\x03');
    // Last client gone → the unix connection closes after the linger.
    for (const c of clients) c.ws.close();
    await until(() => !dev.connected, 2000, 'the hub to hang up');
  });

  it('sends only the tail when the log is longer than the scrollback, and joins it seamlessly', async () => {
    const { dev, srv } = await setup({ scrollbackBytes: 1000 });
    dev.write('x'.repeat(5000) + '\n');
    let n = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        dev.write(`tick ${n++}\n`);
        await sleep(1);
      }
    })();
    await sleep(20);
    const c = await srv.connect();
    await sleep(100);
    writing = false;
    await writer;
    const log = dev.log();
    await sleep(100);
    const got = c.data();
    expect(got.length).toBeGreaterThan(1000);
    expect(got.length).toBeLessThan(log.length);
    expect(got.equals(log.subarray(log.length - got.length))).toBe(true);
  });

  it('gives a client that asked for no history only what the guest writes after it joined', async () => {
    const { dev, srv } = await setup({}, { history: false });
    dev.write('old boot output\n');
    await sleep(30);
    const c = await srv.connect();
    // The hub reaches the chardev on its own schedule (slow on a loaded host): write once it has.
    await until(() => dev.connected, 2000, 'the hub to connect');
    await sleep(50);
    dev.write('fresh line\n');
    const got = await c.until((b) => b.includes('fresh line'));
    expect(got.toString()).toBe('fresh line\n');
  });

  it('delivers the last words, then closes every client with "The VM stopped." when QEMU goes', async () => {
    const { dev, srv } = await setup();
    const a = await srv.connect();
    const b = await srv.connect();
    await until(() => dev.connected, 2000, 'the hub to connect');
    dev.write('Kernel panic - not syncing: the end\n');
    dev.kill();
    for (const c of [a, b]) {
      expect(await c.closed).toEqual({ code: StreamCloseCode.vmStopped, reason: 'The VM stopped.' });
      expect(c.data().toString()).toContain('Kernel panic - not syncing: the end');
    }
  });

  it('closes the client with 4001 when the VM is not there', async () => {
    const dir = tempDir();
    const srv = await wsServer((ws) => new SerialHub({ socketPath: path.join(dir, 'nope.sock'), logPath: path.join(dir, 'nope.log') }).attach(ws));
    const c = await srv.connect();
    const closed = await c.closed;
    expect(closed.code).toBe(StreamCloseCode.unreachable);
    expect(closed.reason).toMatch(/serial console.*still running/);
  });

  it('relays the socket without scrollback when the VM has no logfile', async () => {
    const dir = tempDir();
    const dev = await FakeChardev.start(path.join(dir, 'serial.sock'), path.join(dir, 'serial.log'));
    const srv = await wsServer((ws) => new SerialHub({ socketPath: path.join(dir, 'serial.sock'), logPath: path.join(dir, 'missing.log') }).attach(ws));
    const c = await srv.connect();
    await until(() => dev.connected, 2000, 'the hub to connect');
    await sleep(20);
    dev.write('live only\n');
    expect((await c.until((b) => b.includes('live only\n'))).toString()).toBe('live only\n');
  });
});

describe('serial latency against the stand-in', () => {
  it('adds well under a millisecond to a round trip', async () => {
    const dir = tempDir();
    const sockPath = path.join(dir, 'serial.sock');
    const dev = await FakeChardev.start(sockPath, path.join(dir, 'serial.log'));
    // The "guest" echoes every byte it reads, like a shell with echo on.
    dev.onInput = (d) => dev.write(d);
    const srv = await wsServer((ws) => new SerialHub({ socketPath: sockPath, logPath: dev.logPath, lingerMs: 0 }).attach(ws));
    const rounds = 200;
    const c = await srv.connect();
    const viaBridge: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const want = `ping ${i}\n`;
      const t0 = performance.now();
      c.ws.send(want);
      await c.until((b) => b.subarray(-want.length).toString() === want);
      viaBridge.push(performance.now() - t0);
    }
    c.ws.close();
    await until(() => !dev.connected, 2000, 'the hub to hang up');
    const direct = await directRoundTrips(sockPath, rounds, (i) => [`ping ${i}\n`, `ping ${i}\n`]);
    console.log(
      `serial round trip, echoing stand-in, median of ${rounds}: via bridge ${median(viaBridge).toFixed(2)} ms, direct ${median(direct).toFixed(2)} ms`,
    );
  });
});

describe('VNC relay', () => {
  it('relays both ways and pauses the VM side while the client is slow', async () => {
    const dir = tempDir();
    const sockPath = path.join(dir, 'vnc.sock');
    const total = 32 * 1024 * 1024;
    const fromVm: Buffer[] = [];
    let vmConnections = 0;
    let sent = 0;
    let vmWriteBlocked = 0;
    const server = net.createServer((s) => {
      vmConnections++;
      s.on('data', (d: Buffer) => fromVm.push(d));
      s.on('error', () => {});
      // Blast a known pattern as fast as the socket takes it.
      const chunk = Buffer.alloc(64 * 1024);
      const pump = (): void => {
        while (sent < total) {
          for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((sent + i) >>> 2, i);
          sent += chunk.length;
          if (!s.write(chunk)) {
            vmWriteBlocked++;
            s.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(sockPath, r));
    cleanups.push(() => server.close());
    const relays: ReturnType<typeof relayVnc>[] = [];
    const srv = await wsServer((ws) => relays.push(relayVnc(ws, { socketPath: sockPath })));

    const c = await srv.connect();
    c.ws.send(Buffer.from('RFB 003.008\n'));
    // A slow reader: stop reading for a while so the server side backs up.
    c.ws.pause();
    await sleep(500);
    const relay = relays[0]!;
    expect(relay.stats.pauses).toBeGreaterThanOrEqual(1);
    expect(sent).toBeLessThan(total); // the VM side was held back, not buffered without bound
    const sentWhilePaused = sent;
    const t0 = performance.now();
    c.ws.resume();
    await until(() => c.bytes() >= total, 20_000, 'all bytes');
    const ms = performance.now() - t0;
    const got = c.data();
    expect(got.length).toBe(total);
    for (let i = 0; i < total; i += 4096) expect(got.readUInt32LE(i)).toBe(i >>> 2);
    expect(Buffer.concat(fromVm).toString()).toBe('RFB 003.008\n');
    expect(vmConnections).toBe(1);
    expect(vmWriteBlocked).toBeGreaterThan(0);
    console.log(
      `vnc relay: ${(total / 1024 / 1024).toFixed(0)} MiB in ${ms.toFixed(0)} ms = ${((total / 1024 / 1024) / (ms / 1000)).toFixed(0)} MiB/s; VM side paused ${relay.stats.pauses}×, ` +
        `${(sentWhilePaused / 1024 / 1024).toFixed(1)} MiB left the VM while the client read nothing`,
    );
  });
});

// ---- real QEMU, whole engine ------------------------------------------------------------------------

describe('streams from a real QEMU through the hosted engine', () => {
  let t: TestHome | null = null;
  let hosted: HostedEngine | null = null;
  afterEach(async () => {
    await hosted?.close();
    hosted = null;
    await t?.cleanup();
    t = null;
  });

  it('fans the serial console out, carries input, relays VNC, and says when the VM stopped', async () => {
    t = makeTestHome();
    const guest = testGuest();
    const staticDir = tempDir();
    fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>t</title>');
    hosted = await hostEngine({ env: t.env, http: { port: 0, staticDir }, serialLingerMs: 100 });
    const s = hosted.engine.services;
    const origin = hosted.origin;

    const vm = await s.vms.create({
      name: 'serial-bridge',
      kernel: guest.kernel,
      initrd: guest.initrd,
      append: guest.append,
      accel: 'tcg',
      memoryMiB: 256,
      cpus: 1,
      diskSizeBytes: 0,
      net: 'none',
      display: 'vnc',
    });
    await s.vms.start(vm.id, { waitSerial: guest.readyMarker, timeoutSec: 60 });
    // Round trips straight on the unix socket first (nobody else may hold it), for comparison.
    const directBefore = await directRoundTrips(hosted.engine.layout.runtime(vm.id).serial, 15);

    // The CLI's way in: RPC over the engine socket, then a ticket URL with no Origin and no token.
    const cli = createRpcClient(await connectUnix(hosted.engine.layout.engineSocket));
    cleanups.push(() => cli.dispose());
    const cliServices: Services = cli.services;
    const { url } = await cliServices.console.openStream(vm.name, 'serial');
    expect(url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${hosted.port}/streams/[A-Za-z0-9_-]{43}$`));
    const a = await openClient(url);
    // Scrollback: the boot, written long before anyone connected.
    await a.until((b) => b.includes(guest.readyMarker));
    const b = await openClient((await s.console.openStream(vm.id, 'serial')).url, { origin });
    await b.until((x) => x.includes(guest.readyMarker));

    // Input from either client reaches the guest; both see the answer.
    a.ws.send('echo from-a-$((6*7))\n');
    await Promise.all([a, b].map((c) => c.until((x) => x.includes('from-a-42'))));
    b.ws.send(Buffer.from('echo from-b-$((7*8))\n'));
    await Promise.all([a, b].map((c) => c.until((x) => x.includes('from-b-56'))));
    expect(hosted.bridge.serialHubCount).toBe(1);

    // Round-trip latency through the bridge (typed command → its output), median of 15.
    const viaBridge: number[] = [];
    for (let i = 0; i < 15; i++) {
      const marker = `rt-${i}-$((${i}+1000))`;
      const t0 = performance.now();
      a.ws.send(`echo ${marker}\n`);
      await a.until((x) => x.includes(`rt-${i}-${i + 1000}`));
      viaBridge.push(performance.now() - t0);
    }

    // VNC: the relay hands over QEMU's RFB greeting.
    const v = await openClient((await s.console.openStream(vm.id, 'vnc')).url, { origin });
    const greeting = await v.until((x) => x.length >= 12);
    expect(greeting.subarray(0, 12).toString()).toBe('RFB 003.008\n');

    // Tickets are single-use.
    const once = (await s.console.openStream(vm.id, 'serial')).url;
    (await openClient(once)).ws.close();
    await expect(openClient(once)).rejects.toThrow(/401/);

    // Direct again: the bridge must let go of the one connection first.
    a.ws.close();
    b.ws.close();
    await until(() => hosted!.bridge.serialHubCount === 0, 5000, 'the serial hub to hang up');
    const directAfter = await directRoundTrips(hosted.engine.layout.runtime(vm.id).serial, 15);
    console.log(
      `serial round trip (echo through the guest shell), median of 15: direct ${median(directBefore).toFixed(1)} ms, ` +
        `via bridge ${median(viaBridge).toFixed(1)} ms, direct again ${median(directAfter).toFixed(1)} ms`,
    );

    // Stop: open streams are told why they closed.
    const c = await openClient((await s.console.openStream(vm.id, 'serial')).url, { origin });
    await c.until((x) => x.length > 0);
    await s.vms.stop(vm.id, { force: true });
    expect(await c.closed).toEqual({ code: StreamCloseCode.vmStopped, reason: 'The VM stopped.' });
    // Scrollback, live bytes and the last words after the stop add up to exactly the log.
    expect(c.data().equals(fs.readFileSync(hosted.engine.layout.bundle(vm.id).serialLog))).toBe(true);
    expect(await v.closed).toEqual({ code: StreamCloseCode.vmStopped, reason: 'The VM stopped.' });
    await expect(s.console.openStream(vm.id, 'serial')).rejects.toThrow(/is stopped\. Start it first/);
  });

  it('refuses a display stream for a headless VM', async () => {
    t = makeTestHome();
    const guest = testGuest();
    hosted = await hostEngine({ env: t.env, http: { port: 0, staticDir: null } });
    const s = hosted.engine.services;
    const vm = await s.vms.create({
      name: 'headless',
      kernel: guest.kernel,
      initrd: guest.initrd,
      append: guest.append,
      accel: 'tcg',
      memoryMiB: 256,
      cpus: 1,
      diskSizeBytes: 0,
      net: 'none',
      display: 'none',
    });
    await s.vms.start(vm.id, {});
    await expect(s.console.openStream(vm.id, 'vnc')).rejects.toThrow(/has no display/);
    await s.vms.stop(vm.id, { force: true });
  });
});

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Sends `send(i)[0]` on a direct connection and times until `send(i)[1]` comes back. */
async function directRoundTrips(
  socketPath: string,
  count: number,
  exchange: (i: number) => readonly [string, string] = (i) => [`echo dt-${i}-$((${i}+2000))\n`, `dt-${i}-${i + 2000}`],
): Promise<number[]> {
  const sock = net.connect(socketPath);
  await new Promise<void>((r, j) => {
    sock.once('connect', r);
    sock.once('error', j);
  });
  let text = '';
  let waiter: (() => void) | null = null;
  sock.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    waiter?.();
  });
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const [line, want] = exchange(i);
      const from = text.length;
      const t0 = performance.now();
      const seen = new Promise<void>((resolve) => {
        waiter = () => text.indexOf(want, from) >= 0 && resolve();
      });
      sock.write(line);
      await Promise.race([seen, sleep(5000).then(() => Promise.reject(new Error(`no ${want}`)))]);
      times.push(performance.now() - t0);
    }
  } finally {
    sock.destroy();
  }
  return times;
}
