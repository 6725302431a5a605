import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatsSample } from '../../common/models/stats';
import { errors } from '../../common/errors';
import { Layout } from '../paths';
import type { HostCounters } from './host-counters';
import { HostSampler } from './host-sampler';
import {
  hostStats,
  parseBalloonStats,
  StatsEngine,
  sumAgentNet,
  sumBlockStats,
  vcpuThreadIds,
  vmStats,
  type VmReading,
} from './stats-service';

// query-blockstats as QEMU 7.2 answers with -blockdev: device "" and the guest device's qdev path.
const BLOCKSTATS = [
  {
    device: '',
    node_name: 'disk0',
    qdev: '/machine/peripheral/vda/virtio-backend',
    stats: { rd_bytes: 1000, wr_bytes: 52_428_800, rd_operations: 10, wr_operations: 400, rd_total_time_ns: 5 },
    parent: { node_name: 'disk0-file', stats: { rd_bytes: 99_999, wr_bytes: 99_999, rd_operations: 9, wr_operations: 9 } },
  },
  { device: '', qdev: '/machine/peripheral/cd0', stats: { rd_bytes: 2048, wr_bytes: 0, rd_operations: 1, wr_operations: 0 } },
  // A node no guest device uses: not the guest's I/O.
  { device: '', node_name: 'orphan', stats: { rd_bytes: 7, wr_bytes: 7, rd_operations: 7, wr_operations: 7 } },
];

describe('sumBlockStats', () => {
  it('adds the devices the guest sees, not their protocol parents or unattached nodes', () => {
    expect(sumBlockStats(BLOCKSTATS)).toEqual({ rdBytes: 3048, wrBytes: 52_428_800, rdOps: 11, wrOps: 400 });
  });

  it('is null when there are no guest disks or the reply is odd', () => {
    expect(sumBlockStats([])).toBeNull();
    expect(sumBlockStats({})).toBeNull();
    expect(sumBlockStats([{ qdev: 'x', stats: { rd_bytes: 'a' } }])).toBeNull();
  });
});

describe('vcpuThreadIds', () => {
  it('orders thread ids by cpu-index', () => {
    const reply = [
      { 'cpu-index': 1, 'thread-id': 502, target: 'x86_64' },
      { 'cpu-index': 0, 'thread-id': 501, target: 'x86_64' },
    ];
    expect(vcpuThreadIds(reply)).toEqual([501, 502]);
  });

  it('refuses one shared thread for all vCPUs (single-threaded TCG): that is no per-vCPU figure', () => {
    expect(vcpuThreadIds([{ 'cpu-index': 0, 'thread-id': 7 }, { 'cpu-index': 1, 'thread-id': 7 }])).toBeNull();
    expect(vcpuThreadIds([])).toBeNull();
    expect(vcpuThreadIds([{ 'cpu-index': 0 }])).toBeNull();
  });
});

describe('parseBalloonStats', () => {
  it('reads the guest view and treats -1 as "not reported"', () => {
    const reply = { 'last-update': 1700000000, stats: { 'stat-total-memory': 268_435_456, 'stat-available-memory': -1 } };
    expect(parseBalloonStats(reply)).toEqual({ totalBytes: 268_435_456, availableBytes: null });
  });

  it('is null before the guest ever reported', () => {
    expect(parseBalloonStats({ 'last-update': 0, stats: { 'stat-total-memory': -1 } })).toBeNull();
    expect(parseBalloonStats({ 'last-update': 5, stats: { 'stat-total-memory': -1, 'stat-available-memory': -1 } })).toBeNull();
    expect(parseBalloonStats(null)).toBeNull();
  });
});

describe('sumAgentNet', () => {
  it('adds every interface but loopback', () => {
    const reply = [
      { name: 'lo', statistics: { 'rx-bytes': 1e9, 'tx-bytes': 1e9 } },
      { name: 'eth0', statistics: { 'rx-bytes': 1000, 'tx-bytes': 200, 'rx-packets': 3 } },
      { name: 'eth1', statistics: { 'rx-bytes': 10, 'tx-bytes': 20 } },
      { name: 'wg0' },
    ];
    expect(sumAgentNet(reply)).toEqual({ rxBytes: 1010, txBytes: 220 });
  });

  it('is null without statistics (old agents) or without interfaces', () => {
    expect(sumAgentNet([{ name: 'eth0' }])).toBeNull();
    expect(sumAgentNet([])).toBeNull();
    expect(sumAgentNet('x')).toBeNull();
  });
});

interface Fixture {
  readonly atMs: number;
  readonly epoch?: string;
  readonly proc?: VmReading['proc'];
  readonly vcpus?: readonly { tid: number; cpuSeconds: number | null }[];
  readonly block?: { rdBytes: number; wrBytes: number; rdOps: number; wrOps: number };
  readonly guestMem?: VmReading['guestMem'];
  /** When the QMP answer arrived, if not at atMs. */
  readonly qmpAtMs?: number;
}

function reading(f: Fixture): VmReading {
  const at = f.qmpAtMs ?? f.atMs;
  return {
    id: 'a1b2c3d4-e5f6-4789-abcd-ef0123456789',
    name: 'vm',
    stamp: { epoch: f.epoch ?? '100@t0', atMs: f.atMs },
    proc: f.proc ?? null,
    vcpus: f.vcpus ? { atMs: at, values: f.vcpus } : null,
    block: f.block ? { atMs: at, values: f.block } : null,
    guestMem: f.guestMem ?? null,
    net: null,
  };
}

describe('vmStats', () => {
  const fa: Fixture = {
    atMs: 1000,
    proc: { cpuSeconds: 10, rssBytes: 1 },
    vcpus: [{ tid: 1, cpuSeconds: 5 }, { tid: 2, cpuSeconds: 5 }],
    block: { rdBytes: 5000, wrBytes: 1000, rdOps: 0, wrOps: 10 },
  };
  const fb: Fixture = {
    atMs: 3000,
    proc: { cpuSeconds: 13, rssBytes: 2048 },
    vcpus: [{ tid: 1, cpuSeconds: 6 }, { tid: 2, cpuSeconds: 7 }],
    block: { rdBytes: 9096, wrBytes: 3000, rdOps: 2, wrOps: 30 },
    guestMem: { totalBytes: 100, availableBytes: 50 },
  };
  const a = reading(fa);
  const b = reading(fb);

  it('turns two readings of one VM into its figures', () => {
    expect(vmStats(a, b)).toEqual({
      name: 'vm',
      id: a.id,
      cpuPercent: 150,
      vcpuPercent: [50, 100],
      rssBytes: 2048,
      guestMemTotalBytes: 100,
      guestMemAvailableBytes: 50,
      diskReadBps: 2048,
      diskWriteBps: 1000,
      diskReadIops: 1,
      diskWriteIops: 10,
      netRxBps: null,
      netTxBps: null,
    });
  });

  it('times QMP counters by when QMP answered, not when the reading began', () => {
    // QMP answered 1 s late in the second reading: the disk delta spans 3 s, the CPU delta 2 s.
    const late = vmStats(a, reading({ ...fb, qmpAtMs: 4000 }));
    expect(late.diskWriteBps).toBeCloseTo(2000 / 3);
    expect(late.cpuPercent).toBe(150);
  });

  it('gives no rates across a restart (new pid), only the point figures', () => {
    const s = vmStats(a, reading({ ...fb, epoch: '222@t1' }));
    expect(s.cpuPercent).toBeNull();
    expect(s.vcpuPercent).toBeNull();
    expect(s.diskWriteBps).toBeNull();
    expect(s.rssBytes).toBe(2048);
    expect(s.guestMemTotalBytes).toBe(100);
  });

  it('gives no rate for a counter that reset (a disk replugged), the others still flow', () => {
    const s = vmStats(a, reading({ ...fb, block: { rdBytes: 10, wrBytes: 3000, rdOps: 1, wrOps: 30 } }));
    expect(s.diskReadBps).toBeNull();
    expect(s.diskReadIops).toBe(0.5);
    expect(s.diskWriteBps).toBe(1000);
    expect(s.cpuPercent).toBe(150);
  });

  it('gives no per-vCPU figures when a vCPU thread changed', () => {
    const replugged = reading({ ...fb, vcpus: [{ tid: 1, cpuSeconds: 6 }, { tid: 9, cpuSeconds: 7 }] });
    expect(vmStats(a, replugged).vcpuPercent).toBeNull();
  });

  it('a VM seen for the first time has point figures only', () => {
    const s = vmStats(null, b);
    expect(s.cpuPercent).toBeNull();
    expect(s.diskWriteBps).toBeNull();
    expect(s.rssBytes).toBe(2048);
  });
});

describe('hostStats', () => {
  const counters = (epoch: string, atMs: number, busy: number, total: number, wrote: number): HostCounters => ({
    epoch,
    atMs,
    cpus: [
      { busy, total },
      { busy: busy * 2, total },
    ],
    load: [0.5, 0.4, 0.3],
    mem: { totalBytes: 1000, usedBytes: 400, cachedBytes: 300, availableBytes: 600, swapTotalBytes: 0, swapUsedBytes: 0 },
    disk: { atMs, values: { readBytes: 0, writeBytes: wrote } },
    net: null,
  });

  it('computes CPU (whole host 0–100 and per core), disk rates, and passes point figures through', () => {
    const h = hostStats(counters('w1', 0, 100, 1000, 0), counters('w1', 1000, 200, 2000, 5000));
    expect(h.cpuPerCore).toEqual([10, 20]);
    expect(h.cpuPercent).toBeCloseTo(15);
    expect(h.diskWriteBps).toBe(5000);
    expect(h.netRxBps).toBeNull();
    expect(h.memUsedBytes).toBe(400);
    expect(h.load).toEqual([0.5, 0.4, 0.3]);
  });

  it('never combines two workers, and says nothing without a reading', () => {
    const h = hostStats(counters('w1', 0, 100, 1000, 0), counters('w2', 1000, 200, 2000, 5000));
    expect(h.cpuPercent).toBeNull();
    expect(h.cpuPerCore).toEqual([]);
    expect(h.diskWriteBps).toBeNull();
    expect(h.memTotalBytes).toBe(1000);
    expect(hostStats(null, null).memTotalBytes).toBeNull();
  });
});

describe('StatsEngine without VMs (real host worker)', () => {
  let engine: StatsEngine | null = null;
  let home: string | null = null;
  afterEach(() => {
    engine?.dispose();
    engine = null;
    if (home) fs.rmSync(home, { recursive: true, force: true });
    home = null;
  });

  function makeEngine(intervalMs = 300): StatsEngine {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-stats-'));
    const layout = new Layout(home, path.join(home, 'run'));
    const host = new HostSampler({ lingerMs: 100 });
    return new StatsEngine({
      layout,
      host,
      intervalMs,
      vms: {
        listSync: () => [],
        resolve: (ref) => {
          throw errors.notFound(ref);
        },
        qmpFor: () => Promise.reject(errors.state('no VMs here')),
      },
    });
  }

  it('samples over the requested window', async () => {
    engine = makeEngine();
    const t0 = performance.now();
    const s = await engine.sample({ windowMs: 600 });
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(590);
    expect(s.vms).toEqual([]);
    expect(s.host.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(s.host.diskWriteBps).toBeGreaterThanOrEqual(0);
    expect(s.host.netTxBps).toBeGreaterThanOrEqual(0);
    expect(Math.abs(s.at - Date.now())).toBeLessThan(1000);
  });

  it('rejects an unknown VM with a message that says what to do', async () => {
    engine = makeEngine();
    // The engine says what is wrong and carries the remedy (look at the list); each front end words
    // the remedy itself (the CLI: "Run `vivarium list` …", main/cli/remedy.test.ts), so a service
    // test checks the structured error, not one front end's words.
    const e: unknown = await engine.sample({ vm: 'nope' }).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ code: 'not-found', message: 'No VM named or with id "nope".', remedy: { kind: 'list-vms' } });
  });

  it('runs one loop for all listeners and stops it (and the worker) when the last one leaves', async () => {
    engine = makeEngine(300);
    const got1: StatsSample[] = [];
    const got2: StatsSample[] = [];
    const d1 = engine.onDidSample((s) => got1.push(s));
    const d2 = engine.onDidSample((s) => got2.push(s));
    expect(engine.live).toBe(true);
    const deadline = Date.now() + 5000;
    while (got2.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(got2.length).toBeGreaterThanOrEqual(3);
    // Both listeners got the very same samples from the one loop.
    expect(got1.slice(0, 3)).toEqual(got2.slice(0, 3));
    expect(got1[1]!.at - got1[0]!.at).toBeGreaterThan(200);
    expect(got1[1]!.at - got1[0]!.at).toBeLessThan(1000);
    expect(engine.hostSampler.metrics.starts).toBe(1);
    d1.dispose();
    expect(engine.live).toBe(true);
    d2.dispose();
    expect(engine.live).toBe(false);
    const n = got2.length;
    await new Promise((r) => setTimeout(r, 700));
    expect(got2.length).toBe(n);
    expect(engine.hostSampler.running).toBe(false);
  });
});

/** This agent runs on the test host itself: never let anything ask it to power off or run programs. */
const HOST_AGENT_BLOCKLIST =
  'guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,guest-exec,guest-exec-status,guest-file-open,guest-file-write,guest-set-time,guest-set-user-password,guest-set-vcpus,guest-set-memory-blocks,guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,guest-fstrim';

/** qemu-ga from $VIVARIUM_QEMU_GA, PATH or /usr/sbin (Debian: qemu-guest-agent); null when absent. */
function findQemuGa(): string | null {
  const candidates = [process.env.VIVARIUM_QEMU_GA, '/usr/sbin/qemu-ga', '/usr/bin/qemu-ga'];
  const which = spawnSync('sh', ['-c', 'command -v qemu-ga'], { encoding: 'utf8' });
  if (which.status === 0) candidates.unshift(which.stdout.trim());
  return candidates.find((c): c is string => !!c && fs.existsSync(c)) ?? null;
}

const qemuGa = findQemuGa();

/**
 * Stands between the engine and a real qemu-ga like a busy TCG guest's virtio-serial line: what the
 * client sends goes through at once, what the agent answers arrives `delayMs` later. While `up` is
 * false the line is silent, as QEMU's socket is before the guest's agent runs (it accepts, nobody
 * answers).
 */
class SlowAgentLine {
  up: boolean;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(listenPath: string, agentPath: string, readonly delayMs: number, up = true) {
    this.up = up;
    this.server = net.createServer((client) => {
      this.sockets.add(client);
      client.on('error', () => undefined);
      client.on('close', () => this.sockets.delete(client));
      if (!this.up) return;
      const agent = net.createConnection({ path: agentPath });
      this.sockets.add(agent);
      agent.on('error', () => client.destroy());
      agent.on('close', () => client.destroy());
      client.on('close', () => agent.destroy());
      client.on('data', (d: Buffer) => agent.write(d));
      agent.on('data', (d: Buffer) => setTimeout(() => client.writable && client.write(d), this.delayMs));
    });
    this.server.listen(listenPath);
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

describe.skipIf(qemuGa === null)('StatsEngine and a real guest agent (qemu-ga run on the host)', () => {
  let engine: StatsEngine | null = null;
  let home: string | null = null;
  const procs: ChildProcess[] = [];
  const lines: SlowAgentLine[] = [];
  afterEach(() => {
    engine?.dispose();
    engine = null;
    for (const l of lines.splice(0)) l.close();
    for (const p of procs.splice(0)) p.kill('SIGKILL');
    if (home) fs.rmSync(home, { recursive: true, force: true });
    home = null;
  });

  it('reports NIC throughput from the agent, and null for what QMP would give when QMP is unavailable', async () => {
    home = fs.mkdtempSync('/tmp/viv-qga-');
    const layout = new Layout(home, path.join(home, 'run'));
    const id = 'a1b2c3d4-e5f6-4789-abcd-ef0123456789';
    const rt = layout.runtime(id);
    fs.mkdirSync(rt.dir, { recursive: true });
    fs.mkdirSync(path.join(home, 'state'));
    // The agent listens where QEMU's virtio-serial chardev would; the host's NICs stand in for the guest's.
    procs.push(spawn(qemuGa!, ['-m', 'unix-listen', '-p', rt.qga, '-t', path.join(home, 'state'), '-b', HOST_AGENT_BLOCKLIST], { stdio: 'ignore' }));
    // A process standing in for QEMU (its CPU time and RSS are read from /proc).
    const stand = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    procs.push(stand);
    const deadline = Date.now() + 5000;
    while (!fs.existsSync(rt.qga) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

    const info = {
      id,
      name: 'agent vm',
      state: 'running' as const,
      pid: stand.pid!,
      accel: 'tcg' as const,
      lastExit: null,
      error: null,
      config: null,
      path: home,
      startedAt: new Date().toISOString(),
    };
    engine = new StatsEngine({
      layout,
      host: new HostSampler({ lingerMs: 0 }),
      vms: {
        listSync: () => [info],
        resolve: () => ({ id }),
        qmpFor: () => Promise.reject(errors.busy('someone else holds QMP')),
      },
    });
    const s = await engine.sample({ vm: 'agent vm', windowMs: 1000 });
    const v = s.vms[0]!;
    expect(v.id).toBe(id);
    expect(v.netRxBps).toBeGreaterThanOrEqual(0);
    expect(v.netTxBps).toBeGreaterThanOrEqual(0);
    expect(v.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(v.rssBytes).toBeGreaterThan(0);
    // No QMP: no disk, vCPU or balloon figures — null, not zero.
    expect(v.diskWriteBps).toBeNull();
    expect(v.diskReadIops).toBeNull();
    expect(v.vcpuPercent).toBeNull();
    expect(v.guestMemTotalBytes).toBeNull();
  });

  it('a present agent that misses an answer (a busy guest) is asked again on the next reading, not written off', async () => {
    home = fs.mkdtempSync('/tmp/viv-qga-');
    const layout = new Layout(home, path.join(home, 'run'));
    const id = 'b1b2c3d4-e5f6-4789-abcd-ef0123456789';
    const rt = layout.runtime(id);
    fs.mkdirSync(rt.dir, { recursive: true });
    fs.mkdirSync(path.join(home, 'state'));
    const ga = spawn(qemuGa!, ['-m', 'unix-listen', '-p', rt.qga, '-t', path.join(home, 'state'), '-b', HOST_AGENT_BLOCKLIST], { stdio: 'ignore' });
    procs.push(ga);
    const stand = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    procs.push(stand);
    const deadline = Date.now() + 5000;
    while (!fs.existsSync(rt.qga) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const info = { id, name: 'busy vm', state: 'running' as const, pid: stand.pid!, accel: 'tcg' as const, lastExit: null, error: null, config: null, path: home, startedAt: new Date().toISOString() };
    engine = new StatsEngine({
      layout,
      host: new HostSampler({ lingerMs: 0 }),
      intervalMs: 300,
      // Written off only after 3 misses in a row; once written off, not looked for again within the test.
      agent: { timeoutMs: 1000, presentTimeoutMs: 300, presentMisses: 3, retryMs: 600_000 },
      vms: { listSync: () => [info], resolve: () => ({ id }), qmpFor: () => Promise.reject(errors.busy('no QMP here')) },
    });
    const net: (number | null)[] = [];
    const sub = engine.onDidSample((s) => net.push(s.vms[0]?.netRxBps ?? null));
    const until = async (pred: () => boolean, ms: number, what: string) => {
      const end = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > end) throw new Error(`${what}; figures so far: ${JSON.stringify(net)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until(() => net.filter((v) => v !== null).length >= 2, 10_000, 'no NIC figures from the agent');
      // The agent stops answering for about one reading, as a guest busy under TCG does.
      ga.kill('SIGSTOP');
      const at = net.length;
      await until(() => net.slice(at).includes(null), 5000, 'a reading without the agent\'s answer');
      ga.kill('SIGCONT');
      const gap = net.length;
      await until(() => net.slice(gap).some((v) => v !== null), 5000, 'the figures did not come back after one missed answer');
    } finally {
      ga.kill('SIGCONT');
      sub.dispose();
    }
  });
  /** qemu-ga listening on its own socket, reached through a SlowAgentLine at the VM's agent path. */
  async function slowAgentVm(name: string, delayMs: number, up: boolean) {
    home = fs.mkdtempSync('/tmp/viv-qga-');
    const layout = new Layout(home, path.join(home, 'run'));
    const id = randomUUID();
    const rt = layout.runtime(id);
    fs.mkdirSync(rt.dir, { recursive: true });
    fs.mkdirSync(path.join(home, 'state'));
    const agentPath = path.join(home, 'ga.sock');
    procs.push(spawn(qemuGa!, ['-m', 'unix-listen', '-p', agentPath, '-t', path.join(home, 'state'), '-b', HOST_AGENT_BLOCKLIST], { stdio: 'ignore' }));
    const stand = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    procs.push(stand);
    const deadline = Date.now() + 5000;
    while (!fs.existsSync(agentPath) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const line = new SlowAgentLine(rt.qga, agentPath, delayMs, up);
    lines.push(line);
    const info = { id, name, state: 'running' as const, pid: stand.pid!, accel: 'tcg' as const, lastExit: null, error: null, config: null, path: home, startedAt: new Date().toISOString() };
    return { layout, line, vms: { listSync: () => [info], resolve: () => ({ id }), qmpFor: () => Promise.reject(errors.busy('no QMP here')) } };
  }

  it('a one-shot sample of a slow agent (600 ms an answer, past the 400 ms first wait) still has NIC figures', async () => {
    // Before: the first look gave up at 400 ms, wrote the agent off, and `vivarium stats` said
    // "n/a (needs guest agent)" for a guest whose agent answers — its counters moving all along.
    const { layout, vms } = await slowAgentVm('slow once', 600, true);
    engine = new StatsEngine({ layout, vms, host: new HostSampler({ lingerMs: 0 }) });
    const s = await engine.sample({ vm: 'slow once', windowMs: 1000 });
    expect(s.vms[0]!.netRxBps).not.toBeNull();
    expect(s.vms[0]!.netTxBps).toBeGreaterThanOrEqual(0);
  });

  it('the live loop finds an agent that starts late and answers slowly (a booting TCG guest), and keeps its figures', async () => {
    // Before: once written off, the agent was looked for with a 400 ms box, which an agent that
    // needs 600 ms never meets: the figures stayed null for as long as the guest stayed busy.
    const { layout, vms, line } = await slowAgentVm('slow boot', 600, false);
    engine = new StatsEngine({ layout, vms, host: new HostSampler({ lingerMs: 0 }), intervalMs: 300, agent: { retryMs: 500 } });
    const got: (number | null)[] = [];
    const sub = engine.onDidSample((x) => got.push(x.vms[0]?.netTxBps ?? null));
    const until = async (pred: () => boolean, ms: number, what: string) => {
      const end = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > end) throw new Error(`${what}; figures so far: ${JSON.stringify(got)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      // No agent yet: no figures (null, never a made-up zero).
      await until(() => got.length >= 3, 5000, 'no samples');
      expect(got.every((v) => v === null)).toBe(true);
      // The agent starts in the guest, answering 600 ms after each question.
      line.up = true;
      const from = got.length;
      await until(() => got.slice(from).filter((v) => v !== null).length >= 3, 15_000, 'no NIC figures from the slow agent');
      // Once found, every reading waits for it: no reading in a row of three goes without.
      const found = got.slice(from).findIndex((v) => v !== null) + from;
      expect(got.slice(found, found + 3).every((v) => v !== null)).toBe(true);
    } finally {
      sub.dispose();
    }
  });
});
