/**
 * The Terminal tab of a cloud-init sandbox (issue 11): xterm.js over the engine's `terminal` stream,
 * an SSH session on a pty running the system's OpenSSH client with the VM's key and its own
 * known_hosts (main/server/terminal-stream.ts). It connects as soon as the guest's sshd answers,
 * reconnects after a reboot (a new stream when the old one closes), follows the window's size
 * (a `{"type":"resize"}` text frame), and copies and pastes as xterm.js does.
 */
import '@xterm/xterm/css/xterm.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal, type ITheme } from '@xterm/xterm';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import { useServices } from '../engine';
import { usePrefersDark } from '../hooks/use-visibility';
import { isLive } from '../lib/vm-actions';
import { streamUrlForPage } from '../lib/stream-url';
import { startStreamSession } from '../lib/stream-session';
import { errorMessage } from '../lib/errors';
import { CopyButton } from './first-run';

/** The ssh command and whether this engine opens terminals (the desktop app), for the running VM. */
interface SystemTerminal {
  readonly line: string;
  readonly canOpen: boolean;
}

type LinkStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting';

const LIGHT: ITheme = { background: '#fbfbfc', foreground: '#1d2127', cursor: '#1d2127', selectionBackground: '#b6d3ff' };
const DARK: ITheme = { background: '#15171b', foreground: '#d9dde3', cursor: '#d9dde3', selectionBackground: '#36507a' };

export function SshTerminal({ vm, active }: { readonly vm: VmInfo; readonly active: boolean }): ReactNode {
  const services = useServices();
  const hostRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const socketRef = useRef<WebSocket | null>(null);
  const dark = usePrefersDark();
  const [status, setStatus] = useState<LinkStatus>('idle');
  const [linkError, setLinkError] = useState<string | null>(null);
  const [system, setSystem] = useState<SystemTerminal | null>(null);
  const [showCommand, setShowCommand] = useState(false);
  const [openNote, setOpenNote] = useState<string | null>(null);

  const sendSize = (): void => {
    const ws = socketRef.current;
    const term = termRef.current;
    if (ws && term && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
  };

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const term = new Terminal({
      screenReaderMode: true,
      scrollback: 10_000,
      fontFamily: 'ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 13,
      cursorBlink: true,
      theme: window.matchMedia('(prefers-color-scheme: dark)').matches ? DARK : LIGHT,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host);
    term.textarea?.setAttribute('aria-label', 'Terminal input');
    const encoder = new TextEncoder();
    const send = (bytes: Uint8Array): void => {
      const ws = socketRef.current;
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
    };
    const onData = term.onData((data) => send(encoder.encode(data)));
    const onBinary = term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    const onResize = term.onResize(() => sendSize());
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
      onResize.dispose();
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

  const live = isLive(vm.state);
  const runKey = live ? `${vm.startedAt ?? ''}:${vm.pid ?? ''}` : null;

  // "Open in system terminal": the engine builds the command (key, known_hosts, this run's port).
  useEffect(() => {
    setSystem(null);
    setOpenNote(null);
    if (runKey === null) {
      setShowCommand(false);
      return;
    }
    let current = true;
    void Promise.all([services.sandbox.sshAccess(vm.id), services.sandbox.sshCommand(vm.id)]).then(
      ([access, cmd]) => current && setSystem({ line: cmd.line, canOpen: access.canOpenTerminal }),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [runKey, services, vm.id]);

  const openSystemTerminal = (): void => {
    if (!system) return;
    if (!system.canOpen) {
      setShowCommand((v) => !v);
      return;
    }
    setOpenNote(null);
    services.sandbox.openTerminal(vm.id).then(
      (r) => setOpenNote(`Opened in ${r.terminal}.`),
      (e: unknown) => {
        setOpenNote(errorMessage(e));
        setShowCommand(true);
      },
    );
  };

  useEffect(() => {
    if (runKey === null) {
      setStatus('idle');
      setLinkError(null);
      return;
    }
    return startStreamSession({
      openUrl: async () => streamUrlForPage((await services.console.openStream(vm.id, 'terminal')).url, window.location),
      onStatus: setStatus,
      onError: setLinkError,
      attach: (url, events) => {
        const socket = new WebSocket(url);
        socket.binaryType = 'arraybuffer';
        socket.onopen = () => {
          socketRef.current = socket;
          events.connected();
          sendSize();
        };
        socket.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
          termRef.current?.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
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
      <div className="console-bar" role="toolbar" aria-label="Terminal controls">
        <button type="button" className="btn btn-small" onClick={() => termRef.current?.focus()}>
          Focus terminal
        </button>
        {system && (
          <button type="button" className="btn btn-small" aria-expanded={system.canOpen ? undefined : showCommand} onClick={openSystemTerminal}>
            Open in system terminal
          </button>
        )}
        {system?.canOpen && (
          <button type="button" className="btn btn-small btn-ghost" aria-expanded={showCommand} onClick={() => setShowCommand((v) => !v)}>
            SSH command
          </button>
        )}
        {openNote && <span className="muted" role="status">{openNote}</span>}
        <span className="spacer" />
        {linkError && status !== 'connected' && <span className="console-error">{linkError}</span>}
        <span className="console-status" data-status={status}>
          {status === 'idle' ? 'Not running' : status === 'connected' ? 'Connected (SSH)' : status === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
        </span>
      </div>
      {system && showCommand && (
        <div className="console-bar" role="group" aria-label="SSH command">
          <span className="muted">{system.canOpen ? 'The same session in any terminal:' : 'Paste into your terminal:'}</span>
          <code id="ssh-command-line" aria-label="SSH command line" style={{ flex: '1 1 20em', wordBreak: 'break-all', userSelect: 'all' }}>
            {system.line}
          </code>
          <CopyButton text={system.line} selectId="ssh-command-line" />
        </div>
      )}
      <div className="serial-frame">
        <div ref={hostRef} className="serial-host" role="region" aria-label="Terminal" data-testid="ssh-terminal" />
      </div>
    </div>
  );
}
