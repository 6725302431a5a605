/**
 * Internal snapshots for the QEMU driver (issue 10; qemu-notes §3 "Snapshots").
 *
 * - Running VM: QMP `snapshot-save` / `snapshot-load` / `snapshot-delete` jobs (QEMU 6.0+) over every
 *   writable qcow2 node of the VM — each disk's top image and the UEFI variable store ("fw-vars") —
 *   with the VM state (RAM, devices) in the system disk. The jobs pause the vCPUs while they run and
 *   resume them afterwards. Each job is followed with `query-jobs` until it concludes, then dismissed.
 * - Stopped VM: `qemu-img snapshot -c/-a/-d` on each image file (disks only, no memory).
 *
 * Images are opened with `--image-opts` and an explicit `driver=qcow2`, never by probing, and only
 * images inside the VM's bundle take part: an image attached in place belongs to someone else, a
 * raw image has no room for a snapshot; either makes the VM refuse snapshots with a sentence naming
 * the disk. Read-only disks and backing layers are never written, so they are left out.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { errors } from '../../../common/errors';
import type { VmConfig } from '../../../common/models/vm-config';
import type { Layout } from '../../paths';
import { QemuIds, VDAGENT_PORT_NAME, escapeOptionValue } from '../../qemu/argv';
import type { SnapshotJobMonitor } from '../../qemu/monitor';
import { sleep } from '../../qemu/process';
import type { RuntimeRecord } from '../../runtime/records';
import type { DriverVm, ImageSnapshot, SnapshotImage, SnapshotPlan, SnapshotProgress } from '../driver';

export interface QemuSnapshotterDeps {
  readonly layout: Layout;
  /** The qemu-img binary (host probe), null when missing. */
  readonly qemuImg: () => Promise<string | null>;
  /** The engine's monitor of a running VM (the one QMP connection). */
  readonly monitor: (id: string) => Promise<SnapshotJobMonitor>;
}

/** How long one snapshot job may run before Vivarium gives up waiting (a large guest on TCG). */
const JOB_TIMEOUT_MS = 30 * 60_000;
/** query-jobs every 10 ms for the first 2 s (a small guest's snapshot takes well under a second, and
 *  each poll is one line on the monitor socket), every 50 ms after that. */
const JOB_POLL_FAST_MS = 10;
const JOB_POLL_MS = 50;
const JOB_FAST_FOR_MS = 2000;

/**
 * The images a snapshot of `config` covers and where its memory goes. Pure.
 * @throws VivariumError invalid-state naming the first disk that cannot take an internal snapshot.
 */
export function snapshotPlanOf(config: VmConfig): SnapshotPlan {
  const images: SnapshotImage[] = [];
  let vmstate: SnapshotImage | null = null;
  for (const d of config.disks) {
    if (d.readOnly) continue;
    if (!('bundle' in d.source)) {
      throw errors.state(
        `"${config.name}" cannot take snapshots: disk ${d.id} is the image ${d.source.path}, used in place, and Vivarium does not write snapshots into files outside the VM's folder. Make a copy of the VM (a full clone) or import the disk as a copy to use snapshots.`,
        { disk: d.id },
      );
    }
    if (d.format !== 'qcow2') {
      throw errors.state(
        `"${config.name}" cannot take snapshots: disk ${d.id} (${d.source.bundle}) is a raw image, which has no room for a snapshot. Convert it to qcow2 to use snapshots.`,
        { disk: d.id },
      );
    }
    const img: SnapshotImage = { node: d.id, file: d.source.bundle, label: `disk ${d.id}` };
    images.push(img);
    if (d.role === 'system' && vmstate === null) vmstate = img;
  }
  vmstate ??= images[0] ?? null;
  if (config.uefiVars !== null && config.firmware === 'uefi') {
    images.push({ node: QemuIds.fwVars, file: config.uefiVars, label: 'the UEFI variable store' });
  }
  return { images, vmstate };
}

/** `--image-opts` for a bundle qcow2: the format said, never probed; the header's backing file is
 *  not opened (an internal snapshot is a matter of the image's own clusters). */
function imageOpts(file: string): string {
  return `driver=qcow2,file.driver=file,file.filename=${escapeOptionValue(file)}`;
}

function qemuImg(binary: string, args: readonly string[]): Promise<{ ok: true; stdout: string } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: JOB_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) resolve({ ok: false, reason: ((stderr || err.message).trim().split('\n').pop() ?? err.message).replace(/^qemu-img: /, '') });
      else resolve({ ok: true, stdout });
    });
  });
}

/**
 * Runs `fn` (a snapshot job with the VM's memory) with the clipboard channel unplugged, then plugs it
 * back. QEMU's qemu-vdagent chardev blocks every migration, and so every snapshot with memory ("The
 * vdagent chardev doesn't yet support migration", ui/vdagent.c; still so in QEMU 9/10: Proxmox
 * does not default to the VNC clipboard for that reason). A snapshot is therefore always saved and
 * loaded without the port: the set of virtio-serial ports on both sides matches (virtio-serial
 * refuses to load a stream whose active ports differ). The guest's spice-vdagent sees its port go
 * and come back, as after an agent restart. VMs without a display have no such channel.
 */
export async function withoutClipboard<T>(m: SnapshotJobMonitor, fn: () => Promise<T>): Promise<T> {
  const had = await m.hasChardev(QemuIds.clipboardChardev);
  if (had) await m.unplugSerialPort(QemuIds.clipboardPort, QemuIds.clipboardChardev);
  try {
    return await fn();
  } finally {
    if (had) await m.plugVdagentPort(QemuIds.clipboardChardev, QemuIds.clipboardPort, 'vser0.0', VDAGENT_PORT_NAME).catch(() => undefined);
  }
}

export class QemuSnapshotter {
  constructor(private readonly deps: QemuSnapshotterDeps) {}

  plan(vm: DriverVm): SnapshotPlan {
    return snapshotPlanOf(vm.config);
  }

  async save(vm: DriverVm, record: RuntimeRecord | null, tag: string, progress?: SnapshotProgress): Promise<void> {
    const plan = this.requireImages(vm, 'take a snapshot');
    if (record) {
      if (!plan.vmstate) throw errors.state(`"${vm.config.name}" has no qcow2 disk to hold its memory, so it cannot take a snapshot while running.`);
      const m = await this.deps.monitor(vm.id);
      await withoutClipboard(m, () => this.runJob(vm, m, 'save', (id) => m.snapshotSave(id, tag, plan.vmstate!.node, plan.images.map((i) => i.node)), progress));
      return;
    }
    await this.offline(vm, plan, ['-c', tag], 'save the snapshot', true);
  }

  async load(vm: DriverVm, record: RuntimeRecord | null, tag: string, progress?: SnapshotProgress): Promise<void> {
    const plan = this.requireImages(vm, 'revert to a snapshot');
    if (record) {
      if (!plan.vmstate) throw errors.state(`"${vm.config.name}" has no qcow2 disk holding memory.`);
      const m = await this.deps.monitor(vm.id);
      await withoutClipboard(m, () => this.runJob(vm, m, 'load', (id) => m.snapshotLoad(id, tag, plan.vmstate!.node, plan.images.map((i) => i.node)), progress));
      return;
    }
    await this.offline(vm, plan, ['-a', tag], 'revert to the snapshot', false);
  }

  async delete(vm: DriverVm, record: RuntimeRecord | null, tag: string): Promise<void> {
    const plan = snapshotPlanOf(vm.config);
    // Only the images that hold the tag: a half-made snapshot may be in some of them only.
    const held = await this.imageSnapshots(vm);
    const holding = plan.images.filter((i) => held.get(i.file)?.some((s) => s.tag === tag));
    if (holding.length === 0) return;
    if (record) {
      const m = await this.deps.monitor(vm.id);
      await this.runJob(vm, m, 'delete', (id) => m.snapshotDelete(id, tag, holding.map((i) => i.node)));
      return;
    }
    await this.offline(vm, { images: holding, vmstate: null }, ['-d', tag], 'delete the snapshot', false);
  }

  async imageSnapshots(vm: DriverVm): Promise<ReadonlyMap<string, readonly ImageSnapshot[]>> {
    const plan = snapshotPlanOf(vm.config);
    const bin = await this.bin();
    const bundle = this.deps.layout.bundle(vm.id);
    const out = new Map<string, readonly ImageSnapshot[]>();
    await Promise.all(
      plan.images.map(async (img) => {
        // -U: readable while a running QEMU holds the image.
        const r = await qemuImg(bin, ['info', '-U', '--output=json', '--image-opts', imageOpts(bundle.file(img.file))]);
        if (!r.ok) {
          out.set(img.file, []);
          return;
        }
        const j = JSON.parse(r.stdout) as { snapshots?: { name?: unknown; 'vm-state-size'?: unknown }[] };
        out.set(
          img.file,
          (j.snapshots ?? []).map((s) => ({ tag: String(s.name), vmStateBytes: typeof s['vm-state-size'] === 'number' ? s['vm-state-size'] : 0 })),
        );
      }),
    );
    return out;
  }

  // ---- internals ---------------------------------------------------------------------------------

  private requireImages(vm: DriverVm, what: string): SnapshotPlan {
    const plan = snapshotPlanOf(vm.config);
    if (plan.images.length === 0) {
      throw errors.state(`"${vm.config.name}" has no disk inside its folder to ${what} of: snapshots live in its qcow2 disks.`);
    }
    return plan;
  }

  private async bin(): Promise<string> {
    const b = await this.deps.qemuImg();
    if (!b) throw errors.qemu('qemu-img was not found. Install QEMU and check what this host can run (the doctor) before trying again.', undefined, { remedy: { kind: 'check-host' } });
    return b;
  }

  /**
   * qemu-img snapshot on each image in turn. A save that fails on a later image removes the tag
   * from the earlier ones, so a snapshot is in every image or in none.
   */
  private async offline(vm: DriverVm, plan: SnapshotPlan, op: readonly string[], what: string, undoOnFailure: boolean): Promise<void> {
    const bin = await this.bin();
    const bundle = this.deps.layout.bundle(vm.id);
    const done: SnapshotImage[] = [];
    for (const img of plan.images) {
      const r = await qemuImg(bin, ['snapshot', '-q', ...op, '--image-opts', imageOpts(bundle.file(img.file))]);
      if (!r.ok) {
        if (undoOnFailure) {
          for (const d of done) await qemuImg(bin, ['snapshot', '-q', '-d', op[1]!, '--image-opts', imageOpts(bundle.file(d.file))]);
        }
        throw errors.qemu(`Could not ${what} in ${img.label} of "${vm.config.name}": ${r.reason}`);
      }
      done.push(img);
    }
  }

  /** Starts a QMP job and follows it to its end (query-jobs), then dismisses it. */
  private async runJob(
    vm: DriverVm,
    m: SnapshotJobMonitor,
    kind: 'save' | 'load' | 'delete',
    start: (jobId: string) => Promise<void>,
    progress?: SnapshotProgress,
  ): Promise<void> {
    const jobId = `viv-${kind}-${randomBytes(4).toString('hex')}`;
    const verb = kind === 'save' ? 'save the snapshot of' : kind === 'load' ? 'revert' : 'delete the snapshot of';
    try {
      await start(jobId);
      const started = Date.now();
      const deadline = started + JOB_TIMEOUT_MS;
      for (;;) {
        const job = (await m.queryJobs()).find((j) => j.id === jobId);
        if (!job) throw errors.qemu(`QEMU lost track of its job to ${verb} "${vm.config.name}".`);
        if (job.totalProgress > 0) progress?.(Math.min(1, job.currentProgress / job.totalProgress));
        if (job.status === 'concluded') {
          await m.jobDismiss(jobId).catch(() => undefined);
          if (job.error) throw errors.qemu(`QEMU could not ${verb} "${vm.config.name}": ${job.error}`);
          progress?.(1);
          return;
        }
        if (Date.now() > deadline) throw errors.timeout(`QEMU did not ${verb} "${vm.config.name}" within ${JOB_TIMEOUT_MS / 60_000} minutes.`);
        await sleep(Date.now() - started < JOB_FAST_FOR_MS ? JOB_POLL_FAST_MS : JOB_POLL_MS);
      }
    } catch (e) {
      // Forced off (or crashed) in the middle: the monitor closed under the job.
      if (e instanceof Error && /closed|not connected|ECONNRESET|EPIPE/i.test(e.message) && !('code' in e && (e as { code: string }).code === 'qemu-failed')) {
        throw errors.state(`"${vm.config.name}" stopped while Vivarium was trying to ${verb} it.`);
      }
      throw e;
    }
  }
}
