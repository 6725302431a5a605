import { describe, expect, it } from 'vitest';
import { RingBuffer } from './ring-buffer';

describe('RingBuffer', () => {
  it('returns values oldest first before it fills', () => {
    const r = new RingBuffer(4);
    expect(r.view()).toHaveLength(0);
    expect(r.last()).toBeNaN();
    r.push(1);
    r.push(2);
    expect(Array.from(r.view())).toEqual([1, 2]);
    expect(r.last()).toBe(2);
  });

  it('keeps only the newest `capacity` values once it wraps, at every position', () => {
    const r = new RingBuffer(3);
    for (let i = 1; i <= 10; i++) {
      r.push(i);
      const want = [i - 2, i - 1, i].filter((v) => v >= 1);
      expect(Array.from(r.view())).toEqual(want);
      expect(r.last()).toBe(i);
      expect(r.length).toBe(want.length);
    }
  });

  it('gives the newest n values, clamped to what it holds', () => {
    const r = new RingBuffer(5);
    for (let i = 1; i <= 7; i++) r.push(i);
    expect(Array.from(r.view(2))).toEqual([6, 7]);
    expect(Array.from(r.view(99))).toEqual([3, 4, 5, 6, 7]);
    expect(Array.from(r.view(0))).toEqual([]);
    expect(Array.from(r.view(-1))).toEqual([]);
  });

  it('hands out views of one buffer: no copy and no new buffer per sample', () => {
    const r = new RingBuffer(600);
    r.push(1);
    const buffer = r.view().buffer;
    for (let i = 0; i < 2000; i++) r.push(i);
    const v = r.view();
    expect(v.buffer).toBe(buffer);
    expect(v.length).toBe(600);
    expect(v[0]).toBe(1400);
    expect(v[599]).toBe(1999);
  });

  it('keeps NaN for unknown values and can be cleared', () => {
    const r = new RingBuffer(2);
    r.push(Number.NaN);
    r.push(3);
    expect(Number.isNaN(r.view()[0])).toBe(true);
    r.clear();
    expect(r.length).toBe(0);
    expect(r.view()).toHaveLength(0);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RingBuffer(0)).toThrow(RangeError);
    expect(() => new RingBuffer(1.5)).toThrow(RangeError);
  });
});
