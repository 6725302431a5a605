/**
 * Hash routes. The renderer is served from app:// in Electron and from the engine's HTTP server in a
 * browser; a hash router works the same under both without server-side rewrites.
 */
export type Route =
  | { readonly kind: 'library' }
  | { readonly kind: 'host' }
  | { readonly kind: 'vm'; readonly id: string }
  | { readonly kind: 'not-found'; readonly path: string };

/** `#/`, `#`, `` → library; `#/host` → host resources; `#/vm/<id>` → VM window. Anything else is
 *  not found. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  if (path === '' || path === '/') return { kind: 'library' };
  if (path === '/host' || path === '/host/') return { kind: 'host' };
  const m = /^\/vm\/([^/?#]+)\/?$/.exec(path);
  if (m && m[1]) {
    let id: string;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      return { kind: 'not-found', path };
    }
    if (id.trim() !== '') return { kind: 'vm', id };
  }
  return { kind: 'not-found', path };
}

/** The hash (with its leading `#`) for a route. */
export function routeHash(route: Route): string {
  switch (route.kind) {
    case 'library':
      return '#/';
    case 'host':
      return '#/host';
    case 'vm':
      return `#/vm/${encodeURIComponent(route.id)}`;
    case 'not-found':
      return `#${route.path}`;
  }
}

/** The full URL for a route, keeping the current path and query (the browser host's token lives
 *  there, and a new tab needs it). */
export function routeUrl(currentHref: string, route: Route): string {
  const url = new URL(currentHref);
  url.hash = routeHash(route);
  return url.toString();
}
