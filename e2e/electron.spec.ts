/**
 * The Electron app through Playwright's `_electron.launch`, where the Electron binary exists. The
 * binary cannot be downloaded on the CI machines (its download goes to GitHub), so there this spec
 * reports as skipped with the reason: it did NOT run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { _electron as electron, expect, test } from '@playwright/test';
import { makeTestHome } from '../main/test-support/home';

function electronBinary(): string | null {
  try {
    // node_modules/electron/index.js returns the binary's path (and throws if it was never downloaded).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const p = require('electron') as unknown as string;
    return typeof p === 'string' && fs.existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

const binary = electronBinary();

test.describe('Electron app', () => {
  test.skip(binary === null, 'The Electron binary is not installed on this machine, so the Electron e2e project did NOT run here.');

  test('opens the library window with locked-down web preferences and lists VMs', async () => {
    const home = makeTestHome();
    const app = await electron.launch({ executablePath: binary!, args: [path.join(__dirname, '..'), ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])], env: { ...home.env } as Record<string, string> });
    try {
      const win = await app.firstWindow();
      await expect(win.getByRole('button', { name: 'New VM' })).toBeVisible();
      // The page has no Node: the sandboxed, context-isolated renderer sees only the one bridge.
      expect(await win.evaluate(() => typeof (globalThis as { vivarium?: { send?: unknown } }).vivarium?.send)).toBe('function');
      expect(await win.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined');
    } finally {
      await app.close();
      await home.cleanup();
    }
  });
});
