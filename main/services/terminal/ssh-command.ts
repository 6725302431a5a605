/**
 * The system OpenSSH client command line for a VM: its key, its own known_hosts (learned from the
 * serial console, see provisioning/known-hosts.ts) with strict checking, the forwarded loopback port.
 * Pure: no file is touched and nothing runs here. Used by the Terminal tab (pty-session.ts),
 * `vivarium ssh` and "Open in system terminal".
 *
 * Options (ssh_config(5)):
 * - `IdentitiesOnly=yes` + `-i KEY`: only the VM's key is offered (an agent with many keys would
 *   otherwise hit the server's MaxAuthTries first).
 * - `UserKnownHostsFile=FILE` + `GlobalKnownHostsFile=/dev/null` + `StrictHostKeyChecking=yes`: the
 *   host key must be the one learned from the console; nothing is added or trusted silently.
 * - `PasswordAuthentication=no` unless the caller allows it: a locked account answers at once
 *   instead of prompting.
 * - `ConnectTimeout`, `ServerAliveInterval`/`CountMax`: a dead guest is noticed in seconds.
 * - `LogLevel=ERROR`: no "Warning: Permanently added" chatter in a terminal or a command's output.
 * - `--` ends ssh's options, so a command word that starts with `-` is never read as one.
 *
 * The command: as with OpenSSH's own `ssh HOST -- WORDS…`, the words are joined with spaces into
 * one command line that the guest user's login shell runs, so `vivarium ssh NAME -- 'a; b'` runs
 * `a; b` there and `vivarium ssh NAME -- sh -c 'exit 7'` runs `sh -c exit 7` (quote for the guest's
 * shell: `-- "sh -c 'exit 7'"`). The words are passed to ssh as given (ssh does the joining) and
 * the remote command's exit status comes back as ssh's.
 */

/** What the command is built from. */
export interface SshTarget {
  /** Guest user name (what `create --user` set). */
  readonly user: string;
  /** Host port forwarded to the guest's port 22. */
  readonly port: number;
  /**
   * Private key file (OpenSSH format, mode 0600): the VM's generated key, or the private half of the
   * public key the user gave. null → no `-i` and no IdentitiesOnly: ssh offers the agent's and the
   * default keys (the user gave a public key whose private half Vivarium does not know).
   */
  readonly identityFile: string | null;
  /** The VM's known_hosts file. */
  readonly knownHostsFile: string;
  /** Default 127.0.0.1: forwards are bound to loopback only. */
  readonly host?: string;
}

export interface SshCommandOptions {
  /** The command to run in the guest: words joined with spaces into one shell command line, as OpenSSH does; none → an interactive login shell. */
  readonly command?: readonly string[];
  /** Force a tty even with a command (`-t`), as the Terminal tab wants for `top` etc. */
  readonly tty?: boolean;
  /** Allow password prompts (only when the VM has a password). Default false. */
  readonly allowPassword?: boolean;
  /** ssh client binary; default `ssh` from PATH (on Windows, OpenSSH's `ssh.exe`). */
  readonly sshBinary?: string;
  /** ConnectTimeout in seconds (default 10). */
  readonly connectTimeoutSeconds?: number;
}

/** A command to spawn (no shell): `file` with `args`. */
export interface SshCommand {
  readonly file: string;
  readonly args: readonly string[];
}

const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * Builds `ssh -i KEY -o … -p PORT user@127.0.0.1 [-- cmd…]`.
 * @throws RangeError for a port outside 1–65535, a user name that is not a Linux user name, or a
 *   key/known_hosts path that is not absolute (they must never be looked up relative to a cwd).
 */
export function buildSshCommand(target: SshTarget, options: SshCommandOptions = {}): SshCommand {
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw new RangeError(`SSH port ${target.port} is not 1–65535.`);
  if (!USER_RE.test(target.user)) throw new RangeError(`"${target.user}" is not a guest user name.`);
  for (const p of [target.identityFile, target.knownHostsFile]) {
    if (p !== null && !isAbsolute(p)) throw new RangeError(`"${p}" must be an absolute path.`);
  }
  const host = target.host ?? '127.0.0.1';
  const args = [
    ...(target.identityFile === null ? [] : ['-i', target.identityFile, '-o', 'IdentitiesOnly=yes']),
    '-o', `UserKnownHostsFile=${target.knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `PasswordAuthentication=${options.allowPassword ? 'yes' : 'no'}`,
    '-o', `KbdInteractiveAuthentication=${options.allowPassword ? 'yes' : 'no'}`,
    '-o', `ConnectTimeout=${options.connectTimeoutSeconds ?? 10}`,
    '-o', 'ServerAliveInterval=5',
    '-o', 'ServerAliveCountMax=3',
    '-o', 'LogLevel=ERROR',
    '-p', String(target.port),
  ];
  if (options.tty) args.push('-t');
  args.push(`${target.user}@${host}`);
  if (options.command && options.command.length > 0) args.push('--', ...options.command);
  return { file: options.sshBinary ?? 'ssh', args };
}

/**
 * The same command as one line for a POSIX shell (what "Open in system terminal" and the CLI show):
 * every word single-quoted where needed.
 */
export function sshCommandLine(cmd: SshCommand): string {
  return [cmd.file, ...cmd.args].map(shellQuote).join(' ');
}

/** `word` as one word for a POSIX shell: bare when it is plain, else single-quoted ('' for empty). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function isAbsolute(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}
