import { describe, expect, it } from 'vitest';
import type { HostStats, StatsSample, VmStats } from '../../main/common/models/stats';
import {
  hostCoresGraph,
  hostCpuGraph,
  hostDiskGraph,
  hostLoadGraph,
  hostMemoryGraph,
  hostSwapGraph,
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
