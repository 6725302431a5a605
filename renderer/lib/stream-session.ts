/**
 * A console connection that comes back by itself: fetch a fresh single-use stream URL, attach a
 * client to it, and when it closes (VM restarting, engine restarting) try again with capped
 * exponential backoff. Shared by the display (noVNC) and the serial console (xterm).
 */
import { errorMessage } from './errors';

export const MAX_RETRY_MS = 5_000;

export type StreamStatus = 'connecting' | 'reconnecting' | 'connected';

export interface StreamSessionOptions {
  /** A new stream URL for every attempt (tickets are single-use). */
  openUrl(): Promise<string>;
  /** Connects a client; calls `connected` once it is up and `closed` when it goes. Returns a
   *  function that closes it. */
  attach(url: string, events: { connected(): void; closed(): void }): () => void;
  onStatus(status: StreamStatus): void;
  /** A sentence when an attempt failed, null once connected. */
  onError(message: string | null): void;
}

/** Starts the session; the returned function ends it (and closes the client). */
export function startStreamSession(o: StreamSessionOptions): () => void {
  let cancelled = false;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let close: (() => void) | null = null;
  let reconnecting = false;

  const retry = (): void => {
    if (cancelled) return;
    reconnecting = true;
    o.onStatus('reconnecting');
    timer = setTimeout(() => void connect(), Math.min(MAX_RETRY_MS, 500 * 2 ** attempt++));
  };

  const connect = async (): Promise<void> => {
    if (cancelled) return;
    if (!reconnecting) o.onStatus('connecting');
    try {
      const url = await o.openUrl();
      if (cancelled) return;
      let closedOnce = false;
      close = o.attach(url, {
        connected: () => {
          if (cancelled) return;
          attempt = 0;
          reconnecting = false;
          o.onError(null);
          o.onStatus('connected');
        },
        closed: () => {
          if (closedOnce) return;
          closedOnce = true;
          close = null;
          retry();
        },
      });
    } catch (e) {
      if (cancelled) return;
      o.onError(errorMessage(e));
      retry();
    }
  };

  void connect();
  return () => {
    cancelled = true;
    clearTimeout(timer);
    close?.();
    close = null;
  };
}
