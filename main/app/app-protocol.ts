/**
 * The app:// origin the Electron windows load from: which URLs belong to it, what a window.open
 * target means, and the protocol handler that serves the built renderer.
 *
 * Why a custom scheme and not file:// or the engine's HTTP server: file:// pages have an opaque
 * origin (no ES modules, no sane CSP 'self') and can read any file; the HTTP server would need the
 * token in the page. app://vivarium is a standard, secure origin whose only files are the build.
 *
 * Nothing here imports Electron: the handler takes and returns the web platform's Request/Response
 * (what `protocol.handle` uses), so it is tested with plain objects.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { APP_ORIGIN, CONTENT_TYPES, contentSecurityPolicy, resolveStaticPath } from '../server/http-server';

export const APP_SCHEME = 'app';
/** Every page and asset URL of the app starts with this (host "vivarium", no port, no userinfo). */
export const APP_URL_PREFIX = `${APP_ORIGIN}/`;
export const APP_PAGE = `${APP_URL_PREFIX}index.html`;

/** Given to `protocol.registerSchemesAsPrivileged` before the app is ready. No `corsEnabled`: other
 *  origins must not be able to read app:// responses. */
export const APP_SCHEME_PRIVILEGES = {
  scheme: APP_SCHEME,
  privileges: { standard: true, secure: true, supportFetchAPI: true },
} as const;

/** VM ids are the bundle folder names: lowercase UUIDs (main/services/bundles/bundle-store.ts). */
const VM_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isVmId(id: string): boolean {
  return VM_ID_RE.test(id);
}

/** Whether a (Chromium-canonical) URL is one of ours. A prefix check is exact here: the character
 *  after the host must be '/', which rules out userinfo, ports and look-alike hosts. */
export function isAppUrl(url: string): boolean {
  return url.startsWith(APP_URL_PREFIX);
}

/** Whether a serialized origin (permission checks pass one) or a URL is ours. */
export function isAppOrigin(originOrUrl: string): boolean {
  return originOrUrl === APP_ORIGIN || isAppUrl(originOrUrl);
}

export type AppRoute = { readonly kind: 'library' } | { readonly kind: 'vm'; readonly id: string };

/** The page URL of a window. The hash is the renderer's router (renderer/lib/router.ts). */
export function appPageUrl(route: AppRoute): string {
  return route.kind === 'library' ? `${APP_PAGE}#/` : `${APP_PAGE}#/vm/${route.id}`;
}

export type WindowOpenTarget =
  | { readonly kind: 'vm'; readonly id: string }
  | { readonly kind: 'external'; readonly url: string }
  | { readonly kind: 'deny' };

/**
 * What a `window.open(url)` from one of our pages should do. The renderer opens VM windows with
 * `window.open('app://vivarium/index.html#/vm/<id>')` (a bare '#/vm/<id>' is accepted too); those
 * become our own locked windows. https links go to the user's browser. Everything else is refused.
 */
export function classifyWindowOpen(rawUrl: string): WindowOpenTarget {
  let url: URL;
  try {
    url = new URL(rawUrl, APP_PAGE);
  } catch {
    return { kind: 'deny' };
  }
  if (url.protocol === 'https:') {
    // Credentials in a link are a phishing trick, not something to hand to the browser.
    if (url.username || url.password) return { kind: 'deny' };
    return { kind: 'external', url: url.href };
  }
  // A VM's port forward as the library links it (issue 11): http://127.0.0.1:PORT/ in the browser.
  if (url.protocol === 'http:' && url.hostname === '127.0.0.1' && url.port !== '' && !url.username && !url.password) {
    return { kind: 'external', url: url.href };
  }
  if (!isAppUrl(url.href) || (url.pathname !== '/' && url.pathname !== '/index.html') || url.search !== '') {
    return { kind: 'deny' };
  }
  const m = /^#\/vm\/([^/?#]+)\/?$/.exec(url.hash);
  return m && isVmId(m[1]!) ? { kind: 'vm', id: m[1]! } : { kind: 'deny' };
}

/** The parts of a fetch Request the handler reads (a plain object in tests, so raw, un-normalized
 *  URLs can be tried). */
export interface AppRequest {
  readonly url: string;
  readonly method: string;
}

export interface AppProtocolOptions {
  /** The built renderer (out/renderer). */
  readonly rendererDir: string;
  /** WebSocket origins the pages may connect to: the engine's stream bridge, `ws://127.0.0.1:PORT`. */
  readonly wsOrigins: readonly string[];
  readonly log?: (line: string) => void;
}


/** The headers every app:// response carries. */
export function appResponseHeaders(wsOrigins: readonly string[]): Readonly<Record<string, string>> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(wsOrigins),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
}

/**
 * The `protocol.handle('app', …)` handler: GET/HEAD of files inside rendererDir, nothing else.
 * Paths are checked raw and decoded (resolveStaticPath refuses `..` in any spelling), then the real
 * path (symlinks resolved) must still be inside the build.
 */
export function createAppProtocolHandler(o: AppProtocolOptions): (request: AppRequest) => Promise<Response> {
  const headers = appResponseHeaders(o.wsOrigins);
  let root: Promise<string> | null = null;
  const realRoot = (): Promise<string> => (root ??= fs.promises.realpath(o.rendererDir));

  const plain = (status: number, text: string, extra: Record<string, string> = {}): Response =>
    new Response(`${text}\n`, {
      status,
      headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...extra },
    });

  return async (request) => {
    if (!isAppUrl(request.url)) return plain(404, 'Not found.');
    if (request.method !== 'GET' && request.method !== 'HEAD') return plain(405, 'Method not allowed.', { Allow: 'GET, HEAD' });
    let rootDir: string;
    try {
      rootDir = await realRoot();
    } catch (e) {
      root = null; // the build may appear later (npm run build while the app is open)
      o.log?.(`app://: the renderer build is missing at ${o.rendererDir}: ${(e as Error).message}`);
      return plain(404, 'The user interface is not built. Run `npm run build` and reload.');
    }
    // Everything after the origin, raw: "/index.html", "/assets/x.js?v=1".
    const target = resolveStaticPath(rootDir, request.url.slice(APP_ORIGIN.length));
    if ('status' in target) return plain(target.status, target.status === 400 ? 'Bad request.' : 'Not found.');
    let real: string;
    let body: Buffer;
    try {
      real = await fs.promises.realpath(target.file);
      if (!real.startsWith(rootDir + path.sep)) return plain(404, 'Not found.');
      const stat = await fs.promises.stat(real);
      if (!stat.isFile()) return plain(404, 'Not found.');
      body = request.method === 'HEAD' ? Buffer.alloc(0) : await fs.promises.readFile(real);
    } catch {
      return plain(404, 'Not found.');
    }
    const ext = path.extname(real).toLowerCase();
    return new Response(request.method === 'HEAD' ? null : new Uint8Array(body), {
      status: 200,
      headers: {
        ...headers,
        'Content-Type': CONTENT_TYPES[ext] ?? 'application/octet-stream',
        // The page names the current hashed assets, so it must always be fresh.
        'Cache-Control': ext === '.html' ? 'no-store' : 'no-cache',
      },
    });
  };
}
