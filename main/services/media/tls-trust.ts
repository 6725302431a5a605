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
 * launcher line moves the variable to VIVARIUM_EXTRA_CA_CERTS before Node starts, and an HTTPS
 * request (http-get.ts, the only client that makes them) adds those certificates here, the first
 * time one is made (bin/vivarium.js puts NODE_EXTRA_CA_CERTS back into process.env for the programs
 * Vivarium starts; Node does not read it again). Run as `node bin/vivarium.js` (no launcher), Node
 * loads NODE_EXTRA_CA_CERTS itself and VIVARIUM_EXTRA_CA_CERTS is unset: nothing is added (a child
 * that inherits both adds the same certificates twice, which changes nothing).
 */
import * as fsp from 'node:fs/promises';

/** The variable bin/vivarium.js's launcher line moves NODE_EXTRA_CA_CERTS's value to. */
export const MOVED_EXTRA_CA_CERTS = 'VIVARIUM_EXTRA_CA_CERTS';

/** A certificate bundle larger than this is not read (the system bundle is ~200 KiB). */
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

export interface HttpsTrust {
  /** For https.request's `ca`: Node's bundled roots and the extra file's PEM text; undefined →
   *  Node's default store (nothing was moved). */
  readonly ca?: readonly string[];
  /** Why the named file was not used (unreadable, too large, no certificate in it), as a clause for
   *  an error message; null when it was used or none was named. Node itself warns and goes on in
   *  that case; so does a download, and a certificate error then names this. */
  readonly problem: string | null;
}

const cache = new Map<string, Promise<HttpsTrust>>();

/**
 * What an HTTPS request trusts, from `env` (default process.env). Read once per file and process.
 * Never rejects.
 */
export function httpsTrust(env: NodeJS.ProcessEnv = process.env): Promise<HttpsTrust> {
  const file = env[MOVED_EXTRA_CA_CERTS];
  if (!file) return Promise.resolve({ problem: null });
  let p = cache.get(file);
  if (!p) {
    p = readTrust(file);
    cache.set(file, p);
  }
  return p;
}

async function readTrust(file: string): Promise<HttpsTrust> {
  const named = `NODE_EXTRA_CA_CERTS names ${file}, which`;
  let pem: string;
  try {
    const st = await fsp.stat(file);
    if (st.size > MAX_BUNDLE_BYTES) return { problem: `${named} is larger than ${MAX_BUNDLE_BYTES / 1024 / 1024} MiB, so it was not used` };
    pem = await fsp.readFile(file, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { problem: `${named} could not be read (${code ?? (e as Error).message}), so it was not used` };
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return { problem: `${named} holds no PEM certificate, so it was not used` };
  // node:tls only now: loading it costs every command that never downloads (media-service imports this file).
  const { rootCertificates } = await import('node:tls');
  return { ca: [...rootCertificates, pem], problem: null };
}

/** OpenSSL's codes for a server certificate the trusted authorities do not vouch for. */
const UNTRUSTED_CERT_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);

/** Whether `code` (a TLS error's) says the server's certificate chain is not trusted. */
export function isUntrustedCertificate(code: string | undefined): boolean {
  return code !== undefined && UNTRUSTED_CERT_CODES.has(code);
}
