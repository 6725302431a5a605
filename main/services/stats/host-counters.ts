/**
 * What the host-sampler worker sends back: raw cumulative counters and point-in-time values, never
 * rates (those are computed in rates.ts, so every consumer can diff against its own previous reading).
 * Types only: the worker imports nothing at run time but node and systeminformation.
 */

export interface HostCpuCounters {
  /** Cumulative busy and total time per core, ms (os.cpus()). */
  readonly busy: number;
  readonly total: number;
}

/** A counter group read at its own time (systeminformation re-reads disks and NICs at most every 500 ms). */
export interface TimedCounters<T> {
  /** The worker's performance.now() when these were read. */
  readonly atMs: number;
  readonly values: T;
}

export interface HostCounters {
  /** Identifies the worker instance whose clock `atMs` values are on: a restarted worker is a new epoch. */
  readonly epoch: string;
  /** The worker's performance.now() when the CPU and memory figures were read. */
  readonly atMs: number;
  readonly cpus: readonly HostCpuCounters[];
  readonly load: readonly number[] | null;
  readonly mem: {
    readonly totalBytes: number;
    /** total − available: what programs hold, not counting reclaimable cache. */
    readonly usedBytes: number;
    readonly cachedBytes: number;
    readonly availableBytes: number;
    readonly swapTotalBytes: number;
    readonly swapUsedBytes: number;
  } | null;
  /** Bytes read/written on the host's disks since boot. */
  readonly disk: TimedCounters<{ readonly readBytes: number; readonly writeBytes: number }> | null;
  /** Bytes received/sent on the host's physical interfaces since they came up. */
  readonly net: TimedCounters<{ readonly rxBytes: number; readonly txBytes: number }> | null;
}

export type HostWorkerRequest = { readonly type: 'read'; readonly id: number };

export type HostWorkerReply =
  | { readonly type: 'reading'; readonly id: number; readonly counters: HostCounters }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
