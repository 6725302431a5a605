/**
 * A GET for large downloads on Node's own `http`/`https` clients, whose body is a Node stream.
 *
 * Why not `fetch` for the image itself: fetch's body is a WHATWG ReadableStream (undici), and
 * reading it chunk by chunk and writing each to a file cost about half of a fast local download's
 * throughput on the 2-core machines the benchmarks run on (bench/install.bench.mjs: 1 GiB from
 * 127.0.0.1 at 0.51 of curl's rate), while `http.get` piped into a file kept pace with curl in the
 * same runs. Small files (SUMS files, signatures) still use fetch.
 *
 * Redirects (301, 302, 303, 307, 308) are followed up to `maxRedirects`, to http: and https: only,
 * as fetch's `redirect: "follow"` does; the response carries the final URL.
 */
import * as http from 'node:http';
import * as https from 'node:https';

export interface HttpGetOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** Default 10. */
  readonly maxRedirects?: number;
}

/** The parts of a response a download uses. */
export interface HttpGetResponse {
  readonly status: number;
  readonly statusText: string;
  /** A header's value (the first, for a repeated one), or null. Names are case-insensitive. */
  header(name: string): string | null;
  /** The body as a Node stream (chunks are Buffers). */
  readonly body: http.IncomingMessage;
  /** The URL that answered (after redirects). */
  readonly url: string;
  /** Drops the body and closes the connection. */
  cancel(): void;
}

/** GET `url`; resolves once the response's headers are in. Rejects on network errors (Node's
 *  error, with its `code`), on a redirect loop and on a redirect to another scheme. */
export function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpGetResponse> {
  return get(new URL(url), options, options.maxRedirects ?? 10);
}

function get(url: URL, options: HttpGetOptions, redirectsLeft: number): Promise<HttpGetResponse> {
  const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : null;
  if (!client) return Promise.reject(new Error(`cannot download from a ${url.protocol} address`));
  return new Promise((resolve, reject) => {
    const req = client.get(url, { headers: { ...options.headers }, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location) {
        res.resume();
        if (redirectsLeft <= 0) {
          reject(new Error('too many redirects'));
          return;
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          reject(new Error(`the server redirected to an invalid address (${location})`));
          return;
        }
        get(next, options, redirectsLeft - 1).then(resolve, reject);
        return;
      }
      resolve({
        status,
        statusText: res.statusMessage ?? '',
        header: (name) => {
          const v = res.headers[name.toLowerCase()];
          return v === undefined ? null : Array.isArray(v) ? (v[0] ?? null) : v;
        },
        body: res,
        url: url.toString(),
        cancel: () => res.destroy(),
      });
    });
    req.on('error', reject);
  });
}
