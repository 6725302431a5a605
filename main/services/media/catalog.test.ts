/**
 * The shipped OS catalog (resources/catalog/os-catalog.json) against its zod schema and the rules a
 * person relies on when picking an entry; and SUMS parsing in the formats distros publish.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../common/contract/media';
import { CATALOG_FILE, defaultResourcesDir, filterCatalog, loadCatalog } from './catalog';
import { findDigest, parseSums } from './sums';

let file: string;

describe('the OS catalog', () => {
  beforeAll(async () => {
    file = path.join(await defaultResourcesDir({}), CATALOG_FILE);
  });

  it('is found from the sources and validates against the schema', async () => {
    expect(file).toBe(path.resolve(__dirname, '..', '..', '..', 'resources', 'catalog', 'os-catalog.json'));
    const parsed = Catalog.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
    if (!parsed.success) throw new Error(JSON.stringify(parsed.error.issues, null, 2));
    expect((await loadCatalog(file)).entries.length).toBe(parsed.data.entries.length);
  });

  it('has an installer for each distro and architecture people ask for', async () => {
    const { entries } = await loadCatalog(file);
    const installers = filterCatalog(entries, { kind: 'installer' });
    for (const distro of ['debian', 'ubuntu', 'fedora', 'alpine', 'arch']) {
      expect(installers.some((e) => e.id.startsWith(distro) && e.arch === 'x86_64'), `${distro} x86_64`).toBe(true);
    }
    // Arch Linux publishes no official aarch64 ISO (Arch Linux ARM is a separate project).
    for (const distro of ['debian', 'ubuntu', 'fedora', 'alpine']) {
      expect(installers.some((e) => e.id.startsWith(distro) && e.arch === 'aarch64'), `${distro} aarch64`).toBe(true);
    }
    expect(filterCatalog(entries, { kind: 'cloud', arch: 'aarch64' }).length).toBeGreaterThan(0);
  });

  it('points every entry at https, at a file for its own architecture, with its SUMS file beside it', async () => {
    const { entries } = await loadCatalog(file);
    for (const e of entries) {
      const url = new URL(e.url);
      const sums = new URL(e.checksumUrl);
      expect(url.protocol, e.id).toBe('https:');
      expect(sums.protocol, e.id).toBe('https:');
      // The SUMS file lives in the image's folder on the same server (how every distro here lays it out).
      expect(sums.host, e.id).toBe(url.host);
      expect(path.posix.dirname(sums.pathname), e.id).toBe(path.posix.dirname(url.pathname));
      const fileName = path.posix.basename(url.pathname);
      const archWords = e.arch === 'x86_64' ? ['amd64', 'x86_64'] : ['arm64', 'aarch64'];
      expect(archWords.some((w) => fileName.includes(w)), `${e.id}: ${fileName}`).toBe(true);
      if (e.kind === 'installer') expect(fileName.endsWith('.iso'), e.id).toBe(true);
      if (e.signature.kind === 'detached' || e.signature.kind === 'image-detached') {
        expect(new URL(e.signature.url).host, e.id).toBe(url.host);
      }
      expect(e.id.endsWith(e.arch), e.id).toBe(true);
      expect(e.presetHints.recommendedMemoryMiB).toBeGreaterThanOrEqual(e.presetHints.minMemoryMiB);
    }
  });
});

describe('SUMS files', () => {
  const a = 'a'.repeat(64);
  const b = 'B'.repeat(128);
  it('reads GNU lines in text and binary mode, and skips others', () => {
    const text = `# comment\n${a}  debian-13.2.0-amd64-netinst.iso\n${'c'.repeat(64)} *ubuntu-24.04.3-live-server-amd64.iso\n${'d'.repeat(32)}  md5-only.iso\n\nnot a line\n`;
    expect(parseSums(text)).toEqual([
      { file: 'debian-13.2.0-amd64-netinst.iso', algorithm: 'sha256', digest: a },
      { file: 'ubuntu-24.04.3-live-server-amd64.iso', algorithm: 'sha256', digest: 'c'.repeat(64) },
    ]);
    expect(findDigest(text, 'ubuntu-24.04.3-live-server-amd64.iso')?.digest).toBe('c'.repeat(64));
    expect(findDigest(text, 'missing.iso')).toBeNull();
  });

  it('reads BSD lines inside a clear-signed message (Fedora CHECKSUM)', () => {
    const text = [
      '-----BEGIN PGP SIGNED MESSAGE-----',
      'Hash: SHA256',
      '',
      '# Fedora-Server-netinst-x86_64-43-1.6.iso: 1148190720 bytes',
      `SHA256 (Fedora-Server-netinst-x86_64-43-1.6.iso) = ${a}`,
      `SHA512 (./other.iso) = ${b}`,
      '-----BEGIN PGP SIGNATURE-----',
      '',
      'iQIzBAEBCAAdFiEE',
      '-----END PGP SIGNATURE-----',
    ].join('\r\n');
    expect(findDigest(text, 'Fedora-Server-netinst-x86_64-43-1.6.iso', 'sha256')).toEqual({ file: 'Fedora-Server-netinst-x86_64-43-1.6.iso', algorithm: 'sha256', digest: a });
    expect(findDigest(text, 'other.iso')).toEqual({ file: 'other.iso', algorithm: 'sha512', digest: b.toLowerCase() });
    expect(findDigest(text, 'Fedora-Server-netinst-x86_64-43-1.6.iso', 'sha512')).toBeNull();
  });

  it('matches a name listed with a folder (Debian SHA512SUMS for the whole tree)', () => {
    expect(findDigest(`${b}  ./iso-cd/debian.iso\n`, 'debian.iso')?.algorithm).toBe('sha512');
  });
});
