/**
 * The graphs' memory: every figure of every sample, per host and per VM, in ring buffers sharing
 * one time axis per table, ready to hand to uPlot as `[times, ...values]` views. Pure; the store
 * (stats-store.ts) feeds it from `stats.onDidSample`.
 */
import type { HostStats, StatsSample, VmStats } from '../../main/common/models/stats';
import { RingBuffer } from './ring-buffer';

/** 10 minutes at one sample a second. */
export const HISTORY_POINTS = 600;

export const HOST_KEYS = [
  'cpu',
  'memTotal',
  'memUsed',
  'memCached',
  'memAvailable',
  'swapTotal',
  'swapUsed',
  'diskRead',
  'diskWrite',
  'netRx',
  'netTx',
  'load1',
  'load5',
  'load15',
] as const;
export type HostKey = (typeof HOST_KEYS)[number];

export const VM_KEYS = [
  'cpu',
  'rss',
  'guestTotal',
  'guestAvailable',
  'diskRead',
  'diskWrite',
  'diskReadIops',
  'diskWriteIops',
  'netRx',
  'netTx',
] as const;
export type VmKey = (typeof VM_KEYS)[number];

/** null (the host or guest can't tell) and anything non-finite become NaN: a gap, never a zero. */
export function num(v: number | null | undefined): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN;
}

export function hostValues(h: HostStats): Readonly<Record<HostKey, number>> {
  return {
    cpu: num(h.cpuPercent),
    memTotal: num(h.memTotalBytes),
    memUsed: num(h.memUsedBytes),
    memCached: num(h.memCachedBytes),
    memAvailable: num(h.memAvailableBytes),
    swapTotal: num(h.swapTotalBytes),
    swapUsed: num(h.swapUsedBytes),
    diskRead: num(h.diskReadBps),
    diskWrite: num(h.diskWriteBps),
    netRx: num(h.netRxBps),
    netTx: num(h.netTxBps),
    load1: num(h.load?.[0]),
    load5: num(h.load?.[1]),
    load15: num(h.load?.[2]),
  };
}

export function vmValues(v: VmStats): Readonly<Record<VmKey, number>> {
  return {
    cpu: num(v.cpuPercent),
    rss: num(v.rssBytes),
    guestTotal: num(v.guestMemTotalBytes),
    guestAvailable: num(v.guestMemAvailableBytes),
    diskRead: num(v.diskReadBps),
    diskWrite: num(v.diskWriteBps),
    diskReadIops: num(v.diskReadIops),
    diskWriteIops: num(v.diskWriteIops),
    netRx: num(v.netRxBps),
    netTx: num(v.netTxBps),
  };
}

/**
 * Named columns plus one growable group (host cores, VM vCPUs) over one time column, in seconds
 * (uPlot's time unit). A group member that appears late is back-filled with NaN so every column
 * stays aligned with the time column.
 */
export class SeriesTable<K extends string> {
  readonly time: RingBuffer;
  readonly #columns: ReadonlyMap<K, RingBuffer>;
  readonly #group: RingBuffer[] = [];

  constructor(
    keys: readonly K[],
    readonly capacity: number = HISTORY_POINTS,
  ) {
    this.time = new RingBuffer(capacity);
    this.#columns = new Map(keys.map((k) => [k, new RingBuffer(capacity)]));
  }

  get length(): number {
    return this.time.length;
  }

  /** Seconds since epoch of the newest row, NaN when empty. */
  get lastTime(): number {
    return this.time.last();
  }

  get groupSize(): number {
    return this.#group.length;
  }

  /** Appends a row. Rows must move forward in time: one that does not is ignored (false), since
   *  uPlot needs ascending x and a late sample adds nothing to a live graph. */
  push(atSeconds: number, values: Readonly<Record<K, number>>, group: readonly number[] = []): boolean {
    if (!Number.isFinite(atSeconds) || (this.length > 0 && !(atSeconds > this.lastTime))) return false;
    while (this.#group.length < group.length) {
      const ring = new RingBuffer(this.capacity);
      for (let i = 0; i < this.length; i++) ring.push(Number.NaN);
      this.#group.push(ring);
    }
    this.time.push(atSeconds);
    for (const [k, ring] of this.#columns) ring.push(values[k]);
    this.#group.forEach((ring, i) => ring.push(num(group[i])));
    return true;
  }

  column(key: K): RingBuffer {
    const ring = this.#columns.get(key);
    if (!ring) throw new Error(`No column ${key}`);
    return ring;
  }

  groupColumn(i: number): RingBuffer | undefined {
    return this.#group[i];
  }

  /** `[times, ...columns]` of the newest `n` rows: uPlot's AlignedData. */
  data(keys: readonly K[], n: number = this.capacity): Float64Array[] {
    return [this.time.view(n), ...keys.map((k) => this.column(k).view(n))];
  }

  /** `[times, ...group members 0..count-1]`; missing members read as all-NaN columns. */
  groupData(count: number, n: number = this.capacity): Float64Array[] {
    const times = this.time.view(n);
    const cols: Float64Array[] = [times];
    for (let i = 0; i < count; i++) cols.push(this.#group[i]?.view(n) ?? new Float64Array(times.length).fill(Number.NaN));
    return cols;
  }

  /** Whether any of the columns holds a known value in the newest `n` rows. */
  hasAny(keys: readonly K[], n: number = this.capacity): boolean {
    return keys.some((k) => this.column(k).view(n).some((v) => !Number.isNaN(v)));
  }
}

export type HostTable = SeriesTable<HostKey>;
export type VmTable = SeriesTable<VmKey>;

/** How many rows without a known value before a figure is declared "not available" (the first
 *  sample's rates are often unknown while the engine has only one reading of each counter). */
export const UNAVAILABLE_AFTER_ROWS = 3;

/** True when a figure has been asked for long enough and never came: the graph says so instead of
 *  drawing an empty (or zero) line. */
export function isUnavailable<K extends string>(table: SeriesTable<K> | undefined, keys: readonly K[]): boolean {
  return table !== undefined && table.length >= UNAVAILABLE_AFTER_ROWS && !table.hasAny(keys);
}

/** The host table, and one table per VM (by id) for as long as it reports within the window. */
export class StatsHistory {
  readonly host: HostTable;
  readonly #vms = new Map<string, VmTable>();
  #latest: StatsSample | null = null;

  constructor(readonly capacity: number = HISTORY_POINTS) {
    this.host = new SeriesTable(HOST_KEYS, capacity);
  }

  get latest(): StatsSample | null {
    return this.#latest;
  }

  vm(id: string): VmTable | undefined {
    return this.#vms.get(id);
  }

  get vmIds(): readonly string[] {
    return [...this.#vms.keys()];
  }

  /** The latest figures of each VM in the latest sample, by id (what the library sorts by). */
  latestVmStats(): ReadonlyMap<string, VmStats> {
    return new Map((this.#latest?.vms ?? []).map((v) => [v.id, v]));
  }

  /** Folds one sample in; false when it was older than what we have (and ignored). */
  add(sample: StatsSample): boolean {
    const at = sample.at / 1000;
    if (!this.host.push(at, hostValues(sample.host), sample.host.cpuPerCore)) return false;
    this.#latest = sample;
    for (const v of sample.vms) {
      let table = this.#vms.get(v.id);
      if (!table) {
        table = new SeriesTable(VM_KEYS, this.capacity);
        this.#vms.set(v.id, table);
      }
      table.push(at, vmValues(v), v.vcpuPercent ?? []);
    }
    // A VM not heard of for the whole window (deleted, stopped long ago) has nothing left to draw.
    for (const [id, table] of this.#vms) {
      if (!(table.lastTime > at - this.capacity)) this.#vms.delete(id);
    }
    return true;
  }
}
