/**
 * The Electron main process against a fake Electron and a REAL engine (hostEngine on a private
 * library, real QEMU under TCG for the quit prompt).
 *
 * The Electron binary can't be installed here, so `electron` is a stand-in with the members the app
 * uses, behaving like Electron where it matters: win.close() emits a preventable 'close', app.quit()
 * runs before-quit → close every window → will-quit → quit, and 'window-all-closed' fires only when
 * the last window closes outside a quit. ipcMain (imported by ipc-transport.ts) is an EventEmitter.
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BrowserWindowConstructorOptions, MenuItemConstructorOptions } from 'electron';
import { SERVICE_NAMES } from '../common/contract';
import type { ServiceName } from '../common/contract';
import { ErrorCode } from '../common/errors';
import { IPC_CHANNEL } from '../common/rpc/protocol';
import { hostEngine } from '../server/engine-host';
import type { HostedEngine } from '../server/engine-host';
import { createEngine } from '../services/engine';
import { testGuest } from '../test-support/guest';
import { makeTestHome } from '../test-support/home';
import type { TestHome } from '../test-support/home';
import { isAlive } from '../test-support/qemu-procs';
import type { AppRequest } from './app-protocol';
import type { AppController, ElectronApi, StartedApp } from './electron-app';

vi.mock('electron', async () => {
  const events = await import('node:events');
  return { ipcMain: new events.EventEmitter() };
});

const ipcMain = (await import('electron')).ipcMain as unknown as EventEmitter;
const { appPaths, libraryUserDataDir, lockedWebPreferences, permissionAllowed, quitDecision, quitPromptOptions, startApp, vmFileArgs } = await import('./electron-app');
const { APP_SCHEME_PRIVILEGES, classifyWindowOpen, createAppProtocolHandler } = await import('./app-protocol');
const { MENU_ACTIONS, MENU_EVENT, buildMenuTemplate, menuEventScript } = await import('./menu');

const VM_ID = '0b6c9f5e-3c1d-4e8f-9a2b-7c6d5e4f3a21';

// ---- the fake -------------------------------------------------------------------------------------

interface FakeEvent {
  defaultPrevented: boolean;
  preventDefault(): void;
}
function ev<T extends object>(params: T): T & FakeEvent {
  return Object.assign({ defaultPrevented: false, preventDefault(this: FakeEvent) { this.defaultPrevented = true; } }, params);
}

class FakeFrame {
  parent: FakeFrame | null = null;
  readonly sent: Array<[string, string, string]> = [];
  constructor(
    readonly processId: number,
    readonly routingId: number,
    public url: string,
  ) {}
  isDestroyed(): boolean {
    return false;
  }
  send(channel: string, session: string, json: string): void {
    this.sent.push([channel, session, json]);
  }
}

let nextWebContentsId = 1;
class FakeWebContents extends EventEmitter {
  readonly id = nextWebContentsId++;
  readonly mainFrame = new FakeFrame(this.id, 1, '');
  readonly scripts: string[] = [];
  loading = true;
  reloads = 0;
  private openHandler: ((d: { url: string }) => { action: string }) | null = null;
  private destroyed = false;
  setWindowOpenHandler(h: (d: { url: string }) => { action: string }): void {
    this.openHandler = h;
  }
  executeJavaScript(code: string): Promise<unknown> {
    this.scripts.push(code);
    return Promise.resolve(undefined);
  }
  isLoading(): boolean {
    return this.loading;
  }
  reload(): void {
    this.reloads++;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('destroyed');
  }
  // What a page can do:
  windowOpen(url: string): { action: string } {
    return this.openHandler!({ url });
  }
  /** Returns whether the navigation went ahead. */
  navigate(kind: 'will-navigate' | 'will-redirect', url: string): boolean {
    const e = ev({ url, isMainFrame: true, isSameDocument: false });
    this.emit(kind, e, url);
    return !e.defaultPrevented;
  }
  /** Sends one RPC message from `frame` (default: the main frame); returns the replies to `session`. */
  rpc(msg: unknown, frame: FakeFrame = this.mainFrame, session = 's1'): void {
    ipcMain.emit(IPC_CHANNEL, { sender: this, senderFrame: frame }, session, JSON.stringify(msg));
  }
  replies(session = 's1'): Array<{ id: number; ok: boolean; v?: unknown; e?: { code: string; message: string } }> {
    return this.mainFrame.sent.filter(([, s]) => s === session).map(([, , json]) => JSON.parse(json) as never);
  }
}

function fakeElectron(answers: { prompt: (options: Electron.MessageBoxOptions) => number; tray?: boolean }) {
  const order: string[] = [];
  const windows: FakeWindow[] = [];
  let focused: FakeWindow | null = null;
  const setFocused = (w: FakeWindow | null): void => void (focused = w);
  let quitInProgress = false;

  class FakeWindow extends EventEmitter {
    readonly webContents = new FakeWebContents();
    destroyed = false;
    focusCount = 0;
    constructor(readonly options: BrowserWindowConstructorOptions) {
      super();
      windows.push(this);
      setFocused(this);
    }
    static getAllWindows(): FakeWindow[] {
      return [...windows];
    }
    static getFocusedWindow(): FakeWindow | null {
      return focused;
    }
    get url(): string {
      return this.webContents.mainFrame.url;
    }
    loadURL(url: string): Promise<void> {
      this.webContents.mainFrame.url = url;
      this.webContents.loading = false;
      queueMicrotask(() => this.webContents.emit('did-finish-load'));
      return Promise.resolve();
    }
    isDestroyed(): boolean {
      return this.destroyed;
    }
    isMinimized(): boolean {
      return false;
    }
    restore(): void {}
    show(): void {}
    focus(): void {
      setFocused(this);
      this.focusCount++;
    }
    close(): void {
      if (this.destroyed) return;
      const e = ev({});
      this.emit('close', e);
      if (!e.defaultPrevented) this.destroy();
    }
    destroy(): void {
      if (this.destroyed) return;
      this.destroyed = true;
      windows.splice(windows.indexOf(this), 1);
      if (focused === this) focused = windows.at(-1) ?? null;
      this.emit('closed');
      this.webContents.destroy();
      if (windows.length === 0 && !quitInProgress) app.emit('window-all-closed');
    }
  }

  class FakeApp extends EventEmitter {
    lock = true;
    isPackaged = false;
    name = 'Vivarium';
    quitCalls = 0;
    refusedQuits = 0;
    quitted = false;
    readonly paths = new Map<string, string>([['appData', '/home/u/.config']]);
    loginItem = { openAtLogin: false };
    getLoginItemSettings(): { openAtLogin: boolean } {
      return { ...this.loginItem };
    }
    setLoginItemSettings(s: { openAtLogin: boolean }): void {
      this.loginItem = { openAtLogin: s.openAtLogin };
    }
    getPath(name: string): string {
      return this.paths.get(name) ?? `/fake/${name}`;
    }
    setPath(name: string, value: string): void {
      order.push(`setPath:${name}`);
      this.paths.set(name, value);
    }
    requestSingleInstanceLock(): boolean {
      order.push('requestSingleInstanceLock');
      return this.lock;
    }
    enableSandbox(): void {
      order.push('enableSandbox');
    }
    whenReady(): Promise<void> {
      order.push('whenReady');
      return Promise.resolve();
    }
    quit(): void {
      this.quitCalls++;
      const bq = ev({});
      this.emit('before-quit', bq);
      if (bq.defaultPrevented) {
        this.refusedQuits++;
        return;
      }
      quitInProgress = true;
      for (const w of [...windows]) w.close();
      quitInProgress = false;
      if (windows.length > 0) return;
      const wq = ev({});
      this.emit('will-quit', wq);
      if (wq.defaultPrevented) return;
      this.quitted = true;
      this.emit('quit');
    }
  }
  const app = new FakeApp();

  const prompts: Array<{ parent: FakeWindow | null; options: Electron.MessageBoxOptions }> = [];
  const errorBoxes: Array<[string, string]> = [];
  const dialog = {
    showMessageBox(a: FakeWindow | Electron.MessageBoxOptions, b?: Electron.MessageBoxOptions) {
      const [parent, options] = b ? [a as FakeWindow, b] : [null, a as Electron.MessageBoxOptions];
      prompts.push({ parent, options });
      return new Promise((resolve) => setTimeout(() => resolve({ response: answers.prompt(options), checkboxChecked: false }), 5));
    },
    showErrorBox(title: string, content: string) {
      errorBoxes.push([title, content]);
    },
  };

  const schemes: unknown[] = [];
  const handlers = new Map<string, (r: AppRequest) => Promise<Response>>();
  const protocol = {
    registerSchemesAsPrivileged(s: unknown[]) {
      order.push('registerSchemesAsPrivileged');
      schemes.push(...s);
    },
    handle(scheme: string, h: (r: AppRequest) => Promise<Response>) {
      handlers.set(scheme, h);
    },
  };

  const permissions: {
    request: ((wc: unknown, p: string, cb: (ok: boolean) => void, d: { requestingUrl: string }) => void) | null;
    check: ((wc: unknown, p: string, origin: string) => boolean) | null;
  } = { request: null, check: null };
  const session = {
    defaultSession: {
      setPermissionRequestHandler: (h: typeof permissions.request) => void (permissions.request = h),
      setPermissionCheckHandler: (h: typeof permissions.check) => void (permissions.check = h),
    },
  };

  const external: string[] = [];
  const shell = {
    openExternal: (url: string) => (external.push(url), Promise.resolve()),
    openPath: () => Promise.resolve(''),
  };

  let menu: MenuItemConstructorOptions[] | null = null;
  const Menu = {
    buildFromTemplate: (t: MenuItemConstructorOptions[]) => t,
    setApplicationMenu: (m: MenuItemConstructorOptions[]) => void (menu = m),
  };

  const trays: FakeTray[] = [];
  class FakeTray extends EventEmitter {
    menu: MenuItemConstructorOptions[] | null = null;
    tooltip = '';
    destroyed = false;
    constructor(readonly image: unknown) {
      super();
      trays.push(this);
    }
    setContextMenu(m: MenuItemConstructorOptions[]): void {
      this.menu = m;
    }
    setToolTip(t: string): void {
      this.tooltip = t;
    }
    isDestroyed(): boolean {
      return this.destroyed;
    }
    destroy(): void {
      this.destroyed = true;
    }
  }
  const nativeImage = {
    createFromPath: (p: string) => ({ path: p, setTemplateImage: () => {} }),
    createEmpty: () => ({ path: null, setTemplateImage: () => {} }),
  };

  const api = {
    app,
    BrowserWindow: FakeWindow,
    Menu,
    dialog,
    protocol,
    session,
    shell,
    nativeTheme: { shouldUseDarkColors: false },
    ...(answers.tray ? { Tray: FakeTray, nativeImage } : {}),
  };
  return {
    api: api as unknown as ElectronApi,
    app,
    windows: () => FakeWindow.getAllWindows(),
    order,
    prompts,
    errorBoxes,
    schemes,
    handlers,
    permissions,
    external,
    menu: () => menu,
    trays,
  };
}
type Fake = ReturnType<typeof fakeElectron>;
type FakeWindow = ReturnType<Fake['windows']>[number];

// ---- harness --------------------------------------------------------------------------------------

interface Launched {
  readonly fake: Fake;
  readonly controller: AppController;
  readonly started: StartedApp;
  readonly logs: string[];
  /** The button the next quit prompt answers with. */
  answer: number;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function newHome(): TestHome {
  const t = makeTestHome();
  cleanups.push(() => t.cleanup());
  return t;
}

/** A renderer build: index.html and an asset, plus a file beside it that must stay unreachable. */
function rendererBuild(): string {
  const dir = tempDir('viv-renderer-');
  const build = path.join(dir, 'renderer');
  fs.mkdirSync(path.join(build, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(build, 'index.html'), '<!doctype html><title>Vivarium</title>');
  fs.writeFileSync(path.join(build, 'assets', 'app.js'), 'console.log(1)');
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'secret');
  fs.symlinkSync(path.join(dir, 'secret.txt'), path.join(build, 'assets', 'leak.js'));
  return build;
}

async function launch(
  t: TestHome,
  o: { platform?: NodeJS.Platform; argv?: string[]; tray?: boolean; homeDir?: string; userData?: string } = {},
): Promise<Launched> {
  const logs: string[] = [];
  let answer = 2;
  const fake = fakeElectron({ prompt: () => answer, tray: o.tray });
  if (o.userData) fake.app.paths.set('appData', o.userData);
  const controller = startApp(fake.api, {
    env: t.env,
    rendererDir: rendererBuild(),
    preloadPath: '/opt/vivarium/preload.js',
    hostEngine,
    platform: o.platform ?? 'linux',
    log: (line) => logs.push(line),
    argv: o.argv,
    homeDir: o.homeDir,
    launchCommand: ['/opt/Vivarium/vivarium'],
    trayIcon: '/opt/Vivarium/resources/tray.png',
  });
  const started = await controller.started;
  if (!started) throw new Error(`the app did not start: ${logs.join('\n')}`);
  cleanups.push(async () => {
    // Whatever the test left: quit keeping VMs (the home's cleanup kills them), then make sure.
    answer = 0;
    if (!fake.app.quitted) fake.app.quit();
    await Promise.race([controller.stopped, new Promise((r) => setTimeout(r, 5000))]);
    await started.hosted.close();
  });
  return {
    fake,
    controller,
    started,
    logs,
    get answer() {
      return answer;
    },
    set answer(n: number) {
      answer = n;
    },
  };
}

function findItem(menu: MenuItemConstructorOptions[], id: string): MenuItemConstructorOptions | undefined {
  for (const i of menu) {
    if (i.id === id) return i;
    const sub = Array.isArray(i.submenu) ? findItem(i.submenu, id) : undefined;
    if (sub) return sub;
  }
  return undefined;
}

function click(item: MenuItemConstructorOptions): void {
  (item.click as (i: unknown, w: unknown, e: unknown) => void)({}, undefined, {});
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const engineSocketOf = (h: HostedEngine): string => h.engine.layout.engineSocket;

// ---- the app --------------------------------------------------------------------------------------

describe('startApp with a fake Electron and a real engine', () => {
  it('registers app:// as privileged before ready, locks the library window and serves the contract over IPC', async () => {
    const t = newHome();
    const l = await launch(t);
    const { fake } = l;

    expect(fake.schemes).toEqual([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
    expect(fake.order.indexOf('registerSchemesAsPrivileged')).toBeLessThan(fake.order.indexOf('whenReady'));
    expect(fake.order.indexOf('enableSandbox')).toBeLessThan(fake.order.indexOf('whenReady'));

    const [library, ...others] = fake.windows();
    expect(others).toHaveLength(0);
    expect(library!.url).toBe('app://vivarium/index.html#/');
    expect(library!.options.webPreferences).toEqual({
      preload: '/opt/vivarium/preload.js',
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
      disableBlinkFeatures: 'Auxclick',
    });

    // One call per service; a new service in the contract fails this until it is added here.
    const calls: Record<ServiceName, { s: ServiceName; m: string; a: unknown[] }> = {
      vms: { s: 'vms', m: 'list', a: [] },
      host: { s: 'host', m: 'doctor', a: [] },
      stats: { s: 'stats', m: 'sample', a: [{}] },
      console: { s: 'console', m: 'openStream', a: ['no-such-vm', 'serial'] },
      media: { s: 'media', m: 'downloads', a: [] },
      snapshots: { s: 'snapshots', m: 'list', a: ['no-such-vm'] },
      sandbox: { s: 'sandbox', m: 'forwards', a: ['no-such-vm'] },
      disks: { s: 'disks', m: 'list', a: ['no-such-vm'] },
    };
    expect(Object.keys(calls).sort()).toEqual([...SERVICE_NAMES].sort());
    const wc = library!.webContents;
    SERVICE_NAMES.forEach((name, i) => wc.rpc({ t: 'call', id: i + 1, ...calls[name] }));
    await waitFor(() => wc.replies().length === SERVICE_NAMES.length, 'a reply for every service', 60_000);
    const byId = new Map(wc.replies().map((r) => [r.id, r]));
    const reply = (name: ServiceName) => byId.get(SERVICE_NAMES.indexOf(name) + 1)!;
    expect(reply('vms')).toMatchObject({ ok: true, v: [] });
    expect(reply('host')).toMatchObject({ ok: true, v: expect.objectContaining({}) });
    expect(reply('console')).toMatchObject({ ok: false, e: { code: ErrorCode.NotFound } });
    expect(reply('media')).toMatchObject({ ok: true, v: [] });
    expect(reply('snapshots')).toMatchObject({ ok: false, e: { code: ErrorCode.NotFound } });
    // This engine has no stats service (yet): a typed refusal, not a crash.
    const stats = reply('stats');
    if (!stats.ok) expect(stats.e!.code).toBe(ErrorCode.Unsupported);
    for (const r of wc.replies()) if (!r.ok) expect(r.e!.code).not.toBe(ErrorCode.Internal);
  });

  it('answers no foreign page and no sub-frame', async () => {
    const t = newHome();
    const l = await launch(t);
    const wc = l.fake.windows()[0]!.webContents;

    const child = new FakeFrame(wc.id, 2, 'app://vivarium/index.html#/');
    child.parent = wc.mainFrame;
    wc.rpc({ t: 'call', id: 1, s: 'vms', m: 'list', a: [] }, child);
    wc.rpc({ t: 'call', id: 2, s: 'vms', m: 'list', a: [] }, new FakeFrame(wc.id, 1, 'https://evil.example/'));
    wc.mainFrame.url = 'https://evil.example/';
    wc.rpc({ t: 'call', id: 3, s: 'vms', m: 'list', a: [] });
    wc.mainFrame.url = 'app://vivarium/index.html#/';
    wc.rpc({ t: 'call', id: 4, s: 'vms', m: 'list', a: [] });
    await waitFor(() => wc.replies().length > 0, 'the trusted reply');
    await new Promise((r) => setTimeout(r, 30));
    expect(wc.replies().map((r) => r.id)).toEqual([4]);
    expect(l.logs.filter((x) => x.startsWith('ipc: '))).toHaveLength(3);
  });

  it('turns window.open of a VM route into one VM window per VM and denies everything else', async () => {
    const t = newHome();
    const l = await launch(t);
    const library = l.fake.windows()[0]!;
    const wc = library.webContents;

    expect(wc.windowOpen(`app://vivarium/index.html#/vm/${VM_ID}`)).toEqual({ action: 'deny' });
    expect(l.fake.windows()).toHaveLength(2);
    const vmWindow = l.fake.windows()[1]!;
    expect(vmWindow.url).toBe(`app://vivarium/index.html#/vm/${VM_ID}`);
    expect(vmWindow.options.webPreferences).toEqual(lockedWebPreferences('/opt/vivarium/preload.js'));

    // Again (also as a bare hash): the same window comes to the front.
    const focusBefore = vmWindow.focusCount;
    expect(wc.windowOpen(`#/vm/${VM_ID}`)).toEqual({ action: 'deny' });
    expect(l.fake.windows()).toHaveLength(2);
    expect(vmWindow.focusCount).toBe(focusBefore + 1);

    for (const url of ['https://example.org/docs', 'http://example.org/', 'file:///etc/passwd', 'javascript:alert(1)', 'app://vivarium/index.html#/vm/..%2f..', 'app://evil/index.html#/vm/' + VM_ID, 'about:blank']) {
      expect(wc.windowOpen(url)).toEqual({ action: 'deny' });
    }
    expect(l.fake.windows()).toHaveLength(2);
    expect(l.fake.external).toEqual(['https://example.org/docs']);

    // A VM window closed by the user opens afresh next time.
    vmWindow.close();
    expect(l.fake.windows()).toHaveLength(1);
    wc.windowOpen(`#/vm/${VM_ID}`);
    expect(l.fake.windows()).toHaveLength(2);
  });

  it('keeps windows on app:// and grants only fullscreen and clipboard writes to our own pages', async () => {
    const t = newHome();
    const l = await launch(t);
    const wc = l.fake.windows()[0]!.webContents;

    expect(wc.navigate('will-navigate', 'https://evil.example/')).toBe(false);
    expect(wc.navigate('will-redirect', 'https://evil.example/')).toBe(false);
    expect(wc.navigate('will-navigate', 'file:///etc/passwd')).toBe(false);
    expect(wc.navigate('will-navigate', 'app://vivarium.evil.example/')).toBe(false);
    expect(wc.navigate('will-navigate', 'app://vivarium/index.html#/')).toBe(true);
    const webview = ev({});
    wc.emit('will-attach-webview', webview, {}, {});
    expect(webview.defaultPrevented).toBe(true);

    const { request, check } = l.fake.permissions;
    const ask = (permission: string, requestingUrl: string) =>
      new Promise<boolean>((resolve) => request!(wc, permission, resolve, { requestingUrl }));
    expect(await ask('fullscreen', 'app://vivarium/index.html#/vm/x')).toBe(true);
    // Chromium's Local Network Access: our page must be let open ws://127.0.0.1 (the consoles).
    expect(await ask('local-network-access', 'app://vivarium/index.html#/vm/x')).toBe(true);
    expect(await ask('loopback-network', 'app://vivarium/index.html')).toBe(true);
    expect(await ask('loopback-network', 'https://evil.example/')).toBe(false);
    expect(check!(wc, 'loopback-network', 'app://vivarium')).toBe(true);
    expect(check!(wc, 'local-network-access', 'http://127.0.0.1:8080')).toBe(false);
    expect(await ask('clipboard-sanitized-write', 'app://vivarium/index.html')).toBe(true);
    expect(await ask('fullscreen', 'https://evil.example/')).toBe(false);
    for (const p of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal']) {
      expect(await ask(p, 'app://vivarium/index.html')).toBe(false);
    }
    expect(check!(wc, 'fullscreen', 'app://vivarium')).toBe(true);
    expect(check!(wc, 'fullscreen', 'https://evil.example')).toBe(false);
    expect(check!(wc, 'media', 'app://vivarium')).toBe(false);
  });

  it('serves the build on app:// with a CSP naming the stream bridge, and nothing outside it', async () => {
    const t = newHome();
    const l = await launch(t);
    const handler = l.fake.handlers.get('app')!;
    const get = (url: string, method = 'GET') => handler({ url, method });

    const page = await get('app://vivarium/index.html');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Vivarium</title>');
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${l.started.hosted.port}`);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect((await get('app://vivarium/')).status).toBe(200);
    const js = await get('app://vivarium/assets/app.js?v=1');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('content-security-policy')).toBe(csp);

    for (const url of [
      'app://vivarium/../secret.txt',
      'app://vivarium/%2e%2e/secret.txt',
      'app://vivarium/assets/..%2f..%2fsecret.txt',
      'app://vivarium/assets%2f..%2f..%2fsecret.txt',
      'app://vivarium/..\\secret.txt',
      'app://vivarium/index.html%00.js',
    ]) {
      const r = await get(url);
      expect(r.status, url).toBe(400);
      expect(await r.text()).not.toContain('secret');
    }
    expect((await get('app://vivarium/assets/leak.js')).status).toBe(404); // a symlink out of the build
    expect((await get('app://vivarium/nope.js')).status).toBe(404);
    expect((await get('app://vivarium/.hidden')).status).toBe(404);
    expect((await get('app://vivarium/assets')).status).toBe(404);
    expect((await get('app://other/index.html')).status).toBe(404);
    expect((await get('app://vivarium/index.html', 'POST')).status).toBe(405);
    const head = await get('app://vivarium/index.html', 'HEAD');
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('sends menu actions to the focused window as a DOM event, and New VM to the library', async () => {
    const t = newHome();
    const l = await launch(t);
    const library = l.fake.windows()[0]!;
    library.webContents.windowOpen(`#/vm/${VM_ID}`);
    const vmWindow = l.fake.windows()[1]!;

    const template = l.fake.menu()!;
    const find = (id: string): MenuItemConstructorOptions | undefined =>
      template.flatMap((m) => (Array.isArray(m.submenu) ? m.submenu : [])).find((i) => i.id === id);
    const click = (id: string, win: FakeWindow | undefined) =>
      (find(id)!.click as (item: unknown, w: unknown, e: unknown) => void)({}, win, {});

    click('vivarium.ctrl-alt-del', vmWindow);
    expect(vmWindow.webContents.scripts).toEqual([menuEventScript('ctrl-alt-del')]);
    click('vivarium.new-vm', vmWindow);
    await waitFor(() => library.webContents.scripts.length === 1, 'the library to get new-vm');
    expect(library.webContents.scripts).toEqual([menuEventScript('new-vm')]);
    // No window passed: the focused one (the library, brought to the front for New VM).
    click('vivarium.start', undefined);
    expect(library.webContents.scripts).toEqual([menuEventScript('new-vm'), menuEventScript('start')]);
    // New Sandbox goes to the library too (its wizard opens on the cloud image source).
    click('vivarium.new-sandbox', vmWindow);
    await waitFor(() => library.webContents.scripts.length === 3, 'the library to get new-sandbox');
    expect(library.webContents.scripts[2]).toBe(menuEventScript('new-sandbox'));
    // A window that is not ours gets nothing.
    const stranger = new l.fake.api.BrowserWindow({}) as unknown as FakeWindow;
    click('vivarium.force-off', stranger);
    expect(stranger.webContents.scripts).toEqual([]);
    stranger.destroy();
    expect(vmWindow.webContents.scripts).toHaveLength(1);

    // New VM with the library closed: it opens, loads, then gets the event.
    library.close();
    expect(l.fake.windows()).toEqual([vmWindow]);
    click('vivarium.new-vm', vmWindow);
    const reopened = l.fake.windows()[1]!;
    expect(reopened.url).toBe('app://vivarium/index.html#/');
    await waitFor(() => reopened.webContents.scripts.length === 1, 'the new library window to get new-vm');
  });

  it('quits without asking when no VM runs, and closes the engine', async () => {
    const t = newHome();
    const l = await launch(t);
    const socket = engineSocketOf(l.started.hosted);
    expect(fs.existsSync(socket)).toBe(true);

    l.fake.windows()[0]!.close();
    await l.controller.stopped;
    expect(l.fake.app.quitted).toBe(true);
    expect(l.fake.prompts).toEqual([]);
    expect(fs.existsSync(socket)).toBe(false);
    expect(ipcMain.listenerCount(IPC_CHANNEL)).toBe(0);
  });

  it('lets Quit (Cmd+Q, logout, an update) through at once when no VM runs: before-quit refuses nothing', async () => {
    const t = newHome();
    const l = await launch(t, { platform: 'darwin' });
    l.fake.app.quit();
    await l.controller.stopped;
    expect(l.fake.app.refusedQuits).toBe(0);
    expect(l.fake.app.quitted).toBe(true);
    expect(l.fake.prompts).toEqual([]);
  });

  it('reloads a window whose renderer crashed, and stops after repeated crashes, saying so', async () => {
    const t = newHome();
    const l = await launch(t);
    const wc = l.fake.windows()[0]!.webContents;
    wc.emit('render-process-gone', ev({}), { reason: 'clean-exit', exitCode: 0 });
    expect(wc.reloads).toBe(0);
    wc.emit('render-process-gone', ev({}), { reason: 'crashed', exitCode: 139 });
    expect(wc.reloads).toBe(1);
    wc.emit('render-process-gone', ev({}), { reason: 'oom', exitCode: 0 });
    wc.emit('render-process-gone', ev({}), { reason: 'killed', exitCode: 9 });
    expect(wc.reloads).toBe(3);
    expect(l.fake.errorBoxes).toEqual([]);
    wc.emit('render-process-gone', ev({}), { reason: 'crashed', exitCode: 139 });
    expect(wc.reloads).toBe(3);
    expect(l.fake.errorBoxes).toHaveLength(1);
    expect(l.fake.errorBoxes[0]![1]).toMatch(/stopped working 4 times in a minute .*your virtual machines are not affected/);
  });

  it('imports a double-clicked .vivarium file (argv, open-file on macOS, a second instance) and opens its VM; a damaged one is refused with a sentence', async () => {
    const t = newHome();
    const dir = tempDir('viv-file-');
    const bogus = path.join(dir, 'web server.vivarium');
    fs.writeFileSync(bogus, 'not a real export');
    const l = await launch(t, { argv: ['--no-sandbox', '.', bogus] });
    await waitFor(() => l.fake.errorBoxes.length === 1, 'the import error');
    expect(l.fake.errorBoxes[0]![0]).toBe('Could not import web server.vivarium');
    expect(await l.started.hosted.engine.services.vms.list()).toEqual([]);

    // A real export, made by the engine, opened the macOS way and from a second instance.
    const services = l.started.hosted.engine.services;
    const vm = await services.vms.create({ name: 'exported', accel: 'tcg', memoryMiB: 128, cpus: 1, diskSizeBytes: 1024 ** 2, net: 'none', display: 'none' });
    const file = path.join(dir, 'exported.vivarium');
    await services.snapshots.exportVm(vm.id, file);
    const windowsBefore = l.fake.windows().length;
    const macOpen = ev({});
    l.fake.app.emit('open-file', macOpen, file);
    expect(macOpen.defaultPrevented).toBe(true);
    await waitFor(() => l.fake.windows().length === windowsBefore + 1, "the imported VM's window");
    l.fake.app.emit('second-instance', ev({}), ['/opt/Vivarium/vivarium', file], '/');
    await waitFor(() => l.fake.windows().length === windowsBefore + 2, "the second imported VM's window");
    // The export's name was taken, so the imports took the next free names; each got its own id.
    const all = await services.vms.list();
    expect(all.map((v) => v.name).sort()).toEqual(['exported', 'exported (2)', 'exported (3)']);
    expect(new Set(all.map((v) => v.id)).size).toBe(3);
    expect(l.fake.errorBoxes).toHaveLength(1);
  });

  it('has a tray listing VMs with their state; Start, Shut Down and Force Off from it act on a real VM', async () => {
    const t = newHome();
    const guest = testGuest();
    const l = await launch(t, { tray: true });
    const tray = () => l.fake.trays[0]!;
    const item = (id: string) => findItem(tray().menu!, id);
    await waitFor(() => tray().menu !== null, 'the tray menu');
    expect(tray().image).toEqual(expect.objectContaining({ path: '/opt/Vivarium/resources/tray.png' }));
    expect(tray().menu!.map((i) => i.label).filter(Boolean)).toEqual(['Open Vivarium', 'No virtual machines', 'Keep Running When Windows Close', 'Open Vivarium at Login', 'Quit Vivarium']);

    const vms = l.started.hosted.engine.services.vms;
    const vm = await vms.create({ name: 'tray & co', kernel: guest.kernel, initrd: guest.initrd, append: guest.append, accel: 'tcg', memoryMiB: 128, cpus: 1, diskSizeBytes: 0, net: 'none', display: 'none' });
    await waitFor(() => item(`vm:${vm.id}`)?.label === 'tray && co — Stopped', 'the VM in the tray');
    expect(item(`vm:${vm.id}:start`)!.enabled).toBe(true);
    expect(item(`vm:${vm.id}:shutdown`)!.enabled).toBe(false);

    click(item(`vm:${vm.id}:start`)!);
    await waitFor(() => item(`vm:${vm.id}`)?.label === 'tray && co — Running', 'Running in the tray', 60_000);
    expect((await vms.get(vm.id)).state).toBe('running');
    expect(tray().tooltip).toBe('Vivarium — 1 virtual machine running');
    expect(item(`vm:${vm.id}:start`)!.enabled).toBe(false);
    expect(item(`vm:${vm.id}:shutdown`)!.enabled).toBe(true);

    click(item(`vm:${vm.id}:open`)!);
    expect(l.fake.windows().map((w) => w.url)).toContain(`app://vivarium/index.html#/vm/${vm.id}`);

    click(item(`vm:${vm.id}:force-off`)!);
    await waitFor(() => item(`vm:${vm.id}`)?.label === 'tray && co — Stopped', 'Stopped in the tray', 60_000);
    expect((await vms.get(vm.id)).state).toBe('stopped');
  });

  it('keeps running in the tray when the user chose so: closing the last window neither prompts nor quits', async () => {
    const t = newHome();
    const appData = tempDir('viv-appdata-');
    const l = await launch(t, { tray: true, userData: appData });
    const tray = () => l.fake.trays[0]!;
    await waitFor(() => tray().menu !== null, 'the tray menu');
    expect(findItem(tray().menu!, 'run-in-background')!.checked).toBe(false);
    click(findItem(tray().menu!, 'run-in-background')!);
    await waitFor(() => findItem(tray().menu!, 'run-in-background')!.checked === true, 'the setting to show');
    const saved = path.join(l.fake.app.getPath('userData'), 'settings.json');
    expect(JSON.parse(fs.readFileSync(saved, 'utf8'))).toEqual({ runInBackground: true });
    expect(fs.statSync(saved).mode & 0o777).toBe(0o600);

    l.fake.windows()[0]!.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(l.fake.windows()).toHaveLength(0);
    expect(l.fake.app.quitted).toBe(false);
    expect(l.fake.prompts).toEqual([]);
    tray().emit('click');
    expect(l.fake.windows()[0]!.url).toBe('app://vivarium/index.html#/');
    // Quit from the tray quits (nothing runs, so without a prompt), and the tray goes with it.
    click(findItem(tray().menu!, 'quit')!);
    await l.controller.stopped;
    expect(l.fake.app.quitted).toBe(true);
    expect(tray().destroyed).toBe(true);

    // The choice is remembered by the next start of the same library.
    const again = await launch(t, { tray: true, userData: appData });
    await waitFor(() => again.fake.trays[0]?.menu != null, 'the tray menu');
    expect(findItem(again.fake.trays[0]!.menu!, 'run-in-background')!.checked).toBe(true);
  });

  it('opens at login: an XDG autostart entry on Linux, Electron’s login item on macOS', async () => {
    const linuxHome = tempDir('viv-userhome-');
    const t = newHome();
    const l = await launch(t, { tray: true, homeDir: linuxHome });
    const tray = () => l.fake.trays[0]!;
    await waitFor(() => tray().menu !== null, 'the tray menu');
    const entry = path.join(linuxHome, '.config', 'autostart', 'vivarium.desktop');
    click(findItem(tray().menu!, 'open-at-login')!);
    await waitFor(() => findItem(tray().menu!, 'open-at-login')!.checked === true, 'checked');
    const text = fs.readFileSync(entry, 'utf8');
    expect(text).toContain(`Exec=env VIVARIUM_HOME=${t.env.VIVARIUM_HOME} /opt/Vivarium/vivarium`);
    expect(spawnSync('desktop-file-validate', [entry], { encoding: 'utf8' }).status).toBe(0);
    click(findItem(tray().menu!, 'open-at-login')!);
    await waitFor(() => findItem(tray().menu!, 'open-at-login')!.checked === false, 'unchecked');
    expect(fs.existsSync(entry)).toBe(false);

    const mac = await launch(newHome(), { tray: true, platform: 'darwin' });
    const macTray = () => mac.fake.trays[0]!;
    await waitFor(() => macTray().menu !== null, 'the tray menu');
    click(findItem(macTray().menu!, 'open-at-login')!);
    expect(mac.fake.app.loginItem).toEqual({ openAtLogin: true });
  });

  it('keeps one app per library: Electron’s userData (the lock’s key) follows VIVARIUM_HOME', async () => {
    const a = newHome();
    const b = newHome();
    const la = await launch(a);
    const lb = await launch(b);
    const ua = la.fake.app.getPath('userData');
    const ub = lb.fake.app.getPath('userData');
    expect(ua).toBe(libraryUserDataDir('/home/u/.config', a.env.VIVARIUM_HOME!));
    expect(ub).not.toBe(ua);
    expect(path.dirname(ua)).toBe('/home/u/.config/Vivarium Desktop');
    expect(la.fake.order.indexOf('setPath:userData')).toBeLessThan(la.fake.order.indexOf('requestSingleInstanceLock'));
    expect(libraryUserDataDir('/x', `${a.env.VIVARIUM_HOME!}/`)).toBe(libraryUserDataDir('/x', a.env.VIVARIUM_HOME!));
  });

  it('on macOS keeps running when the last window closes, and reopens the library on activate', async () => {
    const t = newHome();
    const l = await launch(t, { platform: 'darwin' });
    l.fake.windows()[0]!.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(l.fake.windows()).toHaveLength(0);
    expect(l.fake.app.quitted).toBe(false);
    expect(l.fake.prompts).toEqual([]);
    l.fake.app.emit('activate');
    expect(l.fake.windows()[0]!.url).toBe('app://vivarium/index.html#/');
    l.fake.app.emit('second-instance');
    expect(l.fake.windows()).toHaveLength(1);
  });

  it('refuses to start next to another engine, and says what to do', async () => {
    const t = newHome();
    const other = await hostEngine({ env: t.env, http: { port: 0, staticDir: null } });
    cleanups.push(() => other.close());
    const fake = fakeElectron({ prompt: () => 0 });
    const logs: string[] = [];
    const controller = startApp(fake.api, { env: t.env, rendererDir: rendererBuild(), preloadPath: '/p.js', hostEngine, platform: 'linux', log: (x) => logs.push(x) });
    expect(await controller.started).toBeNull();
    await controller.stopped;
    expect(fake.prompts).toHaveLength(1);
    const shown = fake.prompts[0]!.options;
    expect(shown.message).toMatch(/Another Vivarium engine is already running/);
    expect(shown.detail).toContain(`process ${process.pid}`);
    expect(shown.detail).toMatch(/stop it \(Ctrl\+C in its terminal\) and open Vivarium again/);
    expect(fake.app.quitted).toBe(true);
    expect(fake.windows()).toHaveLength(0);
    expect(ipcMain.listenerCount(IPC_CHANNEL)).toBe(0);
    // The other engine is untouched.
    expect(fs.existsSync(other.engine.layout.engineSocket)).toBe(true);
  });

  it('quits at once when another instance holds the lock', async () => {
    const fake = fakeElectron({ prompt: () => 0 });
    fake.app.lock = false;
    const hostEngineSpy = vi.fn();
    const controller = startApp(fake.api, { env: {}, rendererDir: '/nonexistent', preloadPath: '/p.js', hostEngine: hostEngineSpy, platform: 'linux' });
    expect(await controller.started).toBeNull();
    expect(fake.app.quitted).toBe(true);
    expect(hostEngineSpy).not.toHaveBeenCalled();
    expect(fake.order).not.toContain('whenReady');
  });

  it('asks before quitting with a VM running: Cancel keeps all, Keep leaves it running, Shut Down All stops it', async () => {
    const t = newHome();
    const guest = testGuest();
    const first = await launch(t);
    const vms = first.started.hosted.engine.services.vms;
    const vm = await vms.create({
      name: 'quit-prompt',
      kernel: guest.kernel,
      initrd: guest.initrd,
      append: guest.append,
      accel: 'tcg',
      memoryMiB: 128,
      cpus: 1,
      diskSizeBytes: 0,
      net: 'none',
      display: 'none',
    });
    // Booted to the shell, so the ACPI power button is handled later.
    const running = await vms.start(vm.id, { waitSerial: guest.readyMarker, timeoutSec: 60 });
    const library = first.fake.windows()[0]!;

    // Cancel: nothing closes.
    first.answer = 2;
    library.close();
    await waitFor(() => first.fake.prompts.length === 1, 'the prompt');
    const prompt = first.fake.prompts[0]!;
    expect(prompt.parent).toBe(library);
    expect(prompt.options).toMatchObject({
      message: '1 virtual machine is running.',
      buttons: ['Keep Running in Background', 'Shut Down All', 'Cancel'],
      defaultId: 0,
      cancelId: 2,
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(first.fake.windows()).toEqual([library]);
    expect(first.fake.app.quitted).toBe(false);

    // Keep running: the app quits, the engine closes, the VM does not notice.
    first.answer = 0;
    library.close();
    await first.controller.stopped;
    expect(first.fake.prompts).toHaveLength(2);
    expect(first.fake.app.quitted).toBe(true);
    expect(fs.existsSync(engineSocketOf(first.started.hosted))).toBe(false);
    expect(isAlive(running.pid!)).toBe(true);

    // The next start finds it; Cmd+Q with Shut Down All runs the stop ladder, then quits.
    const second = await launch(t);
    const vms2 = second.started.hosted.engine.services.vms;
    expect((await vms2.get(vm.id)).state).toBe('running');
    const stop = vi.spyOn(vms2, 'stop');
    second.answer = 1;
    second.fake.app.quit();
    await second.controller.stopped;
    expect(second.fake.prompts[0]!.parent).toBeNull();
    expect(stop).toHaveBeenCalledExactlyOnceWith(vm.id, { timeoutSec: 30 });
    expect(second.fake.app.quitted).toBe(true);
    const after = createEngine({ env: t.env });
    const info = await after.services.vms.get(vm.id);
    await after.dispose();
    expect(info.state).toBe('stopped');
    expect(info.lastExit?.reason).toBe('shutdown');
  });
});

// ---- pure parts -------------------------------------------------------------------------------------

describe('quit decision', () => {
  it('asks only when VMs run, and maps the buttons', () => {
    expect(quitDecision(0, null)).toBe('quit');
    expect(quitDecision(3, 0)).toBe('quit');
    expect(quitDecision(3, 1)).toBe('shut-down-all');
    expect(quitDecision(3, 2)).toBe('cancel');
    expect(quitDecision(1, null)).toBe('cancel');
    expect(quitPromptOptions(2).message).toBe('2 virtual machines are running.');
  });
});

describe('permissions', () => {
  it('allows fullscreen and clipboard writes for app://vivarium only', () => {
    expect(permissionAllowed('fullscreen', 'app://vivarium')).toBe(true);
    expect(permissionAllowed('fullscreen', 'app://vivarium.evil')).toBe(false);
    expect(permissionAllowed('fullscreen', 'app://vivarium@evil/')).toBe(false);
    expect(permissionAllowed('pointerLock', 'app://vivarium')).toBe(false);
  });
});

describe('VM files on the command line', () => {
  it('takes absolute .vivarium paths (or local file:// URLs of them) only', () => {
    expect(vmFileArgs(['/opt/Vivarium/vivarium', '--no-sandbox', '/home/u/a.vivarium', 'b.vivarium', '/home/u/c.VIVARIUM', '--x=/y.vivarium', '/home/u/d.txt'])).toEqual([
      '/home/u/a.vivarium',
      '/home/u/c.VIVARIUM',
    ]);
    // %U may hand over file:// URLs (percent-encoded); remote URLs are not files.
    expect(vmFileArgs(['file:///home/u/My%20VMs/web.vivarium', 'file://host.example/x.vivarium', 'https://e.x/a.vivarium', 'file:///home/u/n.txt'])).toEqual([
      '/home/u/My VMs/web.vivarium',
    ]);
  });
});

describe('window.open targets', () => {
  it('classifies', () => {
    expect(classifyWindowOpen(`#/vm/${VM_ID}`)).toEqual({ kind: 'vm', id: VM_ID });
    expect(classifyWindowOpen(`app://vivarium/#/vm/${VM_ID}/`)).toEqual({ kind: 'vm', id: VM_ID });
    expect(classifyWindowOpen(`app://vivarium/index.html?x=1#/vm/${VM_ID}`)).toEqual({ kind: 'deny' });
    expect(classifyWindowOpen(`app://vivarium/other.html#/vm/${VM_ID}`)).toEqual({ kind: 'deny' });
    expect(classifyWindowOpen('#/vm/not-a-uuid')).toEqual({ kind: 'deny' });
    expect(classifyWindowOpen(`#/vm/${VM_ID.toUpperCase()}`)).toEqual({ kind: 'deny' });
    expect(classifyWindowOpen('#/')).toEqual({ kind: 'deny' });
    expect(classifyWindowOpen('https://user:pw@example.org/')).toEqual({ kind: 'deny' });
    expect(classifyWindowOpen('https://example.org/a b')).toEqual({ kind: 'external', url: 'https://example.org/a%20b' });
    // A VM's port forward, as the library links it (issue 11); other plain-http targets stay refused.
    expect(classifyWindowOpen('http://127.0.0.1:8080/')).toEqual({ kind: 'external', url: 'http://127.0.0.1:8080/' });
    expect(classifyWindowOpen('http://127.0.0.1/')).toEqual({ kind: 'deny' });
    expect(classifyWindowOpen('http://example.org:8080/')).toEqual({ kind: 'deny' });
    expect(classifyWindowOpen('http://u:p@127.0.0.1:8080/')).toEqual({ kind: 'deny' });
  });
});

describe('app:// handler without an app', () => {
  it('says when the build is missing', async () => {
    const h = createAppProtocolHandler({ rendererDir: '/nonexistent/renderer', wsOrigins: [] });
    const r = await h({ url: 'app://vivarium/index.html', method: 'GET' });
    expect(r.status).toBe(404);
    expect(await r.text()).toMatch(/npm run build/);
  });
});

describe('menu', () => {
  const template = buildMenuTemplate({ platform: 'linux', appName: 'Vivarium', dev: false }, { action: () => {}, showLibrary: () => {}, showLibraryFolder: () => {} });
  const items = (label: string) => (template.find((m) => m.label === label || m.role === label)?.submenu ?? []) as MenuItemConstructorOptions[];

  it('has every VM action with an accelerator, and no duplicate accelerators', () => {
    const vm = items('VM').filter((i) => i.type !== 'separator');
    expect(vm.map((i) => i.id)).toEqual(MENU_ACTIONS.filter((a) => a !== 'new-vm' && a !== 'new-sandbox').map((a) => `vivarium.${a}`));
    for (const i of vm) expect(i.accelerator).toMatch(/^CmdOrCtrl\+/);
    expect(items('File')[0]).toMatchObject({ id: 'vivarium.new-vm', label: 'New VM…', accelerator: 'CmdOrCtrl+N' });
    expect(items('File')[1]).toMatchObject({ id: 'vivarium.new-sandbox', label: 'New Sandbox…', accelerator: 'CmdOrCtrl+Shift+N' });
    const all = template.flatMap((m) => (m.submenu ?? []) as MenuItemConstructorOptions[]).flatMap((i) => (i.accelerator ? [i.accelerator] : []));
    expect(new Set(all).size).toBe(all.length);
  });

  it('has Reload and DevTools only in development, and an app menu only on macOS', () => {
    const roles = (t: MenuItemConstructorOptions[]) => t.flatMap((m) => (m.submenu ?? []) as MenuItemConstructorOptions[]).map((i) => i.role);
    expect(roles(template)).not.toContain('toggleDevTools');
    expect(roles(template)).not.toContain('reload');
    expect(roles(template)).toContain('togglefullscreen');
    const dev = buildMenuTemplate({ platform: 'darwin', appName: 'Vivarium', dev: true }, { action: () => {}, showLibrary: () => {}, showLibraryFolder: () => {} });
    expect(roles(dev)).toContain('toggleDevTools');
    expect(roles(dev)).toContain('reload');
    expect(dev[0]!.label).toBe('Vivarium');
    expect(template[0]!.label).toBe('File');
  });

  it('has an Edit menu: Cmd+C/V/X/A on macOS; elsewhere shown but not registered, so Ctrl+C reaches a guest console', () => {
    const mac = buildMenuTemplate({ platform: 'darwin', appName: 'Vivarium', dev: false }, { action: () => {}, showLibrary: () => {}, showLibraryFolder: () => {} });
    const macEdit = (mac.find((m) => m.label === 'Edit')?.submenu ?? []) as MenuItemConstructorOptions[];
    const roles = macEdit.map((i) => i.role).filter(Boolean);
    for (const r of ['undo', 'redo', 'cut', 'copy', 'paste', 'selectAll']) expect(roles).toContain(r);
    expect(macEdit.every((i) => i.registerAccelerator === undefined)).toBe(true);
    expect(mac.map((m) => m.label ?? m.role).slice(0, 3)).toEqual(['Vivarium', 'File', 'Edit']);
    const linuxEdit = items('Edit');
    expect(linuxEdit.filter((i) => i.role).map((i) => i.role)).toEqual(['undo', 'redo', 'cut', 'copy', 'paste', 'delete', 'selectAll']);
    expect(linuxEdit.filter((i) => i.role).every((i) => i.registerAccelerator === false)).toBe(true);
  });

  it('builds the event script from the fixed list only', () => {
    expect(menuEventScript('start')).toBe(`window.dispatchEvent(new CustomEvent("${MENU_EVENT}", { detail: {"action":"start"} }))`);
    expect(() => menuEventScript('"});alert(1);//' as never)).toThrow(/Not a menu action/);
  });
});

describe('paths', () => {
  it('finds the renderer and the preload from the compiled main.js folder', () => {
    expect(appPaths('/repo/out/main/app')).toEqual({ rendererDir: '/repo/out/renderer', preloadPath: '/repo/out/main/app/preload.js' });
    expect(APP_SCHEME_PRIVILEGES.scheme).toBe('app');
  });
});
