import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VivariumError } from '../../common/errors';
import { GuestAgentClient } from './guest-agent';

interface TestVm {
  readonly proc: ChildProcess;
  readonly dir: string;
  readonly qgaPath: string;
  readonly exited: Promise<void>;
}

const started: TestVm[] = [];

/** A paused (-S) q35 with the agent's virtserialport wired to a socket, but no guest (so no agent). */
async function startQemu(): Promise<TestVm> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-qga-'));
  const qgaPath = path.join(dir, 'qga.sock');
  const proc = spawn(
    'qemu-system-x86_64',
    ['-nodefaults', '-no-user-config', '-machine', 'q35', '-accel', 'tcg', '-display', 'none', '-S',
      '-chardev', `socket,id=qmp,path=${path.join(dir, 'qmp.sock')},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control',
      '-device', 'virtio-serial-pci,id=vser0',
      '-chardev', `socket,id=qga0,path=${qgaPath},server=on,wait=off`,
      '-device', 'virtserialport,bus=vser0.0,chardev=qga0,id=qgaport,name=org.qemu.guest_agent.0'],
    { detached: false, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const vm: TestVm = { proc, dir, qgaPath, exited };
  started.push(vm);
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(qgaPath)) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`QEMU exited early: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`QEMU did not create the agent socket: ${stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return vm;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

afterEach(async () => {
  for (const vm of started.splice(0)) {
    if (vm.proc.exitCode === null && vm.proc.signalCode === null) vm.proc.kill('SIGKILL');
    await vm.exited;
    fs.rmSync(vm.dir, { recursive: true, force: true });
  }
});

describe('GuestAgentClient against QEMU without an agent in the guest', () => {
  it('opens the socket but times out the sync, saying the agent is not running', async () => {
    const vm = await startQemu();
    const t0 = performance.now();
    const err = await rejection(GuestAgentClient.connect(vm.qgaPath, { timeoutMs: 400 }));
    const elapsed = performance.now() - t0;
    expect(err).toBeInstanceOf(VivariumError);
    expect(err).toMatchObject({ code: 'timeout' });
    expect((err as Error).message).toMatch(/isn't running in the guest/);
    expect((err as Error).message).toMatch(/install qemu-guest-agent/i);
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(1500);

    // The failed attempt let go of the chardev: a second attempt reaches QEMU again (and times out
    // the same way) instead of queueing behind a leaked connection.
    await expect(GuestAgentClient.connect(vm.qgaPath, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'timeout' });
  });

  it('fails the sync at once when QEMU dies during it', async () => {
    const vm = await startQemu();
    const connecting = rejection(GuestAgentClient.connect(vm.qgaPath, { timeoutMs: 10_000 }));
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    vm.proc.kill('SIGKILL');
    const err = await connecting;
    expect(err).toMatchObject({ code: 'invalid-state' });
    expect(performance.now() - t0).toBeLessThan(2000);

    await vm.exited;
    await expect(GuestAgentClient.connect(vm.qgaPath)).rejects.toMatchObject({ code: 'invalid-state' });
  });

  it('says the VM is not running when the socket is missing', async () => {
    const err = await rejection(GuestAgentClient.connect(path.join(os.tmpdir(), `viv-no-qga-${process.pid}.sock`)));
    expect(err).toMatchObject({ code: 'invalid-state' });
    expect((err as Error).message).toMatch(/not running/);
  });
});
