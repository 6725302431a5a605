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
 *
 * This is Vivarium's only HTTPS client (lint: no `fetch`, no other `node:https` import): its requests
 * trust what tls-trust.ts says, which includes NODE_EXTRA_CA_CERTS's certificates even though the
 * `vivarium` launcher keeps that variable from Node itself (tls-trust.ts says why).
 */
import * as http from 'node:http';
// eslint-disable-next-line no-restricted-imports -- this is the one HTTPS client (see above)
import * as https from 'node:https';
import { httpsTrust } from './tls-trust';

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

/**
 * What a failed request's error carries besides Node's own `code` and message (Object.assign'd onto
 * Node's error, or on an Error made here): the URL that failed (after redirects), and what the HTTPS
 * trust was (tls-trust.ts) so a certificate error can say what to do.
 */
export interface RequestFailure {
  readonly url: string;
  /** ERR_TOO_MANY_REDIRECTS, ERR_REDIRECT_INVALID, ERR_UNSUPPORTED_SCHEME for what this file refuses. */
  readonly code?: string;
  /** The NODE_EXTRA_CA_CERTS file Vivarium added to what HTTPS trusts, or null. */
  readonly trustFile?: string | null;
  /** Why that file was not used (tls-trust.ts HttpsTrust.problem), or null. */
  readonly trustProblem?: string | null;
}

/** GET `url`; resolves once the response's headers are in. Rejects on network errors (Node's
 *  error, with its `code`), on a redirect loop and on a redirect to another scheme (codes above);
 *  every rejection carries RequestFailure's fields. */
export function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpGetResponse> {
  return get(new URL(url), options, options.maxRedirects ?? 10);
}

function failure(message: string, fields: RequestFailure): Error {
  return Object.assign(new Error(message), fields);
}

async function get(url: URL, options: HttpGetOptions, redirectsLeft: number): Promise<HttpGetResponse> {
  const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : null;
  if (!client) throw failure(`cannot download from a ${url.protocol} address (only http:// and https://)`, { url: url.toString(), code: 'ERR_UNSUPPORTED_SCHEME' });
  const trust = client === https ? await httpsTrust() : null;
  return new Promise((resolve, reject) => {
    const tlsOptions = trust?.secureContext ? { secureContext: trust.secureContext } : {};
    const req = client.get(url, { headers: { ...options.headers }, ...(options.signal ? { signal: options.signal } : {}), ...tlsOptions }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location) {
        res.resume();
        if (redirectsLeft <= 0) {
          reject(failure('it redirected too many times (a redirect loop?)', { url: url.toString(), code: 'ERR_TOO_MANY_REDIRECTS' }));
          return;
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          reject(failure(`it redirected to an invalid address (${location})`, { url: url.toString(), code: 'ERR_REDIRECT_INVALID' }));
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
    req.on('error', (e: NodeJS.ErrnoException) => {
      // Which address failed, and what HTTPS trusted: a certificate error can then say what to do
      // (media-service.ts describeFetchError).
      const fields: RequestFailure = { url: url.toString(), trustFile: trust?.file ?? null, trustProblem: trust?.problem ?? null };
      reject(Object.assign(e, fields));
    });
  });
}

/** A whole small response (httpGetBytes). */
export interface HttpBytesResponse {
  readonly status: number;
  readonly statusText: string;
  /** The body; empty for a status of 400 or more (not read). */
  readonly body: Uint8Array;
}

/** The body was longer than httpGetBytes's `maxBytes`. */
export class BodyTooLarge extends Error {
  constructor(readonly maxBytes: number) {
    super(`the response is larger than ${maxBytes} bytes`);
  }
}

/**
 * GET a small file (a SUMS file, a signature) whole, following redirects like httpGet.
 * @throws BodyTooLarge past `maxBytes` (bytes); Node's network errors as httpGet.
 */
export async function httpGetBytes(url: string, options: HttpGetOptions & { readonly maxBytes: number }): Promise<HttpBytesResponse> {
  const res = await httpGet(url, options);
  if (res.status >= 400) {
    res.cancel();
    return { status: res.status, statusText: res.statusText, body: new Uint8Array(0) };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > options.maxBytes) {
      res.cancel();
      throw new BodyTooLarge(options.maxBytes);
    }
    chunks.push(chunk);
  }
  return { status: res.status, statusText: res.statusText, body: new Uint8Array(Buffer.concat(chunks, size)) };
}
