/**
 * The host sampler's worker thread. systeminformation shells out for several figures (lsblk, cat,
 * and execSync in some calls), which would stall the engine's event loop — and with it every
 * console stream — if it ran on the main thread. So it runs here and answers `read` requests with
 * raw counters (host-counters.ts); rates are computed on the main thread (rates.ts).
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
async function diskCounters(): Promise<HostCounters['disk']> {
  const now = performance.now();
  if (lastDisk && now - lastDisk.atMs < MIN_REREAD_MS) return lastDisk;
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
  const stats = names === '' ? await si.networkStats() : await si.networkStats(names);
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
