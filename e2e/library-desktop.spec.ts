/**
 * The library and the VM window behave like a desktop app (issue 9): power actions from the
 * library's toolbar and a context menu, the Delete key, type-ahead, confirmations before Force Off
 * and Reset, the Serial tab when the guest is silent, graphs that open on the last minute with
 * legends that read, the Host view's KVM sentence said once, and the engine's notices after saving
 * settings. Real engine, real QEMU (TCG), Chromium.
 */
import * as os from 'node:os';
import type { GuestInfo } from '../main/test-support/guest';
import { expect, test, type Served } from './fixtures';
import { Graphs, HostPage } from './pages/host-page';
import { LibraryPage } from './pages/library-page';
import { VmWindowPage } from './pages/vm-window-page';

/** A VM that boots the test guest (its serial console on ttyS0) under TCG. */
function kernelVm(guest: GuestInfo, name: string): string[] {
  return ['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '128M', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg'];
}

async function stateOf(served: Served, name: string): Promise<string | undefined> {
  const list = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string; state: string }[];
  return list.find((v) => v.name === name)?.state;
}

/** How many times the guest has printed its ready line since it was started (a reset boots it again). */
async function boots(served: Served, name: string, marker: string): Promise<number> {
  const log = (await served.cli(['serial', name, '--log'])).stdout;
  return log.split(marker).length - 1;
}

test('the library: toolbar power buttons, a keyboard context menu, confirmations, the Delete key and type-ahead', async ({ appPage: page, served, guest }) => {
  for (const name of ['uno desk', 'vex box', 'vim desk']) expect((await served.cli(kernelVm(guest, name))).code).toBe(0);
  const library = new LibraryPage(page);
  await library.goto(served.url);
  await expect(library.vm('vim desk')).toBeVisible();

  // Type-ahead: letters typed within a second select (and focus) the first VM starting with them.
  await library.vm('uno desk').click();
  await expect(library.selected).toHaveAccessibleName('uno desk');
  await page.keyboard.type('v');
  await expect(library.selected).toHaveAccessibleName('vex box');
  await expect(library.vm('vex box')).toBeFocused();
  await page.waitForTimeout(1300); // a pause starts a new search
  await page.keyboard.type('vi', { delay: 50 });
  await expect(library.selected).toHaveAccessibleName('vim desk');
  await page.waitForTimeout(1300);
  await page.keyboard.type('u');
  await expect(library.selected).toHaveAccessibleName('uno desk');

  // Start from the toolbar; then Start is off and Shut Down / Force Off are on.
  await expect(library.toolbarButton('Shut Down')).toBeDisabled();
  await library.toolbarButton('Start').click();
  await expect(library.vm('uno desk')).toContainText(/running/i, { timeout: 30_000 });
  await expect(library.toolbarButton('Start')).toBeDisabled();
  await expect(library.toolbarButton('Force Off')).toBeEnabled();

  // Shift+F10 opens the selected VM's context menu on its first item; arrows move; Escape closes it
  // and the VM has the focus again.
  await library.vm('uno desk').focus();
  await page.keyboard.press('Shift+F10');
  const menu = library.contextMenu('uno desk');
  await expect(menu).toBeVisible();
  await expect(menu.getByRole('menuitem', { name: 'Open' })).toBeFocused();
  await expect(menu.getByRole('menuitem', { name: 'Start' })).toHaveAttribute('aria-disabled', 'true');
  await page.keyboard.press('ArrowDown');
  await expect(menu.getByRole('menuitem', { name: 'Start' })).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(menu).toBeHidden();
  await expect(library.vm('uno desk')).toBeFocused();

  // The Menu key opens it too. Force Off of a running guest asks first, saying what is lost;
  // Escape cancels and nothing happens.
  await page.keyboard.press('ContextMenu');
  await expect(menu).toBeVisible();
  await page.keyboard.press('End');
  await page.keyboard.press('ArrowUp');
  await expect(menu.getByRole('menuitem', { name: 'Force Off…' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(menu).toBeHidden();
  await expect(library.confirmation).toHaveAccessibleName('Force off “uno desk”?');
  await expect(library.confirmation).toHaveAccessibleDescription(/not saved is lost/);
  await page.keyboard.press('Escape');
  await expect(library.confirmation).toBeHidden();
  await page.waitForTimeout(500);
  expect(await stateOf(served, 'uno desk')).toBe('running');
  // The toolbar's Force Off asks the same; Enter confirms.
  await library.toolbarButton('Force Off').click();
  await expect(library.confirmation).toHaveAccessibleName('Force off “uno desk”?');
  await page.keyboard.press('Enter');
  await expect(library.vm('uno desk')).toContainText(/stopped/i, { timeout: 30_000 });
  expect(await stateOf(served, 'uno desk')).toBe('stopped');

  // Right-click selects a VM and opens its menu at the pointer; a click elsewhere closes it.
  await library.vm('vex box').click({ button: 'right' });
  const vexMenu = library.contextMenu('vex box');
  await expect(vexMenu).toBeVisible();
  await expect(library.selected).toHaveAccessibleName('vex box');
  await page.locator('footer.status-bar').click();
  await expect(vexMenu).toBeHidden();
  // Its Delete… opens the delete confirmation (cancelled here).
  await library.vm('vex box').click({ button: 'right' });
  await vexMenu.getByRole('menuitem', { name: 'Delete…' }).click();
  await expect(library.confirmation).toHaveAccessibleName('Delete “vex box”?');
  await library.confirmation.getByRole('button', { name: 'Cancel' }).click();
  await expect(library.vm('vex box')).toBeVisible();

  // A running guest: Reset from the menu asks, then the guest boots again.
  const started = await served.cli(['start', 'vim desk', '--wait-serial', guest.readyMarker]);
  expect(started.code, started.stderr).toBe(0);
  await expect(library.vm('vim desk')).toContainText(/running/i, { timeout: 30_000 });
  expect(await boots(served, 'vim desk', guest.readyMarker)).toBe(1);
  await library.vm('vim desk').click({ button: 'right' });
  const vimMenu = library.contextMenu('vim desk');
  await vimMenu.getByRole('menuitem', { name: 'Reset…' }).click();
  await expect(library.confirmation).toHaveAccessibleName('Reset “vim desk”?');
  await library.confirmation.getByRole('button', { name: 'Reset' }).click();
  await expect.poll(() => boots(served, 'vim desk', guest.readyMarker), { timeout: 90_000 }).toBe(2);

  // The Delete key on a running VM says why nothing happens; Shut Down from the toolbar (the guest
  // handles the power button); then Delete opens the confirmation and deletes it.
  await library.vm('vim desk').focus();
  await page.keyboard.press('Delete');
  await expect(page.getByTestId('library-notice')).toContainText('“vim desk” is running: shut it down before deleting it.');
  await expect(library.confirmation).toHaveCount(0);
  await library.toolbarButton('Shut Down').click();
  await expect(library.vm('vim desk')).toContainText(/stopped/i, { timeout: 60_000 });
  expect(await stateOf(served, 'vim desk')).toBe('stopped');
  await library.vm('vim desk').focus();
  await page.keyboard.press('Delete');
  await expect(library.confirmation).toHaveAccessibleName('Delete “vim desk”?');
  await library.confirmation.getByRole('button', { name: 'Delete VM' }).click();
  await expect(library.vm('vim desk')).toHaveCount(0);
  expect(await stateOf(served, 'vim desk')).toBeUndefined();

  for (const name of ['uno desk', 'vex box']) expect((await served.cli(['delete', name])).code).toBe(0);
});

test('the VM window asks before Force Off and Reset, and its Serial tab says when the guest has written nothing', async ({ appPage: page, served }) => {
  // Nothing to boot and no display: the firmware writes nothing to the serial port.
  const created = await served.cli(['create', 'quiet box', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);
  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vm = new VmWindowPage(await library.openVm('quiet box'));
  await vm.button('Start').click();
  await vm.openTab('Serial');
  await expect(vm.page.getByTestId('serial-silent')).toHaveText(/^The guest has not written to its serial port yet — .*console=ttyS0/, { timeout: 30_000 });

  // Reset: asked first; Escape leaves the guest alone.
  await vm.button('Reset').click();
  const confirm = vm.page.getByRole('alertdialog');
  await expect(confirm).toHaveAccessibleName('Reset “quiet box”?');
  await expect(confirm).toHaveAccessibleDescription(/restarts at once without shutting down, so anything it has not saved is lost/);
  await vm.page.keyboard.press('Escape');
  await expect(confirm).toBeHidden();
  // Enter confirms: the reset is done and the VM runs on.
  await vm.button('Reset').click();
  await expect(confirm).toBeVisible();
  await vm.page.keyboard.press('Enter');
  await expect(confirm).toBeHidden();
  await expect(vm.page.getByRole('alert')).toHaveCount(0);
  expect(await stateOf(served, 'quiet box')).toBe('running');

  // Force Off: asked first; Cancel keeps it running, Enter forces it off.
  await vm.button('Force Off').click();
  await expect(confirm).toHaveAccessibleName('Force off “quiet box”?');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(confirm).toBeHidden();
  expect(await stateOf(served, 'quiet box')).toBe('running');
  await vm.button('Force Off').click();
  await vm.page.keyboard.press('Enter');
  await expect(vm.button('Start')).toBeEnabled({ timeout: 30_000 });
  expect(await stateOf(served, 'quiet box')).toBe('stopped');
  await expect(vm.page.getByTestId('serial-silent')).toHaveCount(0);

  await vm.page.close();
  expect((await served.cli(['delete', 'quiet box'])).code).toBe(0);
});
