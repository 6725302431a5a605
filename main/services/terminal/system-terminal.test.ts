/**
 * "Open in system terminal": the launch plans per platform (pure), and the launcher run for real
 * against stand-in terminal programs on a private PATH (no desktop here to open a window in): each
 * stand-in runs what it was given, as a terminal does, so the test sees the exact argv ssh receives.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildSshCommand, type SshCommand } from './ssh-command';
import { NoTerminalError, cmdQuote, openSystemTerminal, shellWithPause, terminalLaunchPlans } from './system-terminal';

const target = { user: 'dev', port: 40022, identityFile: "/home/me/VMs/dev box/it's/id_ed25519", knownHostsFile: '/home/me/VMs/dev box/ssh/known_hosts' };
const cmd = buildSshCommand(target);
const ctx = (platform: NodeJS.Platform, env: NodeJS.ProcessEnv = {}) => ({ platform, env, scriptDir: '/run/viv/abc', title: 'dev box' });

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-term-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A stand-in `ssh` that writes each argument it got on its own line (NUL-free) to `out`, then exits with `code`. */
function fakeSsh(out: string, code = 0): SshCommand {
  const file = path.join(dir, 'fake-ssh');
  fs.writeFileSync(file, `#!/bin/sh\nfor a; do printf '%s\\n' "$a"; done > '${out}'\nexit ${code}\n`, { mode: 0o755 });
  return { file, args: cmd.args };
}

async function waitForFile(file: string): Promise<string> {
  const until = Date.now() + 10_000;
  while (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') === '') {
    if (Date.now() > until) throw new Error(`${file} never written`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 50));
  return fs.readFileSync(file, 'utf8');
}

describe('terminalLaunchPlans', () => {
  it('Linux: $TERMINAL first, then x-terminal-emulator, gnome-terminal, konsole, xfce4-terminal, xterm', () => {
    const plans = terminalLaunchPlans(cmd, ctx('linux', { TERMINAL: '/usr/local/bin/alacritty' }));
    expect(plans.map((p) => p.terminal)).toEqual(['alacritty', 'x-terminal-emulator', 'gnome-terminal', 'konsole', 'xfce4-terminal', 'xterm']);
    const line = shellWithPause(cmd);
    expect(plans[0]).toEqual({ terminal: 'alacritty', file: '/usr/local/bin/alacritty', args: ['-e', 'sh', '-c', line] });
    expect(plans[1]!.args).toEqual(['-e', 'sh', '-c', line]);
    expect(plans[2]!.args).toEqual(['--title', 'dev-box', '--', 'sh', '-c', line]);
    expect(plans[4]!.args).toEqual(['-x', 'sh', '-c', line]);
    // A $TERMINAL that is a command line, not a program, is not run through a shell: skipped.
    expect(terminalLaunchPlans(cmd, ctx('linux', { TERMINAL: 'foot; rm -rf ~' }))[0]!.terminal).toBe('x-terminal-emulator');
    expect(terminalLaunchPlans(cmd, ctx('freebsd'))[0]!.terminal).toBe('x-terminal-emulator');
  });

  it('Linux: the shell line runs ssh with every argument whole, and pauses when ssh fails', () => {
    const out = path.join(dir, 'args');
    const fake = fakeSsh(out, 3);
    const shown = execFileSync('sh', ['-c', shellWithPause(fake)], { input: '\n', encoding: 'utf8' });
    expect(fs.readFileSync(out, 'utf8')).toBe(cmd.args.map((a) => `${a}\n`).join(''));
    expect(shown).toContain('[ssh exited with 3. Press Enter to close.]');
    const ok = fakeSsh(out, 0);
    expect(execFileSync('sh', ['-c', shellWithPause(ok)], { input: '', encoding: 'utf8' })).toBe('');
  });

  it('macOS: Terminal.app opens a private .command file that removes itself and execs ssh', () => {
    const [plan, ...rest] = terminalLaunchPlans(cmd, ctx('darwin'));
    expect(rest).toEqual([]);
    expect(plan!.terminal).toBe('Terminal.app');
    expect(plan!.file).toBe('open');
    expect(plan!.args).toEqual(['-a', 'Terminal', '/run/viv/abc/ssh-dev-box.command']);
    expect(plan!.script!.path).toBe('/run/viv/abc/ssh-dev-box.command');
    // Run the script as Terminal.app would (with a stand-in ssh).
    const out = path.join(dir, 'args');
    const fake = fakeSsh(out);
    const real = terminalLaunchPlans(fake, { ...ctx('darwin'), scriptDir: dir })[0]!;
    fs.writeFileSync(real.script!.path, real.script!.text, { mode: 0o700 });
    execFileSync(real.script!.path);
    expect(fs.existsSync(real.script!.path)).toBe(false);
    expect(fs.readFileSync(out, 'utf8')).toBe(cmd.args.map((a) => `${a}\n`).join(''));
  });

  it('Windows: Windows Terminal (";" escaped), else cmd.exe start with quoted words', () => {
    const win = buildSshCommand({ ...target, identityFile: 'C:\\Users\\Me Too\\VMs\\a;b\\id_ed25519', knownHostsFile: 'C:\\Users\\Me Too\\kh' }, { sshBinary: 'ssh.exe' });
    const [wt, cmdExe] = terminalLaunchPlans(win, ctx('win32'));
    expect(wt).toMatchObject({ terminal: 'Windows Terminal', file: 'wt.exe' });
    expect(wt!.args.slice(0, 4)).toEqual(['new-tab', '--title', 'dev-box', 'ssh.exe']);
    expect(wt!.args).toContain('C:\\Users\\Me Too\\VMs\\a\\;b\\id_ed25519');
    expect(cmdExe).toMatchObject({ terminal: 'Command Prompt', file: 'cmd.exe', verbatim: true });
    expect(cmdExe!.args.slice(0, 5)).toEqual(['/d', '/c', 'start', '"dev-box"', 'ssh.exe']);
    expect(cmdExe!.args).toContain('"C:\\Users\\Me Too\\VMs\\a;b\\id_ed25519"');
    expect(cmdExe!.args).toContain('"UserKnownHostsFile=C:\\Users\\Me Too\\kh"');
    // A word cmd.exe cannot carry safely: only Windows Terminal is offered.
    expect(() => cmdQuote('100%')).toThrow(RangeError);
    const odd = buildSshCommand({ ...target, identityFile: 'C:\\Users\\%USERNAME%\\k', knownHostsFile: 'C:\\kh' });
    expect(terminalLaunchPlans(odd, ctx('win32')).map((p) => p.terminal)).toEqual(['Windows Terminal']);
  });
});

describe('openSystemTerminal', () => {
  it('spawns the first terminal found on PATH, which runs ssh with the exact arguments', async () => {
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    const seen = path.join(dir, 'terminal-argv');
    // gnome-terminal is installed, x-terminal-emulator is not: the plan after it is taken.
    fs.writeFileSync(path.join(bin, 'gnome-terminal'), `#!/bin/sh\nprintf '%s\\n' "$@" > '${seen}.tmp'\nmv '${seen}.tmp' '${seen}'\nshift 3\nexec "$@"\n`, { mode: 0o755 });
    const out = path.join(dir, 'args');
    const opened = await openSystemTerminal(fakeSsh(out), { ...ctx('linux', { PATH: `${bin}:/usr/bin:/bin` }), scriptDir: dir });
    expect(opened).toEqual({ terminal: 'gnome-terminal' });
    expect((await waitForFile(seen)).split('\n').slice(0, 4)).toEqual(['--title', 'dev-box', '--', 'sh']);
    expect(await waitForFile(out)).toBe(cmd.args.map((a) => `${a}\n`).join(''));
  });

  it('says which terminals it tried when none is installed', async () => {
    const none = openSystemTerminal(cmd, { ...ctx('linux', { PATH: path.join(dir, 'empty') }), scriptDir: dir });
    await expect(none).rejects.toThrow(NoTerminalError);
    await expect(none).rejects.toThrow(/tried x-terminal-emulator \(not installed\), gnome-terminal \(not installed\), .*xterm \(not installed\)/);
  });
});
