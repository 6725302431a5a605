/**
 * The preload script: exposes ONE generic pipe as `window.vivarium` (VivariumBridge in
 * main/common/rpc/protocol.ts), never one function per method, and never the IPC event object
 * (it would hand the page `sender`).
 *
 * The window is sandboxed, and a sandboxed preload can require nothing but 'electron' and a few
 * builtins: this file must only `import type` from the rest of the project (a test checks the
 * compiled output). That is why the channel name is repeated here.
 */
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import type { IpcRendererEvent } from 'electron';
import type { VivariumBridge } from '../common/rpc/protocol';

/** Must equal IPC_CHANNEL in main/common/rpc/protocol.ts. */
const CHANNEL = 'vivarium:rpc';
/** Must equal FILE_DIALOG_CHANNEL in main/common/rpc/protocol.ts. */
const FILE_CHANNEL = 'vivarium:choose-file';
let fileRequests = 0;

/** One id per loaded document: main/app/ipc-transport.ts ties a Connection to it, so a reload
 *  starts clean. Not a secret, only unique. */
const session = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

const bridge: VivariumBridge = {
  send(msg) {
    // JSON on the wire, like every other transport: what the engine sees is plain data.
    ipcRenderer.send(CHANNEL, session, JSON.stringify(msg));
  },
  onMessage(listener) {
    if (typeof listener !== 'function') throw new TypeError('vivarium.onMessage needs a function');
    const handler = (_e: IpcRendererEvent, forSession: unknown, json: unknown): void => {
      if (forSession !== session || typeof json !== 'string') return;
      listener(JSON.parse(json) as unknown);
    };
    ipcRenderer.on(CHANNEL, handler);
    return () => void ipcRenderer.removeListener(CHANNEL, handler);
  },
  // The New VM wizard's Browse and drop: the system's Open dialog (main/app/ipc-transport.ts
  // serveFileDialog answers on the same channel, by request id), and a dropped File's path.
  files: {
    chooseFile(request) {
      const id = ++fileRequests;
      return new Promise<string | null>((resolve, reject) => {
        const handler = (_e: IpcRendererEvent, forId: unknown, answer: unknown): void => {
          if (forId !== id) return;
          ipcRenderer.removeListener(FILE_CHANNEL, handler);
          const a = answer as { path?: unknown; error?: unknown } | null;
          if (a && typeof a.error === 'string') reject(new Error(a.error));
          else resolve(a && typeof a.path === 'string' ? a.path : null);
        };
        ipcRenderer.on(FILE_CHANNEL, handler);
        ipcRenderer.send(FILE_CHANNEL, id, { filter: String(request?.filter), title: String(request?.title ?? '') });
      });
    },
    pathForFile(file) {
      return webUtils.getPathForFile(file as File);
    },
  },
};

contextBridge.exposeInMainWorld('vivarium', bridge);
