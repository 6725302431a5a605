/**
 * The certificate authorities Vivarium's HTTPS downloads trust: Node's bundled roots, plus the PEM
 * file a person named in NODE_EXTRA_CA_CERTS (a company's TLS-inspecting proxy, a private mirror).
 *
 * Why this is not left to Node: Node 20 reads and parses the NODE_EXTRA_CA_CERTS file before any
 * JavaScript runs, in every process, whether or not it ever opens a TLS connection. OpenSSL 3 loads
 * certificates slowly (https://github.com/nodejs/node/issues/40524,
 * https://github.com/openssl/openssl/issues/16871): with the system bundle (~140 certificates)
 * named there, Node took 60 ms instead of 22 ms to reach its first line on these machines — a
 * third of a `vivarium start`'s own cost, paid by every command (issue 7). So bin/vivarium.js's
 * launcher line moves the variable to VIVARIUM_EXTRA_CA_CERTS before Node starts; bin/vivarium.js
 * then puts NODE_EXTRA_CA_CERTS back into process.env for the programs Vivarium starts (Node does not
 * read it again), drops VIVARIUM_EXTRA_CA_CERTS, and leaves the file's name here
 * (MOVED_EXTRA_CA_CERTS); an HTTPS request (http-get.ts, the only client that makes them) adds its
 * certificates, the first time one is made. Run as `node bin/vivarium.js` (no launcher), or as the
 * app, Node loads NODE_EXTRA_CA_CERTS itself and nothing is added here.
 */
import * as fsp from 'node:fs/promises';
import type * as Tls from 'node:tls';
import type { SecureContext } from 'node:tls';

/**
 * Where bin/vivarium.js puts the file its launcher kept from Node (a global, not an environment
 * variable, so the programs Vivarium starts see only NODE_EXTRA_CA_CERTS, as the person set it).
 */
export const MOVED_EXTRA_CA_CERTS = Symbol.for('vivarium.movedExtraCaCerts');

/** The file the launcher kept from this Node, or null (none named, or Node loaded it itself). */
export function movedExtraCaCerts(): string | null {
  const v = (globalThis as Record<symbol, unknown>)[MOVED_EXTRA_CA_CERTS];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** A certificate bundle larger than this is not read (the system bundle is ~200 KiB). */
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

export interface HttpsTrust {
  /** The file NODE_EXTRA_CA_CERTS names when Vivarium (not Node) added it, else null. */
  readonly file: string | null;
  /** For https.request's `secureContext`: the default trust (Node's bundled authorities, or the
   *  system's under --use-openssl-ca) plus the file's; undefined → Node's default. */
  readonly secureContext?: SecureContext;
  /** Why the named file was not used (unreadable, too large, no certificate in it), as a clause for
   *  an error message; null when it was used or none was named. Node itself warns and goes on in
   *  that case; so does a download, and a certificate error then names this. */
  readonly problem: string | null;
}

/** Successes only: a file that could not be used is read again by the next download (the person
 *  may have fixed it), one that was used is kept for the process's life, as Node keeps its own. */
const cache = new Map<string, HttpsTrust>();

/**
 * What an HTTPS request trusts. Building it parses every bundled authority and the file's (~100 ms,
 * once per process, on the first HTTPS request — what Node would have spent at start-up). Never rejects.
 */
export async function httpsTrust(file: string | null = movedExtraCaCerts()): Promise<HttpsTrust> {
  if (!file) return { file: null, problem: null };
  const known = cache.get(file);
  if (known) return known;
  const trust = await readTrust(file);
  if (trust.secureContext) cache.set(file, trust);
  return trust;
}

async function readTrust(file: string): Promise<HttpsTrust> {
  const named = `NODE_EXTRA_CA_CERTS names ${file}, which`;
  let pem: string;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) return { file, problem: `${named} is not a file, so it was not used` };
    if (st.size > MAX_BUNDLE_BYTES) return { file, problem: `${named} is larger than ${MAX_BUNDLE_BYTES / 1024 / 1024} MiB, so it was not used` };
    pem = await fsp.readFile(file, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { file, problem: `${named} could not be read (${code ?? (e as Error).message}), so it was not used` };
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return { file, problem: `${named} holds no PEM certificate, so it was not used` };
  // node:tls only now: loading it costs every command that never downloads (media-service imports this file).
  const tls = await import('node:tls');
  try {
    return { file, secureContext: withExtraAuthorities(tls, pem), problem: null };
  } catch (e) {
    return { file, problem: `${named} could not be parsed (${(e as Error).message}), so it was not used` };
  }
}

/**
 * The default secure context plus the authorities in `pem`. Node's documented `ca` option replaces
 * the default authorities (which would drop the system store a person chose with --use-openssl-ca),
 * so the certificates are added to a default context the way Node adds NODE_EXTRA_CA_CERTS itself:
 * the native context's addCACert (lib/internal/tls/secure-context.js; present since Node 0.x), which
 * copies the default store before adding. Without it, bundled authorities + `pem`.
 */
function withExtraAuthorities(tls: typeof Tls, pem: string): SecureContext {
  const ctx = tls.createSecureContext();
  const native = (ctx as unknown as { context?: { addCACert?: (cert: string) => void } }).context;
  if (typeof native?.addCACert === 'function') {
    native.addCACert(pem);
    return ctx;
  }
  return tls.createSecureContext({ ca: [...tls.rootCertificates, pem] });
}
