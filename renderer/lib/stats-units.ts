/**
 * Units and scales for the resource graphs: which unit an axis speaks (MiB/s rather than
 * 3145728 B/s), where its top is (a round number above the data), and how a value reads in the
 * legend. Pure, so the graphs, the summaries and the tests agree.
 */
import { formatBytes, formatIops, formatPercent, formatRate, UNKNOWN } from '../../main/common/format';

/** What a graph's numbers are: it decides the axis unit, the scale and the text. */
export type UnitKind = 'percent' | 'bytes' | 'rate' | 'iops' | 'count';

export interface AxisUnit {
  /** Raw values are divided by this for the tick labels. */
  readonly divisor: number;
  /** Appended to each tick label ("%", "MiB/s", ""). */
  readonly suffix: string;
}

export interface AxisScale {
  readonly max: number;
  /** Distance between ticks, in raw units; the axis has ticks at 0, step, 2·step … max. */
  readonly step: number;
  readonly unit: AxisUnit;
}

const BYTE_SUFFIXES = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** The binary unit an axis topping at `maxBytes` should use: the largest one the top reaches. */
export function byteUnit(maxBytes: number): { readonly divisor: number; readonly suffix: (typeof BYTE_SUFFIXES)[number] } {
  let i = 0;
  let divisor = 1;
  while (i < BYTE_SUFFIXES.length - 1 && Number.isFinite(maxBytes) && maxBytes >= divisor * 1024) {
    divisor *= 1024;
    i++;
  }
  return { divisor, suffix: BYTE_SUFFIXES[i]! };
}

/**
 * A round top for an axis and a tick step giving 2–5 intervals: 73 → 80 by 20, 100 → 100 by 25,
 * 0.3 → 0.4 by 0.1. `minTop` keeps an idle graph from zooming into noise.
 */
export function niceScale(dataMax: number, minTop = 1): { readonly max: number; readonly step: number } {
  const m = Number.isFinite(dataMax) && dataMax > minTop ? dataMax : minTop;
  const rough = m / 4;
  const mag = 10 ** Math.floor(Math.log10(rough));
  const norm = rough / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  // Floating error (0.1 * 3 = 0.30000000000000004) must not push the top one step too far.
  const top = Math.ceil(m / step - 1e-9) * step;
  return { max: Number(top.toPrecision(12)), step: Number(step.toPrecision(12)) };
}

/**
 * The scale of an axis for data whose largest value is `dataMax` (NaN when there is none).
 * `fixedMax` pins the top (100 % for host CPU, total memory for memory graphs).
 */
export function axisScale(kind: UnitKind, dataMax: number, fixedMax?: number): AxisScale {
  const known = Number.isFinite(dataMax) ? Math.max(0, dataMax) : 0;
  const fixed = fixedMax !== undefined && Number.isFinite(fixedMax) && fixedMax > 0 ? fixedMax : undefined;
  switch (kind) {
    case 'percent': {
      // A VM's CPU can pass 100 % (100 = one host core): grow past the fixed top rather than clip.
      const s = niceScale(Math.max(known, fixed ?? 0), fixed ?? 10);
      return { ...s, unit: { divisor: 1, suffix: '%' } };
    }
    case 'bytes':
    case 'rate': {
      const top = Math.max(known, fixed ?? 0, 1024);
      const u = byteUnit(top);
      const s = fixed !== undefined && fixed >= known ? niceStepFor(fixed / u.divisor) : niceScale(top / u.divisor);
      return { max: s.max * u.divisor, step: s.step * u.divisor, unit: { divisor: u.divisor, suffix: kind === 'rate' ? `${u.suffix}/s` : u.suffix } };
    }
    case 'iops': {
      const s = niceScale(known, 10);
      return { ...s, unit: { divisor: 1, suffix: '' } };
    }
    case 'count': {
      const s = niceScale(Math.max(known, fixed ?? 0), 1);
      return { ...s, unit: { divisor: 1, suffix: '' } };
    }
  }
}

/** A fixed top (say 7.6 GiB of memory) keeps its exact value; only the tick step is made round. */
function niceStepFor(top: number): { readonly max: number; readonly step: number } {
  return { max: top, step: niceScale(top).step };
}

/** The tick positions of an axis: 0, step, … up to max. */
export function axisTicks(scale: Pick<AxisScale, 'max' | 'step'>): number[] {
  const ticks: number[] = [];
  if (!(scale.step > 0) || !(scale.max > 0)) return [0];
  for (let i = 0; i * scale.step <= scale.max * (1 + 1e-9) && i <= 20; i++) ticks.push(i * scale.step);
  return ticks;
}

/** A tick label: "2 MiB/s", "50%", "1.5". Up to two decimals, no trailing zeros. */
export function formatTick(value: number, unit: AxisUnit): string {
  const n = Number((value / unit.divisor).toFixed(2));
  return unit.suffix === '' ? String(n) : unit.suffix === '%' ? `${n}%` : `${n} ${unit.suffix}`;
}

/** One value as the legend and the summaries show it; unknown (NaN) is "—", never 0. */
export function formatValue(kind: UnitKind, v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return UNKNOWN;
  switch (kind) {
    case 'percent':
      return formatPercent(v, 1);
    case 'bytes':
      return formatBytes(v);
    case 'rate':
      return formatRate(v);
    case 'iops':
      return formatIops(v);
    case 'count':
      return Number.isFinite(v) ? v.toFixed(2) : UNKNOWN;
  }
}

/** The largest known value across columns (NaN when there is none). Column 0 (time) is skipped
 *  when `skipFirst` is set, as in uPlot's AlignedData. */
export function columnsMax(columns: readonly ArrayLike<number>[], skipFirst = true): number {
  let max = Number.NaN;
  for (let c = skipFirst ? 1 : 0; c < columns.length; c++) {
    const col = columns[c]!;
    for (let i = 0; i < col.length; i++) {
      const v = col[i]!;
      if (!Number.isNaN(v) && !(v <= max)) max = v;
    }
  }
  return max;
}

/** The newest known value of a column, NaN if it has none. */
export function lastKnown(col: ArrayLike<number>): number {
  for (let i = col.length - 1; i >= 0; i--) {
    const v = col[i]!;
    if (!Number.isNaN(v)) return v;
  }
  return Number.NaN;
}

/** A CSS colour with an alpha, for a series' fill under its line: "#2160d8" → "rgba(33, 96, 216, 0.15)".
 *  Colours it cannot read come back unchanged. */
export function withAlpha(color: string, alpha: number): string {
  const c = color.trim();
  let m = /^#([0-9a-f]{3})$/i.exec(c);
  if (m) {
    const [r, g, b] = [...m[1]!].map((h) => parseInt(h + h, 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  m = /^#([0-9a-f]{6})$/i.exec(c);
  if (m) {
    const n = parseInt(m[1]!, 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  const rgb = /^rgba?\(\s*(\d+(?:\.\d+)?)[\s,]+(\d+(?:\.\d+)?)[\s,]+(\d+(?:\.\d+)?)\s*(?:[,/][^)]*)?\)$/i.exec(c);
  if (rgb) return `rgba(${rgb[1]}, ${rgb[2]}, ${rgb[3]}, ${alpha})`;
  return c;
}
