/**
 * The `disks` service (contract/disks.ts, issue 9): a VM's disks and CD drives as one list. It sits
 * beside the VM service and uses only its public face (get/list, the bundle store, the jobs runner,
 * qmpFor), like the sandbox service does for port forwards.
 *
 * Live changes go through the typed monitor: `block_resize` grows a running VM's disk (the guest
 * sees the new capacity at once), `blockdev-change-medium` / `eject` change the CD of a running VM
 * (by the drive's qdev id, which is its id: cd0, cd1, …). Every change is also saved in the config,
 * so the next start has what the person last chose. Disks and CD drives are added and removed only
 * while stopped.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MAX_DISK_BYTES, MIN_DISK_BYTES, type AddDiskRequest, type DiskService, type DriveInfo } from '../../common/contract/disks';
import { ErrorCode, VivariumError, errors } from '../../common/errors';
import type { HostCapabilities } from '../../common/models/host';
import {
  bundleDiskFile,
  formatZodIssues,
  MAX_CD_DRIVES,
  MAX_DISKS,
  nextCdDriveId,
  VmConfig as VmConfigSchema,
  type CdDrive,
  type Disk,
  type DiskBus,
  type ImageSource,
  type VmConfig,
} from '../../common/models/vm-config';
import type { VmDetails } from '../../common/models/vm-state';
import { checkCdImage, checkDiskImage } from '../disks/preflight';
import { foreignDiskRefusal } from '../disks/foreign-files';
import { QemuImg } from '../disks/qemu-img';
import { usesOfFilesIn } from '../disks/image-users';
import { assertReadableFile } from '../library/checks';
import type { Layout } from '../paths';
import { QemuMonitor } from '../qemu/monitor';
import { settingsDisks } from '../snapshots/settings';
import { parseTree, TREE_FILE } from '../snapshots/tree';
import type { LocalVmService } from '../vm-service';

export interface DiskServiceDeps {
  readonly vms: LocalVmService;
  readonly layout: Layout;
  readonly host: () => Promise<HostCapabilities>;
}


const running = (vm: VmDetails) => vm.state === 'running' || vm.state === 'paused';

/** Sizes QEMU accepts for a qcow2/raw image: whole 512-byte sectors (rounded up). */
function roundToSector(bytes: number): number {
  return Math.ceil(bytes / 512) * 512;
}

/** "40 GiB", "1.5 GiB", "512 MiB": how sizes appear in sentences. */
export function bytesText(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : +v.toFixed(2)} ${units[u]}`;
}

/**
 * A disk size in range (MIN_DISK_BYTES … MAX_DISK_BYTES), said in binary units.
 * @throws invalid-argument (field `disks`) with a sentence for every front end
 */
export function assertDiskSize(bytes: number, what: 'new' | 'grow'): void {
  const subject = what === 'new' ? 'A new disk' : 'A disk';
  if (bytes < MIN_DISK_BYTES) {
    throw errors.invalid(`${subject} must be at least ${bytesText(MIN_DISK_BYTES)}${bytes > 0 ? `, not ${bytesText(bytes)}` : ''}. Give a size such as 10 GiB.`, undefined, { field: 'disks' });
  }
  if (bytes > MAX_DISK_BYTES) {
    throw errors.invalid(`${subject} can be at most ${bytesText(MAX_DISK_BYTES)}, not ${bytesText(bytes)}.`, undefined, { field: 'disks' });
  }
}

/** What a VM's snapshots still hold on to (snapshots.json): disk ids their saved settings name, and
 *  per bundle file the names of the snapshots whose settings name it or whose data is in it. */
interface SnapshotHolds {
  readonly ids: ReadonlySet<string>;
  readonly files: ReadonlyMap<string, readonly string[]>;
}

/**
 * The id for a new disk made in the bundle: the lowest `diskN` that no disk of `config` has, that no
 * snapshot's saved settings name (a revert attaches that disk again) and whose file `diskN.qcow2`
 * neither exists in the folder (a disk a revert detached keeps its file there) nor is named by a
 * snapshot. @returns null when disk0..disk99 are all taken
 */
export async function freeBundleDiskId(config: Pick<VmConfig, 'disks'>, holds: SnapshotHolds, exists: (file: string) => Promise<boolean>): Promise<string | null> {
  const used = new Set(config.disks.map((d) => d.id));
  const files = new Set(config.disks.flatMap((d) => [d.source, ...d.backing.map((b) => b.source)]).flatMap((src) => ('bundle' in src ? [src.bundle] : [])));
  for (let i = 0; i < 100; i++) {
    const id = `disk${i}`;
    const file = bundleDiskFile(id);
    if (used.has(id) || holds.ids.has(id) || files.has(file) || holds.files.has(file)) continue;
    if (await exists(file)) continue;
    return id;
  }
  return null;
}

/** The sentence refusing a change to a suspended VM's disks (the snapshot service's words, with the
 *  same remedy: resume and shut down, or force it off). */
function suspendedRefusal(name: string, what: string, why: string, drives = 'its disks'): VivariumError {
  return errors.state(
    `"${name}" is suspended: ${drives} must stay as they were until it resumes${why}. Start it (it resumes where it was) and shut it down, or force it off to discard its saved state (the next start then boots afresh); then ${what}.`,
    undefined,
    { field: 'disks', remedy: { kind: 'force-stop', vm: name } },
  );
}

function requireConfig(vm: VmDetails): VmConfig {
  if (!vm.config) throw errors.state(`"${vm.name}" has a broken config (${vm.error ?? 'unreadable'}); fix or delete it first.`);
  return vm.config;
}

function resizeWithQemuImg(qemuImg: string, file: string, format: string, sizeBytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(qemuImg, ['resize', '-q', '-f', format, file, String(sizeBytes)], { timeout: 120_000 }, (err, _out, stderr) => {
      if (err) reject(errors.qemu(`qemu-img resize failed: ${(stderr || err.message).trim().split('\n').pop()?.replace(/^qemu-img: /, '')}`));
      else resolve();
    });
  });
}

export class LocalDiskService implements DiskService {
  constructor(private readonly deps: DiskServiceDeps) {}

  async list(ref: string): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    return this.drives(vm.id, requireConfig(vm));
  }

  async add(ref: string, req: AddDiskRequest): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    if (req.cdrom) return this.addCdDrive(vm, config, req.file);
    if (req.sizeBytes !== undefined) assertDiskSize(req.sizeBytes, 'new');
    const bus: DiskBus = req.bus ?? 'virtio';
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      if (config.suspended) throw suspendedRefusal(vm.name, 'add the disk', '');
      if (vm.state !== 'stopped') throw errors.mustStop(vm.name, vm.state, 'add a disk');
      if (config.disks.length >= MAX_DISKS) throw errors.invalid(`"${vm.name}" already has ${MAX_DISKS} disks, the most a VM can have. Remove one first.`, undefined, { field: 'disks' });
      const bundle = this.deps.layout.bundle(vm.id);
      // An id no snapshot still holds and whose file is free in the folder (a revert detaches a
      // disk added since and keeps its file as diskN.qcow2).
      const id = await freeBundleDiskId(config, await this.snapshotHolds(vm.id), (f) => fs.promises.lstat(bundle.file(f)).then(() => true, () => false));
      if (id === null) throw errors.state(`"${vm.name}" has no free disk name left in its folder (disk0.qcow2 to disk99.qcow2 are all taken, by its disks, its snapshots or files kept there). Delete snapshots or move kept disk files away, then try again.`, undefined, { field: 'disks' });
      const role = config.disks.some((d) => d.role === 'system') ? 'data' : 'system';
      const qemuImg = new QemuImg((await this.deps.host()).qemuImg);
      let disk: Disk;
      if (req.file !== undefined) {
        const file = path.resolve(req.file);
        const refusal = await foreignDiskRefusal(file, 'diskPath', this.deps.layout.bundlesDir, await this.deps.vms.library.entriesAsync(), { id: vm.id, config });
        if (refusal) throw refusal;
        const other = (await this.deps.vms.list()).find((v) => v.config?.disks.some((d) => 'path' in d.source && d.source.path === file));
        if (other) throw new VivariumError(ErrorCode.AlreadyExists, `${file} is already a disk of "${other.name}"; two VMs writing one image would corrupt it. Give a copy of it instead.`, undefined, { field: 'diskPath' });
        const checked = await checkDiskImage(file, qemuImg);
        disk = { id, role, bus, source: { path: file }, format: checked.format, readOnly: false, backing: [] };
      } else {
        const name = bundleDiskFile(id);
        const target = this.deps.layout.bundle(vm.id).file(name);
        if (await fs.promises.lstat(target).then(() => true, () => false)) throw errors.state(`${target} already exists but no disk of "${vm.name}" uses it. Move it away and try again.`);
        disk = { id, role, bus, source: { bundle: name }, format: 'qcow2', readOnly: false, backing: [] };
        // The rules (a free SATA port, …) before the file is made, so a refusal leaves nothing behind.
        this.checked(vm, { ...config, disks: [...config.disks, disk] });
        await qemuImg.createQcow2(target, roundToSector(req.sizeBytes as number));
      }
      const next = await this.save(vm, { ...config, disks: [...config.disks, disk] });
      return this.drives(vm.id, next);
    });
  }

  async resize(ref: string, diskId: string, sizeBytes: number): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    const disk = this.disk(vm, config, diskId);
    assertDiskSize(sizeBytes, 'grow');
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      // Its saved state holds the guest's view of the disk: grown now, the resumed guest would still
      // see the old size (tester-s6 #9).
      const now = await this.deps.vms.get(vm.id);
      if ((now.config ?? config).suspended) {
        throw suspendedRefusal(vm.name, `grow ${disk.id}`, ' (grown now, the resumed guest would still see the old size)');
      }
      if (disk.readOnly) throw errors.invalid(`${disk.id} of "${vm.name}" is read-only, so it cannot grow.`, undefined, { field: 'disks' });
      const file = this.imagePath(vm.id, disk.source);
      const caps = await this.deps.host();
      const info = await new QemuImg(caps.qemuImg).info(file, { format: disk.format });
      const size = roundToSector(sizeBytes);
      if (size <= info.virtualSize) {
        throw errors.invalid(
          `${disk.id} of "${vm.name}" is ${bytesText(info.virtualSize)} and disks can only grow (shrinking would cut off the guest's data). Give a size larger than ${bytesText(info.virtualSize)}.`,
          { current: info.virtualSize, asked: size },
          { field: 'disks' },
        );
      }
      if (running(now)) {
        // QEMU's nvme device takes the disk without sharing the `resize` permission (QEMU 7.2 to
        // 9.x: hw/nvme/ns.c), so block_resize fails with a permission conflict: say so before trying.
        if (disk.bus === 'nvme') {
          throw errors.state(
            `An NVMe disk can only grow while the VM is shut down (QEMU's nvme device does not allow resizing a running disk), and ${disk.id} of "${vm.name}" is on NVMe. Shut the VM down, then grow the disk to ${bytesText(size)}.`,
            { nvmeRunning: true, vm: vm.name, disk: disk.id, sizeBytes: size },
            { field: 'disks', remedy: { kind: 'stop-vm', vm: vm.name } },
          );
        }
        const monitor = new QemuMonitor(await this.deps.vms.qmpFor(vm.id));
        await monitor.blockResize(disk.id, size).catch((e: unknown) => {
          throw errors.qemu(`QEMU could not grow ${disk.id} of "${vm.name}": ${(e as Error).message}`);
        });
      } else {
        if (!caps.qemuImg) throw new VivariumError(ErrorCode.QemuMissing, 'qemu-img was not found. Install QEMU and try again.');
        await resizeWithQemuImg(caps.qemuImg, file, disk.format, size);
      }
      return this.drives(vm.id, config);
    });
  }

  async remove(ref: string, diskId: string, options: { readonly deleteFile?: boolean; readonly force?: boolean } = {}): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    if (/^cd[0-9]$/.test(diskId)) {
      const cd = this.cdDrive(vm, config, diskId);
      if (options.deleteFile) throw errors.invalid(`${cd.id} of "${vm.name}" is a CD drive; Vivarium never deletes an ISO. Remove the drive without deleting a file.`, undefined, { field: 'iso' });
      return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
        if (vm.state !== 'stopped') throw errors.mustStop(vm.name, vm.state, 'remove a CD drive');
        const next = await this.save(vm, { ...config, cdroms: config.cdroms.filter((d) => d.id !== cd.id) });
        return this.drives(vm.id, next);
      });
    }
    const disk = this.disk(vm, config, diskId);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      if (config.suspended) throw suspendedRefusal(vm.name, 'remove the disk', '');
      if (vm.state !== 'stopped') throw errors.mustStop(vm.name, vm.state, 'remove a disk');
      // As virt-manager and UTM warn: without it the VM has nothing to boot from.
      if (disk.role === 'system' && options.force !== true) {
        throw errors.state(
          `${disk.id} is the system disk of "${vm.name}", the disk it boots from: without it the VM has nothing to start. Nothing was removed. To remove it anyway, confirm removing the system disk${options.deleteFile ? '' : ' (its file is kept)'}.`,
          { systemDisk: true, vm: vm.name, disk: disk.id },
          { field: 'disks' },
        );
      }
      const file = this.imagePath(vm.id, disk.source);
      if (options.deleteFile) {
        if (!('bundle' in disk.source)) {
          throw errors.invalid(`${file} is outside the VM's folder (you attached it), so Vivarium does not delete it. Remove the disk without deleting the file, then delete the file yourself if you mean to.`, undefined, { field: 'disks' });
        }
        const others = (await this.deps.vms.list())
          .filter((v) => v.id !== vm.id && v.config)
          .map((v) => ({ config: v.config as VmConfig, dir: this.deps.layout.bundle(v.id).dir }));
        const use = usesOfFilesIn(vm.id, this.deps.layout.bundle(vm.id).dir, others).find((u) => path.resolve(u.file) === path.resolve(file));
        if (use) throw errors.state(`${file} cannot be deleted: "${use.vmName}" uses it as ${use.as}. Remove the disk without deleting the file, or delete "${use.vmName}" first.`);
        // A snapshot that names the disk (a revert attaches it again) or holds data in its file
        // would lose it: the revert would then be refused.
        const held = (await this.snapshotHolds(vm.id)).files.get(disk.source.bundle) ?? [];
        if (held.length > 0) {
          const names = held.map((n) => `"${n}"`).join(', ');
          throw errors.state(
            `${disk.source.bundle} of "${vm.name}" cannot be deleted: ${held.length === 1 ? `snapshot ${names} holds` : `snapshots ${names} hold`} ${disk.id} (a revert attaches it again with its data of that moment). Nothing was removed. Remove the disk without deleting its file (it stays in the VM's folder for ${held.length === 1 ? 'that snapshot' : 'those snapshots'}), or delete ${held.length === 1 ? 'the snapshot' : 'the snapshots'} first.`,
            { snapshots: held },
            { field: 'disks' },
          );
        }
      }
      const next = await this.save(vm, { ...config, disks: config.disks.filter((d) => d.id !== disk.id) });
      // Off the event loop: a disk image is gigabytes.
      if (options.deleteFile) await fs.promises.rm(file, { force: true });
      return this.drives(vm.id, next);
    });
  }

  async insertCd(ref: string, isoPath: string, driveId?: string): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    // A stopped VM without a CD drive gets cd0 (as `edit --iso` does); otherwise the drive must exist.
    const cd: CdDrive = driveId === undefined && config.cdroms.length === 0 ? { id: nextCdDriveId([]), path: null } : this.cdDrive(vm, config, driveId);
    const iso = await checkedIso(isoPath);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      const now = await this.deps.vms.get(vm.id);
      // The CD is part of the command line its saved state resumes on.
      if (now.config?.suspended) throw suspendedRefusal(vm.name, 'change the CD', '', 'its disks and CD drives');
      if (running(now)) {
        const monitor = await this.liveCd(now, cd.id);
        await monitor.blockdevChangeMedium(cd.id, iso, 'raw').catch((e: unknown) => {
          throw errors.qemu(`QEMU could not put ${iso} in CD drive ${cd.id} of "${vm.name}": ${(e as Error).message}`);
        });
      }
      const cdroms = config.cdroms.some((d) => d.id === cd.id) ? config.cdroms.map((d) => (d.id === cd.id ? { ...d, path: iso } : d)) : [...config.cdroms, { id: cd.id, path: iso }];
      const next = await this.save(vm, { ...config, cdroms });
      return this.drives(vm.id, next);
    });
  }

  async ejectCd(ref: string, driveId?: string): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    const cd = driveId === undefined ? (config.cdroms.find((d) => d.path !== null) ?? this.cdDrive(vm, config, undefined)) : this.cdDrive(vm, config, driveId);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      const now = await this.deps.vms.get(vm.id);
      if (now.config?.suspended) throw suspendedRefusal(vm.name, 'eject the CD', '', 'its disks and CD drives');
      if (running(now)) {
        const monitor = await this.liveCd(now, cd.id);
        await monitor.eject(cd.id, true).catch((e: unknown) => {
          throw errors.qemu(`QEMU could not eject the CD in ${cd.id} of "${vm.name}": ${(e as Error).message}`);
        });
      }
      const next = await this.save(vm, { ...config, cdroms: config.cdroms.map((d) => (d.id === cd.id ? { ...d, path: null } : d)) });
      return this.drives(vm.id, next);
    });
  }

  /** `add` with `cdrom: true`: a new CD drive, empty or holding `file`. */
  private async addCdDrive(vm: VmDetails, config: VmConfig, file: string | undefined): Promise<readonly DriveInfo[]> {
    const iso = file === undefined ? null : await checkedIso(file);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      if (vm.state !== 'stopped') throw errors.mustStop(vm.name, vm.state, 'add a CD drive');
      if (config.cdroms.length >= MAX_CD_DRIVES) throw errors.invalid(`"${vm.name}" already has ${MAX_CD_DRIVES} CD drives, the most a VM can have. Change the CD in one of them instead (cd insert … --drive ID).`, undefined, { field: 'iso' });
      const next = await this.save(vm, { ...config, cdroms: [...config.cdroms, { id: nextCdDriveId(config.cdroms), path: iso }] });
      return this.drives(vm.id, next);
    });
  }

  // ---- internals -------------------------------------------------------------------------------

  /** What the VM's snapshots hold on to (SnapshotHolds), from its snapshots.json (none when absent or unreadable). */
  private async snapshotHolds(id: string): Promise<SnapshotHolds> {
    const text = await fs.promises.readFile(this.deps.layout.bundle(id).file(TREE_FILE), 'utf8').catch(() => null);
    const { tree } = parseTree(text);
    const ids = new Set<string>();
    const files = new Map<string, string[]>();
    const hold = (file: string, snapshot: string) => {
      const list = files.get(file) ?? [];
      if (!list.includes(snapshot)) files.set(file, [...list, snapshot]);
    };
    for (const s of tree.snapshots) {
      for (const d of settingsDisks(s.settings)) {
        if (d.id !== null) ids.add(d.id);
        for (const f of d.files) hold(f, s.name);
      }
      for (const f of s.images) hold(f, s.name);
    }
    return { ids, files };
  }

  private imagePath(id: string, source: ImageSource): string {
    return 'bundle' in source ? this.deps.layout.bundle(id).file(source.bundle) : source.path;
  }

  private disk(vm: VmDetails, config: VmConfig, diskId: string): Disk {
    const disk = config.disks.find((d) => d.id === diskId);
    if (!disk) {
      const ids = config.disks.map((d) => d.id).join(', ') || 'none';
      throw new VivariumError(ErrorCode.NotFound, `"${vm.name}" has no disk ${diskId} (its disks: ${ids}). List them with disk list.`, undefined, { field: 'disks' });
    }
    return disk;
  }

  /** CD drive `driveId` of the VM (default: its first). @throws not-found with the drives it has */
  private cdDrive(vm: VmDetails, config: VmConfig, driveId: string | undefined): CdDrive {
    const cd = driveId === undefined ? config.cdroms[0] : config.cdroms.find((d) => d.id === driveId);
    if (cd) return cd;
    const ids = config.cdroms.map((d) => d.id).join(', ');
    const what = driveId === undefined ? 'no CD drive' : `no CD drive ${driveId}`;
    const has = ids ? ` (its CD drives: ${ids})` : '';
    throw new VivariumError(ErrorCode.NotFound, `"${vm.name}" has ${what}${has}. Add one while it is shut down with disk add --cdrom, or list them with disk list.`, undefined, { field: 'iso' });
  }

  /** The monitor of a running VM whose QEMU has CD drive `cdId` (it was started with that drive). */
  private async liveCd(vm: VmDetails, cdId: string): Promise<QemuMonitor> {
    const monitor = new QemuMonitor(await this.deps.vms.qmpFor(vm.id));
    const blocks = await monitor.queryBlock();
    if (!blocks.some((b) => b.removable && b.qdev === cdId)) {
      throw errors.state(`"${vm.name}" was started without CD drive ${cdId}, so its CD cannot be changed while it runs. Shut it down, insert the CD, and start it again.`, undefined, {
        remedy: { kind: 'stop-vm', vm: vm.name },
      });
    }
    return monitor;
  }

  private async drives(id: string, config: VmConfig): Promise<DriveInfo[]> {
    const qemuImg = new QemuImg((await this.deps.host()).qemuImg);
    const out: DriveInfo[] = [];
    for (const d of config.disks) {
      const file = this.imagePath(id, d.source);
      const r = await qemuImg.tryInfo(file, { format: d.format }).catch(() => null);
      out.push({ id: d.id, kind: 'disk', path: file, format: d.format, virtualSizeBytes: r?.ok ? r.info.virtualSize : null, bus: d.bus, readOnly: d.readOnly, role: d.role });
    }
    for (const cd of config.cdroms) {
      const size = cd.path === null ? null : await fs.promises.stat(cd.path).then((st) => st.size, () => null);
      out.push({
        id: cd.id,
        kind: 'cdrom',
        path: cd.path,
        format: cd.path ? 'raw' : null,
        virtualSizeBytes: size,
        bus: config.arch === 'x86_64' ? 'sata' : 'scsi',
        readOnly: true,
        role: null,
      });
    }
    return out;
  }

  /** The config as the schema has it, or an invalid-argument error saying which rule it breaks. */
  private checked(vm: VmDetails, config: VmConfig): VmConfig {
    const checked = VmConfigSchema.safeParse(config);
    if (!checked.success) throw errors.invalid(`That would leave "${vm.name}" with drives Vivarium cannot use: ${formatZodIssues(checked.error)}.`, undefined, { field: 'disks' });
    return checked.data;
  }

  private async save(vm: VmDetails, config: VmConfig): Promise<VmConfig> {
    const next = this.checked(vm, config);
    await this.deps.vms.store.saveAsync(next);
    return next;
  }
}

/** The absolute path of an ISO to insert, checked as create checks `--iso` (library/checks.ts,
 *  disks/preflight.ts): it exists, is a readable file, and holds an ISO 9660 or UDF volume (a qcow2,
 *  a compressed file or a text file is refused with a sentence saying what it is). */
async function checkedIso(isoPath: string): Promise<string> {
  const iso = path.resolve(isoPath);
  await assertReadableFile('iso', 'ISO', iso);
  await checkCdImage(iso);
  return iso;
}
