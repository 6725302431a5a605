/** A VM as front ends see it (VmInfo), from its bundle, run state and last exit. Pure. */
import type { LastExit, VmInfo } from '../../common/models/vm-state';
import type { BundleEntry } from '../bundles/bundle-store';
import type { RunState } from '../runtime/run-state';

export function toVmInfo(entry: BundleEntry, rs: RunState, lastExit: LastExit | null, error: string | null = null): VmInfo {
  if (!entry.ok) {
    return {
      id: entry.id,
      name: entry.name ?? entry.id,
      state: 'broken',
      pid: null,
      accel: null,
      lastExit,
      error: entry.error,
      config: null,
      path: entry.dir,
      startedAt: null,
      pausedReason: null,
      stopping: null,
    };
  }
  const running = 'record' in rs ? rs.record : null;
  return {
    id: entry.id,
    name: entry.config.name,
    state: rs.state === 'stopped' && entry.config.suspended ? 'suspended' : rs.state,
    pid: running?.pid ?? null,
    accel: running?.accel ?? entry.config.accel,
    lastExit,
    error,
    config: entry.config,
    path: entry.dir,
    startedAt: running?.startedAt ?? null,
    pausedReason: rs.state === 'paused' ? running?.pausedReason ?? null : null,
    stopping: rs.state === 'stopping' ? running?.stopping ?? null : null,
  };
}

/** VmInfo list order: by name, then id. */
export function byName(a: VmInfo, b: VmInfo): number {
  return a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
}
