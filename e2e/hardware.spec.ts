import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, test } from './fixtures';
import { LibraryPage } from './pages/library-page';

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

    expect((await served.cli(['stop', name, '--force'])).code).toBe(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
