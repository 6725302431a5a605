/**
 * The guest's screen through noVNC. The engine relays QEMU's VNC unix socket over a single-use
 * WebSocket URL (console.openStream); a new URL is fetched for every (re)connection.
 *
 * Input: clicking the screen gives it keyboard focus (noVNC's focusOnClick) and every key goes to the
 * guest, Tab included. Ctrl+Alt+G releases it, as in VMware; the "Capture input" button captures it
 * again without a mouse.
 */
import RFB from '@novnc/novnc';
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import { Icon } from '../components/icons';
import { useServices } from '../engine';
import { isReleaseCombo, RELEASE_COMBO_LABEL } from '../lib/keys';
import { consoleSilentText, hasDisplay, isLive } from '../lib/vm-actions';
import { streamUrlForPage } from '../lib/stream-url';
import { startStreamSession } from '../lib/stream-session';

type LinkStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting';


export function DisplayConsole({ vm }: { readonly vm: VmInfo }): ReactNode {
  const services = useServices();
  const paneRef = useRef<HTMLDivElement>(null);
  const frameRef = useRef<HTMLDivElement>(null);
  const screenRef = useRef<HTMLDivElement>(null);
  const captureRef = useRef<HTMLButtonElement>(null);
  const rfbRef = useRef<RFB | null>(null);
  const scaleRef = useRef(true);

  const [status, setStatus] = useState<LinkStatus>('idle');
  const [linkError, setLinkError] = useState<string | null>(null);
  const [scale, setScale] = useState(true);
  const [captured, setCaptured] = useState(false);
  const [fullscreen, setFullscreen] = useState(false);
  const [clipboardOpen, setClipboardOpen] = useState(false);
  const [guestText, setGuestText] = useState('');
  const clipboardId = useId();

  const display = hasDisplay(vm);
  const live = isLive(vm.state);
  // A new run of QEMU (new start time) means a new VNC server: reconnect from scratch.
  const runKey = display && live ? `${vm.startedAt ?? ''}:${vm.pid ?? ''}` : null;

  useEffect(() => {
    const target = screenRef.current;
    if (runKey === null || !target) {
      setStatus('idle');
      setLinkError(null);
      return;
    }
    return startStreamSession({
      openUrl: async () => streamUrlForPage((await services.console.openStream(vm.id, 'vnc')).url, window.location),
      onStatus: setStatus,
      onError: setLinkError,
      attach: (url, events) => {
        const r = new RFB(target, url, { shared: true });
        rfbRef.current = r;
        r.scaleViewport = scaleRef.current;
        r.clipViewport = false;
        r.resizeSession = false;
        r.focusOnClick = true;
        r.background = 'transparent';
        r.addEventListener('connect', () => {
          events.connected();
          // noVNC's canvas has no role or name. "application": keys go to the guest, not to the
          // screen reader's browse mode; the name says what has focus.
          const canvas = target.querySelector('canvas');
          canvas?.setAttribute('role', 'application');
          canvas?.setAttribute('aria-label', 'Guest display');
          canvas?.setAttribute('aria-roledescription', 'virtual machine display');
        });
        r.addEventListener('disconnect', () => {
          if (rfbRef.current === r) rfbRef.current = null;
          setCaptured(false);
          events.closed();
        });
        r.addEventListener('securityfailure', (e) => {
          setLinkError(`The display refused the connection${e.detail.reason ? `: ${e.detail.reason}` : ''}.`);
        });
        r.addEventListener('clipboard', (e) => setGuestText(e.detail.text));
        return () => {
          if (rfbRef.current === r) rfbRef.current = null;
          r.disconnect();
          setCaptured(false);
        };
      },
    });
  }, [runKey, services, vm.id]);

  // Ctrl+Alt+G: listen in the capture phase on the frame, so the combo is seen before noVNC's
  // keyboard handler on the canvas and never reaches the guest.
  useEffect(() => {
    const frame = frameRef.current;
    if (!frame) return;
    const onKeyDown = (e: KeyboardEvent): void => {
      if (!isReleaseCombo(e)) return;
      e.preventDefault();
      e.stopPropagation();
      rfbRef.current?.blur();
      captureRef.current?.focus();
    };
    frame.addEventListener('keydown', onKeyDown, true);
    return () => frame.removeEventListener('keydown', onKeyDown, true);
  }, []);

  useEffect(() => {
    const onChange = (): void => setFullscreen(document.fullscreenElement !== null && document.fullscreenElement === paneRef.current);
    document.addEventListener('fullscreenchange', onChange);
    return () => document.removeEventListener('fullscreenchange', onChange);
  }, []);

  const toggleScale = (): void => {
    const next = !scale;
    scaleRef.current = next;
    setScale(next);
    if (rfbRef.current) rfbRef.current.scaleViewport = next;
  };

  const toggleFullscreen = (): void => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void paneRef.current?.requestFullscreen().catch(() => undefined);
  };

  const connected = status === 'connected';
  const overlay = overlayText(display, live, vm.state, status);

  return (
    <div ref={paneRef} className="display-pane">
      <div className="console-bar" role="toolbar" aria-label="Display controls">
        <button type="button" className="btn btn-small" aria-pressed={scale} onClick={toggleScale} disabled={!display}>
          <Icon name="fit" />
          Scale to fit
        </button>
        <button type="button" className="btn btn-small" onClick={toggleFullscreen} disabled={!display}>
          <Icon name="fullscreen" />
          {fullscreen ? 'Exit full screen' : 'Full screen'}
        </button>
        <button
          type="button"
          className="btn btn-small"
          aria-expanded={clipboardOpen}
          aria-controls={clipboardId}
          onClick={() => setClipboardOpen((o) => !o)}
          disabled={!display}
        >
          <Icon name="clipboard" />
          Clipboard
        </button>
        <button ref={captureRef} type="button" className="btn btn-small" disabled={!connected} onClick={() => rfbRef.current?.focus()}>
          <Icon name="pointer" />
          Capture input
        </button>
        <span className="spacer" />
        {connected && (
          <span className={`display-hint ${captured ? 'is-captured' : ''}`} role="status">
            {captured ? `Press ${RELEASE_COMBO_LABEL} to release` : 'Click the display to capture keyboard and mouse'}
          </span>
        )}
        <span className="console-status" data-status={status === 'connected' && consoleSilentText(vm) ? 'silent' : status}>
          {status === 'connected' ? (consoleSilentText(vm) ?? 'Connected') : statusLabel(status)}
        </span>
      </div>

      <div className="display-body">
        <div
          ref={frameRef}
          className={`display-frame ${scale ? 'is-scaled' : 'is-native'} ${captured ? 'is-captured' : ''}`}
          onFocus={(e) => setCaptured(e.target instanceof HTMLCanvasElement)}
          onBlur={(e) => {
            if (!(e.relatedTarget instanceof HTMLCanvasElement)) setCaptured(false);
          }}
        >
          <div ref={screenRef} className="vnc-screen" data-testid="vnc-canvas" />
          {overlay && (
            <div className="display-overlay">
              <p>{overlay}</p>
              {linkError && status !== 'connected' && <p className="overlay-error">{linkError}</p>}
            </div>
          )}
        </div>
        {clipboardOpen && <ClipboardPanel id={clipboardId} guestText={guestText} connected={connected} rfbRef={rfbRef} />}
      </div>
    </div>
  );
}

function statusLabel(s: LinkStatus): string {
  switch (s) {
    case 'idle':
      return 'Not connected';
    case 'connecting':
      return 'Connecting…';
    case 'connected':
      return 'Connected';
    case 'reconnecting':
      return 'Reconnecting…';
  }
}

function overlayText(display: boolean, live: boolean, state: VmInfo['state'], status: LinkStatus): string | null {
  if (!display) return 'This VM has no graphical display. Its console is on the Serial tab.';
  if (!live) {
    if (state === 'starting') return 'Starting…';
    if (state === 'stopping') return 'Shutting down…';
    if (state === 'broken') return 'This VM cannot run until its configuration is repaired.';
    return 'The VM is not running. Start it to see its display.';
  }
  if (status === 'connecting') return 'Connecting to the display…';
  if (status === 'reconnecting') return 'Reconnecting to the display…';
  return null;
}

function ClipboardPanel(props: {
  readonly id: string;
  readonly guestText: string;
  readonly connected: boolean;
  readonly rfbRef: { readonly current: RFB | null };
}): ReactNode {
  const [text, setText] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const guestId = useId();
  const pasteId = useId();

  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(props.guestText);
      setNote('Copied to the host clipboard.');
    } catch {
      setNote('The browser did not allow copying; select the text and press Ctrl+C.');
    }
  };
  const paste = (): void => {
    props.rfbRef.current?.clipboardPasteFrom(text);
    setNote('Sent to the guest clipboard.');
  };

  return (
    <section id={props.id} className="clipboard-panel" aria-label="Clipboard">
      <label className="field-label" htmlFor={guestId}>
        Guest clipboard
      </label>
      <textarea id={guestId} className="input textarea" readOnly value={props.guestText} rows={5} placeholder="Text copied in the guest appears here." />
      <button type="button" className="btn btn-small" disabled={props.guestText === ''} onClick={() => void copy()}>
        Copy to host clipboard
      </button>
      <label className="field-label" htmlFor={pasteId}>
        Text to paste into the guest
      </label>
      <textarea id={pasteId} className="input textarea" value={text} rows={5} onChange={(e) => setText(e.target.value)} />
      <button type="button" className="btn btn-small" disabled={!props.connected || text === ''} onClick={paste}>
        Paste to guest
      </button>
      <p className="field-hint" role="status">
        {note ?? ''}
      </p>
    </section>
  );
}
