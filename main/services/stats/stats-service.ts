/**
 * The stats engine: host and per-VM resource figures for `vivarium stats`, the graphs and any
 * client of the contract's StatsService.
 *
 * A *reading* is a set of raw counters taken at one moment (host: the worker's counters; per VM:
 * QEMU's CPU seconds and RSS, its vCPU threads' CPU seconds, QMP block statistics, the balloon's
 * guest memory view, the guest agent's NIC counters). A *sample* is what two readings say about the
 * time between them; all the counter → rate arithmetic is in rates.ts.
 *
 * - `sample({vm, windowMs})` takes its own two readings `windowMs` apart (default 1000).
 * - `onDidSample` runs one loop, once a second, shared by every listener (all windows, all
 *   clients); it stops when the last listener disposes, and with it the host worker (after the
 *   sampler's short linger).
 *
 * Whatever a VM can't tell is null: no guest agent → no network figures; no balloon stats → no
 * guest memory view; not Linux → no per-vCPU figures. Slow sources are time-boxed so one stuck VM
 * never holds up the others' figures.
 */
import type { Disposable, Event, StatsService } from '../../common/contract';
import { errors } from '../../common/errors';
import type { HostStats, StatsSample, VmStats } from '../../common/models/stats';
import type { VmInfo } from '../../common/models/vm-state';
import { Emitter, toDisposable } from '../emitter';
import type { Layout } from '../paths';
import { QemuIds } from '../qemu/argv';
import { GuestAgentClient } from '../qemu/guest-agent';
import type { QmpClient } from '../qemu/qmp';
import type { HostCounters, TimedCounters } from './host-counters';
import { HostSampler } from './host-sampler';
import { readProcess, readThreadCpuSeconds, type ProcessReading } from './proc-stat';
import { busyPercent, counterRate, cpuPercent, intervalMs, sumCpuTimes, type Stamp } from './rates';

/** What the stats engine needs from the VM manager. */
export interface StatsVmSource {
  listSync(): readonly VmInfo[];
  /** Resolves a name or id; throws not-found. */
  resolve(ref: string): { readonly id: string };
  /** The engine's shared QMP connection to a running VM. */
  qmpFor(id: string): Promise<QmpClient>;
}

export interface StatsEngineOptions {
  readonly vms: StatsVmSource;
  readonly layout: Layout;
  /** Shared host sampler; default: a new one, disposed with this engine. */
  readonly host?: HostSampler;
  /** Live loop period; default 1000 ms. */
  readonly intervalMs?: number;
  /** Each QMP answer (and getting the connection) is given this long; default 1000 ms. */
  readonly qmpTimeoutMs?: number;
  /** The first reading of a VM waits `timeoutMs` (default 400 ms) for the guest agent's NIC
   *  counters; every agent session itself (that first one, the later ones, and the background
   *  looks for an absent agent every `retryMs`, default 5 s) is given `presentTimeoutMs` per
   *  answer (default 1000 ms: a busy guest under TCG answers late; 583 ms was measured). So an
   *  agent that answers after the first reading stopped waiting is still found, and in a one-shot
   *  sample its late answer is that reading's counters. A present agent is only written off after
   *  `presentMisses` answers in a row did not come (default 3). false: never ask. */
  readonly agent?: { readonly timeoutMs?: number; readonly retryMs?: number; readonly presentTimeoutMs?: number; readonly presentMisses?: number } | false;
  /** How often the balloon driver is asked to refresh the guest's memory figures, seconds; default 2. */
  readonly balloonPollSec?: number;
  readonly platform?: NodeJS.Platform;
  readonly log?: (line: string) => void;
}

const DEFAULT_WINDOW_MS = 1000;
/** After QMP or the agent failed for a VM, leave it alone this long (each try costs a time box). */
const QMP_RETRY_MS = 10_000;
// An absent agent is looked for again in the background (a socket connect and one time box, not
// waited for): often enough that a booting guest's figures appear within seconds of its agent.
const AGENT_RETRY_MS = 5_000;

export interface BlockCounters {
  readonly rdBytes: number;
  readonly wrBytes: number;
  readonly rdOps: number;
  readonly wrOps: number;
}

export interface VcpuReading {
  readonly tid: number;
  readonly cpuSeconds: number | null;
}

/**
 * One VM at one moment. `stamp.atMs` is when its /proc figures were read; the counters that come
 * over a socket (QMP, the agent) carry the time their answer arrived, so a slow answer doesn't skew
 * their rates.
 */
export interface VmReading {
  readonly id: string;
  readonly name: string;
  readonly stamp: Stamp;
  readonly proc: ProcessReading | null;
  readonly vcpus: TimedCounters<readonly VcpuReading[]> | null;
  readonly block: TimedCounters<BlockCounters> | null;
  readonly guestMem: { readonly totalBytes: number | null; readonly availableBytes: number | null } | null;
  readonly net: TimedCounters<AgentNetCounters> | null;
}

export interface AgentNetCounters {
  readonly rxBytes: number;
  readonly txBytes: number;
}

export interface Reading {
  readonly host: HostCounters | null;
  readonly vms: ReadonlyMap<string, VmReading>;
  /** Agent answers that came after the reading stopped waiting and fill in a VM's `net` when they
   *  arrive (stamped with their arrival): settled within one agent time box. */
  readonly late?: readonly Promise<void>[];
}

/** A VM reading whose `net` a late agent answer may still fill in. */
type OpenVmReading = { -readonly [K in keyof VmReading]: VmReading[K] };

/** Per VM incarnation (epoch): what we learned about its optional sources. */
interface VmSourceState {
  balloon: 'unknown' | 'polling' | 'absent';
  qmpRetryAt: number;
  agent: 'unknown' | 'probing' | 'present' | 'absent';
  agentRetryAt: number;
  /** Answers in a row a present agent did not give. */
  agentMisses: number;
}

export class StatsEngine implements StatsService {
  private readonly host: HostSampler;
  private readonly ownsHost: boolean;
  private readonly emitter = new Emitter<StatsSample>();
  private loop: { readonly hold: Disposable; timer: NodeJS.Timeout | null; prev: Reading | null } | null = null;
  private readonly sources = new Map<string, VmSourceState>();
  private disposed = false;

  constructor(private readonly options: StatsEngineOptions) {
    this.host = options.host ?? new HostSampler({ log: options.log });
    this.ownsHost = options.host === undefined;
  }

  /** Whether the live loop is running (someone listens to onDidSample). */
  get live(): boolean {
    return this.loop !== null;
  }

  /** The host sampler (tests and benchmarks look at its worker). */
  get hostSampler(): HostSampler {
    return this.host;
  }

  async sample(options: { vm?: string; windowMs?: number } = {}): Promise<StatsSample> {
    if (this.disposed) throw errors.state('The statistics engine has been shut down.');
    const only = options.vm === undefined ? null : this.options.vms.resolve(options.vm).id;
    const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    const hold = this.host.acquire();
    try {
      const first = await this.read(only);
      if (only !== null && !first.vms.has(only)) {
        const info = this.options.vms.listSync().find((v) => v.id === only);
        throw errors.state(`"${info?.name ?? options.vm}" is not running. Start it to see its figures.`);
      }
      // The window runs from the end of the first reading: its first call may include starting the
      // host worker, and the host's disk and network counters are read at most every ~0.5 s.
      await sleep(windowMs);
      const second = await this.read(only);
      // A slow agent's answer to the first reading usually arrived during the window.
      await Promise.all(first.late ?? []);
      return compute(first, second);
    } finally {
      hold.dispose();
    }
  }

  readonly onDidSample: Event<StatsSample> = (listener) => {
    const sub = this.emitter.event(listener);
    this.startLoop();
    return toDisposable(() => {
      sub.dispose();
      if (this.emitter.size === 0) this.stopLoop();
    });
  };

  dispose(): void {
    this.disposed = true;
    this.stopLoop();
    this.emitter.dispose();
    if (this.ownsHost) this.host.dispose();
  }

  // ---- the live loop ---------------------------------------------------------------------------

  private startLoop(): void {
    if (this.loop || this.disposed) return;
    const loop = { hold: this.host.acquire(), timer: null as NodeJS.Timeout | null, prev: null as Reading | null };
    this.loop = loop;
    const period = this.options.intervalMs ?? 1000;
    const tick = async (): Promise<void> => {
      const started = performance.now();
      try {
        const reading = await this.read(null);
        if (this.loop !== loop) return;
        if (loop.prev) this.emitter.fire(compute(loop.prev, reading));
        loop.prev = reading;
      } catch (e) {
        this.options.log?.(`stats: a reading failed: ${(e as Error).message}`);
      }
      if (this.loop !== loop) return;
      // A steady cadence: a slow reading shortens the wait instead of stretching the period.
      loop.timer = setTimeout(() => void tick(), Math.max(0, period - (performance.now() - started)));
    };
    void tick();
  }

  private stopLoop(): void {
    const loop = this.loop;
    if (!loop) return;
    this.loop = null;
    if (loop.timer) clearTimeout(loop.timer);
    loop.hold.dispose();
  }

  // ---- readings --------------------------------------------------------------------------------

  private async read(only: string | null): Promise<Reading> {
    const running = this.options.vms
      .listSync()
      .filter((v) => v.pid !== null && v.startedAt !== null && (v.state === 'running' || v.state === 'paused' || v.state === 'stopping'));
    this.forgetGone(running);
    const targets = only === null ? running : running.filter((v) => v.id === only);
    const late: Promise<void>[] = [];
    const [host, ...vms] = await Promise.all([this.host.read(), ...targets.map((v) => this.readVm(v, late))]);
    return { host: host ?? null, vms: new Map(vms.filter((v): v is VmReading => v !== null).map((v) => [v.id, v])), late };
  }

  /** One VM's reading; a late agent answer is pushed to `late` and fills in `net` when it comes. */
  private async readVm(info: VmInfo, late: Promise<void>[]): Promise<VmReading | null> {
    const pid = info.pid!;
    const epoch = `${pid}@${info.startedAt}`;
    const state = this.sourceState(info.id, epoch);
    const atMs = performance.now();
    const [proc, fromQmp, agent] = await Promise.all([readProcess(pid, this.platform), this.readQmp(info.id, pid, state), this.readAgentNet(info.id, state)]);
    // QEMU exited between listing and reading: it is no longer a running VM.
    if (!proc && !fromQmp) return null;
    const reading: OpenVmReading = {
      id: info.id,
      name: info.name,
      stamp: { epoch, atMs },
      proc,
      vcpus: fromQmp?.vcpus ?? null,
      block: fromQmp?.block ?? null,
      guestMem: fromQmp?.guestMem ?? null,
      net: agent.net,
    };
    if (agent.late) {
      late.push(
        agent.late.then((net) => {
          reading.net ??= net;
        }),
      );
    }
    return reading;
  }

  private get platform(): NodeJS.Platform {
    return this.options.platform ?? process.platform;
  }

  private get qmpTimeout(): number {
    return this.options.qmpTimeoutMs ?? 1000;
  }

  private sourceState(id: string, epoch: string): VmSourceState {
    const key = `${id}/${epoch}`;
    let s = this.sources.get(key);
    if (!s) {
      s = { balloon: 'unknown', qmpRetryAt: 0, agent: 'unknown', agentRetryAt: 0, agentMisses: 0 };
      this.sources.set(key, s);
    }
    return s;
  }

  /** Drops what we learned about VM incarnations that are no longer running. */
  private forgetGone(running: readonly VmInfo[]): void {
    const live = new Set(running.map((v) => `${v.id}/${v.pid}@${v.startedAt}`));
    for (const key of this.sources.keys()) if (!live.has(key)) this.sources.delete(key);
  }

  private async readQmp(
    id: string,
    pid: number,
    state: VmSourceState,
  ): Promise<Pick<VmReading, 'vcpus' | 'block' | 'guestMem'> | null> {
    if (performance.now() < state.qmpRetryAt) return null;
    const qmp = await withTimeout(this.options.vms.qmpFor(id), this.qmpTimeout).catch(() => null);
    if (!qmp) {
      state.qmpRetryAt = performance.now() + QMP_RETRY_MS;
      return null;
    }
    const opts = { timeoutMs: this.qmpTimeout };
    const [block, vcpus, guestMem] = await Promise.all([
      qmp
        .execute<unknown>('query-blockstats', undefined, opts)
        .then((reply) => timed(sumBlockStats(reply)))
        .catch(() => null),
      this.platform === 'linux'
        ? qmp
            .execute<unknown>('query-cpus-fast', undefined, opts)
            .then((cpus) => this.readVcpus(pid, cpus))
            .catch(() => null)
        : Promise.resolve(null),
      this.readBalloon(qmp, state),
    ]);
    return { block, vcpus, guestMem };
  }

  private async readVcpus(pid: number, cpus: unknown): Promise<VmReading['vcpus']> {
    const tids = vcpuThreadIds(cpus);
    if (!tids) return null;
    const seconds = await Promise.all(tids.map((tid) => readThreadCpuSeconds(pid, tid, this.platform)));
    return timed(tids.map((tid, i) => ({ tid, cpuSeconds: seconds[i] ?? null })));
  }

  /**
   * The balloon driver reports the guest's own memory figures only after it is asked to poll
   * (guest-stats-polling-interval); the first figures arrive one interval later.
   */
  private async readBalloon(qmp: QmpClient, state: VmSourceState): Promise<VmReading['guestMem']> {
    if (state.balloon === 'absent') return null;
    const balloonPath = `/machine/peripheral/${QemuIds.balloon}`;
    const opts = { timeoutMs: this.qmpTimeout };
    if (state.balloon === 'unknown') {
      try {
        await qmp.execute(
          'qom-set',
          { path: balloonPath, property: 'guest-stats-polling-interval', value: this.options.balloonPollSec ?? 2 },
          opts,
        );
        state.balloon = 'polling';
      } catch {
        state.balloon = 'absent';
        return null;
      }
    }
    try {
      return parseBalloonStats(await qmp.execute<unknown>('qom-get', { path: balloonPath, property: 'guest-stats' }, opts));
    } catch {
      // "guest hasn't updated any stats yet": no figures for now.
      return null;
    }
  }

  /**
   * NIC counters from the guest agent. Most guests have none, and finding that out costs a whole
   * time box (the socket opens whether or not an agent listens). So the first reading of a VM waits
   * only `timeoutMs` for the answer; the session goes on for the full box, and an answer that comes
   * later marks the agent present and is handed back as `late` (a one-shot sample uses it as its
   * first reading). After that only an agent that answered is waited for, and a missing one is
   * looked for again in the background — with the full box too, since nobody waits for it (a busy
   * TCG guest's agent took 583 ms to sync; a 400 ms look misses such an agent every time, and its
   * figures stayed null while its NIC counters moved).
   */
  private async readAgentNet(id: string, state: VmSourceState): Promise<{ net: VmReading['net']; late: Promise<VmReading['net']> | null }> {
    const agent = this.options.agent;
    if (agent === false) return { net: null, late: null };
    if (state.agent === 'present') {
      const net = await this.askAgent(id);
      if (net) {
        state.agentMisses = 0;
      } else if (++state.agentMisses >= (agent?.presentMisses ?? 3)) {
        // Not a late answer or two from a busy guest (a gap in the graph): the agent is gone.
        state.agent = 'absent';
        state.agentRetryAt = performance.now() + this.agentRetryMs;
      }
      return { net, late: null };
    }
    if (state.agent === 'unknown') {
      const probe = this.probeAgent(id, state);
      const early = await within(probe, agent?.timeoutMs ?? 400);
      return early === undefined ? { net: null, late: probe } : { net: early, late: null };
    }
    // Concurrent readings (the live loop and a one-shot sample) don't probe the same VM twice.
    if (state.agent === 'absent' && performance.now() >= state.agentRetryAt) void this.probeAgent(id, state);
    return { net: null, late: null };
  }

  private get agentRetryMs(): number {
    return (this.options.agent === false ? undefined : this.options.agent?.retryMs) ?? AGENT_RETRY_MS;
  }

  /** Looks for the agent (one full-box session) and records whether it answered. */
  private async probeAgent(id: string, state: VmSourceState): Promise<VmReading['net']> {
    state.agent = 'probing';
    const net = await this.askAgent(id);
    state.agent = net ? 'present' : 'absent';
    state.agentMisses = 0;
    if (!net) state.agentRetryAt = performance.now() + this.agentRetryMs;
    return net;
  }

  /** One agent session, each answer time-boxed; null when no agent answers or it has no NIC statistics. */
  private async askAgent(id: string): Promise<VmReading['net']> {
    const agent = this.options.agent;
    const timeoutMs = (agent === false ? undefined : agent?.presentTimeoutMs) ?? 1000;
    let client: GuestAgentClient | null = null;
    try {
      client = await GuestAgentClient.connect(this.options.layout.runtime(id).qga, { timeoutMs });
      return timed(sumAgentNet(await client.execute<unknown>('guest-network-get-interfaces', undefined, { timeoutMs })));
    } catch {
      return null;
    } finally {
      // Closed at once: the agent's socket takes one client at a time, and others may need it.
      client?.close();
    }
  }
}

// ---- pure parts ----------------------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * query-blockstats summed over the devices the guest sees (entries with a qdev path; with -blockdev
 * the legacy `device` name is ""). Backing and protocol nodes are not listed separately at the top
 * level, so nothing is counted twice.
 */
export function sumBlockStats(reply: unknown): BlockCounters | null {
  if (!Array.isArray(reply)) return null;
  let found = false;
  const sum = { rdBytes: 0, wrBytes: 0, rdOps: 0, wrOps: 0 };
  for (const entry of reply) {
    if (!isRecord(entry) || typeof entry.qdev !== 'string' || entry.qdev === '' || !isRecord(entry.stats)) continue;
    const s = entry.stats;
    const rd = num(s.rd_bytes);
    const wr = num(s.wr_bytes);
    const rdo = num(s.rd_operations);
    const wro = num(s.wr_operations);
    if (rd === null || wr === null || rdo === null || wro === null) continue;
    found = true;
    sum.rdBytes += rd;
    sum.wrBytes += wr;
    sum.rdOps += rdo;
    sum.wrOps += wro;
  }
  return found ? sum : null;
}

/** vCPU thread ids in cpu-index order; null when threads are shared (single-threaded TCG) or unknown. */
export function vcpuThreadIds(reply: unknown): readonly number[] | null {
  if (!Array.isArray(reply) || reply.length === 0) return null;
  const cpus: { index: number; tid: number }[] = [];
  for (const c of reply) {
    if (!isRecord(c)) return null;
    const index = num(c['cpu-index']);
    const tid = num(c['thread-id']);
    if (index === null || tid === null || tid <= 0) return null;
    cpus.push({ index, tid });
  }
  cpus.sort((a, b) => a.index - b.index);
  const tids = cpus.map((c) => c.tid);
  // One thread for all vCPUs would report the same total for each: that's not a per-vCPU figure.
  return new Set(tids).size === tids.length ? tids : null;
}

/** The balloon's `guest-stats`: QEMU reports -1 for figures the guest didn't send. */
export function parseBalloonStats(reply: unknown): VmReading['guestMem'] {
  if (!isRecord(reply) || !isRecord(reply.stats) || !(num(reply['last-update']) ?? 0)) return null;
  const pick = (k: string): number | null => {
    const v = num((reply.stats as Record<string, unknown>)[k]);
    return v !== null && v >= 0 ? v : null;
  };
  const totalBytes = pick('stat-total-memory');
  const availableBytes = pick('stat-available-memory');
  return totalBytes === null && availableBytes === null ? null : { totalBytes, availableBytes };
}

/** guest-network-get-interfaces: bytes over all interfaces but loopback; null without statistics. */
export function sumAgentNet(reply: unknown): AgentNetCounters | null {
  if (!Array.isArray(reply)) return null;
  let rxBytes = 0;
  let txBytes = 0;
  let found = false;
  for (const nic of reply) {
    if (!isRecord(nic) || nic.name === 'lo' || !isRecord(nic.statistics)) continue;
    const rx = num(nic.statistics['rx-bytes']);
    const tx = num(nic.statistics['tx-bytes']);
    if (rx === null || tx === null) continue;
    rxBytes += rx;
    txBytes += tx;
    found = true;
  }
  return found ? { rxBytes, txBytes } : null;
}

const NO_HOST: HostStats = {
  cpuPercent: null,
  cpuPerCore: [],
  memTotalBytes: null,
  memUsedBytes: null,
  memCachedBytes: null,
  memAvailableBytes: null,
  swapTotalBytes: null,
  swapUsedBytes: null,
  diskReadBps: null,
  diskWriteBps: null,
  netRxBps: null,
  netTxBps: null,
  load: null,
};

/** Host figures for the time between two readings of the worker's counters. */
export function hostStats(prev: HostCounters | null, next: HostCounters | null): HostStats {
  if (!next) return NO_HOST;
  const same = prev !== null && prev.epoch === next.epoch;
  const cores = same && prev.cpus.length === next.cpus.length ? next.cpus.map((c, i) => busyPercent(prev.cpus[i], c)) : [];
  const perCore = cores.every((c): c is number => c !== null) ? cores : [];
  const groupDt = (a: { atMs: number } | null | undefined, b: { atMs: number } | null | undefined): number | null =>
    same && a && b ? intervalMs({ epoch: next.epoch, atMs: a.atMs }, { epoch: next.epoch, atMs: b.atMs }) : null;
  const diskDt = groupDt(prev?.disk, next.disk);
  const netDt = groupDt(prev?.net, next.net);
  return {
    cpuPercent: same && prev.cpus.length === next.cpus.length ? busyPercent(sumCpuTimes(prev.cpus), sumCpuTimes(next.cpus)) : null,
    cpuPerCore: perCore,
    memTotalBytes: next.mem?.totalBytes ?? null,
    memUsedBytes: next.mem?.usedBytes ?? null,
    memCachedBytes: next.mem?.cachedBytes ?? null,
    memAvailableBytes: next.mem?.availableBytes ?? null,
    swapTotalBytes: next.mem?.swapTotalBytes ?? null,
    swapUsedBytes: next.mem?.swapUsedBytes ?? null,
    diskReadBps: counterRate(prev?.disk?.values.readBytes, next.disk?.values.readBytes, diskDt),
    diskWriteBps: counterRate(prev?.disk?.values.writeBytes, next.disk?.values.writeBytes, diskDt),
    netRxBps: counterRate(prev?.net?.values.rxBytes, next.net?.values.rxBytes, netDt),
    netTxBps: counterRate(prev?.net?.values.txBytes, next.net?.values.txBytes, netDt),
    load: next.load,
  };
}

/** One VM's figures between two readings; `prev` from another incarnation (restart) gives no rates. */
export function vmStats(prev: VmReading | null, next: VmReading): VmStats {
  const epoch = next.stamp.epoch;
  const same = prev !== null && prev.stamp.epoch === epoch;
  // Each group of counters has its own reading time; all of them belong to the VM's epoch.
  const dt = (a: { readonly atMs: number } | null | undefined, b: { readonly atMs: number } | null | undefined): number | null =>
    same && a && b ? intervalMs({ epoch, atMs: a.atMs }, { epoch, atMs: b.atMs }) : null;
  const p = same ? prev : null;
  const procDt = dt(p?.stamp, next.stamp);
  const blockDt = dt(p?.block, next.block);
  const netDt = dt(p?.net, next.net);
  const pb = p?.block?.values;
  const nb = next.block?.values;
  return {
    name: next.name,
    id: next.id,
    cpuPercent: cpuPercent(p?.proc?.cpuSeconds, next.proc?.cpuSeconds, procDt),
    vcpuPercent: vcpuPercents(p?.vcpus?.values ?? null, next.vcpus?.values ?? null, dt(p?.vcpus, next.vcpus)),
    rssBytes: next.proc?.rssBytes ?? null,
    guestMemTotalBytes: next.guestMem?.totalBytes ?? null,
    guestMemAvailableBytes: next.guestMem?.availableBytes ?? null,
    diskReadBps: counterRate(pb?.rdBytes, nb?.rdBytes, blockDt),
    diskWriteBps: counterRate(pb?.wrBytes, nb?.wrBytes, blockDt),
    diskReadIops: counterRate(pb?.rdOps, nb?.rdOps, blockDt),
    diskWriteIops: counterRate(pb?.wrOps, nb?.wrOps, blockDt),
    netRxBps: counterRate(p?.net?.values.rxBytes, next.net?.values.rxBytes, netDt),
    netTxBps: counterRate(p?.net?.values.txBytes, next.net?.values.txBytes, netDt),
  };
}

function vcpuPercents(prev: readonly VcpuReading[] | null, next: readonly VcpuReading[] | null, dt: number | null): readonly number[] | null {
  if (!prev || !next || prev.length !== next.length) return null;
  const out: number[] = [];
  for (const [i, n] of next.entries()) {
    const p = prev[i]!;
    // A different thread under the same index (vCPU unplugged and plugged) starts from zero.
    const v = p.tid === n.tid ? cpuPercent(p.cpuSeconds, n.cpuSeconds, dt) : null;
    if (v === null) return null;
    out.push(v);
  }
  return out;
}

function compute(prev: Reading, next: Reading): StatsSample {
  const vms = [...next.vms.values()]
    .map((v) => vmStats(prev.vms.get(v.id) ?? null, v))
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  return { at: Date.now(), host: hostStats(prev.host, next.host), vms };
}

/** Counters stamped with the moment they arrived (null stays null). */
function timed<T>(values: T | null): TimedCounters<T> | null {
  return values === null ? null : { atMs: performance.now(), values };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What `p` resolves to if it does so within `ms`, else undefined (`p` goes on). */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    void p.then((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  p.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(errors.timeout(`No answer within ${ms} ms.`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
