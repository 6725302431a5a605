/**
 * Another VM's files are never attached writable (issue 7's "a shared resource is never used
 * blindly"; a linked clone's frozen base written by a third VM corrupts the clone and its source).
 * Real engine, real qemu-img; no guest is booted.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useEngineHome } from '../../test-support/engine-home';
import { foreignDiskRefusal, sharedBaseRefusal } from './foreign-files';

const ctx = useEngineHome();
const small = { accel: 'tcg', cpus: 1, memoryMiB: 128, net: 'none', display: 'none' } as const;

async function sharedBaseRefusalFor(file: string) {
  return sharedBaseRefusal(file, 'cloudImage', ctx.engine.manager.library.entries());
}

async function names(): Promise<string[]> {
  return (await ctx.engine.manager.list()).map((v) => v.name).sort();
}

/** A's disk after a linked clone: its overlay (top) and the frozen base both clones stand on. */
async function linkedPair(): Promise<{ base: string; overlayOfA: string; overlayOfB: string }> {
  const { engine } = ctx;
  await engine.manager.create({ ...small, name: 'a', diskSizeBytes: 64 * 1024 * 1024 });
  await engine.services.snapshots.clone('a', { name: 'b', linked: true });
  const file = async (ref: string, depth: number) => {
    const vm = await engine.manager.get(ref);
    const layer = [{ source: vm.config!.disks[0]!.source }, ...vm.config!.disks[0]!.backing][depth]!;
    return 'bundle' in layer.source ? engine.layout.bundle(vm.id).file(layer.source.bundle) : layer.source.path;
  };
  return { base: await file('a', 1), overlayOfA: await file('a', 0), overlayOfB: await file('b', 0) };
}

describe('attaching another VM’s file as a disk', () => {
  it('create --disk of a linked clone’s frozen base, or of another VM’s overlay, is refused naming the VM; nothing is created', async () => {
    const { base, overlayOfB } = await linkedPair();
    const before = fs.readFileSync(base);
    await expect(ctx.engine.manager.create({ ...small, name: 'x', diskPath: base })).rejects.toThrow(
      /is inside Vivarium's library \(the folder of the VM "a"\).*writing it from another VM would corrupt them\. For a VM with a copy of its disk, clone "a"\./,
    );
    await expect(ctx.engine.manager.create({ ...small, name: 'x', diskPath: overlayOfB })).rejects.toThrow(/the folder of the VM "b"/);
    // Through a symbolic link from outside the library, too.
    const link = path.join(ctx.t.home, 'innocent.qcow2');
    fs.symlinkSync(base, link);
    await expect(ctx.engine.manager.create({ ...small, name: 'x', diskPath: link })).rejects.toThrow(/the folder of the VM "a"/);
    expect(await names()).toEqual(['a', 'b']);
    expect(fs.readFileSync(base).equals(before)).toBe(true);
  });

  it('the refusal carries the disk field, so a form marks the Disk field', async () => {
    const { base } = await linkedPair();
    const e = await ctx.engine.manager.create({ ...small, name: 'x', diskPath: base }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'invalid-argument', field: 'diskPath', remedy: { kind: 'change-setting', field: 'diskPath' } });
  });

  it('disk add of another VM’s file is refused; of its own base too; a file of its own folder it no longer uses may come back', async () => {
    const { engine } = ctx;
    const { base, overlayOfA, overlayOfB } = await linkedPair();
    await engine.manager.create({ ...small, name: 'c', diskSizeBytes: 0 });
    await expect(engine.services.disks.add('c', { file: base })).rejects.toThrow(/the folder of the VM "a"/);
    await expect(engine.services.disks.add('c', { file: overlayOfB })).rejects.toThrow(/the folder of the VM "b"/);
    // a's own frozen base and its own overlay: already its disk's images.
    await expect(engine.services.disks.add('a', { file: base })).rejects.toThrow(/is already an image of the disk disk0 of "a"/);
    await expect(engine.services.disks.add('a', { file: overlayOfA })).rejects.toThrow(/is already an image of the disk disk0 of "a"/);
    // A standalone image in a's folder that no disk of a uses (as a revert leaves a later disk).
    const spare = path.join(path.dirname(overlayOfA), 'disk7.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', spare, '16M']);
    const drives = await engine.services.disks.add('a', { file: spare });
    expect(drives.map((d) => d.id)).toContain('disk1');
    expect((await engine.manager.get('c')).config!.disks).toHaveLength(0);
  });

  it('a base image outside the library that a VM’s disk stands on is refused by name (pure check)', async () => {
    const base = path.join(ctx.t.home, 'cloud-base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '16M']);
    const vm = await ctx.engine.manager.create({ ...small, name: 'sandbox', diskSizeBytes: 16 * 1024 * 1024 });
    const config = { ...vm.config!, disks: [{ ...vm.config!.disks[0]!, backing: [{ source: { path: base }, format: 'qcow2' as const }] }] };
    const entries = [{ id: vm.id, dir: ctx.engine.layout.bundle(vm.id).dir, ok: true as const, config }];
    const refusal = await foreignDiskRefusal(base, 'diskPath', ctx.engine.layout.bundlesDir, entries);
    expect(refusal?.message).toBe(
      `${base} is the base image that the disk disk0 of "sandbox" stands on (an overlay keeps only its changes); writing it would change what that VM reads and corrupt it. Attach a copy of the file instead.`,
    );
    // An unrelated file is fine.
    const other = path.join(ctx.t.home, 'other.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', other, '16M']);
    expect(await foreignDiskRefusal(other, 'diskPath', ctx.engine.layout.bundlesDir, entries)).toBeNull();
  });

  it('a cloud image that a VM writes (its disk) is refused as a sandbox base; a frozen base may be shared', async () => {
    const { base, overlayOfA } = await linkedPair();
    const sandbox = { ...small, net: 'user' as const, name: 'sb' };
    await expect(ctx.engine.manager.create({ ...sandbox, cloud: { image: overlayOfA } })).rejects.toThrow(
      /is the disk disk0 of "a", which writes it; a VM standing on it would read a disk that changes under it/,
    );
    const outside = path.join(ctx.t.home, 'plain.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', outside, '16M']);
    await ctx.engine.manager.create({ ...small, name: 'p', diskPath: outside });
    await expect(ctx.engine.manager.create({ ...sandbox, cloud: { image: outside } })).rejects.toThrow(/is the disk disk0 of "p", which writes it/);
    expect(await names()).toEqual(['a', 'b', 'p']);
    // a's frozen base is written by nobody: a sandbox may stand on it too.
    expect(await sharedBaseRefusalFor(base)).toBeNull();
  });

  it('start re-checks it: a VM made before the rule (its disk is another VM’s frozen base) does not start, and says why', async () => {
    const { base } = await linkedPair();
    const before = fs.readFileSync(base);
    const own = path.join(ctx.t.home, 'own.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', own, '16M']);
    const old = await ctx.engine.manager.create({ ...small, name: 'old', diskPath: own });
    // As an older Vivarium (or a hand edit) left it: the disk is a's frozen base.
    const file = ctx.engine.layout.bundle(old.id).config;
    const config = JSON.parse(fs.readFileSync(file, 'utf8')) as { disks: { source: { path: string } }[] };
    config.disks[0]!.source.path = base;
    fs.writeFileSync(file, JSON.stringify(config));
    await expect(ctx.engine.manager.start('old', {})).rejects.toThrow(
      /^"old" cannot start: .* is inside Vivarium's library \(the folder of the VM "a"\).* Remove the disk disk0 from "old" and attach a copy of the file instead\.$/,
    );
    expect((await ctx.engine.manager.get('old')).state).toBe('stopped');
    expect(fs.readFileSync(base).equals(before)).toBe(true);
  });
});
