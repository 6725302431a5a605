import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from './fixtures';
import { LibraryPage } from './pages/library-page';
import { VmWindowPage } from './pages/vm-window-page';

test('an ISO guest shows a non-blank screen in the Display tab', async ({ appPage: page, served, guest }) => {
  const iso = guest.memtestIso ?? guest.grubRescueIso;
  expect(iso, 'memtest86+ or grub-rescue-pc must be installed (.ci/run does it)').toBeTruthy();
  expect((await served.cli(['create', 'iso guest', '--iso', iso!, '--memory', '256M', '--disk-size', '0', '--net', 'none', '--accel', 'tcg'])).code).toBe(0);

  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vm = new VmWindowPage(await library.openVm('iso guest'));
  await vm.button('Start').click();
  await vm.openTab('Display');
  await expect(vm.display.locator('canvas').first()).toBeVisible({ timeout: 30_000 });
  await expect.poll(() => vm.litShare(), { timeout: 90_000, intervals: [1000] }).toBeGreaterThan(0.01);

  const artifacts = path.join(__dirname, '..', 'artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  await vm.page.screenshot({ path: path.join(artifacts, 'vm-window-display.png') });

  await vm.button('Force Off').click();
  // Force Off of a running guest asks first (library-desktop.spec.ts covers the dialog).
  await vm.page.getByRole('alertdialog').getByRole('button', { name: 'Force Off' }).click();
  await expect(vm.button('Start')).toBeEnabled({ timeout: 30_000 });
});
