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

// ---- type-ahead ----------------------------------------------------------------------------------

/** How long typed letters are remembered: a pause longer than this starts a new search (the WAI-ARIA
 *  listbox pattern suggests about half a second to a second; file managers use about one). */
export const TYPE_AHEAD_RESET_MS = 1000;

/** What the library remembers between keystrokes. */
export interface TypeAheadState {
  /** The letters typed so far, as typed. */
  readonly buffer: string;
  /** When the last one was typed, in ms (any clock, as long as it is the same one). */
  readonly at: number;
}

export const TYPE_AHEAD_EMPTY: TypeAheadState = { buffer: '', at: Number.NEGATIVE_INFINITY };

/** Whether a key press is a character to search with (no Ctrl/Alt/Meta; a space only inside a
 *  search, so that on its own it keeps its usual meaning). */
export function isTypeAheadKey(e: { readonly key: string; readonly ctrlKey: boolean; readonly altKey: boolean; readonly metaKey: boolean }, state: TypeAheadState, now: number): boolean {
  if (e.ctrlKey || e.altKey || e.metaKey || [...e.key].length !== 1) return false;
  if (e.key === ' ') return state.buffer !== '' && now - state.at <= TYPE_AHEAD_RESET_MS;
  return e.key.trim() !== '';
}

/**
 * One keystroke of type-ahead over `names` (in the order shown). Typing selects the first name that
 * starts with the letters typed within TYPE_AHEAD_RESET_MS of each other (case- and
 * accent-insensitive); the same letter pressed again moves to the next name starting with it, as in
 * file managers ("d d d" visits each VM starting with d). `current` is the index selected now (-1
 * for none). Returns the new state and the index to select, or null when nothing matches (the
 * selection then stays).
 */
export function typeAhead(state: TypeAheadState, key: string, now: number, names: readonly string[], current: number): { readonly state: TypeAheadState; readonly index: number | null } {
  const buffer = (now - state.at > TYPE_AHEAD_RESET_MS ? '' : state.buffer) + key;
  const next: TypeAheadState = { buffer, at: now };
  const wanted = normalize(buffer);
  const chars = [...wanted];
  const starts = (i: number, prefix: string): boolean => normalize(names[i] ?? '').startsWith(prefix);
  const count = names.length;
  // The same letter again: cycle through the names starting with it, from after the current one.
  if (chars.length > 1 && chars.every((c) => c === chars[0])) {
    const letter = chars[0]!;
    for (let step = 1; step <= count; step++) {
      const i = (((current < 0 ? -1 : current) + step) % count + count) % count;
      if (starts(i, letter)) return { state: next, index: i };
    }
    return { state: next, index: null };
  }
  for (let i = 0; i < count; i++) if (starts(i, wanted)) return { state: next, index: i };
  return { state: next, index: null };
}
