/**
 * The `disks` service (issue 9): a VM's disks and CD drives as one list — add, grow, remove a disk;
 * insert, change and eject a CD while the VM runs (QMP `blockdev-change-medium` / `eject`) or is
 * stopped (the config). Implemented by main/services/hardware/disk-service.ts.
 */
import { z } from 'zod';
import { AbsPath, VmRef, lazySchema, lazyTuples, type ServiceSchema } from './shared';

/** One entry of a VM's drive list. Sizes in bytes. */
export interface DriveInfo {
  /** "disk0".. for disks, "cd0".. for CD drives (the config's ids; a CD drive's is also its QEMU qdev id). */
  readonly id: string;
  readonly kind: 'disk' | 'cdrom';
  /** The image's absolute host path; null for an empty CD drive. */
  readonly path: string | null;
  /** "qcow2" | "raw"; null for an empty CD drive. */
  readonly format: string | null;
  /** The guest-visible size in bytes (qemu-img's virtual size); null when it cannot be read (the
   *  file is missing) or the drive is empty. */
  readonly virtualSizeBytes: number | null;
  /** Guest-side controller: "virtio", "sata" or "nvme" for disks; "sata" (x86 AHCI) or "scsi"
   *  (aarch64 virtio-scsi) for CD drives. */
  readonly bus: string;
  readonly readOnly: boolean;
  /** Disks only: "system" (the OS disk) or "data"; null for CD drives. */
  readonly role: 'system' | 'data' | null;
}

/** Buses a new disk may sit on (DiskBus in models/vm-config.ts). */
export const NewDiskBus = z.enum(['virtio', 'sata', 'nvme']);
export type NewDiskBus = z.infer<typeof NewDiskBus>;

/** The largest disk Vivarium makes or grows to: 64 TiB. */
export const MAX_DISK_BYTES = 64 * 1024 ** 4;

/** The smallest disk Vivarium makes or grows to: 1 MiB. */
export const MIN_DISK_BYTES = 1024 * 1024;

/** A size in bytes. Its range (MIN_DISK_BYTES … MAX_DISK_BYTES) is checked by the disk service,
 *  which says it in sentences with the sizes in binary units ("at most 64 TiB"). */
const SizeBytes = z.number().int().min(0);

/** A new disk: a new qcow2 of `sizeBytes` in the VM's folder, or an existing image `file` (checked as
 *  an untrusted image: format probed and given explicitly, no backing file, not an ISO), on `bus`
 *  (default virtio). With `cdrom: true`, a new CD drive instead: empty, or holding the ISO `file`
 *  (checked as `cd insert` checks it); no size or bus then. */
export const AddDiskRequest = lazySchema(() =>
  z
    .object({ sizeBytes: SizeBytes.optional(), file: AbsPath.optional(), bus: NewDiskBus.optional(), cdrom: z.boolean().optional() })
    .strict()
    .superRefine((r, ctx) => {
      if (r.cdrom) {
        if (r.sizeBytes !== undefined) ctx.addIssue({ code: 'custom', path: ['sizeBytes'], message: 'a CD drive has no size: give an ISO file, or nothing for an empty drive' });
        if (r.bus !== undefined) ctx.addIssue({ code: 'custom', path: ['bus'], message: 'a CD drive\'s bus is fixed (SATA on x86, SCSI on aarch64): leave the bus out' });
      } else if ((r.sizeBytes === undefined) === (r.file === undefined)) {
        ctx.addIssue({ code: 'custom', message: 'give either the size of a new disk or an existing image file, not both' });
      }
    }),
);
export type AddDiskRequest = z.infer<typeof AddDiskRequest>;

export const DriveId = z.string().regex(/^(disk[0-9]{1,2}|cd[0-9])$/, 'must be a drive id as disk list shows it (disk0, disk1, cd0, cd1)');

export interface DiskService {
  /** The VM's disks, then its CD drives. */
  list(ref: string): Promise<readonly DriveInfo[]>;
  /** Adds a disk or a CD drive (stopped VMs only). @throws invalid-argument (not a disk image / not
   *  an ISO, too many disks or CD drives, no SATA port left), invalid-state (running) */
  add(ref: string, req: AddDiskRequest): Promise<readonly DriveInfo[]>;
  /** Grows a disk to `sizeBytes` (never shrinks): QMP block_resize while running, qemu-img resize
   *  when stopped. @throws invalid-argument (smaller than now), not-found (no such disk) */
  resize(ref: string, diskId: string, sizeBytes: number): Promise<readonly DriveInfo[]>;
  /** Removes a disk or a CD drive from the VM (stopped only). A disk's file is deleted only with
   *  `deleteFile`, only if it is inside the VM's folder and no other VM uses it; an ISO never is.
   *  The system disk (the one the VM boots from) only with `force`.
   *  @throws invalid-state (running; the system disk without `force`, data `{systemDisk: true}`) */
  remove(ref: string, diskId: string, options?: { readonly deleteFile?: boolean; readonly force?: boolean }): Promise<readonly DriveInfo[]>;
  /** Puts an ISO in CD drive `driveId` (default: the first; a stopped VM without one gets cd0),
   *  replacing what was there: live when running, and saved. The ISO is checked as create checks
   *  it (exists, readable, an ISO 9660/UDF volume). */
  insertCd(ref: string, isoPath: string, driveId?: string): Promise<readonly DriveInfo[]>;
  /** Empties CD drive `driveId` (default: the first holding a CD): live when running (forced, even if
   *  the guest locked the tray), and saved. The drive stays (empty). */
  ejectCd(ref: string, driveId?: string): Promise<readonly DriveInfo[]>;
}

export const disksSchema: ServiceSchema<DiskService> = {
  methods: lazyTuples({
    list: () => z.tuple([VmRef]),
    add: () => z.tuple([VmRef, AddDiskRequest]),
    resize: () => z.tuple([VmRef, DriveId, SizeBytes]),
    remove: () => z.tuple([VmRef, DriveId, z.object({ deleteFile: z.boolean().optional(), force: z.boolean().optional() }).strict().optional()]),
    insertCd: () => z.tuple([VmRef, AbsPath, DriveId.optional()]),
    ejectCd: () => z.tuple([VmRef, DriveId.optional()]),
  }),
  events: [],
};
