import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Disposable, StatsService } from '../../main/common/contract';
import { ErrorCode, VivariumError } from '../../main/common/errors';
import type { StatsSample } from '../../main/common/models/stats';
import { StatsStore } from './stats-store';

/** A StatsService whose samples the test sends, counting live subscriptions. */
class ScriptedStats implements StatsService {
  readonly listeners = new Set<(s: StatsSample) => void>();
  probes = 0;
  constructor(private readonly probe: () => Promise<StatsSample> = async () => sampleAt(0)) {}
  sample(): Promise<StatsSample> {
    this.probes++;
    return this.probe();
  }
  readonly onDidSample = (l: (s: StatsSample) => void): Disposable => {
    const w = (s: StatsSample): void => l(s);
    this.listeners.add(w);
    return { dispose: () => void this.listeners.delete(w) };
  };
  send(s: StatsSample): void {
    for (const l of [...this.listeners]) l(s);
  }
}

function sampleAt(sec: number, cpu = 5): StatsSample {
  return {
    at: sec * 1000,
    host: {
      cpuPercent: cpu,
      cpuPerCore: [cpu],
      memTotalBytes: null,
      memUsedBytes: null,
      memCachedBytes: null,
      memAvailableBytes: null,
      swapTotalBytes: null,
      swapUsedBytes: null,
      diskReadBps: null,
      diskWriteBps: null,
      netRxBps: null,
      netTxBps: null,
      load: null,
    },
    vms: [],
  };
}

const flush = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

afterEach(() => vi.useRealTimers());

describe('StatsStore', () => {
  it('subscribes once for many holders and unsubscribes after the last one lets go', () => {
    const src = new ScriptedStats();
    const store = new StatsStore({ lingerMs: 0 });
    expect(store.status.kind).toBe('idle');
    const a = store.retain(src);
    const b = store.retain(src);
    expect(src.listeners.size).toBe(1);
    expect(src.probes).toBe(1);
    expect(store.status.kind).toBe('waiting');
    a.dispose();
    a.dispose(); // twice is harmless
    expect(src.listeners.size).toBe(1);
    b.dispose();
    expect(src.listeners.size).toBe(0);
    expect(store.status.kind).toBe('idle');
  });

  it('keeps the subscription through a short gap (a route change) and drops it after the linger', () => {
    vi.useFakeTimers();
    const src = new ScriptedStats();
    const store = new StatsStore({ lingerMs: 2000 });
    store.retain(src).dispose();
    vi.advanceTimersByTime(1000);
    const again = store.retain(src);
    vi.advanceTimersByTime(5000);
    expect(src.listeners.size).toBe(1);
    expect(src.probes).toBe(1);
    again.dispose();
    vi.advanceTimersByTime(1999);
    expect(src.listeners.size).toBe(1);
    vi.advanceTimersByTime(1);
    expect(src.listeners.size).toBe(0);
  });

  it('folds samples into the history and tells listeners, going live on the first one', () => {
    const src = new ScriptedStats();
    const store = new StatsStore({ lingerMs: 0 });
    const seen: number[] = [];
    const statuses: string[] = [];
    store.onDidUpdate((s) => seen.push(s.at));
    store.onDidChangeStatus(() => statuses.push(store.status.kind));
    const h = store.retain(src);
    src.send(sampleAt(1, 10));
    src.send(sampleAt(2, 20));
    expect(seen).toEqual([1000, 2000]);
    expect(Array.from(store.history.host.column('cpu').view())).toEqual([10, 20]);
    expect(statuses).toEqual(['waiting', 'live']);
    h.dispose();
    src.send(sampleAt(3, 30));
    expect(seen).toHaveLength(2);
  });

  it('reports an engine without statistics as unavailable, with its sentence', async () => {
    const msg = 'Resource statistics are not available in this engine.';
    const src = new ScriptedStats(async () => {
      throw new VivariumError(ErrorCode.Unsupported, msg);
    });
    const store = new StatsStore({ lingerMs: 0 });
    store.retain(src);
    await flush();
    expect(store.status).toEqual({ kind: 'unavailable', message: msg });
  });

  it('treats another failure of the check as passing trouble: a sample makes it live', async () => {
    const src = new ScriptedStats(async () => {
      throw { code: 'timeout', message: 'The engine did not answer in time.' };
    });
    const store = new StatsStore({ lingerMs: 0 });
    store.retain(src);
    await flush();
    expect(store.status).toEqual({ kind: 'failed', message: 'The engine did not answer in time.' });
    src.send(sampleAt(1));
    expect(store.status.kind).toBe('live');
  });

  it('moves to a new source after a reconnect and keeps the history', () => {
    const old = new ScriptedStats();
    const next = new ScriptedStats();
    const store = new StatsStore({ lingerMs: 0 });
    const a = store.retain(old);
    old.send(sampleAt(1));
    const b = store.retain(next);
    a.dispose();
    expect(old.listeners.size).toBe(0);
    expect(next.listeners.size).toBe(1);
    old.send(sampleAt(2)); // a straggler from the dead connection
    next.send(sampleAt(3));
    expect(Array.from(store.history.host.time.view())).toEqual([1, 3]);
    b.dispose();
    expect(next.listeners.size).toBe(0);
  });
});
