/**
 * Internal snapshots for the QEMU driver (issue 10; qemu-notes §3 "Snapshots").
 *
 * - Running VM: QMP `snapshot-save` / `snapshot-load` / `snapshot-delete` jobs (QEMU 6.0+) over every
 *   writable qcow2 node of the VM — each disk's top image and the UEFI variable store ("fw-vars") —
 *   with the VM state (RAM, devices) in the system disk. The jobs pause the vCPUs while they run and
 *   resume them afterwards. Each job is followed by its JOB_STATUS_CHANGE events until it concludes
 *   (no polling: the wait ends the moment QEMU says so), then read once with `query-jobs` for its
 *   error and dismissed. What the images hold is asked of QEMU itself (`query-named-block-nodes`)
 *   on the connection already open, not of a `qemu-img info -U` per image.
 * - Stopped VM: `qemu-img snapshot -c/-a/-d` on each image file (disks only, no memory).
 *
 * Images are opened with `--image-opts` and an explicit `driver=qcow2`, never by probing, and only
 * images inside the VM's bundle take part: an image attached in place belongs to someone else, a
 * raw image has no room for a snapshot; either makes the VM refuse snapshots with a sentence naming
 * the disk. Read-only disks and backing layers are never written, so they are left out.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { errors, isVivariumError } from '../../../common/errors';
import type { VmConfig } from '../../../common/models/vm-config';
import type { Layout } from '../../paths';
import { QemuIds, VDAGENT_PORT_NAME, escapeOptionValue } from '../../qemu/argv';
import type { Monitor, SnapshotJobMonitor } from '../../qemu/monitor';
import { isQmpLost, QmpError } from '../../qemu/qmp';
import type { RuntimeRecord } from '../../runtime/records';
import type { DriverVm, ImageSnapshot, SnapshotImage, SnapshotPlan, SnapshotProgress } from '../driver';

export interface QemuSnapshotterDeps {
  readonly layout: Layout;
  /** The qemu-img binary (host probe), null when missing. */
  readonly qemuImg: () => Promise<string | null>;
  /** The engine's monitor of a running VM (the one QMP connection). */
  readonly monitor: (id: string) => Promise<JobMonitor>;
}

/** What the snapshotter asks of a running VM's monitor: the job commands and the job's events. */
export type JobMonitor = SnapshotJobMonitor & Pick<Monitor, 'onEvent' | 'onClose'> & { readonly closed?: boolean };

/** How long one snapshot job may run before Vivarium gives up waiting (a large guest on TCG). */
const JOB_TIMEOUT_MS = 30 * 60_000;

/**
 * The internal snapshots of each format node in a `query-named-block-nodes` answer (QEMU 7.2+:
 * BlockDeviceInfo[] with `node-name` and `image`, an ImageInfo whose `snapshots` (SnapshotInfo[]:
 * `name`, `vm-state-size` in bytes) is left out when the image holds none). Pure; an answer of
 * another shape gives an empty map, an entry without a name is skipped.
 * @returns node name → its snapshots (tag = SnapshotInfo `name`, vmStateBytes = `vm-state-size`).
 */
export function parseNodeSnapshots(answer: unknown): Map<string, readonly ImageSnapshot[]> {
  const out = new Map<string, readonly ImageSnapshot[]>();
  if (!Array.isArray(answer)) return out;
  for (const node of answer as unknown[]) {
    if (typeof node !== 'object' || node === null) continue;
    const { 'node-name': name, image } = node as { 'node-name'?: unknown; image?: unknown };
    if (typeof name !== 'string' || name === '' || typeof image !== 'object' || image === null) continue;
    const list = (image as { snapshots?: unknown }).snapshots;
    out.set(
      name,
      (Array.isArray(list) ? (list as unknown[]) : [])
        .filter((s): s is { name: string; 'vm-state-size'?: unknown } => typeof s === 'object' && s !== null && typeof (s as { name?: unknown }).name === 'string')
        .map((s) => imageSnapshotOf(s)),
    );
  }
  return out;
}

/** One SnapshotInfo (QAPI, as `qemu-img info --output=json` and query-named-block-nodes give it:
 *  `name`, `vm-state-size` bytes, `date-sec` seconds since the epoch plus `date-nsec`) as an
 *  ImageSnapshot (createdAt to the millisecond: two snapshots of one second keep their order). */
function imageSnapshotOf(s: { name: string; 'vm-state-size'?: unknown; 'date-sec'?: unknown; 'date-nsec'?: unknown }): ImageSnapshot {
  const sec = s['date-sec'];
  const nsec = typeof s['date-nsec'] === 'number' && s['date-nsec'] >= 0 && s['date-nsec'] < 1e9 ? s['date-nsec'] : 0;
  return {
    tag: s.name,
    vmStateBytes: typeof s['vm-state-size'] === 'number' ? s['vm-state-size'] : 0,
    ...(typeof sec === 'number' && Number.isFinite(sec) && sec > 0 ? { createdAt: new Date(sec * 1000 + Math.floor(nsec / 1e6)).toISOString() } : {}),
  };
}

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

/**
 * The error of a snapshot job whose QEMU went away under it (forced off, killed, crashed): a
 * sentence without QEMU's command names, with `data.qemuEnded: true` so the snapshot service can say
 * what became of the snapshot (kept or not) in its place.
 */
export function qemuEndedError(vmName: string, kind: 'save' | 'load' | 'delete'): Error {
  const doing = kind === 'save' ? 'a snapshot of it was being saved' : kind === 'load' ? 'it was being reverted to a snapshot' : 'a snapshot of it was being deleted';
  return errors.state(`"${vmName}" stopped (forced off, or QEMU ended) while ${doing}.`, { qemuEnded: true, job: kind });
}

/** Whether `e` says that a snapshot job's QEMU went away under it (qemuEndedError). */
export function isQemuEnded(e: unknown): boolean {
  return isVivariumError(e) && (e.data as { qemuEnded?: unknown } | undefined)?.qemuEnded === true;
}

/** Runs `fn` (monitor commands around a snapshot job); when QEMU went away meanwhile, its error
 *  (qmp.ts isQmpLost) becomes qemuEndedError's sentence. */
async function asSentence<T>(vm: DriverVm, m: JobMonitor, kind: 'save' | 'load' | 'delete', fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!isQemuEnded(e) && (m.closed === true || isQmpLost(e))) throw qemuEndedError(vm.config.name, kind);
    // QEMU refused a command ('"snapshot-save" failed: …'): its reason, without the command's name.
    if (e instanceof QmpError) {
      const verb = kind === 'save' ? 'save the snapshot of' : kind === 'load' ? 'revert' : 'delete the snapshot of';
      throw errors.qemu(`QEMU could not ${verb} "${vm.config.name}": ${e.desc}`, { class: e.errorClass });
    }
    throw e;
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
      await asSentence(vm, m, 'save', () => withoutClipboard(m, () => this.runJob(vm, m, 'save', (id) => m.snapshotSave(id, tag, plan.vmstate!.node, plan.images.map((i) => i.node)), progress)));
      return;
    }
    await this.offline(vm, plan, ['-c', tag], 'save the snapshot', true);
  }

  async load(vm: DriverVm, record: RuntimeRecord | null, tag: string, progress?: SnapshotProgress): Promise<void> {
    const plan = this.requireImages(vm, 'revert to a snapshot');
    if (record) {
      if (!plan.vmstate) throw errors.state(`"${vm.config.name}" has no qcow2 disk holding memory.`);
      const m = await this.deps.monitor(vm.id);
      await asSentence(vm, m, 'load', () => withoutClipboard(m, () => this.runJob(vm, m, 'load', (id) => m.snapshotLoad(id, tag, plan.vmstate!.node, plan.images.map((i) => i.node)), progress)));
      return;
    }
    await this.offline(vm, plan, ['-a', tag], 'revert to the snapshot', false);
  }

  async delete(vm: DriverVm, record: RuntimeRecord | null, tag: string): Promise<void> {
    const plan = snapshotPlanOf(vm.config);
    // Only the images that hold the tag: a half-made snapshot may be in some of them only.
    const held = await this.imageSnapshots(vm, record);
    const holding = plan.images.filter((i) => held.get(i.file)?.some((s) => s.tag === tag));
    if (holding.length === 0) return;
    if (record) {
      const m = await this.deps.monitor(vm.id);
      await asSentence(vm, m, 'delete', () => this.runJob(vm, m, 'delete', (id) => m.snapshotDelete(id, tag, holding.map((i) => i.node))));
      return;
    }
    await this.offline(vm, { images: holding, vmstate: null }, ['-d', tag], 'delete the snapshot', false);
  }

  /**
   * The snapshots each image of the plan holds, by bundle file name. A running VM (`record`) is
   * asked through its monitor (QEMU's own view of the images it has open, one round trip); a
   * stopped one, or a running one whose answer lacks an image, with `qemu-img info -U` per image.
   */
  async imageSnapshots(vm: DriverVm, record: RuntimeRecord | null = null): Promise<ReadonlyMap<string, readonly ImageSnapshot[]>> {
    const plan = snapshotPlanOf(vm.config);
    if (record) {
      const live = await this.liveImageSnapshots(vm, plan).catch(() => null);
      if (live) return live;
    }
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
        const j = JSON.parse(r.stdout) as { snapshots?: { name?: unknown; 'vm-state-size'?: unknown; 'date-sec'?: unknown; 'date-nsec'?: unknown }[] };
        out.set(
          img.file,
          (j.snapshots ?? []).map((s) => imageSnapshotOf({ ...s, name: String(s.name) })),
        );
      }),
    );
    return out;
  }

  // ---- internals ---------------------------------------------------------------------------------

  /** imageSnapshots from the running QEMU; null when a plan image is not among its nodes (a disk
   *  added to the config since it started). */
  private async liveImageSnapshots(vm: DriverVm, plan: SnapshotPlan): Promise<ReadonlyMap<string, readonly ImageSnapshot[]> | null> {
    const m = await this.deps.monitor(vm.id);
    const byNode = parseNodeSnapshots(await m.queryNamedBlockNodes());
    const out = new Map<string, readonly ImageSnapshot[]>();
    for (const img of plan.images) {
      const list = byNode.get(img.node);
      if (!list) return null;
      out.set(img.file, list);
    }
    return out;
  }

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

  /**
   * Starts a QMP job and waits for its JOB_STATUS_CHANGE to `concluded` (listened to before the job
   * is started: QEMU may send its events before the command's answer), then reads its outcome with
   * query-jobs and dismisses it in the same round trip. No polling: a snapshot job holds QEMU's main
   * loop, so the monitor answers nothing while it runs anyway, and the wait ends with QEMU's event.
   * Progress is reported at the end (QEMU 7.2 reports 0/1 then 1/1 for these jobs).
   * @throws VivariumError invalid-state when the VM stopped (Force Off) during the job; qemu-failed
   *  with QEMU's reason; timeout after JOB_TIMEOUT_MS.
   */
  private async runJob(
    vm: DriverVm,
    m: JobMonitor,
    kind: 'save' | 'load' | 'delete',
    start: (jobId: string) => Promise<void>,
    progress?: SnapshotProgress,
  ): Promise<void> {
    const jobId = `viv-${kind}-${randomBytes(4).toString('hex')}`;
    const verb = kind === 'save' ? 'save the snapshot of' : kind === 'load' ? 'revert' : 'delete the snapshot of';
    const stopped = () => qemuEndedError(vm.config.name, kind);
    // Whether the monitor closed under the job (Force Off, QEMU killed or crashed): every command
    // pending then fails with QmpClient's lost-connection error (isQmpLost), which
    // name a QEMU command; the person gets stopped()'s sentence instead.
    let closed = m.closed === true;
    let onEvent: { dispose(): void } | undefined;
    let onClose: { dispose(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const concluded = new Promise<void>((resolve, reject) => {
      onEvent = m.onEvent((e) => {
        if (e.event === 'JOB_STATUS_CHANGE' && e.data.id === jobId && e.data.status === 'concluded') resolve();
      });
      onClose = m.onClose(() => {
        closed = true;
        reject(stopped());
      });
      timer = setTimeout(() => reject(errors.timeout(`QEMU did not ${verb} "${vm.config.name}" within ${JOB_TIMEOUT_MS / 60_000} minutes.`)), JOB_TIMEOUT_MS);
    });
    concluded.catch(() => undefined); // observed below; a failed start must not leave it unhandled
    try {
      const started = start(jobId);
      // QEMU may send the job's last events before the command's own answer: whichever comes last,
      // the outcome is asked for at once (QMP answers in order, so after the command's answer).
      await Promise.race([started.then(() => concluded), concluded]);
      const [, jobs] = await Promise.all([started, m.queryJobs(), m.jobDismiss(jobId).catch(() => undefined)]);
      const job = jobs.find((j) => j.id === jobId);
      if (!job) throw errors.qemu(`QEMU lost track of its job to ${verb} "${vm.config.name}".`);
      if (job.error) throw errors.qemu(`QEMU could not ${verb} "${vm.config.name}": ${job.error}`);
      progress?.(1);
    } catch (e) {
      // Forced off (or crashed) in the middle: the monitor closed under the job.
      if (closed || m.closed === true || isQmpLost(e) || (e instanceof Error && /closed|not connected|ECONNRESET|EPIPE/i.test(e.message) && !(isVivariumError(e) && e.code === 'qemu-failed'))) {
        throw stopped();
      }
      throw e;
    } finally {
      clearTimeout(timer);
      onEvent?.dispose();
      onClose?.dispose();
    }
  }
}
