/**
 * A Connection over a browser WebSocket (one JSON message per text frame; main/server/transports/
 * websocket.ts is the engine's end). The auth cookie rides along with the upgrade request.
 */
import { createConnection } from '../../main/common/rpc/protocol';
import type { Connection } from '../../main/common/rpc/protocol';
import { ErrorCode, VivariumError } from '../../main/common/errors';

// WebSocket.OPEN etc., spelled out so this also works with a WebSocket-like object where the
// global class is missing (node tests drive it with the `ws` package).
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

export function webSocketConnection(ws: WebSocket): Connection {
  const handle = createConnection({
    write(msg) {
      const text = JSON.stringify(msg);
      if (ws.readyState === OPEN) ws.send(text);
    },
    end: () => ws.close(1000),
  });
  ws.addEventListener('message', (e: MessageEvent) => {
    if (typeof e.data !== 'string') return;
    let msg: unknown;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return;
    }
    handle.receive(msg);
  });
  ws.addEventListener('close', () => handle.closed());
  ws.addEventListener('error', () => handle.closed());
  if (ws.readyState === CLOSING || ws.readyState === CLOSED) handle.closed();
  return handle.connection;
}

/** Opens `url` and resolves once the socket is open. */
export function openWebSocket(url: string, timeoutMs = 10_000): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const fail = (): void => {
      clearTimeout(timer);
      ws.close();
      reject(
        new VivariumError(
          ErrorCode.Internal,
          'Could not reach the Vivarium engine. Check that `vivarium serve` is running, open the address it printed, and reload the page.',
        ),
      );
    };
    const timer = setTimeout(fail, timeoutMs);
    ws.addEventListener('error', fail, { once: true });
    ws.addEventListener(
      'open',
      () => {
        clearTimeout(timer);
        ws.removeEventListener('error', fail);
        resolve(webSocketConnection(ws));
      },
      { once: true },
    );
  });
}
