import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MAX_COLS, handleTerminalMessage, startPtySession, type PtySession } from './pty-session';
import { buildSshCommand, sshCommandLine } from './ssh-command';

const target = { user: 'dev', port: 40022, identityFile: '/vms/a b/ssh/id_ed25519', knownHostsFile: '/vms/a b/ssh/known_hosts' };

describe('buildSshCommand', () => {
  it('uses the VM key, its own known_hosts with strict checking, and the loopback port', () => {
    const cmd = buildSshCommand(target);
    expect(cmd.file).toBe('ssh');
    expect(cmd.args).toEqual([
      '-i', '/vms/a b/ssh/id_ed25519',
      '-o', 'IdentitiesOnly=yes',
      '-o', 'UserKnownHostsFile=/vms/a b/ssh/known_hosts',
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'PasswordAuthentication=no',
      '-o', 'KbdInteractiveAuthentication=no',
      '-o', 'ConnectTimeout=10',
      '-o', 'ServerAliveInterval=5',
      '-o', 'ServerAliveCountMax=3',
      '-o', 'LogLevel=ERROR',
      '-p', '40022',
      'dev@127.0.0.1',
    ]);
  });

  it('puts the command after "--" as OpenSSH does: the words joined with spaces, run by the guest shell', () => {
    const words = ['-oProxyCommand=evil', 'echo a; echo "b  c"'];
    const cmd = buildSshCommand(target, { command: words, tty: true, allowPassword: true, sshBinary: '/usr/bin/ssh' });
    expect(cmd.file).toBe('/usr/bin/ssh');
    const at = cmd.args.indexOf('--');
    expect(cmd.args.slice(at - 2, at)).toEqual(['-t', 'dev@127.0.0.1']);
    expect(cmd.args).toContain('PasswordAuthentication=yes');
    // After "--", a word that starts with "-" is the command, never an ssh option.
    expect(cmd.args.slice(at + 1)).toEqual(words);
    // ssh joins the words with spaces and the remote login shell runs that line: `ssh NAME -- 'a; b'` runs a, then b.
    const remote = ['echo a; echo "b  c"', '&&', 'exit', '7'].join(' ');
    expect(buildSshCommand(target, { command: ['echo a; echo "b  c"', '&&', 'exit', '7'] }).args.slice(-4).join(' ')).toBe(remote);
    let out = '';
    let status = 0;
    try {
      out = execFileSync('/bin/sh', ['-c', remote], { encoding: 'utf8' });
    } catch (e) {
      out = (e as { stdout: string }).stdout;
      status = (e as { status: number }).status;
    }
    expect({ out, status }).toEqual({ out: 'a\nb  c\n', status: 7 });
  });

  it('leaves key choice to ssh (agent, default keys) when the user brought their own key', () => {
    const args = buildSshCommand({ ...target, identityFile: null }).args;
    expect(args).not.toContain('-i');
    expect(args).not.toContain('IdentitiesOnly=yes');
    expect(args).toContain('StrictHostKeyChecking=yes');
  });

  it('refuses what it must not pass on', () => {
    expect(() => buildSshCommand({ ...target, port: 0 })).toThrow(RangeError);
    expect(() => buildSshCommand({ ...target, user: '-oProxyCommand=x' })).toThrow(/not a guest user name/);
    expect(() => buildSshCommand({ ...target, identityFile: 'id_ed25519' })).toThrow(/absolute/);
  });

  it('quotes the whole command line for a POSIX shell (what a user pastes into a terminal)', () => {
    const cmd = buildSshCommand(target, { command: ['echo', "it's; a"] });
    const line = sshCommandLine(cmd);
    expect(line).toContain("-i '/vms/a b/ssh/id_ed25519'");
    const parsed = execFileSync('/bin/sh', ['-c', `set -- ${line}; for a; do printf '[%s]\\n' "$a"; done`], { encoding: 'utf8' });
    expect(parsed).toBe([cmd.file, ...cmd.args].map((w) => `[${w}]\n`).join(''));
  });
});

// The pty session runs any command; here a local shell stands in for ssh (the guest test runs ssh).
function shell(): PtySession {
  return startPtySession({ file: '/bin/sh', args: [] }, { cols: 80, rows: 24, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PS1: '$ ' } });
}

async function until(session: PtySession, get: () => string, re: RegExp): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!re.test(get())) {
    if (Date.now() > deadline || session.exited) throw new Error(`not seen: ${re}; got ${JSON.stringify(get().slice(-500))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('startPtySession', () => {
  it('carries bytes both ways and resizes the terminal (stty size)', async () => {
    const s = shell();
    let out = '';
    s.onData((d) => {
      out += d.toString('utf8');
    });
    try {
      s.write('stty size; echo A-$((40+2))\n');
      await until(s, () => out, /24 80\s+A-42/);
      expect(handleTerminalMessage(s, Buffer.from(JSON.stringify({ type: 'resize', cols: 120, rows: 40 })), false)).toBeNull();
      expect([s.cols, s.rows]).toEqual([120, 40]);
      handleTerminalMessage(s, Buffer.from('stty size; echo B-$((40+3))\n'), true);
      await until(s, () => out, /40 120\s+B-43/);
      // UTF-8 survives the round trip.
      s.write('printf "\\303\\251t\\303\\251\\n"\n');
      await until(s, () => out, /été/);
      s.write('exit 3\n');
      expect(await s.done).toEqual({ exitCode: 3, signal: null });
      expect(s.exited).toEqual({ exitCode: 3, signal: null });
    } finally {
      s.kill();
    }
  });

  it('ignores hostile control messages and refuses absurd sizes', async () => {
    const s = shell();
    try {
      expect(handleTerminalMessage(s, Buffer.from('{"type":"resize","cols":100000,"rows":5}'), false)).toMatch(/outside/);
      expect(handleTerminalMessage(s, Buffer.from('{"type":"resize","cols":"80"}'), false)).toMatch(/numeric/);
      expect(handleTerminalMessage(s, Buffer.from('not json'), false)).toMatch(/not JSON/);
      expect(handleTerminalMessage(s, Buffer.from('{"type":"exec"}'), false)).toMatch(/Unknown/);
      expect(handleTerminalMessage(s, Buffer.alloc(1000, 0x20), false)).toMatch(/too long/);
      expect(() => s.resize(MAX_COLS + 1, 10)).toThrow(RangeError);
      expect([s.cols, s.rows]).toEqual([80, 24]);
    } finally {
      s.kill();
    }
    const end = await s.done;
    expect(end.signal === 1 || end.exitCode === 129 || end.exitCode === 0).toBe(true);
  });
});
