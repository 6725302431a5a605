import { describe, expect, it } from 'vitest';
import type { VmStats } from '../../main/common/models/stats';
import type { VmInfo, VmState } from '../../main/common/models/vm-state';
import { applyVmChange, isSortKey, isTypeAheadKey, matchesFilter, TYPE_AHEAD_EMPTY, TYPE_AHEAD_RESET_MS, typeAhead, visibleVms, vmMapFrom, type TypeAheadState } from './vm-list';

const vm = (id: string, name: string, state: VmState = 'stopped'): VmInfo => ({
  id,
  name,
  state,
  pid: null,
  accel: null,
  lastExit: null,
  error: null,
  config: null,
  path: `/vms/${id}`,
  startedAt: null,
});

describe('applyVmChange', () => {
  const a = vm('a', 'alpha');
  const map = vmMapFrom([a]);
  it('adds and replaces on update, keeping the old map immutable', () => {
    const b = vm('b', 'beta');
    const next = applyVmChange(map, { kind: 'updated', vm: b });
    expect([...next.keys()]).toEqual(['a', 'b']);
    expect(map.size).toBe(1);
    const running = { ...a, state: 'running' as const };
    expect(applyVmChange(next, { kind: 'updated', vm: running }).get('a')?.state).toBe('running');
  });
  it('removes, and returns the same map for no-ops', () => {
    expect(applyVmChange(map, { kind: 'removed', id: 'a' }).size).toBe(0);
    expect(applyVmChange(map, { kind: 'removed', id: 'zzz' })).toBe(map);
    expect(applyVmChange(map, { kind: 'updated', vm: a })).toBe(map);
  });
});

describe('matchesFilter', () => {
  it('ignores case, accents and surrounding spaces', () => {
    expect(matchesFilter({ name: 'Débian Server' }, ' deb')).toBe(true);
    expect(matchesFilter({ name: 'Fedora' }, 'deb')).toBe(false);
    expect(matchesFilter({ name: 'x' }, '  ')).toBe(true);
  });
});

describe('visibleVms', () => {
  const map = vmMapFrom([vm('1', 'vm10', 'stopped'), vm('2', 'vm9', 'running'), vm('3', 'Alpha', 'broken'), vm('4', 'beta', 'paused')]);
  it('sorts by name naturally, case-insensitively', () => {
    expect(visibleVms(map, '', 'name').map((v) => v.name)).toEqual(['Alpha', 'beta', 'vm9', 'vm10']);
  });
  it('sorts by state: running first, broken last', () => {
    expect(visibleVms(map, '', 'state').map((v) => v.name)).toEqual(['vm9', 'beta', 'vm10', 'Alpha']);
  });
  it('filters before sorting', () => {
    expect(visibleVms(map, 'VM', 'name').map((v) => v.id)).toEqual(['2', '1']);
  });
  it('knows its sort keys', () => {
    expect(isSortKey('state')).toBe(true);
    expect(isSortKey('cpu')).toBe(true);
    expect(isSortKey('memory')).toBe(true);
    expect(isSortKey('disk')).toBe(false);
  });
  const stats = (id: string, cpuPercent: number | null, rssBytes: number | null): VmStats => ({
    id,
    name: id,
    cpuPercent,
    vcpuPercent: null,
    rssBytes,
    guestMemTotalBytes: null,
    guestMemAvailableBytes: null,
    diskReadBps: null,
    diskWriteBps: null,
    diskReadIops: null,
    diskWriteIops: null,
    netRxBps: null,
    netTxBps: null,
  });
  const ctx = { stats: new Map([['1', stats('1', 5, 900)], ['2', stats('2', 80, 100)], ['4', stats('4', null, 500)]]) };
  it('sorts by CPU, busiest first; VMs without a figure after, by name', () => {
    expect(visibleVms(map, '', 'cpu', ctx).map((v) => v.name)).toEqual(['vm9', 'vm10', 'Alpha', 'beta']);
  });
  it('sorts by memory (QEMU resident size), largest first', () => {
    expect(visibleVms(map, '', 'memory', ctx).map((v) => v.name)).toEqual(['vm10', 'beta', 'vm9', 'Alpha']);
  });
  it('sorts by name when there are no figures yet', () => {
    expect(visibleVms(map, '', 'cpu').map((v) => v.name)).toEqual(['Alpha', 'beta', 'vm9', 'vm10']);
  });
});

describe('typeAhead', () => {
  const names = ['alpine', 'Debian 12', 'debian-testing', 'Élan', 'fedora', 'dev box'];
  /** Types `keys` one every `gap` ms from t=1000 on, returning each selected index. */
  const type = (keys: string, gap = 100, start: TypeAheadState = TYPE_AHEAD_EMPTY, current = 0): (number | null)[] => {
    let state = start;
    let at = 1000;
    let sel = current;
    const out: (number | null)[] = [];
    for (const k of keys) {
      const r = typeAhead(state, k, at, names, sel);
      state = r.state;
      if (r.index !== null) sel = r.index;
      out.push(r.index);
      at += gap;
    }
    return out;
  };

  it('selects the first VM whose name starts with the letters typed, ignoring case and accents', () => {
    expect(type('d')).toEqual([1]);
    expect(type('deb')).toEqual([1, 1, 1]);
    expect(type('debian-')).toEqual([1, 1, 1, 1, 1, 1, 2]);
    expect(type('el')).toEqual([3, 3]);
    expect(type('F')).toEqual([4]);
  });
  it('the same letter again moves on to the next VM starting with it, wrapping around', () => {
    expect(type('ddd')).toEqual([1, 2, 5]);
    expect(type('dddd')).toEqual([1, 2, 5, 1]);
  });
  it('starts a new search after a pause longer than the reset time', () => {
    expect(type('df', 100)).toEqual([1, null]);
    expect(type('df', TYPE_AHEAD_RESET_MS + 1)).toEqual([1, 4]);
  });
  it('returns null (keep the selection) when nothing matches', () => {
    expect(type('z')).toEqual([null]);
    expect(typeAhead(TYPE_AHEAD_EMPTY, 'a', 0, [], -1).index).toBeNull();
  });
  it('takes printable keys only; a space only inside a search', () => {
    const key = (k: string, mods: Partial<Record<'ctrlKey' | 'altKey' | 'metaKey', boolean>> = {}) => ({ key: k, ctrlKey: false, altKey: false, metaKey: false, ...mods });
    expect(isTypeAheadKey(key('a'), TYPE_AHEAD_EMPTY, 0)).toBe(true);
    expect(isTypeAheadKey(key('a', { ctrlKey: true }), TYPE_AHEAD_EMPTY, 0)).toBe(false);
    expect(isTypeAheadKey(key('ArrowDown'), TYPE_AHEAD_EMPTY, 0)).toBe(false);
    expect(isTypeAheadKey(key('Enter'), TYPE_AHEAD_EMPTY, 0)).toBe(false);
    expect(isTypeAheadKey(key(' '), TYPE_AHEAD_EMPTY, 0)).toBe(false);
    const typing = { buffer: 'dev', at: 0 };
    expect(isTypeAheadKey(key(' '), typing, 500)).toBe(true);
    expect(isTypeAheadKey(key(' '), typing, TYPE_AHEAD_RESET_MS + 1)).toBe(false);
    expect(type('dev b')).toEqual([1, 1, 5, 5, 5]);
  });
});
