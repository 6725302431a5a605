/**
 * The first run that guides (issue 12): an engine that finds no QEMU (VIVARIUM_QEMU_DIR names an
 * empty folder) shows the install guide, not an error, with the command for this host's OS, and
 * `vivarium doctor --json` reports the same command.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { _electron, type Page } from '@playwright/test';
import { runCli } from '../main/test-support/cli';
import { makeTestHome } from '../main/test-support/home';
import { electronBinary, expect, test } from './fixtures';

const REPO = path.join(__dirname, '..');

/** What /etc/os-release says this host is, in the words the guide uses. */
function expectedCommand(): RegExp | null {
  const text = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  const ids = [/^ID=(.*)$/m.exec(text)?.[1], ...(/^ID_LIKE=(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/)].map((s) => (s ?? '').replace(/"/g, ''));
  if (ids.includes('debian') || ids.includes('ubuntu')) return /^sudo apt install qemu-system-x86 qemu-utils( ovmf)?$/;
  if (ids.includes('fedora')) return /^sudo dnf install qemu-kvm qemu-img( edk2-ovmf)?$/;
  return null;
}

test('no QEMU: the app shows the install guide with this OS’s command, and doctor --json says the same', async ({ appKind, page }) => {
  const home = makeTestHome();
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-noqemu-'));
  const env = { ...home.env, VIVARIUM_QEMU_DIR: empty };
  const stops: (() => Promise<unknown>)[] = [];
  try {
    let ui: Page;
    if (appKind === 'electron') {
      const app = await _electron.launch({
        executablePath: electronBinary()!,
        args: [REPO, ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
        env: env as Record<string, string>,
      });
      stops.push(() => app.close());
      ui = await app.firstWindow();
    } else {
      const proc = spawn(process.execPath, [path.join(REPO, 'bin', 'vivarium.js'), 'serve', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      stops.push(async () => {
        proc.kill('SIGTERM');
        await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      });
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('vivarium serve printed no URL in 20 s')), 20_000);
        proc.stdout!.on('data', (d) => {
          out += d;
          const m = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)$/m.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
      });
      await page.goto(url);
      ui = page;
    }

    await expect(ui.getByRole('heading', { name: 'Install QEMU to get started' })).toBeVisible();
    await expect(ui.getByRole('alert')).toHaveCount(0); // a guide, not an error
    // The folder VIVARIUM_QEMU_DIR names is what lacks QEMU: that comes first, not "not installed".
    await expect(ui.getByTestId('qemu-dir-advice')).toContainText(`VIVARIUM_QEMU_DIR=${empty}, which holds no qemu-system-`);
    await expect(ui.getByTestId('qemu-dir-advice')).toContainText('Unset VIVARIUM_QEMU_DIR');
    const shown = (await ui.getByLabel('Install command').textContent())?.trim() ?? '';
    const expected = expectedCommand();
    if (expected) expect(shown).toMatch(expected);
    await expect(ui.getByRole('button', { name: 'Copy' })).toBeVisible();

    // Check again: still missing, and it says so (and when it looked).
    await ui.getByRole('button', { name: 'Check again' }).click();
    await expect(ui.getByRole('status').filter({ hasText: 'Still not found' })).toBeVisible();
    await ui.screenshot({ path: path.join(REPO, 'artifacts', `first-run-${appKind}.png`) });

    const doctor = await runCli(['doctor', '--json'], { env });
    const report = JSON.parse(doctor.stdout) as { setup: { qemuFound: boolean; installCommand: string | null; packageManager: string | null } };
    expect(report.setup.qemuFound).toBe(false);
    expect(report.setup.installCommand).toBe(shown);
    if (expected) expect(report.setup.packageManager).toBe(shown.includes('apt') ? 'apt' : 'dnf');
  } finally {
    for (const stop of stops.reverse()) await stop();
    await home.cleanup();
    fs.rmSync(empty, { recursive: true, force: true });
  }
});
