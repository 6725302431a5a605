/**
 * The application menu, as a pure function of a little state, so it is unit-tested without
 * Electron (only types come from 'electron').
 *
 * VM commands are not run here: they go to the focused window's page as a DOM event, and the page
 * (which knows which VM it shows and what state it is in) calls the engine like any button would.
 * The event carries one word from a fixed list, never text from anywhere else:
 *
 *   window.addEventListener('vivarium:menu', (e) => e.detail.action)   // a MenuAction
 */
import type { BaseWindow, MenuItemConstructorOptions } from 'electron';

import { isMenuAction, MENU_EVENT, type MenuAction } from '../common/menu-actions';

export { isMenuAction, MENU_ACTIONS, MENU_EVENT, type MenuAction } from '../common/menu-actions';

/** The script that hands an action to a page: `webContents.executeJavaScript(menuEventScript(a))`.
 *  Refuses anything that is not a MenuAction, so no other string can ever be spliced into code. */
export function menuEventScript(action: MenuAction): string {
  if (!isMenuAction(action)) throw new Error(`Not a menu action: ${JSON.stringify(action)}`);
  return `window.dispatchEvent(new CustomEvent(${JSON.stringify(MENU_EVENT)}, { detail: ${JSON.stringify({ action })} }))`;
}

export interface MenuState {
  readonly platform: NodeJS.Platform;
  readonly appName: string;
  /** Unpackaged (developer) runs get Reload and DevTools. */
  readonly dev: boolean;
}

export interface MenuHandlers {
  /** `window` is the focused window when the item was chosen (Electron passes it to click). */
  action(action: MenuAction, window: BaseWindow | undefined): void;
  showLibrary(): void;
  showLibraryFolder(): void;
}

interface VmCommand {
  readonly action: Exclude<MenuAction, 'new-vm' | 'new-sandbox'>;
  readonly label: string;
  /** Modifier-heavy on purpose: a focused VM display passes plain keys and Ctrl+letter to the
   *  guest, and the menu must not steal them. */
  readonly accelerator: string;
}

/** The VM menu, in order; null is a separator. */
export const VM_COMMANDS: readonly (VmCommand | null)[] = [
  { action: 'start', label: 'Start', accelerator: 'CmdOrCtrl+Shift+R' },
  { action: 'pause', label: 'Pause', accelerator: 'CmdOrCtrl+Shift+P' },
  { action: 'resume', label: 'Resume', accelerator: 'CmdOrCtrl+Shift+U' },
  { action: 'restart', label: 'Restart', accelerator: 'CmdOrCtrl+Alt+R' },
  null,
  { action: 'shutdown', label: 'Shut Down', accelerator: 'CmdOrCtrl+Shift+E' },
  { action: 'force-off', label: 'Force Off', accelerator: 'CmdOrCtrl+Alt+Shift+E' },
  // Save the whole state to disk and end QEMU; Start resumes it (issue 10).
  { action: 'suspend', label: 'Suspend', accelerator: 'CmdOrCtrl+Alt+Shift+Z' },
  null,
  // Ctrl+Alt+End is what Remote Desktop and Hyper-V use; the real Ctrl+Alt+Del belongs to the host.
  { action: 'ctrl-alt-del', label: 'Send Ctrl+Alt+Del', accelerator: 'CmdOrCtrl+Alt+End' },
  { action: 'screenshot', label: 'Screenshot', accelerator: 'CmdOrCtrl+Alt+S' },
  null,
  { action: 'clone', label: 'Clone…', accelerator: 'CmdOrCtrl+Alt+Shift+D' },
  { action: 'export', label: 'Export…', accelerator: 'CmdOrCtrl+Alt+Shift+X' },
];

const SEPARATOR: MenuItemConstructorOptions = { type: 'separator' };

export function buildMenuTemplate(state: MenuState, handlers: MenuHandlers): MenuItemConstructorOptions[] {
  const mac = state.platform === 'darwin';
  const item = (action: MenuAction, label: string, accelerator: string): MenuItemConstructorOptions => ({
    id: `vivarium.${action}`,
    label,
    accelerator,
    click: (_item, window) => handlers.action(action, window),
  });

  const appMenu: MenuItemConstructorOptions[] = mac
    ? [
        {
          label: state.appName,
          submenu: [
            { role: 'about' },
            SEPARATOR,
            { role: 'services' },
            SEPARATOR,
            { role: 'hide' },
            { role: 'hideOthers' },
            { role: 'unhide' },
            SEPARATOR,
            { role: 'quit' },
          ],
        },
      ]
    : [];

  const file: MenuItemConstructorOptions = {
    label: 'File',
    submenu: [
      item('new-vm', 'New VM…', 'CmdOrCtrl+N'),
      item('new-sandbox', 'New Sandbox…', 'CmdOrCtrl+Shift+N'),
      SEPARATOR,
      { role: 'close', label: 'Close Window' },
      ...(mac ? [] : [SEPARATOR, { role: 'quit' } as const]),
    ],
  };

  // Cut/Copy/Paste/Select All in text fields. macOS routes Cmd+C/V/X/A only through the menu, so
  // without these they do nothing there. Elsewhere the keys work in text fields without the menu,
  // and a registered Ctrl+C would take it from a guest's console: shown, not registered.
  const edit: MenuItemConstructorOptions = {
    label: 'Edit',
    submenu: (
      [
        { role: 'undo' },
        { role: 'redo' },
        SEPARATOR,
        { role: 'cut' },
        { role: 'copy' },
        { role: 'paste' },
        ...(mac ? [{ role: 'pasteAndMatchStyle' } as const] : []),
        { role: 'delete' },
        SEPARATOR,
        { role: 'selectAll' },
      ] as MenuItemConstructorOptions[]
    ).map((i) => (mac || i.type === 'separator' ? i : { ...i, registerAccelerator: false })),
  };

  const vm: MenuItemConstructorOptions = {
    label: 'VM',
    submenu: VM_COMMANDS.map((c) => (c === null ? SEPARATOR : item(c.action, c.label, c.accelerator))),
  };

  const view: MenuItemConstructorOptions = {
    label: 'View',
    submenu: [
      ...(state.dev ? [{ role: 'reload' } as const, { role: 'toggleDevTools' } as const, SEPARATOR] : []),
      { role: 'resetZoom' },
      { role: 'zoomIn' },
      { role: 'zoomOut' },
      SEPARATOR,
      { role: 'togglefullscreen' },
    ],
  };

  const windowMenu: MenuItemConstructorOptions = {
    role: 'windowMenu',
    submenu: [
      { role: 'minimize' },
      { role: 'zoom' },
      SEPARATOR,
      { id: 'vivarium.library', label: 'Library', accelerator: 'CmdOrCtrl+Shift+L', click: () => handlers.showLibrary() },
      ...(mac ? [SEPARATOR, { role: 'front' } as const] : []),
    ],
  };

  const help: MenuItemConstructorOptions = {
    role: 'help',
    submenu: [
      { id: 'vivarium.library-folder', label: 'Show Library Folder', click: () => handlers.showLibraryFolder() },
      ...(mac ? [] : [SEPARATOR, { role: 'about', label: `About ${state.appName}` } as const]),
    ],
  };

  return [...appMenu, file, edit, vm, view, windowMenu, help];
}
