/**
 * The library and the VM window behave like a desktop app (issue 9): power actions from the
 * library's toolbar and a context menu, the Delete key, type-ahead, confirmations before Force Off
 * and Reset, the Serial tab when the guest is silent, graphs that open on the last minute with
 * legends that read, the Host view's KVM sentence said once, and the engine's notices after saving
 * settings. Real engine, real QEMU (TCG), Chromium.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GuestInfo } from '../main/test-support/guest';
import type { Locator } from '@playwright/test';
import { expect, test, type Served } from './fixtures';
import { Graphs, HostPage } from './pages/host-page';
import { LibraryPage } from './pages/library-page';
import { VmWindowPage } from './pages/vm-window-page';

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

/** A VM that boots the test guest (its serial console on ttyS0) under TCG. */
function kernelVm(guest: GuestInfo, name: string): string[] {
  return ['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '128M', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg'];
}

async function stateOf(served: Served, name: string): Promise<string | undefined> {
  const list = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string; state: string }[];
  return list.find((v) => v.name === name)?.state;
}

/** The share of a graph's width its first series' line spans, from its leftmost painted pixel to the
 *  right edge (the newest sample): what a person sees as "how much of the axis is filled". */
async function lineSpan(graph: Locator): Promise<number> {
  return graph.evaluate((el) => {
    const canvas = el.querySelector('canvas');
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx || canvas.width === 0) return 0;
    const m = /^#([0-9a-f]{6})$/i.exec(getComputedStyle(el).getPropertyValue('--graph-1').trim());
    if (!m) return -1;
    const n = parseInt(m[1]!, 16);
    const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
    const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let left = width;
    let right = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        if (data[i + 3]! > 200 && Math.abs(data[i]! - r) < 40 && Math.abs(data[i + 1]! - g) < 40 && Math.abs(data[i + 2]! - b) < 40) {
          left = Math.min(left, x);
          right = Math.max(right, x);
        }
      }
    }
    return right < 0 ? 0 : (right - left + 1) / width;
  });
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
  // Up from Delete… past Export… and Clone… (issue 10).
  for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowUp');
  await expect(menu.getByRole('menuitem', { name: 'Force Off' })).toBeFocused();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'library-context-menu.png') });
  await page.keyboard.press('Enter');
  await expect(menu).toBeHidden();
  await expect(library.confirmation).toHaveAccessibleName('Force off “uno desk”?');
  await expect(library.confirmation).toHaveAccessibleDescription(/not saved is lost/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'library-force-off-confirmation.png') });
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

  // The Electron app menu's VM commands (a `vivarium:menu` DOM event) act on the selected VM too.
  const menuCommand = (action: string) => page.evaluate((a) => window.dispatchEvent(new CustomEvent('vivarium:menu', { detail: { action: a } })), action);
  await menuCommand('start');
  await expect(library.vm('uno desk')).toContainText(/running/i, { timeout: 30_000 });
  await menuCommand('force-off');
  await expect(library.confirmation).toHaveAccessibleName('Force off “uno desk”?');
  await page.keyboard.press('Enter');
  await expect(library.vm('uno desk')).toContainText(/stopped/i, { timeout: 30_000 });

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
  await vimMenu.getByRole('menuitem', { name: 'Reset' }).click();
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
  // Its neighbour has the selection and the focus, so the keyboard carries on.
  await expect(library.vm('vex box')).toBeFocused();
  await expect(library.selected).toHaveAccessibleName('vex box');

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
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await vm.page.screenshot({ path: path.join(ARTIFACTS, 'vm-window-serial-silent.png') });

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

test('graphs open on the last minute with a 10-minute choice, legends read without hovering, and the Host view says the KVM sentence once', async ({ appPage: page, served, guest }) => {
  const library = new LibraryPage(page);
  await library.goto(served.url);
  const host = await HostPage.openFromLibrary(page);
  const cpu = host.graph('CPU usage graph');
  await expect(cpu).toHaveAccessibleDescription(/^Now \d+(\.\d)?%; the last minute\.$/, { timeout: 15_000 });
  await expect(host.resources).toContainText('the last minute, one point a second');
  const range = host.resources.getByRole('group', { name: 'Time range' });
  await expect(range.getByRole('button', { name: '1 min' })).toHaveAttribute('aria-pressed', 'true');
  await expect(range.getByRole('button', { name: '10 min' })).toHaveAttribute('aria-pressed', 'false');
  // Without the pointer on it, the legend reads the latest figures (the time and the CPU).
  const legendRows = cpu.locator('.u-legend .u-series');
  await expect(legendRows.nth(0).locator('.u-value')).toHaveText(/^\d{2}:\d{2}:\d{2}$/, { timeout: 15_000 });
  await expect(legendRows.nth(1).locator('.u-value')).toHaveText(/^\d+(\.\d)?%$/);
  // Seconds in, the line already spans a visible part of the minute's axis; on the 10-minute axis
  // the same seconds are a tenth as long.
  await expect.poll(() => lineSpan(cpu), { timeout: 30_000 }).toBeGreaterThan(0.1);
  const minuteSpan = await lineSpan(cpu);
  await range.getByRole('button', { name: '10 min' }).click();
  await expect(range.getByRole('button', { name: '10 min' })).toHaveAttribute('aria-pressed', 'true');
  await expect(cpu).toHaveAccessibleDescription(/; the last 10 minutes\.$/);
  await expect(host.resources).toContainText('the last 10 minutes, one point a second');
  await expect.poll(() => lineSpan(cpu), { timeout: 10_000 }).toBeLessThan(minuteSpan / 3);

  // Each accelerator's reason is said once, beside it, not again in the problems under it.
  const reasons = await host.facts.locator('.accel-reason').allInnerTexts();
  expect(reasons.length).toBeGreaterThan(0);
  const facts = await host.facts.innerText();
  for (const reason of reasons) expect(facts.split(reason).length - 1, reason).toBe(1);
  const doctor = JSON.parse((await served.cli(['doctor', '--json'])).stdout) as { problems: string[] };
  if (doctor.problems.some((p) => p.includes('which is much slower'))) await expect(host.facts.locator('.host-problems')).toContainText('which is much slower.');

  // A VM's Stats tab: the memory legend says why the guest's own figures are missing until its
  // balloon driver reports them, then shows them.
  expect((await served.cli(kernelVm(guest, 'graph box'))).code).toBe(0);
  await page.getByRole('link', { name: 'Library' }).click();
  const vm = new VmWindowPage(await library.openVm('graph box'));
  await vm.openTab('Stats');
  await expect(vm.page.getByText('Start the VM to see its statistics.')).toBeVisible();
  await vm.button('Start').click();
  const graphs = new Graphs(vm.page.getByRole('tabpanel', { name: 'Stats' }));
  await expect(graphs.graph('CPU usage graph')).toHaveAccessibleDescription(/; the last minute\.$/, { timeout: 20_000 });
  const guestTotal = graphs.graph('Memory usage graph').locator('.u-legend .u-series', { hasText: 'Guest total' }).locator('.u-value');
  await expect(guestTotal).toHaveText('— (not reported by the guest: needs its virtio-balloon driver)', { timeout: 20_000 });
  await expect(guestTotal).toHaveText(/^\d+(\.\d)? MiB$/, { timeout: 60_000 });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await vm.page.screenshot({ path: path.join(ARTIFACTS, 'vm-window-stats-minute.png') });
  // This guest writes to its serial port: the Serial tab shows that, not the silent guest's note.
  await vm.openTab('Serial');
  await expect.poll(() => vm.serialText(), { timeout: 60_000 }).toContain(guest.readyMarker);
  await expect(vm.page.getByTestId('serial-silent')).toHaveCount(0);
  await vm.openTab('Stats');
  await vm.button('Force Off').click();
  await vm.page.getByRole('alertdialog').getByRole('button', { name: 'Force Off' }).click();
  await expect(vm.page.getByText('The VM is not running: these are its last figures.')).toBeVisible({ timeout: 30_000 });
  await vm.page.close();
  expect((await served.cli(['delete', 'graph box'])).code).toBe(0);
});

test("Settings shows the engine's notices after saving, as the CLI prints them", async ({ appPage: page, served }) => {
  const created = await served.cli(['create', 'notice box', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);
  const library = new LibraryPage(page);
  await library.goto(served.url);
  const vm = new VmWindowPage(await library.openVm('notice box'));
  await vm.button('Settings').click();
  const dialog = vm.page.getByRole('dialog', { name: 'Settings — notice box' });
  await expect(dialog).toBeVisible();
  // More CPUs than the host has: allowed, with a warning (the CLI's "warning: …").
  const cpus = os.cpus().length + 1;
  await dialog.getByRole('textbox', { name: 'CPUs', exact: true }).fill(String(cpus));
  await dialog.getByRole('button', { name: 'Save' }).click();
  const notices = dialog.getByTestId('settings-notices');
  await expect(notices).toContainText('Saved.');
  await expect(notices).toContainText(`${cpus} CPUs is more than this host's ${os.cpus().length}`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await vm.page.screenshot({ path: path.join(ARTIFACTS, 'settings-notices.png') });
  const shown = JSON.parse((await served.cli(['show', 'notice box', '--json'])).stdout) as { config: { cpus: number } };
  expect(shown.config.cpus).toBe(cpus);
  // Done (focused: Enter) closes it; the window shows the new figure.
  await expect(dialog.getByRole('button', { name: 'Done' })).toBeFocused();
  await vm.page.keyboard.press('Enter');
  await expect(dialog).toBeHidden();
  await expect(vm.page.locator('.vm-facts')).toContainText(`${cpus} CPU`);
  await vm.page.close();
  expect((await served.cli(['delete', 'notice box'])).code).toBe(0);
});

test("a new VM's notices from the engine show in the library after creating it", async ({ appPage: page, served, guest }) => {
  const library = new LibraryPage(page);
  await library.goto(served.url);
  const dialog = await library.openNewVmDialog();
  const cpus = os.cpus().length + 1;
  await dialog.fillKernelBoot({ name: 'crowded', kernel: guest.kernel, initrd: guest.initrd, append: guest.append, memory: '128M', cpus: String(cpus), diskGiB: '1' });
  await dialog.create();
  await expect(dialog.root).toBeHidden();
  await expect(library.vm('crowded')).toBeFocused();
  await expect(page.getByTestId('library-notice')).toContainText(`crowded: ${cpus} CPUs is more than this host's ${os.cpus().length}`);
  expect((await served.cli(['delete', 'crowded'])).code).toBe(0);
});

test('the library at 800×600: the toolbar wraps without covering the host strip, and no host figure is cut off', async ({ appPage: page, served }) => {
  await page.setViewportSize({ width: 800, height: 600 });
  const library = new LibraryPage(page);
  await library.goto(served.url);
  const bar = page.locator('header.app-bar');
  const strip = page.getByRole('region', { name: 'Host resources' });
  // The figures are in (the Disk one is the longest: "read … · write …").
  const disk = strip.locator('.spark').filter({ hasText: 'Disk' }).locator('.spark-value');
  await expect(disk).toHaveText(/\d/, { timeout: 30_000 });
  const barBox = (await bar.boundingBox())!;
  const stripBox = (await strip.boundingBox())!;
  expect(barBox.y + barBox.height).toBeLessThanOrEqual(stripBox.y + 0.5);
  // Every control of the bar lies inside the bar and the window.
  for (const control of await bar.locator('button, input, select').all()) {
    const b = (await control.boundingBox())!;
    expect(b.y, await control.evaluate((e) => e.textContent ?? e.getAttribute('aria-label'))).toBeGreaterThanOrEqual(barBox.y - 0.5);
    expect(b.y + b.height).toBeLessThanOrEqual(barBox.y + barBox.height + 0.5);
    expect(b.x + b.width).toBeLessThanOrEqual(800);
  }
  // Every figure is whole: inside the window, nothing cut at its edge.
  for (const value of await strip.locator('.spark-value').all()) {
    const b = (await value.boundingBox())!;
    expect(b.x + b.width).toBeLessThanOrEqual(800);
    expect(await value.evaluate((e) => e.scrollWidth <= e.clientWidth + 1)).toBe(true);
  }
  const s = (await strip.boundingBox())!;
  expect(s.x + s.width).toBeLessThanOrEqual(800);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'library-800x600.png') });
});
