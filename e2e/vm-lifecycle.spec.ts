import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from './fixtures';
import { LibraryPage, NewVmDialog } from './pages/library-page';
import { VmWindowPage } from './pages/vm-window-page';

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

test('create a VM from the dialog, boot it, use its serial console, force it off and delete it', async ({ appPage: page, served, guest }) => {
  const library = new LibraryPage(page);
  await library.goto(served.url);

  const dialog = await library.openNewVmDialog();
  await dialog.fillKernelBoot({ name: 'e2e linux', kernel: guest.kernel, initrd: guest.initrd, append: guest.append, memory: '256M', cpus: '1', diskGiB: '1' });
  await dialog.create();
  await expect(dialog.root).toBeHidden();
  await expect(library.vm('e2e linux')).toBeVisible();

  // The VM would run under auto → TCG here anyway; make it explicit for the CLI check below.
  const shown = JSON.parse((await served.cli(['show', 'e2e linux', '--json'])).stdout);
  expect(shown.config).toMatchObject({ cpus: 1, memoryMiB: 256, kernel: { path: guest.kernel, initrd: guest.initrd } });

  const vmPage = await library.openVm('e2e linux');
  const vm = new VmWindowPage(vmPage);
  await vm.button('Start').click();
  await vm.openTab('Serial');
  await expect.poll(() => vm.serialText(), { timeout: 90_000 }).toContain(guest.readyMarker);

  // Clicking the Serial tab puts the keyboard in the console, as in other workstation apps.
  await vm.openTab('Display');
  await vm.openTab('Serial');
  await vmPage.keyboard.type('echo $((5*5))-after-click\n');
  await expect.poll(() => vm.serialText(), { timeout: 30_000 }).toContain('25-after-click');

  await vm.typeSerial('echo $((6*7))-from-e2e\n');
  await expect.poll(() => vm.serialText(), { timeout: 30_000 }).toContain('42-from-e2e');

  // The CLI sees what the UI did: the same engine.
  const listed = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[];
  expect(listed.find((v) => v.name === 'e2e linux')).toMatchObject({ state: 'running', accel: 'tcg' });

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await vmPage.screenshot({ path: path.join(ARTIFACTS, 'vm-window-serial.png') });
  await library.page.bringToFront();
  await expect(library.vm('e2e linux')).toContainText(/running/i);
  await page.screenshot({ path: path.join(ARTIFACTS, 'library.png') });

  // Shut Down with a guest that ignores the power button (its acpid stopped): the window says it is
  // waiting, with a countdown, keeps the console live, and offers Force Off Now.
  await vm.typeSerial('kill $(cat /run/acpid.pid) && echo acpid-$((3*3))-gone\n');
  await expect.poll(() => vm.serialText(), { timeout: 30_000 }).toContain('acpid-9-gone');
  await vmPage.bringToFront();
  await vm.button('Shut Down').click();
  const progress = vmPage.getByTestId('stop-progress');
  await expect(progress).toContainText(/Waiting for the guest to shut down… \(\d+ s\)|Shutting down…/, { timeout: 15_000 });
  await vm.typeSerial('echo $((7*8))-while-stopping\n');
  await expect.poll(() => vm.serialText(), { timeout: 30_000 }).toContain('56-while-stopping');
  await progress.getByRole('button', { name: 'Force Off Now' }).click();
  await expect(vm.button('Start')).toBeEnabled({ timeout: 60_000 });
  // The outcome says what happened (the engine's sentence from the stop ladder).
  await expect(vmPage.getByTestId('stop-outcome')).toContainText(/forced off/i);
  const stopped = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[];
  expect(stopped.find((v) => v.name === 'e2e linux')).toMatchObject({ state: 'stopped', lastExit: { reason: 'stopped' } });

  await vm.button('Delete').click();
  const confirm = vmPage.getByRole('alertdialog');
  await confirm.getByRole('button', { name: 'Delete VM' }).click();
  await expect(library.vm('e2e linux')).toHaveCount(0);
  const after = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[];
  expect(after.map((v) => v.name)).not.toContain('e2e linux');
});

test('the dialog refuses bad input with a sentence next to the field and creates nothing', async ({ appPage: page, served }) => {
  const library = new LibraryPage(page);
  await library.goto(served.url);
  // The Electron menu's "New VM…" arrives as a DOM event; it opens the same dialog as the button.
  await page.evaluate(() => window.dispatchEvent(new CustomEvent('vivarium:menu', { detail: { action: 'new-vm' } })));
  const dialog = new NewVmDialog(page);
  await expect(dialog.root).toBeVisible();
  // A missing ISO is refused when leaving step 1 (the engine's dry run), next to its field.
  await dialog.fillIsoBoot({ name: 'bad', iso: '/nonexistent/x.iso', memory: 'lots', diskGiB: '1' });
  await expect(dialog.root.getByRole('alert').or(dialog.root.getByText(/ISO not found/))).toContainText(/ISO not found: \/nonexistent\/x.iso/);
  // With a real ISO, the bad memory value is refused on the hardware step.
  await dialog.field('ISO image path').fill('/usr/lib/grub-rescue/grub-rescue-cdrom.iso');
  await dialog.next();
  await dialog.field('Name').fill('bad');
  await dialog.field('Memory').fill('lots');
  await dialog.next();
  // The hardware step shows this host's defaults, asked from the engine (host.defaults).
  const host = JSON.parse((await served.cli(['doctor', '--json'])).stdout) as { hostArch: string };
  await expect(dialog.field('CPUs')).toHaveValue(/^\d+$/);
  await expect(dialog.root.getByRole('combobox', { name: 'Firmware' })).toHaveValue(host.hostArch === 'aarch64' ? 'uefi' : 'bios');
  await expect(dialog.root).toContainText(/memory/i);
  const listed = JSON.parse((await served.cli(['list', '--json'])).stdout) as { name: string }[];
  expect(listed.map((v) => v.name)).not.toContain('bad');
});

test('changes made with the CLI appear in the library without a reload', async ({ appPage: page, served }) => {
  const library = new LibraryPage(page);
  await library.goto(served.url);
  const r = await served.cli(['create', 'from-cli', '--disk-size', '0', '--display', 'none', '--accel', 'tcg']);
  expect(r.code).toBe(0);
  await expect(library.vm('from-cli')).toBeVisible({ timeout: 5_000 });
  expect((await served.cli(['delete', 'from-cli'])).code).toBe(0);
  await expect(library.vm('from-cli')).toHaveCount(0, { timeout: 5_000 });
});

test('starting again after a failed start visibly retries', async ({ appPage: page, served, guest }) => {
  // A kernel that is there at create and gone at start: every start fails with the same sentence.
  const kernel = path.join(served.home.home, 'vmlinuz-copy');
  fs.copyFileSync(guest.kernel, kernel);
  const created = await served.cli(['create', 'retry me', '--kernel', kernel, '--memory', '128M', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code).toBe(0);
  fs.rmSync(kernel);
  const library = new LibraryPage(page);
  await library.goto(served.url);
  await expect(library.vm('retry me')).toBeVisible();
  // This window shows the VM (by its route), whatever other VMs earlier specs left in the library.
  const id = created.stdout.trim();
  await page.evaluate((vmId) => void (window.location.hash = `#/vm/${vmId}`), id);
  const vm = new VmWindowPage(page);
  await expect(page.getByRole('heading', { name: 'retry me' })).toBeVisible();
  const alerts = vm.page.getByRole('alert').filter({ hasText: /kernel/i });
  await vm.button('Start').click();
  await expect(alerts.first()).toBeVisible({ timeout: 30_000 });
  // The failure names no CLI command in the window.
  await expect(alerts.first()).not.toContainText(/vivarium |--kernel/);
  // The engine refuses before QEMU runs, in milliseconds and with the same sentence each time: the
  // banner carries the try's time (and from the second try its number), so every press shows.
  await expect(alerts.first()).toContainText(/\(\d{1,2}:\d{2}:\d{2}.*\)/);
  await expect(alerts.first()).not.toContainText('try 2');
  const first = await alerts.first().elementHandle();
  await vm.button('Start').click();
  // A new alert replaces the old one (announced again), not the same text left standing.
  await expect.poll(async () => (await alerts.first().elementHandle()) !== null && !(await first!.evaluate((n) => n.isConnected)), { timeout: 30_000 }).toBe(true);
  await expect(alerts.first()).toBeVisible();
  await expect(alerts.first()).toContainText(/\(try 2, \d{1,2}:\d{2}:\d{2}/);
  await vm.button('Start').click();
  await expect(alerts.first()).toContainText(/\(try 3, /, { timeout: 30_000 });
  // One alert for the failure, not the same sentence twice (the VM's problem and the start's).
  await expect(alerts).toHaveCount(1);
});

test('a QEMU that stops responding (kill -STOP) shows as not responding in the VM window, as on its card', async ({ appPage: page, served, guest }) => {
  const created = await served.cli(['create', 'frozen', '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '128M', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code).toBe(0);
  const id = created.stdout.trim();
  expect((await served.cli(['start', 'frozen', '--wait-serial', guest.readyMarker])).code).toBe(0);
  const { pid } = JSON.parse((await served.cli(['show', 'frozen', '--json'])).stdout) as { pid: number };
  expect(pid).toBeGreaterThan(0);
  process.kill(pid, 'SIGSTOP');
  try {
    const library = new LibraryPage(page);
    await library.goto(served.url);
    await expect(library.vm('frozen')).toContainText(/not responding/, { timeout: 30_000 });
    // The window opens after the engine noticed (no change left to announce): it must still say so.
    await page.evaluate((vmId) => void (window.location.hash = `#/vm/${vmId}`), id);
    const vm = new VmWindowPage(page);
    await expect(page.getByRole('heading', { name: 'frozen' })).toBeVisible();
    await expect(page.getByTestId('vm-problem')).toContainText(/not responding/, { timeout: 15_000 });
    await vm.openTab('Serial');
    await expect(page.getByRole('toolbar', { name: 'Serial console controls' }).locator('.console-status')).toContainText(/receiving nothing/, { timeout: 15_000 });
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  // Once QEMU answers again, the window goes back to plain Running.
  await expect(page.getByTestId('vm-problem')).toHaveCount(0, { timeout: 30_000 });
  expect((await served.cli(['stop', 'frozen', '--force'])).code).toBe(0);
  expect((await served.cli(['delete', 'frozen'])).code).toBe(0);
});
