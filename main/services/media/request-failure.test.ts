/**
 * request-failure.ts: each kind of failed request in words, with the host that failed and whether
 * waiting can help (errors shaped as Node and http-get.ts make them).
 */
import { describe, expect, it } from 'vitest';
import { describeRequestFailure } from './request-failure';

const URL0 = 'https://mirror.example:8443/debian.iso';
const nodeError = (code: string, message = code, more: Record<string, unknown> = {}): Error => Object.assign(new Error(message), { code, ...more });

describe('describeRequestFailure', () => {
  it('retries what waiting may fix, and says what happened', () => {
    for (const [code, words] of [
      ['ECONNREFUSED', 'the server refused the connection'],
      ['ECONNRESET', 'the connection was reset'],
      ['ENOTFOUND', 'the host name does not resolve'],
    ] as const) {
      const r = describeRequestFailure(nodeError(code), URL0, 'the file');
      expect(r.retry).toBe(true);
      expect(r.message).toBe(`could not reach mirror.example:8443 for the file: ${r.words}`);
      expect(r.words).toContain(words);
      expect(r.words).toContain(`(${code})`);
    }
  });

  it('does not retry certificates, and says what to do about each', () => {
    const untrusted = describeRequestFailure(nodeError('SELF_SIGNED_CERT_IN_CHAIN'), URL0, 'the checksum file');
    expect(untrusted.retry).toBe(false);
    expect(untrusted.message).toMatch(/^did not trust mirror\.example:8443 for the checksum file: its certificate is not signed by an authority this computer trusts \(SELF_SIGNED_CERT_IN_CHAIN\); if a proxy/);
    expect(untrusted.message).toContain('NODE_EXTRA_CA_CERTS');
    const named = describeRequestFailure(nodeError('UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'x', { trustFile: '/etc/corp-ca.pem', trustProblem: null }), URL0, 'the file');
    expect(named.message).toContain('nor by one in /etc/corp-ca.pem (NODE_EXTRA_CA_CERTS)');
    const unread = describeRequestFailure(nodeError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'x', { trustFile: '/x.pem', trustProblem: 'NODE_EXTRA_CA_CERTS names /x.pem, which could not be read (EACCES), so it was not used' }), URL0, 'the file');
    expect(unread.message).toContain('could not be read (EACCES)');
    for (const [code, words] of [
      ['CERT_HAS_EXPIRED', "its certificate has expired (or this computer's clock is wrong) (CERT_HAS_EXPIRED)"],
      ['CERT_NOT_YET_VALID', "its certificate is not valid yet (check this computer's clock) (CERT_NOT_YET_VALID)"],
      ['ERR_TLS_CERT_ALTNAME_INVALID', 'its certificate is for another host name (ERR_TLS_CERT_ALTNAME_INVALID)'],
    ] as const) {
      const r = describeRequestFailure(nodeError(code, 'raw'), URL0, 'the file');
      expect(r).toMatchObject({ retry: false, message: `did not trust mirror.example:8443 for the file: ${words}` });
    }
  });

  it('names the host that failed after a redirect, not the first one', () => {
    const r = describeRequestFailure(nodeError('ECONNREFUSED', 'x', { url: 'https://cdn.example/debian.iso' }), URL0, 'the file');
    expect(r.message).toContain('could not reach cdn.example for the file');
  });

  it('does not retry a port that does not speak HTTPS or a redirect this client refuses', () => {
    const notTls = describeRequestFailure(nodeError('EPROTO', 'C0B7:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:\n'), URL0, 'the file');
    expect(notTls.retry).toBe(false);
    expect(notTls.message).toBe('could not download the file from mirror.example:8443: it does not answer HTTPS there (EPROTO): is the address http://, or the port another?');
    const loop = describeRequestFailure(nodeError('ERR_TOO_MANY_REDIRECTS', 'it redirected too many times (a redirect loop?)'), URL0, 'the file');
    expect(loop).toMatchObject({ retry: false, message: 'could not download the file from mirror.example:8443: it redirected too many times (a redirect loop?)' });
  });

  it('keeps anything else on one line and retries it', () => {
    const r = describeRequestFailure(new Error('socket hang up\n  at somewhere'), URL0, 'the file');
    expect(r.retry).toBe(true);
    expect(r.words).toBe('socket hang up at somewhere');
  });
});
