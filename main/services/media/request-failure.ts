/**
 * A download request that got no response, in words: what failed, where, and what to do — and
 * whether trying again can help. Certificates, a port that does not speak HTTPS and redirect loops
 * do not change by waiting, so a download stops at once on them instead of backing off through five
 * retries (~16 s); a refused or cut connection is retried.
 *
 * The codes are Node's (system errors: ECONNREFUSED…; TLS: OpenSSL's verify codes as Node names
 * them, https://nodejs.org/api/tls.html#x509-certificate-error-codes; ERR_TLS_CERT_ALTNAME_INVALID)
 * and http-get.ts's own (ERR_TOO_MANY_REDIRECTS, ERR_REDIRECT_INVALID, ERR_UNSUPPORTED_SCHEME).
 */
import type { RequestFailure } from './http-get';

/** Where a failure is best acted on (the sentence's verb). */
type Kind = 'network' | 'trust' | 'protocol';

interface Words {
  readonly kind: Kind;
  readonly words: string;
  /** Whether trying again later can help. */
  readonly retry: boolean;
}

const NETWORK_WORDS: Readonly<Record<string, string>> = {
  ENOTFOUND: 'the host name does not resolve; check the network connection',
  EAI_AGAIN: 'the host name could not be resolved just now; check the network connection',
  ECONNREFUSED: 'the server refused the connection',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  EPIPE: 'the connection closed',
};

/** OpenSSL's codes for a server certificate chain no trusted authority vouches for. */
const UNTRUSTED_CERT_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
]);

// The words name no command: the UI shows them too (renderer/lib/remedy.ts drops a sentence that
// names a CLI command).

/** Other certificate faults: each says what is wrong with it. */
const CERT_WORDS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: "its certificate has expired (or this computer's clock is wrong)",
  CERT_NOT_YET_VALID: "its certificate is not valid yet (check this computer's clock)",
  CERT_REVOKED: 'its certificate has been revoked',
  INVALID_CA: 'its certificate chain holds a certificate that is not an authority',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate is for another host name',
};

/** TLS spoken to something that is not TLS (`https://` to a plain HTTP port). */
const NOT_TLS_CODES: ReadonlySet<string> = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);

/** http-get.ts's own refusals: their message is already a clause. */
const REDIRECT_CODES: ReadonlySet<string> = new Set(['ERR_TOO_MANY_REDIRECTS', 'ERR_REDIRECT_INVALID', 'ERR_UNSUPPORTED_SCHEME']);

/** Whether `code` (a TLS error's) says the server's certificate chain is not trusted. */
export function isUntrustedCertificate(code: string | undefined): boolean {
  return code !== undefined && UNTRUSTED_CERT_CODES.has(code);
}

type FailureLike = Partial<RequestFailure> & { readonly message?: string; readonly code?: string; readonly cause?: { readonly code?: string; readonly message?: string } };

function wordsFor(err: FailureLike): Words {
  const code = err.cause?.code ?? err.code;
  if (code && NETWORK_WORDS[code]) return { kind: 'network', words: `${NETWORK_WORDS[code]} (${code})`, retry: true };
  if (isUntrustedCertificate(code)) {
    const fix = err.trustProblem
      ? err.trustProblem
      : err.trustFile
        ? `nor by one in ${err.trustFile} (NODE_EXTRA_CA_CERTS): that file must hold the certificate of the authority that signed this server's`
        : "if a proxy or a private mirror signs with its own authority, name that authority's certificate file (PEM) in NODE_EXTRA_CA_CERTS for the process that downloads: the command, or the app or server when one runs (restart it)";
    return { kind: 'trust', words: `its certificate is not signed by an authority this computer trusts (${code}); ${fix}`, retry: false };
  }
  if (code && CERT_WORDS[code]) return { kind: 'trust', words: `${CERT_WORDS[code]} (${code})`, retry: false };
  if (code && NOT_TLS_CODES.has(code)) return { kind: 'protocol', words: `it does not answer HTTPS there (${code}): is the address http://, or the port another?`, retry: false };
  if (code && REDIRECT_CODES.has(code)) return { kind: 'protocol', words: err.message ?? code, retry: false };
  // Anything else: Node's words, one line.
  const raw = [err.message ?? String(err), err.cause?.message].filter(Boolean).join(': ').replace(/\s+/g, ' ').trim();
  return { kind: 'network', words: raw, retry: true };
}

/**
 * `e` (a rejection of httpGet/httpGetBytes) as a sentence about `role` ("the file", "the checksum
 * file"), naming the host that failed (after redirects; `url` when the error does not say), and
 * whether to retry; `words` is the cause alone (for a connection that broke mid-way). No final period.
 */
export function describeRequestFailure(e: unknown, url: string, role: string): { readonly message: string; readonly words: string; readonly retry: boolean } {
  const err = (typeof e === 'object' && e !== null ? e : { message: String(e) }) as FailureLike;
  let host: string;
  try {
    host = new URL(err.url ?? url).host;
  } catch {
    host = url;
  }
  const w = wordsFor(err);
  const lead = w.kind === 'trust' ? `did not trust ${host} for ${role}` : w.kind === 'protocol' ? `could not download ${role} from ${host}` : `could not reach ${host} for ${role}`;
  return { message: `${lead}: ${w.words}`, words: w.words, retry: w.retry };
}
