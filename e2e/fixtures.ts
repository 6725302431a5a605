/**
 * Fixtures. The same specs run two ways:
 *  - project "chromium": a private library and a `vivarium serve` per worker, the UI in Debian's
 *    chromium;
 *  - project "electron": the desktop app through `_electron.launch` with a private library. Where
 *    the Electron binary is absent (it cannot be downloaded on the CI machines), every test of that
 *    project is reported as skipped with the reason: it did NOT run.
 * Specs use `appPage` (the library window) and `served.cli` (the CLI, which talks to the running
 * engine of either host). Everything is killed and removed afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test as base, expect, _electron, type ElectronApplication, type Page } from '@playwright/test';
import { runCli, type CliResult } from '../main/test-support/cli';
import { testGuest, type GuestInfo } from '../main/test-support/guest';
import { makeTestHome, type TestHome } from '../main/test-support/home';

const REPO = path.join(__dirname, '..');

export type AppKind = 'browser' | 'electron';

export interface Served {
  /** The URL to open (browser host); null in the Electron app, whose window is already open. */
  readonly url: string | null;
  readonly origin: string | null;
  readonly home: TestHome;
  readonly electron: ElectronApplication | null;
  cli(args: string[]): Promise<CliResult>;
}

/** The Electron binary, or null where it was never downloaded. Found the way electron/index.js
 *  finds it, without requiring that module (which would try to download it). */
export function electronBinary(): string | null {
  const pkg = path.dirname(require.resolve('electron/package.json'));
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const pathFile = path.join(pkg, 'path.txt');
  const name = fs.existsSync(pathFile) ? fs.readFileSync(pathFile, 'utf8').trim() : 'electron';
  const full = override ? path.join(override, name) : path.join(pkg, 'dist', name);
  return fs.existsSync(full) ? full : null;
}

export const ELECTRON_MISSING = 'The Electron binary is not installed on this machine, so the Electron e2e project did NOT run here.';

async function startServe(home: TestHome): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [path.join(REPO, 'bin', 'vivarium.js'), 'serve', '--port', '0'], {
    env: home.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`vivarium serve printed no URL in 20 s: ${err}`)), 20_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`vivarium serve exited (${code}): ${err}`)));
  });
  return { proc, url };
}

export const test = base.extend<{ guest: GuestInfo; appPage: Page; electronGate: void }, { served: Served; appKind: AppKind; serveEnv: Readonly<Record<string, string>> }>({
  appKind: ['browser', { scope: 'worker', option: true }],
  /** Extra environment for the engine (and the CLI) of a spec: `test.use({ serveEnv: {...} })`
   *  gives that spec a worker, and so an engine, of its own. */
  serveEnv: [{}, { scope: 'worker', option: true }],
  // Runs first for every test: an Electron test without the binary is skipped, and says why.
  electronGate: [
    async ({ appKind }, use, testInfo) => {
      testInfo.skip(appKind === 'electron' && electronBinary() === null, ELECTRON_MISSING);
      await use();
    },
    { auto: true },
  ],
  served: [
    async ({ appKind, serveEnv }, use) => {
      const home = makeTestHome();
      Object.assign(home.env, serveEnv);
      const cli = (args: string[]) => runCli(args, { env: home.env, timeoutMs: 150_000 });
      if (appKind === 'electron') {
        const app = await _electron.launch({
          executablePath: electronBinary()!,
          args: [REPO, ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
          env: { ...home.env } as Record<string, string>,
        });
        // Quitting with VMs running would ask; the specs stop their VMs, but never hang on a prompt.
        await app.evaluate(({ dialog }) => {
          dialog.showMessageBox = (async () => ({ response: 0, checkboxChecked: false })) as typeof dialog.showMessageBox;
        });
        await use({ url: null, origin: null, home, electron: app, cli });
        await app.close();
      } else {
        const { proc, url } = await startServe(home);
        await use({ url, origin: new URL(url).origin, home, electron: null, cli });
        proc.kill('SIGTERM');
        await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      }
      await home.cleanup();
    },
    { scope: 'worker' },
  ],
  appPage: async ({ served, page }, use) => {
    await use(served.electron ? await served.electron.firstWindow() : page);
  },
  guest: async ({ baseURL: _unused }, use) => {
    await use(testGuest());
  },
});

export { expect };
