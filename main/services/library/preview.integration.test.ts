/**
 * `vms.preview`: the New VM wizard's dry run. It makes every check `create` makes and returns the
 * QEMU command line — and writes nothing (no VM folder, no disk image, no UEFI store).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vmsSchema } from '../../common/contract/vms';
import { VivariumError } from '../../common/errors';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { createEngine, type Engine } from '../engine';

let t: TestHome;
let engine: Engine;

beforeEach(() => {
  t = makeTestHome();
  engine = createEngine({ env: t.env });
});

afterEach(async () => {
  await engine.dispose();
  await t.cleanup();
});

/** Every file under the library, relative (the probe cache aside). */
function libraryFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(t.home, p));
    }
  };
  walk(t.home);
  return out.filter((f) => f !== 'host-probe.json');
}

describe('vms.preview', () => {
  it('returns the command line create would start with, and writes nothing', async () => {
    const g = testGuest();
    const before = libraryFiles();
    const p = await engine.services.vms.preview({ name: 'dry', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 1024 ** 3, firmware: 'uefi', kernel: g.kernel, initrd: g.initrd, append: g.append });
    expect(path.basename(p.argv[0]!)).toMatch(/^qemu-system-(x86_64|aarch64)$/);
    expect(p.accel).toBe('tcg');
    const argv = p.argv.join(' ');
    expect(argv).toContain(`-kernel ${g.kernel}`);
    expect(argv).toContain('-m 256');
    expect(argv).toMatch(/disk0\.qcow2/);
    expect(argv).toMatch(/efivars\.qcow2/);
    expect(await engine.services.vms.list()).toEqual([]);
    expect(libraryFiles()).toEqual(before);
    // The same spec then creates, with the same command line apart from the VM's id.
    const vm = await engine.services.vms.create({ name: 'dry', accel: 'tcg', cpus: 1, memoryMiB: 256, diskSizeBytes: 1024 ** 3, firmware: 'uefi', kernel: g.kernel, initrd: g.initrd, append: g.append });
    const shown = await engine.services.vms.get(vm.id);
    const norm = (a: readonly string[]): string[] => a.map((x) => x.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'ID').replace(/[0-9a-f]{32}/g, 'ID').replace(/qemu-[0-9a-f]{8}/g, 'qemu-ID').replace(/52:54:00(:[0-9a-f]{2}){3}/g, 'MAC'));
    expect(norm(p.argv)).toEqual(norm(shown.argv!));
  });

  it('refuses what create refuses, on the same field', async () => {
    const e = await engine.services.vms.preview({ name: 'bad', iso: '/nonexistent/x.iso' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(VivariumError);
    expect((e as VivariumError).field).toBe('iso');
    expect((e as VivariumError).message).toContain('/nonexistent/x.iso');
    const mem = await engine.services.vms.preview({ name: 'big', memoryMiB: 1024 * 1024, diskSizeBytes: 0 }).catch((err: unknown) => err);
    expect((mem as VivariumError).field).toBe('memoryMiB');
    expect(libraryFiles()).toEqual([]);
  });

  it('checks its argument with the create schema', () => {
    expect(vmsSchema.methods.preview.safeParse([{ name: 'x', iso: 'relative.iso' }]).success).toBe(false);
    expect(vmsSchema.methods.preview.safeParse([{ name: 'x', diskSizeBytes: 0 }]).success).toBe(true);
  });
});
