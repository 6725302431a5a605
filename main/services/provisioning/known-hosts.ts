/**
 * A VM's known_hosts, learned from the guest's own serial console rather than trusted on first
 * connection over TCP.
 *
 * On first boot cloud-init's `keys_to_console` module prints the new host keys to the console
 * between `-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----` (cloud-init
 * `cc_keys_to_console`, script `write-ssh-key-fingerprints`); with `console=ttyS0` that lands in the
 * VM's serial.log, a channel only the guest writes. `ssh` then runs with this file and
 * `StrictHostKeyChecking=yes`: a different key on the forwarded port is refused, never accepted.
 */
import { constants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { sshpk } from './sshpk-lazy';
import { olderSerialLog } from '../logs/serial-log';

export const HOST_KEYS_BEGIN = '-----BEGIN SSH HOST KEY KEYS-----';
export const HOST_KEYS_END = '-----END SSH HOST KEY KEYS-----';

/** One host key from the console: `type` such as `ssh-ed25519`, `key` the base64 blob. */
export interface HostKey {
  readonly type: string;
  readonly key: string;
}

const KEY_RE = /(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)\s+([A-Za-z0-9+/]+={0,2})(?=\s|$)/;

/**
 * The host keys in the last complete BEGIN/END block of console output (a later boot of a new
 * instance prints newer keys). Each line may carry a prefix (a log tag, a `\r`); lines that are not
 * a parseable public key (kernel messages interleaved on the console) are skipped.
 * @returns [] when no complete block is present yet.
 */
export function parseHostKeysFromConsole(text: string): HostKey[] {
  const end = text.lastIndexOf(HOST_KEYS_END);
  if (end < 0) return [];
  const begin = text.lastIndexOf(HOST_KEYS_BEGIN, end);
  if (begin < 0) return [];
  const keys: HostKey[] = [];
  for (const raw of text.slice(begin + HOST_KEYS_BEGIN.length, end).split(/\r?\n|\r/)) {
    const m = KEY_RE.exec(raw);
    if (!m) continue;
    try {
      sshpk().parseKey(`${m[1]} ${m[2]}`, 'ssh');
    } catch {
      continue;
    }
    if (!keys.some((k) => k.key === m[2])) keys.push({ type: m[1]!, key: m[2]! });
  }
  return keys;
}

/** known_hosts host pattern for a port forwarded on the loopback address (`[127.0.0.1]:2222`). */
export function knownHostsPattern(port: number, address = '127.0.0.1'): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`Port ${port} is not 1–65535.`);
  return port === 22 ? address : `[${address}]:${port}`;
}

/** known_hosts text: one line per key, for the forwarded port. */
export function knownHostsText(keys: readonly HostKey[], port: number, address = '127.0.0.1'): string {
  const host = knownHostsPattern(port, address);
  return keys.map((k) => `${host} ${k.type} ${k.key}\n`).join('');
}

/**
 * Reads `serialLogPath`, and when it holds the host keys, writes `knownHostsPath` for `port`
 * (atomically: temp file + rename; 0600). Returns the keys, or [] when the guest has not printed
 * them yet (nothing is written then; poll again).
 * @throws the fs error when the serial log cannot be read (ENOENT: the VM has not started).
 */
export async function learnHostKeys(serialLogPath: string, knownHostsPath: string, port: number): Promise<HostKey[]> {
  // A chatty guest's log may have been rotated since the keys were printed: read the older part too.
  // Never through a link planted in the VM folder: host keys must come from this guest's console.
  const read = { encoding: 'latin1' as const, flag: constants.O_RDONLY | constants.O_NOFOLLOW };
  const older = await fsp.readFile(olderSerialLog(serialLogPath), read).catch(() => '');
  const keys = parseHostKeysFromConsole(older + (await fsp.readFile(serialLogPath, read)));
  if (keys.length === 0) return [];
  const tmp = path.join(path.dirname(knownHostsPath), `.${path.basename(knownHostsPath)}.${process.pid}.tmp`);
  await fsp.mkdir(path.dirname(knownHostsPath), { recursive: true });
  await fsp.writeFile(tmp, knownHostsText(keys, port), { mode: 0o600 });
  await fsp.rename(tmp, knownHostsPath);
  return keys;
}
