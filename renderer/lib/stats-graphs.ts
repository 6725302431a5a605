/**
 * What each resource graph shows: its accessible name, unit, series (with colours), where its
 * columns come from and how its current value reads. Pure data and functions over StatsHistory,
 * so the views stay declarative and the summaries are testable without a DOM.
 */
import { formatBytes, formatPercent, UNKNOWN } from '../../main/common/format';
import type { HostKey, StatsHistory, VmKey } from './stats-series';
import { formatValue, type UnitKind } from './stats-units';

export interface GraphSeriesSpec {
  readonly label: string;
  /** A CSS custom property holding the colour, e.g. `--graph-1` (themes swap it). */
  readonly color: string;
  /** Why the figure may be missing, said in the legend next to its "—" ("guest not running"). */
  readonly missing?: string;
}

export interface GraphSpec {
  /** The accessible name, e.g. "CPU usage graph". */
  readonly name: string;
  readonly unit: UnitKind;
  readonly series: readonly GraphSeriesSpec[];
  /** `[times, ...one column per series]` of the newest `points` rows, or null when there are none. */
  readonly read: (h: StatsHistory, points: number) => readonly Float64Array[] | null;
  /** A fixed top for the value axis (100 for host CPU %, total memory for memory). */
  readonly fixedMax?: (h: StatsHistory) => number | undefined;
  /** The current value(s) as text: "12.3%", "read 1 MiB/s · write 0 B/s". */
  readonly summary: (h: StatsHistory) => string;
}

// ---- time range and legend -----------------------------------------------------------------------

/** The time ranges a full-size graph offers, in seconds. The store keeps one sample a second, so a
 *  range is also the number of rows a graph reads. Graphs open on the shortest: a 10-minute axis is
 *  empty for the first minutes. */
export const GRAPH_RANGES = [60, 600] as const;
export type GraphRange = (typeof GRAPH_RANGES)[number];
export const DEFAULT_GRAPH_RANGE: GraphRange = 60;

/** "1 min", "10 min": the range's button. */
export function rangeLabel(sec: number): string {
  return `${Math.round(sec / 60)} min`;
}

/** "the last minute", "the last 10 minutes": the range in a sentence. */
export function rangeText(sec: number): string {
  const min = Math.round(sec / 60);
  return min === 1 ? 'the last minute' : `the last ${min} minutes`;
}

/**
 * A series' value in the legend: the one under the pointer (`idx`, a row of `column`), or, when the
 * pointer is not on the graph (`idx` null), the latest one, so the legend always reads. A missing
 * figure shows as "—", followed by why when the series knows (`missing`).
 */
export function legendValue(unit: UnitKind, column: ArrayLike<number | null> | undefined, idx: number | null, missing?: string): string {
  const v = idx === null ? (column && column.length > 0 ? column[column.length - 1] : null) : column?.[idx];
  const text = formatValue(unit, v);
  return missing && (v === null || v === undefined || Number.isNaN(v)) ? `${text} (${missing})` : text;
}

/** Why a VM's guest memory figures are missing: they come from the guest's virtio-balloon driver
 *  (QEMU's balloon `guest-stats`), which reports only while the guest runs and has the driver. */
export function guestMemoryMissing(live: boolean): string {
  return live ? 'not reported by the guest: needs its virtio-balloon driver' : 'guest not running';
}

/** A palette of custom properties for graphs with many series (per-core CPU). */
export const PALETTE = ['--graph-1', '--graph-2', '--graph-3', '--graph-4', '--graph-5', '--graph-6', '--graph-7', '--graph-8'] as const;

const color = (i: number): string => PALETTE[i % PALETTE.length]!;

function hostLast(h: StatsHistory, k: HostKey): number {
  return h.host.column(k).last();
}

function vmLast(h: StatsHistory, id: string, k: VmKey): number {
  return h.vm(id)?.column(k).last() ?? Number.NaN;
}

function hostSeries(keys: readonly HostKey[]): GraphSpec['read'] {
  return (h, n) => (h.host.length > 0 ? h.host.data(keys, n) : null);
}

function vmSeries(id: string, keys: readonly VmKey[]): GraphSpec['read'] {
  return (h, n) => h.vm(id)?.data(keys, n) ?? null;
}

/** "4 GiB of 8 GiB"; "—" parts for what is unknown. */
function ofTotal(used: number, total: number): string {
  return `${formatBytes(used)} of ${formatBytes(total)}`;
}

const pair = (a: string, b: string): string => `${a} · ${b}`;

/** Host CPU total: 0–100 %. */
export function hostCpuGraph(name = 'CPU usage graph'): GraphSpec {
  return {
    name,
    unit: 'percent',
    series: [{ label: 'CPU', color: '--graph-1' }],
    read: hostSeries(['cpu']),
    fixedMax: () => 100,
    summary: (h) => formatPercent(hostLast(h, 'cpu')),
  };
}

export function hostCoresGraph(cores: number): GraphSpec {
  return {
    name: 'CPU usage per core graph',
    unit: 'percent',
    series: Array.from({ length: cores }, (_, i) => ({ label: `Core ${i}`, color: color(i) })),
    read: (h, n) => (h.host.length > 0 ? h.host.groupData(cores, n) : null),
    fixedMax: () => 100,
    summary: (h) => {
      const values = Array.from({ length: cores }, (_, i) => h.host.groupColumn(i)?.last() ?? Number.NaN);
      const known = values.filter((v) => !Number.isNaN(v));
      if (known.length === 0) return UNKNOWN;
      return `${cores === 1 ? '1 core' : `${cores} cores`}, busiest ${formatPercent(Math.max(...known))}`;
    },
  };
}

export function hostMemoryGraph(): GraphSpec {
  return {
    name: 'Memory usage graph',
    unit: 'bytes',
    series: [
      { label: 'Used', color: '--graph-1' },
      { label: 'Cached', color: '--graph-3' },
      { label: 'Available', color: '--graph-2' },
    ],
    read: hostSeries(['memUsed', 'memCached', 'memAvailable']),
    fixedMax: (h) => hostLast(h, 'memTotal'),
    summary: (h) => ofTotal(hostLast(h, 'memUsed'), hostLast(h, 'memTotal')),
  };
}

/** The library strip's memory: used against the total. */
export function hostMemorySpark(): GraphSpec {
  return { ...hostMemoryGraph(), name: 'Host memory usage graph', series: [{ label: 'Used', color: '--graph-1' }], read: hostSeries(['memUsed']) };
}

export function hostSwapGraph(): GraphSpec {
  return {
    name: 'Swap usage graph',
    unit: 'bytes',
    series: [{ label: 'Used', color: '--graph-4' }],
    read: hostSeries(['swapUsed']),
    fixedMax: (h) => hostLast(h, 'swapTotal'),
    summary: (h) => (hostLast(h, 'swapTotal') === 0 ? 'No swap' : ofTotal(hostLast(h, 'swapUsed'), hostLast(h, 'swapTotal'))),
  };
}

export function hostDiskGraph(name = 'Disk throughput graph'): GraphSpec {
  return {
    name,
    unit: 'rate',
    series: [
      { label: 'Read', color: '--graph-2' },
      { label: 'Write', color: '--graph-5' },
    ],
    read: hostSeries(['diskRead', 'diskWrite']),
    summary: (h) => pair(`read ${formatValue('rate', hostLast(h, 'diskRead'))}`, `write ${formatValue('rate', hostLast(h, 'diskWrite'))}`),
  };
}

export function hostNetworkGraph(name = 'Network throughput graph'): GraphSpec {
  return {
    name,
    unit: 'rate',
    series: [
      { label: 'Received', color: '--graph-3' },
      { label: 'Sent', color: '--graph-6' },
    ],
    read: hostSeries(['netRx', 'netTx']),
    summary: (h) => pair(`in ${formatValue('rate', hostLast(h, 'netRx'))}`, `out ${formatValue('rate', hostLast(h, 'netTx'))}`),
  };
}

export function hostLoadGraph(): GraphSpec {
  return {
    name: 'Load average graph',
    unit: 'count',
    series: [
      { label: '1 min', color: '--graph-1' },
      { label: '5 min', color: '--graph-2' },
      { label: '15 min', color: '--graph-3' },
    ],
    read: hostSeries(['load1', 'load5', 'load15']),
    // Load is per runnable thread: the core count is where a host is fully busy.
    fixedMax: (h) => h.host.groupSize || undefined,
    summary: (h) => [hostLast(h, 'load1'), hostLast(h, 'load5'), hostLast(h, 'load15')].map((v) => formatValue('count', v)).join(' · '),
  };
}

// ---- per VM ------------------------------------------------------------------------------------

/** QEMU's CPU use; 100 % is one host core, so a busy multi-vCPU guest goes past 100. */
export function vmCpuGraph(id: string, name = 'CPU usage graph'): GraphSpec {
  return {
    name,
    unit: 'percent',
    series: [{ label: 'QEMU CPU', color: '--graph-1' }],
    read: vmSeries(id, ['cpu']),
    fixedMax: () => 100,
    summary: (h) => formatPercent(vmLast(h, id, 'cpu')),
  };
}

export function vmCpusGraph(id: string, count: number): GraphSpec {
  return {
    name: 'Per-vCPU usage graph',
    unit: 'percent',
    series: Array.from({ length: count }, (_, i) => ({ label: `vCPU ${i}`, color: color(i) })),
    read: (h, n) => h.vm(id)?.groupData(count, n) ?? null,
    fixedMax: () => 100,
    summary: (h) => Array.from({ length: count }, (_, i) => formatPercent(h.vm(id)?.groupColumn(i)?.last())).join(' · '),
  };
}

/** QEMU's resident memory and the guest's own figures; `live`: whether the VM runs now (the legend
 *  then says why a guest figure is missing). */
export function vmMemoryGraph(id: string, live = true): GraphSpec {
  const missing = guestMemoryMissing(live);
  return {
    name: 'Memory usage graph',
    unit: 'bytes',
    series: [
      { label: 'QEMU resident', color: '--graph-1' },
      { label: 'Guest total', color: '--graph-3', missing },
      { label: 'Guest available', color: '--graph-2', missing },
    ],
    read: vmSeries(id, ['rss', 'guestTotal', 'guestAvailable']),
    summary: (h) => {
      const rss = `resident ${formatBytes(vmLast(h, id, 'rss'))}`;
      const total = vmLast(h, id, 'guestTotal');
      return Number.isNaN(total) ? rss : pair(rss, `guest ${formatBytes(vmLast(h, id, 'guestAvailable'))} free of ${formatBytes(total)}`);
    },
  };
}

export function vmDiskGraph(id: string): GraphSpec {
  return {
    name: 'Disk throughput graph',
    unit: 'rate',
    series: [
      { label: 'Read', color: '--graph-2' },
      { label: 'Write', color: '--graph-5' },
    ],
    read: vmSeries(id, VM_DISK_KEYS),
    summary: (h) => pair(`read ${formatValue('rate', vmLast(h, id, 'diskRead'))}`, `write ${formatValue('rate', vmLast(h, id, 'diskWrite'))}`),
  };
}

export function vmIopsGraph(id: string): GraphSpec {
  return {
    name: 'Disk operations graph',
    unit: 'iops',
    series: [
      { label: 'Reads', color: '--graph-2' },
      { label: 'Writes', color: '--graph-5' },
    ],
    read: vmSeries(id, VM_IOPS_KEYS),
    summary: (h) => pair(`read ${formatValue('iops', vmLast(h, id, 'diskReadIops'))}`, `write ${formatValue('iops', vmLast(h, id, 'diskWriteIops'))}`),
  };
}

export const VM_NET_KEYS: readonly VmKey[] = ['netRx', 'netTx'];

export function vmNetworkGraph(id: string): GraphSpec {
  return {
    name: 'Network throughput graph',
    unit: 'rate',
    series: [
      { label: 'Received', color: '--graph-3' },
      { label: 'Sent', color: '--graph-6' },
    ],
    read: vmSeries(id, VM_NET_KEYS),
    summary: (h) => pair(`in ${formatValue('rate', vmLast(h, id, 'netRx'))}`, `out ${formatValue('rate', vmLast(h, id, 'netTx'))}`),
  };
}

/** What the Network graph says when the guest does not report its traffic. */
export const NET_UNAVAILABLE = 'Not available: needs the QEMU guest agent in the guest';

export const VM_DISK_KEYS: readonly VmKey[] = ['diskRead', 'diskWrite'];
export const VM_IOPS_KEYS: readonly VmKey[] = ['diskReadIops', 'diskWriteIops'];

/** What the disk graphs say when QEMU reports no block statistics (a VM without disks). */
export const DISK_UNAVAILABLE = 'Not available for this VM (no disk statistics)';
