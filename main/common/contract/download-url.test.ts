/** downloadUrlProblem: why an address cannot be downloaded from, in words a person can act on. */
import { describe, expect, it } from 'vitest';
import { DownloadUrl, downloadUrlProblem } from './media';

describe('downloadUrlProblem', () => {
  it('accepts http:// and https:// addresses with a host', () => {
    for (const u of ['https://deb.debian.org/debian/x.iso', 'http://127.0.0.1:8080/a', 'HTTPS://EXAMPLE.ORG/']) expect(downloadUrlProblem(u)).toBeNull();
  });

  it('says what is wrong with each other kind', () => {
    expect(downloadUrlProblem('https://127.0.0.1:99999/x.iso')).toBe('its port (99999) must be 1–65535');
    expect(downloadUrlProblem('https://')).toBe('it names no host');
    expect(downloadUrlProblem('ftp://ftp.example/x.iso')).toBe('only http:// and https:// addresses can be downloaded, not ftp:');
    expect(downloadUrlProblem('https://me:secret@example.org/x')).toBe('it must not hold a user name or password');
    expect(downloadUrlProblem('/tmp/SHA256SUMS')).toBe('"/tmp/SHA256SUMS" is not a URL (it needs http:// or https:// in front)');
    expect(downloadUrlProblem('https://exa mple.org/x')).toBe('"https://exa mple.org/x" is not a valid URL (check the host name and the port)');
  });

  it('is what the contract schema says', () => {
    const r = DownloadUrl.safeParse('https://127.0.0.1:99999/');
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe('must be an http:// or https:// URL: its port (99999) must be 1–65535');
  });
});
