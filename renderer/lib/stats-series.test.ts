import { describe, expect, it } from 'vitest';
import type { HostStats, StatsSample, VmStats } from '../../main/common/models/stats';
import { hostValues, isUnavailable, SeriesTable, StatsHistory, vmValues } from './stats-series';

const host = (o: Partial<HostStats> = {}): HostStats => ({
  cpuPercent: 10,
  cpuPerCore: [5, 15],
  memTotalBytes: 8e9,
  memUsedBytes: 4e9,
  memCachedBytes: 1e9,
  memAvailableBytes: 3e9,
  swapTotalBytes: 0,
  swapUsedBytes: 0,
  diskReadBps: 100,
  diskWriteBps: 200,
  netRxBps: null,
  netTxBps: null,
  load: [0.5, 0.25, 0.125],
  ...o,
});

const vm = (id: string, o: Partial<VmStats> = {}): VmStats => ({
  name: `vm-${id}`,
  id,
  cpuPercent: 50,
  vcpuPercent: [50],
  rssBytes: 300e6,
  guestMemTotalBytes: null,
  guestMemAvailableBytes: null,
  diskReadBps: 0,
  diskWriteBps: 0,
  diskReadIops: 0,
  diskWriteIops: 0,
  netRxBps: null,
  netTxBps: null,
  ...o,
});

const sample = (at: number, vms: readonly VmStats[] = [], h: HostStats = host()): StatsSample => ({ at: at * 1000, host: h, vms });

describe('series extraction', () => {
  it('maps host figures to columns, null and nonsense to NaN (a gap, not zero)', () => {
    const v = hostValues(host({ cpuPercent: null, diskReadBps: Number.POSITIVE_INFINITY, load: null }));
    expect(v.cpu).toBeNaN();
    expect(v.diskRead).toBeNaN();
    expect(v.load1).toBeNaN();
    expect(v.memUsed).toBe(4e9);
    expect(v.netRx).toBeNaN();
    expect(hostValues(host()).load15).toBe(0.125);
  });
  it('maps VM figures to columns', () => {
    const v = vmValues(vm('a', { guestMemTotalBytes: 1e9 }));
    expect(v).toMatchObject({ cpu: 50, rss: 300e6, guestTotal: 1e9, diskReadIops: 0 });
    expect(v.guestAvailable).toBeNaN();
  });
});

describe('SeriesTable', () => {
  it('aligns columns with the time column and back-fills a group member that appears late', () => {
    const t = new SeriesTable(['a'] as const, 4);
    t.push(1, { a: 10 }, [1]);
    t.push(2, { a: 20 }, [2, 3]);
    const [times, a] = t.data(['a']);
    expect(Array.from(times!)).toEqual([1, 2]);
    expect(Array.from(a!)).toEqual([10, 20]);
    const g = t.groupData(3);
    expect(g).toHaveLength(4);
    expect(Array.from(g[1]!)).toEqual([1, 2]);
    expect(Array.from(g[2]!).map(String)).toEqual(['NaN', '3']);
    expect(Array.from(g[3]!).map(String)).toEqual(['NaN', 'NaN']);
  });
  it('ignores rows that do not move forward in time', () => {
    const t = new SeriesTable(['a'] as const, 4);
    expect(t.push(5, { a: 1 })).toBe(true);
    expect(t.push(5, { a: 2 })).toBe(false);
    expect(t.push(4, { a: 3 })).toBe(false);
    expect(t.push(Number.NaN, { a: 3 })).toBe(false);
    expect(t.length).toBe(1);
    expect(t.column('a').last()).toBe(1);
  });
  it('keeps the newest rows only', () => {
    const t = new SeriesTable(['a'] as const, 3);
    for (let i = 1; i <= 5; i++) t.push(i, { a: i * 10 });
    expect(Array.from(t.data(['a'])[1]!)).toEqual([30, 40, 50]);
    expect(Array.from(t.data(['a'], 2)[0]!)).toEqual([4, 5]);
  });
});

describe('isUnavailable', () => {
  it('says "not available" only after a few rows without any known value', () => {
    const t = new SeriesTable(['net', 'cpu'] as const, 10);
    expect(isUnavailable(t, ['net'])).toBe(false);
    t.push(1, { net: Number.NaN, cpu: 1 });
    t.push(2, { net: Number.NaN, cpu: 1 });
    expect(isUnavailable(t, ['net'])).toBe(false);
    t.push(3, { net: Number.NaN, cpu: 1 });
    expect(isUnavailable(t, ['net'])).toBe(true);
    expect(isUnavailable(t, ['cpu'])).toBe(false);
    t.push(4, { net: 5, cpu: 1 });
    expect(isUnavailable(t, ['net'])).toBe(false);
    expect(isUnavailable(undefined, ['net'])).toBe(false);
  });
});

describe('StatsHistory', () => {
  it('keeps the host and each VM, in seconds, and the latest figures by VM id', () => {
    const h = new StatsHistory(600);
    h.add(sample(100, [vm('a')]));
    h.add(sample(101, [vm('a', { cpuPercent: 70 }), vm('b')]));
    expect(Array.from(h.host.time.view())).toEqual([100, 101]);
    expect(h.host.groupSize).toBe(2);
    expect(Array.from(h.vm('a')!.column('cpu').view())).toEqual([50, 70]);
    expect(h.vm('b')!.length).toBe(1);
    expect(h.latestVmStats().get('a')?.cpuPercent).toBe(70);
    expect(h.vmIds).toEqual(['a', 'b']);
  });
  it('ignores an out-of-order sample', () => {
    const h = new StatsHistory(600);
    h.add(sample(100));
    expect(h.add(sample(99, [vm('late')]))).toBe(false);
    expect(h.vm('late')).toBeUndefined();
    expect(h.latest?.at).toBe(100_000);
  });
  it('drops a VM not heard of for the whole window', () => {
    const h = new StatsHistory(10);
    h.add(sample(100, [vm('gone')]));
    h.add(sample(105));
    expect(h.vm('gone')).toBeDefined();
    h.add(sample(111));
    expect(h.vm('gone')).toBeUndefined();
  });
});
