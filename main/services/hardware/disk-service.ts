/**
 * The `disks` service (contract/disks.ts, issue 9): a VM's disks and CD drive as one list. It sits
 * beside the VM service and uses only its public face (get/list, the bundle store, the jobs runner,
 * qmpFor), like the sandbox service does for port forwards.
 *
 * Live changes go through the typed monitor: `block_resize` grows a running VM's disk (the guest
 * sees the new capacity at once), `blockdev-change-medium` / `eject` change the CD of a running VM
 * (by the drive's qdev id, QemuIds.cdromDevice). Every change is also saved in the config, so the
 * next start has what the person last chose. Disks are added and removed only while stopped.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddDiskRequest, DiskService, DriveInfo } from '../../common/contract/disks';
import { ErrorCode, VivariumError, errors } from '../../common/errors';
import type { HostCapabilities } from '../../common/models/host';
import { bundleDiskFile, DiskList, formatZodIssues, MAX_DISKS, nextDiskId, type Disk, type ImageSource, type VmConfig } from '../../common/models/vm-config';
import type { VmDetails } from '../../common/models/vm-state';
import { checkDiskImage, looksLikeCdImage } from '../disks/preflight';
import { QemuImg } from '../disks/qemu-img';
import { usesOfFilesIn } from '../disks/image-users';
import type { Layout } from '../paths';
import { QemuIds } from '../qemu/argv';
import { QemuMonitor } from '../qemu/monitor';
import type { LocalVmService } from '../vm-service';

export interface DiskServiceDeps {
  readonly vms: LocalVmService;
  readonly layout: Layout;
  readonly host: () => Promise<HostCapabilities>;
}

/** The one CD drive's id in the list (the config's `cdrom`); also its QEMU qdev id. */
export const CD_DRIVE_ID = QemuIds.cdromDevice;

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
    if (req.bus !== undefined && req.bus !== 'virtio') {
      throw new VivariumError(ErrorCode.Unsupported, `Disks on the ${req.bus === 'sata' ? 'SATA' : 'NVMe'} bus are not built yet; only virtio disks can be added. Leave out the bus (virtio).`, { bus: req.bus }, { field: 'bus' });
    }
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      if (vm.state !== 'stopped') throw errors.mustStop(vm.name, vm.state, 'add a disk');
      if (config.disks.length >= MAX_DISKS) throw errors.invalid(`"${vm.name}" already has ${MAX_DISKS} disks, the most a VM can have. Remove one first.`, undefined, { field: 'disks' });
      const id = nextDiskId(config.disks);
      const role = config.disks.some((d) => d.role === 'system') ? 'data' : 'system';
      const qemuImg = new QemuImg((await this.deps.host()).qemuImg);
      let disk: Disk;
      if (req.file !== undefined) {
        const file = path.resolve(req.file);
        const other = (await this.deps.vms.list()).find((v) => v.config?.disks.some((d) => 'path' in d.source && d.source.path === file));
        if (other) throw new VivariumError(ErrorCode.AlreadyExists, `${file} is already a disk of "${other.name}"; two VMs writing one image would corrupt it. Give a copy of it instead.`, undefined, { field: 'diskPath' });
        const checked = await checkDiskImage(file, qemuImg);
        disk = { id, role, bus: 'virtio', source: { path: file }, format: checked.format, readOnly: false, backing: [] };
      } else {
        const name = bundleDiskFile(id);
        const target = this.deps.layout.bundle(vm.id).file(name);
        if (fs.existsSync(target)) throw errors.state(`${target} already exists but no disk of "${vm.name}" uses it. Move it away and try again.`);
        await qemuImg.createQcow2(target, roundToSector(req.sizeBytes as number));
        disk = { id, role, bus: 'virtio', source: { bundle: name }, format: 'qcow2', readOnly: false, backing: [] };
      }
      this.save(vm, { ...config, disks: [...config.disks, disk] });
      return this.drives(vm.id, { ...config, disks: [...config.disks, disk] });
    });
  }

  async resize(ref: string, diskId: string, sizeBytes: number): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    const disk = this.disk(vm, config, diskId);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
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
      const now = await this.deps.vms.get(vm.id);
      if (running(now)) {
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

  async remove(ref: string, diskId: string, options: { readonly deleteFile?: boolean } = {}): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    const disk = this.disk(vm, config, diskId);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      if (vm.state !== 'stopped') throw errors.mustStop(vm.name, vm.state, 'remove a disk');
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
      }
      const next = { ...config, disks: config.disks.filter((d) => d.id !== disk.id) };
      this.save(vm, next);
      if (options.deleteFile) fs.rmSync(file, { force: true });
      return this.drives(vm.id, next);
    });
  }

  async insertCd(ref: string, isoPath: string, driveId?: string): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    this.cdDrive(vm, driveId);
    const iso = path.resolve(isoPath);
    await checkCdImage(iso);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      const now = await this.deps.vms.get(vm.id);
      if (running(now)) {
        const monitor = await this.liveCd(now);
        await monitor.blockdevChangeMedium(CD_DRIVE_ID, iso, 'raw').catch((e: unknown) => {
          throw errors.qemu(`QEMU could not put ${iso} in the CD drive of "${vm.name}": ${(e as Error).message}`);
        });
      }
      const next = { ...config, cdrom: iso };
      this.save(vm, next);
      return this.drives(vm.id, next);
    });
  }

  async ejectCd(ref: string, driveId?: string): Promise<readonly DriveInfo[]> {
    const vm = await this.deps.vms.get(ref);
    const config = requireConfig(vm);
    this.cdDrive(vm, driveId);
    return this.deps.vms.jobs.run(vm.id, vm.name, 'edit', async () => {
      const now = await this.deps.vms.get(vm.id);
      if (running(now)) {
        const monitor = await this.liveCd(now);
        await monitor.eject(CD_DRIVE_ID, true).catch((e: unknown) => {
          throw errors.qemu(`QEMU could not eject the CD of "${vm.name}": ${(e as Error).message}`);
        });
      }
      const next = { ...config, cdrom: null };
      this.save(vm, next);
      return this.drives(vm.id, next);
    });
  }

  // ---- internals -------------------------------------------------------------------------------

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

  private cdDrive(vm: VmDetails, driveId: string | undefined): void {
    if (driveId !== undefined && driveId !== CD_DRIVE_ID) {
      throw new VivariumError(ErrorCode.NotFound, `"${vm.name}" has no CD drive ${driveId}; its CD drive is ${CD_DRIVE_ID}. List them with disk list.`, undefined, { field: 'iso' });
    }
  }

  /** The monitor of a running VM whose QEMU has the CD drive (it was started with a CD). */
  private async liveCd(vm: VmDetails): Promise<QemuMonitor> {
    const monitor = new QemuMonitor(await this.deps.vms.qmpFor(vm.id));
    const blocks = await monitor.queryBlock();
    if (!blocks.some((b) => b.removable && b.qdev === CD_DRIVE_ID)) {
      throw errors.state(`"${vm.name}" was started without a CD drive, so a CD cannot be changed while it runs. Shut it down, insert the CD, and start it again.`, undefined, {
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
    let cdSize: number | null = null;
    if (config.cdrom) {
      try {
        cdSize = fs.statSync(config.cdrom).size;
      } catch {
        cdSize = null;
      }
    }
    out.push({
      id: CD_DRIVE_ID,
      kind: 'cdrom',
      path: config.cdrom,
      format: config.cdrom ? 'raw' : null,
      virtualSizeBytes: cdSize,
      bus: config.arch === 'x86_64' ? 'sata' : 'scsi',
      readOnly: true,
      role: null,
    });
    return out;
  }

  private save(vm: VmDetails, config: VmConfig): void {
    const checked = DiskList.safeParse(config.disks);
    if (!checked.success) throw errors.invalid(`That would leave "${vm.name}" with disks Vivarium cannot use: ${formatZodIssues(checked.error)}.`, undefined, { field: 'disks' });
    this.deps.vms.store.save(config);
  }
}

/** A CD image to insert: an existing, readable regular file holding an ISO 9660 or UDF volume. */
async function checkCdImage(file: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch {
    throw errors.invalid(`The CD image ${file} does not exist. Check the path and try again.`, undefined, { field: 'iso' });
  }
  if (!st.isFile()) throw errors.invalid(`${file} is not a file, so it cannot be a CD image. Give the path of an .iso file.`, undefined, { field: 'iso' });
  const fh = await fs.promises.open(file, 'r').catch(() => {
    throw errors.invalid(`${file} is not readable by you. Fix the file's permissions and try again.`, undefined, { field: 'iso' });
  });
  try {
    const head = Buffer.alloc(34_816);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (!looksLikeCdImage(head.subarray(0, bytesRead))) {
      throw errors.invalid(`${file} is not a CD/DVD image (no ISO 9660 or UDF volume in it). Give the path of an .iso file; a disk image is added with disk add.`, undefined, { field: 'iso' });
    }
  } finally {
    await fh.close();
  }
}
