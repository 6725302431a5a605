/**
 * The Electron main process: windows, menu, dialogs and the app:// origin around the same engine
 * `vivarium serve` runs (main/server/engine-host.ts). Thin on purpose: every VM operation is the
 * contract's, called by the page over IPC; this file only decides what a window may do and what
 * quitting means.
 *
 * Electron comes in as a parameter (`ElectronApi`), so a test drives all of this with a fake and a
 * real engine; main.ts passes the real module.
 *
 * Security (design.md): every window is locked (context isolation, sandbox, no node, no webview),
 * may load only app://vivarium, can't open windows (our own VM windows and https links in the
 * user's browser are the only things window.open leads to), and gets only two permissions.
 */
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BaseWindow, BrowserWindow, MessageBoxOptions, WebContents, WebPreferences } from 'electron';
import { ErrorCode, VivariumError, assertNever } from '../common/errors';
import type { VmInfo } from '../common/models/vm-state';
import { readEngineInfo } from '../server/engine-host';
import type { HostEngineOptions, HostedEngine } from '../server/engine-host';
import { Layout, defaultHome } from '../services/paths';
import {
  APP_SCHEME,
  APP_SCHEME_PRIVILEGES,
  appPageUrl,
  classifyWindowOpen,
  createAppProtocolHandler,
  isAppOrigin,
  isAppUrl,
} from './app-protocol';
import { serveFileDialog, serveIpc } from './ipc-transport';
import { buildMenuTemplate, menuEventScript } from './menu';
import type { MenuAction } from './menu';
import { buildTrayMenu, getOpenAtLogin, loadSettings, saveSettings, setOpenAtLogin, trayTooltip } from './tray';
import type { AppSettings, TrayAction } from './tray';

/** The part of `typeof import('electron')` the app uses. */
export interface ElectronApi {
  readonly app: Electron.App;
  readonly BrowserWindow: typeof Electron.BrowserWindow;
  readonly Menu: typeof Electron.Menu;
  readonly dialog: Electron.Dialog;
  readonly protocol: Electron.Protocol;
  readonly session: typeof Electron.Session;
  readonly shell: Electron.Shell;
  readonly nativeTheme: Electron.NativeTheme;
  /** The tray / menu-bar icon; without it (tests that don't need one) there is no tray. */
  readonly Tray?: typeof Electron.Tray;
  readonly nativeImage?: typeof Electron.nativeImage;
}

export interface AppDeps {
  readonly env: NodeJS.ProcessEnv;
  /** The built renderer (out/renderer). */
  readonly rendererDir: string;
  /** The compiled preload script (out/main/app/preload.js). */
  readonly preloadPath: string;
  readonly hostEngine: (options: HostEngineOptions) => Promise<HostedEngine>;
  /** Default: process.platform. */
  readonly platform?: NodeJS.Platform;
  /** Default: stderr. */
  readonly log?: (line: string) => void;
  /** The process's arguments (a .vivarium file among them is opened); default none. */
  readonly argv?: readonly string[];
  /** The tray icon's PNG (main/app/tray.ts trayIconCandidates); null: an empty image. */
  readonly trayIcon?: string | null;
  /** The command that starts this app, for the Linux autostart entry; default process.execPath. */
  readonly launchCommand?: readonly string[];
  /** Default: os.homedir(). */
  readonly homeDir?: string;
}

export interface StartedApp {
  readonly hosted: HostedEngine;
  /** Opens the library window, or focuses it. */
  showLibrary(): BrowserWindow;
  /** Opens the VM's window, or focuses the one it already has. */
  showVm(id: string): BrowserWindow;
}

export interface AppController {
  /** The engine is up and the library window open; null when this instance quit instead (another
   *  instance has the lock, another engine owns the library, or the engine failed to start). */
  readonly started: Promise<StartedApp | null>;
  /** Quitting finished: IPC and the engine are closed (running VMs are left running). */
  readonly stopped: Promise<void>;
}

/** Exactly these, on every window. */
export function lockedWebPreferences(preload: string): WebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    spellcheck: false,
    navigateOnDragDrop: false,
    // Middle-click on a link must not try to open a window (window.open is denied anyway).
    disableBlinkFeatures: 'Auxclick',
  };
}

/**
 * Fullscreen (the VM display), writing to the clipboard, and Chromium's Local Network Access
 * permissions: an app:// page counts as a public origin, so Chromium asks ('local-network-access',
 * and 'loopback-network' for 127.0.0.1) before the page may open ws://127.0.0.1:PORT, the engine's
 * stream bridge that carries the Display and Serial consoles. Where the page may connect is still
 * fixed by the CSP's connect-src (the bridge's one origin: main/app/app-protocol.ts).
 */
const ALLOWED_PERMISSIONS: ReadonlySet<string> = new Set(['fullscreen', 'clipboard-sanitized-write', 'local-network-access', 'loopback-network']);

/** Whether a permission is granted: only those above, and only to our own app:// pages. */
export function permissionAllowed(permission: string, requestingOriginOrUrl: string): boolean {
  return ALLOWED_PERMISSIONS.has(permission) && isAppOrigin(requestingOriginOrUrl);
}

/**
 * Electron's userData folder for a library: one per library, so the single-instance lock (which
 * Electron keys on userData) allows one app per library, and two libraries (VIVARIUM_HOME) can be
 * open side by side. Beside the library, never inside it: `<appData>/Vivarium Desktop/<id>`, where
 * id is the first 16 hex digits of the SHA-256 of the library's absolute path.
 */
export function libraryUserDataDir(appData: string, libraryHome: string): string {
  const id = createHash('sha256').update(path.resolve(libraryHome)).digest('hex').slice(0, 16);
  return path.join(appData, 'Vivarium Desktop', id);
}

/** The extension of Vivarium's VM file (one exported VM; electron-builder.yml fileAssociations). */
export const VM_FILE_EXTENSION = '.vivarium';

/** The VM files among command-line arguments (a double-click on Linux/Windows passes the path):
 *  absolute paths ending in .vivarium, never a switch. A launcher expanding the desktop entry's %U
 *  may pass a local file as a file:// URL instead (Desktop Entry spec, "The Exec key"): taken as its
 *  path; other URLs are not files and are ignored. */
export function vmFileArgs(argv: readonly string[]): string[] {
  return argv.flatMap((a) => {
    let p = a;
    if (/^file:/i.test(a)) {
      try {
        p = fileURLToPath(a);
      } catch {
        return [];
      }
    }
    return !p.startsWith('-') && path.isAbsolute(p) && p.toLowerCase().endsWith(VM_FILE_EXTENSION) ? [p] : [];
  });
}

/** A renderer that died gets reloaded this many times in RENDERER_CRASH_WINDOW_MS; then the window
 *  stays as it is and the user is told (a page that crashes at once would otherwise loop forever). */
export const RENDERER_CRASH_RELOADS = 3;
export const RENDERER_CRASH_WINDOW_MS = 60_000;

export const QUIT_BUTTONS = ['Keep Running in Background', 'Shut Down All', 'Cancel'] as const;
/** How long each VM gets to shut down after the ACPI request when the user picks Shut Down All. */
export const SHUT_DOWN_ALL_TIMEOUT_SEC = 30;

/** 'quit' leaves running VMs running (they are detached; the next engine reattaches). */
export type QuitDecision = 'quit' | 'shut-down-all' | 'cancel';

/** What quitting does, given how many VMs run and which button of the prompt was chosen (null when
 *  there was no prompt). Escape answers with cancelId, 2. */
export function quitDecision(runningCount: number, buttonIndex: number | null): QuitDecision {
  if (runningCount <= 0) return 'quit';
  switch (buttonIndex) {
    case 0:
      return 'quit';
    case 1:
      return 'shut-down-all';
    default:
      return 'cancel';
  }
}

export function quitPromptOptions(runningCount: number): MessageBoxOptions {
  return {
    type: 'question',
    title: 'Quit Vivarium',
    message: runningCount === 1 ? '1 virtual machine is running.' : `${runningCount} virtual machines are running.`,
    detail:
      'They can keep running in the background: open Vivarium again, or use the vivarium command, to get back to them. ' +
      `Or shut them down now: each gets ${SHUT_DOWN_ALL_TIMEOUT_SEC} seconds to shut down cleanly before it is turned off.`,
    buttons: [...QUIT_BUTTONS],
    defaultId: 0,
    cancelId: 2,
    noLink: true,
  };
}

/** VMs whose QEMU process runs, as the quit prompt counts them. */
export function runningVms(vms: readonly VmInfo[]): readonly VmInfo[] {
  return vms.filter((vm) => vm.state === 'running' || vm.state === 'paused');
}

/** Whether closing the last window quits the app: not on macOS, where apps stay in the Dock. */
export function lastWindowQuits(platform: NodeJS.Platform): boolean {
  return platform !== 'darwin';
}

/** The page and preload, relative to the compiled main.js (out/main/app/main.js). */
export function appPaths(compiledDir: string): { readonly rendererDir: string; readonly preloadPath: string } {
  return { rendererDir: path.resolve(compiledDir, '..', '..', 'renderer'), preloadPath: path.join(compiledDir, 'preload.js') };
}

const LIBRARY_SIZE = { width: 1100, height: 720, minWidth: 720, minHeight: 480 } as const;
const VM_SIZE = { width: 1024, height: 800, minWidth: 640, minHeight: 480 } as const;

/**
 *  starting → running ⇄ asking → (stopping →) quitting
 *  starting → quitting (lock lost, engine busy or broken)
 */
type Phase = 'starting' | 'running' | 'asking' | 'stopping' | 'quitting';

export function startApp(electron: ElectronApi, deps: AppDeps): AppController {
  const { app, BrowserWindow, Menu, dialog, protocol, shell, nativeTheme } = electron;
  const platform = deps.platform ?? process.platform;
  const log = deps.log ?? ((line: string) => process.stderr.write(`vivarium: ${line}\n`));

  // Both must happen before 'ready'.
  protocol.registerSchemesAsPrivileged([APP_SCHEME_PRIVILEGES]);
  app.enableSandbox();

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));

  // Before the lock: Electron keys the single-instance lock on userData, so one app per library.
  app.setPath('userData', libraryUserDataDir(app.getPath('appData'), defaultHome(deps.env, platform)));
  if (!app.requestSingleInstanceLock()) {
    // The first instance got 'second-instance' and shows its window.
    app.quit();
    resolveStopped();
    return { started: Promise.resolve(null), stopped };
  }

  let phase: Phase = 'starting';
  let hosted: HostedEngine | null = null;
  let ipc: { dispose(): void } | null = null;
  let fileDialog: { dispose(): void } | null = null;
  let engineClosed = false;
  let library: BrowserWindow | null = null;
  const vmWindows = new Map<string, BrowserWindow>();
  /** Ids of VMs whose QEMU runs, kept current from the engine's events, so that a quit with nothing
   *  running goes through at once (before-quit must decide synchronously). */
  const running = new Set<string>();
  /** VM files opened before the engine was up (macOS sends open-file before ready). */
  const pendingFiles: string[] = [];
  let runningSub: { dispose(): void } | null = null;
  /** Every VM as last seen, for the tray menu. */
  const known = new Map<string, VmInfo>();
  let settings: AppSettings = loadSettings(app.getPath('userData'));
  let tray: Electron.Tray | null = null;
  let trayRefresh: ReturnType<typeof setTimeout> | null = null;
  const loginCtx = {
    platform,
    env: deps.env,
    homeDir: deps.homeDir ?? os.homedir(),
    command: deps.launchCommand ?? [process.execPath],
  };

  const focus = (win: BrowserWindow): void => {
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
  };

  const harden = (wc: WebContents): void => {
    wc.setWindowOpenHandler((details) => {
      const target = classifyWindowOpen(details.url);
      switch (target.kind) {
        case 'vm':
          showVm(target.id);
          break;
        case 'external':
          shell.openExternal(target.url).catch((e: unknown) => log(`could not open ${target.url}: ${String(e)}`));
          break;
        case 'deny':
          log(`refused to open a window for ${details.url.slice(0, 200)}`);
          break;
        default:
          assertNever(target, 'window.open target');
      }
      return { action: 'deny' };
    });
    const guard = (e: { readonly url: string; preventDefault(): void }): void => {
      if (isAppUrl(e.url)) return;
      e.preventDefault();
      log(`refused to navigate to ${e.url.slice(0, 200)}`);
    };
    wc.on('will-navigate', (e) => guard(e));
    wc.on('will-redirect', (e) => guard(e));
    wc.on('will-attach-webview', (e) => e.preventDefault());
    // A crashed or killed renderer leaves a blank window: load the page again (a few times).
    const crashes: number[] = [];
    wc.on('render-process-gone', (_e, details) => {
      if (details.reason === 'clean-exit' || wc.isDestroyed()) return;
      const now = Date.now();
      while (crashes.length > 0 && now - crashes[0]! > RENDERER_CRASH_WINDOW_MS) crashes.shift();
      crashes.push(now);
      if (crashes.length > RENDERER_CRASH_RELOADS) {
        log(`the window's page stopped again (${details.reason}); not reloading it`);
        dialog.showErrorBox(
          'Vivarium',
          `This window stopped working ${crashes.length} times in a minute (${details.reason}), so it was not reloaded again. ` +
            'Close it and open it again from the Window menu; your virtual machines are not affected.',
        );
        return;
      }
      log(`the window's page stopped (${details.reason}, exit code ${details.exitCode}); reloading it`);
      wc.reload();
    });
  };

  const createWindow = (url: string, size: typeof LIBRARY_SIZE | typeof VM_SIZE): BrowserWindow => {
    // electronegativity flags this constructor (context isolation, sandbox, auxclick) because it
    // cannot see into lockedWebPreferences(); answered in scripts/electronegativity.mjs.
    const win = new BrowserWindow({
      ...size,
      title: 'Vivarium',
      show: true,
      backgroundColor: nativeTheme.shouldUseDarkColors ? '#1e1e1e' : '#ffffff',
      webPreferences: lockedWebPreferences(deps.preloadPath),
    });
    harden(win.webContents);
    win.on('close', (e) => onWindowClose(e, win));
    win.loadURL(url).catch((e: unknown) => log(`loading ${url}: ${String(e)}`));
    return win;
  };

  const live = (win: BrowserWindow | null): win is BrowserWindow => win !== null && !win.isDestroyed();

  function showLibrary(): BrowserWindow {
    if (live(library)) {
      focus(library);
      return library;
    }
    const win = createWindow(appPageUrl({ kind: 'library' }), LIBRARY_SIZE);
    library = win;
    win.on('closed', () => {
      if (library === win) library = null;
    });
    return win;
  }

  function showVm(id: string): BrowserWindow {
    const known = vmWindows.get(id) ?? null;
    if (live(known)) {
      focus(known);
      return known;
    }
    const win = createWindow(appPageUrl({ kind: 'vm', id }), VM_SIZE);
    vmWindows.set(id, win);
    win.on('closed', () => {
      if (vmWindows.get(id) === win) vmWindows.delete(id);
    });
    return win;
  }

  const ourWindow = (w: BaseWindow | undefined): BrowserWindow | null => {
    const candidate = w ?? BrowserWindow.getFocusedWindow() ?? undefined;
    if (candidate === undefined) return null;
    const all = [library, ...vmWindows.values()];
    return all.find((x): x is BrowserWindow => live(x) && x === candidate) ?? null;
  };

  const dispatch = (win: BrowserWindow, action: MenuAction): void => {
    win.webContents.executeJavaScript(menuEventScript(action)).catch((e: unknown) => log(`menu ${action}: ${String(e)}`));
  };

  const onMenuAction = (action: MenuAction, focused: BaseWindow | undefined): void => {
    if (action === 'new-vm' || action === 'new-sandbox') {
      // The wizard lives in the library window, whichever window is in front.
      const existed = live(library);
      const win = showLibrary();
      if (existed && !win.webContents.isLoading()) dispatch(win, action);
      else win.webContents.once('did-finish-load', () => dispatch(win, action));
      return;
    }
    const win = ourWindow(focused);
    if (win) dispatch(win, action);
  };

  const runningNow = async (): Promise<readonly VmInfo[]> => {
    if (!hosted) return [];
    try {
      return runningVms(await hosted.engine.services.vms.list());
    } catch (e) {
      // Quitting leaves VMs running anyway, so not knowing is no reason to keep the app open.
      log(`could not list VMs before quitting: ${String(e)}`);
      return [];
    }
  };

  const quitNow = (): void => {
    phase = 'quitting';
    app.quit();
  };

  async function confirmQuit(parent: BrowserWindow | null): Promise<void> {
    phase = 'asking';
    const running = await runningNow();
    let button: number | null = null;
    if (running.length > 0) {
      const options = quitPromptOptions(running.length);
      const answer = live(parent) ? await dialog.showMessageBox(parent, options) : await dialog.showMessageBox(options);
      button = answer.response;
    }
    const decision = quitDecision(running.length, button);
    switch (decision) {
      case 'cancel':
        phase = 'running';
        return;
      case 'quit':
        return quitNow();
      case 'shut-down-all': {
        phase = 'stopping';
        const vms = hosted!.engine.services.vms;
        const results = await Promise.allSettled(running.map((vm) => vms.stop(vm.id, { timeoutSec: SHUT_DOWN_ALL_TIMEOUT_SEC })));
        results.forEach((r, i) => {
          if (r.status === 'rejected') log(`could not shut down ${running[i]!.name}: ${String(r.reason)}`);
        });
        return quitNow();
      }
      default:
        assertNever(decision, 'quit decision');
    }
  }

  const askToQuit = (parent: BrowserWindow | null): void => {
    confirmQuit(parent).catch((e: unknown) => {
      log(`quit: ${String(e)}`);
      phase = 'running';
    });
  };

  function onWindowClose(e: { preventDefault(): void }, win: BrowserWindow): void {
    const others = BrowserWindow.getAllWindows().filter((w) => w !== win && !w.isDestroyed());
    if (others.length > 0 || !lastWindowQuits(platform)) return;
    // The last window: closing it is quitting, and the prompt must come while it can still stay.
    // Nothing runs, or the user keeps Vivarium in the tray: let it close ('window-all-closed' then
    // quits, or not).
    if (phase === 'running' && (running.size === 0 || keepsRunning())) return;
    if (phase === 'running') {
      e.preventDefault();
      askToQuit(win);
    } else if (phase === 'asking' || phase === 'stopping') {
      e.preventDefault();
    }
  }

  app.on('second-instance', (_e, argv) => {
    const files = vmFileArgs(Array.isArray(argv) ? argv : []);
    if (files.length > 0) return openVmFiles(files);
    if (phase === 'running') showLibrary();
  });

  // macOS: a double-clicked .vivarium file (also before 'ready', when it launched the app).
  app.on('open-file', (e, file) => {
    e.preventDefault();
    openVmFiles([file]);
  });

  function openVmFiles(files: readonly string[]): void {
    if (phase !== 'running' || !hosted) {
      pendingFiles.push(...files);
      return;
    }
    for (const file of files) {
      importVmFile(file).catch((err: unknown) => log(`opening ${file}: ${String(err)}`));
    }
  }

  /** A double-clicked `.vivarium` file is imported (`vivarium import FILE`) and its VM's window
   *  opens; a partial or corrupt file is refused with the engine's sentence, and nothing is left. */
  async function importVmFile(file: string): Promise<void> {
    try {
      const vm = await importUnderFreeName(file);
      showVm(vm.id);
      // What the file asked for and was not taken (host files, shared folders, extra QEMU arguments).
      if (vm.notices?.length) void dialog.showMessageBox({ type: 'warning', message: `“${vm.name}” was imported without some of its settings`, detail: vm.notices.join('\n\n') });
    } catch (err) {
      showLibrary();
      dialog.showErrorBox(`Could not import ${path.basename(file)}`, err instanceof VivariumError ? err.message : String(err));
    }
  }

  /** A double-click gives no chance to type a name: when the export's name is taken (a VM opened
   *  twice, or exported from this library), it is imported as "NAME (2)", "NAME (3)", … */
  async function importUnderFreeName(file: string): Promise<VmInfo> {
    const snapshots = hosted!.engine.services.snapshots;
    try {
      return await snapshots.importVm(file, {});
    } catch (err) {
      const taken = err instanceof VivariumError && err.remedy?.kind === 'rename' ? err.remedy.taken : null;
      if (taken === null) throw err;
      for (let n = 2; ; n++) {
        try {
          return await snapshots.importVm(file, { name: `${taken} (${n})` });
        } catch (again) {
          if (n >= 50 || !(again instanceof VivariumError && again.remedy?.kind === 'rename')) throw again;
        }
      }
    }
  }

  app.on('activate', () => {
    if (phase === 'running' && BrowserWindow.getAllWindows().length === 0) showLibrary();
  });

  app.on('window-all-closed', () => {
    // Listening at all keeps Electron from quitting on its own (macOS keeps running, and so does
    // an app the user keeps in the tray).
    if (phase === 'running' && lastWindowQuits(platform) && !keepsRunning()) app.quit();
  });

  /** The user chose "Keep Running When Windows Close", and there is a tray to come back through. */
  function keepsRunning(): boolean {
    return settings.runInBackground && tray !== null;
  }

  function refreshTray(): void {
    if (!tray || trayRefresh) return;
    // Changes come in bursts (a start is several updates): one menu per burst.
    trayRefresh = setTimeout(() => {
      trayRefresh = null;
      if (!tray || tray.isDestroyed()) return;
      const vms = [...known.values()];
      tray.setToolTip(trayTooltip(vms));
      tray.setContextMenu(
        Menu.buildFromTemplate(buildTrayMenu({ vms, settings, openAtLogin: getOpenAtLogin(app, loginCtx) }, (a) => onTrayAction(a))),
      );
    }, 50);
  }

  function onTrayAction(a: TrayAction): void {
    const vms = hosted?.engine.services.vms;
    const report = (what: string) => (err: unknown) => {
      log(`${what}: ${String(err)}`);
      dialog.showErrorBox('Vivarium', err instanceof VivariumError ? err.message : `${what}: ${String(err)}`);
    };
    switch (a.kind) {
      case 'open-library':
        showLibrary();
        return;
      case 'open-vm':
        showVm(a.id);
        return;
      case 'start':
        vms?.start(a.id, {}).catch(report('Could not start the virtual machine'));
        return;
      case 'shutdown':
        vms?.stop(a.id, {}).catch(report('Could not shut down the virtual machine'));
        return;
      case 'force-off':
        vms?.stop(a.id, { force: true }).catch(report('Could not turn off the virtual machine'));
        return;
      case 'run-in-background':
        settings = { ...settings, runInBackground: a.enabled };
        try {
          saveSettings(app.getPath('userData'), settings);
        } catch (err) {
          log(`could not save settings: ${String(err)}`);
        }
        refreshTray();
        return;
      case 'open-at-login':
        try {
          setOpenAtLogin(app, loginCtx, a.enabled);
        } catch (err) {
          report('Could not change "Open Vivarium at Login"')(err);
        }
        refreshTray();
        return;
      case 'quit':
        app.quit();
        return;
      default:
        assertNever(a, 'tray action');
    }
  }

  app.on('before-quit', (e) => {
    // Nothing runs: quit now, without a round trip (a refused quit breaks logout and updates).
    if (phase === 'running' && running.size === 0) {
      phase = 'quitting';
      return;
    }
    if (phase === 'running') {
      e.preventDefault();
      askToQuit(null);
    } else if (phase === 'asking' || phase === 'stopping') {
      e.preventDefault();
    }
  });

  let closing: Promise<void> | null = null;
  app.on('will-quit', (e) => {
    if (engineClosed || (!hosted && !ipc)) return resolveStopped();
    e.preventDefault();
    closing ??= (async () => {
      if (trayRefresh) clearTimeout(trayRefresh);
      tray?.destroy();
      tray = null;
      runningSub?.dispose();
      ipc?.dispose();
      ipc = null;
      fileDialog?.dispose();
      try {
        await hosted?.close();
      } catch (err) {
        log(`closing the engine: ${String(err)}`);
      }
      engineClosed = true;
      app.quit();
    })();
  });

  const started = app.whenReady().then(async (): Promise<StartedApp | null> => {
    const ses = electron.session.defaultSession;
    ses.setPermissionRequestHandler((_wc, permission, callback, details) => callback(permissionAllowed(permission, details.requestingUrl)));
    ses.setPermissionCheckHandler((_wc, permission, requestingOrigin) => permissionAllowed(permission, requestingOrigin));

    let h: HostedEngine;
    try {
      // The app starts the VMs marked "start automatically" (vivarium edit NAME --autostart).
      h = await deps.hostEngine({ env: deps.env, http: { host: '127.0.0.1', port: 0, staticDir: null }, log, autostart: true, systemTerminal: true });
    } catch (err) {
      await reportStartFailure(err);
      quitNow();
      return null;
    }
    if (phase !== 'starting') {
      // Quit while the engine was starting.
      await h.close();
      return null;
    }
    hosted = h;
    protocol.handle(APP_SCHEME, createAppProtocolHandler({ rendererDir: deps.rendererDir, wsOrigins: [wsOrigin(h.origin)], log }));
    ipc = serveIpc(h.rpcServer, {
      isTrustedSender: (_frame, url) => isAppUrl(url),
      onRejected: (reason, url) => log(`ipc: ${reason} (${url.slice(0, 200)})`),
    });
    // The New VM wizard's Browse: the system's Open dialog, over the app's window.
    fileDialog = serveFileDialog({
      isTrustedSender: (_frame, url) => isAppUrl(url),
      showOpenDialog: (wc, o) => {
        const win = BrowserWindow.fromWebContents(wc);
        return win ? dialog.showOpenDialog(win, o) : dialog.showOpenDialog(o);
      },
      onRejected: (reason, url) => log(`ipc: ${reason} (${url.slice(0, 200)})`),
    });
    Menu.setApplicationMenu(
      Menu.buildFromTemplate(
        buildMenuTemplate(
          { platform, appName: app.name, dev: !app.isPackaged },
          {
            action: onMenuAction,
            showLibrary: () => void showLibrary(),
            showLibraryFolder: () => {
              shell.openPath(h.engine.layout.home).then(
                (problem) => problem && log(`could not open the library folder: ${problem}`),
                (err: unknown) => log(`could not open the library folder: ${String(err)}`),
              );
            },
          },
        ),
      ),
    );
    const track = (vm: VmInfo): void => {
      if (vm.state === 'running' || vm.state === 'paused' || vm.state === 'starting' || vm.state === 'stopping') running.add(vm.id);
      else running.delete(vm.id);
    };
    runningSub = h.engine.services.vms.onDidChange((change) => {
      if (change.kind === 'removed') {
        running.delete(change.id);
        known.delete(change.id);
      } else {
        track(change.vm);
        known.set(change.vm.id, change.vm);
      }
      refreshTray();
    });
    try {
      for (const vm of await h.engine.services.vms.list()) {
        track(vm);
        known.set(vm.id, vm);
      }
    } catch (err) {
      log(`could not list VMs: ${String(err)}`);
    }
    if (electron.Tray && electron.nativeImage) {
      const image = deps.trayIcon ? electron.nativeImage.createFromPath(deps.trayIcon) : electron.nativeImage.createEmpty();
      if (platform === 'darwin') image.setTemplateImage(false);
      try {
        tray = new electron.Tray(image);
        tray.on('click', () => void showLibrary());
        refreshTray();
      } catch (err) {
        // A desktop without a status area: no tray, and so "keep running" stays off (keepsRunning).
        log(`no tray icon: ${String(err)}`);
        tray = null;
      }
    }
    phase = 'running';
    showLibrary();
    const initialFiles = [...pendingFiles.splice(0), ...vmFileArgs(deps.argv ?? [])];
    if (initialFiles.length > 0) openVmFiles(initialFiles);
    return { hosted: h, showLibrary, showVm };
  });

  async function reportStartFailure(err: unknown): Promise<void> {
    log(`engine did not start: ${String(err)}`);
    if (err instanceof VivariumError && err.code === ErrorCode.Busy) {
      await dialog.showMessageBox({
        type: 'error',
        title: 'Vivarium',
        message: 'Another Vivarium engine is already running for this library.',
        detail: busyDetail(err, deps.env),
        buttons: ['Quit'],
        noLink: true,
      });
      return;
    }
    const message =
      err instanceof VivariumError ? err.message : `Internal error: ${err instanceof Error ? err.message : String(err)}. Please report this as a bug.`;
    dialog.showErrorBox('Vivarium could not start', message);
  }

  return { started, stopped };
}

/** `http://127.0.0.1:PORT` → `ws://127.0.0.1:PORT`: where the pages open console streams. */
function wsOrigin(httpOrigin: string): string {
  return httpOrigin.replace(/^http:/, 'ws:');
}

function busyDetail(err: VivariumError, env: NodeJS.ProcessEnv): string {
  const info = readEngineInfo(Layout.fromEnv(env));
  const data = (err.data ?? {}) as { readonly pid?: unknown };
  const pid = info?.pid ?? (typeof data.pid === 'number' ? data.pid : null);
  const who = `It is probably \`vivarium serve\`${pid !== null ? ` (process ${pid}` : ''}${info ? `, ${info.origin}` : ''}${pid !== null ? ')' : ''}.`;
  return (
    `${who} Only one engine can manage a library at a time. ` +
    'Keep using that one through the address it printed, or stop it (Ctrl+C in its terminal) and open Vivarium again. ' +
    'Your virtual machines keep running either way.'
  );
}
