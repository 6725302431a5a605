import { describe, expect, it } from 'vitest';
import { explainQemuError, lockedImageOf } from './process';

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
