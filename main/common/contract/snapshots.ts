/**
 * The `snapshots` service (issue 10): a VM's snapshot tree — take, list, revert, delete, rename —
 * and clones. Implemented by main/services/snapshots/snapshot-service.ts.
 *
 * A snapshot of a running VM holds its memory (reverting puts the guest back mid-run); one of a
 * stopped VM holds its disks only. The tree (parents, the "you are here" marker, names,
 * descriptions, thumbnails) is Vivarium's metadata in the VM's folder; the data is internal qcow2
 * snapshots in the VM's images, the UEFI variables included.
 */
import { z } from 'zod';
import { NewVmName, invisibleCharacter } from '../models/vm-config';
import type { VmInfo } from '../models/vm-state';
import { AbsPath, VmRef, lazyTuples, type Event, type ServiceSchema } from './shared';

/**
 * A snapshot's name (create and rename alike): visible text, one line, by the same rule as a VM's
 * name (invisibleCharacter, models/vm-config.ts), so two names that look the same are the same.
 */
export const SnapshotName = z
  .string()
  .trim()
  .min(1, 'a snapshot name must not be empty')
  .max(100, 'a snapshot name must be at most 100 characters')
  .refine((n) => !/[\u0000-\u001f\u007f]/.test(n), 'a snapshot name must not contain control characters')
  .superRefine((n, ctx) => {
    const bad = /[\u0000-\u001f\u007f]/.test(n) ? null : invisibleCharacter(n);
    if (bad) ctx.addIssue({ code: 'custom', message: `a snapshot name must not contain invisible or text-direction characters (it contains ${bad}); type it again with visible characters only` });
  });

/** A snapshot reference: its name or its id. */
export const SnapshotRef = z.string().min(1, 'a snapshot name or id is required').max(200);

export const SnapshotDescription = z.string().max(2000, 'a description must be at most 2000 characters');

export const CreateSnapshotSpec = z
  .object({
    /** Default: "Snapshot N". */
    name: SnapshotName.optional(),
    description: SnapshotDescription.optional(),
  })
  .strict();
export type CreateSnapshotSpec = z.infer<typeof CreateSnapshotSpec>;

export const EditSnapshotSpec = z.object({ name: SnapshotName.optional(), description: SnapshotDescription.optional() }).strict();
export type EditSnapshotSpec = z.infer<typeof EditSnapshotSpec>;

export const CloneSpec = z
  .object({
    name: NewVmName,
    /** A qcow2 overlay on the source's current disk state (instant) instead of a full copy. */
    linked: z.boolean().optional(),
  })
  .strict();
export type CloneSpec = z.infer<typeof CloneSpec>;

/** One snapshot, as `vivarium snapshot list --json` prints it (README). */
export interface SnapshotInfo {
  /** Stable id ("snap-" and 12 hex digits); also the tag inside the images. */
  readonly id: string;
  readonly name: string;
  readonly description: string;
  /** ISO 8601. */
  readonly createdAt: string;
  /** The snapshot this one was taken after (the tree), null for a root. */
  readonly parentId: string | null;
  /** "You are here": the VM's state descends from this snapshot. */
  readonly current: boolean;
  /** Taken while running: holds the memory, a revert resumes the guest mid-run. */
  readonly withMemory: boolean;
  /** Bytes the snapshot's saved memory takes in the images (disk clusters are shared between
   *  snapshots and the live image, so they are not counted). */
  readonly sizeBytes: number;
  /** Whether a screen thumbnail was saved with it. */
  readonly hasThumbnail: boolean;
}

/** What `revert` answers: the snapshot reverted to, and what the revert changed in the VM's settings
 *  besides its disks' data (a snapshot holds the VM's hardware settings; the fields are absent when
 *  nothing such changed, and in answers of engines from before they existed). */
export interface RevertResult extends SnapshotInfo {
  /** Ids of disks the VM had that the snapshot did not (added after it): detached; files kept. */
  readonly detachedDisks?: readonly string[];
  /** Ids of disks the snapshot had that had been removed since: attached again. */
  readonly restoredDisks?: readonly string[];
  /** One sentence each, for the person: disks detached or attached again, settings put back. */
  readonly notices?: readonly string[];
}

/** A long snapshot or clone operation's progress, for the UI. */
export interface SnapshotProgressEvent {
  readonly vmId: string;
  readonly operation: 'create' | 'revert' | 'delete' | 'clone' | 'suspend' | 'export' | 'import';
  /** 0..1; 0 while `indeterminate`. */
  readonly fraction: number;
  readonly done: boolean;
  /** True when the engine cannot know how far along it is (QEMU's snapshot-save/-load/-delete jobs
   *  hold its main loop and report no progress until they end): show a spinner, not a percentage.
   *  Absent (from engines before it existed, and for operations that do move) means `fraction` counts. */
  readonly indeterminate?: boolean;
  /** operation "create": the snapshot being saved (it is in `list` only once complete). */
  readonly snapshot?: { readonly id: string; readonly name: string };
}

/**
 * A long operation under way on a VM in this engine, as `jobs` answers it: what a page opened or
 * reloaded in the middle of a save, revert, suspend, clone or export shows (its progress, what to
 * disable) until the matching `onDidProgress` event with `done` arrives.
 */
export interface SnapshotJobInfo {
  readonly vmId: string;
  readonly operation: SnapshotProgressEvent['operation'];
  /** 0..1, or null when not known (see SnapshotProgressEvent.indeterminate). */
  readonly fraction: number | null;
  /** ISO 8601: when the operation began. */
  readonly startedAt: string;
  /** operation "create": the snapshot being saved, to draw as "saving…" in the tree. */
  readonly snapshot?: { readonly id: string; readonly name: string };
  /** Whether `cancel` can stop it (a full clone). */
  readonly cancellable: boolean;
}

export interface SnapshotService {
  /** The VM's snapshots, oldest first. Reconciles the tree with what the images hold. */
  list(vm: string): Promise<readonly SnapshotInfo[]>;
  /** Takes a snapshot (with memory when the VM runs). Errors: invalid-state (a disk that cannot
   *  hold one, named), already-exists (name taken), busy (another job). */
  create(vm: string, spec: CreateSnapshotSpec): Promise<SnapshotInfo>;
  /** Puts the VM back to the snapshot: its disks, its hardware settings (RevertResult says what
   *  changed) and, for a snapshot with memory, the running guest. A running VM needs a snapshot with
   *  memory; a stopped VM reverted to a disks-only snapshot stays stopped. */
  revert(vm: string, snapshot: string): Promise<RevertResult>;
  /** Deletes a snapshot; its children become children of its parent and stay revertible. */
  delete(vm: string, snapshot: string): Promise<void>;
  /** Renames a snapshot or changes its description. */
  edit(vm: string, snapshot: string, patch: EditSnapshotSpec): Promise<SnapshotInfo>;
  /** The screen at the moment of the snapshot, PNG base64; null when none was saved. */
  thumbnail(vm: string, snapshot: string): Promise<{ readonly pngBase64: string } | null>;
  /** Clones a stopped VM: linked (an overlay on the source's disks, which become read-only) or full. */
  clone(vm: string, spec: CloneSpec): Promise<VmInfo>;
  /** Saves a running VM's whole state into its folder and ends QEMU: the VM is `suspended`, and the
   *  next start resumes it where it was. Errors: invalid-state (not running). */
  suspend(vm: string): Promise<VmInfo>;
  /** Writes a shut-down VM's whole bundle (config, disks, UEFI variables, snapshots) to one file
   *  with a checksum (`path` must not exist). */
  exportVm(vm: string, path: string): Promise<{ readonly path: string; readonly bytes: number }>;
  /** Imports an export file as a new VM (a new id if one with its id exists). A partial or corrupt
   *  file is refused with a sentence; nothing half-imported is left. */
  importVm(path: string, options: { readonly name?: string }): Promise<VmInfo>;
  /** The long operations under way on a VM in this engine (at most one: they exclude each other),
   *  for a page opened in the middle of one. Empty when none. */
  jobs(vm: string): Promise<readonly SnapshotJobInfo[]>;
  /** Stops the VM's cancellable operation (a full clone: its copy is ended and the half-made clone
   *  removed, so nothing is left and the library is as before) and resolves once it has ended. The
   *  operation's own call then fails with invalid-state ("… was cancelled …"; `data.cancelled`).
   *  Resolves true when it ended cancelled; false when no cancellable operation runs on the VM (none,
   *  or one that cannot be cancelled, such as a snapshot save: force the VM off to end that), or
   *  when it finished before the cancel reached it (the clone then exists). */
  cancel(vm: string): Promise<boolean>;
  /** A VM's snapshot list changed. */
  onDidChange: Event<{ readonly vmId: string }>;
  onDidProgress: Event<SnapshotProgressEvent>;
}

export const snapshotsSchema: ServiceSchema<SnapshotService> = {
  methods: lazyTuples({
    list: () => z.tuple([VmRef]),
    create: () => z.tuple([VmRef, CreateSnapshotSpec]),
    revert: () => z.tuple([VmRef, SnapshotRef]),
    delete: () => z.tuple([VmRef, SnapshotRef]),
    edit: () => z.tuple([VmRef, SnapshotRef, EditSnapshotSpec]),
    thumbnail: () => z.tuple([VmRef, SnapshotRef]),
    clone: () => z.tuple([VmRef, CloneSpec]),
    suspend: () => z.tuple([VmRef]),
    exportVm: () => z.tuple([VmRef, AbsPath]),
    importVm: () => z.tuple([AbsPath, z.object({ name: NewVmName.optional() }).strict()]),
    jobs: () => z.tuple([VmRef]),
    cancel: () => z.tuple([VmRef]),
  }),
  events: ['onDidChange', 'onDidProgress'],
};
