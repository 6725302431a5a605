/**
 * A long-lived engine (watch(), as `vivarium serve` and the app run it) keeps a running VM's
 * serial.log under the cap with the real limits, while QEMU keeps it open.
 */
import * as fs from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { endEngineTest } from '../../test-support/engine-home';
import { createEngine, type Engine } from '../engine';
import { SERIAL_LOG_CAP_BYTES, SERIAL_LOG_LIMITS, olderSerialLog } from './serial-log';

let t: TestHome;
let engine: Engine | null = null;

beforeEach(() => {
  t = makeTestHome();
});

afterEach(async () => {
  await endEngineTest(engine, t);
  engine = null;
});

it('rotates a running VM\'s serial.log once it passes the threshold, keeping the newest output', async () => {
  const g = testGuest();
  const e = createEngine({ env: t.env, log: () => undefined });
  engine = e;
  const vm = await e.manager.create({ name: 'chatty', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 0, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
  await e.manager.start(vm.id, { waitSerial: g.readyMarker, timeoutSec: 90 });
  e.manager.watch(200);
  const log = e.layout.bundle(vm.id).serialLog;
  // 4 MiB of output appended the way QEMU appends (O_APPEND), past the 3.5 MiB threshold.
  fs.appendFileSync(log, `${'y'.repeat(79)}\n`.repeat(52_429) + 'NEWEST-LINE\n');
  const deadline = Date.now() + 10_000;
  while (fs.statSync(log).size > SERIAL_LOG_LIMITS.rotateAtBytes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(fs.statSync(log).size).toBeLessThan(64 * 1024);
  expect(fs.statSync(log).size + fs.statSync(olderSerialLog(log)).size).toBeLessThan(SERIAL_LOG_CAP_BYTES);
  // The newest output is kept: our last line comes after all the filler (the guest may have printed
  // something of its own since, such as a late kernel message on a loaded host).
  const text = await e.manager.serialLog(vm.id, {});
  expect(text).toContain('NEWEST-LINE');
  expect(text.lastIndexOf('NEWEST-LINE')).toBeGreaterThan(text.lastIndexOf('y'.repeat(79)));
  expect(e.manager.listSync()[0]?.state).toBe('running');
});
