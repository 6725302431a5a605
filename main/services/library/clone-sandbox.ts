/**
 * What a clone of a cloud-init sandbox (issue 11) gets of its own, like a VM copied with virt-clone
 * and prepared with virt-sysprep (issue 10):
 *
 * - a new NoCloud seed (`cidata.iso` in its folder) whose meta-data `instance-id` is the clone's id:
 *   cloud-init sees a new instance at the next boot and re-runs its per-instance modules, which
 *   makes new SSH host keys (`ssh_deletekeys`/`ssh_genkeytypes`, cloud-init docs "cc_ssh"), and whose
 *   network-config matches the clone's new MAC address (the source's would match no NIC);
 *   user-data (user, authorized keys, password hash, packages, the user's own parts) and the host
 *   name stay as they were, but for one bootcmd entry in Vivarium's #cloud-config part that gives
 *   the clone a new /etc/machine-id at its first boot (virt-sysprep's `machine-id`);
 * - a copy of the VM's own key pair in its folder (`ssh/id_ed25519`, when Vivarium made the source's
 *   key; a key of the user's stays where it is), since the guest's disk already authorizes that key;
 * - its own `ssh/known_hosts`, empty until the clone's new host keys are learnt from its console.
 *
 * The seed is read back from the source's image (written by provisioning/iso9660.ts: one root
 * directory in the primary tree, level-1 names), never from anything outside the source's folder.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { errors } from '../../common/errors';
import type { CloudInitAccess } from '../../common/models/sandbox';
import type { Disk } from '../../common/models/vm-config';
import { level1Name } from '../provisioning/iso9660';
import { CloudInitFiles } from '../provisioning/provision';
import { writeSeedIso } from '../provisioning/seed-iso';
import { vmKeyPaths } from '../provisioning/ssh-keys';
import { mimeMultipart, splitUserData, type Seed } from '../provisioning/cloud-init';

const SECTOR = 2048;

/**
 * The files of the root directory of an ISO 9660 image's primary tree, by their level-1 identifier
 * ("META_DAT.;1"). ECMA-119: the primary volume descriptor in sector 16, its root directory record
 * at byte 156 (extent LBA at +2, data length at +10, both-endian little half); each directory
 * record: length at +0, extent at +2, size at +10, flags at +25, identifier length at +32, identifier at +33.
 * @throws Error when the image is not one (no CD001 descriptor, records out of bounds).
 */
export function isoRootFiles(image: Buffer): ReadonlyMap<string, Buffer> {
  const pvd = 16 * SECTOR;
  if (image.length < pvd + SECTOR || image[pvd] !== 1 || image.toString('latin1', pvd + 1, pvd + 6) !== 'CD001') throw new Error('no ISO 9660 primary volume descriptor');
  const root = pvd + 156;
  const dirAt = image.readUInt32LE(root + 2) * SECTOR;
  const dirLen = image.readUInt32LE(root + 10);
  if (dirAt + dirLen > image.length) throw new Error('the root directory lies outside the image');
  const files = new Map<string, Buffer>();
  for (let off = dirAt; off < dirAt + dirLen; ) {
    const len = image[off]!;
    if (len === 0) {
      off = (Math.floor((off - dirAt) / SECTOR) + 1) * SECTOR + dirAt; // records do not cross sectors
      continue;
    }
    const at = image.readUInt32LE(off + 2) * SECTOR;
    const size = image.readUInt32LE(off + 10);
    const isDir = (image[off + 25]! & 0x02) !== 0;
    const id = image.toString('latin1', off + 33, off + 33 + image[off + 32]!);
    if (!isDir && at + size <= image.length) files.set(id, image.subarray(at, at + size));
    off += len;
  }
  return files;
}

/** The seed's files from a seed image Vivarium wrote. @throws Error when one is missing. */
export function readSeedImage(image: Buffer): Seed {
  const files = isoRootFiles(image);
  const text = (name: string): string | null => files.get(level1Name(name))?.toString('utf8') ?? null;
  const metaData = text('meta-data');
  const userData = text('user-data');
  if (metaData === null || userData === null) throw new Error('the seed image has no meta-data or user-data');
  return { metaData, userData, networkConfig: text('network-config') };
}

/** The cloud-init-per name of the machine-id reset (cloud-init docs, "cloud-init-per"). */
const MACHINE_ID_RESET = 'vivarium-machine-id';

/**
 * A bootcmd entry that gives the guest a new /etc/machine-id once per cloud-init instance, as
 * virt-sysprep's `machine-id` operation does: cloud-init does not reset it, and a copy would keep
 * the source's (same DHCP DUID, same journal id). systemd-machine-id-setup derives it from the VM's
 * SMBIOS UUID (QEMU `-uuid`, the VM's id) when there is one, else makes a random one
 * (machine-id(5)). A guest without systemd keeps what it has.
 */
export const MACHINE_ID_BOOTCMD: readonly string[] = [
  'cloud-init-per',
  'instance',
  MACHINE_ID_RESET,
  'sh',
  '-c',
  'if command -v systemd-machine-id-setup >/dev/null; then rm -f /etc/machine-id && systemd-machine-id-setup; fi',
];

/**
 * The user-data with MACHINE_ID_BOOTCMD first in the bootcmd of its (first) #cloud-config part —
 * Vivarium's own; the user's parts stay as they were. Unchanged when it is there already (a clone
 * of a clone) or there is no #cloud-config part.
 */
export function withMachineIdReset(userData: string): string {
  const parts = splitUserData(userData);
  const i = parts.findIndex((p) => p.type === 'text/cloud-config');
  if (i < 0) return userData;
  const config = (parse(parts[i]!.body) ?? {}) as Record<string, unknown>;
  const bootcmd = Array.isArray(config.bootcmd) ? (config.bootcmd as unknown[]) : [];
  if (bootcmd.some((c) => Array.isArray(c) && c[2] === MACHINE_ID_RESET)) return userData;
  const body = `#cloud-config\n${stringify({ ...config, bootcmd: [[...MACHINE_ID_BOOTCMD], ...bootcmd] })}`;
  if (parts.length === 1 && !/^Content-Type: multipart\/mixed/.test(userData)) return body;
  return mimeMultipart(parts.map((p, j) => (j === i ? { ...p, body } : p)));
}

/** The seed for the clone: a new instance-id, the new MAC in network-config, a new machine-id at its
 *  first boot (withMachineIdReset), everything else as it was. */
export function reissueSeed(seed: Seed, instanceId: string, oldMac: string, newMac: string): Seed {
  const meta = (parse(seed.metaData) ?? {}) as Record<string, unknown>;
  let networkConfig = seed.networkConfig;
  if (networkConfig !== null) {
    const net = parse(networkConfig) as { ethernets?: Record<string, { match?: { macaddress?: string } }> } | null;
    for (const eth of Object.values(net?.ethernets ?? {})) {
      if (eth.match?.macaddress?.toLowerCase() === oldMac.toLowerCase()) eth.match.macaddress = newMac;
    }
    networkConfig = stringify(net);
  }
  return { metaData: stringify({ ...meta, 'instance-id': instanceId }), userData: withMachineIdReset(seed.userData), networkConfig };
}

/**
 * Writes the clone's seed and key pair into `stagingDir` and returns what its config needs: its
 * cloud-init access (paths in its final folder `finalDir`) and its disks with the seed disk now the
 * clone's own raw image.
 */
export async function cloneSandbox(args: {
  readonly access: CloudInitAccess;
  readonly sourceDir: string;
  readonly stagingDir: string;
  readonly finalDir: string;
  readonly cloneId: string;
  readonly oldMac: string;
  readonly newMac: string;
  readonly disks: readonly Disk[];
}): Promise<{ readonly access: CloudInitAccess; readonly disks: readonly Disk[] }> {
  const { access, sourceDir, stagingDir, finalDir } = args;
  const seedName = access.seed;
  let image: Buffer;
  try {
    image = await fsp.readFile(path.join(sourceDir, seedName));
  } catch (e) {
    throw errors.state(`The cloud-init seed of the VM to clone (${seedName} in its folder) cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
  let seed: Seed;
  try {
    seed = reissueSeed(readSeedImage(image), args.cloneId, args.oldMac, args.newMac);
  } catch (e) {
    throw errors.state(`The cloud-init seed of the VM to clone (${seedName} in its folder) is not one Vivarium can read: ${(e as Error).message}.`);
  }
  await writeSeedIso(path.join(stagingDir, seedName), seed);

  const srcKeys = vmKeyPaths(sourceDir);
  const ownKey = access.identityFile === srcKeys.privateKey;
  const sshDir = path.join(stagingDir, CloudInitFiles.sshDir);
  await fsp.mkdir(sshDir, { mode: 0o700 });
  if (ownKey) {
    const keys = vmKeyPaths(stagingDir);
    for (const [from, to] of [
      [srcKeys.privateKey, keys.privateKey],
      [srcKeys.publicKey, keys.publicKey],
    ] as const) {
      await fsp.copyFile(from, to);
      await fsp.chmod(to, 0o600);
    }
  }
  const disks = args.disks.map((d): Disk =>
    d.readOnly && (('bundle' in d.source && d.source.bundle === seedName) || ('path' in d.source && d.source.path === path.join(sourceDir, seedName)))
      ? { ...d, source: { bundle: seedName }, format: 'raw', backing: [] }
      : d,
  );
  return {
    access: {
      ...access,
      identityFile: ownKey ? vmKeyPaths(finalDir).privateKey : access.identityFile,
      knownHostsFile: path.join(finalDir, CloudInitFiles.knownHosts),
    },
    disks,
  };
}
