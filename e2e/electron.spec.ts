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

test('has an Edit menu (Cmd+C/V/X/A on macOS) and the app is called Vivarium', async ({ served }) => {
  const app = served.electron!;
  const menu = await app.evaluate(({ Menu, app: a }) => ({
    name: a.getName(),
    top: Menu.getApplicationMenu()?.items.map((i) => i.label) ?? [],
    edit: Menu.getApplicationMenu()?.items.find((i) => i.label === 'Edit')?.submenu?.items.map((i) => i.role ?? '') ?? [],
  }));
  expect(menu.name).toBe('Vivarium');
  expect(menu.top).toContain('Edit');
  for (const role of ['cut', 'copy', 'paste', 'selectall']) expect(menu.edit.map((r) => r.toLowerCase())).toContain(role);
});

test('keeps its Electron profile per library (the single-instance lock follows VIVARIUM_HOME)', async ({ served }) => {
  const userData = await served.electron!.evaluate(({ app }) => app.getPath('userData'));
  expect(userData).toMatch(/Vivarium Desktop[\\/][0-9a-f]{16}$/);
});

test('a crashed window reloads by itself and reconnects to the engine', async ({ served, appPage }) => {
  await expect(appPage.getByRole('button', { name: 'New VM' })).toBeVisible();
  await served.electron!.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows()[0]!.webContents.forcefullyCrashRenderer());
  await expect(appPage.getByRole('button', { name: 'New VM' })).toBeVisible({ timeout: 30_000 });
});

test('the page may open ws://127.0.0.1 (Local Network Access) and a cancelled navigation leaves it connected', async ({ served, appPage }) => {
  await expect(appPage.getByRole('button', { name: 'New VM' })).toBeVisible();
  // A link to a foreign page: refused by will-navigate; the page stays and still talks to the engine.
  await appPage.evaluate(() => {
    const a = document.createElement('a');
    a.href = 'https://example.org/';
    document.body.append(a);
    a.click();
  });
  await appPage.waitForTimeout(500);
  expect(new URL(appPage.url()).protocol).toBe('app:');
  const created = await served.cli(['create', 'lna-check', '--net', 'none', '--display', 'none', '--disk-size', '0', '--accel', 'tcg']);
  expect(created.code).toBe(0);
  await expect(appPage.getByText('lna-check')).toBeVisible();
  const granted = await appPage.evaluate(async () => {
    const status = await navigator.permissions.query({ name: 'loopback-network' as PermissionName }).catch(() => null);
    return status?.state ?? 'unknown';
  });
  expect(['granted', 'unknown']).toContain(granted);
});
