/**
 * The test guests built by scripts/build-test-guest.mjs (vitest's globalSetup runs it): a tiny
 * Linux (Debian cloud kernel + busybox initramfs) to boot with -kernel/-initrd/-append, and the
 * ISO and firmware files found on the host (null when a package is missing).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

const REPO = path.resolve(__dirname, '..', '..');

const GuestInfoSchema = z.object({
  version: z.literal(1),
  /** Hash of the inputs (package versions, builder); changes when the guest is rebuilt. */
  key: z.string(),
  kernel: z.string(),
  initrd: z.string(),
  /** Kernel command line: serial console on ttyS0, quiet, reboot at once on panic. */
  append: z.string(),
  kernelVersion: z.string(),
  /** Modules the guest loads at boot (virtio, ACPI button, IDE/SCSI/CD, isofs, vfat). */
  modules: z.array(z.string()).readonly(),
  skippedModules: z.array(z.string()).readonly(),
  /** Printed on the serial console once, just before the first shell prompt. */
  readyMarker: z.string(),
  /** The shell prompt (busybox ash may follow it with ESC[6n, a cursor-position query). */
  prompt: z.string(),
  memtestIso: z.string().nullable(),
  grubRescueIso: z.string().nullable(),
  ovmfCode: z.string().nullable(),
  ovmfVars: z.string().nullable(),
});

export type GuestInfo = Readonly<z.infer<typeof GuestInfoSchema>>;

/** Where the guest is built: $VIVARIUM_TEST_CACHE or <repo>/.cache/test-guest. */
export function testGuestDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.VIVARIUM_TEST_CACHE ?? path.join(REPO, '.cache', 'test-guest'));
}

export function testGuest(env: NodeJS.ProcessEnv = process.env): GuestInfo {
  const file = path.join(testGuestDir(env), 'guest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(
      `The test guest is not built (${file}: ${(e as Error).message}). ` +
        'Run `node scripts/build-test-guest.mjs` (vitest runs it in globalSetup).',
    );
  }
  const parsed = GuestInfoSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`${file} is not what this code expects (${parsed.error.message}). Rebuild: node scripts/build-test-guest.mjs`);
  }
  return parsed.data;
}

/** The QEMU arguments that boot the tiny Linux guest directly (no disk, no firmware menu). */
export function directBootArgs(guest: GuestInfo = testGuest()): readonly string[] {
  return ['-kernel', guest.kernel, '-initrd', guest.initrd, '-append', guest.append];
}

const ArmGuestInfoSchema = z.object({
  version: z.literal(1),
  arch: z.literal('aarch64'),
  key: z.string(),
  kernel: z.string(),
  initrd: z.string(),
  /** Serial console on ttyAMA0 (the virt machine's PL011). */
  append: z.string(),
  kernelVersion: z.string(),
  readyMarker: z.string(),
  prompt: z.string(),
  /** Debian's qemu-efi-aarch64 code/vars pair (null when not installed). */
  aavmfCode: z.string().nullable(),
  aavmfVars: z.string().nullable(),
});

export type ArmGuestInfo = Readonly<z.infer<typeof ArmGuestInfoSchema>>;

/** The aarch64 test guest (Debian arm64 cloud kernel + busybox initramfs) that
 *  scripts/build-test-guest.mjs builds into <cache>/aarch64/. Throws with the builder's reason
 *  (aarch64/error.txt) when it could not be built. */
export function armTestGuest(env: NodeJS.ProcessEnv = process.env): ArmGuestInfo {
  const dir = path.join(testGuestDir(env), 'aarch64');
  const file = path.join(dir, 'guest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    let why = '';
    try {
      why = fs.readFileSync(path.join(dir, 'error.txt'), 'utf8').trim();
    } catch {
      // no reason recorded
    }
    throw new Error(
      `The aarch64 test guest is not built (${file}: ${(e as Error).message}).${why ? ` The builder said: ${why}` : ''} ` +
        'Run `node scripts/build-test-guest.mjs`.',
    );
  }
  const parsed = ArmGuestInfoSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${file} is not what this code expects (${parsed.error.message}). Rebuild: node scripts/build-test-guest.mjs`);
  return parsed.data;
}
