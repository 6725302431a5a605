import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VivariumError } from '../../common/errors';
import { Layout } from '../paths';
import { explainQemuError, launchQemu, lockedImageOf } from './process';

// QEMU 7.2's words when another process holds an image's write lock (block/file-posix.c), as the
// tester saw them in qemu.log (timestamp first, -msg timestamp=on).
const LOCKED = [
  '2026-11-30T12:40:01.000000Z qemu-system-x86_64: -device virtio-blk-pci,id=vda,drive=disk0,iothread=io0,bootindex=1: Failed to get "write" lock',
  'Is another process using the image [/tmp/tester/shared.img]?',
];

describe('a disk image locked by another program', () => {
  it('is a sentence naming the image, without the -device text', () => {
    const text = explainQemuError(LOCKED);
    expect(text).toBe(
      'the disk image /tmp/tester/shared.img is in use by another program (another VM, or a disk tool), and two programs writing one image would corrupt it. Stop that program first, then start the VM again.',
    );
    expect(text).not.toMatch(/-device|virtio-blk|Failed to get/);
  });

  it('gives the image path to the caller (which names the VM holding it)', () => {
    expect(lockedImageOf(LOCKED)).toBe('/tmp/tester/shared.img');
    expect(lockedImageOf(['qemu-system-x86_64: -netdev user: Could not set up host forwarding rule'])).toBeNull();
  });
});

describe('launchQemu when QEMU refuses to start', () => {
  it('says why from the last lines of its log (read off the event loop), and a link planted as the log is replaced, not followed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-launch-'));
    try {
      const layout = new Layout(path.join(dir, 'lib'), path.join(dir, 'rt'));
      const rt = layout.runtime('0b3f2a4c-1d2e-4f50-8a6b-7c8d9e0f1a2b');
      layout.ensureRuntimeDir(rt.dir);
      // A real program in QEMU's place, failing the way QEMU does when a host port is taken.
      const fake = path.join(dir, 'qemu-system-x86_64');
      fs.writeFileSync(fake, "#!/bin/sh\necho 'early noise' >&2\necho \"qemu-system-x86_64: -netdev user,id=net0: Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'\" >&2\nexit 1\n", { mode: 0o700 });
      const victim = path.join(dir, 'victim.txt');
      fs.writeFileSync(victim, 'keep me');
      const logFile = path.join(dir, 'qemu.log');
      fs.symlinkSync(victim, logFile);
      const e = (await launchQemu({ binary: fake, args: [], runtime: rt, logFile, timeoutMs: 10_000 }).catch((err: unknown) => err)) as VivariumError;
      expect(e).toBeInstanceOf(VivariumError);
      expect(e.message).toBe("QEMU refused to start: host port 2222 (tcp) is already in use by another program, so the port forward cannot be set up. Free the port or change the VM's port forwards.");
      expect((e.data as { stderrTail: string[] }).stderrTail).toEqual(['early noise', "qemu-system-x86_64: -netdev user,id=net0: Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'"]);
      expect(fs.readFileSync(victim, 'utf8')).toBe('keep me');
      expect(fs.lstatSync(logFile).isSymbolicLink()).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
