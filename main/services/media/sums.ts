/**
 * Reading checksum ("SUMS") files as distros publish them.
 *
 * Two line formats (GNU coreutils manual, "md5sum invocation" / `--tag`):
 *  - GNU:  `<hex>  <file>` (text mode) or `<hex> *<file>` (binary mode), as `sha256sum` writes
 *          (Debian SHA512SUMS, Ubuntu SHA256SUMS, Arch sha256sums.txt, Alpine .sha256);
 *  - BSD:  `SHA256 (<file>) = <hex>`, as `sha256sum --tag` and BSD `sha256` write (Fedora CHECKSUM).
 * Anything else on a line (comments, an OpenPGP clear-signature's armour, blank lines) is skipped,
 * so a clear-signed file reads the same as a plain one.
 */
import type { ChecksumAlgorithm } from '../../common/contract/media';

export interface SumsEntry {
  /** The file name as listed, without a leading `*` or `./`. */
  readonly file: string;
  readonly algorithm: ChecksumAlgorithm;
  /** Lower-case hex. */
  readonly digest: string;
}

const HEX_LENGTH: Readonly<Record<ChecksumAlgorithm, number>> = { sha256: 64, sha512: 128 };

function algorithmFor(hex: string): ChecksumAlgorithm | null {
  if (hex.length === 64) return 'sha256';
  if (hex.length === 128) return 'sha512';
  return null;
}

/** Every SHA-256/SHA-512 line in a SUMS file (other algorithms, e.g. Arch's b2sums, are skipped). */
export function parseSums(text: string): SumsEntry[] {
  const out: SumsEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const bsd = /^(SHA256|SHA512|SHA2-256|SHA2-512) ?\((.+)\) ?= ?([0-9a-fA-F]+)$/.exec(line);
    if (bsd) {
      const algorithm: ChecksumAlgorithm = bsd[1]!.endsWith('256') ? 'sha256' : 'sha512';
      const digest = bsd[3]!.toLowerCase();
      if (digest.length === HEX_LENGTH[algorithm]) out.push({ file: cleanName(bsd[2]!), algorithm, digest });
      continue;
    }
    // A leading backslash marks a GNU line whose file name has escaped characters.
    const gnu = /^\\?([0-9a-fA-F]+) [ *](.+)$/.exec(line);
    if (gnu) {
      const digest = gnu[1]!.toLowerCase();
      const algorithm = algorithmFor(digest);
      if (algorithm) out.push({ file: cleanName(gnu[2]!), algorithm, digest });
    }
  }
  return out;
}

function cleanName(name: string): string {
  return name.replace(/^\*/, '').replace(/^\.\//, '');
}

/**
 * The digest a SUMS file lists for `fileName` (matched on the last path segment, as SUMS files list
 * names relative to their folder). `algorithm` narrows the choice when the file lists both.
 * Returns null when the file is not listed.
 */
export function findDigest(text: string, fileName: string, algorithm?: ChecksumAlgorithm): SumsEntry | null {
  const entries = parseSums(text).filter((e) => (algorithm ? e.algorithm === algorithm : true));
  const base = (n: string) => n.split('/').pop()!;
  return entries.find((e) => e.file === fileName) ?? entries.find((e) => base(e.file) === fileName) ?? null;
}
