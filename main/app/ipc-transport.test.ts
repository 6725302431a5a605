import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Disposable } from '../common/contract';
import { fakeServices } from '../common/rpc/fake-services';
import { IPC_CHANNEL } from '../common/rpc/protocol';
import { RpcServer } from '../common/rpc/server';

// The Electron binary does not exist on this machine, so ipcMain, WebContents and WebFrameMain are
// small stand-ins with the members the transport uses. What is tested is the transport's own logic:
// who may talk, and when a page's subscriptions end.
vi.mock('electron', async () => {
  const events = await import('node:events');
  return { ipcMain: new events.EventEmitter() };
});

const ipcMain = (await import('electron')).ipcMain as unknown as EventEmitter;
const { serveIpc } = await import('./ipc-transport');

const TRUSTED = 'app://vivarium/index.html';

class FakeFrame {
  parent: FakeFrame | null = null;
  readonly sent: Array<[string, string, string]> = [];
  constructor(
    readonly processId: number,
    readonly routingId: number,
    public url: string,
  ) {}
  isDestroyed(): boolean {
    return false;
  }
  send(channel: string, session: string, json: string): void {
    this.sent.push([channel, session, json]);
  }
}

class FakeWebContents extends EventEmitter {
  private destroyed = false;
  constructor(
    readonly id: number,
    readonly mainFrame: FakeFrame,
  ) {
    super();
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('destroyed');
  }
}

let served: Disposable | null = null;
afterEach(() => {
  served?.dispose();
  served = null;
});

function setup() {
  const fake = fakeServices();
  const rejected: string[] = [];
  served = serveIpc(new RpcServer(fake.services), {
    isTrustedSender: (frame, url) => frame !== null && url.startsWith('app://vivarium/'),
    onRejected: (reason) => rejected.push(reason),
  });
  const frame = new FakeFrame(1, 1, TRUSTED);
  const wc = new FakeWebContents(1, frame);
  const send = (msg: unknown, opts: { from?: FakeFrame | null; session?: string } = {}): void => {
    const from = opts.from === undefined ? frame : opts.from;
    ipcMain.emit(IPC_CHANNEL, { sender: wc, senderFrame: from }, opts.session ?? 's1', JSON.stringify(msg));
  };
  const replies = (session = 's1') =>
    frame.sent.filter(([, s]) => s === session).map(([, , json]) => JSON.parse(json) as { id: number; ok?: boolean; e?: { code: string } });
  return { fake, wc, frame, send, replies, rejected };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 2000;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('electron ipc transport', () => {
  it('answers calls from the trusted main frame, to that frame and session', async () => {
    const t = setup();
    t.send({ t: 'call', id: 1, s: 'vms', m: 'list', a: [] });
    await waitFor(() => t.replies().length === 1, 'the reply');
    expect(t.replies()[0]).toMatchObject({ t: 'result', id: 1, ok: true });
    expect(t.frame.sent[0]?.[0]).toBe(IPC_CHANNEL);
  });

  it('ignores sub-frames, untrusted URLs, missing frames and non-string payloads', async () => {
    const t = setup();
    const child = new FakeFrame(1, 2, TRUSTED);
    child.parent = t.frame;
    t.send({ t: 'call', id: 1, s: 'vms', m: 'list', a: [] }, { from: child });
    t.send({ t: 'call', id: 2, s: 'vms', m: 'list', a: [] }, { from: new FakeFrame(1, 1, 'https://evil.example/') });
    t.send({ t: 'call', id: 3, s: 'vms', m: 'list', a: [] }, { from: null });
    ipcMain.emit(IPC_CHANNEL, { sender: t.wc, senderFrame: t.frame }, 's1', { t: 'call', id: 4, s: 'vms', m: 'list', a: [] });
    ipcMain.emit(IPC_CHANNEL, { sender: t.wc, senderFrame: t.frame }, 's1', 'x'.repeat(2 * 1024 * 1024));
    t.frame.url = 'https://evil.example/';
    t.send({ t: 'call', id: 5, s: 'vms', m: 'list', a: [] });
    await new Promise((r) => setTimeout(r, 20));
    expect(t.fake.vms.calls).toEqual([]);
    expect(t.frame.sent).toEqual([]);
    expect(t.rejected).toHaveLength(6);
  });

  it('disposes a page’s subscriptions on reload (new session) and when the webContents is destroyed', async () => {
    const t = setup();
    t.send({ t: 'sub', id: 1, s: 'vms', ev: 'onDidChange' });
    await waitFor(() => t.fake.vms.changes.size === 1, 'the subscription');

    // The reloaded page has a new session and starts its ids at 1 again: no collision.
    t.send({ t: 'sub', id: 1, s: 'vms', ev: 'onDidChange' }, { session: 's2' });
    await waitFor(() => t.replies('s2').length === 1, 'the new page’s ack');
    expect(t.replies('s2')[0]).toMatchObject({ ok: true });
    expect(t.fake.vms.changes.size).toBe(1);

    // A straggler from the old page is dropped rather than reviving its connection.
    t.send({ t: 'sub', id: 2, s: 'vms', ev: 'onDidChange' }, { session: 's1' });
    await new Promise((r) => setTimeout(r, 20));
    expect(t.fake.vms.changes.size).toBe(1);

    t.wc.destroy();
    expect(t.fake.vms.changes.size).toBe(0);
  });

  it('ends the session when a main-frame navigation commits, not when one starts (it may be cancelled) or stays in the page', async () => {
    const t = setup();
    t.send({ t: 'sub', id: 1, s: 'vms', ev: 'onDidChange' });
    await waitFor(() => t.fake.vms.changes.size === 1, 'the subscription');
    // Electron's order for a link to a foreign page: did-start-navigation, then will-navigate, which
    // the app cancels. The page stays, and so must its connection.
    t.wc.emit('did-start-navigation', { url: 'https://example.org/', isMainFrame: true, isSameDocument: false });
    t.wc.emit('will-navigate', { url: 'https://example.org/', preventDefault() {} });
    t.wc.emit('did-navigate-in-page', {}, 'app://vivarium/index.html#/host', true);
    t.send({ t: 'call', id: 2, s: 'vms', m: 'list', a: [] });
    await waitFor(() => t.replies().some((r) => r.id === 2), 'a reply after the cancelled navigation');
    expect(t.fake.vms.changes.size).toBe(1);
    // A reload or a navigation that commits: the old document's subscriptions go.
    t.wc.emit('did-navigate', {}, 'app://vivarium/index.html', 200, 'OK');
    expect(t.fake.vms.changes.size).toBe(0);
  });

  it('stops listening and drops every subscription when disposed', async () => {
    const t = setup();
    t.send({ t: 'sub', id: 1, s: 'stats', ev: 'onDidSample' });
    await waitFor(() => t.fake.stats.samples.size === 1, 'the subscription');
    served?.dispose();
    served = null;
    expect(t.fake.stats.samples.size).toBe(0);
    expect(ipcMain.listenerCount(IPC_CHANNEL)).toBe(0);
    expect(t.wc.listenerCount('destroyed')).toBe(0);
  });
});
