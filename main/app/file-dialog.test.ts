import type { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Disposable } from '../common/contract';
import { FILE_DIALOG_CHANNEL } from '../common/rpc/protocol';

// The Electron binary does not exist here: ipcMain, the frame and the dialog are stand-ins with the
// members serveFileDialog uses. What is tested is its own logic: who may ask, what is checked, and
// what goes back to the page.
vi.mock('electron', async () => {
  const events = await import('node:events');
  return { ipcMain: new events.EventEmitter() };
});

const ipcMain = (await import('electron')).ipcMain as unknown as EventEmitter;
const { serveFileDialog } = await import('./ipc-transport');

const TRUSTED = 'app://vivarium/index.html';

class FakeFrame {
  parent: FakeFrame | null = null;
  readonly sent: unknown[][] = [];
  constructor(public url: string) {}
  readonly processId = 1;
  readonly routingId = 1;
  isDestroyed(): boolean {
    return false;
  }
  send(...args: unknown[]): void {
    this.sent.push(args);
  }
}

let served: Disposable | null = null;
afterEach(() => {
  served?.dispose();
  served = null;
});

function setup(answer: { canceled: boolean; filePaths: string[] } | Error = { canceled: false, filePaths: ['/home/me/debian.iso'] }) {
  const frame = new FakeFrame(TRUSTED);
  const wc = { mainFrame: frame, isDestroyed: () => false };
  const asked: unknown[] = [];
  const rejected: string[] = [];
  served = serveFileDialog({
    isTrustedSender: (_f, url) => url === TRUSTED,
    showOpenDialog: async (_wc, o) => {
      asked.push(o);
      if (answer instanceof Error) throw answer;
      return answer;
    },
    onRejected: (r) => rejected.push(r),
  });
  const request = (id: unknown, req: unknown, from: FakeFrame = frame): void => {
    ipcMain.emit(FILE_DIALOG_CHANNEL, { sender: wc, senderFrame: from }, id, req);
  };
  return { frame, asked, rejected, request };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('serveFileDialog (the desktop app Browse)', () => {
  it('opens the Open dialog with the filter asked for and answers the page with the chosen path', async () => {
    const t = setup();
    t.request(7, { filter: 'iso', title: 'ISO image path' });
    await settle();
    expect(t.asked).toEqual([{ title: 'ISO image path', properties: ['openFile'], filters: [{ name: 'CD/DVD images', extensions: ['iso'] }, { name: 'All files', extensions: ['*'] }] }]);
    expect(t.frame.sent).toEqual([[FILE_DIALOG_CHANNEL, 7, { path: '/home/me/debian.iso' }]]);
  });

  it('picks a folder for "folder" (a shared folder) and offers every file for "any"', async () => {
    const t = setup({ canceled: false, filePaths: ['/home/me/project'] });
    t.request(8, { filter: 'folder', title: 'Shared folder' });
    t.request(9, { filter: 'any', title: 'Password file' });
    await settle();
    expect(t.asked).toEqual([
      { title: 'Shared folder', properties: ['openDirectory'], filters: [] },
      { title: 'Password file', properties: ['openFile'], filters: [{ name: 'All files', extensions: ['*'] }] },
    ]);
    expect(t.frame.sent[0]).toEqual([FILE_DIALOG_CHANNEL, 8, { path: '/home/me/project' }]);
  });

  it('answers null when the person cancels, and an error sentence when the dialog fails', async () => {
    const t = setup({ canceled: true, filePaths: [] });
    t.request(1, { filter: 'disk', title: 'x' });
    await settle();
    expect(t.frame.sent).toEqual([[FILE_DIALOG_CHANNEL, 1, { path: null }]]);
    served?.dispose();
    const u = setup(new Error('no display'));
    u.request(2, { filter: 'images', title: 'x' });
    await settle();
    expect(u.frame.sent).toEqual([[FILE_DIALOG_CHANNEL, 2, { error: 'The file dialog could not open: no display' }]]);
  });

  it('refuses pages it does not trust, frames that are not the main frame, and malformed requests', async () => {
    const t = setup();
    t.request(1, { filter: 'iso', title: 'x' }, new FakeFrame('https://evil.example/'));
    const child = new FakeFrame(TRUSTED);
    child.parent = t.frame;
    t.request(2, { filter: 'iso', title: 'x' }, child);
    t.request('3', { filter: 'iso', title: 'x' });
    t.request(4, { filter: 'exe', title: 'x' });
    t.request(5, { filter: 'iso', title: 'x', defaultPath: '/etc' });
    await settle();
    expect(t.asked).toEqual([]);
    expect(t.rejected).toEqual(['file dialog request from an untrusted page', 'file dialog request from a frame that is not the main frame', 'file dialog request without an id']);
    expect(t.frame.sent.map((s) => s[1])).toEqual([4, 5]);
    expect(t.frame.sent[0]![2]).toEqual({ error: 'The file dialog needs {filter: "iso" | "disk" | "images" | "ssh-key" | "any" | "folder", title}.' });
  });

  it('stops listening when disposed', () => {
    setup();
    expect(ipcMain.listenerCount(FILE_DIALOG_CHANNEL)).toBe(1);
    served?.dispose();
    served = null;
    expect(ipcMain.listenerCount(FILE_DIALOG_CHANNEL)).toBe(0);
  });
});
