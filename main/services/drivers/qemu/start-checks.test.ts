/**
 * The start checks on real files (issue 7 moved them off the event loop; qemu-driver.ts's start()
 * calls these async forms).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostCapabilities } from '../../../common/models/host';
import { VmConfig, type VmConfigInput } from '../../../common/models/vm-config';
import { assertMediaPresentAsync, withDirectIoWhereSupportedAsync, withMissingCdsEmptiedAsync } from './start-checks';

const base: VmConfigInput = {
  version: 3,
  id: '0b3f2a4c-1d2e-4f50-8a6b-7c8d9e0f1a2b',
  name: 'box',
  createdAt: '2026-01-01T00:00:00Z',
  arch: 'x86_64',
  cpus: 1,
  memoryMiB: 512,
  network: { mode: 'user', mac: '52:54:00:12:34:56', forwards: [] },
};

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-checks-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function withDisk(file: string): VmConfig {
  return VmConfig.parse({ ...base, disks: [{ id: 'disk0', role: 'system', bus: 'virtio', source: { path: file }, format: 'raw', readOnly: false, backing: [] }] });
}

const O_DIRECT = (fs.constants as Record<string, number>).O_DIRECT;
/** Whether `file` opens with O_DIRECT here (what QEMU's cache.direct=on needs). */
function directOpens(file: string): boolean {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | (O_DIRECT ?? 0)));
    return true;
  } catch {
    return false;
  }
}

describe('O_DIRECT probe', () => {
  it.skipIf(O_DIRECT === undefined || !fs.existsSync('/dev/shm'))('keeps native AIO exactly where every disk opens with O_DIRECT (a disk folder, tmpfs); a missing disk does not turn it off', async () => {
    // tmpfs refuses O_DIRECT before Linux 6.6 and takes it since: the expectation is what this host's
    // file systems say when asked directly.
    const caps = { nativeAio: true } as HostCapabilities;
    const onDisk = path.join(dir, 'disk.raw');
    fs.writeFileSync(onDisk, Buffer.alloc(1024 * 1024));
    const shmDir = fs.mkdtempSync('/dev/shm/viv-checks-');
    try {
      const onTmpfs = path.join(shmDir, 'disk.raw');
      fs.writeFileSync(onTmpfs, Buffer.alloc(1024 * 1024));
      const bundleFile = (n: string) => path.join(dir, n);
      for (const file of [onDisk, onTmpfs]) {
        const truth = directOpens(file);
        expect((await withDirectIoWhereSupportedAsync(caps, withDisk(file), bundleFile)).nativeAio).toBe(truth);
      }
      // Missing or unreadable disks are reported elsewhere, in better words.
      expect((await withDirectIoWhereSupportedAsync(caps, withDisk(path.join(dir, 'gone.raw')), bundleFile)).nativeAio).toBe(true);
      // A host without native AIO is left as it is, nothing opened.
      const none = { nativeAio: false } as HostCapabilities;
      expect(await withDirectIoWhereSupportedAsync(none, withDisk(onDisk), bundleFile)).toBe(none);
    } finally {
      fs.rmSync(shmDir, { recursive: true, force: true });
    }
  });
});

describe('media named by the config', () => {
  it('a missing ISO empties its CD drive with a notice; a present one stays', async () => {
    const here = path.join(dir, 'here.iso');
    fs.writeFileSync(here, 'iso');
    const gone = path.join(dir, 'gone.iso');
    const c = VmConfig.parse({ ...base, cdroms: [{ id: 'cd0', path: here }, { id: 'cd1', path: gone }, { id: 'cd2', path: null }] });
    const r = await withMissingCdsEmptiedAsync(c);
    expect(r.config.cdroms).toEqual([{ id: 'cd0', path: here }, { id: 'cd1', path: null }, { id: 'cd2', path: null }]);
    expect(r.notices).toEqual([
      `The ISO in cd1, ${gone}, no longer exists: cd1 was started empty. Insert another (vivarium cd insert box PATH --drive cd1, or the Hardware tab), or eject it to stop this notice (vivarium cd eject box --drive cd1).`,
    ]);
    const all = VmConfig.parse({ ...base, cdroms: [{ id: 'cd0', path: here }] });
    expect(await withMissingCdsEmptiedAsync(all)).toEqual({ config: all, notices: [] });
  });

  it('a missing disk image or kernel refuses the start with the way out; present ones pass', async () => {
    const disk = path.join(dir, 'disk.raw');
    fs.writeFileSync(disk, Buffer.alloc(4096));
    await expect(assertMediaPresentAsync(withDisk(disk))).resolves.toBeUndefined();
    fs.rmSync(disk);
    const sentence = `The disk image ${disk} no longer exists. Put it back, or create a new VM with that image where it is now (vivarium create NAME --disk PATH).`;
    await expect(assertMediaPresentAsync(withDisk(disk))).rejects.toThrow(sentence);
    const kernel = path.join(dir, 'vmlinuz');
    const k = VmConfig.parse({ ...base, kernel: { path: kernel, initrd: null, cmdline: '' } });
    await expect(assertMediaPresentAsync(k)).rejects.toThrow(`The kernel ${kernel} no longer exists. Put it back, or change it: vivarium edit box --kernel PATH.`);
  });
});
