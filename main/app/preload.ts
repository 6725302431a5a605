/**
 * The preload script: exposes ONE generic pipe as `window.vivarium` (VivariumBridge in
 * main/common/rpc/protocol.ts), never one function per method, and never the IPC event object
 * (it would hand the page `sender`).
 *
 * The window is sandboxed, and a sandboxed preload can require nothing but 'electron' and a few
 * builtins: this file must only `import type` from the rest of the project (a test checks the
 * compiled output). That is why the channel name is repeated here.
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { IpcRendererEvent } from 'electron';
import type { VivariumBridge } from '../common/rpc/protocol';

/** Must equal IPC_CHANNEL in main/common/rpc/protocol.ts. */
const CHANNEL = 'vivarium:rpc';

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
};

contextBridge.exposeInMainWorld('vivarium', bridge);
