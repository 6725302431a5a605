/**
 * The host sampler's worker thread. systeminformation shells out for several figures (lsblk, cat,
 * and execSync in some calls), which would stall the engine's event loop — and with it every
 * console stream — if it ran on the main thread. So it runs here and answers `read` requests with
 * raw counters (host-counters.ts); rates are computed on the main thread (rates.ts).
 *
 * On Linux the disk and network counters are read straight from sysfs (a few small files) rather than
 * through systeminformation, whose fsStats/networkStats start `lsblk | grep` and `cat` shells every
 * second: measured (bench/stats.bench.mjs) that was about half of the engine's CPU while serving live
 * stats. systeminformation stays the source for memory and for other systems.
 *
 * Self-contained on purpose: at run time it imports only node and systeminformation, so it can be
 * loaded from out/ as plain JS or, under the tests, transpiled from this file on the fly
 * (host-sampler.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parentPort } from 'node:worker_threads';
import * as si from 'systeminformation';
import type { HostCounters, HostWorkerReply, HostWorkerRequest, TimedCounters } from './host-counters';

/** systeminformation serves disk and network counters from a cache when asked again within 500 ms;
 *  asking less often than that keeps every timestamp honest. */
const MIN_REREAD_MS = 520;
const IFACE_REFRESH_MS = 30_000;

const epoch = `host-worker-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

function cpuCounters(): HostCounters['cpus'] {
  return os.cpus().map(({ times: t }) => {
    const busy = t.user + t.nice + t.sys + t.irq;
    return { busy, total: busy + t.idle };
  });
}

async function memCounters(): Promise<HostCounters['mem']> {
  const m = await si.mem();
  if (!(m.total > 0)) return null;
  return {
    totalBytes: m.total,
    usedBytes: m.total - m.available,
    cachedBytes: m.buffcache,
    availableBytes: m.available,
    swapTotalBytes: m.swaptotal,
    swapUsedBytes: m.swapused,
  };
}

type DiskValues = NonNullable<HostCounters['disk']>['values'];
type NetValues = NonNullable<HostCounters['net']>['values'];

let lastDisk: TimedCounters<DiskValues> | null = null;
/** Whole physical disks (they have a device link: vda, sda, nvme0n1), not partitions, loop, dm or md. */
let disks: { readonly names: readonly string[]; readonly atMs: number } | null = null;
function physicalDisks(now: number): readonly string[] {
  if (disks && now - disks.atMs < IFACE_REFRESH_MS) return disks.names;
  let names: string[] = [];
  try {
    names = fs.readdirSync('/sys/block').filter((n) => fs.existsSync(`/sys/block/${n}/device`));
  } catch {
    names = [];
  }
  disks = { names, atMs: now };
  return names;
}

/** Linux: /sys/block/<disk>/stat fields 3 and 7 are sectors read/written, in 512-byte units. */
function sysfsDiskCounters(now: number): DiskValues | null {
  const names = physicalDisks(now);
  if (names.length === 0) return null;
  let readBytes = 0;
  let writeBytes = 0;
  for (const n of names) {
    const f = fs.readFileSync(`/sys/block/${n}/stat`, 'utf8').trim().split(/\s+/).map(Number);
    readBytes += (f[2] ?? 0) * 512;
    writeBytes += (f[6] ?? 0) * 512;
  }
  return { readBytes, writeBytes };
}

async function diskCounters(): Promise<HostCounters['disk']> {
  const now = performance.now();
  if (lastDisk && now - lastDisk.atMs < MIN_REREAD_MS) return lastDisk;
  if (process.platform === 'linux') {
    const values = sysfsDiskCounters(now);
    if (values) {
      lastDisk = { atMs: now, values };
      return lastDisk;
    }
  }
  const s = await si.fsStats();
  // fsStats answers null where it has no source (Windows, BSDs).
  if (!s || !Number.isFinite(s.rx) || !Number.isFinite(s.wx)) return null;
  lastDisk = { atMs: now, values: { readBytes: s.rx, writeBytes: s.wx } };
  return lastDisk;
}

/**
 * Which interfaces count as "the host's network": on Linux the physical ones (they have a device
 * link in sysfs). Bridges, taps, veths and docker interfaces would count the same packets again.
 * Elsewhere, or when there is no physical one (a container), systeminformation's default interface.
 */
let ifaces: { readonly names: string; readonly atMs: number } | null = null;
function hostInterfaces(): string {
  const now = performance.now();
  if (ifaces && now - ifaces.atMs < IFACE_REFRESH_MS) return ifaces.names;
  let names: string[] = [];
  if (process.platform === 'linux') {
    try {
      names = fs.readdirSync('/sys/class/net').filter((n) => fs.existsSync(`/sys/class/net/${n}/device`));
    } catch {
      names = [];
    }
  }
  ifaces = { names: names.join(','), atMs: now };
  return ifaces.names;
}

let lastNet: TimedCounters<NetValues> | null = null;
async function netCounters(): Promise<HostCounters['net']> {
  const now = performance.now();
  if (lastNet && now - lastNet.atMs < MIN_REREAD_MS) return lastNet;
  const names = hostInterfaces();
  if (names !== '') {
    // Linux, physical interfaces: their counters are two small sysfs files each.
    let rxBytes = 0;
    let txBytes = 0;
    for (const n of names.split(',')) {
      rxBytes += Number(fs.readFileSync(`/sys/class/net/${n}/statistics/rx_bytes`, 'utf8'));
      txBytes += Number(fs.readFileSync(`/sys/class/net/${n}/statistics/tx_bytes`, 'utf8'));
    }
    if (Number.isFinite(rxBytes) && Number.isFinite(txBytes)) {
      lastNet = { atMs: now, values: { rxBytes, txBytes } };
      return lastNet;
    }
  }
  const stats = await si.networkStats();
  let rxBytes = 0;
  let txBytes = 0;
  let any = false;
  for (const s of stats) {
    if (Number.isFinite(s.rx_bytes) && Number.isFinite(s.tx_bytes)) {
      rxBytes += s.rx_bytes;
      txBytes += s.tx_bytes;
      any = true;
    }
  }
  if (!any) return null;
  lastNet = { atMs: now, values: { rxBytes, txBytes } };
  return lastNet;
}

/** One failing source must not cost the others their figures. */
async function orNull<T>(f: () => Promise<T>): Promise<T | null> {
  try {
    return await f();
  } catch {
    return null;
  }
}

async function read(): Promise<HostCounters> {
  const atMs = performance.now();
  const cpus = cpuCounters();
  const load = process.platform === 'win32' ? null : os.loadavg();
  const [mem, disk, net] = await Promise.all([orNull(memCounters), orNull(diskCounters), orNull(netCounters)]);
  return { epoch, atMs, cpus, load, mem, disk, net };
}

const port = parentPort;
if (port) {
  port.on('message', (req: HostWorkerRequest) => {
    if (req.type !== 'read') return;
    read().then(
      (counters) => port.postMessage({ type: 'reading', id: req.id, counters } satisfies HostWorkerReply),
      (e: unknown) => port.postMessage({ type: 'error', id: req.id, message: e instanceof Error ? e.message : String(e) } satisfies HostWorkerReply),
    );
  });
}
