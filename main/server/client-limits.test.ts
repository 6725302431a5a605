/**
 * Issue 8, items 2 and 7 against a real hosted engine and a real (TCG) VM: one client cannot hold
 * every console ticket and leave the others "busy"; a client's unused tickets die with its
 * connection; engine.json (which holds the open-URL with the token) is 0600, removed on exit and
 * ignored when stale or planted as a link.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRpcClient, type RpcClient } from '../common/rpc/client';
import { ErrorCode, VivariumError } from '../common/errors';
import { Layout } from '../services/paths';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { hostEngine, readEngineInfo, type HostedEngine } from './engine-host';
import { MAX_TICKETS_PER_CLIENT } from './stream-bridge';
import { connectUnix } from './transports/unix-socket';

let t: TestHome;
let hosted: HostedEngine | null = null;
let staticDir: string;
const clients: RpcClient[] = [];
const sockets: WebSocket[] = [];

beforeEach(() => {
  t = makeTestHome();
  staticDir = path.join(t.home, 'renderer');
  fs.mkdirSync(staticDir, { recursive: true });
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html>');
});

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const c of clients.splice(0)) c.dispose();
  await hosted?.close();
  hosted = null;
  await t.cleanup();
});

async function client(layout: Layout): Promise<RpcClient> {
  const c = createRpcClient(await connectUnix(layout.engineSocket));
  clients.push(c);
  return c;
}

/** The status of a stream upgrade (101 = the console opened). */
function openStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    sockets.push(ws);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('open', () => resolve(101));
    ws.once('error', reject);
  });
}

describe('console tickets per client', () => {
  it('one client hitting its cap gets a clear busy error while another client still opens consoles; tickets die with their client', async () => {
    hosted = await hostEngine({ env: t.env, http: { port: 0, staticDir } });
    const layout = Layout.fromEnv(t.env);
    const a = await client(layout);
    const b = await client(layout);
    const guest = testGuest();
    const vm = await a.services.vms.create({
      name: 'tickets',
      kernel: guest.kernel,
      initrd: guest.initrd,
      append: guest.append,
      accel: 'tcg',
      memoryMiB: 128,
      cpus: 1,
      diskSizeBytes: 0,
      net: 'none',
      display: 'none',
    });
    await a.services.vms.start(vm.id, {});
    try {
      const urls: string[] = [];
      for (let i = 0; i < MAX_TICKETS_PER_CLIENT; i++) urls.push((await a.services.console.openStream(vm.id, 'serial')).url);
      const e: unknown = await a.services.console.openStream(vm.id, 'serial').catch((err: unknown) => err);
      expect(e).toBeInstanceOf(VivariumError);
      expect((e as VivariumError).code).toBe(ErrorCode.Busy);
      expect((e as VivariumError).message).toBe(
        `This window already has ${MAX_TICKETS_PER_CLIENT} consoles waiting to be opened. Open or close those first, or wait half a minute and try again.`,
      );

      // Another client is not affected: it opens a console at once.
      const mine = await b.services.console.openStream(vm.id, 'serial');
      expect(await openStatus(mine.url)).toBe(101);

      // Using a ticket frees a slot for its owner.
      expect(await openStatus(urls.pop()!)).toBe(101);
      urls.push((await a.services.console.openStream(vm.id, 'serial')).url);

      // A disconnects: its unused tickets are revoked, nobody can redeem them.
      a.dispose();
      await new Promise((r) => setTimeout(r, 200));
      expect(await openStatus(urls[0]!)).toBe(401);
      // And a new connection of the same program starts with a clean slate.
      const again = await client(layout);
      expect(await openStatus((await again.services.console.openStream(vm.id, 'serial')).url)).toBe(101);
    } finally {
      await b.services.vms.stop(vm.id, { force: true });
    }
  });
});

describe('engine.json: the token on disk, said so and kept private', () => {
  it('is 0600 in a 0700 folder while the engine runs, holds the open-URL, and is removed on exit', async () => {
    hosted = await hostEngine({ env: t.env, http: { port: 0, staticDir } });
    const layout = Layout.fromEnv(t.env);
    expect(fs.statSync(layout.engineInfo).mode & 0o777).toBe(0o600);
    expect(fs.statSync(layout.runtimeRoot).mode & 0o777).toBe(0o700);
    const info = readEngineInfo(layout);
    expect(info?.pid).toBe(process.pid);
    expect(info?.openUrl).toBe(hosted.url);
    expect(info?.openUrl).toContain(hosted.token);
    await hosted.close();
    hosted = null;
    expect(fs.existsSync(layout.engineInfo)).toBe(false);
  });

  it('is ignored when stale (its process is gone) or planted as a link', async () => {
    const layout = Layout.fromEnv(t.env);
    layout.ensureRuntimeDir(layout.runtimeRoot);
    const dead = spawnSync('true').pid!;
    fs.writeFileSync(layout.engineInfo, JSON.stringify({ pid: dead, startedAt: '', socket: null, origin: 'http://x', openUrl: 'http://x/?token=old' }), { mode: 0o600 });
    expect(readEngineInfo(layout)).toBeNull();
    // A new engine replaces it with its own.
    hosted = await hostEngine({ env: t.env, http: { port: 0, staticDir } });
    expect(readEngineInfo(layout)?.pid).toBe(process.pid);
    await hosted.close();
    hosted = null;
    const elsewhere = path.join(t.home, 'planted.json');
    fs.writeFileSync(elsewhere, JSON.stringify({ pid: process.pid, startedAt: '', socket: null, origin: 'http://evil', openUrl: 'http://evil/' }));
    fs.symlinkSync(elsewhere, layout.engineInfo);
    expect(readEngineInfo(layout)).toBeNull();
  });
});

describe('a client that stops reading', () => {
  it('is disconnected once 64 MiB of answers wait for it, and the engine goes on serving others', async () => {
    hosted = await hostEngine({ env: t.env, http: { port: 0, staticDir } });
    const layout = Layout.fromEnv(t.env);
    const sock = net.connect(layout.engineSocket);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.pause(); // reads nothing from now on
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    sock.on('error', () => {});
    // Large answers (the OS catalog), asked faster than a non-reader drains them.
    const ask = JSON.stringify({ t: 'call', id: 1, s: 'media', m: 'catalog', a: [{}] });
    const one = Buffer.byteLength(JSON.stringify(await (await client(layout)).services.media.catalog({})));
    const rounds = Math.ceil((96 * 1024 * 1024) / one / 200);
    let gone = false;
    void closed.then(() => (gone = true));
    for (let r = 0; r < rounds && !gone; r++) {
      sock.write(`${Array.from({ length: 200 }, () => ask).join('\n')}\n`);
      await new Promise((res) => setTimeout(res, 20));
    }
    await closed;
    // Everyone else is still served.
    const other = await client(layout);
    expect(Array.isArray(await other.services.vms.list())).toBe(true);
  });
});

describe('the ticket book', () => {
  it('holds what every accepted client may hold together, so the per-client limit is the one reached', async () => {
    const { MAX_OUTSTANDING_TICKETS } = await import('./stream-bridge');
    const { MAX_RPC_CLIENTS } = await import('./http-server');
    const { MAX_UNIX_CLIENTS } = await import('./transports/unix-socket');
    expect(MAX_OUTSTANDING_TICKETS).toBeGreaterThanOrEqual((MAX_RPC_CLIENTS + MAX_UNIX_CLIENTS) * MAX_TICKETS_PER_CLIENT);
  });
});
