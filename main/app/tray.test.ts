/** The tray's pure parts: which actions each VM state offers, the settings file, the autostart entry. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MenuItemConstructorOptions } from 'electron';
import type { VmInfo, VmState } from '../common/models/vm-state';
import { autostartEntry, autostartFile, buildTrayMenu, launchCommandFor, loadSettings, saveSettings, trayTooltip } from './tray';
import type { TrayAction } from './tray';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-tray-'));
  dirs.push(d);
  return d;
};

const vm = (name: string, state: VmState, id = `00000000-0000-4000-8000-00000000000${name.length}`) => ({ id, name, state }) as unknown as VmInfo;

function enabled(menu: MenuItemConstructorOptions[], id: string): Record<string, boolean> {
  const item = menu.find((i) => i.id === `vm:${id}`)!;
  return Object.fromEntries((item.submenu as MenuItemConstructorOptions[]).filter((i) => i.id).map((i) => [i.id!.split(':').pop()!, i.enabled !== false]));
}

describe('tray menu', () => {
  it('offers what each state allows', () => {
    const states: VmState[] = ['stopped', 'starting', 'running', 'paused', 'stopping', 'broken'];
    const vms = states.map((s, i) => vm(s, s, `00000000-0000-4000-8000-00000000000${i}`));
    const menu = buildTrayMenu({ vms, settings: { runInBackground: false }, openAtLogin: false }, () => {});
    const of = (s: VmState) => enabled(menu, vms[states.indexOf(s)]!.id);
    expect(of('stopped')).toEqual({ open: true, start: true, shutdown: false, 'force-off': false });
    expect(of('running')).toEqual({ open: true, start: false, shutdown: true, 'force-off': true });
    expect(of('paused')).toEqual({ open: true, start: false, shutdown: false, 'force-off': true });
    expect(of('starting')).toEqual({ open: true, start: false, shutdown: false, 'force-off': true });
    expect(of('stopping')).toEqual({ open: true, start: false, shutdown: false, 'force-off': true });
    expect(of('broken')).toEqual({ open: true, start: false, shutdown: false, 'force-off': false });
    // Sorted by name; '&' shown as itself.
    const two = buildTrayMenu({ vms: [vm('b & c', 'running'), vm('a', 'stopped')], settings: { runInBackground: true }, openAtLogin: null }, () => {});
    expect(two.filter((i) => i.id?.startsWith('vm:')).map((i) => i.label)).toEqual(['a — Stopped', 'b && c — Running']);
    expect(two.find((i) => i.id === 'run-in-background')!.checked).toBe(true);
    expect(two.find((i) => i.id === 'open-at-login')).toBeUndefined();
  });

  it('reports the choice made', () => {
    const got: TrayAction[] = [];
    const v = vm('x', 'running');
    const menu = buildTrayMenu({ vms: [v], settings: { runInBackground: false }, openAtLogin: true }, (a) => got.push(a));
    const click = (i: MenuItemConstructorOptions | undefined) => (i!.click as () => void)();
    click((menu.find((i) => i.id === `vm:${v.id}`)!.submenu as MenuItemConstructorOptions[]).find((i) => i.id === `vm:${v.id}:shutdown`));
    click(menu.find((i) => i.id === 'run-in-background'));
    click(menu.find((i) => i.id === 'open-at-login'));
    click(menu.find((i) => i.id === 'quit'));
    expect(got).toEqual([{ kind: 'shutdown', id: v.id }, { kind: 'run-in-background', enabled: true }, { kind: 'open-at-login', enabled: false }, { kind: 'quit' }]);
    expect(trayTooltip([v, vm('y', 'paused'), vm('z', 'stopped')])).toBe('Vivarium — 2 virtual machines running');
  });
});

describe('settings file', () => {
  it('round-trips, is private, and falls back field by field', () => {
    const d = tmp();
    expect(loadSettings(d)).toEqual({ runInBackground: false });
    saveSettings(path.join(d, 'new'), { runInBackground: true });
    expect(loadSettings(path.join(d, 'new'))).toEqual({ runInBackground: true });
    expect(fs.statSync(path.join(d, 'new', 'settings.json')).mode & 0o777).toBe(0o600);
    fs.writeFileSync(path.join(d, 'settings.json'), '{"runInBackground":"yes"}');
    expect(loadSettings(d)).toEqual({ runInBackground: false });
    fs.writeFileSync(path.join(d, 'settings.json'), 'not json');
    expect(loadSettings(d)).toEqual({ runInBackground: false });
  });
});

describe('XDG autostart entry', () => {
  it('is a valid desktop entry that quotes what needs quoting', () => {
    const d = tmp();
    const file = autostartFile({ env: { XDG_CONFIG_HOME: d }, homeDir: '/home/u' });
    expect(file).toBe(path.join(d, 'autostart', 'vivarium.desktop'));
    expect(autostartFile({ env: { XDG_CONFIG_HOME: 'relative' }, homeDir: '/home/u' })).toBe('/home/u/.config/autostart/vivarium.desktop');
    const text = autostartEntry(['/opt/My Apps/electron', '/home/u/src/viv arium'], { VIVARIUM_HOME: '/home/u/VMs $work' });
    expect(text).toContain('Exec=env "VIVARIUM_HOME=/home/u/VMs \\$work" "/opt/My Apps/electron" "/home/u/src/viv arium"');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    const v = spawnSync('desktop-file-validate', [file], { encoding: 'utf8' });
    expect(`${v.stdout}${v.stderr}`.trim()).toBe('');
    expect(v.status).toBe(0);
  });

  it('starts the AppImage file at login, not the executable in its temporary mount', () => {
    const mount = '/tmp/.mount_VivariAbC123/vivarium';
    const fromAppImage = launchCommandFor({ execPath: mount, isPackaged: true, appPath: '/tmp/.mount_VivariAbC123/resources/app.asar', env: { APPIMAGE: '/home/u/Apps/Vivarium-0.1.0-x86_64.AppImage' } });
    expect(fromAppImage).toEqual(['/home/u/Apps/Vivarium-0.1.0-x86_64.AppImage']);
    expect(autostartEntry(fromAppImage, {})).toContain('Exec=/home/u/Apps/Vivarium-0.1.0-x86_64.AppImage\n');
    expect(autostartEntry(fromAppImage, {})).not.toContain('.mount_');
    // deb/rpm (no $APPIMAGE): the installed executable; a relative $APPIMAGE is not trusted.
    expect(launchCommandFor({ execPath: '/opt/Vivarium/vivarium', isPackaged: true, appPath: '/opt/Vivarium/resources/app.asar', env: {} })).toEqual(['/opt/Vivarium/vivarium']);
    expect(launchCommandFor({ execPath: '/opt/Vivarium/vivarium', isPackaged: true, appPath: 'x', env: { APPIMAGE: 'Vivarium.AppImage' } })).toEqual(['/opt/Vivarium/vivarium']);
    // From a checkout: electron + the app folder, whatever $APPIMAGE says.
    expect(launchCommandFor({ execPath: '/r/node_modules/electron/dist/electron', isPackaged: false, appPath: '/r', env: { APPIMAGE: '/x.AppImage' } })).toEqual([
      '/r/node_modules/electron/dist/electron',
      '/r',
    ]);
  });
});
