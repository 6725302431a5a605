/**
 * The VM service in-process against a real TCG guest: what needs the engine's own thread to be
 * observed (a --wait-serial pattern must never stall it) and jobs on a real VM.
 */
import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VivariumError } from '../common/errors';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { endEngineTest } from '../test-support/engine-home';
import { createEngine, type Engine } from './engine';
import { processState } from './runtime/records';

let t: TestHome;
let engine: Engine | null = null;

beforeEach(() => {
  t = makeTestHome();
});

afterEach(async () => {
  await endEngineTest(engine, t);
  engine = null;
});

async function startGuest(e: Engine, name: string): Promise<string> {
  const id = await createGuest(e, name);
  await e.manager.start(id, { waitSerial: testGuest().readyMarker, timeoutSec: 90 });
  return id;
}

async function createGuest(e: Engine, name: string): Promise<string> {
  const g = testGuest();
  const vm = await e.manager.create({
    name,
    accel: 'tcg',
    cpus: 1,
    memoryMiB: 256,
    diskSizeBytes: 0,
    kernel: g.kernel,
    initrd: g.initrd,
    append: g.append,
    net: 'none',
    display: 'none',
  });
  return vm.id;
}

function typeLine(socketPath: string, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath, () => s.write(`${line}\n`, () => setTimeout(() => (s.end(), resolve()), 200)));
    s.on('error', reject);
  });
}

/** The longest gap between timer ticks while `fn` runs: how long the engine's thread was held. */
async function worstStall<T>(fn: () => Promise<T>): Promise<{ result: T; worstMs: number }> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 10);
  try {
    return { result: await fn(), worstMs: worst };
  } finally {
    clearInterval(timer);
  }
}

describe('--wait-serial on the engine thread', () => {
  it('a pattern that backtracks exponentially, (a+)+Q#, against a guest printing many "a"s never stalls a concurrent list', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const id = await createGuest(e, 'chatty');
    // Start, waiting for a pattern the output will nearly match: 45 "a"s then no "Q#".
    const waiting = e.manager.start(id, { waitSerial: '(a+)+Q#', timeoutSec: 25 });
    const settled = waiting.then(
      () => 'matched',
      (err: unknown) => (err instanceof VivariumError ? err.code : 'bug'),
    );
    const g = testGuest();
    const rt = e.layout.runtime(id);
    // Wait for the shell, then print the a's (the echoed command line carries them too).
    const { worstMs } = await worstStall(async () => {
      for (let i = 0; i < 400 && !(await e.manager.serialLog(id, {})).includes(g.readyMarker); i++) await new Promise((r) => setTimeout(r, 100));
      await typeLine(rt.serial, `echo ${'a'.repeat(45)}`);
      await typeLine(rt.serial, `echo ${'a'.repeat(45)}`);
      // Lists keep being answered while the pattern is tried on every new chunk.
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        const vms = await e.manager.list();
        expect(vms.map((v) => v.state)).toEqual(['running']);
        expect(performance.now() - started).toBeLessThan(2_000);
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    expect((await e.manager.serialLog(id, {})).includes('a'.repeat(45))).toBe(true);
    console.log(`--wait-serial (a+)+Q# against 45 a's: the engine's thread was held at most ${worstMs.toFixed(0)} ms at a time`);
    // A backtracking engine needs ~2^45 steps here (hours); RE2 is linear: the thread is never held.
    expect(worstMs).toBeLessThan(1_000);
    expect(await settled).toBe('timeout');
  }, 120_000);

  it('says plainly when a pattern is not RE2 (no lookaround), before starting anything', async () => {
    engine = createEngine({ env: t.env });
    const g = testGuest();
    const vm = await engine.manager.create({ name: 'p', accel: 'tcg', memoryMiB: 256, diskSizeBytes: 0, kernel: g.kernel, initrd: g.initrd, append: g.append, display: 'none', net: 'none' });
    await expect(engine.manager.start(vm.id, { waitSerial: '(?<=login)x' })).rejects.toThrow(/--wait-serial is not a valid pattern: .*RE2 syntax/);
    expect((await engine.manager.list())[0]!.state).toBe('stopped');
  });
});

describe('jobs on a real VM', () => {
  it('Force Off is never blocked by a Shut Down that waits for the guest, and the exit says it was forced', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const id = await startGuest(e, 'slowpoke');
    // The guest stops listening to the power button, so the Shut Down waits its full time.
    await typeLine(e.layout.runtime(id).serial, 'kill $(cat /run/acpid.pid)');
    await new Promise((r) => setTimeout(r, 500));
    const progress: unknown[] = [];
    e.manager.onDidChange((c) => {
      if (c.kind === 'updated' && c.vm.state === 'stopping' && c.vm.stopping) progress.push(c.vm.stopping);
    });
    const shutDown = e.manager.stop(id, { timeoutSec: 60 });
    for (let i = 0; i < 100 && (await e.manager.list())[0]!.state !== 'stopping'; i++) await new Promise((r) => setTimeout(r, 100));
    // A second mutating job is refused with a sentence naming the running one.
    await expect(e.manager.edit(id, { cpus: 1 })).rejects.toThrow(/"slowpoke" is busy: it is shutting down \(started \d+ s ago\)\. Wait for it, or force it off\./);
    // A window hears where the Shut Down is: the power button, and when it will give up.
    expect(progress[0]).toMatchObject({ rung: 'acpi' });
    const first = progress[0] as { startedAt: string; deadline: string };
    expect(Date.parse(first.deadline) - Date.parse(first.startedAt)).toBeGreaterThanOrEqual(59_000);
    const started = Date.now();
    const off = await e.manager.stop(id, { force: true });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(off.state).toBe('stopped');
    expect(off.lastExit).toMatchObject({ reason: 'stopped', message: 'Forced off by Vivarium.' });
    const after = await shutDown;
    expect(after.state).toBe('stopped');
    expect(after.lastExit?.message).toBe('Forced off by Vivarium.');
  }, 120_000);
});

describe('a VM QEMU pauses by itself', () => {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  it.skipIf(!root)('a full host disk pauses the VM with reason io-error, the engine shows it, and resume goes on once there is room', async () => {
    const { execFileSync } = await import('node:child_process');
    const fs = await import('node:fs');
    const path = await import('node:path');
    const mnt = fs.mkdtempSync(path.join(t.home, 'small-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', mnt]);
    try {
      const image = path.join(mnt, 'data.raw');
      fs.writeFileSync(image, '');
      fs.truncateSync(image, 64 * 1024 * 1024);
      const filler = path.join(mnt, 'filler');
      fs.writeFileSync(filler, Buffer.alloc(9 * 1024 * 1024, 1));
      // A long-lived engine, as `vivarium serve` and the app host it: it holds the monitor and hears STOP.
      engine = createEngine({ env: t.env, watch: true });
      const e = engine;
      const g = testGuest();
      const vm = await e.manager.create({ name: 'full', accel: 'tcg', cpus: 1, memoryMiB: 256, diskPath: image, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
      await e.manager.start(vm.id, { waitSerial: g.readyMarker, timeoutSec: 90 });
      const changes: string[] = [];
      e.manager.onDidChange((c) => {
        if (c.kind === 'updated' && c.vm.state === 'paused') changes.push(c.vm.pausedReason ?? 'none');
      });
      await typeLine(e.layout.runtime(vm.id).serial, 'dd if=/dev/urandom of=/dev/vda bs=1M count=12 conv=fsync && echo DD-$((6*7))');
      let paused = (await e.manager.list())[0]!;
      for (let i = 0; i < 600 && paused.state !== 'paused'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        paused = (await e.manager.list())[0]!;
      }
      expect(paused.state).toBe('paused');
      expect(paused.pausedReason).toBe('io-error');
      expect(changes).toContain('io-error');
      // Resume with the disk still full: QEMU pauses again at once, and resume says why instead of
      // "running" (tester finding 15).
      const still = await e.manager.resume(vm.id).then(
        () => null,
        (x: unknown) => x as Error,
      );
      expect(still?.message).toMatch(new RegExp(`^"full" paused again at once: a disk write still fails because the disk holding ${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is still full \\(\\d+ MB free\\)\\. Free some space there, then resume it\\.$`));
      expect((await e.manager.list())[0]).toMatchObject({ state: 'paused', pausedReason: 'io-error' });
      // Make room, then resume: QEMU retries the write and the guest finishes.
      fs.rmSync(filler);
      const resumed = await e.manager.resume(vm.id);
      expect(resumed.state).toBe('running');
      expect(resumed.pausedReason).toBeNull();
      let log = '';
      for (let i = 0; i < 600 && !log.includes('DD-42'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        log = await e.manager.serialLog(vm.id, {});
      }
      expect(log).toContain('DD-42');
      await e.manager.stop(vm.id, { force: true });
    } finally {
      if (engine) {
        for (const v of engine.manager.listSync()) if (v.state !== 'stopped') await engine.manager.stop(v.id, { force: true }).catch(() => undefined);
      }
      execFileSync('umount', ['-l', mnt]);
    }
  }, 150_000);
});

describe('a QEMU that stops answering while a long-lived engine holds its monitor', () => {
  it('is shown as not responding, and Shut Down goes on to the signals without waiting out every command', async () => {
    engine = createEngine({ env: t.env, watch: true });
    const e = engine;
    const id = await startGuest(e, 'sleeper');
    const pid = (await e.manager.list())[0]!.pid!;
    // Let the engine's watcher attach to the monitor, as it does for every running VM.
    await new Promise((r) => setTimeout(r, 2_500));
    process.kill(pid, 'SIGSTOP');
    try {
      // The kernel marks the process stopped ("T") once its threads take the signal, which on a
      // loaded host can be after a read that follows kill() at once.
      for (let i = 0; i < 200 && processState(pid) !== 'T'; i++) await new Promise((r) => setTimeout(r, 10));
      const vm = (await e.manager.list())[0]!;
      expect(vm.state).toBe('running');
      expect(vm.error).toBe(`QEMU (pid ${pid}) is not responding: its process is stopped (SIGSTOP). Continue its process (SIGCONT), or force the VM off.`);
      const started = Date.now();
      const stopped = await e.manager.stop(id, { timeoutSec: 30 });
      const tookMs = Date.now() - started;
      expect(stopped.state).toBe('stopped');
      expect(stopped.lastExit).toMatchObject({ reason: 'stopped', signal: 'SIGKILL' });
      expect(stopped.lastExit!.message).toMatch(/^QEMU \(pid \d+\) is not responding: its process is stopped \(SIGSTOP\), so it was killed \(SIGKILL\) after \d+ s\.$/);
      expect(stopped.lastExit!.message).not.toMatch(/SIGCONT|did not quit when asked/);
      // Not the 30 s power-button wait, nor 30 s command timeouts: the liveness check and SIGTERM's 5 s.
      expect(tookMs).toBeLessThan(20_000);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
  }, 120_000);
});
