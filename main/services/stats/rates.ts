/**
 * Counters → rates, in one place. Every figure the stats engine reports per second comes from two
 * readings of an ever-growing counter (CPU seconds, bytes, operations) and goes through here, so
 * the rules are the same for all of them:
 *
 *  - Two readings combine only when they share an epoch: the identity of whatever owns the counters
 *    (a VM's `pid@startedAt`, one host-sampler worker). A VM that restarted between two readings
 *    has fresh counters; subtracting across that would show a huge spike or a negative rate.
 *  - A counter that went backwards was reset (a disk unplugged and plugged back, a NIC re-created):
 *    that interval has no rate (null), never a negative one.
 *  - No interval (same timestamp, clock went backwards) means no rate.
 *
 * null always means "can't tell for this interval"; the UI shows a gap, never a made-up zero.
 */

/** When a reading was taken and of what. `atMs` is on a monotonic clock that belongs to the epoch. */
export interface Stamp {
  readonly epoch: string;
  readonly atMs: number;
}

/** Milliseconds between two readings, or null when they can't be compared. */
export function intervalMs(prev: Stamp | null | undefined, next: Stamp | null | undefined): number | null {
  if (!prev || !next || prev.epoch !== next.epoch) return null;
  const dt = next.atMs - prev.atMs;
  return Number.isFinite(dt) && dt > 0 ? dt : null;
}

function finite(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** (next − prev) per second over `dtMs`; null when either is missing, the counter reset, or no interval. */
export function counterRate(prev: number | null | undefined, next: number | null | undefined, dtMs: number | null): number | null {
  if (!finite(prev) || !finite(next) || dtMs === null || !(dtMs > 0)) return null;
  const delta = next - prev;
  if (delta < 0) return null;
  return (delta * 1000) / dtMs;
}

/** CPU seconds consumed per wall second, as a percentage: 100 = one host core busy all the time. */
export function cpuPercent(prevCpuSeconds: number | null | undefined, nextCpuSeconds: number | null | undefined, dtMs: number | null): number | null {
  const r = counterRate(prevCpuSeconds, nextCpuSeconds, dtMs);
  return r === null ? null : r * 100;
}

/** Cumulative time a CPU spent busy and in total (any unit, the same for both). */
export interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

/** Share of the interval a CPU was busy, 0–100; null when the counters reset or did not move. */
export function busyPercent(prev: CpuTimes | null | undefined, next: CpuTimes | null | undefined): number | null {
  if (!prev || !next) return null;
  const busy = next.busy - prev.busy;
  const total = next.total - prev.total;
  if (!Number.isFinite(busy) || !Number.isFinite(total) || total <= 0 || busy < 0) return null;
  return Math.min(100, (busy / total) * 100);
}

/** Sum of several cores' times: the whole host as one CPU. */
export function sumCpuTimes(cpus: readonly CpuTimes[]): CpuTimes {
  let busy = 0;
  let total = 0;
  for (const c of cpus) {
    busy += c.busy;
    total += c.total;
  }
  return { busy, total };
}

/** The sum of counters from several sources (disks, interfaces), or null if none reported one. */
export function sumCounters(values: readonly (number | null | undefined)[]): number | null {
  let sum: number | null = null;
  for (const v of values) if (finite(v)) sum = (sum ?? 0) + v;
  return sum;
}
