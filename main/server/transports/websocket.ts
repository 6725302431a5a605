/**
 * RPC over a WebSocket (the browser UI). One JSON message per text frame. Authentication and the
 * Origin check happen in the http server before the upgrade; this file only moves messages.
 *
 * Give the WebSocketServer `maxPayload` too, so ws refuses oversized frames before buffering them;
 * the check here covers sockets built without it.
 */
import type { RawData, WebSocket } from 'ws';
import { MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, createConnection } from '../../common/rpc/protocol';
import type { Connection } from '../../common/rpc/protocol';

export interface WsConnectionOptions {
  /** Largest frame accepted; a bigger one closes the socket with 1009 (message too big). */
  readonly maxMessageBytes?: number;
}

/** ws readyState values (the enum lives on the class, which we import only as a type). */
const OPEN = 1;
const CLOSE_NORMAL = 1000;
const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_TOO_BIG = 1009;
const CLOSE_POLICY = 1008;

/** A peer with more than this queued and unread (events pile up for a client that stopped
 *  reading) is disconnected instead of growing the engine's memory without bound. */
export const MAX_UNREAD_BYTES = MAX_RESPONSE_BYTES;

export function wsConnection(ws: WebSocket, options: WsConnectionOptions = {}): Connection {
  const maxBytes = options.maxMessageBytes ?? MAX_REQUEST_BYTES;
  const handle = createConnection({
    write(msg) {
      const text = JSON.stringify(msg);
      if (ws.readyState !== OPEN) return;
      if (ws.bufferedAmount > MAX_UNREAD_BYTES) {
        ws.close(CLOSE_POLICY, 'This connection fell too far behind. Reconnect.');
        return;
      }
      ws.send(text);
    },
    end() {
      ws.close(CLOSE_NORMAL);
    },
  });

  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (isBinary) {
      ws.close(CLOSE_UNSUPPORTED_DATA, 'RPC messages are JSON text frames');
      return;
    }
    if (rawLength(data) > maxBytes) {
      ws.close(CLOSE_TOO_BIG, 'message too big');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(rawToString(data));
    } catch {
      return; // not JSON: nobody to answer, drop it
    }
    handle.receive(msg);
  });
  // ws emits 'close' after 'error'; the listener keeps an error from crashing the process.
  ws.on('error', () => handle.closed());
  ws.on('close', () => handle.closed());
  if (ws.readyState > OPEN) handle.closed();
  return handle.connection;
}

function rawLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
