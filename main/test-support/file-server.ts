/**
 * A real HTTP file server on 127.0.0.1 for download tests (node:http): serves files and strings with
 * `Range: bytes=N-[M]` (206 + Content-Range), a strong ETag, Last-Modified and `If-Range`, and can
 * misbehave on purpose: cut the connection after N body bytes, send slowly, ignore Range.
 *
 *   const srv = await startFileServer({ '/debian.iso': { file: '/tmp/x.iso' }, '/SHA256SUMS': { text } });
 *   srv.url('/debian.iso'); srv.requests; srv.behave('/debian.iso', { cutAfterBytes: 1e6, times: 1 });
 *   await srv.close();
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';

export type Served = { readonly file: string } | { readonly text: string | Buffer };

export interface Behaviour {
  /** Destroy the socket after sending this many body bytes. */
  cutAfterBytes?: number;
  /** How many responses misbehave (then it serves normally). Default: all. */
  times?: number;
  /** Send at most this many bytes per second. */
  bytesPerSecond?: number;
  /** Answer every request with 200 and the whole file, as servers without Range support do. */
  ignoreRange?: boolean;
}

export interface RecordedRequest {
  readonly path: string;
  readonly range: string | null;
  readonly ifRange: string | null;
  readonly status: number;
}

export interface FileServer {
  readonly origin: string;
  url(p: string): string;
  readonly requests: RecordedRequest[];
  behave(p: string, b: Behaviour): void;
  /** One behaviour per coming response, in order (then back to `behave`'s, or normal). */
  behaveSequence(p: string, list: readonly Behaviour[]): void;
  set(p: string, s: Served): void;
  close(): Promise<void>;
}

export async function startFileServer(routes: Record<string, Served>): Promise<FileServer> {
  const table = new Map<string, Served>(Object.entries(routes));
  const behaviours = new Map<string, Behaviour>();
  const sequences = new Map<string, Behaviour[]>();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const served = table.get(p);
    const record = (status: number) =>
      requests.push({ path: p, range: req.headers.range ?? null, ifRange: (req.headers['if-range'] as string | undefined) ?? null, status });
    if (!served) {
      record(404);
      res.writeHead(404).end('not found');
      return;
    }
    const size = 'file' in served ? fs.statSync(served.file).size : Buffer.byteLength(served.text);
    const mtime = 'file' in served ? fs.statSync(served.file).mtime : new Date(0);
    const etag = `"${createHash('sha1').update(`${p}:${size}:${mtime.getTime()}`).digest('hex').slice(0, 16)}"`;
    let b = sequences.get(p)?.shift() ?? behaviours.get(p);
    if (b && b.times !== undefined) {
      if (b.times <= 0) b = undefined;
      else b.times--;
    }
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'] as string | undefined;
    if (range && !b?.ignoreRange && (!ifRange || ifRange === etag || ifRange === mtime.toUTCString())) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (m) {
        start = Number(m[1]);
        end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
        if (start >= size) {
          record(416);
          res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
          return;
        }
        status = 206;
      }
    }
    record(status);
    const headers: http.OutgoingHttpHeaders = {
      'content-length': end - start + 1,
      'accept-ranges': 'bytes',
      etag,
      'last-modified': mtime.toUTCString(),
      'content-type': 'application/octet-stream',
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const body = 'file' in served ? fs.createReadStream(served.file, { start, end, highWaterMark: 256 * 1024 }) : bufferStream(Buffer.from(served.text).subarray(start, end + 1));
    let sent = 0;
    const limit = b?.cutAfterBytes;
    const rate = b?.bytesPerSecond;
    const t0 = Date.now();
    body.on('data', (chunk: Buffer) => {
      if (limit !== undefined && sent + chunk.length >= limit) {
        const head = chunk.subarray(0, Math.max(0, limit - sent));
        sent += head.length;
        body.destroy();
        res.write(head, () => res.socket?.destroy());
        return;
      }
      sent += chunk.length;
      const ok = res.write(chunk);
      if (rate) {
        const due = t0 + (sent / rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) {
          body.pause();
          setTimeout(() => body.resume(), wait);
          return;
        }
      }
      if (!ok) {
        body.pause();
        res.once('drain', () => body.resume());
      }
    });
    body.on('end', () => res.end());
    res.on('close', () => body.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (p) => `${origin}${p}`,
    requests,
    behave: (p, b) => void behaviours.set(p, { ...b }),
    behaveSequence: (p, list) => void sequences.set(p, list.map((b) => ({ ...b }))),
    set: (p, s) => void table.set(p, s),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function bufferStream(buf: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 64 * 1024) chunks.push(buf.subarray(i, i + 64 * 1024));
  return Readable.from(chunks);
}
