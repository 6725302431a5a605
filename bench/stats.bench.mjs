// Issue 4 benchmarks: what live statistics cost, each against the same setup with stats off,
// measured in the same run.
//  - engine: `vivarium serve`'s own CPU (/proc/<pid>/stat, its threads and reaped children) while
//    2 RPC clients follow stats.onDidSample for 10 running VMs, vs the same clients following only
//    vms.onDidChange;
//  - renderer: the page's main-thread busy time (CDP Performance.getMetrics → TaskDuration) with the
//    library's 10 VM sparklines and the host strip drawing live, vs the same page with the sample
//    events dropped before the app sees them.
// Needs the built app (`npm run bench` builds it). The 10 guests are idle TCG VMs: on a 2-core
// machine their own CPU is a constant background to both phases (reported in its own row).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { WebSocket } from 'ws';
import { cli, guest, rpcConnect, sleep, startServe, tempHome, part, requireBuilt } from './lib.mjs';

const VMS = 10;
/** Length of each engine phase. */
const ENGINE_SECONDS = Number(process.env.BENCH_STATS_SECONDS ?? 60);
/** Main-thread time measured per page and phase, in alternating slices of PAGE_SLICE_SECONDS. */
const PAGE_SECONDS = Number(process.env.BENCH_STATS_PAGE_SECONDS ?? Math.min(30, ENGINE_SECONDS));
const PAGE_SLICES = 6;
const PAGE_SETTLE_MS = 5000;
const CLIENTS = 2;
const ENGINE_TARGET_PERCENT = 2;
const RENDERER_TARGET_PERCENT = 5;
const CHROMIUM = process.env.VIVARIUM_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];
/** Big enough for the library's grid to show all 10 cards: graphs scrolled out of view don't draw. */
const VIEWPORT = { width: 1440, height: 1000 };

const pct = (x) => x.toFixed(2);

// ---- CPU accounting from /proc --------------------------------------------------------------------

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/**
 * utime + stime + cutime + cstime of a process, in clock ticks: all its threads (the host sampler's
 * worker included) and the children it has reaped (systeminformation's helpers). Fields 14–17 of
 * /proc/<pid>/stat, counted after the `)` that ends the command name.
 */
function processTicks(pid) {
  const { own, children } = processTickParts(pid);
  return own + children;
}

/** The same, split: the process's own threads and its reaped children. */
function processTickParts(pid) {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state), so field n is f[n - 3].
  return { own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

/** Same for processes that may be gone (a QEMU that died counts what it had). */
function ticksOf(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += processTicks(pid);
    } catch {
      // exited: nothing more to add
    }
  }
  return sum;
}

/** Host busy and total jiffies over all cores, from the first line of /proc/stat. */
function hostJiffies() {
  const [, ...v] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const n = v.map(Number);
  const idle = n[3] + (n[4] ?? 0);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Snapshot of everything a phase reports; `since(prev)` turns two snapshots into percentages. */
function cpuSnapshot(servePid, qemuPids) {
  const serve = processTickParts(servePid);
  return { at: performance.now(), serve: serve.own + serve.children, serveChildren: serve.children, qemu: ticksOf(qemuPids), host: hostJiffies() };
}

function cpuBetween(a, b) {
  const secs = (b.at - a.at) / 1000;
  const ofOneCore = (ticks) => (ticks / CLK_TCK / secs) * 100;
  const hostTotal = b.host.total - a.host.total;
  return {
    seconds: secs,
    serve: ofOneCore(b.serve - a.serve),
    serveChildren: ofOneCore(b.serveChildren - a.serveChildren),
    qemu: ofOneCore(b.qemu - a.qemu),
    // Whole machine, as a share of all its cores.
    hostBusy: hostTotal > 0 ? ((b.host.busy - a.host.busy) / hostTotal) * 100 : Number.NaN,
  };
}

// ---- processes and RPC ---------------------------------------------------------------------------




// ---- the 10 VMs -------------------------------------------------------------------------------------

/** Creates and starts VMS test guests one after the other; returns their ids and QEMU pids. */
function startVms(g, t) {
  const vms = [];
  for (let i = 0; i < VMS; i++) {
    const name = `vm${i}`;
    cli(['create', name, '--accel', 'tcg', '--memory', '128M', '--cpus', '1', '--disk-size', '0', '--display', 'none',
      '--net', 'none', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append], t.env);
    const vm = JSON.parse(cli(['start', name, '--wait-serial', g.readyMarker, '--timeout', '120', '--json'], t.env));
    if (typeof vm.pid !== 'number') throw new Error(`vivarium start ${name} reported no QEMU pid`);
    vms.push({ id: vm.id, name, pid: vm.pid });
  }
  return vms;
}

// ---- engine: CPU with and without live stats ----------------------------------------------------------

/** Checks one sample as a client got it: all VMS VMs, each with a numeric CPU figure. */
function sampleProblem(s) {
  if (!s || !Array.isArray(s.vms)) return 'a sample without a VM list';
  if (s.vms.length !== VMS) return `a sample listing ${s.vms.length} VMs, not ${VMS}`;
  const bad = s.vms.find((v) => typeof v.cpuPercent !== 'number' || !Number.isFinite(v.cpuPercent));
  return bad ? `${bad.name}'s cpuPercent is ${bad.cpuPercent}` : null;
}

/** Resolves once every client has had a sample (the loop's first one needs two readings). */
function firstSamples(counters, timeoutMs = 20_000) {
  const deadline = performance.now() + timeoutMs;
  return (async () => {
    while (counters.some((c) => c.count === 0)) {
      if (performance.now() > deadline) throw new Error(`no stats sample reached every client within ${timeoutMs / 1000} s`);
      await sleep(100);
    }
  })();
}

async function engineRows(served, vms, rows) {
  const clients = [];
  const subs = [];
  try {
    for (let i = 0; i < CLIENTS; i++) clients.push(await rpcConnect(served));
    const qemuPids = vms.map((v) => v.pid);
    // Phase A: connected, listening to VM changes only, as a library page does without graphs.
    for (const c of clients) subs.push(c.services.vms.onDidChange(() => {}));
    await sleep(2000);
    const a0 = cpuSnapshot(served.pid, qemuPids);
    await sleep(ENGINE_SECONDS * 1000);
    const a = cpuBetween(a0, cpuSnapshot(served.pid, qemuPids));

    // Phase B: the same, plus both following live samples.
    const counters = clients.map(() => ({ count: 0, problem: null }));
    clients.forEach((c, i) => {
      const counter = counters[i];
      subs.push(
        c.services.stats.onDidSample((s) => {
          counter.count++;
          counter.problem ??= sampleProblem(s);
        }),
      );
    });
    await firstSamples(counters);
    await sleep(1000);
    for (const c of counters) Object.assign(c, { count: 0, problem: null });
    const b0 = cpuSnapshot(served.pid, qemuPids);
    await sleep(ENGINE_SECONDS * 1000);
    const b = cpuBetween(b0, cpuSnapshot(served.pid, qemuPids));
    const got = counters.map((c) => c.count);

    const problem = counters.find((c) => c.problem)?.problem;
    if (problem) throw new Error(`stats samples were wrong: ${problem}`);
    // About one a second; allow for the window's edges and a slow reading.
    const expected = Math.floor(b.seconds * 0.85);
    if (got.some((n) => n < expected)) throw new Error(`clients got ${got.join(' and ')} samples in ${b.seconds.toFixed(0)} s, expected ≥ ${expected} each`);

    rows.push({
      bench: 'stats',
      measure:
        `serve CPU, ${VMS} VMs × ${CLIENTS} clients live, ${b.seconds.toFixed(0)} s (% of a core; stats cost B−A ${pct(b.serve - a.serve)}, ` +
        `reaped children ${pct(b.serveChildren)} vs ${pct(a.serveChildren)}; ${got.join('+')} samples)`,
      value: pct(b.serve),
      baseline: `${pct(a.serve)} (stats off)`,
      ratio: a.serve > 0 ? (b.serve / a.serve).toFixed(2) : '-',
      target: `< ${ENGINE_TARGET_PERCENT} %`,
      ok: b.serve < ENGINE_TARGET_PERCENT,
    });
    rows.push({
      bench: 'stats',
      measure: `context: ${VMS} idle TCG guests' QEMU (% of a core) / host busy (% of ${hostCores()} cores), B vs A`,
      value: `${b.qemu.toFixed(0)} / ${b.hostBusy.toFixed(0)}`,
      baseline: `${a.qemu.toFixed(0)} / ${a.hostBusy.toFixed(0)}`,
      ratio: '-',
      target: 'report',
      ok: null,
    });
  } finally {
    for (const s of subs) s.dispose();
    for (const c of clients) c.dispose();
  }
}

function hostCores() {
  return fs.readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).length;
}

// ---- renderer: main-thread time with live graphs ------------------------------------------------------

/* global window, document -- statsGate and the evaluate callbacks run in the page (where
   `WebSocket` is the browser's, not the `ws` import: Playwright sends the function's source) */

/**
 * Runs in the page before its scripts. Wraps the `message` listeners of the page's /rpc WebSocket
 * so that, while `window.__vivStatsGate.closed`, stats sample events are dropped before the app's
 * RPC client sees them: the baseline is the same page, the same DOM, the same engine and the same
 * socket traffic, with only the samples' parsing, storing and drawing taken away. A sample event is
 * recognised by its envelope and a key only samples carry (HostStats.cpuPerCore).
 */
function statsGate() {
  const gate = { closed: false, passed: 0, dropped: 0 };
  window.__vivStatsGate = gate;
  const add = WebSocket.prototype.addEventListener;
  WebSocket.prototype.addEventListener = function (type, listener, options) {
    if (type !== 'message' || typeof listener !== 'function' || !String(this.url).includes('/rpc')) {
      return add.call(this, type, listener, options);
    }
    return add.call(
      this,
      type,
      function (e) {
        if (typeof e.data === 'string' && e.data.startsWith('{"t":"event"') && e.data.includes('"cpuPerCore"')) {
          if (gate.closed) {
            gate.dropped++;
            return undefined;
          }
          gate.passed++;
        }
        return listener.call(this, e);
      },
      options,
    );
  };
}

/** Charts that have been drawn (uPlot made their canvas) and sit inside the viewport. */
function drawnGraphsInView(selector) {
  return [...document.querySelectorAll(`${selector} canvas`)].filter((c) => {
    const r = c.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < window.innerHeight && r.right > 0 && r.left < window.innerWidth;
  }).length;
}

async function waitForGraphs(page, selector, want, timeoutMs = 30_000) {
  const deadline = performance.now() + timeoutMs;
  let n = 0;
  while (performance.now() < deadline) {
    n = await page.evaluate(drawnGraphsInView, selector);
    if (n >= want) return n;
    await sleep(250);
  }
  return n;
}

const setGate = (page, closed) => page.evaluate((c) => (window.__vivStatsGate.closed = c), closed);
const gateCounts = (page) => page.evaluate(() => ({ ...window.__vivStatsGate }));

/**
 * Main-thread busy share (TaskDuration delta / wall time × 100) with samples flowing (live) and
 * dropped (off), in alternating slices so that the machine's other load falls on both alike.
 */
async function mainThreadBusy(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const taskSeconds = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value;
  const sliceMs = (PAGE_SECONDS / PAGE_SLICES) * 1000;
  const sums = { live: { busy: 0, wall: 0, samples: 0 }, off: { busy: 0, wall: 0, samples: 0 } };
  try {
    for (let i = 0; i < PAGE_SLICES * 2; i++) {
      const phase = i % 2 === 0 ? 'off' : 'live';
      await setGate(page, phase === 'off');
      const g0 = await gateCounts(page);
      const t0 = performance.now();
      const b0 = await taskSeconds();
      await sleep(sliceMs);
      const b1 = await taskSeconds();
      const t1 = performance.now();
      const g1 = await gateCounts(page);
      sums[phase].busy += b1 - b0;
      sums[phase].wall += (t1 - t0) / 1000;
      sums[phase].samples += phase === 'live' ? g1.passed - g0.passed : g1.dropped - g0.dropped;
    }
  } finally {
    await setGate(page, false).catch(() => {});
    await cdp.detach().catch(() => {});
  }
  const share = (s) => (s.busy / s.wall) * 100;
  return { live: share(sums.live), off: share(sums.off), liveSamples: sums.live.samples, offSamples: sums.off.samples, seconds: sums.live.wall };
}

function rendererRow(what, graphs, m, extra = '') {
  if (m.liveSamples < m.seconds * 0.8) throw new Error(`${what}: only ${m.liveSamples} samples reached the page in ${m.seconds.toFixed(0)} s of live slices`);
  return {
    bench: 'stats',
    measure: `renderer main thread, ${what}: ${graphs}, ${m.seconds.toFixed(0)} s live (% busy; ${m.liveSamples} samples drawn, ${m.offSamples} dropped${extra})`,
    value: pct(m.live),
    baseline: `${pct(m.off)} (samples dropped)`,
    ratio: m.off > 0 ? (m.live / m.off).toFixed(2) : '-',
    target: `< ${RENDERER_TARGET_PERCENT} %`,
    ok: m.live < RENDERER_TARGET_PERCENT,
  };
}

async function rendererRows(served, vms, rows) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  const { chromium } = await import('@playwright/test');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({ viewport: VIEWPORT });
    await context.addInitScript(statsGate);
    const library = await context.newPage();
    await library.goto(served.url); // ?token= → cookie → /
    const list = library.getByRole('listbox', { name: 'Virtual machines' });
    await list.getByRole('option').nth(VMS - 1).waitFor({ state: 'visible', timeout: 30_000 });
    await waitForGraphs(library, '.vm-card', VMS);
    await sleep(PAGE_SETTLE_MS);
    const sparks = await library.evaluate(drawnGraphsInView, '.vm-card');
    const hostGraphs = await library.evaluate(drawnGraphsInView, '.host-strip');
    const m = await mainThreadBusy(library);
    rows.push(rendererRow('library', `${sparks} VM sparklines + ${hostGraphs} host`, m, `; ${VIEWPORT.width}×${VIEWPORT.height}`));

    // Fewer than VMS sparklines drawing (cards out of view, or none on the cards): measure a VM
    // window's Stats tab as well, the other place VM graphs live.
    if (sparks < VMS || process.env.BENCH_STATS_VM_TAB === '1') {
      await library.close();
      const vmPage = await context.newPage();
      await vmPage.goto(`${served.origin}/#/vm/${encodeURIComponent(vms[0].id)}`);
      const tab = vmPage.getByRole('tablist', { name: 'Consoles' }).getByRole('tab', { name: 'Stats' });
      await tab.click({ timeout: 30_000 });
      const panel = '[data-testid="vm-stats"]';
      await waitForGraphs(vmPage, panel, 1);
      await sleep(PAGE_SETTLE_MS);
      // The test guest has no disk and no guest agent: those panels say so instead of drawing.
      const graphs = await vmPage.evaluate(drawnGraphsInView, panel);
      const notAvailable = await vmPage.locator(`${panel} .graph-unavailable`).count();
      const mv = await mainThreadBusy(vmPage);
      rows.push(rendererRow(`VM window Stats tab (${vms[0].name})`, `${graphs} charts (+${notAvailable} not available)`, mv));
    }
  } finally {
    await browser.close();
  }
}

// ---- the suite --------------------------------------------------------------------------------------

export async function run() {
  requireBuilt();
  const g = guest();
  const rows = [];
  const t = tempHome();
  let served = null;
  try {
    const vms = startVms(g, t);
    served = await startServe(t.env);
    await part('stats', rows, () => engineRows(served, vms, rows));
    await part('stats', rows, () => rendererRows(served, vms, rows));
  } catch (e) {
    rows.push({ bench: 'stats', measure: `failed: ${e.message.split('\n')[0]}`, value: '-', target: '-', ok: false });
  } finally {
    await served?.stop();
    t.cleanup();
  }
  return rows;
}
