/**
 * The browser host's HTTP/WebSocket server over real sockets: token, cookie, Host and Origin checks,
 * static files, RPC on /rpc, ticket streams.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRpcClient } from '../common/rpc/client';
import { RpcServer } from '../common/rpc/server';
import { createEngine, type Engine } from '../services/engine';
import { makeTestHome, type TestHome } from '../test-support/home';
import { APP_ORIGIN, tokenCookieName, resolveStaticPath, startHttpServer, tokensEqual, type HttpServerHandle } from './http-server';
import { TicketBook, type StreamGrant } from './stream-bridge';
import { wsConnection } from './transports/websocket';

const SECRET = 'top-secret-outside-the-static-dir';

let t: TestHome;
let engine: Engine;
let server: HttpServerHandle;
let root: string;
let staticDir: string;
let tickets: TicketBook;
let attached: { ws: WebSocket; grant: StreamGrant }[];
const sockets: WebSocket[] = [];

async function start(ticketTtlMs = 30_000): Promise<void> {
  tickets = new TicketBook(ticketTtlMs);
  attached = [];
  server = await startHttpServer({
    port: 0,
    staticDir,
    rpcServer: new RpcServer(engine.services),
    // The real ticket book; the "stream" just echoes, which is all the server's part needs.
    bridge: {
      redeem: (ticket) => tickets.redeem(ticket),
      attach: (ws, grant) => {
        attached.push({ ws, grant });
        ws.on('message', (d: Buffer) => ws.send(d));
      },
    },
  });
}

beforeEach(async () => {
  t = makeTestHome();
  engine = createEngine({ env: t.env });
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-http-'));
  staticDir = path.join(root, 'renderer');
  fs.mkdirSync(path.join(staticDir, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Vivarium</title>');
  fs.writeFileSync(path.join(staticDir, 'assets', 'app.js'), 'console.log(1)');
  fs.writeFileSync(path.join(staticDir, '.env'), SECRET);
  fs.writeFileSync(path.join(root, 'secret.txt'), SECRET);
  fs.symlinkSync(path.join(root, 'secret.txt'), path.join(staticDir, 'link.txt'));
  await start();
});

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await server.close();
  await engine.dispose();
  fs.rmSync(root, { recursive: true, force: true });
  await t.cleanup();
});

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A raw request: the path goes on the wire exactly as given. */
function request(rawPath: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: rawPath, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const cookie = () => `${tokenCookieName(server.port)}=${server.token}`;
const ownOrigin = () => `http://127.0.0.1:${server.port}`;

/** The HTTP status an upgrade gets (101 when it is accepted). */
function upgradeStatus(url: string, headers: Record<string, string> = {}, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, ...(origin ? { origin } : {}) });
    sockets.push(ws);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.close();
    });
    ws.once('error', reject);
  });
}

async function openWs(url: string, headers: Record<string, string>, origin?: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers, ...(origin ? { origin } : {}) });
  sockets.push(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}

describe('access token', () => {
  it('answers 401 without the token, on pages and on WebSocket upgrades', async () => {
    const r = await request('/');
    expect(r.status).toBe(401);
    expect(r.body).toMatch(/Open the address that `vivarium serve` printed/);
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await request('/assets/app.js')).status).toBe(401);
    expect(await upgradeStatus(`${server.wsUrl}/rpc`, {}, ownOrigin())).toBe(401);
  });

  it('trades ?token= for an HttpOnly SameSite=Strict cookie with a 302 to the same URL without it', async () => {
    const r = await request(`/?token=${server.token}`);
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('/');
    const setCookie = r.headers['set-cookie']?.[0] ?? '';
    expect(setCookie).toBe(`${tokenCookieName(server.port)}=${server.token}; HttpOnly; SameSite=Strict; Path=/`);
    expect(r.headers['cache-control']).toBe('no-store');
    // Other parameters survive the redirect.
    const r2 = await request(`/assets/app.js?v=3&token=${server.token}&x=y`);
    expect(r2.status).toBe(302);
    expect(r2.headers.location).toBe('/assets/app.js?v=3&x=y');
    expect(server.loginUrl).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('serves pages with the cookie', async () => {
    const r = await request('/', { cookie: `other=1; ${cookie()}` });
    expect(r.status).toBe(200);
    expect(r.body).toBe('<!doctype html><title>Vivarium</title>');
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('refuses a wrong token in the query or the cookie', async () => {
    const wrong = `${server.token.slice(0, -1)}${server.token.endsWith('A') ? 'B' : 'A'}`;
    const q = await request(`/?token=${wrong}`);
    expect(q.status).toBe(401);
    expect(q.headers['set-cookie']).toBeUndefined();
    expect((await request('/', { cookie: `${tokenCookieName(server.port)}=${wrong}` })).status).toBe(401);
    expect((await request('/', { cookie: `${tokenCookieName(server.port)}=` })).status).toBe(401);
    expect(await upgradeStatus(`${server.wsUrl}/rpc?token=${wrong}`, {}, ownOrigin())).toBe(401);
    expect(tokensEqual('a', 'a')).toBe(true);
    expect(tokensEqual('a', 'ab')).toBe(false);
  });

  it('answers only to its own Host (no DNS rebinding)', async () => {
    const r = await request('/', { cookie: cookie(), host: `evil.example:${server.port}` });
    expect(r.status).toBe(403);
    expect((await request('/', { cookie: cookie(), host: `localhost:${server.port}` })).status).toBe(200);
    expect((await request('/', { cookie: cookie(), host: `127.0.0.1:${server.port + 1}` })).status).toBe(403);
  });
});

describe('headers and static files', () => {
  it('sets a strict CSP and the other security headers', async () => {
    const r = await request('/', { cookie: cookie() });
    const p = server.port;
    expect(r.headers['content-security-policy']).toBe(
      `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; ` +
        `connect-src 'self' ws://127.0.0.1:${p} ws://localhost:${p}; object-src 'none'; base-uri 'none'; ` +
        `frame-ancestors 'none'; form-action 'self'`,
    );
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['x-frame-options']).toBe('DENY');
    const js = await request('/assets/app.js', { cookie: cookie() });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    expect((await request('/nope.js', { cookie: cookie() })).status).toBe(404);
    expect((await request('/', { cookie: cookie() }, 'POST')).status).toBe(405);
    expect((await request('/rpc', { cookie: cookie() })).status).toBe(426);
  });

  it('refuses path traversal, encoded or not, and symlinks out of the build', async () => {
    const attempts = [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E%2Fsecret.txt',
      '/..%2fsecret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/assets/%2e%2e%5c%2e%2e%5csecret.txt',
      '/%252e%252e/secret.txt',
      '/.env',
      '/link.txt',
      '/%00index.html',
      '/%E0%A4%A',
    ];
    for (const p of attempts) {
      const r = await request(p, { cookie: cookie() });
      expect([400, 404], p).toContain(r.status);
      expect(r.body, p).not.toContain(SECRET);
    }
    expect(resolveStaticPath('/srv/ui', '/a/b.js')).toEqual({ file: '/srv/ui/a/b.js' });
    expect(resolveStaticPath('/srv/ui', '/')).toEqual({ file: '/srv/ui/index.html' });
    expect(resolveStaticPath('/srv/ui', '/a/%2e%2e/%2e%2e/etc/passwd')).toEqual({ status: 400 });
  });
});

describe('WebSockets', () => {
  it('serves RPC on /rpc to its own origin', async () => {
    for (const origin of [ownOrigin(), `http://localhost:${server.port}`]) {
      const ws = await openWs(`${server.wsUrl}/rpc`, { cookie: cookie() }, origin);
      const client = createRpcClient(wsConnection(ws));
      expect(await client.services.vms.list()).toEqual([]);
      await expect(client.services.vms.get('nope')).rejects.toMatchObject({ code: 'not-found' });
      client.dispose();
    }
    // The token may also ride in the query (non-browser clients).
    const ws = await openWs(`${server.wsUrl}/rpc?token=${server.token}`, {}, ownOrigin());
    const client = createRpcClient(wsConnection(ws));
    expect(await client.services.vms.list()).toEqual([]);
    client.dispose();
  });

  it('refuses /rpc from a foreign or missing Origin with 403', async () => {
    expect(await upgradeStatus(`${server.wsUrl}/rpc`, { cookie: cookie() }, 'http://evil.example')).toBe(403);
    expect(await upgradeStatus(`${server.wsUrl}/rpc`, { cookie: cookie() }, `http://127.0.0.1:${server.port + 1}`)).toBe(403);
    expect(await upgradeStatus(`${server.wsUrl}/rpc`, { cookie: cookie() }, APP_ORIGIN)).toBe(403);
    expect(await upgradeStatus(`${server.wsUrl}/rpc`, { cookie: cookie() })).toBe(403);
  });

  it('lets a stream ticket in once, from its own origin, the app, or a non-browser client', async () => {
    const grant: StreamGrant = { vmId: '00000000-0000-4000-8000-000000000000', kind: 'serial' };
    const url = (tk: string) => `${server.wsUrl}/streams/${tk}`;

    const a = tickets.mint(grant);
    // A foreign origin is refused before the ticket is looked at, so it is not burnt.
    expect(await upgradeStatus(url(a), {}, 'http://evil.example')).toBe(403);
    const ws = await openWs(url(a), {}, ownOrigin());
    expect(attached.at(-1)?.grant).toEqual(grant);
    ws.send(Buffer.from([1, 2, 3]));
    const echo = await new Promise<Buffer>((r) => ws.once('message', (d: Buffer) => r(d)));
    expect([...echo]).toEqual([1, 2, 3]);
    // Used up.
    expect(await upgradeStatus(url(a), {}, ownOrigin())).toBe(401);

    expect(await upgradeStatus(url(tickets.mint(grant)), {}, APP_ORIGIN)).toBe(101);
    expect(await upgradeStatus(url(tickets.mint(grant)))).toBe(101); // no Origin: `vivarium serial`
    expect(await upgradeStatus(url('x'.repeat(43)), {}, ownOrigin())).toBe(401);
    expect(await upgradeStatus(url('short'), {}, ownOrigin())).toBe(401);
    expect(await upgradeStatus(`${server.wsUrl}/streams/`, { cookie: cookie() }, ownOrigin())).toBe(404);
  });

  it('refuses an expired ticket', async () => {
    await server.close();
    await start(150);
    const tk = tickets.mint({ vmId: '00000000-0000-4000-8000-000000000000', kind: 'vnc' });
    await new Promise((r) => setTimeout(r, 200));
    expect(await upgradeStatus(`${server.wsUrl}/streams/${tk}`, {}, ownOrigin())).toBe(401);
    expect(attached).toHaveLength(0);
  });

  it('closes open WebSockets with 1001 and stops listening on close()', async () => {
    const ws = await openWs(`${server.wsUrl}/rpc`, { cookie: cookie() }, ownOrigin());
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    await server.close();
    expect(await closed).toBe(1001);
    await expect(request('/')).rejects.toThrow(/ECONNREFUSED/);
  });
});
