/**
 * The guest's serial port in xterm.js. The engine's stream sends the scrollback first and then live
 * bytes; what the user types goes back as bytes. screenReaderMode keeps a DOM copy of the screen
 * (.xterm-accessibility) that assistive technology — and the e2e tests — can read.
 */
import '@xterm/xterm/css/xterm.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal, type ITheme } from '@xterm/xterm';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import { useServices } from '../engine';
import { usePrefersDark } from '../hooks/use-visibility';
import { consoleSilentText, isLive, serialSilentText } from '../lib/vm-actions';
import { streamUrlForPage } from '../lib/stream-url';
import { startStreamSession } from '../lib/stream-session';

type LinkStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting';

/** How much of a stopped VM's last output to show. */
const LOG_TAIL_BYTES = 256 * 1024;

const LIGHT: ITheme = {
  background: '#fbfbfc',
  foreground: '#1d2127',
  cursor: '#1d2127',
  selectionBackground: '#b6d3ff',
};
const DARK: ITheme = {
  background: '#15171b',
  foreground: '#d9dde3',
  cursor: '#d9dde3',
  selectionBackground: '#36507a',
};

export function SerialConsole({ vm, active, focusRequest = 0 }: { readonly vm: VmInfo; readonly active: boolean; readonly focusRequest?: number }): ReactNode {
  const services = useServices();
  const hostRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const socketRef = useRef<WebSocket | null>(null);
  /** Whether anything was written since the terminal was made: then a stopped VM's log is stale. */
  const hadOutputRef = useRef(false);
  const dark = usePrefersDark();
  const [status, setStatus] = useState<LinkStatus>('idle');
  const [linkError, setLinkError] = useState<string | null>(null);
  const [showingLog, setShowingLog] = useState(false);
  // Connected to this run and not one byte from the guest yet (the stream starts with what it wrote
  // so far, so a guest that wrote before the window opened is not silent).
  const [silent, setSilent] = useState(false);
  const silentRef = useRef(false);

  // The terminal lives as long as the tab panel; connections come and go with VM runs.
  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const term = new Terminal({
      screenReaderMode: true,
      scrollback: 10_000,
      fontFamily: 'ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 13,
      cursorBlink: true,
      allowProposedApi: false,
      theme: window.matchMedia('(prefers-color-scheme: dark)').matches ? DARK : LIGHT,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host);
    term.textarea?.setAttribute('aria-label', 'Serial console input');
    const encoder = new TextEncoder();
    const send = (bytes: Uint8Array): void => {
      const ws = socketRef.current;
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
    };
    const onData = term.onData((data) => send(encoder.encode(data)));
    // Non-UTF-8 input (some mouse reports) arrives as a binary string: one char per byte.
    const onBinary = term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    termRef.current = term;
    fitRef.current = fit;
    const ro = new ResizeObserver(() => {
      if (host.clientWidth > 0 && host.clientHeight > 0) fit.fit();
    });
    ro.observe(host);
    return () => {
      ro.disconnect();
      onData.dispose();
      onBinary.dispose();
      term.dispose();
      termRef.current = null;
      fitRef.current = null;
    };
  }, []);

  useEffect(() => {
    if (termRef.current) termRef.current.options.theme = dark ? DARK : LIGHT;
  }, [dark]);

  useEffect(() => {
    if (active) requestAnimationFrame(() => fitRef.current?.fit());
  }, [active]);

  useEffect(() => {
    if (focusRequest > 0) requestAnimationFrame(() => termRef.current?.focus());
  }, [focusRequest]);

  const live = isLive(vm.state);
  const runKey = live ? `${vm.startedAt ?? ''}:${vm.pid ?? ''}` : null;

  // A stopped VM: show what it last wrote, once, if the terminal is still empty.
  useEffect(() => {
    if (runKey !== null || vm.config === null) return;
    let cancelled = false;
    services.vms.serialLog(vm.id, { maxBytes: LOG_TAIL_BYTES }).then(
      (text) => {
        const term = termRef.current;
        if (cancelled || !term || text === '' || hadOutputRef.current) return;
        hadOutputRef.current = true;
        // The log holds raw guest output; a bare LF would leave the cursor mid-line.
        term.write(text.replace(/\r?\n/g, '\r\n'));
        setShowingLog(true);
      },
      () => undefined,
    );
    return () => {
      cancelled = true;
    };
  }, [runKey, services, vm.id, vm.config]);

  useEffect(() => {
    if (runKey === null) {
      setStatus('idle');
      setLinkError(null);
      silentRef.current = false;
      setSilent(false);
      return;
    }
    return startStreamSession({
      openUrl: async () => streamUrlForPage((await services.console.openStream(vm.id, 'serial')).url, window.location),
      onStatus: setStatus,
      onError: setLinkError,
      attach: (url, events) => {
        const socket = new WebSocket(url);
        socket.binaryType = 'arraybuffer';
        socket.onopen = () => {
          socketRef.current = socket;
          events.connected();
          setShowingLog(false);
          // The stream starts with the scrollback: start from a clean screen so nothing repeats.
          termRef.current?.reset();
          silentRef.current = true;
          setSilent(true);
        };
        socket.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
          const term = termRef.current;
          if (!term) return;
          hadOutputRef.current = true;
          const size = typeof e.data === 'string' ? e.data.length : e.data.byteLength;
          if (silentRef.current && size > 0) {
            silentRef.current = false;
            setSilent(false);
          }
          term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
        };
        socket.onclose = () => {
          if (socketRef.current === socket) socketRef.current = null;
          events.closed();
        };
        return () => {
          if (socketRef.current === socket) socketRef.current = null;
          socket.onclose = null;
          socket.close();
        };
      },
    });
  }, [runKey, services, vm.id]);

  return (
    <div className="serial-pane">
      <div className="console-bar" role="toolbar" aria-label="Serial console controls">
        <button type="button" className="btn btn-small" onClick={() => termRef.current?.clear()}>
          Clear
        </button>
        <button type="button" className="btn btn-small" onClick={() => termRef.current?.focus()}>
          Focus console
        </button>
        <span className="spacer" />
        {linkError && status !== 'connected' && <span className="console-error">{linkError}</span>}
        {/* A stopped QEMU keeps its socket open: the link is up, but nothing comes (same fact as the card). */}
        <span className="console-status" data-status={status === 'connected' && consoleSilentText(vm) ? 'silent' : status}>
          {status === 'idle' ? (showingLog ? 'Not running — last output' : 'Not running') : status === 'connected' ? (consoleSilentText(vm) ?? 'Connected') : serialStatusLabel(status)}
        </span>
      </div>
      {silent && status === 'connected' && !consoleSilentText(vm) && (
        <p className="serial-silent muted" role="status" data-testid="serial-silent">
          {serialSilentText(vm.config?.arch)}
        </p>
      )}
      <div className="serial-frame">
        <div ref={hostRef} className="serial-host" role="region" aria-label="Serial console" data-testid="serial-console" />
      </div>
    </div>
  );
}

function serialStatusLabel(s: Exclude<LinkStatus, 'idle'>): string {
  return s === 'connected' ? 'Connected' : s === 'connecting' ? 'Connecting…' : 'Reconnecting…';
}
