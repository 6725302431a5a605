/**
 * `create NAME --cloud-image …`: what the library's create needs for a developer sandbox, in the
 * pattern of imports/create-import.ts:
 *
 *   const cloud = spec.cloud ? await prepareCloud(spec, qemuImg) : null;
 *   newConfig(cloud?.spec ?? spec, …)            // a system disk in the bundle, sized
 *   config = cloud ? cloud.complete(config, finalBundleDir) : config;
 *   store.create(config, (dir) => cloud ? cloud.materialize(dir, config) : …);
 *
 * The image is checked as an untrusted disk image (disks/preflight.ts: a standalone qcow2 or raw,
 * not an ISO, not an overlay) and never modified: the VM's system disk is a qcow2 overlay on it with
 * the image as its explicit backing layer, grown to the chosen size. The cloud-init seed
 * (provisioning/provision.ts) is a read-only raw virtio disk of the VM (every cloud kernel has
 * virtio-blk; Debian's cloud kernel lacks the AHCI driver q35's CD needs), so it is attached at every
 * start by the ordinary disk list; shared folders are 9p (qemu/argv.ts via sandbox/shares-args.ts).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { CreateVmSpec } from '../../common/contract';
import { errors } from '../../common/errors';
import { defaultShareTag, type SharedFolder } from '../../common/models/sandbox';
import type { Disk, DiskFormat, VmConfig } from '../../common/models/vm-config';
import { checkDiskImage } from '../disks/preflight';
import { QemuImg } from '../disks/qemu-img';
import { SeedInputError } from '../provisioning/cloud-init';
import { CloudInitFiles, checkCloudInitRequest, defaultGuestUser, hostnameFromName, provisionCloudInit } from '../provisioning/provision';
import { vmKeyPaths } from '../provisioning/ssh-keys';

const execFileP = promisify(execFile);

/** The disk a sandbox gets unless told: 20 GiB, or the image's own size when larger. */
export const DEFAULT_SANDBOX_DISK_BYTES = 20 * 1024 ** 3;

export interface PreparedCloud {
  /** The spec for newConfig: without `cloud`, with the system disk's size. */
  readonly spec: CreateVmSpec;
  readonly image: { readonly path: string; readonly format: DiskFormat; readonly virtualSize: number };
  /** The config with the overlay's backing chain, the seed disk, the SSH access and the shares. */
  complete(config: VmConfig, finalBundleDir: string): VmConfig;
  /** Writes the overlay and the seed (and the VM's key pair) into `dir` (the staging folder). */
  materialize(dir: string, config: VmConfig): Promise<void>;
}

function refuse(message: string, field = 'cloudImage'): never {
  throw errors.invalid(message, { field });
}

/** Whether `p` exists (links followed, as fs.existsSync), without blocking the event loop. */
function exists(p: string): Promise<boolean> {
  return fs.promises.access(p).then(
    () => true,
    () => false,
  );
}

/** Checks `spec.cloud` (image, files, shares) and plans the create. @throws invalid-argument */
export async function prepareCloud(spec: CreateVmSpec, qemuImgBinary: string | null): Promise<PreparedCloud> {
  const cloud = spec.cloud;
  if (!cloud) throw new Error('prepareCloud needs spec.cloud');
  for (const f of ['import', 'diskPath', 'iso'] as const) {
    if (spec[f] !== undefined) refuse(`A cloud image brings its own disk and boots it: leave out ${f === 'diskPath' ? 'the disk image' : f === 'iso' ? 'the ISO' : 'the import'}.`);
  }
  if (spec.net === 'none') refuse('A sandbox is reached over SSH through the user network: leave networking on.', 'net');
  const qemuImg = new QemuImg(qemuImgBinary);
  let checked;
  try {
    checked = await checkDiskImage(cloud.image, qemuImg);
  } catch (e) {
    // The image is opened read-only: a read-only file (a shared cache) is fine.
    if (!(e instanceof Error) || !/not readable and writable/.test(e.message)) throw e;
    await fs.promises.access(cloud.image, fs.constants.R_OK);
    const info = await qemuImg.info(cloud.image);
    if (info.format !== 'qcow2' && info.format !== 'raw') refuse(`${cloud.image} is a ${info.format} image; a cloud image must be qcow2 or raw.`);
    if (info.backingFilename !== null) refuse(`${cloud.image} is an overlay on ${info.backingFilename}; give a standalone cloud image.`);
    checked = { format: info.format as DiskFormat, virtualSize: info.virtualSize };
  }
  const size = spec.diskSizeBytes ?? Math.max(DEFAULT_SANDBOX_DISK_BYTES, checked.virtualSize);
  if (size === 0) refuse('A sandbox needs its disk: give a --disk-size above 0 (or leave it out).', 'diskSizeBytes');
  if (size < checked.virtualSize) {
    refuse(`The disk size (${fmtGiB(size)}) is smaller than the image (${fmtGiB(checked.virtualSize)}). Give a --disk-size of at least ${Math.ceil(checked.virtualSize / 1024 ** 3)}G.`, 'diskSizeBytes');
  }
  for (const [f, field] of [[cloud.sshKeyFile, 'cloud.sshKeyFile'], [cloud.passwordFile, 'cloud.passwordFile'], [cloud.userDataFile, 'cloud.userDataFile']] as const) {
    if (f !== undefined && !(await exists(f))) refuse(`${f} does not exist. Check the path and try again.`, field);
  }
  const shares: SharedFolder[] = [];
  for (const s of cloud.shares ?? []) {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(s.hostPath);
    } catch {
      refuse(`The folder to share ${s.hostPath} does not exist. Create it or give another folder.`, 'shares');
    }
    if (!st.isDirectory()) refuse(`${s.hostPath} is not a folder; only folders can be shared.`, 'shares');
    const tag = s.tag ?? defaultShareTag(s.hostPath, shares.map((x) => x.tag));
    if (shares.some((x) => x.tag === tag)) refuse(`Two shared folders use the tag "${tag}": give each its own tag.`, 'shares');
    shares.push({ hostPath: path.resolve(s.hostPath), tag, readOnly: s.readOnly === true });
  }
  const { cloud: _omit, ...rest } = spec;
  void _omit;
  const image = { path: cloud.image, format: checked.format, virtualSize: checked.virtualSize };
  const user = cloud.user ?? defaultGuestUser();
  const hostname = cloud.hostname ?? hostnameFromName(spec.name);
  let userIdentity: string | null = null;
  if (cloud.sshKeyFile) {
    const priv = cloud.sshKeyFile.replace(/\.pub$/, '');
    userIdentity = priv !== cloud.sshKeyFile && (await exists(priv)) ? priv : null;
  }
  // The seed's own checks (the key, password and user-data files, host name, user, packages, tags),
  // writing nothing: a dry run (and so the New VM wizard's Summary) refuses what create refuses.
  // No MAC yet (newConfig picks it): network-config's MAC is Vivarium's own, checked at create.
  // What the seed is made of, the same for the dry run's checks and the real seed.
  const seedInput = {
    vmName: spec.name,
    hostname,
    user,
    sshPublicKeyFile: cloud.sshKeyFile ?? null,
    passwordFile: cloud.passwordFile ?? null,
    userDataFile: cloud.userDataFile ?? null,
    packages: cloud.packages ?? [],
    shares: shares.map((s) => ({ tag: s.tag, readOnly: s.readOnly })),
    ...(cloud.shell ? { shell: cloud.shell } : {}),
    installGuestAgent: cloud.installGuestAgent ?? true,
  };
  await asRefusal(checkCloudInitRequest({ vmId: 'dry-run', ...seedInput }));
  return {
    spec: { ...rest, diskSizeBytes: size, os: spec.os ?? 'Linux (cloud image)' },
    image,
    complete(config: VmConfig, finalBundleDir: string): VmConfig {
      const system = config.disks.find((d) => d.role === 'system');
      if (!system || !('bundle' in system.source)) throw new Error('a sandbox needs a system disk in its bundle');
      const seed: Disk = { id: nextId(config.disks), role: 'data', bus: 'virtio', source: { bundle: CloudInitFiles.seed }, format: 'raw', readOnly: true, backing: [] };
      const disks = config.disks.map((d) => (d === system ? { ...d, backing: [{ source: { path: image.path }, format: image.format }] } : d));
      return {
        ...config,
        disks: [...disks, seed],
        shares,
        cloudInit: {
          user,
          hostname,
          identityFile: cloud.sshKeyFile ? userIdentity : vmKeyPaths(finalBundleDir).privateKey,
          knownHostsFile: path.join(finalBundleDir, CloudInitFiles.knownHosts),
          seed: CloudInitFiles.seed,
          passwordSet: cloud.passwordFile !== undefined,
        },
      };
    },
    async materialize(dir: string, config: VmConfig): Promise<void> {
      const system = config.disks.find((d) => d.role === 'system');
      if (!system || !('bundle' in system.source)) throw new Error('a sandbox needs a system disk in its bundle');
      // The overlay: the image below it, named with its format so QEMU never probes it.
      await execFileP(qemuImgBinary ?? 'qemu-img', [
        'create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', image.path, '-F', image.format,
        path.join(dir, system.source.bundle), String(size),
      ]);
      await asRefusal(provisionCloudInit({ ...seedInput, bundleDir: dir, vmId: config.id, vmName: config.name, macAddress: config.network.mac }));
    },
  };
}

function nextId(disks: readonly Pick<Disk, 'id'>[]): string {
  const used = new Set(disks.map((d) => d.id));
  for (let i = 0; ; i++) if (!used.has(`disk${i}`)) return `disk${i}`;
}

function fmtGiB(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** Awaits `p`, turning the seed writer's input errors into refusals on their fields. */
async function asRefusal<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof SeedInputError) refuse(e.message, e.field);
    throw e;
  }
}
