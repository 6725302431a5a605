/**
 * Issue 8, item 4 for the files QEMU itself opens: a VM's own disk image or UEFI variable store
 * replaced by a symbolic link must never make QEMU open (and write) the link's target. Real engine,
 * real qemu-img and QEMU (TCG).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VivariumError } from '../../common/errors';
import { createEngine, type Engine } from '../engine';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { Layout } from '../paths';

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

function sha(file: string): string {
  return `${fs.statSync(file).size}:${fs.readFileSync(file).toString('base64').slice(0, 64)}:${fs.statSync(file).mtimeMs}`;
}

describe('links in place of files QEMU opens', () => {
  it('a VM disk image replaced by a link is refused at start, and the target is untouched', async () => {
    const guest = testGuest();
    const vms = engine.services.vms;
    const vm = await vms.create({ name: 'linked-disk', kernel: guest.kernel, initrd: guest.initrd, append: guest.append, accel: 'tcg', memoryMiB: 64, cpus: 1, diskSizeBytes: 1024 * 1024, net: 'none', display: 'none' });
    const layout = Layout.fromEnv(t.env);
    const disk = layout.bundle(vm.id).file('disk0.qcow2');
    // Someone else's image, outside the library.
    const victim = path.join(t.home, '..', `${path.basename(t.home)}-victim.qcow2`);
    fs.copyFileSync(disk, victim);
    try {
      const before = sha(victim);
      fs.rmSync(disk);
      fs.symlinkSync(victim, disk);
      const e: unknown = await vms.start(vm.id, {}).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(VivariumError);
      expect((e as VivariumError).message).toMatch(/disk0\.qcow2\) is a symbolic link; Vivarium does not follow links in a VM folder/);
      expect((await vms.get(vm.id)).state).toBe('stopped');
      expect(sha(victim)).toBe(before);
    } finally {
      fs.rmSync(victim, { force: true });
    }
  });

  it.skipIf(testGuest().ovmfVars === null)('a UEFI store replaced by a link is moved aside and rebuilt, never written through', async () => {
    const guest = testGuest();
    const vms = engine.services.vms;
    const vm = await vms.create({ name: 'linked-vars', firmware: 'uefi', kernel: guest.kernel, initrd: guest.initrd, append: guest.append, accel: 'tcg', memoryMiB: 128, cpus: 1, diskSizeBytes: 0, net: 'none', display: 'none' });
    const layout = Layout.fromEnv(t.env);
    const vars = layout.bundle(vm.id).file('efivars.qcow2');
    const victim = path.join(t.home, '..', `${path.basename(t.home)}-victim-vars.qcow2`);
    fs.copyFileSync(vars, victim);
    try {
      const before = sha(victim);
      fs.rmSync(vars);
      fs.symlinkSync(victim, vars);
      const started = await vms.start(vm.id, {});
      expect(started.state).toBe('running');
      expect(fs.lstatSync(vars).isSymbolicLink()).toBe(false);
      expect(fs.readdirSync(layout.bundle(vm.id).dir).some((n) => n.startsWith('efivars.qcow2.broken-'))).toBe(true);
      await vms.stop(vm.id, { force: true });
      expect(sha(victim)).toBe(before);
    } finally {
      fs.rmSync(victim, { force: true });
    }
  });
});
