/**
 * The QEMU driver's monitor pool against a fake QMP socket that behaves as QEMU's does (one client
 * at a time; a second connection waits, unanswered, until the first one leaves) and as a QEMU stopped
 * with kill -STOP right after it greeted: it answered qmp_capabilities, then nothing. A real QEMU
 * cannot be stopped at that exact point on purpose; the case is a moment of every monitor connection.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DriverVm } from '../driver';
import { Layout } from '../../paths';
import { EventLog } from '../../runtime/event-log';
import type { RuntimeRecord } from '../../runtime/records';
import { RunStates } from '../../runtime/run-state';
import { QemuDriver } from './qemu-driver';

const ID = '5ca1ab1e-0000-4000-8000-0000000000b1';
let home: string;
let runtime: string;
let layout: Layout;
let server: net.Server | null = null;
/** The fake's end of every connection, ended after each test (a leaked client would keep close() waiting). */
const sockets = new Set<net.Socket>();
let driver: QemuDriver | null = null;

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-mp-'));
  runtime = fs.mkdtempSync('/tmp/viv-mp-rt-');
  layout = new Layout(home, path.join(runtime, 'lib'), runtime);
  layout.ensureRuntimeDir(layout.runtime(ID).dir);
});

afterEach(async () => {
  driver?.dispose();
  driver = null;
  for (const s of sockets) s.destroy();
  sockets.clear();
  await new Promise((r) => (server ? server.close(r) : r(null)));
  server = null;
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(runtime, { recursive: true, force: true });
});

/** A QMP socket serving one client at a time; `answering()` false is a QEMU stopped after its
 *  greeting and capabilities (it reads, answers nothing). Counts the connections it closed on. */
function fakeQmp(socketPath: string, answering: () => boolean): { closedByClient: () => number } {
  let active: net.Socket | null = null;
  const waiting: net.Socket[] = [];
  let closed = 0;
  const serve = (sock: net.Socket): void => {
    active = sock;
    sock.write(`${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' }, capabilities: [] } })}\n`);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id?: string };
        buf = buf.slice(nl + 1);
        if (msg.execute === 'qmp_capabilities') sock.write(`${JSON.stringify({ return: {}, id: msg.id })}\n`);
        else if (!answering()) continue;
        else if (msg.execute === 'query-uuid') sock.write(`${JSON.stringify({ return: { UUID: ID }, id: msg.id })}\n`);
        else if (msg.execute === 'query-status') sock.write(`${JSON.stringify({ return: { running: true, status: 'running' }, id: msg.id })}\n`);
      }
    });
  };
  server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => {
      closed++;
      if (active !== sock) return;
      active = null;
      const next = waiting.shift();
      if (next) serve(next);
    });
    if (active) waiting.push(sock);
    else serve(sock);
  });
  server.listen(socketPath);
  return { closedByClient: () => closed };
}

describe('a monitor connection to a QEMU that stops answering after its greeting', () => {
  it('is given up within the connection time and closed, so the monitor is reached again once QEMU answers', async () => {
    let answering = false;
    const qmp = fakeQmp(layout.runtime(ID).qmp, () => answering);
    const events = new EventLog(layout);
    driver = new QemuDriver({
      layout,
      host: () => Promise.reject(new Error('not used')),
      runStates: new RunStates({ layout, events }),
      events,
    });
    const vm = { id: ID, config: {} } as unknown as DriverVm;
    const record: RuntimeRecord = { pid: process.pid, supervisorPid: process.pid, id: ID, startedAt: new Date().toISOString(), accel: 'tcg', argv: [], status: 'running' };

    // Stopped: the probe says QEMU is not responding, within about its own time (not QMP's 30 s
    // command timeout), in the words the stop ladder uses, so a Shut Down goes on to the signals.
    const first = await Promise.race([driver.liveStatus(vm, record, 300), new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 10_000))]);
    expect(first).toEqual({ kind: 'not-responding', why: `(pid ${process.pid}) is not responding: it did not answer its monitor within 0.3 s` });
    // The half-opened connection was closed: it does not keep QEMU's one QMP client slot.
    for (let i = 0; i < 100 && qmp.closedByClient() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(qmp.closedByClient()).toBe(1);

    // QEMU answers again (SIGCONT): the next probe reaches it and tells the truth.
    answering = true;
    expect(await driver.liveStatus(vm, record, 2_000)).toEqual({ kind: 'running' });
  }, 60_000);
});
