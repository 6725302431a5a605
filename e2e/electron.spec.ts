/**
 * Electron-only checks (the shared specs run in this project too). Skipped, with the reason, where
 * the Electron binary does not exist.
 */
import { expect, test } from './fixtures';

// Runs only in the "electron" project (playwright.config.ts ignores this file elsewhere); the
// fixtures skip it, saying why, where the Electron binary is missing.
test('the app window is sandboxed: no Node, only the one RPC bridge', async ({ appPage }) => {
  await expect(appPage.getByRole('button', { name: 'New VM' })).toBeVisible();
  expect(await appPage.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined');
  expect(await appPage.evaluate(() => typeof (globalThis as { process?: unknown }).process)).toBe('undefined');
  expect(await appPage.evaluate(() => typeof (globalThis as { vivarium?: { send?: unknown } }).vivarium?.send)).toBe('function');
  expect(new URL(appPage.url()).protocol).toBe('app:');
});
