/**
 * RPC over Electron IPC: one channel, one generic pipe (main/app/preload.ts is the other end).
 *
 * Wire: `ipcRenderer.send(IPC_CHANNEL, session, json)` and `frame.send(IPC_CHANNEL, session, json)`.
 * `session` is a random id the preload picks once per loaded document. A reload or navigation starts
 * a new document with a new session, so its Connection (and every subscription the old page made)
 * is closed (at the latest when the navigation commits: 'did-navigate') and ids from the old page can never collide with the new page's, whatever order the
 * navigation events and the new page's first messages arrive in.
 *
 * Only the main frame of a webContents may talk, and only while it shows a trusted URL: an iframe
 * or a page the window was navigated to gets nothing.
 */
import { ipcMain } from 'electron';
import type { IpcMainEvent, WebContents, WebFrameMain } from 'electron';
import type { Disposable } from '../common/contract';
import { z } from 'zod';
import { BROWSE_EXTENSIONS, BrowseFilter } from '../common/contract/host';
import { FILE_DIALOG_CHANNEL, IPC_CHANNEL, MAX_REQUEST_BYTES, createConnection } from '../common/rpc/protocol';
import type { ConnectionHandle } from '../common/rpc/protocol';
import type { RpcServer } from '../common/rpc/server';

export interface ServeIpcOptions {
  /** Whether this frame, showing `url`, may use the engine (e.g. it is the app:// origin). */
  isTrustedSender(frame: WebFrameMain | null, url: string): boolean;
  readonly maxMessageBytes?: number;
  /** Told about each rejected message (for the log). */
  readonly onRejected?: (reason: string, url: string) => void;
}

const MAX_SESSION_LENGTH = 64;
/** Sessions of documents that are gone, remembered so their late messages are dropped. */
const REMEMBERED_CLOSED_SESSIONS = 16;

interface Tab {
  readonly webContents: WebContents;
  current: { readonly session: string; readonly handle: ConnectionHandle } | null;
  readonly closedSessions: string[];
  readonly cleanup: () => void;
}

export function serveIpc(server: RpcServer, options: ServeIpcOptions): Disposable {
  const maxBytes = options.maxMessageBytes ?? MAX_REQUEST_BYTES;
  const tabs = new Map<number, Tab>();

  const reject = (reason: string, url: string): void => options.onRejected?.(reason, url);

  const endSession = (tab: Tab): void => {
    const current = tab.current;
    if (!current) return;
    tab.current = null;
    tab.closedSessions.push(current.session);
    if (tab.closedSessions.length > REMEMBERED_CLOSED_SESSIONS) tab.closedSessions.shift();
    current.handle.closed();
  };

  const forget = (tab: Tab): void => {
    endSession(tab);
    tab.cleanup();
    tabs.delete(tab.webContents.id);
  };

  const tabFor = (wc: WebContents): Tab => {
    const known = tabs.get(wc.id);
    if (known) return known;
    // 'did-navigate': a main-frame, cross-document navigation that committed (never an in-page one).
    // Not 'did-start-navigation', which also fires for navigations that 'will-navigate' then
    // cancels (main/app/electron-app.ts refuses every page but app://): ending the session there
    // would leave the page that stays without its engine connection.
    const onNavigate = (): void => endSession(tab);
    const onGone = (): void => endSession(tab);
    const onDestroyed = (): void => forget(tab);
    wc.on('did-navigate', onNavigate);
    wc.on('render-process-gone', onGone);
    wc.once('destroyed', onDestroyed);
    const tab: Tab = {
      webContents: wc,
      current: null,
      closedSessions: [],
      cleanup: () => {
        if (wc.isDestroyed()) return;
        wc.off('did-navigate', onNavigate);
        wc.off('render-process-gone', onGone);
        wc.off('destroyed', onDestroyed);
      },
    };
    tabs.set(wc.id, tab);
    return tab;
  };

  const connectionFor = (tab: Tab, session: string): ConnectionHandle | null => {
    if (tab.current?.session === session) return tab.current.handle;
    if (tab.closedSessions.includes(session)) return null; // a straggler from a document that is gone
    endSession(tab); // a new document in this webContents: the old one's subscriptions go
    const wc = tab.webContents;
    const handle = createConnection({
      write(msg) {
        const json = JSON.stringify(msg);
        if (!wc.isDestroyed()) wc.mainFrame.send(IPC_CHANNEL, session, json);
      },
      end() {
        // The renderer can't be hung up on; forgetting the session is the close.
        if (tab.current?.handle === handle) {
          tab.current = null;
          tab.closedSessions.push(session);
        }
      },
    });
    tab.current = { session, handle };
    server.serve(handle.connection);
    return handle;
  };

  const onMessage = (e: IpcMainEvent, session: unknown, json: unknown): void => {
    const wc = e.sender;
    const frame = e.senderFrame;
    const url = frame?.url ?? '';
    if (!frame || !isMainFrame(wc, frame)) return reject('message from a frame that is not the main frame', url);
    if (!options.isTrustedSender(frame, url)) return reject('message from an untrusted page', url);
    if (typeof session !== 'string' || session.length === 0 || session.length > MAX_SESSION_LENGTH) {
      return reject('message without a session id', url);
    }
    if (typeof json !== 'string' || json.length > maxBytes) return reject('message is not a JSON string of an acceptable size', url);
    let msg: unknown;
    try {
      msg = JSON.parse(json);
    } catch {
      return reject('message is not valid JSON', url);
    }
    connectionFor(tabFor(wc), session)?.receive(msg);
  };

  ipcMain.on(IPC_CHANNEL, onMessage);
  return {
    dispose() {
      ipcMain.off(IPC_CHANNEL, onMessage);
      for (const tab of [...tabs.values()]) forget(tab);
    },
  };
}

function isMainFrame(wc: WebContents, frame: WebFrameMain): boolean {
  if (wc.isDestroyed() || frame.isDestroyed() || frame.parent !== null) return false;
  const main = wc.mainFrame;
  return main.processId === frame.processId && main.routingId === frame.routingId;
}

// ---- the desktop app's Open dialog --------------------------------------------------------------

const FileDialogRequest = z.object({ filter: BrowseFilter, title: z.string().max(200) }).strict();

/** What `serveFileDialog` needs: who may ask, and Electron's dialog for the asking window. */
export interface ServeFileDialogOptions {
  isTrustedSender(frame: WebFrameMain | null, url: string): boolean;
  /** dialog.showOpenDialog, attached to the window of `wc` when there is one. */
  showOpenDialog(wc: WebContents, options: Electron.OpenDialogOptions): Promise<Electron.OpenDialogReturnValue>;
  readonly onRejected?: (reason: string, url: string) => void;
}

const FILTER_NAMES: Readonly<Record<BrowseFilter, string>> = { iso: 'CD/DVD images', disk: 'Disk images and appliances', images: 'ISO and disk images', 'ssh-key': 'SSH public keys', any: 'All files', folder: 'Folders', vivarium: 'Vivarium exports' };

/**
 * The New VM wizard's Browse in the desktop app: the system's Open dialog. The page sends
 * `(FILE_DIALOG_CHANNEL, id, {filter, title})`; the answer comes back on the same channel to that
 * frame as `(id, {path: string | null})` or `(id, {error})`. Only the main frame of a trusted page
 * may ask; the request is schema-checked. The path is the user's own choice in a system dialog, and
 * the engine checks the file again when it is used.
 */
export function serveFileDialog(options: ServeFileDialogOptions): Disposable {
  const onRequest = (e: IpcMainEvent, id: unknown, raw: unknown): void => {
    const frame = e.senderFrame;
    const url = frame?.url ?? '';
    if (!frame || !isMainFrame(e.sender, frame)) return options.onRejected?.('file dialog request from a frame that is not the main frame', url);
    if (!options.isTrustedSender(frame, url)) return options.onRejected?.('file dialog request from an untrusted page', url);
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) return options.onRejected?.('file dialog request without an id', url);
    const answer = (a: { path: string | null } | { error: string }): void => {
      if (!frame.isDestroyed()) frame.send(FILE_DIALOG_CHANNEL, id, a);
    };
    const req = FileDialogRequest.safeParse(raw);
    if (!req.success) return answer({ error: 'The file dialog needs {filter: "iso" | "disk" | "images" | "ssh-key" | "any" | "folder", title}.' });
    const { filter } = req.data;
    options
      .showOpenDialog(e.sender, {
        title: req.data.title,
        // `folder`: the dialog picks a folder (a shared folder); `any`: every file.
        properties: [filter === 'folder' ? 'openDirectory' : 'openFile'],
        filters: filter === 'folder' ? [] : [...(filter === 'any' ? [] : [{ name: FILTER_NAMES[filter], extensions: [...BROWSE_EXTENSIONS[filter]] }]), { name: 'All files', extensions: ['*'] }],
      })
      .then(
        (r) => answer({ path: r.canceled ? null : (r.filePaths[0] ?? null) }),
        (err: unknown) => answer({ error: `The file dialog could not open: ${err instanceof Error ? err.message : String(err)}` }),
      );
  };
  ipcMain.on(FILE_DIALOG_CHANNEL, onRequest);
  return { dispose: () => void ipcMain.off(FILE_DIALOG_CHANNEL, onRequest) };
}
