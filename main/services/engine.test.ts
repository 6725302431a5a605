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

  it("resolves only once a deleted VM's files are gone (they are removed off the event loop)", async () => {
    const layout = Layout.fromEnv(t.env);
    const engine = createEngine({ layout, env: t.env });
    const vm = await engine.services.vms.create({ name: 'doomed', accel: 'tcg', memoryMiB: 128, diskSizeBytes: 64 * 1024 * 1024, display: 'none', net: 'none' });
    // Enough entries that removing them takes longer than the rest of dispose.
    const many = `${layout.bundle(vm.id).dir}/many`;
    fs.mkdirSync(many);
    for (let i = 0; i < 5000; i++) fs.writeFileSync(`${many}/${i}`, '');
    await engine.services.vms.delete(vm.name, {});
    await engine.dispose();
    // As a CLI process that exits next would leave it: no VM folder, no half-removed one.
    expect(fs.readdirSync(layout.bundlesDir)).toEqual([]);
  });
});
