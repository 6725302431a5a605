/**
 * Per-VM autostart against real QEMU (TCG): `vivarium edit NAME --autostart` marks a VM, an engine
 * started with autostart (the app, `vivarium serve --autostart`) starts it once, a second engine
 * never starts it again, and VMs not marked stay stopped.
 */
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isVivariumError } from '../common/errors';
import { hostEngine } from './engine-host';
import { CLI_BIN, runCli, runCliJson } from '../test-support/cli';
import { testGuest } from '../test-support/guest';
import { makeTestHome } from '../test-support/home';
import type { TestHome } from '../test-support/home';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
});

const cli = (args: string[]) => runCli(args, { env: t.env, timeoutMs: 120_000 });
type Listed = { name: string; state: string; pid?: number };
const list = () => runCliJson<Listed[]>(['list', '--json'], { env: t.env });
const byName = async (name: string) => (await list()).find((v) => v.name === name)!;

async function createGuest(name: string): Promise<void> {
  const g = testGuest();
  const r = await cli(['create', name, '--accel', 'tcg', '--memory', '128M', '--cpus', '1', '--disk-size', '0', '--net', 'none', '--display', 'none', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

describe('autostart', () => {
  it('starts the marked VMs once per engine start, never twice with two engines', async () => {
    await createGuest('auto');
    await createGuest('manual');
    const marked = await cli(['edit', 'auto', '--autostart', '--json']);
    expect(marked.code).toBe(0);
    expect((await runCliJson<{ config: { autostart: boolean } }>(['show', 'auto', '--json'], { env: t.env })).config.autostart).toBe(true);
    expect((await runCliJson<{ config: { autostart: boolean } }>(['show', 'manual', '--json'], { env: t.env })).config.autostart).toBe(false);
    expect((await cli(['edit', 'manual', '--autostart', '--no-autostart'])).code).toBe(2);

    // An engine without autostart starts nothing.
    const plain = await hostEngine({ env: t.env, http: { port: 0, staticDir: null } });
    expect(await plain.autostarted).toEqual([]);
    await plain.close();
    expect((await byName('auto')).state).toBe('stopped');

    const first = await hostEngine({ env: t.env, http: { port: 0, staticDir: null }, autostart: true });
    try {
      expect(await first.autostarted).toEqual(['auto']);
      const running = await byName('auto');
      expect(running.state).toBe('running');
      expect((await byName('manual')).state).toBe('stopped');

      // A second engine for the same library is refused before it could start anything.
      let refused: unknown = null;
      try {
        const second = await hostEngine({ env: t.env, http: { port: 0, staticDir: null }, autostart: true });
        await second.close();
      } catch (e) {
        refused = e;
      }
      expect(isVivariumError(refused) && refused.code).toBe(ErrorCode.Busy);
      expect((await byName('auto')).pid).toBe(running.pid);
    } finally {
      await first.close();
    }

    // The next engine finds it running (VMs outlive engines) and leaves it alone.
    const pid = (await byName('auto')).pid;
    const next = await hostEngine({ env: t.env, http: { port: 0, staticDir: null }, autostart: true });
    try {
      expect(await next.autostarted).toEqual([]);
      expect((await byName('auto')).pid).toBe(pid);
    } finally {
      await next.close();
    }
    // Autostart may be switched on a running VM (it changes nothing about it); CPUs may not.
    expect((await cli(['edit', 'auto', '--no-autostart'])).code).toBe(0);
    expect((await runCliJson<{ config: { autostart: boolean }; pid: number }>(['show', 'auto', '--json'], { env: t.env })).config.autostart).toBe(false);
    expect((await byName('auto')).pid).toBe(pid);
    const cpus = await cli(['edit', 'auto', '--cpus', '2']);
    expect(cpus.code).toBe(1);
    expect(cpus.stderr).toMatch(/running.*Shut it down/is);
    expect((await cli(['stop', 'auto', '--force'])).code).toBe(0);
  });

  it('vivarium serve --autostart starts them (headless, no desktop)', async () => {
    await createGuest('headless');
    expect((await cli(['edit', 'headless', '--autostart'])).code).toBe(0);
    const serve = spawn(process.execPath, [CLI_BIN, 'serve', '--port', '0', '--autostart'], { env: t.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    serve.stderr!.on('data', (d) => (err += d));
    try {
      const deadline = Date.now() + 60_000;
      let state = 'stopped';
      while (Date.now() < deadline && state !== 'running') {
        await new Promise((r) => setTimeout(r, 500));
        state = (await byName('headless')).state;
      }
      expect(state, err).toBe('running');
    } finally {
      serve.kill('SIGTERM');
      await new Promise((r) => (serve.exitCode !== null ? r(null) : serve.once('exit', r)));
    }
    // Serving stopped; the VM keeps running until it is stopped.
    expect((await byName('headless')).state).toBe('running');
    expect((await cli(['stop', 'headless', '--force'])).code).toBe(0);
  });
});
