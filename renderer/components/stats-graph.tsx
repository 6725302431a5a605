/**
 * A live resource graph: a uPlot chart fed from the stats store's ring buffers. React renders the
 * frame once; every sample after that goes straight to `plot.setData()` and a text node, with no
 * React state involved. While the graph cannot be seen (page hidden, scrolled away, inside an
 * inactive tab: the IntersectionObserver reports all three as not intersecting) the chart is not
 * touched; the history keeps filling and the chart catches up when it shows again.
 *
 * Accessibility: the chart is `role="img"` with a name ("CPU usage graph") and a description that
 * states the current value, rewritten at most every 5 s so that reading it is useful and nothing
 * is announced on its own.
 */
import 'uplot/dist/uPlot.min.css';
import uPlot from 'uplot';
import { useEffect, useId, useRef, type ReactNode } from 'react';
import { usePrefersDark } from '../hooks/use-visibility';
import { DEFAULT_GRAPH_RANGE, GRAPH_RANGES, legendValue, rangeLabel, rangeText, type GraphRange, type GraphSpec } from '../lib/stats-graphs';
import type { StatsStore } from '../lib/stats-store';
import { axisScale, axisTicks, columnsMax, formatTick, withAlpha, type AxisScale } from '../lib/stats-units';

export type GraphVariant = 'full' | 'spark';

const LAYOUT: Readonly<Record<GraphVariant, { readonly height: number; readonly windowSec: number }>> = {
  // A full graph's range is the page's choice (GraphRangeChoice); this is where it opens.
  full: { height: 150, windowSec: DEFAULT_GRAPH_RANGE },
  spark: { height: 28, windowSec: 120 },
};

/** The range buttons above a page of graphs: 1 min / 10 min, the chosen one pressed. */
export function GraphRangeChoice({ value, onChange }: { readonly value: GraphRange; readonly onChange: (range: GraphRange) => void }): ReactNode {
  return (
    <span className="graph-range" role="group" aria-label="Time range">
      {GRAPH_RANGES.map((r) => (
        <button key={r} type="button" className="btn btn-small" aria-pressed={r === value} onClick={() => onChange(r)}>
          {rangeLabel(r)}
        </button>
      ))}
    </span>
  );
}

/** Screen readers get a fresh value at most this often. */
export const DESCRIPTION_INTERVAL_MS = 5000;

export function StatsGraph(props: {
  readonly store: StatsStore;
  readonly spec: GraphSpec;
  readonly variant: GraphVariant;
  /** Visible heading (full) or label (spark). */
  readonly title: string;
  /** Shown instead of the chart when the figure does not exist here ("Not available: …"). */
  readonly unavailable?: string | null;
  readonly className?: string;
  /** Seconds shown (full graphs; sparklines always show two minutes). */
  readonly windowSec?: GraphRange;
}): ReactNode {
  const { store, variant, title, unavailable } = props;
  const windowSec = variant === 'full' ? (props.windowSec ?? LAYOUT.full.windowSec) : LAYOUT.spark.windowSec;
  const dark = usePrefersDark();
  const plotRef = useRef<HTMLDivElement>(null);
  const valueRef = useRef<HTMLSpanElement>(null);
  const descRef = useRef<HTMLSpanElement>(null);
  // The spec's functions change identity every render; the chart reads the newest through a ref.
  const specRef = useRef(props.spec);
  specRef.current = props.spec;
  const id = useId();
  const titleId = `${id}-title`;
  const descId = `${id}-desc`;
  // The chart is rebuilt only when its shape changes: series, unit, theme, variant.
  const shape = `${variant}|${props.spec.unit}|${dark}|${props.spec.series.map((s) => `${s.label}:${s.color}`).join(',')}`;

  useEffect(() => {
    const el = plotRef.current;
    if (!el || unavailable) return;
    const { height } = LAYOUT[variant];
    let plot: uPlot | null = null;
    let width = 0;
    let inView = false;
    let dirty = true;
    let lastDescription = 0;
    const scale: { current: AxisScale } = { current: axisScale(specRef.current.unit, Number.NaN) };

    const pageVisible = (): boolean => document.visibilityState !== 'hidden';
    const empty = (): Float64Array[] => [new Float64Array(0), ...specRef.current.series.map(() => new Float64Array(0))];
    const data = (): uPlot.AlignedData => (specRef.current.read(store.history, windowSec) ?? empty()) as uPlot.AlignedData;

    const describe = (force: boolean): void => {
      const now = Date.now();
      if (!force && now - lastDescription < DESCRIPTION_INTERVAL_MS) return;
      lastDescription = now;
      const text = specRef.current.summary(store.history);
      if (descRef.current) descRef.current.textContent = variant === 'full' ? `Now ${text}; ${rangeText(windowSec)}.` : `Now ${text}.`;
    };

    // The figure in the header is one text node: kept current even while the chart is out of view
    // (a card whose plot is below the fold still shows its header; it froze at its first value).
    const showValue = (): void => {
      if (valueRef.current) valueRef.current.textContent = specRef.current.summary(store.history);
    };

    const draw = (): void => {
      if (plot) plot.setData(data());
      else {
        width = el.clientWidth;
        if (width === 0) return;
        plot = new uPlot(plotOptions(specRef, store, el, variant, width, height, windowSec, scale), data(), el);
        // The legend is for reading values under the pointer; assistive technology gets the
        // description instead of a table that changes with every mouse move.
        plot.root.querySelector('.u-legend')?.setAttribute('aria-hidden', 'true');
      }
      showValue();
      dirty = false;
    };

    const onSample = (): void => {
      dirty = true;
      if (!pageVisible()) return;
      describe(false);
      showValue();
      if (inView) draw();
    };
    const onVisibility = (): void => {
      if (!pageVisible()) return;
      showValue();
      if (inView && dirty) draw();
    };

    describe(true);
    showValue();
    const sub = store.onDidUpdate(onSample);
    document.addEventListener('visibilitychange', onVisibility);
    const io = new IntersectionObserver((entries) => {
      inView = entries.some((e) => e.isIntersecting);
      if (inView && pageVisible() && (dirty || !plot)) draw();
    });
    io.observe(el);
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (!plot || w === 0 || w === width) return;
      width = w;
      plot.setSize({ width, height });
    });
    ro.observe(el);
    return () => {
      sub.dispose();
      document.removeEventListener('visibilitychange', onVisibility);
      io.disconnect();
      ro.disconnect();
      plot?.destroy();
      plot = null;
    };
    // `shape` stands for the spec's structure; its functions are read through specRef.
  }, [store, shape, variant, unavailable, windowSec]);

  // Nothing to draw: the sentence takes the chart's place (plain text, so it is read as it is).
  const chart = unavailable ? (
    <p className="graph-unavailable">{unavailable}</p>
  ) : (
    <div ref={plotRef} className="graph-plot" role="img" aria-label={props.spec.name} aria-describedby={descId} />
  );

  if (variant === 'spark') {
    return (
      <div className={`spark ${props.className ?? ''}`}>
        <span className="spark-label" aria-hidden="true">
          {title}
        </span>
        {chart}
        <span ref={valueRef} className="spark-value" aria-hidden="true" data-testid="graph-value" />
        <span ref={descRef} id={descId} className="visually-hidden" />
      </div>
    );
  }
  return (
    <section className={`graph-card ${props.className ?? ''}`} aria-labelledby={titleId}>
      <header className="graph-head">
        <h3 id={titleId} className="graph-title">
          {title}
        </h3>
        <span ref={valueRef} className="graph-value" aria-hidden="true" data-testid="graph-value" />
      </header>
      {chart}
      <span ref={descRef} id={descId} className="visually-hidden" />
    </section>
  );
}

/** Reads a colour custom property off the element (themes define them in styles.css). */
function cssColor(el: Element, prop: string, fallback: string): string {
  return getComputedStyle(el).getPropertyValue(prop).trim() || fallback;
}

function plotOptions(
  specRef: { readonly current: GraphSpec },
  store: StatsStore,
  el: HTMLElement,
  variant: GraphVariant,
  width: number,
  height: number,
  windowSec: number,
  scale: { current: AxisScale },
): uPlot.Options {
  const spec = specRef.current;
  const spark = variant === 'spark';
  const text = cssColor(el, '--muted', '#5a626d');
  const grid = cssColor(el, '--border', '#d3d7de');
  const fillUnder = spec.series.length <= 3;
  return {
    width,
    height,
    pxAlign: 0,
    // Room on the right for the last time label, which sits on the edge.
    padding: spark ? [3, 2, 3, 2] : [10, 20, 0, 4],
    scales: {
      x: {
        time: true,
        // A moving window ending at the newest sample: the graph fills in from the right.
        range: (u) => {
          const t = u.data[0];
          const last = t.length > 0 ? (t[t.length - 1] as number) : Date.now() / 1000;
          return [last - windowSec, last];
        },
      },
      y: {
        range: (u) => {
          scale.current = axisScale(specRef.current.unit, columnsMax(u.data as readonly ArrayLike<number>[]), specRef.current.fixedMax?.(store.history));
          // A little room below zero, so an idle (0) line is drawn whole instead of half clipped.
          return [-scale.current.max * 0.02, scale.current.max];
        },
      },
    },
    // The legend reads the row under the pointer, else the latest (uPlot passes idx null then).
    series: [
      {
        value: (u, v, _s, idx) => {
          const t = idx === null ? u.data[0][u.data[0].length - 1] : v;
          return t == null ? '—' : timeOfDay(t);
        },
      },
      ...spec.series.map((s, i): uPlot.Series => {
        const color = cssColor(el, s.color, '#2160d8');
        return {
          label: s.label,
          stroke: color,
          width: spark ? 1.25 : 1.5,
          fill: fillUnder ? withAlpha(color, spark ? 0.18 : 0.1) : undefined,
          points: { show: false },
          value: (u, _v, sidx, idx) => legendValue(specRef.current.unit, u.data[sidx] as ArrayLike<number | null> | undefined, idx, specRef.current.series[i]?.missing),
        };
      }),
    ],
    axes: spark
      ? [{ show: false }, { show: false }]
      : [
          {
            stroke: text,
            grid: { stroke: grid, width: 1 },
            ticks: { stroke: grid, width: 1 },
            font: '11px system-ui, sans-serif',
            space: 70,
            // Ten minutes never cross more than one date: the time of day is all a tick needs (with
            // seconds on the one-minute range, where ticks are seconds apart).
            values: (_u, splits) => splits.map((v) => (windowSec <= 60 ? timeOfDay(v) : timeOfDay(v).slice(0, 5))),
          },
          {
            stroke: text,
            grid: { stroke: grid, width: 1 },
            ticks: { show: false },
            font: '11px system-ui, sans-serif',
            size: 64,
            splits: () => axisTicks(scale.current),
            values: (_u, splits) => splits.map((v) => formatTick(v, scale.current.unit)),
          },
        ],
    legend: { show: !spark, live: true },
    cursor: spark ? { show: false } : { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
  };
}

function timeOfDay(sec: number): string {
  const d = new Date(sec * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
