/**
 * The engine hands out stream URLs as it sees itself (ws://127.0.0.1:PORT/…). When the page was
 * opened through another name for the same server (`vivarium serve --host 0.0.0.0`, reached as
 * http://my-box:PORT), connect the way the page itself was reached.
 */
export function streamUrlForPage(url: string, page: { readonly protocol: string; readonly host: string; readonly port: string }): string {
  if (page.protocol !== 'http:' && page.protocol !== 'https:') return url; // Electron's app:// page
  const u = new URL(url);
  if (u.port !== page.port) return url;
  u.host = page.host;
  u.protocol = page.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}
