/**
 * Jobs: what is being done to a VM right now, within this engine — modelled on libvirt's domain jobs
 * (src/hypervisor/domain_job.h, docs "qemu driver threading": `virDomainObjBeginJob`,
 * `VIR_JOB_QUERY` / `VIR_JOB_DESTROY` / `VIR_JOB_MODIFY`, and async jobs with a mask of what may run
 * meanwhile).
 *
 * - query jobs (send keys, screenshots, reading state) never wait and are never refused;
 * - a destroy job (Force Off) may run alongside anything but another destroy, so a long job can never
 *   keep a person from powering a VM off;
 * - a mutating job (start, stop, edit, delete, pause, resume, reset) or a long async one (a snapshot
 *   save, a disk convert) runs alone: a second one is refused with a sentence that names the running
 *   one ("… is busy: a snapshot is being saved (started 12 s ago). Wait for it, or force it off."), except
 *   that a short mutating job first waits (up to `waitMs`) for another short one to end, as libvirt
 *   waits for its state change lock.
 *
 * Cross-process exclusion (two CLIs) is the start lock's job (start-lock.ts), not this one's.
 */
import { ErrorCode, VivariumError } from '../../common/errors';

/** libvirt's job classes. */
export type JobKind = 'query' | 'destroy' | 'modify' | 'async';

export interface JobSpec {
  readonly kind: JobKind;
  /** What may run while this job runs (libvirt's async job mask). */
  readonly allows: readonly JobKind[];
  /** Long jobs refuse a conflicting job at once; short ones make it wait up to `waitMs`. */
  readonly long: boolean;
  /** The job as a clause: "<name> is busy: …". */
  readonly doing: string;
}

const MUTATING_MASK: readonly JobKind[] = ['query', 'destroy'];

/** Every job the engine knows. */
export const JOBS = {
  query: { kind: 'query', allows: ['query', 'destroy', 'modify', 'async'], long: false, doing: 'it is being read' },
  sendKeys: { kind: 'query', allows: ['query', 'destroy', 'modify', 'async'], long: false, doing: 'keys are being sent to it' },
  screenshot: { kind: 'query', allows: ['query', 'destroy', 'modify', 'async'], long: false, doing: 'its screen is being captured' },
  forceOff: { kind: 'destroy', allows: ['query'], long: true, doing: 'it is being forced off' },
  start: { kind: 'modify', allows: MUTATING_MASK, long: true, doing: 'it is being started' },
  stop: { kind: 'modify', allows: MUTATING_MASK, long: true, doing: 'it is shutting down' },
  edit: { kind: 'modify', allows: MUTATING_MASK, long: false, doing: 'its settings are being changed' },
  delete: { kind: 'modify', allows: MUTATING_MASK, long: false, doing: 'it is being deleted' },
  pause: { kind: 'modify', allows: MUTATING_MASK, long: false, doing: 'it is being paused' },
  resume: { kind: 'modify', allows: MUTATING_MASK, long: false, doing: 'it is being resumed' },
  reset: { kind: 'modify', allows: MUTATING_MASK, long: false, doing: 'it is being reset' },
  snapshotSave: { kind: 'async', allows: MUTATING_MASK, long: true, doing: 'a snapshot is being saved' },
  diskConvert: { kind: 'async', allows: MUTATING_MASK, long: true, doing: 'a disk is being converted' },
  snapshotLoad: { kind: 'async', allows: MUTATING_MASK, long: true, doing: 'it is being reverted to a snapshot' },
  snapshotDelete: { kind: 'async', allows: MUTATING_MASK, long: true, doing: 'a snapshot is being deleted' },
  snapshotEdit: { kind: 'modify', allows: MUTATING_MASK, long: false, doing: 'a snapshot is being renamed' },
  clone: { kind: 'async', allows: MUTATING_MASK, long: true, doing: 'it is being cloned' },
  suspend: { kind: 'async', allows: MUTATING_MASK, long: true, doing: 'it is being suspended' },
} as const satisfies Record<string, JobSpec>;

export type JobName = keyof typeof JOBS;

export interface RunningJob {
  readonly name: JobName;
  readonly spec: JobSpec;
  /** Milliseconds since the epoch (the Jobs clock). */
  readonly startedAt: number;
}

interface Slot extends RunningJob {
  readonly ended: Promise<void>;
  readonly end: () => void;
}

/** How long a short job waits for another short one by default: libvirt's VIR_JOB_WAIT_TIME is 30 s. */
export const DEFAULT_JOB_WAIT_MS = 30_000;

export interface JobsOptions {
  /** Milliseconds since the epoch; a fake clock in tests. */
  readonly now?: () => number;
}

/** Whether `next` may begin while `running` runs: the running job's mask decides (as in libvirt,
 *  where the mask belongs to the async job in progress). */
export function compatible(running: JobSpec, next: JobSpec): boolean {
  return running.allows.includes(next.kind);
}

export class Jobs {
  private readonly byVm = new Map<string, Slot[]>();
  /** afterJobs() callbacks, by VM id, waiting for its jobs to end. */
  private readonly waiting = new Map<string, (() => void)[]>();
  private readonly now: () => number;

  constructor(options: JobsOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Calls `fn` once no job holds VM `id` (see holds(); at once when none does, else right after the
   * last one ends, before its `run` promise settles for the caller). For change events: a change announced
   * while the job that made it still holds the VM lets a listener act on it and be refused as busy
   * (a Delete right after a Force Off), so every change a job makes is announced after it.
   */
  afterJobs(id: string, fn: () => void): void {
    if (!this.holds(id)) {
      fn();
      return;
    }
    const waiting = this.waiting.get(id) ?? [];
    waiting.push(fn);
    this.waiting.set(id, waiting);
  }

  /** Resolves once no job holds VM `id` (see afterJobs). */
  idle(id: string): Promise<void> {
    return new Promise((resolve) => this.afterJobs(id, resolve));
  }

  /** Whether a job that could refuse another runs on VM `id` (anything but a query job). */
  holds(id: string): boolean {
    return (this.byVm.get(id) ?? []).some((s) => s.spec.kind !== 'query');
  }

  /** The jobs running on VM `id`, oldest first. */
  running(id: string): readonly RunningJob[] {
    return (this.byVm.get(id) ?? []).map(({ name, spec, startedAt }) => ({ name, spec, startedAt }));
  }

  /**
   * Begins job `name` on VM `id` at once, or throws. Returns the function that ends it (idempotent).
   * @param vmName for the sentence
   * @throws VivariumError busy — a running job does not allow this one.
   */
  begin(id: string, vmName: string, name: JobName): () => void {
    const spec: JobSpec = JOBS[name];
    const slots = this.byVm.get(id) ?? [];
    const clash = slots.find((s) => !compatible(s.spec, spec));
    if (clash) throw this.busyError(vmName, clash, spec);
    let end!: () => void;
    const ended = new Promise<void>((r) => (end = r));
    const slot: Slot = {
      name,
      spec,
      startedAt: this.now(),
      ended,
      end: () => {
        const list = this.byVm.get(id);
        if (!list) return;
        const i = list.indexOf(slot);
        if (i < 0) return;
        list.splice(i, 1);
        if (list.length === 0) this.byVm.delete(id);
        if (!this.holds(id)) {
          const waiting = this.waiting.get(id) ?? [];
          this.waiting.delete(id);
          for (const fn of waiting) {
            try {
              fn();
            } catch {
              // a listener's failure must not keep the job from ending
            }
          }
        }
        end();
      },
    };
    slots.push(slot);
    this.byVm.set(id, slots);
    return slot.end;
  }

  /**
   * Runs `fn` as job `name` on VM `id`. A short job that clashes with another short job waits for it
   * (up to `waitMs`, default 30 s) and tries again; a clash with a long job is refused at once.
   * @throws VivariumError busy — naming the running job.
   */
  async run<T>(id: string, vmName: string, name: JobName, fn: () => Promise<T>, options: { readonly waitMs?: number } = {}): Promise<T> {
    const spec: JobSpec = JOBS[name];
    const waitMs = options.waitMs ?? DEFAULT_JOB_WAIT_MS;
    const deadline = this.now() + waitMs;
    for (;;) {
      const clash = (this.byVm.get(id) ?? []).find((s) => !compatible(s.spec, spec));
      if (!clash) break;
      const left = deadline - this.now();
      if (clash.spec.long || spec.long || left <= 0) throw this.busyError(vmName, clash, spec);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([clash.ended, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
    const end = this.begin(id, vmName, name);
    try {
      return await fn();
    } finally {
      end();
    }
  }

  private busyError(vmName: string, clash: RunningJob, wanted: JobSpec): VivariumError {
    const secs = Math.max(0, Math.round((this.now() - clash.startedAt) / 1000));
    const remedy = wanted.kind === 'destroy' ? 'Wait for it.' : 'Wait for it, or force it off.';
    return new VivariumError(
      ErrorCode.Busy,
      `"${vmName}" is busy: ${clash.spec.doing} (started ${secs} s ago). ${remedy}`,
      { job: clash.name, startedAt: new Date(clash.startedAt).toISOString() },
      { remedy: wanted.kind === 'destroy' ? { kind: 'retry-later' } : { kind: 'force-stop', vm: vmName } },
    );
  }
}
