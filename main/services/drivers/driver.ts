/**
 * The driver interface: how the VM service runs a VM, whatever runs it. The QEMU driver (./qemu/) is
 * the first; a libvirt or remote-host driver can sit beside it. After Lima's pkg/driver/driver.go: a
 * small required interface, and optional features as separate interfaces that a driver may or may
 * not implement (checked with the `has…` guards, never by the driver's name).
 *
 * Drivers sit above library/ and runtime/ (they read and write runtime records) and below the VM
 * service facade; they tell the facade about changes through `onDidChange`, never by calling it.
 */
import type { Event } from '../../common/contract';
import type { VmConfig } from '../../common/models/vm-config';
import type { StopRungName } from '../../common/models/vm-state';
import type { RuntimeRecord } from '../runtime/records';

/** A loadable VM as drivers see it. */
export interface DriverVm {
  readonly id: string;
  readonly config: VmConfig;
}

export interface DriverStartOptions {
  /** The whole start (launch until QEMU answers) may take this long, in ms. */
  readonly timeoutMs: number;
  /** Told each sentence worth showing the person who started the VM (state rebuilt, launch-plan
   *  warnings); the driver also logs them. */
  readonly notice?: (sentence: string) => void;
  /** Start with the vCPUs stopped until `resume` (QEMU `-S`): a revert of a shut-down VM to a
   *  snapshot with memory loads it before the guest runs an instruction. */
  readonly paused?: boolean;
}

export interface DriverStopOptions {
  /** Skip asking the guest (Force Off). */
  readonly force: boolean;
  /** How long the guest gets after the power button, in seconds. */
  readonly timeoutSec: number;
}

export interface StopOutcome {
  /** One sentence: what the stop did ("The guest did not respond to the power button; forced off after 30 s."). */
  readonly message: string;
  readonly rung: StopRungName | null;
  readonly escalated: boolean;
}

/** What QEMU (or another hypervisor) says about a running VM right now. */
export type LiveStatus =
  | { readonly kind: 'running' }
  | { readonly kind: 'paused'; readonly reason: string }
  /** The process lives but does not answer (stopped with SIGSTOP, hung): `why` is a clause. */
  | { readonly kind: 'not-responding'; readonly why: string }
  /** Someone else holds the monitor; nothing can be said. */
  | { readonly kind: 'unknown'; readonly why: string };

export type DriverEvent =
  /** The VM's run state may have changed (paused, resumed, monitor lost): re-read it. */
  | { readonly kind: 'changed'; readonly id: string };

export interface VmDriver {
  /** Stable name ("qemu"). */
  readonly name: string;
  /** The command line this VM would run with on this host (argv[0] the binary). */
  commandLine(vm: DriverVm): Promise<readonly string[]>;
  /**
   * Starts the VM; resolves once it runs, with its runtime record. Holds the start lock meanwhile.
   * @throws VivariumError invalid-state (already running), busy (being started elsewhere), qemu-failed.
   */
  start(vm: DriverVm, options: DriverStartOptions): Promise<RuntimeRecord>;
  /** Runs the stop ladder until the VM is gone. @throws VivariumError qemu-failed when it survives. */
  stop(vm: DriverVm, record: RuntimeRecord, options: DriverStopOptions): Promise<StopOutcome>;
  pause(vm: DriverVm, record: RuntimeRecord): Promise<void>;
  resume(vm: DriverVm, record: RuntimeRecord): Promise<void>;
  reset(vm: DriverVm, record: RuntimeRecord): Promise<void>;
  /** Asks the hypervisor, within `timeoutMs`, how the VM really is (another client may have paused it). */
  liveStatus(vm: DriverVm, record: RuntimeRecord, timeoutMs: number): Promise<LiveStatus>;
  /** Long-lived hosts: keep listening to this running VM's events. */
  watch(id: string): void;
  /** The VM is gone: drop what the driver holds for it. */
  forget(id: string): void;
  readonly onDidChange: Event<DriverEvent>;
  dispose(): void;
}

/** Screenshots of the guest's display. */
export interface Screenshotter {
  screenshot(vm: DriverVm, record: RuntimeRecord): Promise<{ readonly png: Buffer; readonly width: number; readonly height: number }>;
}

/** Keys pressed on the guest's keyboard. */
export interface KeySender {
  sendKeys(vm: DriverVm, record: RuntimeRecord, qcodes: readonly string[]): Promise<void>;
}

/** One image an internal snapshot is written into: a writable qcow2 of the VM (a disk's top image,
 *  the UEFI variable store). */
export interface SnapshotImage {
  /** The QEMU node name (a disk's id, "fw-vars"). */
  readonly node: string;
  /** Bundle-relative file name (only images inside the bundle take internal snapshots). */
  readonly file: string;
  /** For sentences: "disk disk0", "the UEFI variable store". */
  readonly label: string;
}

/** What a snapshot of a VM covers: its images, and the one that holds the memory (null: none can). */
export interface SnapshotPlan {
  readonly images: readonly SnapshotImage[];
  readonly vmstate: SnapshotImage | null;
}

/** An internal snapshot found in an image (qemu-img info `snapshots[]`). */
export interface ImageSnapshot {
  readonly tag: string;
  /** Bytes of saved VM state (RAM, devices) in this image; 0 for disk-only snapshots. */
  readonly vmStateBytes: number;
  /** When it was taken (ISO), from the image's `date-sec`; absent when the image does not say. */
  readonly createdAt?: string;
}

/** How far a long snapshot job has come, 0..1 (QEMU's current-progress / total-progress). */
export type SnapshotProgress = (fraction: number) => void;

/**
 * Internal snapshots (issue 10): every writable qcow2 of a VM, the UEFI variables included, under
 * one tag. With a runtime record the VM is running and the snapshot holds its memory (QMP
 * snapshot-save/-load/-delete jobs); without one it is stopped and only the disks are touched
 * (qemu-img snapshot). Tags are Vivarium's snapshot ids; names and the tree are the caller's.
 */
export interface Snapshotter {
  /** @throws VivariumError invalid-state naming a disk that cannot hold an internal snapshot. */
  snapshotPlan(vm: DriverVm): SnapshotPlan;
  saveSnapshot(vm: DriverVm, record: RuntimeRecord | null, tag: string, progress?: SnapshotProgress): Promise<void>;
  loadSnapshot(vm: DriverVm, record: RuntimeRecord | null, tag: string, progress?: SnapshotProgress): Promise<void>;
  deleteSnapshot(vm: DriverVm, record: RuntimeRecord | null, tag: string): Promise<void>;
  /** The snapshots each image of the plan holds, by bundle file name (read without locks). With the
   *  running VM's record, asked of its QEMU (the images it has open) rather than of the files. */
  imageSnapshots(vm: DriverVm, record?: RuntimeRecord | null): Promise<ReadonlyMap<string, readonly ImageSnapshot[]>>;
}

/** Suspend to disk: the whole running state saved to `file` (bundle-relative), QEMU ended. The
 *  next start resumes from it (the driver's start sees the file). */
export interface Suspender {
  suspend(vm: DriverVm, record: RuntimeRecord, progress?: SnapshotProgress): Promise<void>;
}

export function hasScreenshotter(d: VmDriver): d is VmDriver & Screenshotter {
  return typeof (d as Partial<Screenshotter>).screenshot === 'function';
}

export function hasKeySender(d: VmDriver): d is VmDriver & KeySender {
  return typeof (d as Partial<KeySender>).sendKeys === 'function';
}

export function hasSnapshotter(d: VmDriver): d is VmDriver & Snapshotter {
  return typeof (d as Partial<Snapshotter>).snapshotPlan === 'function';
}

export function hasSuspender(d: VmDriver): d is VmDriver & Suspender {
  return typeof (d as Partial<Suspender>).suspend === 'function';
}
