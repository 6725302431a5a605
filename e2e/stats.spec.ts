import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from './fixtures';
import { Graphs, HostPage } from './pages/host-page';
import { LibraryPage } from './pages/library-page';
import { VmWindowPage } from './pages/vm-window-page';

const ARTIFACTS = path.join(__dirname, '..', 'artifacts');
const PERCENT = /^\d+(\.\d)?%$/;

test('the Host view draws live graphs and states what the host can run', async ({ appPage: page, served }) => {
  const library = new LibraryPage(page);
  await library.goto(served.url);
  // The library's strip is live before anyone opens the host view.
  const strip = new Graphs(page.getByRole('region', { name: 'Host resources' }));
  await expect(strip.graph('Host CPU usage graph')).toBeVisible();

  const host = await HostPage.openFromLibrary(page);
  expect(new URL(page.url()).hash).toBe('#/host');

  await expect(host.graph('CPU usage graph')).toBeVisible();
  await expect(host.value('CPU usage graph')).toHaveText(PERCENT, { timeout: 15_000 });
  await expect.poll(() => host.seriesInk('CPU usage graph'), { timeout: 15_000 }).toBeGreaterThan(20);
  // The text alternative carries the value too.
  await expect(host.graph('CPU usage graph')).toHaveAccessibleDescription(/^Now \d+(\.\d)?%; the last minute\.$/, { timeout: 10_000 });
  for (const name of ['Memory usage graph', 'Swap usage graph', 'Disk throughput graph', 'Network throughput graph', 'Load average graph', 'CPU usage per core graph']) {
    await expect(host.graph(name)).toBeVisible();
  }
  await expect(host.value('Memory usage graph')).toHaveText(/^\d+(\.\d)? [KMGT]?i?B of \d+(\.\d)? [KMGT]?i?B$/);

  // Hovering reads a value off the CPU graph (uPlot's cursor and legend).
  const plot = host.graph('CPU usage graph').locator('.u-over');
  const box = (await plot.boundingBox())!;
  await page.mouse.move(box.x + box.width - 3, box.y + box.height / 2);
  await expect(host.graph('CPU usage graph').locator('.u-legend .u-series').nth(1).locator('.u-value')).toHaveText(PERCENT);

  // Virtualization facts from host.doctor(): this machine has QEMU 7.2 and uses TCG (kvm_pvm).
  await expect(host.facts.getByTestId('qemu-version').first()).toContainText(/\d+\.\d+\.\d+ \(.*qemu-system-/);
  await expect(host.accelerator(/^TCG/)).toContainText('usable');
  await expect(host.accelerator(/^KVM/)).toBeVisible();

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'host-view.png') });

  await page.getByRole('link', { name: 'Library' }).click();
  await expect(library.newVmButton).toBeVisible();
});

test("a running VM's Stats tab shows its CPU; the library sorts by CPU and draws it per card", async ({ appPage: page, served, guest }) => {
  const name = 'stats guest';
  const created = await served.cli(['create', name, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append, '--memory', '128M', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg']);
  expect(created.code, created.stderr).toBe(0);
  const started = await served.cli(['start', name]);
  expect(started.code, started.stderr).toBe(0);

  const library = new LibraryPage(page);
  await library.goto(served.url);
  const sort = page.getByRole('combobox', { name: 'Sort by' });
  await expect(sort.getByRole('option', { name: 'CPU', exact: true })).toHaveCount(1);
  await expect(sort.getByRole('option', { name: 'Memory', exact: true })).toHaveCount(1);
  await sort.selectOption({ label: 'CPU' });
  await expect(sort).toHaveValue('cpu');
  // A running VM's card has a CPU sparkline whose text alternative joins the card's description.
  await expect(library.vm(name)).toContainText(/running/i, { timeout: 30_000 });
  await expect(library.vm(name).getByRole('img', { name: `CPU usage graph of ${name}` })).toBeAttached();
  await expect(library.vm(name)).toHaveAccessibleDescription(/Now \d+(\.\d)?%\./, { timeout: 15_000 });

  const vmPage = await library.openVm(name);
  const vm = new VmWindowPage(vmPage);
  const statsTab = vm.tabs.getByRole('tab', { name: 'Stats' });
  await statsTab.click();
  await expect(statsTab).toHaveAttribute('aria-selected', 'true');
  const graphs = new Graphs(vmPage.getByRole('tabpanel', { name: 'Stats' }));
  await expect(graphs.value('CPU usage graph')).toHaveText(PERCENT, { timeout: 20_000 });
  // An idle guest's line hugs the bottom, but it is drawn.
  await expect.poll(() => graphs.seriesInk('CPU usage graph'), { timeout: 15_000 }).toBeGreaterThan(0);
  await expect(graphs.graph('Memory usage graph')).toBeVisible();
  await expect(graphs.value('Memory usage graph')).toHaveText(/^resident \d+(\.\d)? MiB/);
  // No guest agent in the test guest: the network graph says why instead of drawing zeros.
  await expect(vmPage.getByText('Not available: needs the QEMU guest agent in the guest')).toBeVisible({ timeout: 20_000 });

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await vmPage.screenshot({ path: path.join(ARTIFACTS, 'vm-window-stats.png') });
  await page.bringToFront();
  await page.screenshot({ path: path.join(ARTIFACTS, 'library-stats.png') });

  await vmPage.close();
  expect((await served.cli(['stop', name, '--force'])).code).toBe(0);
  expect((await served.cli(['delete', name])).code).toBe(0);
});
