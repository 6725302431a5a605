/**
 * Sizes in the disk service's refusals (tester-9 #2, #21): said in binary units ("64 TiB"), never as
 * a byte count or an engine field name ("Size bytes: …"), through the engine's validated services
 * (the same checks the RPC server makes for the UI). Stopped VMs only: no QEMU is started.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Services } from '../../common/contract';
import { validatedServices } from '../../common/rpc/validated';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { createEngine, type Engine } from '../engine';

let t: TestHome;
let engine: Engine;
let s: Services;
beforeEach(() => {
  t = makeTestHome();
  engine = createEngine({ env: t.env });
  s = validatedServices(engine.services);
});
afterEach(async () => {
  await engine.dispose();
  await t.cleanup();
});

const TiB = 1024 ** 4;
/** The message `call` fails with (a validated service may throw before returning a promise). */
const messageOf = (call: () => Promise<unknown>) => (async () => call())().then(() => 'no error', (e: Error) => e.message);

describe('disk sizes in refusals', () => {
  it('says the limits in MiB and TiB, with no field names', async () => {
    await s.vms.create({ name: 'sz', accel: 'tcg', memoryMiB: 128, diskSizeBytes: 1024 ** 2, net: 'none', display: 'none' });
    expect(await messageOf(() => s.disks.add('sz', { sizeBytes: 0 }))).toBe('A new disk must be at least 1 MiB. Give a size such as 10 GiB.');
    expect(await messageOf(() => s.disks.add('sz', { sizeBytes: 512 }))).toBe('A new disk must be at least 1 MiB, not 512 bytes. Give a size such as 10 GiB.');
    expect(await messageOf(() => s.disks.add('sz', { sizeBytes: 100 * TiB }))).toBe('A new disk can be at most 64 TiB, not 100 TiB.');
    expect(await messageOf(() => s.disks.resize('sz', 'disk0', 100 * TiB))).toBe('A disk can be at most 64 TiB, not 100 TiB.');
    const create = await messageOf(() => s.vms.create({ name: 'big', diskSizeBytes: 100 * TiB }));
    expect(create).toContain('Disk size must be at most 64 TiB');
    expect(create).not.toMatch(/70368744177664|Size bytes|sizeBytes/);
    // Nothing was added.
    expect((await s.disks.list('sz')).map((d) => d.id)).toEqual(['disk0']);
  });
});
