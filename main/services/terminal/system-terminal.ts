/**
 * "Open in system terminal" (issue 11): hands a VM's ssh command (ssh-command.ts) to the user's own
 * terminal application. `terminalLaunchPlans` is pure (unit-tested per platform); `openSystemTerminal`
 * is the effect: the first plan whose program exists is spawned detached, so the terminal outlives
 * the engine.
 *
 * Per platform (sources):
 * - Linux: `$TERMINAL` (the convention of i3-sensible-terminal and many tiling setups), then Debian's
 *   `x-terminal-emulator` alternative (Debian Policy §11.8.3: it must accept `-e COMMAND ARGS…`),
 *   then gnome-terminal (`-- COMMAND ARGS…`; its `-e` is deprecated), konsole and xterm (`-e`),
 *   xfce4-terminal (`-x`). The command runs in `sh -c` so that a failing ssh leaves its message on
 *   screen until Enter is pressed instead of closing the window at once.
 * - macOS: Terminal.app opens a `.command` file given to `open -a Terminal FILE` and runs it in a new
 *   window (`open(1)`); the file (0700, in the VM's private runtime folder) removes itself first.
 * - Windows: Windows Terminal's `wt.exe new-tab … COMMAND` (its `;` separates wt commands, so one
 *   inside a word is escaped as `\;`: learn.microsoft.com "Windows Terminal command line arguments"),
 *   else `cmd.exe /c start "TITLE" COMMAND…` (a console window of its own).
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { shellQuote, sshCommandLine, type SshCommand } from './ssh-command';

/** One way to open a terminal: spawn `file` with `args`; `script`, when set, is written first (mode 0700). */
export interface TerminalLaunchPlan {
  /** What the user's terminal is called in messages ("gnome-terminal", "Terminal.app"). */
  readonly terminal: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly script?: { readonly path: string; readonly text: string };
  /** Windows: `args` are already quoted for cmd.exe and go on its command line as they are. */
  readonly verbatim?: boolean;
}

export interface TerminalLaunchContext {
  readonly platform: NodeJS.Platform;
  /** The environment the terminal would start in (for `$TERMINAL`). */
  readonly env: NodeJS.ProcessEnv;
  /** A private folder for the macOS `.command` file (the VM's runtime folder, 0700). */
  readonly scriptDir: string;
  /** Window title / file name hint (the VM name); only letters, digits, `-` and `_` are kept. */
  readonly title: string;
}

/** The shell line a Linux terminal runs: ssh, and on failure a pause so its message can be read. */
export function shellWithPause(cmd: SshCommand): string {
  return `${sshCommandLine(cmd)}; s=$?; if [ "$s" -ne 0 ]; then printf '\\n[ssh exited with %s. Press Enter to close.]' "$s"; read _; fi`;
}

/** `word` for cmd.exe: double-quoted when it has spaces or cmd's special characters (^ escapes none inside quotes, so a `"` or `%` is refused). */
export function cmdQuote(word: string): string {
  if (/["%\r\n]/.test(word)) throw new RangeError(`"${word}" cannot be passed through cmd.exe safely.`);
  return /^[A-Za-z0-9_@+=:,./\\-]+$/.test(word) ? word : `"${word}"`;
}

/**
 * The ways to open `cmd` in a terminal on `ctx.platform`, best first. Pure.
 * @throws RangeError on Windows for a word cmd.exe cannot carry (see cmdQuote) — only the cmd.exe plan needs it, so wt's plan is still returned first.
 */
export function terminalLaunchPlans(cmd: SshCommand, ctx: TerminalLaunchContext): TerminalLaunchPlan[] {
  const title = ctx.title.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'vm';
  switch (ctx.platform) {
    case 'darwin': {
      const file = path.join(ctx.scriptDir, `ssh-${title}.command`);
      const text = `#!/bin/sh\nrm -f ${shellQuote(file)}\nexec ${sshCommandLine(cmd)}\n`;
      return [{ terminal: 'Terminal.app', file: 'open', args: ['-a', 'Terminal', file], script: { path: file, text } }];
    }
    case 'win32': {
      const plans: TerminalLaunchPlan[] = [
        { terminal: 'Windows Terminal', file: 'wt.exe', args: ['new-tab', '--title', title, cmd.file, ...cmd.args.map((a) => a.replace(/;/g, '\\;'))] },
      ];
      try {
        plans.push({ terminal: 'Command Prompt', file: 'cmd.exe', args: ['/d', '/c', 'start', `"${title}"`, cmdQuote(cmd.file), ...cmd.args.map(cmdQuote)], verbatim: true });
      } catch {
        // wt alone
      }
      return plans;
    }
    default: {
      const line = shellWithPause(cmd);
      const viaE = (terminal: string, file = terminal): TerminalLaunchPlan => ({ terminal, file, args: ['-e', 'sh', '-c', line] });
      const plans: TerminalLaunchPlan[] = [];
      const own = ctx.env.TERMINAL?.trim();
      // $TERMINAL names a program (a path or a name on PATH), not a command line.
      if (own && /^[A-Za-z0-9_./+-]+$/.test(own)) plans.push(viaE(path.basename(own), own));
      plans.push(
        viaE('x-terminal-emulator'),
        { terminal: 'gnome-terminal', file: 'gnome-terminal', args: ['--title', title, '--', 'sh', '-c', line] },
        viaE('konsole'),
        { terminal: 'xfce4-terminal', file: 'xfce4-terminal', args: ['-x', 'sh', '-c', line] },
        viaE('xterm'),
      );
      return plans;
    }
  }
}

/** Nothing on this machine could open a terminal. */
export class NoTerminalError extends Error {
  override name = 'NoTerminalError';
}

/** Where `file` is: itself when it has a slash, else the first executable of that name on PATH; null when none. */
export async function findProgram(file: string, env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): Promise<string | null> {
  const exists = async (p: string) => fsp.access(p, platform === 'win32' ? fsConstants.F_OK : fsConstants.X_OK).then(() => true, () => false);
  if (file.includes('/') || file.includes('\\')) return (await exists(file)) ? file : null;
  const sep = platform === 'win32' ? ';' : ':';
  for (const dir of (env.PATH ?? env.Path ?? '').split(sep)) {
    if (!dir) continue;
    const full = path.join(dir, file);
    if (await exists(full)) return full;
  }
  return null;
}

/**
 * Opens `cmd` in the user's terminal: the first plan whose program exists is spawned detached
 * (stdio ignored, not waited for). @returns the terminal's name.
 * @throws NoTerminalError (none of the plans' programs exists, or every spawn failed), saying which were tried.
 */
export async function openSystemTerminal(cmd: SshCommand, ctx: TerminalLaunchContext): Promise<{ terminal: string }> {
  const plans = terminalLaunchPlans(cmd, ctx);
  const failures: string[] = [];
  for (const plan of plans) {
    const file = await findProgram(plan.file, ctx.env, ctx.platform);
    if (!file) {
      failures.push(`${plan.terminal} (not installed)`);
      continue;
    }
    if (plan.script) await fsp.writeFile(plan.script.path, plan.script.text, { mode: 0o700 });
    const error = await new Promise<Error | null>((resolve) => {
      const child = spawn(file, [...plan.args], { detached: true, stdio: 'ignore', env: ctx.env, windowsHide: false, windowsVerbatimArguments: plan.verbatim === true });
      child.once('error', resolve);
      child.once('spawn', () => {
        child.unref();
        resolve(null);
      });
    });
    if (!error) return { terminal: plan.terminal };
    failures.push(`${plan.terminal} (${error.message})`);
  }
  throw new NoTerminalError(`No terminal application could be opened: tried ${failures.join(', ')}.`);
}
