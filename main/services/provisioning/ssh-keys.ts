/**
 * The SSH key pair Vivarium makes for a VM when the user gives no public key.
 *
 * How: `node:crypto` generates the ed25519 pair (OpenSSL underneath, on every host) and `sshpk`
 * (Joyent's, the library npm's own registry client used) writes the private key in the OpenSSH
 * format (`-----BEGIN OPENSSH PRIVATE KEY-----`, openssh-key-v1, unencrypted) and the public key as
 * an authorized_keys line. Not `ssh-keygen`: one code path everywhere (Windows has no ssh-keygen by
 * default) is one tested path; OpenSSH's `ssh-keygen -y` reads the result (tested).
 */
import { generateKeyPair as generateKeyPairCb } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { sshpk } from './sshpk-lazy';

const generateKeyPair = promisify(generateKeyPairCb);

/** An SSH key pair as text: the private key in OpenSSH format, the public key as one `ssh-ed25519 AAAA… comment` line. */
export interface SshKeyPair {
  readonly privateKey: string;
  readonly publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
}

/** Makes an ed25519 key pair; `comment` ends the public key line (e.g. `vivarium@<vm-name>`). */
export async function generateSshKeyPair(comment: string): Promise<SshKeyPair> {
  const safeComment = comment.replace(/[\s\0]+/g, '_').slice(0, 128);
  const { privateKey } = await generateKeyPair('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const key = sshpk().parsePrivateKey(privateKey, 'pkcs8');
  key.comment = safeComment;
  const pub = key.toPublic();
  pub.comment = safeComment;
  return {
    privateKey: key.toString('ssh-private'),
    publicKey: `${pub.toString('ssh')}\n`.replace(/\n+$/, ''),
    fingerprint: pub.fingerprint('sha256').toString(),
  };
}

/** Where a VM's own key pair lives in its bundle. */
export function vmKeyPaths(bundleDir: string): { readonly privateKey: string; readonly publicKey: string } {
  return { privateKey: path.join(bundleDir, 'ssh', 'id_ed25519'), publicKey: path.join(bundleDir, 'ssh', 'id_ed25519.pub') };
}

/**
 * Makes the VM's key pair and writes it into `<bundle>/ssh/` (folder 0700, both keys 0600 — OpenSSH
 * refuses a private key others can read; everything Vivarium writes is private). Refuses to overwrite an existing key.
 * @returns the pair and where it was written.
 * @throws the fs error (EEXIST when a key is already there).
 */
export async function createVmKeyPair(bundleDir: string, comment: string): Promise<SshKeyPair & { readonly paths: ReturnType<typeof vmKeyPaths> }> {
  const paths = vmKeyPaths(bundleDir);
  await fsp.mkdir(path.dirname(paths.privateKey), { recursive: true, mode: 0o700 });
  await fsp.chmod(path.dirname(paths.privateKey), 0o700);
  const pair = await generateSshKeyPair(comment);
  // 'wx': create, never overwrite; the mode applies at creation, then chmod undoes any umask.
  await fsp.writeFile(paths.privateKey, pair.privateKey, { flag: 'wx', mode: 0o600 });
  await fsp.chmod(paths.privateKey, 0o600);
  await fsp.writeFile(paths.publicKey, `${pair.publicKey}\n`, { flag: 'wx', mode: 0o600 });
  return { ...pair, paths };
}
