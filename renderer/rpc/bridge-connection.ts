/** A Connection over the Electron preload bridge. IPC has no hang-up: the page and the engine live
 *  and die together, so the connection only closes when this side closes it. */
import { createConnection } from '../../main/common/rpc/protocol';
import type { Connection, VivariumBridge } from '../../main/common/rpc/protocol';

export function bridgeConnection(bridge: VivariumBridge): Connection {
  let unsubscribe: (() => void) | null = null;
  const handle = createConnection({
    write: (msg) => bridge.send(msg),
    end: () => unsubscribe?.(),
  });
  unsubscribe = bridge.onMessage((msg) => handle.receive(msg));
  return handle.connection;
}
