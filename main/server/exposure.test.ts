/**
 * Issue 8, item 3 (and the connection bounds of item 2): what `serve --host` binds, prints and
 * accepts. Real HTTP/HTTPS and WebSocket clients on 127.0.0.1; a self-signed certificate made by
 * openssl in the test. A wildcard bind is exercised with the machine's real interfaces and, for exact
 * expectations, with a given interface table (the server connects on 127.0.0.1 either way; only the
 * Host header names the other addresses).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRpcClient } from '../common/rpc/client';
import { RpcServer } from '../common/rpc/server';
import { createEngine, type Engine } from '../services/engine';
import { makeTestHome, type TestHome } from '../test-support/home';
import { allowedHosts, interfaceAddresses, startHttpServer, tokenCookieName, type HttpServerHandle } from './http-server';
import { runServe } from './serve';
import { wsConnection } from './transports/websocket';

let t: TestHome;
let engine: Engine;
let staticDir: string;
const servers: HttpServerHandle[] = [];
const sockets: WebSocket[] = [];

const IFACES: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {
  lo: [
    { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
    { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
  ],
  eth0: [
    { address: '192.0.2.10', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.0.2.10/24' },
    { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    { address: '2001:db8::5', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: '2001:db8::5/64', scopeid: 0 },
  ],
};

beforeEach(() => {
  t = makeTestHome();
  engine = createEngine({ env: t.env });
  staticDir = path.join(t.home, 'renderer');
  fs.mkdirSync(staticDir, { recursive: true });
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Vivarium</title>');
});

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const s of servers.splice(0)) await s.close();
  await engine.dispose();
  await t.cleanup();
});

async function start(o: { host?: string; interfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>; maxRpcClients?: number; maxStreams?: number } = {}): Promise<HttpServerHandle> {
  const s = await startHttpServer({
    port: 0,
    staticDir,
    rpcServer: new RpcServer(engine.services),
    bridge: { redeem: () => ({ vmId: '00000000-0000-4000-8000-000000000000', kind: 'serial' }), attach: () => {} },
    ...o,
  });
  servers.push(s);
  return s;
}

/** GET / on 127.0.0.1:port with the given Host header (and the token cookie). */
function get(s: HttpServerHandle, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: s.port, path: '/', headers: { host, cookie: `${tokenCookieName(s.port)}=${s.token}` }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

/** The status of a WebSocket upgrade to 127.0.0.1:port/rpc with the given Host and Origin. */
function upgrade(s: HttpServerHandle, host: string, origin: string | undefined, opts: { scheme?: string; ca?: Buffer; path?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${opts.scheme ?? 'ws'}://127.0.0.1:${s.port}${opts.path ?? '/rpc'}?token=${s.token}`, {
      headers: { host },
      ...(origin ? { origin } : {}),
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    sockets.push(ws);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => resolve(101));
    ws.once('error', reject);
  });
}

describe('a wildcard --host', () => {
  it('lists every interface address as a URL, and accepts only those Hosts (and localhost), never an outsider name', async () => {
    const s = await start({ host: '0.0.0.0', interfaces: () => IFACES });
    const p = s.port;
    expect(s.urls).toEqual([`http://127.0.0.1:${p}`, `http://192.0.2.10:${p}`]);
    expect(s.exposed).toBe(true);
    for (const ok of [`127.0.0.1:${p}`, `localhost:${p}`, `192.0.2.10:${p}`, `LOCALHOST:${p}`]) expect(await get(s, ok)).toBe(200);
    // DNS rebinding: the attacker's name resolves to us, the browser sends the attacker's name.
    for (const bad of [`evil.example:${p}`, `192.0.2.10:${p + 1}`, `192.0.2.11:${p}`, `[2001:db8::5]:${p}`, `127.0.0.1`]) {
      expect(await get(s, bad), bad).toBe(403);
    }
    // No Host at all (HTTP/1.0 from a raw socket; Node's client would fill one in).
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(p, '127.0.0.1', () => sock.write(`GET / HTTP/1.0\r\nCookie: ${tokenCookieName(p)}=${s.token}\r\n\r\n`));
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString()));
      sock.on('end', () => resolve(text));
      sock.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 403 /);
  });

  it('treats --host 0 (which the resolver binds as 0.0.0.0) as the wildcard it is: every URL printed and accepted', async () => {
    for (const spelled of ['0', '0.0']) {
      const s = await start({ host: spelled, interfaces: () => IFACES });
      const p = s.port;
      expect(s.exposed, spelled).toBe(true);
      expect(s.urls, spelled).toEqual([`http://127.0.0.1:${p}`, `http://192.0.2.10:${p}`]);
      for (const ok of [`127.0.0.1:${p}`, `localhost:${p}`, `192.0.2.10:${p}`]) expect(await get(s, ok), `${spelled} ${ok}`).toBe(200);
      expect(await get(s, `evil.example:${p}`)).toBe(403);
    }
  });

  it('lets an Origin in only when it is itself an accepted Host: an attacker cannot pick both', async () => {
    const s = await start({ host: '0.0.0.0', interfaces: () => IFACES });
    const p = s.port;
    expect(await upgrade(s, `evil.example:${p}`, `http://evil.example:${p}`)).toBe(403);
    expect(await upgrade(s, `127.0.0.1:${p}`, `http://evil.example:${p}`)).toBe(403);
    expect(await upgrade(s, `127.0.0.1:${p}`, `https://127.0.0.1:${p}`)).toBe(403); // scheme must match
    expect(await upgrade(s, `127.0.0.1:${p}`, undefined)).toBe(403);
    expect(await upgrade(s, `192.0.2.10:${p}`, `http://192.0.2.10:${p}`)).toBe(101);
    expect(await upgrade(s, `localhost:${p}`, `http://127.0.0.1:${p}`)).toBe(101);
  });

  it('works with this machine\'s real interfaces: every printed URL\'s host is accepted', async () => {
    const s = await start({ host: '0.0.0.0' });
    expect(s.urls[0]).toBe(`http://127.0.0.1:${s.port}`);
    for (const u of s.urls) expect(await get(s, new URL(u).host)).toBe(200);
    expect(await get(s, `attacker.example:${s.port}`)).toBe(403);
  });

  it('IPv6 wildcard lists global IPv6 addresses too, never link-local ones', () => {
    expect(interfaceAddresses('::', IFACES)).toEqual(['127.0.0.1', '::1', '192.0.2.10', '2001:db8::5']);
    expect(interfaceAddresses('0.0.0.0', IFACES)).toEqual(['127.0.0.1', '192.0.2.10']);
    const h = allowedHosts('::', '::', 8780, IFACES);
    expect(h.has('[2001:db8::5]:8780')).toBe(true);
    expect(h.has('[fe80::1]:8780')).toBe(false);
    expect(h.has('[::1]:8780')).toBe(true);
    // On the scheme's default port a browser leaves the port out.
    expect(allowedHosts('127.0.0.1', '127.0.0.1', 80, IFACES).has('localhost')).toBe(true);
    expect(allowedHosts('127.0.0.1', '127.0.0.1', 443, IFACES, true).has('127.0.0.1')).toBe(true);
  });
});

describe('a specific --host', () => {
  it('binds exactly that address and accepts only it (localhost only for loopback)', async () => {
    const s = await start({ host: '127.0.0.2', interfaces: () => IFACES });
    expect(s.url).toBe(`http://127.0.0.2:${s.port}`);
    expect(s.urls).toEqual([s.url]);
    // Nothing listens on 127.0.0.1 for this port: it bound what was asked, not everything.
    await expect(get(s, `127.0.0.1:${s.port}`)).rejects.toThrow(/ECONNREFUSED/);
    const viaOwn = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.2', port: s.port, path: '/', headers: { cookie: `${tokenCookieName(s.port)}=${s.token}` }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(viaOwn).toBe(200);
  });

  it('bounds RPC clients and console streams with a sentence (503)', async () => {
    const s = await start({ maxRpcClients: 2, maxStreams: 1 });
    const own = `http://127.0.0.1:${s.port}`;
    const host = `127.0.0.1:${s.port}`;
    expect(await upgrade(s, host, own)).toBe(101);
    expect(await upgrade(s, host, own)).toBe(101);
    expect(await upgrade(s, host, own)).toBe(503);
    const ticket = 'a'.repeat(43);
    expect(await upgrade(s, host, own, { path: `/streams/${ticket}` })).toBe(101);
    expect(await upgrade(s, host, own, { path: `/streams/${ticket}` })).toBe(503);
  });
});

// ---- vivarium serve: what it prints and says ---------------------------------------------------

interface Served {
  readonly stdout: string;
  readonly stderr: () => string;
  readonly stop: () => Promise<number>;
}

async function serve(o: { host?: string; tlsCert?: string; tlsKey?: string }): Promise<Served> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const abort = new AbortController();
  const exit = runServe({ ...o, port: 0, env: t.env, stdout: out, stderr: err, staticDir, signal: abort.signal });
  const deadline = Date.now() + 15_000;
  while (!stdout.includes('\n')) {
    const done = await Promise.race([exit.then((c) => `exited ${c}`), new Promise<null>((r) => setTimeout(() => r(null), 10))]);
    if (done || Date.now() > deadline) throw new Error(`serve did not print its URL (${done ?? 'timeout'}): ${stderr}`);
  }
  return {
    stdout,
    stderr: () => stderr,
    stop: async () => {
      abort.abort();
      return exit;
    },
  };
}

describe('vivarium serve --host / --tls-cert', () => {
  it('0.0.0.0 prints a URL per address and warns that the token crosses the network unencrypted', async () => {
    const s = await serve({ host: '0.0.0.0' });
    try {
      const lines = s.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
      for (const l of lines) expect(l).toMatch(/^http:\/\/[0-9.]+:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
      const port = new URL(lines[0]!).port;
      expect(s.stderr()).toContain('WARNING: --host 0.0.0.0 makes this engine reachable from other machines over plain HTTP');
      expect(s.stderr()).toContain('cross the network unencrypted');
      expect(s.stderr()).toContain('--tls-cert FILE --tls-key FILE');
      expect(s.stderr()).toContain(`ssh -L ${port}:127.0.0.1:${port} `);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('the default 127.0.0.1 prints one line and no warning', async () => {
    const s = await serve({});
    try {
      expect(s.stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}\n$/);
      expect(s.stderr()).not.toContain('WARNING');
    } finally {
      await s.stop();
    }
  });

  it('serves https and wss with a user-given certificate: Secure cookie, RPC works, plain http does not', async () => {
    const dir = path.join(t.home, 'tls');
    fs.mkdirSync(dir);
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' });
    const ca = fs.readFileSync(cert);
    const s = await serve({ host: '127.0.0.1', tlsCert: cert, tlsKey: key });
    try {
      const login = s.stdout.trim();
      expect(login).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
      const u = new URL(login);
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        https.get(login, { ca, agent: false }, (r) => {
          r.resume();
          resolve(r);
        }).on('error', reject);
      });
      expect(res.statusCode).toBe(302);
      expect(String(res.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict; Path=\/; Secure/);
      // wss with the token, from the https origin.
      const ws = new WebSocket(`wss://127.0.0.1:${u.port}/rpc?token=${u.searchParams.get('token')}`, { ca, origin: `https://127.0.0.1:${u.port}` });
      sockets.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const client = createRpcClient(wsConnection(ws));
      expect(await client.services.vms.list()).toEqual([]);
      client.dispose();
      // Plain http to the TLS port gets no page.
      await expect(
        new Promise((resolve, reject) => http.get(`http://127.0.0.1:${u.port}/`, { agent: false }, resolve).on('error', reject)),
      ).rejects.toThrow();
      expect(s.stderr()).not.toContain('WARNING');
    } finally {
      await s.stop();
    }
  });

  it('says what is wrong with the certificate options', async () => {
    const dir = path.join(t.home, 'tls2');
    fs.mkdirSync(dir);
    const mk = (name: string): [string, string] => {
      const c = path.join(dir, `${name}.crt`);
      const k = path.join(dir, `${name}.key`);
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=x', '-keyout', k, '-out', c], {
        stdio: 'ignore',
      });
      return [c, k];
    };
    const [certA] = mk('a');
    const [, keyB] = mk('b');
    const run = (o: { tlsCert?: string; tlsKey?: string }) =>
      runServe({ ...o, port: 0, env: t.env, stdout: new PassThrough(), stderr: new PassThrough(), staticDir }).catch((e: unknown) => (e as Error).message);
    expect(await run({ tlsCert: certA })).toBe('--tls-cert and --tls-key go together: give both (a PEM certificate and its private key), or neither.');
    expect(await run({ tlsCert: certA, tlsKey: path.join(dir, 'missing.key') })).toMatch(/^Cannot read the TLS key .*missing\.key: there is no such file\.$/);
    expect(await run({ tlsCert: certA, tlsKey: keyB })).toBe('The TLS key does not belong to the certificate. Give the key that was made with this certificate.');
    fs.writeFileSync(path.join(dir, 'junk.pem'), 'not a certificate');
    expect(await run({ tlsCert: path.join(dir, 'junk.pem'), tlsKey: keyB })).toMatch(/not in PEM format/);
  });
});
