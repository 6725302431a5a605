import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from './fixtures';
import { LibraryPage } from './pages/library-page';
import { VmWindowPage } from './pages/vm-window-page';

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

test('the Snapshots tab takes, reverts and deletes a snapshot of a running guest', async ({ appPage: page, served, guest }) => {
  const name = 'snap guest';
  const created = await served.cli(['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '256M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);
  const started = await served.cli(['start', name, '--wait-serial', guest.readyMarker, '--timeout', '120']);
  expect(started.code, started.stderr).toBe(0);

  const library = new LibraryPage(page);
  await library.goto(served.url);
  await expect(library.vm(name)).toContainText(/running/i, { timeout: 30_000 });
  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);

  // A marker in the guest's RAM file system.
  await vm.openTab('Serial');
  await vm.typeSerial('echo one > /tmp/m\n');
  await expect.poll(() => vm.serialText(), { timeout: 30_000 }).toContain('echo one > /tmp/m');

  const tab = vm.tabs.getByRole('tab', { name: 'Snapshots' });
  await tab.click();
  const panel = vmPage.getByRole('region', { name: 'Snapshots' });
  await panel.getByLabel('Snapshot name').fill('first');
  await panel.getByRole('button', { name: 'Take Snapshot' }).click();
  const row = panel.getByRole('listitem', { name: 'first' });
  await expect(row).toBeVisible({ timeout: 60_000 });
  await expect(row).toContainText('You are here');
  await expect(row).toContainText(/with memory, \d/);

  await vm.openTab('Serial');
  await vm.typeSerial('echo two > /tmp/m\n');
  await expect.poll(() => vm.serialText(), { timeout: 30_000 }).toContain('echo two > /tmp/m');

  await tab.click();
  await row.getByRole('button', { name: 'Revert' }).click();
  await vmPage.getByRole('alertdialog').getByRole('button', { name: 'Revert Without Saving' }).click();
  await expect(panel.getByRole('status')).toHaveCount(0, { timeout: 60_000 });
  await expect(panel.getByRole('alert')).toHaveCount(0);

  await vm.openTab('Serial');
  await vm.typeSerial('echo R-$(cat /tmp/m)-R\n');
  await expect.poll(() => vm.serialText(), { timeout: 30_000 }).toContain('R-one-R');

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await tab.click();
  await vmPage.screenshot({ path: path.join(ARTIFACTS, 'vm-window-snapshots.png') });

  await row.getByRole('button', { name: 'Delete' }).click();
  await vmPage.getByRole('alertdialog').getByRole('button', { name: 'Delete Snapshot' }).click();
  await expect(panel.getByText('No snapshots yet.')).toBeVisible({ timeout: 60_000 });
  const listed = await served.cli(['snapshot', 'list', name, '--json']);
  expect(JSON.parse(listed.stdout)).toEqual([]);

  await vmPage.close();
  expect((await served.cli(['stop', name, '--force'])).code).toBe(0);
  expect((await served.cli(['delete', name])).code).toBe(0);
});
