/**
 * The stats engine against a real TCG guest: the guest burns CPU and writes 40 MiB to its disk, and
 * the VM's figures must show it. Then `vivarium stats --json` (a CLI-hosted engine) prints the
 * documented shape for the running VM.
 */
import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StatsSample, VmStats } from '../../common/models/stats';
import { runCli, runCliJson } from '../../test-support/cli';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { endEngineTest } from '../../test-support/engine-home';
import { createEngine, type Engine } from '../engine';
import { HostSampler } from './host-sampler';
import { StatsEngine } from './stats-service';

const MiB = 1024 * 1024;
const DD_MIB = 40;

/** The guest's serial console as a line-typing robot. */
class SerialConsole {
  private text = '';
  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.text += d.toString('utf8');
    });
    socket.on('error', () => undefined);
  }

  static open(file: string): Promise<SerialConsole> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: file });
      s.once('connect', () => resolve(new SerialConsole(s)));
      s.once('error', reject);
    });
  }

  type(line: string): void {
    this.socket.write(`${line}\n`);
  }

  async waitFor(re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.text);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`serial output did not match ${re} within ${timeoutMs} ms; last output:\n${this.text.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

let t: TestHome;
let engine: Engine | null = null;
let stats: StatsEngine | null = null;
let serial: SerialConsole | null = null;

beforeEach(() => {
  t = makeTestHome();
});

afterEach(async () => {
  serial?.close();
  serial = null;
  stats?.dispose();
  stats = null;
  await endEngineTest(engine, t);
  engine = null;
});

function vmOf(s: StatsSample, id: string): VmStats {
  const v = s.vms.find((x) => x.id === id);
  if (!v) throw new Error(`VM ${id} missing from the sample: ${JSON.stringify(s)}`);
  return v;
}

describe('StatsEngine with a real TCG guest', () => {
  it('sees the guest burn CPU and write to its disk', async () => {
    const g = testGuest();
    engine = createEngine({ env: t.env });
    const vm = await engine.manager.create({
      name: 'stats guest',
      accel: 'tcg',
      cpus: 1,
      memoryMiB: 256,
      diskSizeBytes: 64 * MiB,
      kernel: g.kernel,
      initrd: g.initrd,
      append: g.append,
      net: 'none',
      display: 'none',
    });
    await engine.manager.start(vm.id, { waitSerial: g.readyMarker, timeoutSec: 90 });
    const host = new HostSampler({ lingerMs: 300 });
    stats = new StatsEngine({ vms: engine.manager, layout: engine.layout, host });

    serial = await SerialConsole.open(engine.layout.runtime(vm.id).serial);
    serial.type('echo READY-$((6*7))');
    await serial.waitFor(/READY-42/, 20_000);

    // Idle, and what one sample costs (both readings; the wall time beyond the window is the
    // reading time, the CPU time includes the host worker's).
    const costs: { wallMs: number; cpuMs: number }[] = [];
    let idle: StatsSample | null = null;
    const firstT0 = performance.now();
    idle = await stats.sample({ vm: vm.id, windowMs: 1000 });
    const firstMs = performance.now() - firstT0 - 1000;
    for (let i = 0; i < 3; i++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      idle = await stats.sample({ vm: vm.id, windowMs: 1000 });
      const cpu = process.cpuUsage(cpu0);
      costs.push({ wallMs: (performance.now() - t0 - 1000) / 2, cpuMs: (cpu.user + cpu.system) / 1000 / 2 });
    }
    const idleVm = vmOf(idle!, vm.id);
    expect(idleVm.name).toBe('stats guest');
    expect(idleVm.cpuPercent).not.toBeNull();
    expect(idleVm.rssBytes).toBeGreaterThan(16 * MiB);
    expect(idleVm.diskWriteBps).toBe(0);
    expect(idleVm.netRxBps).toBeNull();
    expect(idleVm.netTxBps).toBeNull();
    // One vCPU under multi-threaded TCG has its own thread.
    expect(idleVm.vcpuPercent).toHaveLength(1);

    // Live samples while the guest works.
    const live: StatsSample[] = [];
    const sub = stats.onDidSample((s) => live.push(s));
    await waitUntil(() => live.length >= 1, 5000);
    serial.type('while :; do :; done &');
    serial.type(`dd if=/dev/zero of=/dev/vda bs=1M count=${DD_MIB} oflag=direct; echo DD-EXIT-$?`);
    await serial.waitFor(/DD-EXIT-(\d+)/, 90_000).then((m) => expect(m[1]).toBe('0'));
    // Two more samples, so the end of the write is inside a sampled interval.
    const after = live.length;
    await waitUntil(() => live.length >= after + 2, 5000);
    sub.dispose();
    expect(stats.live).toBe(false);

    const figures = live.map((s) => vmOf(s, vm.id));
    const busiest = Math.max(...figures.map((f) => f.cpuPercent ?? 0));
    const fastest = Math.max(...figures.map((f) => f.diskWriteBps ?? 0));
    // Consecutive live samples cover back-to-back intervals, so rate × interval adds up to the bytes written.
    let written = 0;
    let writeOps = 0;
    for (let i = 1; i < live.length; i++) {
      const dt = (live[i]!.at - live[i - 1]!.at) / 1000;
      written += (figures[i]!.diskWriteBps ?? 0) * dt;
      writeOps += (figures[i]!.diskWriteIops ?? 0) * dt;
    }
    const last = figures[figures.length - 1]!;
    console.log(
      `stats: first sample's readings ${firstMs.toFixed(0)} ms (worker start, QMP connect, agent probe); then one reading ` +
        `${avg(costs.map((c) => c.wallMs)).toFixed(1)} ms wall, ${avg(costs.map((c) => c.cpuMs)).toFixed(1)} ms CPU (main thread + worker); ` +
        `host worker start-up ${host.metrics.lastStartupMs?.toFixed(0)} ms; VM idle ${idleVm.cpuPercent?.toFixed(1)}% CPU, ` +
        `busy ${busiest.toFixed(1)}% (vCPU ${last.vcpuPercent?.map((v) => v.toFixed(0)).join('/')}%), peak write ${(fastest / MiB).toFixed(1)} MiB/s, ` +
        `${(written / MiB).toFixed(1)} MiB in ${writeOps.toFixed(0)} writes over ${live.length} samples, rss ${((last.rssBytes ?? 0) / MiB).toFixed(0)} MiB, ` +
        `guest mem ${last.guestMemTotalBytes === null ? 'n/a' : `${(last.guestMemTotalBytes / MiB).toFixed(0)} MiB`}`,
    );
    // A spinning vCPU keeps one host core busy; the margin allows for a host shared with other tests.
    expect(busiest).toBeGreaterThan(40);
    expect(busiest).toBeGreaterThan((idleVm.cpuPercent ?? 0) + 30);
    // The vCPU thread carries the spinning loop: its busiest interval shows it (the last one alone
    // can fall while the other test worker holds the second core).
    expect(Math.max(...figures.map((f) => f.vcpuPercent?.[0] ?? 0))).toBeGreaterThan(25);
    expect(fastest).toBeGreaterThan(0);
    expect(written).toBeGreaterThan(DD_MIB * MiB * 0.9);
    expect(written).toBeLessThan(DD_MIB * MiB * 1.15);
    expect(writeOps).toBeGreaterThan(DD_MIB * 0.9);
    expect(last.rssBytes).toBeGreaterThan(0);
    expect(last.netRxBps).toBeNull();

    for (const s of live) {
      expect(typeof s.host.cpuPercent).toBe('number');
      expect(typeof s.host.memTotalBytes).toBe('number');
      expect(typeof s.host.memAvailableBytes).toBe('number');
      expect(typeof s.host.diskWriteBps).toBe('number');
      expect(typeof s.host.netRxBps).toBe('number');
      expect(s.host.cpuPerCore.length).toBeGreaterThan(0);
      expect(s.host.load).toHaveLength(3);
    }
    // The last listener left: the worker goes after its short linger.
    await waitUntil(() => !host.running, 3000);
    expect(host.running).toBe(false);
  });

  it('`vivarium stats --json` prints the documented shape for a running VM', async () => {
    const g = testGuest();
    engine = createEngine({ env: t.env });
    const vm = await engine.manager.create({
      name: 'cli stats',
      accel: 'tcg',
      cpus: 1,
      memoryMiB: 128,
      diskSizeBytes: 16 * MiB,
      kernel: g.kernel,
      initrd: g.initrd,
      append: g.append,
      net: 'none',
      display: 'none',
    });
    await engine.manager.start(vm.id, { waitSerial: g.readyMarker, timeoutSec: 90 });
    // Let go of QMP: the CLI hosts its own engine and needs the VM's one QMP slot.
    await engine.dispose();
    engine = createEngine({ env: t.env });

    const t0 = performance.now();
    const out = await runCliJson<{ host: Record<string, unknown>; vms: Record<string, unknown>[] }>(['stats', '--json'], { env: t.env, timeoutMs: 30_000 });
    const took = performance.now() - t0;
    expect(Object.keys(out).sort()).toEqual(['host', 'vms']);
    expect(Object.keys(out.host).sort()).toEqual(
      ['cpuPercent', 'diskReadBps', 'diskWriteBps', 'memTotalBytes', 'memUsedBytes', 'netRxBps', 'netTxBps'].sort(),
    );
    for (const k of Object.keys(out.host)) expect(typeof out.host[k]).toBe('number');
    expect(out.vms).toHaveLength(1);
    const v = out.vms[0]!;
    expect(Object.keys(v).sort()).toEqual(
      ['cpuPercent', 'diskReadBps', 'diskWriteBps', 'id', 'name', 'netRxBps', 'netTxBps', 'rssBytes'].sort(),
    );
    expect(v).toMatchObject({ id: vm.id, name: 'cli stats', netRxBps: null, netTxBps: null });
    expect(typeof v.cpuPercent).toBe('number');
    expect(v.rssBytes).toBeGreaterThan(0);
    // QMP was free for the CLI's engine: block figures are there (zero: the guest is idle).
    expect(v.diskWriteBps).toBe(0);
    // About a second of sampling, plus node start-up.
    expect(took).toBeGreaterThan(1000);
    console.log(`vivarium stats --json took ${took.toFixed(0)} ms: ${JSON.stringify(out)}`);

    // Naming a VM that does not run says so.
    await engine.manager.stop(vm.id, { force: true });
    const r = await runCli(['stats', 'cli stats', '--json'], { env: t.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not running\. Start it/);
  });
});

function avg(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
