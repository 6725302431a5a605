import { describe, expect, it } from 'vitest';
import type { HostStats, StatsSample, VmStats } from '../../main/common/models/stats';
import {
  DEFAULT_GRAPH_RANGE,
  GRAPH_RANGES,
  guestMemoryMissing,
  hostCoresGraph,
  hostCpuGraph,
  hostDiskGraph,
  hostLoadGraph,
  hostMemoryGraph,
  hostSwapGraph,
  legendValue,
  rangeLabel,
  rangeText,
  vmCpuGraph,
  vmCpusGraph,
  vmMemoryGraph,
  vmNetworkGraph,
} from './stats-graphs';
import { StatsHistory } from './stats-series';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const host: HostStats = {
  cpuPercent: 12.34,
  cpuPerCore: [10, 40],
  memTotalBytes: 8 * GiB,
  memUsedBytes: 4 * GiB,
  memCachedBytes: GiB,
  memAvailableBytes: 3 * GiB,
  swapTotalBytes: 0,
  swapUsedBytes: 0,
  diskReadBps: 1.5 * MiB,
  diskWriteBps: null,
  netRxBps: 0,
  netTxBps: 0,
  load: [0.5, 0.25, 1],
};

const vm: VmStats = {
  name: 'a',
  id: 'id-a',
  cpuPercent: 150,
  vcpuPercent: [100, 50],
  rssBytes: 300 * MiB,
  guestMemTotalBytes: null,
  guestMemAvailableBytes: null,
  diskReadBps: 0,
  diskWriteBps: 0,
  diskReadIops: 0,
  diskWriteIops: 0,
  netRxBps: null,
  netTxBps: null,
};

function history(...samples: StatsSample[]): StatsHistory {
  const h = new StatsHistory(600);
  for (const s of samples) h.add(s);
  return h;
}

describe('graph specs', () => {
  const h = history({ at: 1000, host, vms: [vm] }, { at: 2000, host, vms: [{ ...vm, guestMemTotalBytes: GiB, guestMemAvailableBytes: 512 * MiB }] });

  it('read [times, ...one column per series], null when there is nothing to draw', () => {
    const mem = hostMemoryGraph().read(h, 600)!;
    expect(mem).toHaveLength(1 + hostMemoryGraph().series.length);
    expect(Array.from(mem[0]!)).toEqual([1, 2]);
    expect(vmCpuGraph('nope').read(h, 600)).toBeNull();
    expect(hostCpuGraph().read(new StatsHistory(), 600)).toBeNull();
    expect(vmCpusGraph('id-a', 2).read(h, 1)!.map((c) => Array.from(c))).toEqual([[2], [100], [50]]);
  });

  it('summarise the current values in natural units', () => {
    expect(hostCpuGraph().summary(h)).toBe('12.3%');
    expect(hostCoresGraph(2).summary(h)).toBe('2 cores, busiest 40.0%');
    expect(hostMemoryGraph().summary(h)).toBe('4 GiB of 8 GiB');
    expect(hostSwapGraph().summary(h)).toBe('No swap');
    expect(hostDiskGraph().summary(h)).toBe('read 1.5 MiB/s · write —');
    expect(hostLoadGraph().summary(h)).toBe('0.50 · 0.25 · 1.00');
    expect(vmCpuGraph('id-a').summary(h)).toBe('150.0%');
    expect(vmMemoryGraph('id-a').summary(h)).toBe('resident 300 MiB · guest 512 MiB free of 1 GiB');
    expect(vmNetworkGraph('id-a').summary(h)).toBe('in — · out —');
  });

  it('say "—" before any sample, never 0', () => {
    const empty = new StatsHistory();
    expect(hostCpuGraph().summary(empty)).toBe('—');
    expect(hostCoresGraph(2).summary(empty)).toBe('—');
    expect(vmCpuGraph('x').summary(empty)).toBe('—');
    expect(vmMemoryGraph('x').summary(empty)).toBe('resident —');
  });

  it('pin the axes where a full scale means something', () => {
    expect(hostCpuGraph().fixedMax?.(h)).toBe(100);
    expect(hostMemoryGraph().fixedMax?.(h)).toBe(8 * GiB);
    expect(hostLoadGraph().fixedMax?.(h)).toBe(2);
  });

  it('name every graph for assistive technology', () => {
    expect(hostCpuGraph().name).toBe('CPU usage graph');
    expect(hostCoresGraph(4).series.map((s) => s.label)).toEqual(['Core 0', 'Core 1', 'Core 2', 'Core 3']);
    expect(vmCpuGraph('id-a', 'CPU usage graph of a').name).toBe('CPU usage graph of a');
  });
});

describe('time range', () => {
  it('opens on the last minute and offers 1 and 10 minutes', () => {
    expect(DEFAULT_GRAPH_RANGE).toBe(60);
    expect(GRAPH_RANGES.map(rangeLabel)).toEqual(['1 min', '10 min']);
    expect(GRAPH_RANGES.map(rangeText)).toEqual(['the last minute', 'the last 10 minutes']);
  });
});

describe('legendValue', () => {
  const column = Float64Array.from([1.5, Number.NaN, 12.34]);
  it('reads the row under the pointer', () => {
    expect(legendValue('percent', column, 0)).toBe('1.5%');
  });
  it('reads the latest row when the pointer is not on the graph', () => {
    expect(legendValue('percent', column, null)).toBe('12.3%');
    expect(legendValue('bytes', [0, 2 * GiB], null)).toBe('2 GiB');
  });
  it('says why a figure is missing when the series knows', () => {
    expect(legendValue('bytes', column, 1, 'guest not running')).toBe('— (guest not running)');
    expect(legendValue('bytes', column, 1)).toBe('—');
    expect(legendValue('bytes', [], null, 'guest not running')).toBe('— (guest not running)');
    expect(legendValue('bytes', undefined, null)).toBe('—');
  });
  it("gives the guest's memory figures the reason they are missing", () => {
    const live = vmMemoryGraph('id-a', true).series.map((s) => s.missing);
    expect(live).toEqual([undefined, guestMemoryMissing(true), guestMemoryMissing(true)]);
    expect(guestMemoryMissing(true)).toMatch(/virtio-balloon/);
    expect(vmMemoryGraph('id-a', false).series[1]?.missing).toBe('guest not running');
  });
});
