import { execFileSync } from 'node:child_process';
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
  // A second window on the same VM: while this one saves, it shows the save and waits (tester-s6 #5).
  const other = await vmPage.context().newPage();
  await other.goto(vmPage.url());
  await other.getByRole('tablist', { name: 'Consoles' }).getByRole('tab', { name: 'Snapshots' }).click();
  const otherPanel = other.getByRole('region', { name: 'Snapshots' });
  await expect(otherPanel.getByRole('button', { name: 'Take Snapshot' })).toBeEnabled();
  await panel.getByLabel('Snapshot name').fill('first');
  await panel.getByRole('button', { name: 'Take Snapshot' }).click();
  await expect(otherPanel.getByRole('status')).toContainText('Saving snapshot “first”…');
  await expect(otherPanel.getByRole('button', { name: 'Take Snapshot' })).toBeDisabled();
  await expect(otherPanel.getByRole('listitem', { name: 'first' })).toBeVisible({ timeout: 60_000 });
  await expect(otherPanel.getByRole('button', { name: 'Take Snapshot' })).toBeEnabled();
  await other.close();
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
  // A click shows it larger, in a dialog; Close gives the focus back to the thumbnail.
  await row.getByRole('button', { name: 'Enlarge the screen at snapshot pictured' }).click();
  const picture = vmPage.getByRole('dialog', { name: 'Screen at snapshot “pictured”' });
  const big = picture.getByRole('img', { name: 'Screen at snapshot pictured, enlarged' });
  await expect(big).toBeVisible();
  expect((await big.boundingBox())!.width).toBeGreaterThan(300);
  await picture.getByRole('button', { name: 'Close' }).click();
  await expect(picture).toHaveCount(0);
  await expect(row.getByRole('button', { name: 'Enlarge the screen at snapshot pictured' })).toBeFocused();

  await vmPage.close();
  expect((await served.cli(['stop', name, '--force'])).code).toBe(0);
  expect((await served.cli(['delete', name])).code).toBe(0);
});

test('Suspend and Clone from the VM window', async ({ appPage: page, served, guest }) => {
  const name = 'suspend guest';
  const created = await served.cli(['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '256M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);
  expect((await served.cli(['start', name, '--wait-serial', guest.readyMarker, '--timeout', '120'])).code).toBe(0);
  const snapped = await served.cli(['snapshot', 'create', name, 'before sleep']);
  expect(snapped.code, snapped.stderr).toBe(0);

  const library = new LibraryPage(page);
  await library.goto(served.url);
  await expect(library.vm(name)).toContainText(/running/i, { timeout: 30_000 });
  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();
  const panel = vmPage.getByRole('region', { name: 'Snapshots' });

  // Greyed-out toolbar buttons say why (tester-s6 #6).
  await expect(vm.button('Clone…')).toBeDisabled();
  await expect(vm.button('Clone…')).toHaveAccessibleDescription('Shut the VM down to clone it.');
  await expect(vm.button('Settings')).toHaveAttribute('title', 'Shut the VM down to change its settings.');

  // Suspend from the VM window's toolbar (tester-s6 #11); its progress shows on any tab.
  await vm.openTab('Serial');
  await vm.button('Suspend').click();
  await expect(vmPage.getByTestId('operation-progress')).toContainText('Suspending…');
  await expect(vmPage.locator('header').first()).toContainText('Suspended', { timeout: 60_000 });
  await expect(vmPage.getByTestId('operation-progress')).toHaveCount(0);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();
  const listed = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string; state: string }[];
  expect(listed.find((v) => v.name === name)?.state).toBe('suspended');

  // Suspended: its Start says Resume; Force Off's place is Discard Saved State…; the snapshot's
  // Revert and Delete are disabled saying why and naming that button (tester-s6 #2, #11).
  await expect(vm.button('Resume')).toBeEnabled();
  await expect(vm.button('Discard Saved State…')).toBeEnabled();
  await expect(vm.button('Export…')).toHaveAccessibleDescription(/^It is suspended: resume it \(Resume\) and shut it down, or discard its saved state, to export it\.$/);
  const sleeping = panel.getByRole('listitem', { name: 'before sleep' });
  for (const label of ['Revert', 'Delete']) {
    const b = sleeping.getByRole('button', { name: label, exact: true });
    await expect(b).toBeDisabled();
    await expect(b).toHaveAccessibleDescription(/^before sleep The VM is suspended: its disks must stay as they are until it resumes\. Resume it, or use Discard Saved State…, first\.$/);
  }
  await expect(panel.getByRole('button', { name: 'Take Snapshot' })).toBeDisabled();
  await expect(panel.getByRole('button', { name: 'Take Snapshot' })).toHaveAccessibleDescription(/suspended: resume it \(Resume\), or use Discard Saved State…, first/);
  await expect(panel).not.toContainText('force it off');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await vmPage.screenshot({ path: path.join(ARTIFACTS, 'vm-window-suspended.png') });
  // Its Hardware tab says its drives wait too; Grow… is disabled with that reason (tester-s6 #9).
  await vm.tabs.getByRole('tab', { name: 'Hardware' }).click();
  const hardware = vmPage.getByRole('region', { name: 'Hardware' });
  await expect(hardware.getByTestId('hardware-running-note')).toHaveText('Suspended: its drives must stay as they are until it resumes. Resume it, or use Discard Saved State…, first.');
  await expect(hardware.getByRole('button', { name: 'Grow…' }).first()).toBeDisabled();
  await expect(hardware.getByRole('button', { name: 'Grow…' }).first()).toHaveAttribute('title', /^Suspended: its drives must stay/);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();

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
      // Its remedy names the button as this VM shows it: Resume, not Start.
      await expect(settings).toContainText('Resume it first.');
      await settings.getByRole('textbox', { name: 'Memory', exact: true }).fill('256');
    }
    await settings.getByRole('textbox', { name: 'Name', exact: true }).fill(to);
    await settings.getByRole('button', { name: 'Save' }).click();
    await expect(settings).toBeHidden({ timeout: 30_000 });
    await expect(vmPage.locator('h1')).toHaveText(to);
    if (from === name) await vm.button('Settings').click();
  }
  expect((JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string; state: string }[]).find((v) => v.name === name)?.state).toBe('suspended');

  // Resume resumes it; then shut it off and clone it from the toolbar.
  await vm.button('Resume').click();
  await expect(vmPage.locator('header').first()).toContainText('Running', { timeout: 60_000 });
  await expect(vm.button('Start')).toBeDisabled();
  expect((await served.cli(['stop', name, '--force'])).code).toBe(0);
  await expect(vmPage.locator('header').first()).toContainText('Stopped', { timeout: 30_000 });
  await vm.button('Clone…').click();
  const dialog = vmPage.getByRole('dialog', { name: `Clone “${name}”` });
  // The VM has a snapshot: Linked is disabled up front, with one line of reason (tester-s6 #7).
  const linked = dialog.getByRole('checkbox', { name: /Linked clone/ });
  await expect(linked).toBeDisabled();
  await expect(linked).toHaveAccessibleDescription(/^Not for a VM with snapshots \(it has 1\)/);
  await vmPage.screenshot({ path: path.join(ARTIFACTS, 'clone-dialog.png') });
  await dialog.getByLabel('Name of the clone').fill('suspend guest twin');
  await dialog.getByRole('button', { name: 'Clone', exact: true }).click();
  // Done: it says so, and offers to open the clone (tester-s6 #13).
  await expect(dialog.getByRole('status')).toContainText('Cloned: “suspend guest twin” is in the library', { timeout: 60_000 });
  await vmPage.screenshot({ path: path.join(ARTIFACTS, 'clone-done.png') });
  const opened = vmPage.context().waitForEvent('page');
  await dialog.getByRole('button', { name: 'Open “suspend guest twin”' }).click();
  const twinPage = await opened;
  await expect(twinPage.locator('h1')).toHaveText('suspend guest twin', { timeout: 30_000 });
  await twinPage.close();
  expect((JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[]).map((v) => v.name)).toContain('suspend guest twin');

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
  // Offered from the start (tester-s6 #8), with the clone's name; a delete without it says so in
  // names, not the clone's folder path or id.
  const flatten = dialog.getByLabel('Flatten its linked clones first (“flat child”)');
  await expect(flatten).toBeVisible();
  await dialog.getByRole('button', { name: 'Delete VM' }).click();
  await expect(dialog).toContainText('“flat child” is a linked clone of “flat base” and needs its disks. Tick “Flatten…” above');
  await expect(dialog).not.toContainText('/vms/');
  await flatten.check();
  await expect(dialog.getByRole('alert')).toHaveCount(0);
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
  // QEMU's save reports nothing until it ends: a moving bar with the snapshot's name, not a stuck
  // "0%" (tester-s6 #10).
  const saving = panel.getByRole('status').filter({ hasText: 'Saving snapshot “first”…' });
  await expect(saving.locator('progress:not([value])')).toHaveCount(1);
  await expect(saving).not.toContainText('%');
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
  // The focus is back on the renamed row's Rename, not lost to the page (tester-s6 #16).
  await expect(panel.getByRole('listitem', { name: 'renamed' }).getByRole('button', { name: 'Rename' })).toBeFocused({ timeout: 30_000 });

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
  await clone.getByLabel('Name of the clone').fill(name);
  await clone.getByRole('button', { name: 'Clone', exact: true }).click();
  await expect(clone.getByRole('alert')).toContainText(`A VM named "${name}" already exists. Choose another name for the clone.`);
  await expect(clone.getByLabel('Name of the clone')).toHaveValue(name);
  await expect(clone.getByLabel('Name of the clone')).toHaveAttribute('aria-invalid', 'true');
  // The error goes once the name is edited (tester-s6 #14).
  await clone.getByLabel('Name of the clone').fill(`${name} 2`);
  await expect(clone.getByRole('alert')).toHaveCount(0);
  await clone.getByRole('button', { name: 'Cancel' }).click();

  await vmPage.close();
  expect((await served.cli(['delete', name])).code).toBe(0);
});

test('a long history at 800×600: one indent for a straight chain, long text wraps with the buttons on screen, the real next name, focus after Take Snapshot and Delete', async ({ appPage: page, served }) => {
  const name = 'long rows';
  expect((await served.cli(['create', name, '--memory', '128M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg'])).code).toBe(0);
  const long = `Long description: ${'lorem ipsum dolor sit amet '.repeat(12)}https://example.com/a/very/long/unbroken/url/path/that/does/not/wrap/easily/at/all/${'x'.repeat(80)}`;
  for (const [snapName, description] of [
    ['one', 'first'],
    ['two', 'second'],
    ['three', long],
  ] as const) {
    const r = await served.cli(['snapshot', 'create', name, snapName, '--description', description]);
    expect(r.code, r.stderr).toBe(0);
  }

  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vmPage = await library.openVm(name);
  await vmPage.setViewportSize({ width: 800, height: 600 });
  const vm = new VmWindowPage(vmPage);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();
  const panel = vmPage.getByRole('region', { name: 'Snapshots' });
  const rows = ['one', 'two', 'three'].map((n) => panel.getByRole('listitem', { name: n }));
  await expect(rows[2]!).toBeVisible({ timeout: 30_000 });

  // A straight chain: every row starts at the same x (tester-s6 #15).
  // Each row's buttons name their snapshot to assistive technology (not a list of bare "Revert"s).
  await expect(rows[0]!.getByRole('button', { name: 'Revert' })).toHaveAccessibleDescription('one');
  const xs = await Promise.all(rows.map(async (r) => (await r.boundingBox())!.x));
  expect(new Set(xs).size).toBe(1);
  // The long row's buttons stay on screen; its text wraps inside the row.
  const del = rows[2]!.getByRole('button', { name: 'Delete' });
  const box = (await del.boundingBox())!;
  expect(box.x + box.width).toBeLessThanOrEqual(800);
  const rowBox = (await rows[2]!.boundingBox())!;
  expect(rowBox.x + rowBox.width).toBeLessThanOrEqual(800);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await vmPage.screenshot({ path: path.join(ARTIFACTS, 'snapshots-800x600.png') });

  // The name's placeholder is the name a blank snapshot gets (tester-s6 #17).
  const field = panel.getByLabel('Snapshot name');
  await expect(field).toHaveAttribute('placeholder', 'Snapshot 4');
  await panel.getByRole('button', { name: 'Take Snapshot' }).click();
  await expect(panel.getByRole('listitem', { name: 'Snapshot 4' })).toBeVisible({ timeout: 60_000 });
  // (The row may show before the call returns: the list follows the engine's change event.)
  await expect(panel.getByRole('button', { name: 'Take Snapshot' })).toBeFocused({ timeout: 30_000 });
  await expect(field).toHaveAttribute('placeholder', 'Snapshot 5');

  // A duplicate name is the field's error; typing clears it (tester-s6 #14, #16).
  await field.fill('two');
  await panel.getByRole('button', { name: 'Take Snapshot' }).click();
  await expect(panel.getByRole('alert')).toContainText('already has a snapshot named "two"');
  await expect(field).toHaveAttribute('aria-invalid', 'true');
  await expect(field).toHaveAccessibleDescription(/already has a snapshot named "two"/);
  await expect(field).toBeFocused({ timeout: 30_000 });
  // A compact box: the sentence starts at its top, no empty line above it.
  expect(await panel.getByRole('alert').evaluate((el) => parseFloat(getComputedStyle(el).paddingTop))).toBeLessThanOrEqual(10);
  await field.fill('two b');
  await expect(panel.getByRole('alert')).toHaveCount(0);
  await expect(field).toHaveAttribute('aria-invalid', 'false');
  await field.fill('');

  // After Delete, the focus goes to the next row's Revert, not to the page.
  await rows[1]!.getByRole('button', { name: 'Delete' }).click();
  await vmPage.getByRole('alertdialog').getByRole('button', { name: 'Delete Snapshot' }).click();
  await expect(rows[1]!).toHaveCount(0, { timeout: 60_000 });
  await expect(rows[2]!.getByRole('button', { name: 'Revert' })).toBeFocused({ timeout: 30_000 });

  await vmPage.close();
  expect((await served.cli(['delete', name])).code).toBe(0);
});

test('Export… writes a file that import accepts; Import… in the library brings it in as a new VM; the context menu has Clone… and Export…', async ({ appPage: page, served }) => {
  const name = 'porter';
  expect((await served.cli(['create', name, '--memory', '128M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg'])).code).toBe(0);
  const folder = fs.mkdtempSync(path.join(served.home.home, 'exports-'));
  const file = path.join(folder, 'porter.vivarium');

  const library = new LibraryPage(page);
  await library.goto(served.url);
  // The library's context menu offers Clone… and Export… where Start and Stop are (tester-s6 #11, #12).
  await library.vm(name).click({ button: 'right' });
  const menu = library.contextMenu(name);
  await expect(menu.getByRole('menuitem', { name: 'Clone…' })).not.toHaveAttribute('aria-disabled', 'true');
  await expect(menu.getByRole('menuitem', { name: 'Suspend' })).toHaveAttribute('aria-disabled', 'true');
  await expect(menu.getByRole('menuitem', { name: 'Suspend' })).toHaveAccessibleDescription('Start the VM to suspend it.');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'library-menu-export.png') });
  await menu.getByRole('menuitem', { name: 'Export…' }).click();
  let exporting = page.getByRole('dialog', { name: `Export “${name}”` });
  await expect(exporting.getByLabel('File name')).toHaveValue('porter.vivarium');
  await page.screenshot({ path: path.join(ARTIFACTS, 'export-dialog.png') });
  await exporting.getByRole('button', { name: 'Cancel' }).click();

  // Export from the VM window: the folder typed (the chooser shows only the home folder), the
  // default file name.
  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);
  await vm.button('Export…').click();
  exporting = vmPage.getByRole('dialog', { name: `Export “${name}”` });
  await exporting.getByLabel('Folder', { exact: true }).fill(folder);
  await exporting.getByRole('button', { name: 'Export', exact: true }).click();
  await expect(exporting.getByRole('status')).toContainText(`Exported to ${file} (`, { timeout: 60_000 });
  await vmPage.screenshot({ path: path.join(ARTIFACTS, 'export-done.png') });
  expect(fs.statSync(file).size).toBeGreaterThan(0);
  await exporting.getByRole('button', { name: 'Done' }).click();
  await expect(exporting).toHaveCount(0);

  // The same file again: refused on the file name field, in the engine's words.
  await vm.button('Export…').click();
  await exporting.getByLabel('Folder', { exact: true }).fill(folder);
  await exporting.getByRole('button', { name: 'Export', exact: true }).click();
  await expect(exporting.getByLabel('File name')).toHaveAttribute('aria-invalid', 'true', { timeout: 30_000 });
  await expect(exporting.getByLabel('File name')).toHaveAccessibleDescription(`${file} already exists. Choose another file name.`);
  await exporting.getByRole('button', { name: 'Cancel' }).click();
  await vmPage.close();

  // The CLI's import accepts the file.
  const imported = await served.cli(['import', file, '--name', 'porter cli']);
  expect(imported.code, imported.stderr).toBe(0);

  // Import… from the library's toolbar: the VM appears, selected and focused.
  await library.toolbarButton('Import…').click();
  const importing = page.getByRole('dialog', { name: 'Import a VM' });
  await importing.getByLabel('File', { exact: true }).fill(file);
  await importing.getByLabel('Name (optional)').fill('porter ui');
  await importing.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(importing).toHaveCount(0, { timeout: 60_000 });
  await expect(library.vm('porter ui')).toBeVisible();
  await expect(library.vm('porter ui')).toBeFocused();
  await expect(page.getByTestId('library-notice')).toContainText('Imported “porter ui”.');
  // A name taken: the name field says so.
  await library.toolbarButton('Import…').click();
  await importing.getByLabel('File', { exact: true }).fill(file);
  await importing.getByLabel('Name (optional)').fill('porter ui');
  await importing.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(importing.getByLabel('Name (optional)')).toHaveAttribute('aria-invalid', 'true', { timeout: 30_000 });
  await expect(importing.getByRole('alert')).toContainText('A VM named "porter ui" already exists.');
  await page.screenshot({ path: path.join(ARTIFACTS, 'import-name-taken.png') });
  await importing.getByRole('button', { name: 'Cancel' }).click();

  // A file cut short: refused with the engine's sentence, nothing imported.
  const cut = path.join(folder, 'cut.vivarium');
  fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, Math.floor(fs.statSync(file).size / 2)));
  await library.toolbarButton('Import…').click();
  await importing.getByLabel('File', { exact: true }).fill(cut);
  await importing.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(importing.getByRole('alert')).toContainText(`${cut} cannot be imported:`, { timeout: 30_000 });
  await expect(importing.getByRole('alert')).toContainText('Nothing was imported');
  await importing.getByRole('button', { name: 'Cancel' }).click();

  const names = (JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[]).map((v) => v.name);
  expect(names).toEqual(expect.arrayContaining(['porter', 'porter cli', 'porter ui']));
  expect(names.filter((n) => n.startsWith('porter'))).toHaveLength(3);
  for (const n of ['porter ui', 'porter cli', name]) expect((await served.cli(['delete', n])).code).toBe(0);
});

test('a VM whose disk is a raw image used in place: Take Snapshot is disabled up front, saying which disk and why', async ({ appPage: page, served }) => {
  const name = 'raw in place';
  const raw = path.join(fs.mkdtempSync(path.join(served.home.home, 'raw-')), 'data.img');
  fs.writeFileSync(raw, Buffer.alloc(0));
  fs.truncateSync(raw, 16 * 1024 * 1024);
  const created = await served.cli(['create', name, '--disk', raw, '--memory', '128M', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);

  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);
  await vm.tabs.getByRole('tab', { name: 'Snapshots' }).click();
  const take = vmPage.getByRole('region', { name: 'Snapshots' }).getByRole('button', { name: 'Take Snapshot' });
  await expect(take).toBeDisabled();
  await expect(take).toHaveAccessibleDescription(`Its disk disk0 is ${raw}, used in place: snapshots are written only into disks in the VM's folder. A full clone copies the disk in.`);
  await vmPage.close();
  expect((await served.cli(['delete', name])).code).toBe(0);
});

test('a full clone in progress: Cancel stops it and leaves nothing; a reload mid-copy shows it; uncancelled, when done it offers the clone', async ({ appPage: page, served }) => {
  const name = 'full source';
  expect((await served.cli(['create', name, '--memory', '128M', '--disk-size', '3G', '--display', 'none', '--net', 'none', '--accel', 'tcg'])).code).toBe(0);
  // 2 GiB of data in its disk, so the copy takes a moment (qemu-img copies only what is written).
  const shown = JSON.parse((await served.cli(['show', name, '--json'])).stdout) as { path: string; config: { disks: { source: { bundle: string } }[] } };
  const disk = path.join(shown.path, shown.config.disks[0]!.source.bundle);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 1G', '-c', 'write -P 0x5a 1G 1G', disk], { stdio: 'ignore' });

  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);
  await vm.button('Clone…').click();
  const dialog = vmPage.getByRole('dialog', { name: `Clone “${name}”` });
  const names = async (): Promise<string[]> => (JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[]).map((v) => v.name);
  const folders = fs.readdirSync(path.join(served.home.home, 'vms')).length;
  await dialog.getByLabel('Name of the clone').fill('full copy');
  await dialog.getByRole('button', { name: 'Clone', exact: true }).click();
  // Cancel stops the copy (tester-s6 #3): the dialog says so, no VM and no folder is left.
  await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
  await expect(dialog.getByRole('status')).toContainText('Cancelled: the copy was stopped and nothing of it is left.', { timeout: 60_000 });
  expect(await names()).not.toContain('full copy');
  expect(fs.readdirSync(path.join(served.home.home, 'vms')).length).toBe(folders);
  await dialog.getByRole('button', { name: 'Close' }).click();

  // A page reloaded in the middle of a copy shows it (snapshots.jobs), until it ends (tester-s6 #5).
  await vm.button('Clone…').click();
  await dialog.getByLabel('Name of the clone').fill('reload copy');
  await dialog.getByRole('button', { name: 'Clone', exact: true }).click();
  await expect(dialog.getByRole('button', { name: 'Cancel', exact: true })).toBeVisible();
  await vmPage.reload();
  await expect(vmPage.getByTestId('operation-progress')).toContainText('Cloning…');
  await expect(vm.button('Clone…')).toBeVisible();
  await expect(vmPage.getByTestId('operation-progress')).toHaveCount(0, { timeout: 120_000 });
  await expect.poll(names, { timeout: 30_000 }).toContain('reload copy');
  expect((await served.cli(['delete', 'reload copy'])).code).toBe(0);

  // Again, left to finish.
  await vm.button('Clone…').click();
  await dialog.getByLabel('Name of the clone').fill('full copy');
  await dialog.getByRole('button', { name: 'Clone', exact: true }).click();
  await expect(dialog.getByRole('button', { name: 'Cancel', exact: true })).toBeVisible();
  await expect(dialog.getByRole('status')).toContainText('Cloned: “full copy” is in the library, with disks of its own.', { timeout: 120_000 });
  await expect(dialog.getByRole('button', { name: 'Open “full copy”' })).toBeFocused();
  await dialog.getByRole('button', { name: 'Close', exact: true }).click();
  await vmPage.close();
  for (const n of ['full copy', name]) expect((await served.cli(['delete', n])).code).toBe(0);
});
