/**
 * Clones of a UEFI VM made by a real engine with real qemu-img (no guest is booted): the linked
 * clone's overlays (written by Vivarium itself, disks/qcow2-overlay.ts) check clean and read the
 * source's data, the UEFI variable store is copied byte for byte when it holds nothing but
 * variables, and a store holding the source's snapshots is converted (the clone gets none of them).
 * What `clone` returns is what `get` then says of the clone.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useEngineHome } from '../../test-support/engine-home';

const ctx = useEngineHome();

const MiB = 1024 * 1024;

function img(args: readonly string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

function io(file: string, cmds: readonly string[], readOnly: boolean): string {
  const out = execFileSync('qemu-io', ['-f', 'qcow2', ...(readOnly ? ['-r'] : []), ...cmds.flatMap((c) => ['-c', c]), file], { encoding: 'utf8' });
  expect(out).not.toMatch(/Pattern verification failed|error|failed/i);
  return out;
}

function checkClean(file: string): void {
  expect(img(['check', '-f', 'qcow2', file])).toContain('No errors were found on the image.');
}

const mode = (file: string): number => fs.statSync(file).mode & 0o777;

async function uefiVm(name: string): Promise<{ id: string; disk: string; vars: string }> {
  const vm = await ctx.engine.manager.create({ name, accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 64 * MiB, firmware: 'uefi', net: 'none', display: 'none' });
  const b = ctx.engine.layout.bundle(vm.id);
  const c = vm.config!;
  const d = c.disks[0]!;
  if (!('bundle' in d.source) || !c.uefiVars) throw new Error('the UEFI VM has no bundle disk or no variable store');
  return { id: vm.id, disk: b.file(d.source.bundle), vars: b.file(c.uefiVars) };
}

describe('clone of a UEFI VM', () => {
  it('linked: both overlays check clean and read the source data, the variable store is an exact owner-only copy, and the result is what get says', async () => {
    const src = await uefiVm('uefi-src');
    io(src.disk, ['write -P 0x3c 0 64k', 'write -P 0x4d 32M 4k'], false);
    const made = await ctx.engine.services.snapshots.clone('uefi-src', { name: 'uefi-linked', linked: true });

    const got = await ctx.engine.manager.get(made.id);
    expect(made).toEqual({ ...got, argv: undefined });
    expect(made.error ?? null).toBeNull();
    expect(made.state).toBe('stopped');
    expect(made.name).toBe('uefi-linked');

    const cloneBundle = ctx.engine.layout.bundle(made.id);
    const cd = made.config!.disks[0]!;
    if (!('bundle' in cd.source)) throw new Error('the clone disk is not in its folder');
    const cloneDisk = cloneBundle.file(cd.source.bundle);
    expect(cd.backing).toEqual([{ source: { path: src.disk }, format: 'qcow2' }]);
    const source = (await ctx.engine.manager.get(src.id)).config!;
    const sd = source.disks[0]!;
    if (!('bundle' in sd.source)) throw new Error('the source disk is not in its folder');
    const sourceTop = ctx.engine.layout.bundle(src.id).file(sd.source.bundle);
    expect(sourceTop).not.toBe(src.disk);

    for (const overlay of [cloneDisk, sourceTop]) {
      checkClean(overlay);
      const info = JSON.parse(img(['info', '-U', '--output=json', overlay])) as Record<string, unknown>;
      expect(info['backing-filename']).toBe(src.disk);
      expect(info['backing-filename-format']).toBe('qcow2');
      expect(info['virtual-size']).toBe(64 * MiB);
      expect(mode(overlay)).toBe(0o600);
      io(overlay, ['read -P 0x3c 0 64k', 'read -P 0x4d 32M 4k', 'read -P 0 1M 64k'], true);
    }
    expect(mode(src.disk)).toBe(0o400); // the shared base is frozen

    const cloneVars = cloneBundle.file(made.config!.uefiVars!);
    expect(fs.readFileSync(cloneVars).equals(fs.readFileSync(src.vars))).toBe(true);
    expect(mode(cloneVars)).toBe(0o600);
    checkClean(cloneVars);
  });

  it('full, of a VM with a snapshot: the clone\'s variable store and disk hold no snapshot of the source', async () => {
    const src = await uefiVm('uefi-snap');
    await ctx.engine.services.snapshots.create('uefi-snap', { name: 'before' });
    expect(img(['snapshot', '-l', src.vars])).not.toBe(''); // the snapshot is inside the variable store
    const made = await ctx.engine.services.snapshots.clone('uefi-snap', { name: 'uefi-full', linked: false });
    const b = ctx.engine.layout.bundle(made.id);
    const vars = b.file(made.config!.uefiVars!);
    checkClean(vars);
    expect(img(['snapshot', '-l', vars])).toBe('');
    const d = made.config!.disks[0]!;
    if (!('bundle' in d.source)) throw new Error('the clone disk is not in its folder');
    expect(img(['snapshot', '-l', b.file(d.source.bundle)])).toBe('');
    expect(await ctx.engine.services.snapshots.list('uefi-full')).toEqual([]);
  });
});
