/**
 * The installed app as the `vivarium` command: which arguments select the CLI, and the bundled CLI
 * run the way the app runs it (the same binary with ELECTRON_RUN_AS_NODE=1; here that binary is
 * plain Node, which is what Electron becomes under that variable).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { COMMANDS } from '../cli/commands';
import { makeTestHome } from '../test-support/home';
import type { TestHome } from '../test-support/home';
import { cliArgs, cliBundlePath, cliChildCommand, runCli, userArgsOf } from './cli-dispatch';

const NAMES = new Set(Object.keys(COMMANDS));
const REPO = path.resolve(__dirname, '..', '..');
/** The compiled main.js's folder, as main.ts passes __dirname. */
const COMPILED_APP = path.join(REPO, 'out', 'main', 'app');

let home: TestHome | null = null;
afterEach(async () => {
  await home?.cleanup();
  home = null;
});

describe('the app started with CLI arguments', () => {
  it('runs the CLI for a command name, help/--help/--version, or after --', () => {
    expect(cliArgs(['doctor', '--json'], NAMES)).toEqual(['doctor', '--json']);
    expect(cliArgs(['edit', 'web', '--autostart'], NAMES)).toEqual(['edit', 'web', '--autostart']);
    expect(cliArgs(['list'], NAMES)).toEqual(['list']);
    for (const a of ['help', '--help', '-h', '--version']) expect(cliArgs([a], NAMES)).toEqual([a]);
    expect(cliArgs(['--', 'list', '--json'], NAMES)).toEqual(['list', '--json']);
    expect(cliArgs(['--'], NAMES)).toEqual(['help']);
  });

  it('starts the desktop app with no arguments, Chromium switches or a double-clicked file', () => {
    expect(cliArgs([], NAMES)).toBeNull();
    expect(cliArgs(['--no-sandbox'], NAMES)).toBeNull();
    expect(cliArgs(['/home/u/web.vivarium'], NAMES)).toBeNull();
    expect(cliArgs(['file:///home/u/web.vivarium'], NAMES)).toBeNull();
    expect(cliArgs(['--enable-features=Foo', 'doctor'], NAMES)).toBeNull();
  });

  it('takes the user’s arguments after the executable (packaged) or after the app folder (electron .)', () => {
    expect(userArgsOf(['/opt/Vivarium/vivarium', 'doctor'], true)).toEqual(['doctor']);
    expect(userArgsOf(['/r/node_modules/electron/dist/electron', '/r', 'doctor'], false)).toEqual(['doctor']);
  });

  it('runs the bundled CLI, the same file bin/vivarium.js runs, in a child marked ELECTRON_RUN_AS_NODE', () => {
    const bundle = cliBundlePath(COMPILED_APP);
    expect(bundle).toBe(path.join(REPO, 'out', 'main', 'cli', 'vivarium.js'));
    const c = cliChildCommand('/opt/Vivarium/vivarium', bundle, ['list', '--json'], { HOME: '/home/u' });
    expect(c).toEqual({ command: '/opt/Vivarium/vivarium', args: [bundle, 'list', '--json'], env: { HOME: '/home/u', ELECTRON_RUN_AS_NODE: '1' } });
  });

  it('answers `list --json`, `doctor --json` and an unknown command like the vivarium command does', async () => {
    const bundle = cliBundlePath(COMPILED_APP);
    expect(fs.existsSync(bundle), `${bundle}: run \`npm run build:main\` first`).toBe(true);
    home = makeTestHome();
    const env = home.env;
    // Through runCli (exit code), and through its exact command (output).
    expect(await runCli(process.execPath, bundle, ['--version'], env)).toBe(0);
    expect(await runCli(process.execPath, bundle, ['no-such-command'], env)).toBe(2);
    const c = cliChildCommand(process.execPath, bundle, ['list', '--json'], env);
    const list = spawnSync(c.command, c.args, { env: c.env, encoding: 'utf8', timeout: 60_000 });
    expect(list.status, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
    const d = cliChildCommand(process.execPath, bundle, ['doctor', '--json'], env);
    const doctor = spawnSync(d.command, d.args, { env: d.env, encoding: 'utf8', timeout: 60_000 });
    expect(JSON.parse(doctor.stdout)).toHaveProperty('setup');
  });

  it('`show` says when a VM starts automatically (vivarium edit NAME --autostart)', () => {
    const bundle = cliBundlePath(COMPILED_APP);
    home = makeTestHome();
    const run = (args: string[]) => {
      const c = cliChildCommand(process.execPath, bundle, args, home!.env);
      return spawnSync(c.command, c.args, { env: c.env, encoding: 'utf8', timeout: 60_000 });
    };
    const created = run(['create', 'auto', '--accel', 'tcg', '--memory', '128M', '--cpus', '1', '--disk-size', '0', '--net', 'none', '--display', 'none']);
    expect(created.status, created.stderr).toBe(0);
    expect(run(['show', 'auto']).stdout).not.toContain('autostart');
    expect(run(['edit', 'auto', '--autostart']).status).toBe(0);
    expect(run(['show', 'auto']).stdout).toContain('  autostart: yes');
  });
});
