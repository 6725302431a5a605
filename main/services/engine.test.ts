/**
 * The engine as a CLI command hosts it: created, used once, disposed, and the process ends right
 * after. What the engine wrote must be on disk by then.
 */
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { createEngine } from './engine';
import { Layout } from './paths';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(() => t.cleanup());

describe('Engine.dispose', () => {
  it("resolves only once every VM's vivarium.log holds the lines appended before it", async () => {
    const layout = Layout.fromEnv(t.env);
    const engine = createEngine({ layout, env: t.env });
    const vm = await engine.services.vms.create({ name: 'logged', accel: 'tcg', memoryMiB: 128, diskSizeBytes: 0, display: 'none', net: 'none' });
    await engine.services.vms.edit(vm.name, { os: 'changed' });
    await engine.dispose();
    // Read at once, synchronously, as a process that exits next would leave it.
    const log = fs.readFileSync(layout.bundle(vm.id).eventLog, 'utf8');
    expect(log).toMatch(/created "logged"/);
    expect(log).toMatch(/settings changed: os/);
  });
});
