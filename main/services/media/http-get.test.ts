/** httpGet against a real HTTP server on 127.0.0.1: redirects followed as fetch follows them, a loop
 *  and a redirect to another scheme refused, headers and the body as a Node stream. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from './http-get';

let server: http.Server;
let base: string;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    const p = req.url ?? '/';
    if (p === '/file') {
      res.writeHead(200, { 'content-length': '5', etag: '"e1"', 'x-range': req.headers.range ?? '' });
      res.end('hello');
    } else if (p === '/hop1') {
      res.writeHead(302, { location: '/hop2' }).end();
    } else if (p === '/hop2') {
      res.writeHead(307, { location: `${base}/file` }).end();
    } else if (p === '/loop') {
      res.writeHead(301, { location: '/loop' }).end();
    } else if (p === '/ftp') {
      res.writeHead(302, { location: 'ftp://127.0.0.1/file' }).end();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function text(body: AsyncIterable<Buffer>): Promise<string> {
  let s = '';
  for await (const c of body) s += c.toString();
  return s;
}

describe('httpGet', () => {
  it('follows relative and absolute redirects, keeping the request headers, and reports the final URL', async () => {
    const res = await httpGet(`${base}/hop1`, { headers: { range: 'bytes=1-' } });
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${base}/file`);
    expect(res.header('ETag')).toBe('"e1"');
    expect(res.header('x-range')).toBe('bytes=1-');
    expect(res.header('no-such-header')).toBeNull();
    expect(await text(res.body)).toBe('hello');
  });

  it('refuses a redirect loop and a redirect to another scheme; a 404 is a response, not an error', async () => {
    await expect(httpGet(`${base}/loop`, { maxRedirects: 3 })).rejects.toThrow('it redirected too many times (a redirect loop?)');
    await expect(httpGet(`${base}/ftp`)).rejects.toThrow('cannot download from a ftp: address');
    const missing = await httpGet(`${base}/nothing`);
    expect(missing.status).toBe(404);
    missing.cancel();
  });

  it('stops when its signal aborts', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(httpGet(`${base}/file`, { signal: ac.signal })).rejects.toThrow(/abort/i);
  });
});
