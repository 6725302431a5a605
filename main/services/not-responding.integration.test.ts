/**
 * A long-lived engine and a real TCG guest whose QEMU is stopped (kill -STOP) and continued: what a
 * client was told it is, it is told again when that changes. The watcher's passes are driven by the
 * test (watch with an hour's interval, then refresh() as the watcher's next pass), so the case the
 * e2e spec met by chance under load — the stop seen by a list, but begun and ended between two
 * watcher passes — happens every time.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VmInfo } from '../common/models/vm-state';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { endEngineTest } from '../test-support/engine-home';
import { processState } from './runtime/records';
import { createEngine, type Engine } from './engine';

let t: TestHome;
let engine: Engine | null = null;
let stoppedPid: number | null = null;

beforeEach(() => {
  t = makeTestHome();
});

afterEach(async () => {
  if (stoppedPid !== null) {
    try {
      process.kill(stoppedPid, 'SIGCONT');
    } catch {
      // gone
    }
    stoppedPid = null;
  }
  await endEngineTest(engine, t);
  engine = null;
});

const NOT_RESPONDING = /^QEMU \(pid \d+\) is not responding: its process is stopped \(SIGSTOP\)\. Continue its process \(SIGCONT\), or force the VM off\.$/;

async function startGuest(e: Engine, name: string): Promise<VmInfo> {
  const g = testGuest();
  const vm = await e.manager.create({ name, accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 0, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
  return e.manager.start(vm.id, { waitSerial: g.readyMarker, timeoutSec: 90 });
}

/** Sends `signal` and waits until the kernel shows the process stopped ("T") or not. */
async function signalAndSettle(pid: number, signal: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
  process.kill(pid, signal);
  stoppedPid = signal === 'SIGSTOP' ? pid : null;
  for (let i = 0; i < 200 && (processState(pid) === 'T') !== (signal === 'SIGSTOP'); i++) await new Promise((r) => setTimeout(r, 10));
  expect(processState(pid) === 'T').toBe(signal === 'SIGSTOP');
}

describe('a QEMU stopped (kill -STOP) and continued between two watcher passes', () => {
  it('a client that listed it as not responding hears that it answers again at the next pass', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const vm = await startGuest(e, 'blinker');
    // Long-lived, with passes only when the test runs one.
    e.manager.watch(3_600_000);
    await e.manager.refresh();
    const heard: VmInfo[] = [];
    e.manager.onDidChange((c) => {
      if (c.kind === 'updated' && c.vm.id === vm.id) heard.push(c.vm);
    });

    await signalAndSettle(vm.pid!, 'SIGSTOP');
    // A window opened now (the library, the VM window) lists the VM, as useVmList/useVm do.
    const listed = (await e.manager.list()).find((v) => v.id === vm.id)!;
    expect(listed.error).toMatch(NOT_RESPONDING);

    await signalAndSettle(vm.pid!, 'SIGCONT');
    await e.manager.refresh();
    // What the client shows: the list, with every change announced since it asked folded over it.
    const shown = heard.at(-1) ?? listed;
    expect(shown.state).toBe('running');
    expect(shown.error).toBeNull();
  }, 150_000);
});

describe('a QEMU stopped (kill -STOP) in a long-lived engine', () => {
  it('get, and a change an action announces, say "not responding" as the list does, and stop saying it once it runs on', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const vm = await startGuest(e, 'sleeper');
    e.manager.watch(3_600_000);
    await e.manager.refresh();
    const heard: VmInfo[] = [];
    e.manager.onDidChange((c) => {
      if (c.kind === 'updated' && c.vm.id === vm.id) heard.push(c.vm);
    });

    await signalAndSettle(vm.pid!, 'SIGSTOP');
    await e.manager.refresh();
    expect(heard.at(-1)?.error).toMatch(NOT_RESPONDING);
    expect((await e.manager.get(vm.id)).error).toMatch(NOT_RESPONDING);
    // An edit allowed while it runs announces the VM: the banner must not go away with it.
    const edited = await e.manager.edit(vm.id, { autostart: true });
    expect(edited.error).toMatch(NOT_RESPONDING);
    expect(heard.at(-1)?.config?.autostart).toBe(true);
    expect(heard.at(-1)?.error).toMatch(NOT_RESPONDING);

    await signalAndSettle(vm.pid!, 'SIGCONT');
    expect((await e.manager.get(vm.id)).error).toBeNull();
    await e.manager.refresh();
    expect(heard.at(-1)?.error).toBeNull();
  }, 150_000);
});
