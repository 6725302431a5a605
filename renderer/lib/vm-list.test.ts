import { describe, expect, it } from 'vitest';
import type { VmInfo, VmState } from '../../main/common/models/vm-state';
import { applyVmChange, isSortKey, matchesFilter, visibleVms, vmMapFrom } from './vm-list';

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
    expect(isSortKey('cpu')).toBe(false);
  });
});
