/**
 * The engine's HTTP + WebSocket server: the browser UI (static files from out/renderer), RPC over
 * `/rpc`, and console streams over `/streams/<ticket>`.
 *
 * Security (design.md, "Security rules"):
 *  - Binds 127.0.0.1 unless told otherwise, and exactly what it is told: `--host 0.0.0.0` listens on
 *    every IPv4 interface and the handle lists a URL for each interface address (`urls`), so what is
 *    printed is what reaches it. Beyond loopback the token travels in clear text unless a certificate
 *    is given (`tls`: https + wss); serve.ts says so.
 *  - A random 256-bit token guards every request and every upgrade. The printed URL carries it as
 *    `?token=`; the server answers that with a 302 to the same URL without it and sets an HttpOnly,
 *    SameSite=Strict cookie, so the token leaves the address bar and history at once. Tokens are
 *    compared in constant time.
 *  - The Host header must name this server — one of the addresses it is bound to (for a wildcard
 *    bind: this machine's interface addresses) or `localhost` when loopback is bound, with the port —
 *    which stops DNS rebinding before the token check even runs: a rebinding page's Host is the
 *    attacker's name, and no attacker-chosen name is ever accepted, whatever the bind.
 *  - WebSocket upgrades must come from an origin that is itself an accepted host (same scheme): an
 *    attacker can choose both Origin and Host only by naming this machine, which is no attack.
 *  - Connections are bounded: at most `maxRpcClients` RPC WebSockets and `maxStreams` console
 *    streams at once (503 beyond), slow request headers are cut after 10 s. Stream
 *    URLs are different: the ticket in them is the credential (single use, 30 s, minted only for an
 *    authenticated RPC caller), so they need no token and also accept
 *      - Origin `app://vivarium`: the Electron window, whose page is not served from here;
 *      - no Origin at all: non-browser clients (`vivarium serial`). Browsers always send Origin on a
 *        WebSocket handshake, so a missing one never comes from a web page.
 *  - Every response carries a strict CSP, nosniff, no-referrer and frame denial.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { ErrorCode, VivariumError } from '../common/errors';
import { MAX_REQUEST_BYTES } from '../common/rpc/protocol';
import type { RpcServer } from '../common/rpc/server';
import type { StreamGrant } from './stream-bridge';
import { wsConnection } from './transports/websocket';

export const TOKEN_COOKIE = 'vivarium_token';
/** The Electron window's origin (main/app registers the app:// scheme with this host). */
/** Browsers key cookies by host, not port: two engines on one machine (two libraries) must not sign
 *  each other out, so the cookie name carries the port. */
export function tokenCookieName(port: number): string {
  return `${TOKEN_COOKIE}_${port}`;
}

export const APP_ORIGIN = 'app://vivarium';
/** Largest client → engine frame on a stream (VNC client messages, a clipboard paste, keystrokes). */
const MAX_STREAM_FRAME_BYTES = 4 * 1024 * 1024;

/** The part of the stream bridge the server needs. */
export interface StreamEndpoint {
  redeem(ticket: string): StreamGrant | null;
  attach(ws: WebSocket, grant: StreamGrant): void;
}

/** A PEM certificate (chain) and its private key: the server speaks https/wss. */
export interface TlsFiles {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** Default bounds on what clients can hold open at once. */
export const MAX_RPC_CLIENTS = 64;
export const MAX_STREAM_CLIENTS = 256;

export interface HttpServerOptions {
  /** Default 127.0.0.1. An address (IPv4/IPv6), `localhost`, or a wildcard (0.0.0.0, ::). */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The built renderer; null serves no pages (the Electron app loads its pages from app://). */
  readonly staticDir: string | null;
  /** Served on /rpc; null refuses /rpc (the Electron app speaks RPC over IPC). */
  readonly rpcServer: Pick<RpcServer, 'serve'> | null;
  readonly bridge: StreamEndpoint;
  /** Default: 32 random bytes, base64url. */
  readonly token?: string;
  readonly log?: (line: string) => void;
  /** Serve https/wss with this certificate instead of http/ws. */
  readonly tls?: TlsFiles | null;
  /** This machine's interfaces (default os.networkInterfaces; tests pass their own). */
  readonly interfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  /** At most this many RPC WebSockets at once (default MAX_RPC_CLIENTS). */
  readonly maxRpcClients?: number;
  /** At most this many console streams at once (default MAX_STREAM_CLIENTS). */
  readonly maxStreams?: number;
}

export interface HttpServerHandle {
  /** `http://127.0.0.1:PORT` (or the bound host; https with TLS). For a wildcard bind, the loopback
   *  URL. */
  readonly url: string;
  /** Every base URL that reaches this server: `url` first, then (wildcard bind) one per address of
   *  this machine's interfaces. */
  readonly urls: readonly string[];
  /** Whether other machines can reach it (bound beyond loopback). */
  readonly exposed: boolean;
  /** Whether it speaks TLS (https/wss). */
  readonly secure: boolean;
  /** `ws://127.0.0.1:PORT`: the base of stream URLs. */
  readonly wsUrl: string;
  /** The URL to open: `url` + `/?token=…`. */
  readonly loginUrl: string;
  readonly port: number;
  readonly token: string;
  /** Closes every connection (WebSockets with 1001) and stops listening. */
  close(): Promise<void>;
}

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time: both sides are hashed first, so neither length nor content leaks through timing. */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function parseCookies(header: string | undefined): readonly (readonly [string, string])[] {
  if (!header) return [];
  return header.split(';').flatMap((part) => {
    const eq = part.indexOf('=');
    if (eq < 0) return [];
    return [[part.slice(0, eq).trim(), part.slice(eq + 1).trim()] as const];
  });
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '' || host === '::0' || host === '0:0:0:0:0:0:0:0';
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms, and the name localhost. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return net.isIPv4(v4) && v4.startsWith('127.');
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The addresses a wildcard bind answers on: every interface's (IPv4 only for 0.0.0.0), without
 *  IPv6 link-local ones (a browser cannot use those in a URL). Loopback first. */
export function interfaceAddresses(bindHost: string, interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): string[] {
  const v4only = bindHost === '0.0.0.0' || bindHost === '';
  const out: string[] = [];
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) {
      const family = String(a.family);
      const isV4 = family === 'IPv4' || family === '4';
      if (v4only && !isV4) continue;
      if (!isV4 && a.address.toLowerCase().startsWith('fe80:')) continue;
      out.push(a.address.toLowerCase());
    }
  }
  return [...new Set(out)].sort((a, b) => Number(isLoopback(b)) - Number(isLoopback(a)));
}

/**
 * The Host header values (lowercase host:port; the bare host too on the scheme's default port) a
 * browser may use for this server: the bound address, `localhost` when loopback is bound, and for a
 * wildcard bind every interface address. Never a name an outsider chooses.
 */
export function allowedHosts(
  bindHost: string,
  boundAddress: string,
  port: number,
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>,
  secure = false,
): ReadonlySet<string> {
  const addrs = new Set<string>();
  if (isWildcard(bindHost)) {
    for (const a of interfaceAddresses(bindHost, interfaces)) addrs.add(a);
    addrs.add('localhost').add('127.0.0.1');
    if (bindHost !== '0.0.0.0' && bindHost !== '') addrs.add('::1');
  } else {
    addrs.add(boundAddress.toLowerCase());
    // The name the user asked for (e.g. --host myhost.lan) names this machine by their own choice.
    if (!net.isIP(bindHost)) addrs.add(bindHost.toLowerCase());
    if (isLoopback(boundAddress)) {
      addrs.add('localhost');
      if (net.isIPv4(boundAddress)) addrs.add('127.0.0.1');
      else addrs.add('::1');
    }
  }
  const names = new Set<string>();
  const defaultPort = secure ? 443 : 80;
  for (const a of addrs) {
    names.add(hostPort(a, port));
    if (port === defaultPort) names.add(a.includes(':') ? `[${a}]` : a);
  }
  return names;
}

export async function startHttpServer(o: HttpServerOptions): Promise<HttpServerHandle> {
  // `let`: after listen, what was bound decides, not how it was spelled (see below).
  let host = o.host ?? '127.0.0.1';
  const token = o.token ?? newToken();
  const log = o.log ?? (() => {});
  const staticRoot = o.staticDir ? await fs.promises.realpath(o.staticDir) : null;
  const secure = !!o.tls;
  const scheme = secure ? 'https' : 'http';
  const wsScheme = secure ? 'wss' : 'ws';
  const interfaces = o.interfaces ?? os.networkInterfaces;
  const maxRpcClients = o.maxRpcClients ?? MAX_RPC_CLIENTS;
  const maxStreams = o.maxStreams ?? MAX_STREAM_CLIENTS;
  let wildcard = isWildcard(host);
  let port = o.port;
  let boundAddress = host;
  let hosts: ReadonlySet<string> = new Set();
  // A wildcard bind follows the machine's interfaces (a laptop changes networks): an unknown Host
  // re-reads them, at most once a second, before it is refused.
  let hostsReadAt = 0;
  const refreshHosts = (): void => {
    hosts = allowedHosts(host, boundAddress, port, interfaces(), secure);
    hostsReadAt = Date.now();
  };

  /** The validated Host header (host:port), or null when it is not ours. */
  const requestHost = (req: http.IncomingMessage): string | null => {
    const h = (req.headers.host ?? '').toLowerCase();
    if (hosts.has(h)) return h;
    if (wildcard && Date.now() - hostsReadAt > 1000) {
      refreshHosts();
      if (hosts.has(h)) return h;
    }
    return null;
  };

  /** An Origin is ours when it is this server's scheme and an accepted Host. */
  const isOwnOrigin = (origin: string | undefined): boolean => {
    if (origin === undefined) return false;
    const prefix = `${scheme}://`;
    return origin.toLowerCase().startsWith(prefix) && hosts.has(origin.slice(prefix.length).toLowerCase());
  };

  const hasToken = (req: http.IncomingMessage, url: URL): 'query' | 'cookie' | null => {
    const q = url.searchParams.get('token');
    if (q !== null) return tokensEqual(q, token) ? 'query' : null;
    for (const [name, value] of parseCookies(req.headers.cookie).slice(0, 64)) {
      if (name === tokenCookieName(port) && tokensEqual(value, token)) return 'cookie';
    }
    return null;
  };

  const headersFor = (reqHost: string): Record<string, string> => ({
    'Content-Security-Policy': contentSecurityPolicy((wildcard ? [reqHost] : [...hosts].filter((h) => h.endsWith(`:${port}`))).map((h) => `${wsScheme}://${h}`)),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  });

  const rpcWss = new WebSocketServer({ noServer: true, maxPayload: MAX_REQUEST_BYTES });
  const streamWss = new WebSocketServer({ noServer: true, maxPayload: MAX_STREAM_FRAME_BYTES });

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const reqHost = requestHost(req);
    const headers = headersFor(reqHost ?? hostPort(printableHost(host), port));
    const reply = (status: number, text: string, extra: Record<string, string> = {}): void => {
      res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...extra });
      res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
    };
    if (reqHost === null) return reply(403, 'Forbidden: this server answers only to its own address.');
    const url = parseUrl(req.url);
    if (!url) return reply(400, 'Bad request.');
    const auth = hasToken(req, url);
    if (!auth) return reply(401, UNAUTHORIZED_TEXT);
    if (auth === 'query' && (req.method === 'GET' || req.method === 'HEAD')) {
      // Trade the token in the address bar for a cookie, and drop it from the URL.
      url.searchParams.delete('token');
      const location = `${url.pathname}${url.searchParams.size ? `?${url.searchParams.toString()}` : ''}`;
      return reply(302, 'Signed in.', {
        Location: location,
        'Set-Cookie': `${tokenCookieName(port)}=${token}; HttpOnly; SameSite=Strict; Path=/${secure ? '; Secure' : ''}`,
      });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'Method not allowed.', { Allow: 'GET, HEAD' });
    if (url.pathname === '/rpc' || url.pathname.startsWith('/streams/')) return reply(426, 'This address takes WebSocket connections only.', { Upgrade: 'websocket' });
    if (!staticRoot) return reply(404, 'Not found.');
    void serveStatic(req, res, staticRoot, headers).catch((e: unknown) => {
      log(`static ${req.url ?? ''}: ${(e as Error).message}`);
      if (!res.headersSent) reply(500, 'Internal error.');
      else res.destroy();
    });
  };
  const server: http.Server = o.tls ? createTlsServer(o.tls, onRequest) : http.createServer(onRequest);
  // Slow-loris: headers must arrive within 10 s, a whole request within 30 s.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxConnections = maxRpcClients + maxStreams + 64;

  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => {}); // a reset during the handshake must not crash the engine
    const reqHost = requestHost(req);
    if (reqHost === null) return refuse(socket, 403, 'Forbidden: this server answers only to its own address.');
    const url = parseUrl(req.url);
    if (!url) return refuse(socket, 400, 'Bad request.');
    const origin = req.headers.origin;
    const own = isOwnOrigin(origin);

    if (url.pathname === '/rpc') {
      if (!own) return refuse(socket, 403, 'Forbidden: WebSocket from a foreign origin.');
      if (!hasToken(req, url)) return refuse(socket, 401, UNAUTHORIZED_TEXT);
      const rpcServer = o.rpcServer;
      if (!rpcServer) return refuse(socket, 404, 'Not found.');
      if (rpcWss.clients.size >= maxRpcClients) {
        return refuse(socket, 503, `Too many windows are connected to this engine (${maxRpcClients}). Close some and reload.`);
      }
      rpcWss.handleUpgrade(req, socket, head, (ws) => {
        const serving = rpcServer.serve(wsConnection(ws, { maxMessageBytes: MAX_REQUEST_BYTES }));
        ws.once('close', () => serving.dispose());
      });
      return;
    }

    const m = /^\/streams\/([^/]+)$/.exec(url.pathname);
    if (m) {
      if (!(own || origin === undefined || origin === APP_ORIGIN)) return refuse(socket, 403, 'Forbidden: WebSocket from a foreign origin.');
      if (streamWss.clients.size >= maxStreams) {
        return refuse(socket, 503, `Too many consoles are open on this engine (${maxStreams}). Close some and try again.`);
      }
      const grant = o.bridge.redeem(m[1]!);
      if (!grant) return refuse(socket, 401, 'This console link has expired or was already used. Open the console again.');
      streamWss.handleUpgrade(req, socket, head, (ws) => o.bridge.attach(ws, grant));
      return;
    }
    refuse(socket, 404, 'Not found.');
  });

  server.on('clientError', (_e, socket: net.Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(host, o.port, e)));
    server.listen(o.port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  port = address.port;
  boundAddress = address.address;
  // `--host 0` (or 0.0, 0x0…) is a wildcard to the resolver and binds every interface: print, accept
  // and warn as for 0.0.0.0, never as if only 127.0.0.1 were reachable.
  if (!wildcard && isWildcard(boundAddress)) {
    host = boundAddress;
    wildcard = true;
  }
  refreshHosts();

  const shown = hostPort(wildcard ? printableHost(host) : printableHost(boundAddress), port);
  const url = `${scheme}://${shown}`;
  const urls = [url];
  if (wildcard) {
    for (const a of interfaceAddresses(host, interfaces())) {
      const u = `${scheme}://${hostPort(a, port)}`;
      if (!urls.includes(u)) urls.push(u);
    }
  }
  let closing: Promise<void> | null = null;
  return {
    url,
    urls,
    exposed: wildcard || !isLoopback(boundAddress),
    secure,
    wsUrl: `${wsScheme}://${shown}`,
    loginUrl: `${url}/?token=${token}`,
    port,
    token,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const ws of [...rpcWss.clients, ...streamWss.clients]) ws.close(1001, 'The Vivarium engine is shutting down.');
        server.close(() => resolve());
        server.closeIdleConnections();
        // WebSockets that don't finish their closing handshake promptly are cut.
        const cut = setTimeout(() => {
          for (const ws of [...rpcWss.clients, ...streamWss.clients]) ws.terminate();
          server.closeAllConnections();
        }, 1000);
        cut.unref();
      }).then(() => {
        rpcWss.close();
        streamWss.close();
      });
      return closing;
    },
  };
}

const UNAUTHORIZED_TEXT =
  'Unauthorized. Open the address that `vivarium serve` printed (it carries the access token), or restart it for a new one.';

/** The host a local browser should use: a wildcard bind is reachable on loopback. */
function printableHost(host: string): string {
  return isWildcard(host) ? '127.0.0.1' : host;
}

/** An https server, with the certificate's problems said in words (the PEM text never is). */
function createTlsServer(tls: TlsFiles, onRequest: http.RequestListener): http.Server {
  try {
    return https.createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, onRequest) as unknown as http.Server;
  } catch (e) {
    const why = (e as Error).message;
    const text = /key values mismatch/i.test(why)
      ? 'The TLS key does not belong to the certificate. Give the key that was made with this certificate.'
      : /PEM|no start line|bad base64|asn1|DECODER/i.test(why)
        ? 'The TLS certificate or key is not in PEM format (a file that starts with -----BEGIN …-----). Give PEM files.'
        : `The TLS certificate or key cannot be used: ${why}.`;
    throw new VivariumError(ErrorCode.InvalidArgument, text);
  }
}

export function contentSecurityPolicy(wsOrigins: readonly string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    `connect-src 'self' ${wsOrigins.join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
  ].join('; ');
}

function parseUrl(raw: string | undefined): URL | null {
  // Only origin-form request targets ("/path?query"); absolute-form and "*" are not for us.
  if (!raw || !raw.startsWith('/') || raw.startsWith('//')) return null;
  try {
    return new URL(raw, 'http://localhost');
  } catch {
    return null;
  }
}

function refuse(socket: net.Socket, status: number, text: string): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * Maps a request path to a file inside `root`, or says why not. Works on the raw path so encoded
 * tricks are seen: `..` segments (plain, %2e%2e, or across an encoded / or \) are refused outright,
 * and the resolved path must still lie inside the root.
 */
export function resolveStaticPath(root: string, rawUrl: string): { readonly file: string } | { readonly status: 400 | 404 } {
  const rawPath = rawUrl.split('?')[0]!.split('#')[0]!;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return { status: 400 };
  }
  if (decoded.includes('\0')) return { status: 400 };
  const segments = decoded.split(/[\\/]+/);
  if (segments.some((s) => s === '..' || s === '.')) return { status: 400 };
  // Hidden files are never part of the UI build.
  if (segments.some((s) => s.startsWith('.'))) return { status: 404 };
  const rel = decoded.endsWith('/') ? `${decoded}index.html` : decoded;
  const file = path.resolve(root, `.${path.posix.normalize(rel.replace(/\\/g, '/'))}`);
  if (file !== root && !file.startsWith(root + path.sep)) return { status: 400 };
  return { file };
}

async function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, root: string, headers: Record<string, string>): Promise<void> {
  const plain = (status: number, text: string): void => {
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
  };
  const target = resolveStaticPath(root, req.url ?? '/');
  if ('status' in target) return plain(target.status, target.status === 400 ? 'Bad request.' : 'Not found.');
  let real: string;
  let stat: fs.Stats;
  try {
    // A symlink inside the build must not lead outside it.
    real = await fs.promises.realpath(target.file);
    stat = await fs.promises.stat(real);
  } catch {
    return plain(404, 'Not found.');
  }
  if (!real.startsWith(root + path.sep) || !stat.isFile()) return plain(404, 'Not found.');
  const ext = path.extname(real).toLowerCase();
  res.writeHead(200, {
    ...headers,
    'Content-Type': CONTENT_TYPES[ext] ?? 'application/octet-stream',
    'Content-Length': String(stat.size),
    // The page must always be fresh (it names the current hashed assets); assets revalidate.
    'Cache-Control': ext === '.html' ? 'no-store' : 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const stream = fs.createReadStream(real);
    stream.on('error', reject);
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
}

function listenError(host: string, port: number, e: NodeJS.ErrnoException): VivariumError {
  switch (e.code) {
    case 'EADDRINUSE':
      return new VivariumError(
        ErrorCode.Busy,
        `Port ${port} on ${host} is already in use. Pick another with --port N, or --port 0 for any free port.`,
        { host, port },
      );
    case 'EACCES':
    case 'EPERM':
      return new VivariumError(ErrorCode.Unauthorized, `No permission to listen on ${host}:${port}. Use a port above 1023.`, { host, port });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new VivariumError(ErrorCode.InvalidArgument, `${host} is not an address of this machine. Use 127.0.0.1 (the default).`, { host });
    default:
      return new VivariumError(ErrorCode.Internal, `Could not listen on ${host}:${port}: ${e.message}.`, { host, port, errno: e.code });
  }
}
