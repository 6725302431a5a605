/**
 * OpenPGP signatures of SUMS files (issue 9): a distro signs the checksum file, not each image, so a
 * verified signature over the SUMS file is what ties a downloaded image to the distro. Two shapes:
 *
 *  - detached: the SUMS file plus a separate signature (Debian's `SHA512SUMS.sign`, Ubuntu's
 *    `SHA256SUMS.gpg`), armored or binary;
 *  - clear-signed: the SUMS file is itself an OpenPGP cleartext message (Fedora's `…-CHECKSUM`); only
 *    the signed text is then read for the digest (RFC 9580 §7: anything around the signed block is
 *    not covered by the signature).
 *
 * The keys come from the keyring files Vivarium ships in `resources/keys/` (see its README for where
 * each one came from), narrowed to the primary-key fingerprints the catalog entry names, so a
 * keyring with more keys in it never widens whom a catalog entry trusts. Verification uses
 * OpenPGP.js (the `openpgp` package), loaded only when a signature is checked.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** How to check one SUMS file's signature. */
export interface SumsSignatureCheck {
  readonly kind: 'detached' | 'clearsigned';
  /** The signature's bytes (detached); null for clear-signed. */
  readonly signature: Uint8Array | null;
  /** Armored or binary OpenPGP public keys (a keyring file's contents). */
  readonly keyring: Uint8Array;
  /** Primary-key fingerprints (40 hex digits, any case) the signature must come from. */
  readonly fingerprints: readonly string[];
}

/** A good signature: the text it covers and who made it. */
export interface SumsSignatureResult {
  /** The signed SUMS text (for a detached signature, the whole file). */
  readonly signedText: string;
  /** "Debian CD signing key <debian-cd@lists.debian.org>" */
  readonly signer: string;
  /** The signing key's primary fingerprint, upper-case hex. */
  readonly fingerprint: string;
}

/** The signature does not verify, in a clause that says why ("it was made by key …, which …"). */
export class BadSignature extends Error {}

function isArmored(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 64)).toString('latin1').includes('-----BEGIN PGP');
}

/**
 * Verifies `sums` (the SUMS file as fetched) against `check`. Resolves with the signed text and the
 * signer; rejects with BadSignature when the signature is malformed, made by another key, or does not
 * match the text (a changed checksum file).
 */
export async function verifySums(sums: Uint8Array, check: SumsSignatureCheck): Promise<SumsSignatureResult> {
  const openpgp = await import('openpgp');
  const allKeys = isArmored(check.keyring)
    ? await openpgp.readKeys({ armoredKeys: Buffer.from(check.keyring).toString('utf8') })
    : await openpgp.readKeys({ binaryKeys: check.keyring });
  const wanted = new Set(check.fingerprints.map((f) => f.toUpperCase()));
  const keys = allKeys.filter((k) => wanted.has(k.getFingerprint().toUpperCase()));
  if (keys.length === 0) throw new BadSignature('none of the expected signing keys is in Vivarium\'s keyring');

  let verification;
  let signedText: string;
  try {
    if (check.kind === 'clearsigned') {
      const message = await openpgp.readCleartextMessage({ cleartextMessage: Buffer.from(sums).toString('utf8') });
      verification = await openpgp.verify({ message, verificationKeys: keys });
      signedText = message.getText();
    } else {
      if (!check.signature) throw new BadSignature('there is no signature to check');
      const signature = isArmored(check.signature)
        ? await openpgp.readSignature({ armoredSignature: Buffer.from(check.signature).toString('utf8') })
        : await openpgp.readSignature({ binarySignature: check.signature });
      // A text-mode signature (type 0x01) covers the text with canonical line endings; a binary one
      // (0x00, what `gpg --detach-sign` makes) the bytes as they are.
      const textMode = signature.packets.some((p) => p.signatureType === openpgp.enums.signature.text);
      const message = textMode ? await openpgp.createMessage({ text: Buffer.from(sums).toString('utf8') }) : await openpgp.createMessage({ binary: sums });
      verification = await openpgp.verify({ message, signature, verificationKeys: keys });
      signedText = Buffer.from(sums).toString('utf8');
    }
  } catch (e) {
    if (e instanceof BadSignature) throw e;
    throw new BadSignature(`it is not a readable OpenPGP signature (${(e as Error).message})`);
  }
  const reasons: string[] = [];
  for (const s of verification.signatures) {
    try {
      await s.verified;
      const key = keys.find((k) => k.getKeys(s.keyID).length > 0);
      if (!key) continue;
      const user = await key.getPrimaryUser().catch(() => null);
      const uid = user?.user.userID?.userID ?? key.getUserIDs()[0] ?? 'unnamed key';
      return { signedText, signer: uid, fingerprint: key.getFingerprint().toUpperCase() };
    } catch (e) {
      reasons.push((e as Error).message.replace(/^Signed digest did not match$/, 'the checksum file does not match its signature'));
    }
  }
  if (verification.signatures.length === 0) throw new BadSignature('it holds no signature');
  const ids = verification.signatures.map((s) => s.keyID.toHex().toUpperCase()).join(', ');
  throw new BadSignature(reasons.find((r) => /does not match/.test(r)) ?? `it was made by key ${ids}, which is not one of the distro's signing keys Vivarium expects (${reasons[0] ?? 'no matching key'})`);
}

/** Reads a keyring shipped in `resources/keys/` (a plain file name: no folders). */
export async function readShippedKeyring(resourcesDir: string, name: string): Promise<Uint8Array | null> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return null;
  return fs.readFile(path.join(resourcesDir, 'keys', name)).then(
    (b) => new Uint8Array(b),
    () => null,
  );
}

/** "DF9B 9C49 EAA9 2984 …": a fingerprint in groups of four, as gpg prints it. */
export function spacedFingerprint(fp: string): string {
  return fp.toUpperCase().replace(/(.{4})(?=.)/g, '$1 ');
}
