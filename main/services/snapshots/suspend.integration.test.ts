/**
 * Suspend to disk and resume against real QEMU (TCG): the guest's RAM file system and uptime go on
 * after suspend → start, also when the engine that suspended it is gone; a suspended VM shows as
 * `suspended`, runs no QEMU, and refuses edits that would break the resume.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { qemuProcessesUnder } from '../../test-support/qemu-procs';
import type { VivariumError } from '../../common/errors';
import { createEngine, type Engine } from '../engine';
import { ask, typeLine } from '../../test-support/serial-talk';

let t: TestHome;
const engines: Engine[] = [];

beforeEach(() => {
  t = makeTestHome();
});

afterEach(async () => {
  const e = engines.at(-1);
  if (e) {
    for (const vm of e.manager.listSync()) {
      if (vm.state !== 'stopped' && vm.state !== 'suspended') await e.manager.stop(vm.id, { force: true }).catch(() => undefined);
    }
  }
  await Promise.all(engines.splice(0).map((x) => x.dispose()));
  await t.cleanup();
  expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
});

function engine(): Engine {
  const e = createEngine({ env: t.env });
  engines.push(e);
  return e;
}

const PROBE = 'echo "M:$(cat /tmp/marker):M UP:$(cut -d. -f1 /proc/uptime):UP"';
const PROBE_RE = /M:(\w*):M UP:(\d+):UP/;

describe('suspend to disk', () => {
  it('suspend → start resumes the guest where it was (RAM fs marker, uptime), also after the engine restarted', async () => {
    const g = testGuest();
    let e = engine();
    const vm = await e.manager.create({ name: 'sleepy', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 0, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
    const id = vm.id;
    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    await typeLine(e.layout.runtime(id).serial, 'echo awake > /tmp/marker');
    const m1 = await ask(e, id, PROBE, PROBE_RE);
    expect(m1[1]).toBe('awake');
    const up1 = Number(m1[2]);

    const suspended = await e.services.snapshots.suspend('sleepy');
    expect(suspended.state).toBe('suspended');
    expect((await e.manager.list()).find((v) => v.id === id)?.state).toBe('suspended');
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
    expect(fs.statSync(e.layout.bundle(id).file('suspend.state')).size).toBeGreaterThan(1024 * 1024);
    // Hardware that the saved state depends on stays as it is, said once, naming the setting
    // (tester-s5 #13, #17); the name, OS label and autostart are no part of QEMU's command line.
    const refused = await e.manager.edit('sleepy', { memoryMiB: 512 }).then(() => null, (x: VivariumError) => x);
    expect(refused?.message).toBe(
      '"sleepy" is suspended, and its saved state resumes only on the machine it was saved from: a change to its memory size would keep it from resuming. Its name, OS label and autostart can change now; other settings once it has resumed and been shut down.',
    );
    expect(refused?.remedy).toEqual({ kind: 'start-vm', vm: 'sleepy' });
    await expect(e.manager.edit('sleepy', { name: 'dozy', cpus: 2 })).rejects.toThrow(/a change to its number of CPUs would keep it/);
    await e.manager.edit('sleepy', { memoryMiB: 256 }); // the value it has: no change
    const renamed = await e.manager.edit('sleepy', { name: 'dozy', os: 'Busybox' });
    expect(renamed).toMatchObject({ name: 'dozy', state: 'suspended' });
    await e.manager.edit('dozy', { name: 'sleepy' });

    await e.manager.start(id, { timeoutSec: 120 });
    const m2 = await ask(e, id, PROBE, PROBE_RE);
    expect(m2[1]).toBe('awake'); // a reboot would have emptied /tmp
    expect(Number(m2[2])).toBeGreaterThanOrEqual(up1);
    expect(fs.existsSync(e.layout.bundle(id).file('suspend.state'))).toBe(false);
    expect((await e.manager.list()).find((v) => v.id === id)?.state).toBe('running');

    // Again, with a new engine for the resume (the app or the host restarted).
    await e.services.snapshots.suspend(id);
    await e.dispose();
    engines.pop();
    e = engine();
    expect((await e.manager.list()).find((v) => v.id === id)?.state).toBe('suspended');
    await e.manager.start(id, { timeoutSec: 120 });
    const m3 = await ask(e, id, PROBE, PROBE_RE);
    expect(m3[1]).toBe('awake');
    expect(Number(m3[2])).toBeGreaterThanOrEqual(Number(m2[2]));
  }, 300_000);

  it('a VM paused when suspended comes back paused at start (its marker and uptime kept), and runs on when resumed', async () => {
    const g = testGuest();
    let e = engine();
    const vm = await e.manager.create({ name: 'held', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 0, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
    const id = vm.id;
    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    await typeLine(e.layout.runtime(id).serial, 'echo held > /tmp/marker');
    const up1 = Number((await ask(e, id, PROBE, PROBE_RE))[2]);
    await e.manager.pause('held');
    expect((await e.manager.get(id)).state).toBe('paused');
    await e.services.snapshots.suspend('held');
    expect((await e.manager.get(id)).state).toBe('suspended');
    // Also across engines (the record of it is in config.json, with the saved state).
    await e.dispose();
    engines.pop();
    e = engine();
    const started = await e.manager.start(id, { timeoutSec: 120 });
    expect(started.state).toBe('paused');
    expect(started.notices).toEqual(['"held" was paused when it was suspended, so it is back paused; resume it to run on.']);
    expect((await e.manager.get(id)).state).toBe('paused');
    // Really paused: typed lines get no answer until it is resumed.
    const before = (await e.manager.serialLog(id, {})).length;
    await typeLine(e.layout.runtime(id).serial, 'echo "Q:still:Q"');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await e.manager.serialLog(id, {})).slice(before)).not.toMatch(/Q:still:Q/);
    await e.manager.resume('held');
    expect((await e.manager.get(id)).state).toBe('running');
    const m = await ask(e, id, PROBE, PROBE_RE);
    expect(m[1]).toBe('held');
    expect(Number(m[2])).toBeGreaterThanOrEqual(up1);
  }, 300_000);

  it('a sandbox VM (its SSH forward gets a fresh host port each start) resumes: the saved state does not depend on host ports', async () => {
    const g = testGuest();
    const e = engine();
    const vm = await e.manager.create({ name: 'sandboxy', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 0, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'user', display: 'none' });
    const id = vm.id;
    // What makes a VM a sandbox for the start: its cloud-init access (the seed is not needed by this guest).
    const cfgFile = e.layout.bundle(id).config;
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    cfg.cloudInit = { user: 'dev', hostname: 'sandboxy', identityFile: null, knownHostsFile: `${e.layout.bundle(id).dir}/ssh/known_hosts`, seed: 'cidata.iso', passwordSet: false };
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    const sshPort = (argv: readonly string[] | null | undefined) => Number(/hostfwd=tcp:127\.0\.0\.1:(\d+)-:22/.exec((argv ?? []).join(' '))?.[1]);

    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    const port1 = sshPort((await e.manager.get(id)).argv);
    expect(port1).toBeGreaterThan(0);
    await typeLine(e.layout.runtime(id).serial, 'echo forwarded > /tmp/marker');
    const up1 = Number((await ask(e, id, PROBE, PROBE_RE))[2]);
    await e.services.snapshots.suspend('sandboxy');
    // Another program takes the port the forward had: the resume must not depend on getting it back.
    const squatter = net.createServer();
    await new Promise<void>((resolve, reject) => squatter.listen(port1, '127.0.0.1', resolve).once('error', reject));
    try {
      await e.manager.start(id, { timeoutSec: 120 });
      const port2 = sshPort((await e.manager.get(id)).argv);
      expect(port2).toBeGreaterThan(0);
      expect(port2).not.toBe(port1);
      const m = await ask(e, id, PROBE, PROBE_RE);
      expect(m[1]).toBe('forwarded'); // resumed, not rebooted
      expect(Number(m[2])).toBeGreaterThanOrEqual(up1);
      expect(fs.existsSync(e.layout.bundle(id).file('suspend.state.discarded'))).toBe(false);
    } finally {
      squatter.close();
    }
  }, 300_000);

  it('a VM with a display (its clipboard channel blocks QEMU migrations) snapshots, reverts, suspends and resumes with memory', async () => {
    const g = testGuest();
    const e = engine();
    const vm = await e.manager.create({ name: 'screen', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 64 * 1024 * 1024, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'vnc' });
    const id = vm.id;
    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    expect((await e.manager.get(id)).argv?.join(' ')).toContain('qemu-vdagent');
    await typeLine(e.layout.runtime(id).serial, 'echo pictured > /tmp/marker');
    const up1 = Number((await ask(e, id, PROBE, PROBE_RE))[2]);
    const snap = await e.services.snapshots.create('screen', { name: 'with screen' });
    expect(snap).toMatchObject({ withMemory: true, hasThumbnail: true });
    await typeLine(e.layout.runtime(id).serial, 'echo changed > /tmp/marker');
    await e.services.snapshots.revert('screen', 'with screen');
    expect((await ask(e, id, PROBE, PROBE_RE))[1]).toBe('pictured');
    await e.services.snapshots.suspend('screen');
    await e.manager.start(id, { timeoutSec: 120 });
    const m = await ask(e, id, PROBE, PROBE_RE);
    expect(m[1]).toBe('pictured');
    expect(Number(m[2])).toBeGreaterThanOrEqual(up1);
    // Snapshots go on working after the resume (the channel was plugged back the same way).
    await e.services.snapshots.create('screen', { name: 'after resume' });
  }, 300_000);
});

describe('what cannot be saved, and discarding a saved state', () => {
  it('a running VM with a shared folder (9p) refuses a live snapshot and suspend with a sentence, and keeps running; shut down it takes a disk-only snapshot', async () => {
    const g = testGuest();
    const e = engine();
    const vm = await e.manager.create({ name: 'sharing', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 64 * 1024 * 1024, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
    const id = vm.id;
    const shared = `${t.home}/work`;
    fs.mkdirSync(shared);
    const cfgFile = e.layout.bundle(id).config;
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    cfg.shares = [{ hostPath: shared, tag: 'work', readOnly: false }];
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    expect((await e.manager.get(id)).argv?.join(' ')).toContain('mount_tag=work'); // QEMU really has the 9p device

    const why = /"sharing" has a shared folder \(.*\/work \(tag work\)\), and QEMU cannot save the memory of a running VM whose shared folders are mounted in the guest\./;
    await expect(e.services.snapshots.create('sharing', { name: 'live' })).rejects.toThrow(why);
    await expect(e.services.snapshots.create('sharing', { name: 'live' })).rejects.toThrow(/Shut "sharing" down and take the snapshot then \(a snapshot of a shut-down VM holds its disks\), or remove the shared folders/);
    await expect(e.services.snapshots.suspend('sharing')).rejects.toThrow(why);
    await expect(e.services.snapshots.suspend('sharing')).rejects.toThrow(/Shut "sharing" down instead, or remove the shared folders/);
    expect(await e.services.snapshots.list('sharing')).toEqual([]);
    expect((await e.manager.get(id)).state).toBe('running');
    expect(fs.existsSync(e.layout.bundle(id).file('suspend.state'))).toBe(false);

    await e.manager.stop(id, { force: true });
    const snap = await e.services.snapshots.create('sharing', { name: 'disks' });
    expect(snap).toMatchObject({ name: 'disks', withMemory: false });
  }, 300_000);

  it('Force Off of a suspended VM discards its saved state (the next start boots afresh); a plain stop says so instead of doing nothing', async () => {
    const g = testGuest();
    const e = engine();
    const vm = await e.manager.create({ name: 'sleepy', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 0, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
    const id = vm.id;
    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    await typeLine(e.layout.runtime(id).serial, 'echo awake > /tmp/marker');
    expect((await ask(e, id, PROBE, PROBE_RE))[1]).toBe('awake');
    await e.services.snapshots.suspend('sleepy');
    expect((await e.manager.get(id)).state).toBe('suspended');

    await expect(e.manager.stop('sleepy', {})).rejects.toThrow(/"sleepy" is suspended: nothing runs, its state is saved on disk\. Start it to resume it, or force it off to discard the saved state/);
    expect((await e.manager.get(id)).state).toBe('suspended');
    await expect(e.manager.pause('sleepy')).rejects.toThrow('Cannot pause "sleepy": it is suspended (start it to resume it).');
    // The refusals of a suspended VM name both ways out, once.
    const refusal = e.services.snapshots.create('sleepy', { name: 'x' });
    await expect(refusal).rejects.toThrow(/Start it \(it resumes where it was\) and shut it down, or force it off to discard its saved state/);

    const after = await e.manager.stop('sleepy', { force: true });
    expect(after.state).toBe('stopped');
    expect(after.lastExit?.message).toMatch(/saved state was discarded; the next start boots afresh/);
    expect(fs.existsSync(e.layout.bundle(id).file('suspend.state'))).toBe(false);
    expect((await e.manager.get(id)).state).toBe('stopped');
    await e.manager.edit('sleepy', { memoryMiB: 320 }); // no longer held to the saved command line

    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    const log = await e.manager.serialLog(id, {});
    expect(log).toContain(g.readyMarker); // booted
    expect((await ask(e, id, PROBE, PROBE_RE))[1]).toBe(''); // a fresh boot: /tmp is empty
  }, 300_000);
});
