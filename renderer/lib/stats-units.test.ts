import { describe, expect, it } from 'vitest';
import { axisScale, axisTicks, byteUnit, columnsMax, formatTick, formatValue, lastKnown, niceScale, withAlpha } from './stats-units';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('byteUnit', () => {
  it('picks the largest binary unit the top reaches', () => {
    expect(byteUnit(0)).toEqual({ divisor: 1, suffix: 'B' });
    expect(byteUnit(1023)).toEqual({ divisor: 1, suffix: 'B' });
    expect(byteUnit(1024)).toEqual({ divisor: 1024, suffix: 'KiB' });
    expect(byteUnit(3.5 * MiB)).toEqual({ divisor: MiB, suffix: 'MiB' });
    expect(byteUnit(16 * GiB)).toEqual({ divisor: GiB, suffix: 'GiB' });
    expect(byteUnit(Number.NaN)).toEqual({ divisor: 1, suffix: 'B' });
  });
});

describe('niceScale', () => {
  it('rounds the top up to a step of 1, 2, 2.5 or 5 × 10^k with 2–5 intervals', () => {
    expect(niceScale(73)).toEqual({ max: 80, step: 20 });
    expect(niceScale(100)).toEqual({ max: 100, step: 25 });
    expect(niceScale(3.4)).toEqual({ max: 4, step: 1 });
    expect(niceScale(0.3, 0.1)).toEqual({ max: 0.3, step: 0.1 });
    for (const m of [0.7, 1.3, 9, 11, 42, 999, 1001, 123456]) {
      const s = niceScale(m);
      expect(s.max).toBeGreaterThanOrEqual(m);
      expect(s.max / s.step).toBeGreaterThanOrEqual(2);
      expect(s.max / s.step).toBeLessThanOrEqual(5);
    }
  });
  it('uses the minimum top for idle, empty or nonsense data', () => {
    expect(niceScale(0, 10)).toEqual({ max: 10, step: 2.5 });
    expect(niceScale(Number.NaN, 1)).toEqual({ max: 1, step: 0.25 });
  });
});

describe('axisScale', () => {
  it('pins host CPU at 100 % but lets a busy VM (several cores) grow past it', () => {
    expect(axisScale('percent', 37, 100)).toMatchObject({ max: 100, step: 25, unit: { suffix: '%' } });
    expect(axisScale('percent', 180, 100)).toMatchObject({ max: 200, step: 50 });
    expect(axisScale('percent', Number.NaN, 100).max).toBe(100);
  });
  it('speaks MiB/s for a few MiB per second, and a round top in that unit', () => {
    const s = axisScale('rate', 3.4 * MiB);
    expect(s.unit).toEqual({ divisor: MiB, suffix: 'MiB/s' });
    expect(s.max).toBe(4 * MiB);
    expect(axisTicks(s).map((t) => formatTick(t, s.unit))).toEqual(['0 MiB/s', '1 MiB/s', '2 MiB/s', '3 MiB/s', '4 MiB/s']);
  });
  it('keeps an idle disk at a 1 KiB/s top instead of zooming into nothing', () => {
    expect(axisScale('rate', 0)).toMatchObject({ max: 1024, unit: { suffix: 'KiB/s' } });
  });
  it('keeps a fixed memory total exact, with round ticks below it', () => {
    const s = axisScale('bytes', 5 * GiB, 7.6 * GiB);
    expect(s.max).toBeCloseTo(7.6 * GiB);
    expect(s.unit.suffix).toBe('GiB');
    expect(axisTicks(s).map((t) => formatTick(t, s.unit))).toEqual(['0 GiB', '2 GiB', '4 GiB', '6 GiB']);
  });
  it('plain numbers for load and IOPS', () => {
    expect(axisScale('count', 0.4, 2)).toMatchObject({ max: 2, unit: { suffix: '' } });
    expect(axisScale('iops', 130)).toMatchObject({ max: 150, step: 50 });
  });
});

describe('formatValue', () => {
  it('uses natural units and says "—" for unknown, never 0', () => {
    expect(formatValue('percent', 12.345)).toBe('12.3%');
    expect(formatValue('rate', 1.5 * MiB)).toBe('1.5 MiB/s');
    expect(formatValue('bytes', 2 * GiB)).toBe('2 GiB');
    expect(formatValue('iops', 12)).toBe('12 IOPS');
    expect(formatValue('count', 0.5)).toBe('0.50');
    for (const k of ['percent', 'rate', 'bytes', 'iops', 'count'] as const) {
      expect(formatValue(k, Number.NaN)).toBe('—');
      expect(formatValue(k, null)).toBe('—');
    }
  });
});

describe('columnsMax / lastKnown', () => {
  const t = new Float64Array([1, 2, 3]);
  it('skips the time column and unknown values', () => {
    expect(columnsMax([t, new Float64Array([Number.NaN, 5, 2]), new Float64Array([4, Number.NaN, 1])])).toBe(5);
    expect(columnsMax([t, new Float64Array([Number.NaN, Number.NaN, Number.NaN])])).toBeNaN();
    expect(columnsMax([t])).toBeNaN();
  });
  it('finds the newest known value', () => {
    expect(lastKnown(new Float64Array([1, 2, Number.NaN]))).toBe(2);
    expect(lastKnown(new Float64Array([]))).toBeNaN();
  });
});

describe('withAlpha', () => {
  it('turns hex and rgb() colours into rgba', () => {
    expect(withAlpha('#2160d8', 0.2)).toBe('rgba(33, 96, 216, 0.2)');
    expect(withAlpha(' #fff', 0.5)).toBe('rgba(255, 255, 255, 0.5)');
    expect(withAlpha('rgb(1 2 3)', 0.1)).toBe('rgba(1, 2, 3, 0.1)');
    expect(withAlpha('rgb(1, 2, 3)', 0.1)).toBe('rgba(1, 2, 3, 0.1)');
    expect(withAlpha('CanvasText', 0.1)).toBe('CanvasText');
  });
});
