import { describe, expect, it } from 'vitest';
import { formatBytes, formatIops, formatPercent, formatRate, UNKNOWN } from './format';

describe('formatBytes', () => {
  it('uses binary units with at most one decimal', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(1.5 * 1024 ** 2)).toBe('1.5 MiB');
    expect(formatBytes(20 * 1024 ** 3)).toBe('20 GiB');
    expect(formatBytes(2.25 * 1024 ** 4)).toBe('2.3 TiB');
    expect(formatBytes(3 * 1024 ** 5)).toBe('3 PiB');
    expect(formatBytes(5000 * 1024 ** 5)).toBe('5000 PiB');
  });

  it('never prints "1024" of a unit: it moves up instead', () => {
    expect(formatBytes(1024 * 1024 - 1)).toBe('1 MiB');
    expect(formatBytes(1023.9 * 1024)).toBe('1023.9 KiB');
  });

  it('rounds fractional bytes', () => {
    expect(formatBytes(12.6)).toBe('13 B');
  });

  it('says "unknown" for null and nonsense, never zero', () => {
    expect(formatBytes(null)).toBe(UNKNOWN);
    expect(formatBytes(undefined)).toBe(UNKNOWN);
    expect(formatBytes(Number.NaN)).toBe(UNKNOWN);
    expect(formatBytes(-1)).toBe(UNKNOWN);
    expect(formatBytes(Number.POSITIVE_INFINITY)).toBe(UNKNOWN);
    expect(formatBytes(null, 'n/a')).toBe('n/a');
  });
});

describe('formatRate', () => {
  it('appends /s', () => {
    expect(formatRate(0)).toBe('0 B/s');
    expect(formatRate(1.5 * 1024 ** 2)).toBe('1.5 MiB/s');
    expect(formatRate(null)).toBe(UNKNOWN);
    expect(formatRate(null, 'n/a')).toBe('n/a');
  });
});

describe('formatPercent', () => {
  it('keeps a fixed number of decimals and allows more than 100 (several cores)', () => {
    expect(formatPercent(0)).toBe('0.0%');
    expect(formatPercent(12.345)).toBe('12.3%');
    expect(formatPercent(187.96)).toBe('188.0%');
    expect(formatPercent(42.4, 0)).toBe('42%');
    expect(formatPercent(null)).toBe(UNKNOWN);
    expect(formatPercent(Number.NaN)).toBe(UNKNOWN);
  });
});

describe('formatIops', () => {
  it('abbreviates large counts', () => {
    expect(formatIops(0)).toBe('0 IOPS');
    expect(formatIops(12.4)).toBe('12 IOPS');
    expect(formatIops(9999)).toBe('9999 IOPS');
    expect(formatIops(12_345)).toBe('12.3k IOPS');
    expect(formatIops(2_500_000)).toBe('2.5M IOPS');
    expect(formatIops(null)).toBe(UNKNOWN);
  });
});
