/**
 * Delivery of the NoCloud seed to the guest: an ISO 9660 image with the volume label `cidata` and
 * the files `meta-data`, `user-data` and (when present) `network-config` under those exact names
 * (Joliet), attached read-only as a second disk or CD.
 *
 * Why an ISO, not QEMU's vvfat (qemu-notes §7): it is one file in the bundle, made by Vivarium's own
 * code on every host, read by every cloud-init and every hypervisor (cloud-localds and Lima do the
 * same), and needs no QEMU block driver that some builds leave out (vvfat, e.g. RHEL's). vvfat would
 * also expose a host directory to QEMU, which `-sandbox` and image locking never see.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Seed } from './cloud-init';
import { buildIso9660 } from './iso9660';

/** The label cloud-init's NoCloud looks for (it accepts `cidata` and `CIDATA`). */
export const SEED_VOLUME_ID = 'cidata';

/** The seed image in memory. `date` fixes the recording time (tests). */
export function seedIsoImage(seed: Seed, date?: Date): Buffer {
  const files = [
    { name: 'meta-data', data: Buffer.from(seed.metaData, 'utf8') },
    { name: 'user-data', data: Buffer.from(seed.userData, 'utf8') },
    ...(seed.networkConfig === null ? [] : [{ name: 'network-config', data: Buffer.from(seed.networkConfig, 'utf8') }]),
  ];
  return buildIso9660({ volumeId: SEED_VOLUME_ID, files, ...(date ? { date } : {}) });
}

/**
 * Writes the seed image to `file` atomically (temp file in the same folder, fsync, rename), mode
 * 0600: user-data holds the password hash and whatever the user's own user-data holds.
 * @returns the image size in bytes.
 * @throws the fs error (the temp file is removed).
 */
export async function writeSeedIso(file: string, seed: Seed): Promise<number> {
  const image = seedIsoImage(seed);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await fsp.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(image);
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsp.chmod(file, 0o600);
  return image.length;
}
