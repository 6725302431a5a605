/**
 * A long snapshot operation seen by a second client of the same engine (tester-s6 #5, #10): a page
 * opened or reloaded in the middle of a save reads it from `snapshots.jobs` (the snapshot being
 * saved, no made-up progress figure) over the engine's socket, against real QEMU (TCG).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SnapshotProgressEvent } from '../common/contract/snapshots';
import { createRpcClient } from '../common/rpc/client';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { qemuProcessesUnder } from '../test-support/qemu-procs';
import type { Engine } from '../services/engine';
import { Layout } from '../services/paths';
import { hostEngine } from './engine-host';
import { connectUnix } from './transports/unix-socket';

let t: TestHome;

beforeEach(() => {
  t = makeTestHome();
});

afterEach(async () => {
  await t.cleanup();
  expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
});

function typeLine(socketPath: string, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath, () => s.write(`${line}\n`, () => setTimeout(() => (s.end(), resolve()), 200)));
    s.on('error', reject);
  });
}

/** Boots `id` and fills its RAM file system with `mib` MiB of random data (saved whole by a snapshot). */
async function bootFilled(e: Engine, id: string, mib: number): Promise<void> {
  await e.manager.start(id, { waitSerial: testGuest().readyMarker, timeoutSec: 180 });
  const before = (await e.manager.serialLog(id, {})).length;
  await typeLine(e.layout.runtime(id).serial, `dd if=/dev/urandom of=/tmp/fill bs=1M count=${mib} 2>/dev/null; echo "F:$(wc -c < /tmp/fill):F"`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const m = /F:\s*(\d+):F/.exec((await e.manager.serialLog(id, {})).slice(before));
    if (m) {
      expect(Number(m[1])).toBe(mib * 1024 * 1024);
      return;
    }
    if (Date.now() > deadline) throw new Error('the guest did not fill its RAM file system');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a save seen from a second client', () => {
  it('a client connecting mid-save (a reloaded page) reads the job from jobs(): the snapshot being saved, no progress figure; then its done event', async () => {
    const hosted = await hostEngine({ env: t.env, http: { port: 0, staticDir: null } });
    const layout = Layout.fromEnv(t.env);
    const a = createRpcClient(await connectUnix(layout.engineSocket));
    let b: ReturnType<typeof createRpcClient> | null = null;
    try {
      const g = testGuest();
      const vm = await a.services.vms.create({ name: 'seen', accel: 'tcg', cpus: 1, memoryMiB: 640, diskSizeBytes: 64 * 1024 * 1024, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
      await bootFilled(hosted.engine, vm.id, 200);
      const saving = a.services.snapshots.create('seen', { name: 'watched' });
      // The second client comes once the save has begun (the tree marks it `saving`).
      const treeFile = layout.bundle(vm.id).file('snapshots.json');
      const deadline = Date.now() + 30_000;
      while (!(fs.existsSync(treeFile) && fs.readFileSync(treeFile, 'utf8').includes('"saving"')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      b = createRpcClient(await connectUnix(layout.engineSocket));
      const events: SnapshotProgressEvent[] = [];
      const sub = b.services.snapshots.onDidProgress((p) => events.push(p));
      const seen = await b.services.snapshots.jobs('seen');
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ vmId: vm.id, operation: 'create', fraction: null, snapshot: { name: 'watched' }, cancellable: false });
      expect(Date.parse(seen[0]!.startedAt)).toBeLessThanOrEqual(Date.now());
      // The snapshot is not listed before it is whole.
      expect((await b.services.snapshots.list('seen')).map((x) => x.name)).toEqual([]);
      // A save cannot be cancelled (force the VM off to end it).
      expect(await b.services.snapshots.cancel('seen')).toBe(false);
      const made = await saving;
      expect(made.name).toBe('watched');
      await expect.poll(() => events.some((x) => x.operation === 'create' && x.done), { timeout: 5_000 }).toBe(true);
      sub.dispose();
      expect(await b.services.snapshots.jobs('seen')).toEqual([]);
      expect((await b.services.snapshots.list('seen')).map((x) => x.name)).toEqual(['watched']);
      await a.services.vms.stop(vm.id, { force: true });
    } finally {
      b?.dispose();
      a.dispose();
      await hosted.close();
      await hosted.engine.dispose();
    }
  }, 300_000);
});
