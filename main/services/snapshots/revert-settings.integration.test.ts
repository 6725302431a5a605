/**
 * Snapshots hold the VM's settings (tester-s5 #4, #12), against real QEMU (TCG) and real qcow2
 * images: a memory snapshot taken at 256 MiB reverts after the memory was changed (the VM shut down
 * or running with the other size), and the config is back at 256 MiB; a disk removed since comes
 * back, one added since is detached (its file kept), one whose file is gone refuses the revert up
 * front; a snapshot record from before settings were kept names the memory size it needs instead of
 * QEMU's "Error -22 while loading VM state". Names: a blank one is refused, an id is said to be one.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { endEngineTest } from '../../test-support/engine-home';
import type { VivariumError } from '../../common/errors';
import { createEngine, type Engine } from '../engine';
import { ask, typeLine } from '../../test-support/serial-talk';

let t: TestHome;
let engine: Engine | null = null;

beforeEach(() => {
  t = makeTestHome();
});

afterEach(async () => {
  await endEngineTest(engine, t);
  engine = null;
});

async function createGuest(e: Engine, name: string): Promise<string> {
  const g = testGuest();
  const vm = await e.manager.create({ name, accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 64 * 1024 * 1024, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
  return vm.id;
}

/** The guest's RAM fs marker and its memory size as the kernel sees it (MemTotal, KiB). */
const PROBE = 'echo "M:$(cat /tmp/marker):M K:$(grep MemTotal /proc/meminfo | tr -s \' \' | cut -d\' \' -f2):K"';
const PROBE_RE = /M:(\w*):M K:(\d+):K/;

function qemuIo(file: string, cmd: string): string {
  return execFileSync('qemu-io', ['-f', 'qcow2', '-c', cmd, file], { encoding: 'utf8' });
}

const configOf = (e: Engine, id: string) => JSON.parse(fs.readFileSync(e.layout.bundle(id).config, 'utf8')) as { memoryMiB: number; name: string; disks: { id: string; source: { bundle: string } }[] };

describe('a memory snapshot reverts after the memory size changed', () => {
  it('shut down, or running with 512 MiB: the revert starts it at 256 MiB with the marker of the moment, and the config says 256 MiB', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const g = testGuest();
    const id = await createGuest(e, 'm');
    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    await typeLine(e.layout.runtime(id).serial, 'echo first > /tmp/marker');
    const at256 = await ask(e, id, PROBE, PROBE_RE);
    expect(at256[1]).toBe('first');
    const snap = await e.services.snapshots.create('m', { name: 'live1' });
    expect(snap.withMemory).toBe(true);
    await e.manager.stop(id, { force: true });
    await e.manager.edit('m', { memoryMiB: 512 });

    // 1. Shut down: the tester's case ("Error -22 while loading VM state", "Size mismatch: pc.ram").
    const r1 = await e.services.snapshots.revert('m', 'live1');
    expect(r1).toMatchObject({ id: snap.id, current: true });
    expect(r1.notices?.join(' ')).toMatch(/settings of "m" are back to those it had at snapshot "live1" \(memory 256 MiB\)/);
    expect(configOf(e, id).memoryMiB).toBe(256);
    expect((await e.manager.get(id)).state).toBe('running');
    const back1 = await ask(e, id, PROBE, PROBE_RE);
    expect(back1[1]).toBe('first'); // /tmp is a RAM fs: a boot would have emptied it
    expect(back1[2]).toBe(at256[2]);

    // 2. Running with 512 MiB (booted afresh): QEMU is started again with the snapshot's settings.
    await e.manager.stop(id, { force: true });
    await e.manager.edit('m', { memoryMiB: 512 });
    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    const at512 = await ask(e, id, PROBE, PROBE_RE);
    expect(at512[1]).toBe('');
    expect(Number(at512[2])).toBeGreaterThan(Number(at256[2]));
    const r2 = await e.services.snapshots.revert('m', snap.id);
    expect(r2.current).toBe(true);
    expect(configOf(e, id).memoryMiB).toBe(256);
    expect((await e.manager.get(id)).state).toBe('running');
    const back2 = await ask(e, id, PROBE, PROBE_RE);
    expect(back2[1]).toBe('first');
    expect(back2[2]).toBe(at256[2]);
    await expect.poll(() => fs.readFileSync(e.layout.bundle(id).eventLog, 'utf8')).toMatch(/ending QEMU to revert to snapshot "live1", which was taken with other settings/);
  }, 400_000);

  it('a record from before snapshots kept settings: a revert into another memory size names the size it needs, not QEMU\'s error', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const g = testGuest();
    const id = await createGuest(e, 'old');
    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    await e.services.snapshots.create('old', { name: 'live1' });
    await e.manager.stop(id, { force: true });
    // As Vivarium wrote it before: no settings in the record.
    const treeFile = e.layout.bundle(id).file('snapshots.json');
    const tree = JSON.parse(fs.readFileSync(treeFile, 'utf8')) as { snapshots: Record<string, unknown>[] };
    for (const s of tree.snapshots) delete s.settings;
    fs.writeFileSync(treeFile, JSON.stringify(tree));
    await e.manager.edit('old', { memoryMiB: 512 });

    // Running at 512 MiB (a live load), then shut down (a start into the snapshot): each time the
    // sentence names the size, and the VM is left shut down (QEMU had put its disks back already,
    // and would let the guest run on over them).
    for (const running of [true, false]) {
      if (running) await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
      const failed = await e.services.snapshots.revert('old', 'live1').then(
        () => null,
        (err: VivariumError) => err,
      );
      expect(failed?.message).toBe(
        'Cannot load the memory of snapshot "live1" into "old": it was taken with 256 MiB of memory, and "old" has 512 MiB now. QEMU had already put its disks back to the snapshot, so "old" is shut down. Set its memory to 256 MiB, then revert again.',
      );
      expect(failed?.remedy).toEqual({ kind: 'change-setting', field: 'memoryMiB', to: '256', vm: 'old' });
      expect((await e.manager.get(id)).state).toBe('stopped');
    }
    // Doing what it says works.
    await e.manager.edit('old', { memoryMiB: 256 });
    await e.services.snapshots.revert('old', 'live1');
    expect((await e.manager.get(id)).state).toBe('running');
  }, 300_000);
});

describe('a snapshot holds the disk list', () => {
  it('a disk removed since comes back, one added since is detached (file kept), one whose file is gone refuses the revert up front', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const id = await createGuest(e, 'd');
    const b = e.layout.bundle(id);
    await e.services.disks.add('d', { sizeBytes: 16 * 1024 * 1024 });
    qemuIo(b.file('disk0.qcow2'), 'write -P 0xaa 0 64k');
    qemuIo(b.file('disk1.qcow2'), 'write -P 0x11 0 64k');
    const a = await e.services.snapshots.create('d', { name: 'A' });
    expect(a.withMemory).toBe(false);

    // Removed since (file kept): back on revert, with its data of the moment.
    await e.services.disks.remove('d', 'disk1');
    qemuIo(b.file('disk0.qcow2'), 'write -P 0xbb 0 64k');
    qemuIo(b.file('disk1.qcow2'), 'write -P 0x22 0 64k');
    const r1 = await e.services.snapshots.revert('d', 'A');
    expect(r1.restoredDisks).toEqual(['disk1']);
    expect(r1.notices).toEqual(['Disk disk1, removed after snapshot "A", is attached again (disk1.qcow2 in its folder).']);
    expect(configOf(e, id).disks.map((d) => d.id)).toEqual(['disk0', 'disk1']);
    expect(qemuIo(b.file('disk0.qcow2'), 'read -P 0xaa 0 64k')).not.toMatch(/Pattern verification failed/);
    expect(qemuIo(b.file('disk1.qcow2'), 'read -P 0x11 0 64k')).not.toMatch(/Pattern verification failed/);

    // Added since: detached by the revert, its file kept as it is.
    await e.services.disks.add('d', { sizeBytes: 16 * 1024 * 1024 });
    qemuIo(b.file('disk2.qcow2'), 'write -P 0x33 0 64k');
    const r2 = await e.services.snapshots.revert('d', 'A');
    expect(r2.detachedDisks).toEqual(['disk2']);
    expect(r2.notices).toEqual(['Disk disk2 was added after snapshot "A" and was detached by the revert; its image file is kept (disk2.qcow2 in its folder).']);
    expect(configOf(e, id).disks.map((d) => d.id)).toEqual(['disk0', 'disk1']);
    expect(qemuIo(b.file('disk2.qcow2'), 'read -P 0x33 0 64k')).not.toMatch(/Pattern verification failed/);

    // Removed with its file (deleted by hand: Vivarium refuses to delete a file a snapshot holds):
    // refused before anything is touched.
    qemuIo(b.file('disk0.qcow2'), 'write -P 0xcc 0 64k');
    await expect(e.services.disks.remove('d', 'disk1', { deleteFile: true })).rejects.toThrow(/^disk1\.qcow2 of "d" cannot be deleted: snapshot "A" holds disk1/);
    await e.services.disks.remove('d', 'disk1');
    fs.rmSync(b.file('disk1.qcow2'));
    await e.manager.edit('d', { memoryMiB: 320 });
    const before = fs.readFileSync(b.config, 'utf8');
    await expect(e.services.snapshots.revert('d', 'A')).rejects.toThrow(
      'Cannot revert "d" to snapshot "A": it had disk disk1 (disk1.qcow2 in its folder), which was removed since and whose image file is gone, so the snapshot\'s data in it is lost. Nothing was changed.',
    );
    expect(fs.readFileSync(b.config, 'utf8')).toBe(before);
    expect(qemuIo(b.file('disk0.qcow2'), 'read -P 0xcc 0 64k')).not.toMatch(/Pattern verification failed/);
  }, 120_000);
});

describe('a snapshot whose every disk was removed since', () => {
  it('stays listed (the images it is in are outside the VM\'s disk list now) and its revert attaches the system disk again', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const id = await createGuest(e, 'bare');
    qemuIo(e.layout.bundle(id).file('disk0.qcow2'), 'write -P 0x66 0 64k');
    await e.services.snapshots.create('bare', { name: 'with disk' });
    await e.services.disks.remove('bare', 'disk0', { force: true });
    qemuIo(e.layout.bundle(id).file('disk0.qcow2'), 'write -P 0x77 0 64k');
    expect((await e.services.snapshots.list('bare')).map((x) => x.name)).toEqual(['with disk']);
    const r = await e.services.snapshots.revert('bare', 'with disk');
    expect(r.restoredDisks).toEqual(['disk0']);
    expect(configOf(e, id).disks.map((d) => d.id)).toEqual(['disk0']);
    expect(qemuIo(e.layout.bundle(id).file('disk0.qcow2'), 'read -P 0x66 0 64k')).not.toMatch(/Pattern verification failed/);
  }, 60_000);
});

describe('a snapshot holds the disk list, across an export', () => {
  it('an export carries a disk removed since a snapshot (its file kept in the folder), and the imported VM\'s revert attaches it again', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const id = await createGuest(e, 'src');
    await e.services.disks.add('src', { sizeBytes: 16 * 1024 * 1024 });
    qemuIo(e.layout.bundle(id).file('disk1.qcow2'), 'write -P 0x44 0 64k');
    await e.services.snapshots.create('src', { name: 'two disks' });
    await e.services.disks.remove('src', 'disk1');
    qemuIo(e.layout.bundle(id).file('disk1.qcow2'), 'write -P 0x55 0 64k');
    const file = `${t.home}/src.vivarium`;
    await e.services.snapshots.exportVm('src', file);
    const copy = await e.services.snapshots.importVm(file, { name: 'copy' });
    expect(copy.id).not.toBe(id); // the original is still here: a new id, and a new MAC address
    const r = await e.services.snapshots.revert('copy', 'two disks');
    expect(r.restoredDisks).toEqual(['disk1']);
    const cfg = JSON.parse(fs.readFileSync(e.layout.bundle(copy.id).config, 'utf8')) as { disks: { id: string }[]; network: { mac: string } };
    expect(cfg.disks.map((d) => d.id)).toEqual(['disk0', 'disk1']);
    expect(cfg.network.mac).not.toBe((JSON.parse(fs.readFileSync(e.layout.bundle(id).config, 'utf8')) as { network: { mac: string } }).network.mac);
    expect(qemuIo(e.layout.bundle(copy.id).file('disk1.qcow2'), 'read -P 0x44 0 64k')).not.toMatch(/Pattern verification failed/);
  }, 120_000);
});

describe('snapshot names and refusals', () => {
  it('a blank name is refused like a rename\'s, a left-out one is "Snapshot N", an id is said to be an id; a running VM\'s disk-only revert says why once', async () => {
    engine = createEngine({ env: t.env });
    const e = engine;
    const g = testGuest();
    const id = await createGuest(e, 'n');
    const s = e.services.snapshots;
    await expect(s.create('n', { name: '   ' })).rejects.toThrow('Invalid snapshot name: a snapshot name must not be empty. Choose another name.');
    await expect(s.create('n', { name: '' })).rejects.toMatchObject({ code: 'invalid-argument' });
    const first = await s.create('n', {});
    expect(first.name).toBe('Snapshot 1');
    await expect(s.create('n', { name: first.id })).rejects.toThrow(`"${first.id}" is the id of snapshot "Snapshot 1" of "n", so it cannot name another snapshot. Choose another name.`);
    await expect(s.edit('n', first.id, { name: ' ' })).rejects.toThrow(/must not be empty/);

    await e.manager.start(id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    const err = await s.revert('n', 'Snapshot 1').then(
      () => null,
      (x: VivariumError) => x,
    );
    expect(err?.message).toBe('Snapshot "Snapshot 1" was taken while "n" was shut down, so it holds no memory to resume: only the disks of a shut-down VM can go back to it.');
    expect(err?.remedy).toEqual({ kind: 'stop-vm', vm: 'n' });
  }, 120_000);
});
