import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ErrorCode, VivariumError } from '../../common/errors';
import { createRpcClient } from '../../common/rpc/client';
import type { RpcClient } from '../../common/rpc/client';
import { fakeServices } from '../../common/rpc/fake-services';
import { RpcServer } from '../../common/rpc/server';
import { webSocketConnection } from '../../../renderer/rpc/websocket-connection';
import { wsConnection } from './websocket';

let wss: WebSocketServer;
let url: string;
let fake: ReturnType<typeof fakeServices>;
const clients: Array<{ dispose(): void }> = [];

beforeEach(async () => {
  fake = fakeServices();
  const server = new RpcServer(fake.services);
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1024 * 1024 });
  wss.on('connection', (ws) => server.serve(wsConnection(ws, { maxMessageBytes: 64 * 1024 })));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/rpc`;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.dispose();
  fake.vms.releaseHanging();
  for (const ws of wss.clients) ws.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
});

function openWs(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    clients.push({ dispose: () => ws.terminate() });
  });
}

async function nodeClient(): Promise<RpcClient> {
  const c = createRpcClient(wsConnection(await openWs(), { maxMessageBytes: 64 * 1024 * 1024 }));
  clients.push(c);
  return c;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

describe('websocket transport', () => {
  it('round-trips calls, errors and events', async () => {
    const c = await nodeClient();
    expect((await c.services.vms.list()).map((v) => v.name)).toEqual(['alpha', 'beta']);
    const e: unknown = await c.services.vms.get('missing').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(VivariumError);
    expect((e as VivariumError).code).toBe(ErrorCode.NotFound);

    const seen: unknown[] = [];
    const sub = c.services.vms.onDidChange((ev) => seen.push(ev));
    await waitFor(() => fake.vms.changes.size === 1, 'the subscription');
    fake.vms.changes.fire({ kind: 'removed', id: 'x' });
    await waitFor(() => seen.length === 1, 'the event');
    sub.dispose();
    await waitFor(() => fake.vms.changes.size === 0, 'the unsubscribe');
  });

  it('disposes server-side subscriptions when the socket drops', async () => {
    const ws = await openWs();
    const c = createRpcClient(wsConnection(ws));
    c.services.vms.onDidChange(() => {});
    c.services.stats.onDidSample(() => {});
    await waitFor(() => fake.vms.changes.size === 1 && fake.stats.samples.size === 1, 'subscriptions');
    ws.terminate(); // no close handshake: as if the browser tab crashed
    await waitFor(() => fake.vms.changes.size === 0 && fake.stats.samples.size === 0, 'listeners to be disposed');
  });

  it('closes on a binary frame (1003) and on an oversized one (1009)', async () => {
    const a = await openWs();
    const codeA = closeCode(a);
    a.send(Buffer.from([1, 2, 3]));
    expect(await codeA).toBe(1003);

    const b = await openWs();
    const codeB = closeCode(b);
    b.send(JSON.stringify({ t: 'call', id: 1, s: 'vms', m: 'get', a: ['x'.repeat(100 * 1024)] }));
    expect(await codeB).toBe(1009);
  });

  it('drops text frames that are not JSON and keeps serving', async () => {
    const ws = await openWs();
    const c = createRpcClient(wsConnection(ws));
    clients.push(c);
    ws.send('{{{ not json');
    ws.send('');
    expect(await c.services.vms.list()).toHaveLength(2);
  });

  it("works with the renderer's browser-side connector", async () => {
    // ws's client implements the browser WebSocket API this connector uses (addEventListener,
    // MessageEvent.data as a string for text frames, readyState numbers).
    const ws = await openWs();
    const c = createRpcClient(webSocketConnection(ws as unknown as globalThis.WebSocket));
    clients.push(c);
    expect(await c.services.vms.get('alpha')).toMatchObject({ name: 'alpha' });
    const seen: unknown[] = [];
    c.services.vms.onDidChange((ev) => seen.push(ev));
    await waitFor(() => fake.vms.changes.size === 1, 'the subscription');
    fake.vms.changes.fire({ kind: 'removed', id: 'y' });
    await waitFor(() => seen.length === 1, 'the event');

    let dropped = false;
    c.onDidDisconnect(() => (dropped = true));
    for (const s of wss.clients) s.terminate();
    await waitFor(() => dropped, 'the disconnect');
  });
});
