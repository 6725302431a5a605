/** Resource figures, as `vivarium stats --json` prints them and the graphs draw them.
 *  Rates are per second; null means "this host/guest can't tell", never zero. */
export interface HostStats {
  readonly cpuPercent: number | null;
  readonly cpuPerCore: readonly number[];
  readonly memTotalBytes: number | null;
  readonly memUsedBytes: number | null;
  readonly memCachedBytes: number | null;
  readonly memAvailableBytes: number | null;
  readonly swapTotalBytes: number | null;
  readonly swapUsedBytes: number | null;
  readonly diskReadBps: number | null;
  readonly diskWriteBps: number | null;
  readonly netRxBps: number | null;
  readonly netTxBps: number | null;
  readonly load: readonly number[] | null;
}

export interface VmStats {
  readonly name: string;
  readonly id: string;
  /** QEMU's CPU use, 100 = one host core. */
  readonly cpuPercent: number | null;
  readonly vcpuPercent: readonly number[] | null;
  readonly rssBytes: number | null;
  readonly guestMemTotalBytes: number | null;
  readonly guestMemAvailableBytes: number | null;
  readonly diskReadBps: number | null;
  readonly diskWriteBps: number | null;
  readonly diskReadIops: number | null;
  readonly diskWriteIops: number | null;
  readonly netRxBps: number | null;
  readonly netTxBps: number | null;
}

export interface StatsSample {
  /** ms since epoch, end of the sampling window. */
  readonly at: number;
  readonly host: HostStats;
  readonly vms: readonly VmStats[];
}
