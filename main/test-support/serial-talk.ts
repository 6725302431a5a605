/**
 * Talking to a running test guest's shell over its serial socket, as the snapshot and suspend
 * integration tests do: type a line, then wait for an answer in the VM's serial log.
 */
import * as net from 'node:net';
import type { Engine } from '../services/engine';

/** Types `line` (and a newline) into the serial socket at `socketPath`, then lets go after 200 ms. */
export function typeLine(socketPath: string, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath, () => s.write(`${line}\n`, () => setTimeout(() => (s.end(), resolve()), 200)));
    s.on('error', reject);
  });
}

/**
 * Types `line` into VM `id`'s serial console and waits for `pattern` in what its serial log gains
 * afterwards; polls every 100 ms. @throws Error with the log's tail after `timeoutMs` (ms).
 */
export async function ask(e: Pick<Engine, 'manager' | 'layout'>, id: string, line: string, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
  const before = (await e.manager.serialLog(id, {})).length;
  await typeLine(e.layout.runtime(id).serial, line);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec((await e.manager.serialLog(id, {})).slice(before));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no ${pattern} after typing ${line}; serial tail: ${(await e.manager.serialLog(id, {})).slice(-500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
