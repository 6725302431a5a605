/**
 * The tray / menu-bar icon and the app's own settings (issue 12: "VMs that live in the background").
 *
 * Pure parts, unit-tested without Electron:
 *  - `buildTrayMenu`: every VM with its state and the actions that make sense for it (Open, Start,
 *    Shut Down, Force Off), the two settings, Open Vivarium and Quit;
 *  - `AppSettings` in `<userData>/settings.json` (per library, like userData itself);
 *  - "Open Vivarium at login": Electron's login item on macOS and Windows; on Linux, where Electron
 *    has none, an XDG autostart entry (`$XDG_CONFIG_HOME/autostart/vivarium.desktop`, per the
 *    freedesktop Desktop Application Autostart Specification).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MenuItemConstructorOptions } from 'electron';
import type { VmInfo, VmState } from '../common/models/vm-state';

export interface AppSettings {
  /** Closing the last window keeps the app in the tray (and the VMs running) instead of quitting. */
  readonly runInBackground: boolean;
}

export const DEFAULT_SETTINGS: AppSettings = { runInBackground: false };
export const SETTINGS_FILE = 'settings.json';

/** Reads settings.json; anything missing or malformed falls back to the defaults, field by field. */
export function loadSettings(userData: string): AppSettings {
  try {
    const raw = JSON.parse(fs.readFileSync(path.join(userData, SETTINGS_FILE), 'utf8')) as Partial<Record<keyof AppSettings, unknown>>;
    return { runInBackground: typeof raw.runInBackground === 'boolean' ? raw.runInBackground : DEFAULT_SETTINGS.runInBackground };
  } catch {
    return DEFAULT_SETTINGS;
  }
}

/** Writes settings.json (0600, atomically: temp file + rename). */
export function saveSettings(userData: string, settings: AppSettings): void {
  fs.mkdirSync(userData, { recursive: true, mode: 0o700 });
  const file = path.join(userData, SETTINGS_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

const STATE_WORDS: Readonly<Record<VmState, string>> = {
  stopped: 'Stopped',
  starting: 'Starting',
  running: 'Running',
  paused: 'Paused',
  stopping: 'Shutting down',
  broken: 'Broken',
  suspended: 'Suspended',
};

/** What the user chose in the tray menu. */
export type TrayAction =
  | { readonly kind: 'open-library' }
  | { readonly kind: 'open-vm'; readonly id: string }
  | { readonly kind: 'start'; readonly id: string }
  | { readonly kind: 'shutdown'; readonly id: string }
  | { readonly kind: 'force-off'; readonly id: string }
  | { readonly kind: 'run-in-background'; readonly enabled: boolean }
  | { readonly kind: 'open-at-login'; readonly enabled: boolean }
  | { readonly kind: 'quit' };

export interface TrayMenuState {
  readonly vms: readonly VmInfo[];
  readonly settings: AppSettings;
  /** Null where the platform has no way to say (then the item is not shown). */
  readonly openAtLogin: boolean | null;
}

/** Menu labels escape '&' (a mnemonic marker on Windows and Linux). */
function label(text: string): string {
  return text.replace(/&/g, '&&');
}

/** The tray's context menu: VMs by name with their state, each with what can be done to it now. */
export function buildTrayMenu(state: TrayMenuState, act: (a: TrayAction) => void): MenuItemConstructorOptions[] {
  const vms = [...state.vms].sort((a, b) => a.name.localeCompare(b.name));
  const vmItems: MenuItemConstructorOptions[] =
    vms.length === 0
      ? [{ label: 'No virtual machines', enabled: false }]
      : vms.map((vm) => {
          const canStart = vm.state === 'stopped';
          const canShutDown = vm.state === 'running';
          const canForceOff = vm.state === 'running' || vm.state === 'paused' || vm.state === 'stopping' || vm.state === 'starting';
          return {
            id: `vm:${vm.id}`,
            label: label(`${vm.name} — ${STATE_WORDS[vm.state]}`),
            submenu: [
              { id: `vm:${vm.id}:open`, label: 'Open', click: () => act({ kind: 'open-vm', id: vm.id }) },
              { type: 'separator' },
              { id: `vm:${vm.id}:start`, label: 'Start', enabled: canStart, click: () => act({ kind: 'start', id: vm.id }) },
              { id: `vm:${vm.id}:shutdown`, label: 'Shut Down', enabled: canShutDown, click: () => act({ kind: 'shutdown', id: vm.id }) },
              { id: `vm:${vm.id}:force-off`, label: 'Force Off', enabled: canForceOff, click: () => act({ kind: 'force-off', id: vm.id }) },
            ],
          };
        });
  return [
    { id: 'open-library', label: 'Open Vivarium', click: () => act({ kind: 'open-library' }) },
    { type: 'separator' },
    ...vmItems,
    { type: 'separator' },
    {
      id: 'run-in-background',
      label: 'Keep Running When Windows Close',
      type: 'checkbox',
      checked: state.settings.runInBackground,
      click: () => act({ kind: 'run-in-background', enabled: !state.settings.runInBackground }),
    },
    ...(state.openAtLogin === null
      ? []
      : [
          {
            id: 'open-at-login',
            label: 'Open Vivarium at Login',
            type: 'checkbox' as const,
            checked: state.openAtLogin,
            click: () => act({ kind: 'open-at-login', enabled: !state.openAtLogin }),
          },
        ]),
    { type: 'separator' },
    { id: 'quit', label: 'Quit Vivarium', click: () => act({ kind: 'quit' }) },
  ];
}

/** The tooltip: how many VMs run. */
export function trayTooltip(vms: readonly VmInfo[]): string {
  const n = vms.filter((vm) => vm.state === 'running' || vm.state === 'paused').length;
  return n === 0 ? 'Vivarium' : `Vivarium — ${n} virtual machine${n === 1 ? '' : 's'} running`;
}

// ---- Open at login ---------------------------------------------------------------------------------

/** What the login-item code needs from Electron's `app`. */
export interface LoginItemApi {
  getLoginItemSettings(): { readonly openAtLogin: boolean };
  setLoginItemSettings(settings: { openAtLogin: boolean }): void;
}

export interface LoginItemContext {
  readonly platform: NodeJS.Platform;
  readonly env: NodeJS.ProcessEnv;
  readonly homeDir: string;
  /** The command that starts this app: [executable, ...args] (unpackaged: electron + app folder). */
  readonly command: readonly string[];
}

/**
 * The command that starts this app again later (the login item's Exec). Packaged: the executable,
 * except in an AppImage, whose executable lives in a temporary mount (/tmp/.mount_…) gone once the
 * app quits: there the AppImage file itself, which its runtime names in $APPIMAGE (electron-builder
 * docs "AppImage", AppImage runtime environment variables). Unpackaged: electron + the app folder.
 */
export function launchCommandFor(o: { readonly execPath: string; readonly isPackaged: boolean; readonly appPath: string; readonly env: NodeJS.ProcessEnv }): string[] {
  if (!o.isPackaged) return [o.execPath, o.appPath];
  const appImage = o.env.APPIMAGE;
  return [appImage && path.isAbsolute(appImage) ? appImage : o.execPath];
}

/** `$XDG_CONFIG_HOME/autostart/vivarium.desktop` (default ~/.config). */
export function autostartFile(ctx: Pick<LoginItemContext, 'env' | 'homeDir'>): string {
  const config = ctx.env.XDG_CONFIG_HOME && path.isAbsolute(ctx.env.XDG_CONFIG_HOME) ? ctx.env.XDG_CONFIG_HOME : path.join(ctx.homeDir, '.config');
  return path.join(config, 'autostart', 'vivarium.desktop');
}

/** Quotes one Exec argument per the Desktop Entry spec (double quotes; \", \`, \$, \\ escaped). */
function execArg(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/(["`$\\])/g, '\\$1')}"`;
}

/** The XDG autostart entry that starts Vivarium at login (Linux). */
export function autostartEntry(command: readonly string[], env: NodeJS.ProcessEnv): string {
  // A library other than the default one is the one to open at login.
  const exec = [...(env.VIVARIUM_HOME ? ['env', `VIVARIUM_HOME=${env.VIVARIUM_HOME}`] : []), ...command].map(execArg).join(' ');
  return ['[Desktop Entry]', 'Type=Application', 'Name=Vivarium', 'Comment=Run virtual machines with QEMU', `Exec=${exec}`, 'Icon=vivarium', 'Terminal=false', 'X-GNOME-Autostart-enabled=true', ''].join('\n');
}

/** Whether Vivarium opens at login; null where this platform has no way (not macOS/Windows/Linux). */
export function getOpenAtLogin(app: LoginItemApi, ctx: LoginItemContext): boolean | null {
  if (ctx.platform === 'darwin' || ctx.platform === 'win32') return app.getLoginItemSettings().openAtLogin;
  if (ctx.platform === 'linux') return fs.existsSync(autostartFile(ctx));
  return null;
}

/** Turns "Open Vivarium at login" on or off. */
export function setOpenAtLogin(app: LoginItemApi, ctx: LoginItemContext, enabled: boolean): void {
  if (ctx.platform === 'darwin' || ctx.platform === 'win32') {
    app.setLoginItemSettings({ openAtLogin: enabled });
    return;
  }
  if (ctx.platform !== 'linux') return;
  const file = autostartFile(ctx);
  if (!enabled) {
    fs.rmSync(file, { force: true });
    return;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, autostartEntry(ctx.command, ctx.env), { mode: 0o644 });
}

/** Where the tray icon's PNG is: beside the app in a package (electron-builder.yml extraResources),
 *  else the one scripts/icons.mjs renders into out/build-resources (npm run dist, or by hand). */
export function trayIconCandidates(resourcesPath: string, compiledDir: string): string[] {
  return [path.join(resourcesPath, 'tray.png'), path.resolve(compiledDir, '..', '..', 'build-resources', 'icons', '32x32.png')];
}
