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

test('a snapshot of a guest with a screen shows the screen at that moment as its thumbnail', async ({ appPage: page, served, guest }) => {
  const name = 'thumb guest';
  // A display this time (the default, VNC): the snapshot keeps a screenshot of it.
  const created = await served.cli(['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '256M', '--disk-size', '64M', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);
  expect((await served.cli(['start', name, '--wait-serial', guest.readyMarker, '--timeout', '120'])).code).toBe(0);
  const taken = await served.cli(['snapshot', 'create', name, 'pictured']);
  expect(taken.code, taken.stderr).toBe(0);

  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();
  const panel = vmPage.getByRole('region', { name: 'Snapshots' });
  const row = panel.getByRole('listitem', { name: 'pictured' });
  await expect(row).toBeVisible({ timeout: 60_000 });
  const thumb = row.getByRole('img', { name: 'Screen at snapshot pictured' });
  await expect(thumb).toBeVisible({ timeout: 30_000 });
  // A decoded picture of the guest's screen (VGA text mode: 720×400), not a broken image.
  const size = await thumb.evaluate((img: HTMLImageElement) => ({ w: img.naturalWidth, h: img.naturalHeight, done: img.complete }));
  expect(size.done).toBe(true);
  expect(size.w).toBeGreaterThan(100);
  expect(size.h).toBeGreaterThan(100);

  await vmPage.close();
  expect((await served.cli(['stop', name, '--force'])).code).toBe(0);
  expect((await served.cli(['delete', name])).code).toBe(0);
});

test('Suspend and Clone from the VM window', async ({ appPage: page, served, guest }) => {
  const name = 'suspend guest';
  const created = await served.cli(['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '256M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);
  expect((await served.cli(['start', name, '--wait-serial', guest.readyMarker, '--timeout', '120'])).code).toBe(0);

  const library = new LibraryPage(page);
  await library.goto(served.url);
  await expect(library.vm(name)).toContainText(/running/i, { timeout: 30_000 });
  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();
  const panel = vmPage.getByRole('region', { name: 'Snapshots' });

  await panel.getByRole('button', { name: 'Suspend' }).click();
  await expect(vmPage.locator('header').first()).toContainText('Suspended', { timeout: 60_000 });
  const listed = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string; state: string }[];
  expect(listed.find((v) => v.name === name)?.state).toBe('suspended');

  // Suspended, its Settings open: a hardware change is refused with the engine's sentence, a new
  // name is saved (no part of the saved state), and the name goes back the same way.
  await vm.button('Settings').click();
  for (const [from, to] of [
    [name, 'dozing guest'],
    ['dozing guest', name],
  ] as const) {
    const settings = vmPage.getByRole('dialog', { name: `Settings — ${from}` });
    await expect(settings).toContainText('Suspended: its name and OS label can change now');
    if (from === name) {
      await settings.getByRole('textbox', { name: 'Memory', exact: true }).fill('320');
      await settings.getByRole('button', { name: 'Save' }).click();
      await expect(settings).toContainText('a change to its memory size would keep it from resuming');
      await settings.getByRole('textbox', { name: 'Memory', exact: true }).fill('256');
    }
    await settings.getByRole('textbox', { name: 'Name', exact: true }).fill(to);
    await settings.getByRole('button', { name: 'Save' }).click();
    await expect(settings).toBeHidden({ timeout: 30_000 });
    await expect(vmPage.locator('h1')).toHaveText(to);
    if (from === name) await vm.button('Settings').click();
  }
  expect((JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string; state: string }[]).find((v) => v.name === name)?.state).toBe('suspended');

  // Start resumes it; then shut it off and clone it.
  await vm.button('Start').click();
  await expect(vmPage.locator('header').first()).toContainText('Running', { timeout: 60_000 });
  expect((await served.cli(['stop', name, '--force'])).code).toBe(0);
  await expect(vmPage.locator('header').first()).toContainText('Stopped', { timeout: 30_000 });
  await panel.getByRole('button', { name: 'Clone…' }).click();
  const dialog = vmPage.getByRole('dialog');
  await dialog.getByLabel('Name').fill('suspend guest twin');
  await dialog.getByRole('button', { name: 'OK' }).click();
  await expect.poll(async () => ((JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[]).map((v) => v.name)), { timeout: 60_000 }).toContain('suspend guest twin');

  await vmPage.close();
  expect((await served.cli(['delete', 'suspend guest twin'])).code).toBe(0);
  expect((await served.cli(['delete', name])).code).toBe(0);
});

test('a revert that detaches a disk added after the snapshot says so in the Snapshots tab (a snapshot holds the disk list)', async ({ appPage: page, served }) => {
  const name = 'disk list guest';
  expect((await served.cli(['create', name, '--memory', '128M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg'])).code).toBe(0);
  expect((await served.cli(['snapshot', 'create', name, 'before'])).code).toBe(0);
  expect((await served.cli(['disk', 'add', name, '--size', '16M'])).code).toBe(0);
  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();
  const panel = vmPage.getByRole('region', { name: 'Snapshots' });
  await panel.getByRole('listitem', { name: 'before' }).getByRole('button', { name: 'Revert' }).click();
  await vmPage.getByRole('alertdialog').getByRole('button', { name: 'Revert Without Saving' }).click();
  await expect(panel.getByRole('status').filter({ hasText: 'Disk disk1' })).toContainText('Disk disk1 was added after snapshot "before" and was detached by the revert; its image file is kept (disk1.qcow2 in its folder).', { timeout: 30_000 });
  const disks = JSON.parse((await served.cli(['disk', 'list', name, '--json'])).stdout) as { id: string }[];
  expect(disks.map((d) => d.id)).toEqual(['disk0']);
  await vmPage.close();
  expect((await served.cli(['delete', name])).code).toBe(0);
});

test('deleting the source of a linked clone: the Delete dialog offers to flatten the clone first', async ({ appPage: page, served }) => {
  expect((await served.cli(['create', 'flat base', '--memory', '128M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg'])).code).toBe(0);
  const cloned = await served.cli(['clone', 'flat base', 'flat child', '--linked']);
  expect(cloned.code, cloned.stderr).toBe(0);

  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vmPage = await library.openVm('flat base');
  const vm = new VmWindowPage(vmPage);
  await vm.button('Delete').click();
  const dialog = vmPage.getByRole('alertdialog');
  const flatten = dialog.getByLabel('Flatten its linked clones first (“flat child”)');
  await expect(flatten).toHaveCount(0); // offered once the engine names the clones
  await dialog.getByRole('button', { name: 'Delete VM' }).click();
  await expect(dialog).toContainText('"flat base" cannot be deleted: "flat child" uses');
  await flatten.check();
  await dialog.getByRole('button', { name: 'Flatten Clones and Delete' }).click();
  await expect(library.vm('flat base')).toHaveCount(0, { timeout: 60_000 });

  const listed = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[];
  // Other specs share this engine's library: only this test's two VMs are looked at.
  expect(listed.map((v) => v.name).filter((n) => n.startsWith('flat '))).toEqual(['flat child']);
  const child = JSON.parse((await served.cli(['show', 'flat child', '--json'])).stdout) as { config: { disks: { backing: unknown[] }[] } };
  expect(child.config.disks[0]!.backing).toEqual([]);
  expect((await served.cli(['delete', 'flat child'])).code).toBe(0);
});

test('snapshot dialogs keep what was typed: the name field is locked while saving, a refused Rename or Clone stays open with the error, Revert shows all its buttons; Discard Saved State', async ({ appPage: page, served, guest }) => {
  const name = 'dialog guest';
  const created = await served.cli(['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '256M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);
  expect((await served.cli(['start', name, '--wait-serial', guest.readyMarker, '--timeout', '120'])).code).toBe(0);
  await page.setViewportSize({ width: 1280, height: 800 });
  const library = new LibraryPage(page);
  await library.goto(served.url);
  await expect(library.vm(name)).toContainText(/running/i, { timeout: 30_000 });
  const vmPage = await library.openVm(name);
  await vmPage.setViewportSize({ width: 1280, height: 800 });
  const vm = new VmWindowPage(vmPage);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();
  const panel = vmPage.getByRole('region', { name: 'Snapshots' });
  const field = panel.getByLabel('Snapshot name');

  // While a save runs, the name cannot be changed under it; after it, the field is empty again.
  await field.fill('first');
  await panel.getByRole('button', { name: 'Take Snapshot' }).click();
  await expect(field).toHaveAttribute('readonly', '');
  await expect(panel.getByRole('listitem', { name: 'first' })).toBeVisible({ timeout: 60_000 });
  await expect(field).not.toHaveAttribute('readonly', '');
  await expect(field).toHaveValue('');
  await field.fill('second');
  await panel.getByRole('button', { name: 'Take Snapshot' }).click();
  const second = panel.getByRole('listitem', { name: 'second' });
  await expect(second).toBeVisible({ timeout: 60_000 });

  // A refused rename: the dialog stays open, says why under the field, keeps what was typed.
  await second.getByRole('button', { name: 'Rename' }).click();
  const rename = vmPage.getByRole('dialog');
  await rename.getByLabel('Name').fill('first');
  await rename.getByRole('button', { name: 'OK' }).click();
  await expect(rename.getByRole('alert')).toContainText('already has a snapshot named "first". Choose another name.');
  await expect(rename.getByLabel('Name')).toHaveValue('first');
  await rename.getByLabel('Name').fill('renamed');
  await rename.getByRole('button', { name: 'OK' }).click();
  await expect(rename).toHaveCount(0, { timeout: 30_000 });
  await expect(panel.getByRole('listitem', { name: 'renamed' })).toBeVisible();

  // Revert's three buttons all show whole inside the dialog.
  await panel.getByRole('listitem', { name: 'first' }).getByRole('button', { name: 'Revert' }).click();
  const revert = vmPage.getByRole('alertdialog');
  const box = (await revert.boundingBox())!;
  for (const label of ['Cancel', 'Revert Without Saving', 'Snapshot, Then Revert']) {
    const b = (await revert.getByRole('button', { name: label }).boundingBox())!;
    expect(b.x, label).toBeGreaterThanOrEqual(box.x);
    expect(b.x + b.width, label).toBeLessThanOrEqual(box.x + box.width + 0.5);
  }
  await revert.getByRole('button', { name: 'Cancel' }).click();

  // Suspend, then Discard Saved State (confirmed): the VM is stopped and boots afresh next time.
  await panel.getByRole('button', { name: 'Suspend' }).click();
  await expect(vmPage.locator('header').first()).toContainText('Suspended', { timeout: 60_000 });
  await panel.getByRole('button', { name: 'Discard Saved State…' }).click();
  const discard = vmPage.getByRole('alertdialog');
  await expect(discard).toContainText('The next start boots it afresh.');
  await discard.getByRole('button', { name: 'Discard Saved State' }).click();
  await expect(vmPage.locator('header').first()).toContainText('Stopped', { timeout: 30_000 });
  const listed = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string; state: string }[];
  expect(listed.find((v) => v.name === name)?.state).toBe('stopped');

  // A refused clone: the dialog stays open with the reason.
  await panel.getByRole('button', { name: 'Clone…' }).click();
  const clone = vmPage.getByRole('dialog');
  await clone.getByLabel('Name').fill(name);
  await clone.getByRole('button', { name: 'OK' }).click();
  await expect(clone.getByRole('alert')).toContainText(`A VM named "${name}" already exists. Choose another name for the clone.`);
  await expect(clone.getByLabel('Name')).toHaveValue(name);
  await clone.getByRole('button', { name: 'Cancel' }).click();

  await vmPage.close();
  expect((await served.cli(['delete', name])).code).toBe(0);
});
