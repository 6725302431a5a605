/**
 * Password hashing for cloud-init's `passwd:` (a crypt(3) string, as in /etc/shadow). The clear
 * password never goes into the seed, a log or the bundle: only the `$6$` (SHA-512 crypt) hash does.
 *
 * Library: `unixcrypt` (SHA-256/512 crypt per Ulrich Drepper's "Unix crypt using SHA-256 and
 * SHA-512", the format glibc's crypt(3) and /etc/shadow use). It is ESM-only, hence the dynamic
 * import from this CommonJS build.
 */
import { randomBytes } from 'node:crypto';

const SALT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 16 random characters of crypt's salt alphabet (the maximum SHA-512 crypt uses). */
function salt(): string {
  const bytes = randomBytes(16);
  return Array.from(bytes, (b) => SALT_ALPHABET[b % 64]).join('');
}

/** Thrown for a password that cannot be used. */
export class PasswordError extends Error {
  override name = 'PasswordError';
}

/**
 * Hashes a clear password as `$6$<16-char salt>$<86-char hash>` (5000 rounds, glibc's default).
 * A trailing newline (as a password file usually ends) is removed first.
 * @throws PasswordError when the password is empty or longer than 1024 characters.
 */
export async function hashPassword(clear: string): Promise<string> {
  const pw = clear.replace(/\r?\n$/, '');
  if (pw.length === 0) throw new PasswordError('The password is empty. Give a password, or none to allow only SSH key logins.');
  if (pw.length > 1024) throw new PasswordError('The password is longer than 1024 characters.');
  const { encrypt } = await import('unixcrypt');
  return encrypt(pw, `$6$${salt()}`);
}

/** True when `clear` matches a `$5$`/`$6$` hash (for tests and a "check password" UI). */
export async function verifyPassword(clear: string, hash: string): Promise<boolean> {
  const { verify } = await import('unixcrypt');
  return verify(clear.replace(/\r?\n$/, ''), hash);
}
