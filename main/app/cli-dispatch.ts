/**
 * The `vivarium` command inside the installed app. The deb/rpm link /usr/bin/vivarium to the
 * Electron binary (electron-builder's after-install), the AppImage and the Windows/macOS apps are
 * that binary too: given a CLI command as its first argument (`vivarium doctor`, `vivarium list
 * --json`, `vivarium help`), the app runs the bundled CLI (out/main/cli/vivarium.js, the file
 * bin/vivarium.js runs from a checkout) and exits with its code, opening no window.
 *
 * The CLI runs in a child of the same binary with ELECTRON_RUN_AS_NODE=1 (Electron docs,
 * "Environment variables"): plain Node semantics, its own stdin/stdout/stderr (the terminal's), asar
 * archives still readable, so `serve` and `serial` behave as from a checkout.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

/** Arguments that mean "the CLI" even though they are not command names. */
const CLI_SWITCHES: ReadonlySet<string> = new Set(['help', '--help', '-h', '--version', 'version']);

/**
 * The CLI's arguments when the app was started as the CLI, else null (start the desktop app).
 * @param userArgs the arguments after the executable (packaged) or after the app folder (`electron .`)
 * @param commands the CLI's command names (main/cli/commands.ts COMMANDS)
 * A leading `--` also selects the CLI and is dropped (`vivarium -- list`), for a name that might
 * be taken for something else. Chromium switches (`--no-sandbox`) and file paths (a double-clicked
 * .vivarium file) never match, so those keep starting the app.
 */
export function cliArgs(userArgs: readonly string[], commands: ReadonlySet<string>): string[] | null {
  const [first, ...rest] = userArgs;
  if (first === undefined) return null;
  if (first === '--') return rest.length > 0 ? rest : ['help'];
  if (commands.has(first) || CLI_SWITCHES.has(first)) return [...userArgs];
  return null;
}

/** The arguments the user gave: after the executable when packaged, after the app folder when
 *  started as `electron <folder>` (process.argv, Electron docs "process.defaultApp"). */
export function userArgsOf(argv: readonly string[], isPackaged: boolean): string[] {
  return argv.slice(isPackaged ? 1 : 2);
}

/** The bundled CLI beside the compiled app: out/main/app → out/main/cli/vivarium.js (inside
 *  app.asar when packaged; Electron's Node reads it from there). */
export function cliBundlePath(compiledAppDir: string): string {
  return path.resolve(compiledAppDir, '..', 'cli', 'vivarium.js');
}

/** What the child is started with: [command, args, environment]. */
export function cliChildCommand(
  execPath: string,
  bundle: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): { readonly command: string; readonly args: string[]; readonly env: NodeJS.ProcessEnv } {
  return { command: execPath, args: [bundle, ...args], env: { ...env, ELECTRON_RUN_AS_NODE: '1' } };
}

/**
 * Runs the CLI in a child process sharing this one's terminal; resolves with its exit code (1 when
 * it was killed by a signal or could not be started, with a line on stderr for the latter).
 */
export function runCli(execPath: string, bundle: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const c = cliChildCommand(execPath, bundle, args, env);
  return new Promise((resolve) => {
    const child = spawn(c.command, c.args, { env: c.env, stdio: 'inherit', windowsHide: false });
    child.once('error', (e) => {
      process.stderr.write(`vivarium: could not run the command line: ${e.message}\n`);
      resolve(1);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
