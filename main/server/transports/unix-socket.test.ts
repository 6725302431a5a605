import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, VivariumError } from '../../common/errors';
import { CONNECTION_LOST_MESSAGE, createRpcClient } from '../../common/rpc/client';
import type { RpcClient } from '../../common/rpc/client';
import { fakeServices } from '../../common/rpc/fake-services';
import type { Connection } from '../../common/rpc/protocol';
import { RpcServer } from '../../common/rpc/server';
import { connectUnix, createLineDecoder, listenUnix } from './unix-socket';
import type { UnixListener } from './unix-socket';

let dir: string;
let sock: string;
const cleanups: Array<() => unknown> = [];

beforeEach(() => {
  // Short path: unix socket paths are capped at 108 bytes.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-rpc-'));
  sock = path.join(dir, 'engine.sock');
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function engine(opts: { maxMessageBytes?: number } = {}): Promise<{
  listener: UnixListener;
  fake: ReturnType<typeof fakeServices>;
  serverConns: Connection[];
}> {
  const fake = fakeServices();
  const server = new RpcServer(fake.services);
  const serverConns: Connection[] = [];
  const listener = await listenUnix(
    sock,
    (conn) => {
      serverConns.push(conn);
      server.serve(conn);
    },
    opts,
  );
  cleanups.push(() => {
    fake.vms.releaseHanging();
    return listener.close();
  });
  return { listener, fake, serverConns };
}

async function client(): Promise<RpcClient> {
  const c = createRpcClient(await connectUnix(sock, { timeoutMs: 2000 }));
  cleanups.push(() => c.dispose());
  return c;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function rawSocket(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock, () => resolve(s));
    s.on('error', reject);
    cleanups.push(() => s.destroy());
  });
}

describe('unix socket transport', () => {
  it('round-trips calls, and reports the median latency of 200', async () => {
    await engine();
    const c = await client();
    expect((await c.services.vms.list()).map((v) => v.name)).toEqual(['alpha', 'beta']);

    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = process.hrtime.bigint();
      await c.services.vms.get(`vm${i}`);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const median = ((times[99] ?? 0) + (times[100] ?? 0)) / 2;
    console.log(`unix socket call round trip: median ${median.toFixed(3)} ms, p95 ${(times[189] ?? 0).toFixed(3)} ms (n=200)`);
  });

  it('creates the socket 0600 and removes it on close', async () => {
    const { listener } = await engine();
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    await listener.close();
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('validation errors arrive as typed VivariumErrors, and the service is not called', async () => {
    const { fake } = await engine();
    const c = await client();
    const e: unknown = await c.services.vms.create({ name: 'x', cpus: -1 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(VivariumError);
    expect((e as VivariumError).code).toBe(ErrorCode.InvalidArgument);
    expect((e as VivariumError).message).toBe('Invalid VM settings: CPUs: a VM needs at least 1 CPU.');
    expect(fake.vms.calls).toEqual([]);
  });

  it('delivers events, and disposes server-side subscriptions when the client goes away', async () => {
    const { fake } = await engine();
    const c = await client();
    const seen: unknown[] = [];
    c.services.vms.onDidChange((e) => seen.push(e));
    c.services.stats.onDidSample(() => {});
    await waitFor(() => fake.vms.changes.size === 1 && fake.stats.samples.size === 1, 'subscriptions');
    fake.vms.changes.fire({ kind: 'removed', id: 'gone' });
    await waitFor(() => seen.length === 1, 'the event');
    c.dispose();
    await waitFor(() => fake.vms.changes.size === 0 && fake.stats.samples.size === 0, 'listeners to be disposed');
  });

  it('rejects pending calls when the engine goes away', async () => {
    const { listener, fake } = await engine();
    const c = await client();
    const pending = c.services.vms.pause('alpha').catch((err: unknown) => err);
    await waitFor(() => fake.vms.calls.length === 1, 'the call to arrive');
    await listener.close();
    const e: unknown = await pending;
    expect(e).toBeInstanceOf(VivariumError);
    expect((e as VivariumError).message).toBe(CONNECTION_LOST_MESSAGE);
  });

  it('survives garbage bytes: other clients and the same client keep working', async () => {
    await engine();
    const raw = await rawSocket();
    const replies: string[] = [];
    raw.on('data', (d: Buffer) => replies.push(d.toString()));
    raw.write(Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x7b, 0x0a]));
    raw.write('not json\n{"t":"call"}\n[]\nnull\n"str"\n{"t":"call","id":1,"s":"vms","m":"__proto__","a":[]}\n');
    raw.write('{"t":"call","id":2,"s":"vms","m":"list","a":[]}\n');
    await waitFor(() => replies.join('').split('\n').length >= 3, 'two answers');
    const answers = replies
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; ok: boolean });
    expect(answers.map((a) => [a.id, a.ok])).toEqual([
      [1, false],
      [2, true],
    ]);
    const c = await client();
    expect(await c.services.vms.list()).toHaveLength(2);
  });

  it('closes a connection that sends an oversized line, and keeps serving others', async () => {
    await engine({ maxMessageBytes: 64 * 1024 });
    const raw = await rawSocket();
    const closed = new Promise<void>((resolve) => raw.on('close', () => resolve()));
    raw.on('error', () => {});
    raw.write('x'.repeat(200 * 1024));
    await closed;
    const c = await client();
    expect(await c.services.vms.list()).toHaveLength(2);
  });

  it('replaces a stale socket file, but never a live engine', async () => {
    // A stale socket: bound, then the process "died" without removing it.
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(sock, r));
    // Closing unlinks the file, so keep a hard link to put back: a socket file nobody listens on.
    fs.linkSync(sock, `${sock}.keep`);
    await new Promise<void>((r) => stale.close(() => r()));
    fs.renameSync(`${sock}.keep`, sock);
    expect(fs.lstatSync(sock).isSocket()).toBe(true);

    await engine();
    const c = await client();
    expect(await c.services.vms.list()).toHaveLength(2);

    const second = await listenUnix(sock, () => {}).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(VivariumError);
    expect((second as VivariumError).code).toBe(ErrorCode.Busy);
    expect(await c.services.vms.list()).toHaveLength(2);
  });

  it('refuses to delete a path that is not a socket', async () => {
    fs.writeFileSync(sock, 'precious');
    const e = await listenUnix(sock, () => {}).catch((err: unknown) => err);
    expect((e as VivariumError).code).toBe(ErrorCode.InvalidState);
    expect(fs.readFileSync(sock, 'utf8')).toBe('precious');
  });

  it('says clearly when no engine is running', async () => {
    const e = await connectUnix(sock, { timeoutMs: 1000 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(VivariumError);
    expect((e as VivariumError).code).toBe(ErrorCode.NotFound);
    expect((e as VivariumError).message).toContain('No Vivarium engine is running');
  });
});

describe('line decoder', () => {
  it('splits lines across chunks, including split multi-byte characters', () => {
    const lines: string[] = [];
    const d = createLineDecoder(1024, (l) => lines.push(l));
    const bytes = Buffer.from('{"a":"é"}\n{"b":1}\n{"c"');
    for (let i = 0; i < bytes.length; i++) d.push(bytes.subarray(i, i + 1));
    d.push(Buffer.from(':2}\n'));
    expect(lines).toEqual(['{"a":"é"}', '{"b":1}', '{"c":2}']);
  });

  it('refuses a line longer than the limit, split or not', () => {
    const a = createLineDecoder(10, () => {});
    expect(a.push(Buffer.from('0123456789A\n'))).toBe(false);
    const b = createLineDecoder(10, () => {});
    expect(b.push(Buffer.from('012345'))).toBe(true);
    expect(b.push(Buffer.from('6789AB'))).toBe(false);
    const c = createLineDecoder(10, () => {});
    expect(c.push(Buffer.from('0123456789\n0123456789\n'))).toBe(true);
  });
});
