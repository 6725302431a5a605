/**
 * Two connected in-process Connections, for an engine hosted inside the same process (tests, a CLI
 * command that runs its own engine). Messages go through JSON like on every real wire, so values
 * that would not survive a socket (undefined fields, Dates, class instances) don't survive here
 * either, and delivery is asynchronous like a real transport's.
 */
import { createConnection } from './protocol';
import type { Connection } from './protocol';

export function createConnectionPair(): readonly [Connection, Connection] {
  const peers: { a?: (json: string) => void; b?: (json: string) => void } = {};
  const closes: { a?: () => void; b?: () => void } = {};

  const side = (self: 'a' | 'b', other: 'a' | 'b'): Connection => {
    const handle = createConnection({
      write(msg) {
        const json = JSON.stringify(msg);
        queueMicrotask(() => peers[other]?.(json));
      },
      end() {
        queueMicrotask(() => closes[other]?.());
      },
    });
    peers[self] = (json) => handle.receive(JSON.parse(json));
    closes[self] = () => handle.closed();
    return handle.connection;
  };

  return [side('a', 'b'), side('b', 'a')];
}
