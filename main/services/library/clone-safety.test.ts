/**
 * Linked clones never leave a shared base writable, and flattening leaves no unused base behind
 * (issue 10, tester findings 3 and 6). Real engine, real qemu-img/qemu-io; no guest is booted.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useEngineHome } from '../../test-support/engine-home';

const ctx = useEngineHome();

const MiB = 1024 * 1024;

function io(file: string, cmd: string, readOnly: boolean): string {
  const out = execFileSync('qemu-io', ['-f', 'qcow2', ...(readOnly ? ['-r'] : []), '-c', cmd, file], { encoding: 'utf8' });
  expect(out).not.toMatch(/Pattern verification failed|error|failed/i);
  return out;
}

/** The absolute path of each file in a VM's folder. */
function filesOf(id: string): string[] {
  const dir = ctx.engine.layout.bundle(id).dir;
  return fs.readdirSync(dir).sort();
}

async function topOf(ref: string): Promise<string> {
  const vm = await ctx.engine.manager.get(ref);
  const d = vm.config!.disks[0]!;
  return 'bundle' in d.source ? ctx.engine.layout.bundle(vm.id).file(d.source.bundle) : d.source.path;
}

describe('linked clone safety', () => {
  it('a disk attached in place (outside the folder) refuses a linked clone with a sentence; nothing changes; a full clone works', async () => {
    const raw = path.join(ctx.t.home, 'raw.img');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, '16M']);
    const vm = await ctx.engine.manager.create({ name: 'graw', accel: 'tcg', cpus: 1, memoryMiB: 128, diskPath: raw, net: 'none', display: 'none' });
    const before = JSON.stringify((await ctx.engine.manager.get('graw')).config);
    const filesBefore = filesOf(vm.id);

    await expect(ctx.engine.services.snapshots.clone('graw', { name: 'graw-l', linked: true })).rejects.toThrow(
      `Disk disk0 of "graw" is ${raw}, a raw image attached in place, outside "graw"'s folder, so a linked clone cannot share it safely`,
    );
    await expect(ctx.engine.services.snapshots.clone('graw', { name: 'graw-l', linked: true })).rejects.toThrow(/Make a full clone instead/);
    // Nothing changed: graw still writes raw.img itself, no clone, no overlay, raw.img still writable.
    expect(JSON.stringify((await ctx.engine.manager.get('graw')).config)).toBe(before);
    expect(await topOf('graw')).toBe(raw);
    expect(filesOf(vm.id)).toEqual(filesBefore);
    expect((await ctx.engine.manager.list()).map((v) => v.name)).toEqual(['graw']);
    expect(fs.statSync(raw).mode & 0o200).toBe(0o200);

    // The full clone copies the disk into its own folder and leaves raw.img alone.
    const full = await ctx.engine.services.snapshots.clone('graw', { name: 'graw-f', linked: false });
    const d = (await ctx.engine.manager.get(full.id)).config!.disks[0]!;
    expect(d.source).toEqual({ bundle: expect.stringMatching(/\.qcow2$/) as unknown as string });
    expect(d.backing).toEqual([]);
    expect(await topOf('graw')).toBe(raw);
  }, 60_000);

  it('delete --flatten-clones of a VM whose linked clone has a linked clone of its own leaves no unused frozen base behind', async () => {
    await ctx.engine.manager.create({ name: 'a', accel: 'tcg', cpus: 1, memoryMiB: 128, diskSizeBytes: 32 * MiB, net: 'none', display: 'none' });
    io(await topOf('a'), 'write -P 0x61 0 64k', false);
    const b = await ctx.engine.services.snapshots.clone('a', { name: 'b', linked: true });
    io(await topOf('b'), 'write -P 0x62 1M 64k', false);
    const c = await ctx.engine.services.snapshots.clone('b', { name: 'c', linked: true });
    io(await topOf('c'), 'write -P 0x63 2M 64k', false);
    // b's old top is now c's frozen base, in b's folder.
    const bBase = (await ctx.engine.manager.get(b.id)).config!.disks[0]!.backing[0]!;
    expect('bundle' in bBase.source).toBe(true);
    const bBaseFile = 'bundle' in bBase.source ? ctx.engine.layout.bundle(b.id).file(bBase.source.bundle) : '';
    expect(fs.existsSync(bBaseFile)).toBe(true);

    const res = await ctx.engine.services.vms.delete('a', { flattenClones: true });
    expect([...(res.flattenedClones ?? [])].sort()).toEqual(['b', 'c']);
    expect((await ctx.engine.manager.list()).map((v) => v.name).sort()).toEqual(['b', 'c']);
    // Both stand alone, read what they read before, and b's folder holds only its own image.
    for (const [ref, id] of [['b', b.id], ['c', c.id]] as const) {
      const cfg = (await ctx.engine.manager.get(ref)).config!;
      expect(cfg.disks[0]!.backing).toEqual([]);
      const top = await topOf(ref);
      expect(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', top], { encoding: 'utf8' }))['backing-filename']).toBeUndefined();
      io(top, 'read -P 0x61 0 64k', true);
      io(top, 'read -P 0x62 1M 64k', true);
      expect(filesOf(id).filter((f) => f.endsWith('.qcow2') && f !== cfg.uefiVars)).toEqual([path.basename(top)]);
    }
    io(await topOf('c'), 'read -P 0x63 2M 64k', true);
    expect(fs.existsSync(bBaseFile)).toBe(false);
  }, 120_000);

  it('while a VM\'s config does not load (it might stand on it), a flattened clone\'s old base is kept', async () => {
    const a = await ctx.engine.manager.create({ name: 'a', accel: 'tcg', cpus: 1, memoryMiB: 128, diskSizeBytes: 32 * MiB, net: 'none', display: 'none' });
    const b = await ctx.engine.services.snapshots.clone('a', { name: 'b', linked: true });
    await ctx.engine.services.snapshots.clone('b', { name: 'c', linked: true });
    const bBase = (await ctx.engine.manager.get(b.id)).config!.disks[0]!.backing[0]!;
    const bBaseFile = 'bundle' in bBase.source ? ctx.engine.layout.bundle(b.id).file(bBase.source.bundle) : '';
    expect(fs.existsSync(bBaseFile)).toBe(true);
    const broken = ctx.engine.layout.bundle(randomUUID()).dir;
    fs.mkdirSync(broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'config.json'), '{ not json');
    const res = await ctx.engine.services.vms.delete(a.id, { flattenClones: true });
    expect([...(res.flattenedClones ?? [])].sort()).toEqual(['b', 'c']);
    expect(fs.existsSync(bBaseFile)).toBe(true);
  }, 120_000);
});
