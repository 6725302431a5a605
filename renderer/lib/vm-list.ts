/** The library's list: keeping it current from change events, filtering and sorting it. */
import type { VmStats } from '../../main/common/models/stats';
import type { VmChange, VmInfo, VmState } from '../../main/common/models/vm-state';

export type VmMap = ReadonlyMap<string, VmInfo>;

export function vmMapFrom(list: readonly VmInfo[]): VmMap {
  return new Map(list.map((vm) => [vm.id, vm]));
}

/** Applies one change event; returns the same map when nothing changed, so React can skip renders. */
export function applyVmChange(map: VmMap, change: VmChange): VmMap {
  switch (change.kind) {
    case 'updated': {
      if (map.get(change.vm.id) === change.vm) return map;
      const next = new Map(map);
      next.set(change.vm.id, change.vm);
      return next;
    }
    case 'removed': {
      if (!map.has(change.id)) return map;
      const next = new Map(map);
      next.delete(change.id);
      return next;
    }
  }
}

/** Case- and accent-insensitive substring match on the name. */
export function matchesFilter(vm: Pick<VmInfo, 'name'>, filter: string): boolean {
  const f = normalize(filter.trim());
  return f === '' || normalize(vm.name).includes(f);
}

function normalize(s: string): string {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

/**
 * Sort keys. A new one means: a key here, a comparator below (reading `ctx.stats` if it sorts by
 * live figures, see STATS_SORT_KEYS) and its label; the library's menu lists them all.
 */
export const SORT_KEYS = ['name', 'state', 'cpu', 'memory'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export const SORT_LABELS: Readonly<Record<SortKey, string>> = { name: 'Name', state: 'State', cpu: 'CPU', memory: 'Memory' };

/** Keys that sort by live figures: the library feeds `ctx.stats` only while one of them is chosen. */
export const STATS_SORT_KEYS: ReadonlySet<SortKey> = new Set(['cpu', 'memory']);

/** What comparators may look at beyond the VM itself. */
export interface SortContext {
  /** Latest per-VM figures by id, once the library subscribes to stats. */
  readonly stats?: ReadonlyMap<string, VmStats>;
}

export type VmComparator = (a: VmInfo, b: VmInfo, ctx: SortContext) => number;

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

const byName: VmComparator = (a, b) => collator.compare(a.name, b.name) || a.id.localeCompare(b.id);

/** Active machines first (they are what people look for), broken last. */
const STATE_ORDER: Readonly<Record<VmState, number>> = {
  running: 0,
  starting: 1,
  stopping: 2,
  paused: 3,
  suspended: 4,
  stopped: 4,
  broken: 5,
};

/** Busiest first; VMs without the figure (stopped, or the host can't tell) after all that have
 *  it, by name. */
function byFigure(figure: (s: VmStats) => number | null): VmComparator {
  const value = (vm: VmInfo, ctx: SortContext): number | null => {
    const s = ctx.stats?.get(vm.id);
    const v = s ? figure(s) : null;
    return v !== null && Number.isFinite(v) ? v : null;
  };
  return (a, b, ctx) => {
    const va = value(a, ctx);
    const vb = value(b, ctx);
    if (va !== null && vb !== null && va !== vb) return vb - va;
    if ((va === null) !== (vb === null)) return va === null ? 1 : -1;
    return byName(a, b, ctx);
  };
}

export const COMPARATORS: Readonly<Record<SortKey, VmComparator>> = {
  name: byName,
  state: (a, b, ctx) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || byName(a, b, ctx),
  cpu: byFigure((s) => s.cpuPercent),
  // What the VM costs the host: QEMU's resident memory.
  memory: byFigure((s) => s.rssBytes),
};

export function isSortKey(s: string): s is SortKey {
  return (SORT_KEYS as readonly string[]).includes(s);
}

export function visibleVms(map: VmMap, filter: string, sort: SortKey, ctx: SortContext = {}): readonly VmInfo[] {
  const cmp = COMPARATORS[sort];
  return [...map.values()].filter((vm) => matchesFilter(vm, filter)).sort((a, b) => cmp(a, b, ctx));
}
