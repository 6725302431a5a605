/**
 * The typed monitor against a real QEMU (paused at start, -S: no guest needed), and the check that
 * tells a QEMU that does not answer from one whose monitor another client holds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { qmpClientConnected } from '../drivers/qemu/qemu-driver';
import { QemuMonitor } from './monitor';
import { QmpClient } from './qmp';

const UUID = '0f0e0d0c-0b0a-4908-8706-050403020100';

interface Running {
  readonly proc: ChildProcess;
  readonly dir: string;
  readonly qmpPath: string;
  readonly exited: Promise<void>;
}
const started: Running[] = [];
const monitors: QemuMonitor[] = [];

async function startQemu(): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-mon-'));
  const qmpPath = path.join(dir, 'qmp.sock');
  const proc = spawn(
    'qemu-system-x86_64',
    ['-nodefaults', '-no-user-config', '-machine', 'q35', '-accel', 'tcg', '-display', 'none', '-S', '-uuid', UUID,
      '-chardev', `socket,id=qmp,path=${qmpPath},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control'],
    { detached: false, stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const vm = { proc, dir, qmpPath, exited };
  started.push(vm);
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(qmpPath)) {
    if (Date.now() > deadline) throw new Error('QEMU did not create its QMP socket');
    await new Promise((r) => setTimeout(r, 10));
  }
  return vm;
}

async function monitorOf(vm: Running): Promise<QemuMonitor> {
  const m = new QemuMonitor(await QmpClient.connect(vm.qmpPath));
  monitors.push(m);
  return m;
}

afterEach(async () => {
  for (const m of monitors.splice(0)) m.close();
  for (const vm of started.splice(0)) {
    if (vm.proc.exitCode === null && vm.proc.signalCode === null) {
      vm.proc.kill('SIGCONT');
      vm.proc.kill('SIGKILL');
    }
    await vm.exited;
    fs.rmSync(vm.dir, { recursive: true, force: true });
  }
});

describe('QemuMonitor', () => {
  it('reads and changes the run state, and says why the vCPUs stand', async () => {
    const vm = await startQemu();
    const m = await monitorOf(vm);
    expect(await m.queryUuid()).toBe(UUID);
    expect(await m.queryStatus()).toEqual({ running: false, status: 'prelaunch' });
    await m.cont();
    expect(await m.queryStatus()).toEqual({ running: true, status: 'running' });
    await m.stop();
    expect(await m.queryStatus()).toEqual({ running: false, status: 'paused' });
    expect(await m.humanMonitorCommand('info status')).toMatch(/VM status: paused/);
    await m.systemReset();
    await m.cont();
    expect((await m.queryStatus()).running).toBe(true);
  });

  it('hears STOP and RESUME as events, and quit closes it', async () => {
    const vm = await startQemu();
    const m = await monitorOf(vm);
    const events: string[] = [];
    m.onEvent((e) => events.push(e.event));
    await m.cont();
    await m.stop();
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toEqual(['RESUME', 'STOP']);
    const closed = new Promise<boolean>((r) => m.onClose((info) => r(info.sawShutdown)));
    await m.quit({ timeoutMs: 5_000 });
    expect(await closed).toBe(true);
    expect(m.closed).toBe(true);
    await vm.exited;
  });

  it('rejects a command QEMU refuses, in QEMU words', async () => {
    const vm = await startQemu();
    const m = await monitorOf(vm);
    await expect(m.sendKey(['no_such_key'])).rejects.toThrow(/send-key/);
  });
});

describe('qmpClientConnected (is someone on the monitor, or is QEMU not answering?)', () => {
  it('sees a connected client, and none when QEMU is stopped with a connection waiting', async () => {
    const vm = await startQemu();
    expect(await qmpClientConnected(vm.qmpPath)).toBe(false);
    const m = await monitorOf(vm);
    expect(await qmpClientConnected(vm.qmpPath)).toBe(true);
    m.close();
    // QEMU notices the hang-up on its next main-loop turn.
    for (let i = 0; i < 100 && (await qmpClientConnected(vm.qmpPath)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await qmpClientConnected(vm.qmpPath)).toBe(false);
    // A SIGSTOPped QEMU accepts nothing: a connection waits in the backlog, never "connected".
    vm.proc.kill('SIGSTOP');
    // kill() returns before a QEMU busy on the other core has stopped: wait until /proc says so.
    for (let i = 0; i < 250 && !/^\d+ \(.*\) [Tt]/.test(fs.readFileSync(`/proc/${vm.proc.pid}/stat`, 'utf8')); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const waiting = net.createConnection(vm.qmpPath);
    await new Promise((r) => waiting.once('connect', r));
    expect(await qmpClientConnected(vm.qmpPath)).toBe(false);
    waiting.destroy();
  });
});
