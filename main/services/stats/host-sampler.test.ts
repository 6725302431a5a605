import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultWorkerSource, HostSampler } from './host-sampler';
import { hostStats } from './stats-service';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

let sampler: HostSampler | null = null;
let tmp: string | null = null;
afterEach(() => {
  sampler?.dispose();
  sampler = null;
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = null;
});

describe('HostSampler (a real worker thread)', () => {
  it('starts its worker on demand and reads raw host counters', async () => {
    sampler = new HostSampler({ lingerMs: 200 });
    expect(sampler.running).toBe(false);
    const t0 = performance.now();
    const c = await sampler.read();
    const firstMs = performance.now() - t0;
    expect(c).not.toBeNull();
    expect(c!.cpus).toHaveLength(os.cpus().length);
    for (const core of c!.cpus) expect(core.total).toBeGreaterThan(core.busy);
    expect(c!.mem!.totalBytes).toBe(os.totalmem());
    expect(c!.mem!.availableBytes).toBeGreaterThan(0);
    expect(c!.mem!.usedBytes).toBeLessThanOrEqual(c!.mem!.totalBytes);
    expect(c!.load).toHaveLength(3);
    // Linux: /proc/diskstats and sysfs NIC counters exist (null would mean "can't tell").
    expect(c!.disk!.values.writeBytes).toBeGreaterThanOrEqual(0);
    expect(c!.net!.values.rxBytes).toBeGreaterThanOrEqual(0);
    expect(sampler.metrics.starts).toBe(1);
    const startup = sampler.metrics.lastStartupMs!;
    expect(startup).toBeGreaterThan(0);

    const t1 = performance.now();
    await sampler.read();
    const warmMs = performance.now() - t1;
    console.log(`host worker: first read (start-up included) ${firstMs.toFixed(0)} ms, worker start-up to first answer ${startup.toFixed(0)} ms, warm read ${warmMs.toFixed(1)} ms`);
    expect(sampler.metrics.starts).toBe(1);
  });

  it('turns two readings into host rates', async () => {
    sampler = new HostSampler({ lingerMs: 200 });
    const hold = sampler.acquire();
    const a = await sampler.read();
    await sleep(700);
    const b = await sampler.read();
    const h = hostStats(a, b);
    expect(h.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(h.cpuPercent).toBeLessThanOrEqual(100);
    expect(h.cpuPerCore).toHaveLength(os.cpus().length);
    expect(h.memTotalBytes).toBe(os.totalmem());
    expect(h.diskWriteBps).toBeGreaterThanOrEqual(0);
    expect(h.netRxBps).toBeGreaterThanOrEqual(0);
    // Readings closer together than systeminformation re-reads disks carry the same timestamp: no rate.
    const c = await sampler.read();
    const d = await sampler.read();
    expect(hostStats(c, d).diskWriteBps).toBeNull();
    expect(hostStats(c, d).memTotalBytes).toBe(os.totalmem());
    hold.dispose();
  });

  it('keeps the worker while held, stops it after the linger, and never mixes two workers', async () => {
    sampler = new HostSampler({ lingerMs: 150 });
    const hold = sampler.acquire();
    const a = await sampler.read();
    await sleep(400);
    expect(sampler.running).toBe(true);
    hold.dispose();
    hold.dispose(); // idempotent
    expect(sampler.running).toBe(true);
    await until(() => !sampler!.running, 'the worker to stop');
    const b = await sampler.read();
    expect(sampler.metrics.starts).toBe(2);
    expect(b!.epoch).not.toBe(a!.epoch);
    // Counters of two different workers never combine.
    expect(hostStats(a, b).cpuPercent).toBeNull();
    expect(hostStats(a, b).diskReadBps).toBeNull();
  });

  it('gives null (not an exception) when the worker cannot start, and backs off', async () => {
    const lines: string[] = [];
    sampler = new HostSampler({ source: { kind: 'eval', code: 'throw new Error("boom")', from: 'test' }, log: (l) => lines.push(l) });
    expect(await sampler.read()).toBeNull();
    expect(lines.join('\n')).toContain('boom');
    expect(await sampler.read()).toBeNull();
    expect(sampler.metrics.starts).toBe(1);
  });

  it('times out a worker that never answers', async () => {
    sampler = new HostSampler({ source: { kind: 'eval', code: 'setInterval(() => {}, 1000)', from: 'test' }, readTimeoutMs: 200, lingerMs: 0 });
    const t0 = performance.now();
    expect(await sampler.read()).toBeNull();
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(sampler.running).toBe(false);
  });
});

describe('defaultWorkerSource', () => {
  it('prefers the compiled worker next to the module', () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-worker-'));
    fs.writeFileSync(path.join(tmp, 'host-sampler-worker.js'), '');
    fs.writeFileSync(path.join(tmp, 'host-sampler-worker.ts'), '');
    expect(defaultWorkerSource(tmp)).toEqual({ kind: 'file', path: path.join(tmp, 'host-sampler-worker.js') });
  });

  it('transpiles the TypeScript worker when running from sources', () => {
    const src = defaultWorkerSource(__dirname);
    expect(src.kind).toBe('eval');
    expect(src.kind === 'eval' && src.code).toContain('systeminformation');
  });

  it('says to rebuild when neither exists', () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-worker-'));
    expect(() => defaultWorkerSource(tmp!)).toThrow(/npm run build/);
  });
});
