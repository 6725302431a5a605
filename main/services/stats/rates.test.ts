import { describe, expect, it } from 'vitest';
import { busyPercent, counterRate, cpuPercent, intervalMs, sumCounters, sumCpuTimes } from './rates';

describe('intervalMs', () => {
  it('is the time between two readings of the same epoch', () => {
    expect(intervalMs({ epoch: '42@t0', atMs: 1000 }, { epoch: '42@t0', atMs: 1500 })).toBe(500);
  });

  it('refuses readings of different epochs (a VM restarted, a new worker)', () => {
    expect(intervalMs({ epoch: '42@t0', atMs: 1000 }, { epoch: '43@t1', atMs: 2000 })).toBeNull();
  });

  it('refuses no interval, a clock that went backwards, and missing readings', () => {
    expect(intervalMs({ epoch: 'a', atMs: 1000 }, { epoch: 'a', atMs: 1000 })).toBeNull();
    expect(intervalMs({ epoch: 'a', atMs: 1000 }, { epoch: 'a', atMs: 900 })).toBeNull();
    expect(intervalMs(null, { epoch: 'a', atMs: 900 })).toBeNull();
    expect(intervalMs({ epoch: 'a', atMs: 1000 }, undefined)).toBeNull();
  });
});

describe('counterRate', () => {
  it('turns a counter delta into a per-second rate', () => {
    expect(counterRate(1000, 3000, 500)).toBe(4000);
    expect(counterRate(5, 5, 1000)).toBe(0);
  });

  it('gives no rate when the counter went backwards (reset), never a negative one', () => {
    expect(counterRate(10_000, 20, 1000)).toBeNull();
  });

  it('gives no rate without both readings or without an interval', () => {
    expect(counterRate(null, 10, 1000)).toBeNull();
    expect(counterRate(10, undefined, 1000)).toBeNull();
    expect(counterRate(10, 20, null)).toBeNull();
    expect(counterRate(10, 20, 0)).toBeNull();
    expect(counterRate(10, Number.NaN, 1000)).toBeNull();
  });

  it('handles counters beyond 2^32 exactly enough', () => {
    const base = 2 ** 40;
    expect(counterRate(base, base + 52_428_800, 2000)).toBe(26_214_400);
  });
});

describe('cpuPercent', () => {
  it('is CPU seconds per wall second × 100 (100 = one core)', () => {
    expect(cpuPercent(10, 10.5, 1000)).toBeCloseTo(50);
    expect(cpuPercent(10, 12, 1000)).toBeCloseTo(200);
    expect(cpuPercent(10, 9, 1000)).toBeNull();
  });
});

describe('busyPercent', () => {
  it('is the busy share of the interval', () => {
    expect(busyPercent({ busy: 100, total: 1000 }, { busy: 350, total: 2000 })).toBeCloseTo(25);
  });

  it('is null when nothing moved or a counter reset, and capped at 100', () => {
    expect(busyPercent({ busy: 100, total: 1000 }, { busy: 100, total: 1000 })).toBeNull();
    expect(busyPercent({ busy: 100, total: 1000 }, { busy: 50, total: 2000 })).toBeNull();
    expect(busyPercent({ busy: 100, total: 1000 }, { busy: 90, total: 500 })).toBeNull();
    expect(busyPercent({ busy: 0, total: 0 }, { busy: 20, total: 10 })).toBe(100);
    expect(busyPercent(null, { busy: 1, total: 2 })).toBeNull();
  });
});

describe('sums', () => {
  it('adds cores into one host CPU', () => {
    expect(sumCpuTimes([{ busy: 1, total: 4 }, { busy: 2, total: 4 }])).toEqual({ busy: 3, total: 8 });
    expect(sumCpuTimes([])).toEqual({ busy: 0, total: 0 });
  });

  it('adds the counters that exist, null when none does', () => {
    expect(sumCounters([1, null, 2, undefined])).toBe(3);
    expect(sumCounters([null, undefined])).toBeNull();
    expect(sumCounters([])).toBeNull();
  });
});
