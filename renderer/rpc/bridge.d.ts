// `window.vivarium`: present only inside the Electron window, put there by main/app/preload.ts.
import type { VivariumBridge } from '../../main/common/rpc/protocol';

declare global {
  interface Window {
    readonly vivarium?: VivariumBridge;
  }
}

export {};
