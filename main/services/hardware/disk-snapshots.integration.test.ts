/**
 * Disks and what snapshots hold on to, against real qemu-img and QEMU (TCG):
 * - after a revert detached a disk added since (its file kept as diskN.qcow2), adding a disk takes
 *   the next id whose file is free and that no snapshot names, and the kept file is untouched;
 * - `remove --delete-file` of a disk a snapshot still holds is refused naming the snapshot, nothing
 *   changed; once the snapshot is deleted it goes through;
 * - a suspended VM's disk cannot grow (nor its CD change): the resumed guest would not see it; the
 *   refusal says so with the suspended VM's remedy, and the image keeps its size.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { endEngineTest } from '../../test-support/engine-home';
import { qemuProcessesUnder } from '../../test-support/qemu-procs';
import type { VmConfig } from '../../common/models/vm-config';
import { createEngine, type Engine } from '../engine';

let t: TestHome;
let engine: Engine;

beforeEach(() => {
  t = makeTestHome();
  engine = createEngine({ env: t.env, log: () => undefined });
});

afterEach(async () => {
  await endEngineTest(engine, t);
});

const MiB = 1024 * 1024;

function qemuIo(file: string, cmd: string): string {
  return execFileSync('qemu-io', ['-f', 'qcow2', '-c', cmd, file], { encoding: 'utf8' });
}

function virtualSize(file: string): number {
  return (JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' })) as { 'virtual-size': number })['virtual-size'];
}

function configOf(id: string): VmConfig {
  return JSON.parse(fs.readFileSync(engine.layout.bundle(id).config, 'utf8')) as VmConfig;
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string; remedy?: unknown }> {
  const e = (await p.then(
    () => null,
    (x: unknown) => x,
  )) as { code: string; message: string; remedy?: unknown } | null;
  if (!e) throw new Error('it succeeded');
  return e;
}

describe('disks that snapshots hold', () => {
  it('a disk added after a revert kept diskN.qcow2 takes the next free id; delete-file of a disk a snapshot holds is refused until the snapshot is gone', async () => {
    const vm = await engine.manager.create({ name: 'd', accel: 'tcg', cpus: 1, memoryMiB: 128, diskSizeBytes: 16 * MiB, net: 'none', display: 'none' });
    const b = engine.layout.bundle(vm.id);
    const disks = engine.services.disks;
    await engine.services.snapshots.create('d', { name: 'A' });
    await disks.add('d', { sizeBytes: 16 * MiB });
    qemuIo(b.file('disk1.qcow2'), 'write -P 0x33 0 64k');
    const r = await engine.services.snapshots.revert('d', 'A');
    expect(r.detachedDisks).toEqual(['disk1']);
    expect(fs.existsSync(b.file('disk1.qcow2'))).toBe(true);

    // disk1.qcow2 is kept in the folder: the new disk is disk2, and the kept file is as it was.
    const after = await disks.add('d', { sizeBytes: 32 * MiB });
    expect(after.filter((x) => x.kind === 'disk').map((x) => [x.id, x.path, x.virtualSizeBytes])).toEqual([
      ['disk0', b.file('disk0.qcow2'), 16 * MiB],
      ['disk2', b.file('disk2.qcow2'), 32 * MiB],
    ]);
    expect(qemuIo(b.file('disk1.qcow2'), 'read -P 0x33 0 64k')).not.toMatch(/Pattern verification failed/);

    // Snapshot "B" holds disk2 (its settings name it, its data is in the file).
    await engine.services.snapshots.create('d', { name: 'B' });
    const before = fs.readFileSync(b.config, 'utf8');
    const e = await failure(disks.remove('d', 'disk2', { deleteFile: true }));
    expect(e.code).toBe('invalid-state');
    expect(e.message).toBe(
      'disk2.qcow2 of "d" cannot be deleted: snapshot "B" holds disk2 (a revert attaches it again with its data of that moment). Nothing was removed. Remove the disk without deleting its file (it stays in the VM\'s folder for that snapshot), or delete the snapshot first.',
    );
    expect(fs.readFileSync(b.config, 'utf8')).toBe(before);
    expect(fs.existsSync(b.file('disk2.qcow2'))).toBe(true);
    // The system disk is held by both.
    const sys = await failure(disks.remove('d', 'disk0', { deleteFile: true, force: true }));
    expect(sys.message).toMatch(/^disk0\.qcow2 of "d" cannot be deleted: snapshots "A", "B" hold disk0 .* or delete the snapshots first\.$/);

    // With "B" gone, nothing holds disk2 any more.
    await engine.services.snapshots.delete('d', 'B');
    await disks.remove('d', 'disk2', { deleteFile: true });
    expect(fs.existsSync(b.file('disk2.qcow2'))).toBe(false);
    expect(configOf(vm.id).disks.map((x) => x.id)).toEqual(['disk0']);
    // And the next disk takes disk2 again (disk1.qcow2 is still kept).
    const again = await disks.add('d', { sizeBytes: 16 * MiB });
    expect(again.filter((x) => x.kind === 'disk').map((x) => x.id)).toEqual(['disk0', 'disk2']);
  }, 120_000);
});

describe('a suspended VM', () => {
  it('refuses to grow its disk (the resumed guest would see the old size) and to change its CD, with the suspended remedy; the image keeps its size', async () => {
    const g = testGuest();
    const vm = await engine.manager.create({ name: 'sleepy', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 32 * MiB, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
    await engine.manager.start(vm.id, { waitSerial: g.readyMarker, timeoutSec: 120 });
    expect((await engine.services.snapshots.suspend('sleepy')).state).toBe('suspended');
    const disk = engine.layout.bundle(vm.id).file('disk0.qcow2');

    const e = await failure(engine.services.disks.resize('sleepy', 'disk0', 64 * MiB));
    expect(e.code).toBe('invalid-state');
    expect(e.message).toBe(
      '"sleepy" is suspended: its disks must stay as they were until it resumes (grown now, the resumed guest would still see the old size). Start it (it resumes where it was) and shut it down, or force it off to discard its saved state (the next start then boots afresh); then grow disk0.',
    );
    expect(e.remedy).toEqual({ kind: 'force-stop', vm: 'sleepy' });
    expect(virtualSize(disk)).toBe(32 * MiB);
    if (g.grubRescueIso) {
      const cd = await failure(engine.services.disks.insertCd('sleepy', g.grubRescueIso));
      expect(cd.message).toMatch(/^"sleepy" is suspended: its disks and CD drives must stay as they were until it resumes\. .* then change the CD\.$/);
    }
    expect(configOf(vm.id).suspended).not.toBeNull();

    // Resumed and shut down, it grows.
    await engine.manager.start(vm.id, { timeoutSec: 120 });
    await engine.manager.stop(vm.id, { force: true });
    await engine.services.disks.resize('sleepy', 'disk0', 64 * MiB);
    expect(virtualSize(disk)).toBe(64 * MiB);
  }, 240_000);
});

describe('a qcow2 image that keeps its data in another file (data_file)', () => {
  it('is refused as disk add --file, and a VM whose disk became one does not start (QEMU would open that file for the guest)', async () => {
    const secret = `${t.home}/secret.raw`;
    const image = `${t.home}/external.qcow2`;
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${secret},data_file_raw=on`, image, '1M']);
    const vm = await engine.manager.create({ name: 'x', accel: 'tcg', cpus: 1, memoryMiB: 128, diskSizeBytes: 16 * MiB, net: 'none', display: 'none' });
    const e = await failure(engine.services.disks.add('x', { file: image }));
    expect(e.message).toBe(`${image} keeps its data in another file (${secret}), which Vivarium never opens. Make a standalone copy with qemu-img convert -O qcow2 "${image}" standalone.qcow2 and use that.`);
    expect(configOf(vm.id).disks.map((d) => d.id)).toEqual(['disk0']);

    const disk = engine.layout.bundle(vm.id).file('disk0.qcow2');
    fs.rmSync(disk);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${secret},data_file_raw=on`, disk, '16M']);
    const start = await failure(engine.manager.start(vm.id, { timeoutSec: 30 }));
    expect(start.message).toMatch(new RegExp(`^"x" cannot start: .*disk0.* now keeps its data in another file \\(${secret.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\), and Vivarium never opens such a file`));
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  }, 60_000);
});
