/**
 * Fixtures: a private library and a `vivarium serve` per spec file (worker scope), the CLI bound to
 * that library, and the test guest. Everything is killed and removed afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { test as base, expect } from '@playwright/test';
import { runCli, type CliResult } from '../main/test-support/cli';
import { testGuest, type GuestInfo } from '../main/test-support/guest';
import { makeTestHome, type TestHome } from '../main/test-support/home';

export interface Served {
  readonly url: string;
  readonly origin: string;
  readonly home: TestHome;
  cli(args: string[]): Promise<CliResult>;
}

async function startServe(home: TestHome): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'vivarium.js'), 'serve', '--port', '0'], {
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

export const test = base.extend<{ guest: GuestInfo }, { served: Served }>({
  served: [
    async ({ playwright: _unused }, use) => {
      const home = makeTestHome();
      const { proc, url } = await startServe(home);
      await use({
        url,
        origin: new URL(url).origin,
        home,
        cli: (args) => runCli(args, { env: home.env, timeoutMs: 150_000 }),
      });
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      await home.cleanup();
    },
    { scope: 'worker' },
  ],
  guest: async ({ baseURL: _unused }, use) => {
    await use(testGuest());
  },
});

export { expect };
