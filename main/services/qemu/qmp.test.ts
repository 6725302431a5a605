import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VivariumError } from '../../common/errors';
import { LineFramer, LineTooLongError } from './json-lines';
import { isQmpLost, QmpClient, QmpError, hmpErrorText, parseQmpMessage, type QmpCloseInfo, type QmpEvent } from './qmp';

interface TestVm {
  readonly proc: ChildProcess;
  readonly dir: string;
  readonly qmpPath: string;
  readonly exited: Promise<void>;
}

const started: TestVm[] = [];

/** A paused (-S) q35 under TCG with QMP on a unix socket: no disk, no guest, starts in ~100 ms. */
async function startQemu(): Promise<TestVm> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-qmp-'));
  const qmpPath = path.join(dir, 'qmp.sock');
  // detached:false keeps QEMU in our process group, so it cannot outlive a crashed test run by much.
  const proc = spawn(
    'qemu-system-x86_64',
    ['-nodefaults', '-no-user-config', '-machine', 'q35', '-accel', 'tcg', '-display', 'none', '-S',
      '-chardev', `socket,id=qmp,path=${qmpPath},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control'],
    { detached: false, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const vm: TestVm = { proc, dir, qmpPath, exited };
  started.push(vm);
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(qmpPath)) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`QEMU exited early: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`QEMU did not create its QMP socket: ${stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return vm;
}

const clients: QmpClient[] = [];
async function connect(vm: TestVm, timeoutMs?: number): Promise<QmpClient> {
  const c = await QmpClient.connect(vm.qmpPath, timeoutMs === undefined ? {} : { timeoutMs });
  clients.push(c);
  return c;
}

function closeInfo(c: QmpClient): Promise<QmpCloseInfo> {
  return new Promise((resolve) => c.onClose(resolve));
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const vm of started.splice(0)) {
    if (vm.proc.exitCode === null && vm.proc.signalCode === null) {
      vm.proc.kill('SIGCONT'); // in case a test left it stopped
      vm.proc.kill('SIGKILL');
    }
    await vm.exited;
    fs.rmSync(vm.dir, { recursive: true, force: true });
  }
});

describe('LineFramer', () => {
  it('joins partial lines, splits several lines per chunk, survives split UTF-8 and CRLF', () => {
    const f = new LineFramer();
    const text = Buffer.from('{"a":"é"}\r\n\r\n{"b":2}\n{"c"');
    const out: string[] = [];
    // One byte at a time: every boundary, including the middle of "é", is a chunk boundary.
    for (let i = 0; i < text.length; i++) out.push(...f.push(text.subarray(i, i + 1)));
    expect(out).toEqual(['{"a":"é"}', '{"b":2}']);
    expect(f.bufferedBytes).toBe(4);
    expect(f.push(Buffer.from(':3}\n'))).toEqual(['{"c":3}']);
    expect(f.bufferedBytes).toBe(0);
  });

  it('fails a line over the cap instead of buffering it, then carries on', () => {
    const f = new LineFramer(8);
    expect(f.push(Buffer.from('12345'))).toEqual([]);
    expect(() => f.push(Buffer.from('6789'))).toThrow(LineTooLongError);
    expect(f.bufferedBytes).toBe(0);
    expect(() => f.push(Buffer.from('123456789\n'))).toThrow(LineTooLongError);
    expect(f.push(Buffer.from('ok\n'))).toEqual(['ok']);
  });

  it('discards input up to a marker byte', () => {
    const f = new LineFramer();
    f.push(Buffer.from('stale half li'));
    f.discardUntilByte(0xff);
    expect(f.push(Buffer.from('ne\n{"x":1}\n'))).toEqual([]);
    expect(f.push(Buffer.concat([Buffer.from('junk'), Buffer.from([0xff]), Buffer.from('{"return":7}\n')]))).toEqual([
      '{"return":7}',
    ]);
  });
});

describe('QMP message parsing', () => {
  it('classifies replies, errors and events', () => {
    expect(parseQmpMessage({ return: {}, id: 'vivarium-1' })).toEqual({ kind: 'return', id: 'vivarium-1', value: {} });
    expect(parseQmpMessage({ error: { class: 'GenericError', desc: 'x' } })).toEqual({
      kind: 'error',
      id: null,
      errorClass: 'GenericError',
      desc: 'x',
    });
    expect(parseQmpMessage({ event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } })).toEqual({
      kind: 'event',
      event: { event: 'STOP', data: {}, timestamp: { seconds: 1, microseconds: 2 } },
    });
    expect(parseQmpMessage([1])).toEqual({ kind: 'unknown' });
  });

  it('recognises the HMP error texts QEMU 7.2 prints', () => {
    expect(hmpErrorText('Error: no block device can store vmstate for snapshot\r\n')).toBe(
      'no block device can store vmstate for snapshot',
    );
    expect(hmpErrorText("Device 'nosuch' not found\r\n")).toBe("Device 'nosuch' not found");
    expect(hmpErrorText("unknown command: 'x'\r\n")).toBe("unknown command: 'x'");
    expect(hmpErrorText('7.2.22Debian\r\n')).toBeNull();
    expect(hmpErrorText('')).toBeNull();
  });
});

describe('QmpClient against QEMU', () => {
  it('greets with version 7.x and measures connect latency', async () => {
    const vm = await startQemu();
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const c = await QmpClient.connect(vm.qmpPath);
      times.push(performance.now() - t0);
      expect(c.greeting.version.major).toBe(7);
      expect(c.greeting.capabilities).toContain('oob');
      c.close();
      await new Promise((r) => setTimeout(r, 5)); // let QEMU notice the hang-up before the next connect
    }
    console.log(`QMP connect+capabilities: median ${median(times).toFixed(2)} ms over 20`);
  });

  it('reports prelaunch, multiplexes commands and measures a query-status round trip', async () => {
    const vm = await startQemu();
    const c = await connect(vm);
    expect(await c.execute('query-status')).toEqual({ status: 'prelaunch', running: false, singlestep: false });
    // Many commands in flight at once: each reply must reach its own caller.
    const [status, name, version, kvm] = await Promise.all([
      c.execute<{ status: string }>('query-status'),
      c.execute('query-name'),
      c.execute<{ qemu: { major: number } }>('query-version'),
      c.execute<{ enabled: boolean }>('query-kvm'),
    ]);
    expect(status.status).toBe('prelaunch');
    expect(name).toEqual({});
    expect(version.qemu.major).toBe(7);
    expect(kvm.enabled).toBe(false);

    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await c.execute('query-status');
      times.push(performance.now() - t0);
    }
    console.log(`QMP query-status round trip: median ${median(times).toFixed(3)} ms over 20`);
  });

  it('delivers RESUME on cont and STOP on stop', async () => {
    const vm = await startQemu();
    const c = await connect(vm);
    const seen: QmpEvent[] = [];
    c.onEvent((e) => seen.push(e));
    const resumed = c.waitForEvent('RESUME', { timeoutMs: 5000 });
    await c.execute('cont');
    const resume = await resumed;
    expect(resume.timestamp.seconds).toBeGreaterThan(1_600_000_000);
    expect(await c.execute('query-status')).toMatchObject({ status: 'running', running: true });

    const stopped = c.waitForEvent('STOP', { timeoutMs: 5000 });
    await c.execute('stop');
    await stopped;
    expect(await c.execute('query-status')).toMatchObject({ status: 'paused', running: false });
    expect(seen.map((e) => e.event)).toEqual(['RESUME', 'STOP']);

    await expect(c.waitForEvent('RESET', { timeoutMs: 100 })).rejects.toMatchObject({ code: 'timeout' });
  });

  it('turns QMP errors and HMP error text into QmpError', async () => {
    const vm = await startQemu();
    const c = await connect(vm);
    const notFound = await rejection(c.execute('no-such-command'));
    expect(notFound).toBeInstanceOf(QmpError);
    expect(notFound).toBeInstanceOf(VivariumError);
    expect(notFound).toMatchObject({ errorClass: 'CommandNotFound', code: 'qemu-failed' });

    const badArgs = await rejection(c.execute('stop', { bogus: 1 }));
    expect(badArgs).toMatchObject({ errorClass: 'GenericError', desc: "Parameter 'bogus' is unexpected" });

    expect(await c.hmp('info version')).toMatch(/^7\.\d+\.\d+/);
    await expect(c.hmp('savevm x')).rejects.toMatchObject({
      errorClass: 'HmpError',
      desc: 'no block device can store vmstate for snapshot',
    });
    await expect(c.hmp('drive_del nosuch')).rejects.toMatchObject({ errorClass: 'HmpError' });
    // The connection is still good after errors.
    expect(await c.execute('query-status')).toMatchObject({ status: 'prelaunch' });
  });

  it('times out a command QEMU does not answer, and drops the late reply', async () => {
    const vm = await startQemu();
    const c = await connect(vm);
    vm.proc.kill('SIGSTOP');
    const t0 = performance.now();
    await expect(c.execute('query-status', undefined, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'timeout' });
    expect(performance.now() - t0).toBeLessThan(1000);
    vm.proc.kill('SIGCONT');
    // The late query-status reply arrives first; its id matches nothing, so this gets its own answer.
    expect(await c.execute<{ qemu: { major: number } }>('query-version')).toMatchObject({ qemu: { major: 7 } });
  });

  it("says 'busy' when another client holds the socket, and connects once it leaves", async () => {
    const vm = await startQemu();
    const first = await connect(vm);
    const t0 = performance.now();
    const err = await rejection(QmpClient.connect(vm.qmpPath, { timeoutMs: 500 }));
    const elapsed = performance.now() - t0;
    expect(err).toBeInstanceOf(VivariumError);
    expect(err).toMatchObject({ code: 'busy' });
    expect((err as Error).message).toMatch(/Another program is connected/);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(1500);

    first.close();
    const second = await connect(vm);
    expect(await second.execute('query-status')).toMatchObject({ status: 'prelaunch' });
  });

  it('a frozen QEMU whose connection queue is full gets a sentence, never "connect EAGAIN <path>"', async () => {
    const vm = await startQemu();
    vm.proc.kill('SIGSTOP');
    // Each try leaves a connection QEMU never accepts, as each short-lived CLI run does, until the
    // socket's queue is full and the kernel turns the next one away (EAGAIN).
    const errs: unknown[] = [];
    for (let i = 0; i < 6; i++) errs.push(await rejection(QmpClient.connect(vm.qmpPath, { timeoutMs: 200 })));
    for (const e of errs) {
      expect(e).toBeInstanceOf(VivariumError);
      expect((e as Error).message).not.toMatch(/EAGAIN|connect E[A-Z]+/);
    }
    const full = errs.find((e) => (e as VivariumError).data !== undefined && ((e as VivariumError).data as { cause?: string }).cause === 'EAGAIN');
    expect(full, 'the queue filled up').toBeDefined();
    expect(full).toMatchObject({ code: 'busy' });
    expect((full as Error).message).toBe(
      "QEMU's control socket (QMP) takes no new connection: QEMU is not responding, or another program holds the socket. Close that program (or the other Vivarium), or force the VM off.",
    );
  });

  it('resolves quit and reports an announced shutdown', async () => {
    const vm = await startQemu();
    const c = await connect(vm);
    const closing = closeInfo(c);
    await expect(c.execute('quit')).resolves.toEqual({});
    const info = await closing;
    expect(info).toEqual({ sawShutdown: true, shutdownReason: 'host-qmp-quit', error: null });
    expect(c.closed).toBe(true);
    await vm.exited;
    expect(vm.proc.exitCode).toBe(0);
    await expect(c.execute('query-status')).rejects.toMatchObject({ code: 'invalid-state' });
    // A listener added after the close still hears about it.
    expect(await closeInfo(c)).toBe(info);
  });

  it('reports a crash (EOF without SHUTDOWN) and fails pending commands', async () => {
    const vm = await startQemu();
    const c = await connect(vm);
    const closing = closeInfo(c);
    // Stop QEMU first so the command is certainly still pending when it dies.
    vm.proc.kill('SIGSTOP');
    const pending = rejection(c.execute('query-status'));
    const waiting = rejection(c.waitForEvent('RESUME', { timeoutMs: 10_000 }));
    // quit is the exception: QEMU may close without replying, and the close is its answer.
    const quitting = c.execute('quit');
    await new Promise((r) => setTimeout(r, 50));
    vm.proc.kill('SIGKILL');
    const info = await closing;
    expect(info.sawShutdown).toBe(false);
    expect(info.shutdownReason).toBeNull();
    const err = await pending;
    expect(err).toMatchObject({ code: 'invalid-state' });
    expect((err as Error).message).toMatch(/exited unexpectedly/);
    // Recognised by its data, and a sentence without the QEMU command's name (it reaches people).
    expect(isQmpLost(err)).toBe(true);
    expect((err as Error).message).not.toMatch(/query-status/);
    expect(await waiting).toMatchObject({ code: 'invalid-state' });
    expect(isQmpLost(await waiting)).toBe(true);
    await expect(quitting).resolves.toEqual({});

    // The socket file stays behind after a crash; nobody listens on it any more.
    await vm.exited;
    expect(fs.existsSync(vm.qmpPath)).toBe(true);
    await expect(QmpClient.connect(vm.qmpPath)).rejects.toMatchObject({ code: 'invalid-state' });
  });

  it('says the VM is not running when the socket is missing', async () => {
    const missing = path.join(os.tmpdir(), `viv-missing-${process.pid}.sock`);
    const err = await rejection(QmpClient.connect(missing));
    expect(err).toMatchObject({ code: 'invalid-state' });
    expect((err as Error).message).toBe("QEMU's control socket is gone: the VM is not running.");
  });
});
