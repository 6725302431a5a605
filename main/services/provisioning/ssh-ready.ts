/**
 * "Connect as soon as the guest answers": waits until a cloud-init guest can take an SSH session —
 * its host keys are known (learned from the console on the first boot, kept in the bundle's
 * known_hosts for later boots) and its sshd sends the SSH banner through the forwarded port.
 *
 * Why the banner and not a TCP connect: QEMU's user-mode network accepts a connection on a
 * forwarded port before anything listens in the guest, then closes it. Only sshd writes
 * `SSH-2.0-…` (RFC 4253 §4.2). Why not `ssh true` in a loop: one process per try, and an
 * authentication failure looks the same as a guest still booting.
 */
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { knownHostsPattern, learnHostKeys, type HostKey } from './known-hosts';

/**
 * The SSH identification line the server on 127.0.0.1:`port` sends, or null when none arrives within
 * `timeoutMs` (nothing listening, the connection closed, or something that is not SSH).
 */
export function sshBanner(port: number, timeoutMs = 3000, host = '127.0.0.1'): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const done = (v: string | null): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      // Servers may send other lines before the identification line (RFC 4253 §4.2).
      for (const line of buf.split(/\r?\n/).slice(0, -1)) if (line.startsWith('SSH-')) return done(line);
      if (buf.length > 8192) done(null);
    });
    sock.on('error', () => done(null));
    sock.on('close', () => done(null));
  });
}

/**
 * Points an existing known_hosts at another forwarded port (the port may change from one start to
 * the next; the keys do not). Lines for other hosts are kept. Atomic (temp file + rename).
 * @returns how many lines now name `[127.0.0.1]:port`; 0 when the file has no loopback entry.
 * @throws the fs error (ENOENT when there is no known_hosts yet).
 */
export async function rewriteKnownHostsPort(knownHostsFile: string, port: number): Promise<number> {
  const text = await fsp.readFile(knownHostsFile, 'utf8');
  const host = knownHostsPattern(port);
  let count = 0;
  const lines = text.split('\n').map((line) => {
    const m = /^(127\.0\.0\.1|\[127\.0\.0\.1\]:\d+) (.+)$/.exec(line);
    if (!m) return line;
    count++;
    return `${host} ${m[2]}`;
  });
  const tmp = path.join(path.dirname(knownHostsFile), `.${path.basename(knownHostsFile)}.${process.pid}.tmp`);
  await fsp.writeFile(tmp, lines.join('\n'), { mode: 0o644 });
  await fsp.rename(tmp, knownHostsFile);
  return count;
}

export interface SshReadyOptions {
  /** The VM's serial log (its console), where the first boot prints the host keys. */
  readonly serialLog: string;
  /** The bundle's known_hosts: written from the console, or re-pointed at `port` when it exists. */
  readonly knownHostsFile: string;
  /** The host port forwarded to the guest's 22. */
  readonly port: number;
  /** Give up after this long (milliseconds). */
  readonly timeoutMs: number;
  /** Between tries (default 500 ms: a read of the serial log or one loopback connect each). */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  /** Checked between tries: false (the VM stopped) ends the wait at once. */
  readonly alive?: () => boolean;
}

export interface SshReady {
  /** Keys from the console on this wait, or null when known_hosts already had them. */
  readonly learnedKeys: readonly HostKey[] | null;
  /** The server's identification line, e.g. `SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`. */
  readonly banner: string;
  /** From the call to the keys being known, and to the banner (milliseconds). */
  readonly keysAfterMs: number;
  readonly readyAfterMs: number;
}

/** Why waiting ended without a session; `reason` says which. */
export class SshNotReadyError extends Error {
  override name = 'SshNotReadyError';
  constructor(
    readonly reason: 'timeout' | 'stopped' | 'aborted',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Waits for the host keys (console or existing known_hosts), then for sshd's banner.
 * @throws SshNotReadyError: `timeout` (with what was missing), `stopped` (alive() turned false),
 *   `aborted` (the signal).
 */
export async function waitForSshReady(o: SshReadyOptions): Promise<SshReady> {
  const t0 = Date.now();
  const pollMs = o.pollMs ?? 500;
  const check = (missing: string): void => {
    if (o.signal?.aborted) throw new SshNotReadyError('aborted', 'Stopped waiting for SSH.');
    if (o.alive && !o.alive()) throw new SshNotReadyError('stopped', 'The VM stopped before its SSH server answered.');
    if (Date.now() - t0 > o.timeoutMs) {
      throw new SshNotReadyError('timeout', `The guest's SSH server did not answer within ${Math.round(o.timeoutMs / 1000)} s (${missing}). ` +
        'Look at the serial console: is cloud-init still running, or did it fail?');
    }
  };
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, pollMs));

  let learnedKeys: HostKey[] | null = null;
  const known = await rewriteKnownHostsPort(o.knownHostsFile, o.port).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return 0;
    throw e;
  });
  if (known === 0) {
    for (;;) {
      const keys = await learnHostKeys(o.serialLog, o.knownHostsFile, o.port).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return [];
        throw e;
      });
      if (keys.length > 0) {
        learnedKeys = keys;
        break;
      }
      check('no SSH host keys on the console yet');
      await pause();
    }
  }
  const keysAfterMs = Date.now() - t0;
  for (;;) {
    const banner = await sshBanner(o.port, Math.min(3000, Math.max(500, pollMs * 3)));
    if (banner) return { learnedKeys, banner, keysAfterMs, readyAfterMs: Date.now() - t0 };
    check('the host keys are known, but sshd does not answer yet');
    await pause();
  }
}
