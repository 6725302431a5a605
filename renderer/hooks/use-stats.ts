/** React's side of the stats store: holding the page's one subscription, its status, and the few
 *  derived values a view re-renders for. Graphs themselves listen to the store directly. */
import { useCallback, useEffect, useState, useSyncExternalStore } from 'react';
import type { VmStats } from '../../main/common/models/stats';
import { useServices } from '../engine';
import { statsStore, type StatsStatus, type StatsStore } from '../lib/stats-store';
import type { StatsHistory } from '../lib/stats-series';

function subscribeStatus(onChange: () => void): () => void {
  const d = statsStore.onDidChangeStatus(onChange);
  return () => d.dispose();
}

const getStatus = (): StatsStatus => statsStore.status;

function subscribeUpdates(onChange: () => void): () => void {
  const d = statsStore.onDidUpdate(onChange);
  return () => d.dispose();
}

/** Keeps the page's stats subscription open while the calling component is mounted. */
export function useStats(): { readonly store: StatsStore; readonly status: StatsStatus } {
  const services = useServices();
  useEffect(() => {
    const held = statsStore.retain(services.stats);
    return () => held.dispose();
  }, [services]);
  const status = useSyncExternalStore(subscribeStatus, getStatus);
  return { store: statsStore, status };
}

/**
 * A value derived from the history (a core count, "is the network figure available"), read after
 * every sample; the component re-renders only when it changes, so it must be a primitive.
 */
export function useStatsDerived<T extends string | number | boolean | null | undefined>(select: (h: StatsHistory) => T): T {
  return useSyncExternalStore(subscribeUpdates, () => select(statsStore.history));
}

/**
 * The latest per-VM figures by id for sorting, refreshed at most every `intervalMs` and only while
 * `enabled`: a library re-ordering its cards every second would be hard to use.
 */
export function useVmStatsSnapshot(enabled: boolean, intervalMs = 5000): ReadonlyMap<string, VmStats> | undefined {
  const [snapshot, setSnapshot] = useState<ReadonlyMap<string, VmStats> | undefined>(undefined);
  const take = useCallback(() => setSnapshot(statsStore.history.latestVmStats()), []);
  useEffect(() => {
    if (!enabled) {
      setSnapshot(undefined);
      return;
    }
    let last = 0;
    if (statsStore.history.latest) {
      take();
      last = Date.now();
    }
    const sub = statsStore.onDidUpdate(() => {
      const now = Date.now();
      if (now - last < intervalMs) return;
      last = now;
      take();
    });
    return () => sub.dispose();
  }, [enabled, intervalMs, take]);
  return snapshot;
}
