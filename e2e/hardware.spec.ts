import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, test } from './fixtures';
import { LibraryPage } from './pages/library-page';

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

interface Drive {
  readonly id: string;
  readonly kind: 'disk' | 'cdrom';
  readonly path: string | null;
  readonly virtualSizeBytes: number | null;
}

test('the Hardware tab ejects the CD and grows the disk of a running VM', async ({ appPage: page, served, guest }) => {
  const name = 'hw guest';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-e2e-hw-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.txt'), 'a\n');
    const iso = path.join(dir, 'drivers.iso');
    execFileSync('genisoimage', ['-quiet', '-V', 'DRIVERS', '-o', iso, path.join(dir, 'a.txt')]);
    const created = await served.cli(['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '256M', '--disk-size', '64M', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
    expect(created.code, created.stderr).toBe(0);
    const inserted = await served.cli(['cd', 'insert', name, iso]);
    expect(inserted.code, inserted.stderr).toBe(0);
    const started = await served.cli(['start', name, '--wait-serial', guest.readyMarker, '--timeout', '120']);
    expect(started.code, started.stderr).toBe(0);

    const library = new LibraryPage(page);
    await library.goto(served.url);
    await expect(library.vm(name)).toContainText(/running/i, { timeout: 30_000 });
    const vmPage = await library.openVm(name);
    await vmPage.getByRole('tablist', { name: 'Consoles' }).getByRole('tab', { name: 'Hardware' }).click();
    const panel = vmPage.getByRole('region', { name: 'Hardware' });
    const cdRow = panel.getByRole('row', { name: /cd0/ });
    await expect(cdRow).toContainText(iso, { timeout: 30_000 });

    await cdRow.getByRole('button', { name: 'Eject' }).click();
    await expect(cdRow).toContainText('empty', { timeout: 30_000 });
    const drives = async () => JSON.parse((await served.cli(['disk', 'list', name, '--json'])).stdout) as Drive[];
    expect((await drives()).find((d) => d.kind === 'cdrom')?.path).toBeNull();

    const diskRow = panel.getByRole('row', { name: /disk0/ });
    await diskRow.getByRole('button', { name: 'Grow…' }).click();
    await diskRow.getByLabel('New size').fill('96M');
    await diskRow.getByRole('button', { name: 'Grow', exact: true }).click();
    await expect.poll(async () => (await drives()).find((d) => d.id === 'disk0')?.virtualSizeBytes, { timeout: 30_000 }).toBe(96 * 1024 * 1024);
    await expect(panel.getByRole('alert')).toHaveCount(0);

    // A bare number is GiB, as in the wizard.
    await diskRow.getByRole('button', { name: 'Grow…' }).click();
    await diskRow.getByLabel('New size').fill('0.125');
    await diskRow.getByRole('button', { name: 'Grow', exact: true }).click();
    await expect.poll(async () => (await drives()).find((d) => d.id === 'disk0')?.virtualSizeBytes, { timeout: 30_000 }).toBe(128 * 1024 * 1024);
    // The engine's refusal reads as a sentence, without "Invalid request:" or field names.
    await diskRow.getByRole('button', { name: 'Grow…' }).click();
    await diskRow.getByLabel('New size').fill('0.0001');
    await diskRow.getByRole('button', { name: 'Grow', exact: true }).click();
    await expect(panel.getByRole('alert')).toBeVisible();
    await expect(panel.getByRole('alert')).not.toContainText(/Invalid request|bytes:/);
    await expect(panel.getByRole('alert')).toHaveText(/^[A-Z].*\.$/);
    await diskRow.getByRole('button', { name: 'Cancel' }).click();

    // Running: Add and Remove are greyed out, and the tab says why.
    await expect(panel.getByRole('button', { name: 'Add Disk' })).toBeDisabled();
    await expect(panel.getByTestId('hardware-running-note')).toHaveText(/^Shut the VM down to add or remove drives\./);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await vmPage.setViewportSize({ width: 800, height: 600 });
    await vmPage.screenshot({ path: path.join(ARTIFACTS, 'hardware-running-800x600.png') });

    expect((await served.cli(['stop', name, '--force'])).code).toBe(0);
    await expect(panel.getByTestId('hardware-running-note')).toHaveCount(0, { timeout: 30_000 });
    await expect(panel.getByRole('button', { name: 'Add Disk' })).toBeEnabled();

    // Settings (VM shut down): boot order, boot menu and TPM; the CD drives are shown, not typed.
    await vmPage.getByRole('toolbar', { name: 'VM controls' }).getByRole('button', { name: 'Settings' }).click();
    const settings = vmPage.getByRole('dialog', { name: `Settings — ${name}` });
    // This VM boots a Linux kernel; back to the firmware's boot order, the CD drives are listed.
    await expect(settings.getByTestId('settings-cds')).toHaveCount(0);
    await settings.getByRole('radio', { name: 'Disks, CD drives, network (boot order)' }).check();
    await expect(settings.getByTestId('settings-cds')).toContainText('cd0');
    await expect(settings.getByTestId('settings-cds')).toContainText('Hardware tab');
    await expect(settings.getByRole('textbox', { name: 'ISO image path' })).toHaveCount(0);
    const order = settings.getByRole('list', { name: 'Boot order' });
    await expect(order.getByRole('listitem')).toHaveText([/Hard disk/, /CD drive/, /Network/]);
    await settings.getByRole('button', { name: 'Move CD drive up' }).click();
    await expect(order.getByRole('listitem')).toHaveText([/CD drive/, /Hard disk/, /Network/]);
    await order.getByRole('checkbox', { name: 'Network (PXE)' }).check();
    await settings.getByRole('checkbox', { name: 'Show boot menu' }).check();
    await settings.getByRole('checkbox', { name: 'TPM 2.0' }).check();
    await vmPage.screenshot({ path: path.join(ARTIFACTS, 'settings-boot-options.png') });
    await settings.getByRole('button', { name: 'Save' }).click();
    // Saved: the dialog closes, or stays to say what is worth knowing (then Done closes it).
    const done = settings.getByRole('button', { name: 'Done' });
    await expect.poll(async () => (await settings.isHidden()) || (await done.isVisible()), { timeout: 30_000 }).toBe(true);
    if (await done.isVisible()) await done.click();
    await expect(settings).toBeHidden();
    const shown = JSON.parse((await served.cli(['show', name, '--json'])).stdout) as { config: { bootOrder: string[]; bootMenu: boolean; tpm: boolean; kernel: unknown } };
    expect(shown.config).toMatchObject({ bootOrder: ['cd', 'disk', 'net'], bootMenu: true, tpm: true, kernel: null });

    // Remove asks first, saying what is lost: here the system disk (its file kept). Cancel keeps it.
    const diskFile = (await drives()).find((d) => d.id === 'disk0')?.path;
    expect(diskFile).toBeTruthy();
    await diskRow.getByRole('button', { name: 'Remove' }).click();
    const ask = vmPage.getByRole('alertdialog', { name: 'Remove the disk disk0?' });
    await expect(ask).toContainText('It is the system disk');
    await expect(ask).toContainText('Its file stays where it is');
    await ask.getByRole('button', { name: 'Cancel' }).click();
    await expect(ask).toBeHidden();
    expect((await drives()).some((d) => d.id === 'disk0')).toBe(true);
    await diskRow.getByRole('button', { name: 'Remove' }).click();
    await ask.getByRole('button', { name: 'Remove disk' }).click();
    await expect.poll(async () => (await drives()).some((d) => d.id === 'disk0'), { timeout: 30_000 }).toBe(false);
    await expect(panel.getByRole('alert')).toHaveCount(0);
    expect(fs.existsSync(diskFile as string)).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
