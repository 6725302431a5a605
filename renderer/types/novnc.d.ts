// The part of noVNC 1.7's RFB class (core/rfb.js, docs/API.md) that Vivarium uses. The package
// ships no types; its only export is core/rfb.js.
declare module '@novnc/novnc' {
  export interface RfbOptions {
    readonly shared?: boolean;
    readonly credentials?: { readonly username?: string; readonly password?: string; readonly target?: string };
    readonly repeaterID?: string;
    readonly wsProtocols?: readonly string[];
  }

  export interface RfbEventMap {
    connect: CustomEvent<Record<string, never>>;
    disconnect: CustomEvent<{ readonly clean: boolean }>;
    clipboard: CustomEvent<{ readonly text: string }>;
    credentialsrequired: CustomEvent<{ readonly types: readonly string[] }>;
    securityfailure: CustomEvent<{ readonly status: number; readonly reason?: string }>;
    desktopname: CustomEvent<{ readonly name: string }>;
    bell: CustomEvent<Record<string, never>>;
    capabilities: CustomEvent<{ readonly capabilities: { readonly power: boolean } }>;
  }

  export default class RFB {
    constructor(target: HTMLElement, urlOrChannel: string | WebSocket, options?: RfbOptions);
    background: string;
    clipViewport: boolean;
    dragViewport: boolean;
    focusOnClick: boolean;
    resizeSession: boolean;
    scaleViewport: boolean;
    showDotCursor: boolean;
    viewOnly: boolean;
    qualityLevel: number;
    compressionLevel: number;
    readonly capabilities: { readonly power: boolean };
    addEventListener<K extends keyof RfbEventMap>(type: K, listener: (e: RfbEventMap[K]) => void): void;
    removeEventListener<K extends keyof RfbEventMap>(type: K, listener: (e: RfbEventMap[K]) => void): void;
    blur(): void;
    clipboardPasteFrom(text: string): void;
    disconnect(): void;
    focus(options?: FocusOptions): void;
    sendCredentials(credentials: { readonly username?: string; readonly password?: string; readonly target?: string }): void;
    sendCtrlAltDel(): void;
    sendKey(keysym: number, code: string | null, down?: boolean): void;
    toDataURL(type?: string, encoderOptions?: number): string;
    toBlob(callback: (blob: Blob | null) => void, type?: string, quality?: number): void;
  }
}
