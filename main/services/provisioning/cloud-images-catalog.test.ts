// The cloud images of resources/catalog/os-catalog.json (their one home): what a sandbox starts from. The URLs cannot be
// fetched here; these checks catch the slips a hand-written list makes (an amd64 file under the
// aarch64 entry, a SUMS file from another folder, a missing architecture).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../common/contract/media';

const FILE = path.resolve(__dirname, '..', '..', '..', 'resources', 'catalog', 'os-catalog.json');
const all = Catalog.parse(JSON.parse(fs.readFileSync(FILE, 'utf8')));
const catalog = { ...all, entries: all.entries.filter((e) => e.kind === 'cloud') };
const ARCH_WORDS = { x86_64: ['amd64', 'x86_64'], aarch64: ['arm64', 'aarch64'] } as const;

describe('the cloud images of os-catalog.json', () => {
  it('is a valid catalog (the media service schema) whose cloud images are all qcow2', () => {
    expect(catalog.entries.length).toBeGreaterThan(0);
    expect(catalog.entries.every((e) => e.format === 'qcow2')).toBe(true);
  });

  it('has Debian, Ubuntu, Fedora and Alpine for both x86_64 and aarch64', () => {
    for (const preset of ['debian', 'ubuntu', 'fedora', 'alpine']) {
      const arches = catalog.entries.filter((e) => e.presetHints.preset === preset).map((e) => e.arch);
      expect(new Set(arches)).toEqual(new Set(['x86_64', 'aarch64']));
    }
  });

  it('names the right architecture in every file and boots aarch64 with UEFI', () => {
    for (const e of catalog.entries) {
      const file = new URL(e.url).pathname.split('/').pop()!;
      const other = e.arch === 'x86_64' ? ARCH_WORDS.aarch64 : ARCH_WORDS.x86_64;
      expect(ARCH_WORDS[e.arch].some((w) => file.includes(w)), `${e.id}: ${file}`).toBe(true);
      expect(other.some((w) => file.includes(w)), `${e.id}: ${file}`).toBe(false);
      expect(e.id.endsWith(`-${e.arch}`)).toBe(true);
      if (e.arch === 'aarch64') expect(e.presetHints.firmware).toBe('uefi');
    }
  });

  it('takes each checksum from the distro\'s SUMS file in the image\'s own folder, over HTTPS', () => {
    for (const e of catalog.entries) {
      const url = new URL(e.url);
      const sums = new URL(e.checksumUrl);
      expect(url.protocol).toBe('https:');
      expect(sums.protocol).toBe('https:');
      expect(sums.host).toBe(url.host);
      expect(path.posix.dirname(sums.pathname)).toBe(path.posix.dirname(url.pathname));
      // A per-file checksum (Alpine) must be that file's.
      if (!/SUMS$|CHECKSUM$/.test(sums.pathname)) expect(sums.pathname).toBe(`${url.pathname}.${e.checksumAlgorithm}`);
      if (e.signature.kind === 'detached' || e.signature.kind === 'image-detached') expect(new URL(e.signature.url).host).toBe(url.host);
    }
  });

  it('uses the Debian "generic" images, whose kernel has 9p (genericcloud\'s does not: shared folders)', () => {
    for (const e of catalog.entries.filter((x) => x.presetHints.preset === 'debian')) expect(e.url).toMatch(/-generic-(amd64|arm64)\.qcow2$/);
  });
});
