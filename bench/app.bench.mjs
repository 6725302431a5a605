// Issue 3 benchmarks: the engine's stream bridge and the browser UI, each against a baseline measured
// in the same run.
//  - serial: keystroke → echo through the bridge (RPC openStream → WebSocket) vs a direct connection
//    to the VM's serial unix socket;
//  - display: VNC throughput (Raw updates, non-incremental requests) through the bridge vs websockify
//    relaying the same QEMU socket;
//  - library: page load → 200 VM cards rendered in chromium vs the same page with no VMs.
// Needs the built app (`npm run bench` builds it).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { WebSocket } from 'ws';
import { cli, guest, median, percentile, rpcConnect, sleep, startServe, stopProcess, tempHome, part, requireBuilt } from './lib.mjs';

const KEYS_PER_LINE = 40;
const SERIAL_LINES = Number(process.env.BENCH_SERIAL_LINES ?? 5); // 5 × 40 = 200 keystrokes
const VNC_ROUNDS = Number(process.env.BENCH_VNC_ROUNDS ?? 3);
const VNC_SECONDS = Number(process.env.BENCH_VNC_SECONDS ?? 4);
const PAGE_LOADS = Number(process.env.BENCH_RUNS ?? 5);
const LIBRARY_VMS = 200;
const WEBSOCKIFY = process.env.VIVARIUM_WEBSOCKIFY ?? '/usr/bin/websockify';
const CHROMIUM = process.env.VIVARIUM_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];

const ms = (x) => x.toFixed(2);

// ---- processes -----------------------------------------------------------------------------------



/** Best effort: a failed stop must not hide the measurement's own error (cleanup() kills it anyway). */
function stopVm(name, t) {
  try {
    cli(['stop', name, '--force'], t.env);
  } catch {
    // cleanup() kills it
  }
}

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function waitForTcp(port, timeoutMs = 10_000) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** websockify relaying a unix socket on a free loopback port. */
async function startWebsockify(socketPath) {
  if (!fs.existsSync(WEBSOCKIFY)) throw new Error(`${WEBSOCKIFY} is missing: apt-get install websockify`);
  const port = await freePort();
  const proc = spawn(WEBSOCKIFY, [`--unix-target=${socketPath}`, `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  try {
    await Promise.race([
      waitForTcp(port),
      new Promise((_, reject) => proc.once('exit', (c) => reject(new Error(`websockify exited (${c}): ${err}`)))),
    ]);
  } catch (e) {
    await stopProcess(proc, 'SIGKILL');
    throw e;
  }
  return { url: `ws://127.0.0.1:${port}/`, stop: () => stopProcess(proc, 'SIGTERM') };
}


function openedWs(ws) {
  return new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
  });
}

async function openStreamWs(rpc, vmId, kind) {
  const { url } = await rpc.services.console.openStream(vmId, kind);
  const ws = new WebSocket(url);
  ws.binaryType = 'nodebuffer';
  await openedWs(ws);
  return ws;
}

function closeWs(ws) {
  return new Promise((r) => {
    if (ws.readyState === WebSocket.CLOSED) return r();
    ws.once('close', r);
    ws.close();
    setTimeout(() => (ws.terminate(), r()), 1000).unref();
  });
}

/** Connects to a unix socket; rejects with the socket's error. */
function connectUnix(p) {
  return new Promise((resolve, reject) => {
    const s = net.connect(p);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** A byte stream over a unix socket or a WebSocket: write(buf), onData(cb), close(). */
function unixStream(sock) {
  return {
    write: (b) => sock.write(b),
    onData: (cb) => sock.on('data', cb),
    close: async () => {
      sock.destroy();
    },
  };
}

function wsStream(ws) {
  return {
    write: (b) => ws.send(b, { binary: true }),
    onData: (cb) => ws.on('message', (d) => cb(Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d))),
    close: () => closeWs(ws),
  };
}

// ---- bytes in, awaited ------------------------------------------------------------------------------

/** Buffers incoming chunks; read(n) resolves with exactly n bytes, skip(n) drops n as they come. */
class ByteReader {
  chunks = [];
  avail = 0;
  total = 0;
  waiter = null;
  failure = null;

  push(buf) {
    this.chunks.push(buf);
    this.avail += buf.length;
    this.total += buf.length;
    this.waiter?.();
  }

  fail(e) {
    this.failure = e;
    this.waiter?.();
  }

  until(n, timeoutMs = 15_000) {
    if (this.avail >= n) return null;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => ((this.waiter = null), reject(new Error(`timed out waiting for ${n} bytes`))), timeoutMs);
      this.waiter = () => {
        if (this.failure) reject(this.failure);
        else if (this.avail < n) return;
        clearTimeout(t);
        this.waiter = null;
        resolve();
      };
      if (this.failure) this.waiter();
    });
  }

  take(n) {
    const parts = [];
    let need = n;
    while (need > 0) {
      const c = this.chunks[0];
      if (c.length <= need) {
        parts.push(c);
        this.chunks.shift();
        need -= c.length;
      } else {
        parts.push(c.subarray(0, need));
        this.chunks[0] = c.subarray(need);
        need = 0;
      }
    }
    this.avail -= n;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  async read(n) {
    await this.until(n);
    return this.take(n);
  }

  async skip(n) {
    while (n > 0) {
      await this.until(1);
      const k = Math.min(n, this.avail);
      this.take(k);
      n -= k;
    }
  }
}

// ---- serial: keystroke → echo -----------------------------------------------------------------------

/** Text view of a serial stream: waitFor(s) resolves once s arrived, and drops everything up to it. */
function serialTerminal(stream) {
  let buf = '';
  let waiter = null;
  stream.onData((d) => {
    buf += d.toString('latin1');
    waiter?.();
  });
  return {
    write: (s) => stream.write(Buffer.from(s, 'latin1')),
    clear: () => (buf = ''),
    waitFor: (s, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => ((waiter = null), reject(new Error(`no ${JSON.stringify(s)} on the serial console in ${timeoutMs} ms`))), timeoutMs);
        const check = () => {
          const i = buf.indexOf(s);
          if (i < 0) return;
          buf = buf.slice(i + s.length);
          clearTimeout(t);
          waiter = null;
          resolve();
        };
        waiter = check;
        check();
      }),
  };
}

/**
 * Types lines of single characters into the busybox shell and times each one until its echo. Each
 * line starts with `#` (a comment, so Enter just gives a new prompt) and stays shorter than 80
 * columns, so the shell's line editor echoes exactly the typed byte.
 */
async function keystrokeLatencies(term, prompt, lines) {
  // Sync on a marker only live output can contain (a bridge client first gets the scrollback).
  const marker = `sync${randomUUID().slice(0, 8)}`;
  term.write(`#${marker}\r`);
  await term.waitFor(marker);
  await term.waitFor(prompt);
  const out = [];
  for (let line = -1; line < lines; line++) {
    term.clear();
    term.write('#');
    await term.waitFor('#');
    const n = line < 0 ? 10 : KEYS_PER_LINE; // line -1 warms up and is not counted
    for (let i = 0; i < n; i++) {
      const c = String.fromCharCode(97 + (i % 26));
      term.clear();
      const t0 = performance.now();
      term.write(c);
      await term.waitFor(c);
      if (line >= 0) out.push(performance.now() - t0);
    }
    term.write('\r');
    await term.waitFor(prompt);
  }
  return out;
}

/** The bridge may add at most this much to the median echo (it claims ~0.3 ms: one log read)… */
const SERIAL_P50_SLACK_MS = 5;
/** …and at most one 60 Hz frame to the 99th percentile (its 20 ms re-read backstop must not show). */
const SERIAL_P99_SLACK_MS = 16;

async function serialRows(g, t, rowsOut) {
  cli(['create', 'serial-bench', '--accel', 'tcg', '--memory', '256M', '--cpus', '1', '--display', 'none', '--disk-size', '0',
    '--net', 'none', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append], t.env);
  const vm = JSON.parse(cli(['start', 'serial-bench', '--wait-serial', g.readyMarker, '--json'], t.env));
  // Where the product put the socket (never a copy of its layout).
  const sockPath = JSON.parse(cli(['show', 'serial-bench', '--json'], t.env)).runtime.serial;

  // Direct, while no engine holds the socket (QEMU's chardev takes one client).
  const sock = await connectUnix(sockPath);
  const direct = await keystrokeLatencies(serialTerminal(unixStream(sock)), g.prompt, SERIAL_LINES);
  sock.destroy();

  const served = await startServe(t.env);
  let rpc = null;
  try {
    rpc = await rpcConnect(served);
    const ws = await openStreamWs(rpc, vm.id, 'serial');
    const viaBridge = await keystrokeLatencies(serialTerminal(wsStream(ws)), g.prompt, SERIAL_LINES);
    await closeWs(ws);

    const row = (label, b, d, slackMs) => ({
      bench: 'serial',
      measure: `keystroke → echo ${label}, ${b.length} keys (ms)`,
      value: ms(label === 'p50' ? median(b) : percentile(b, 99)),
      baseline: `${ms(label === 'p50' ? median(d) : percentile(d, 99))} (direct unix)`,
      ratio: ((label === 'p50' ? median(b) / median(d) : percentile(b, 99) / percentile(d, 99))).toFixed(2),
      target: `≤ direct + ${slackMs} ms`,
      ok: (label === 'p50' ? median(b) - median(d) : percentile(b, 99) - percentile(d, 99)) <= slackMs,
    });
    rowsOut.push(row('p50', viaBridge, direct, SERIAL_P50_SLACK_MS), row('p99', viaBridge, direct, SERIAL_P99_SLACK_MS));
  } finally {
    rpc?.dispose();
    await served.stop();
    stopVm('serial-bench', t);
  }
}

// ---- display: VNC throughput ------------------------------------------------------------------------

/** RFB 3.8, security None, shared; returns the framebuffer size and bits per pixel. */
async function rfbHandshake(stream, reader) {
  const version = (await reader.read(12)).toString('latin1');
  if (!version.startsWith('RFB ')) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
  stream.write(Buffer.from('RFB 003.008\n', 'latin1'));
  const nTypes = (await reader.read(1))[0];
  if (nTypes === 0) throw new Error(`VNC server refused: ${(await reader.read((await reader.read(4)).readUInt32BE(0))).toString()}`);
  const types = [...(await reader.read(nTypes))];
  if (!types.includes(1)) throw new Error(`VNC server wants authentication (types ${types.join(',')})`);
  stream.write(Buffer.from([1]));
  if ((await reader.read(4)).readUInt32BE(0) !== 0) throw new Error('VNC security handshake failed');
  stream.write(Buffer.from([1])); // ClientInit: shared
  const init = await reader.read(24);
  await reader.read(init.readUInt32BE(20)); // desktop name
  const fb = { width: init.readUInt16BE(0), height: init.readUInt16BE(2), bpp: init[4] };
  // SetEncodings [Raw]: every update is the full pixels, so the relay carries the most bytes.
  const enc = Buffer.alloc(8);
  enc[0] = 2;
  enc.writeUInt16BE(1, 2);
  enc.writeInt32BE(0, 4);
  stream.write(enc);
  return fb;
}

/** Reads one server message; returns true for a FramebufferUpdate. Pixels are counted, not kept. */
async function readServerMessage(reader, fb) {
  const type = (await reader.read(1))[0];
  switch (type) {
    case 0: {
      const n = (await reader.read(3)).readUInt16BE(1);
      for (let i = 0; i < n; i++) {
        const r = await reader.read(12);
        const w = r.readUInt16BE(4);
        const h = r.readUInt16BE(6);
        const encoding = r.readInt32BE(8);
        if (encoding === 0) await reader.skip((w * h * fb.bpp) / 8);
        else if (encoding === -223) Object.assign(fb, { width: w, height: h });
        else throw new Error(`unexpected VNC encoding ${encoding}`);
      }
      return true;
    }
    case 1: {
      const n = (await reader.read(5)).readUInt16BE(3);
      await reader.skip(n * 6);
      return false;
    }
    case 2:
      return false;
    case 3:
      await reader.skip((await reader.read(7)).readUInt32BE(3));
      return false;
    default:
      throw new Error(`unexpected VNC server message ${type}`);
  }
}

/** Full non-incremental update requests, one outstanding, for `seconds`: MB/s and frames/s. */
async function vncThroughput(stream, seconds) {
  const reader = new ByteReader();
  stream.onData((d) => reader.push(d));
  try {
    const fb = await rfbHandshake(stream, reader);
    const request = () => {
      const req = Buffer.alloc(10);
      req[0] = 3; // FramebufferUpdateRequest, incremental = 0
      req.writeUInt16BE(fb.width, 6);
      req.writeUInt16BE(fb.height, 8);
      stream.write(req);
    };
    // The first update is not timed (connection setup, the VNC server's first full encode).
    request();
    while (!(await readServerMessage(reader, fb)));
    const t0 = performance.now();
    const bytes0 = reader.total;
    let frames = 0;
    while (performance.now() - t0 < seconds * 1000) {
      request();
      while (!(await readServerMessage(reader, fb)));
      frames++;
    }
    const secs = (performance.now() - t0) / 1000;
    return { mbps: (reader.total - bytes0) / secs / 1e6, fps: frames / secs, fb };
  } finally {
    await stream.close();
  }
}

/** Reads one full frame over the unix socket and tells whether much of it is lit (memtest drew). */
async function screenIsBusy(vncSock) {
  const sock = await connectUnix(vncSock);
  const stream = unixStream(sock);
  const reader = new ByteReader();
  stream.onData((d) => reader.push(d));
  try {
    const fb = await rfbHandshake(stream, reader);
    const req = Buffer.alloc(10);
    req[0] = 3;
    req.writeUInt16BE(fb.width, 6);
    req.writeUInt16BE(fb.height, 8);
    stream.write(req);
    for (;;) {
      const type = (await reader.read(1))[0];
      if (type !== 0) throw new Error(`unexpected VNC server message ${type}`);
      const n = (await reader.read(3)).readUInt16BE(1);
      let lit = 0;
      let px = 0;
      for (let i = 0; i < n; i++) {
        const r = await reader.read(12);
        const len = (r.readUInt16BE(4) * r.readUInt16BE(6) * fb.bpp) / 8;
        if (r.readInt32BE(8) !== 0) continue;
        const pixels = await reader.read(len);
        for (let o = 0; o < len; o += 4) if (pixels[o] | pixels[o + 1] | pixels[o + 2]) lit++;
        px += len / 4;
      }
      return px > 0 && lit / px > 0.2;
    }
  } finally {
    sock.destroy();
  }
}

async function displayRows(g, t, rowsOut) {
  if (!g.memtestIso) throw new Error('memtest86+ is not installed (apt-get install memtest86+)');
  cli(['create', 'display-bench', '--accel', 'tcg', '--memory', '256M', '--cpus', '1', '--disk-size', '0', '--net', 'none',
    '--display', 'vnc', '--iso', g.memtestIso], t.env);
  const vm = JSON.parse(cli(['start', 'display-bench', '--json'], t.env));
  const vncSock = JSON.parse(cli(['show', 'display-bench', '--json'], t.env)).runtime.vnc;
  const deadline = performance.now() + 60_000;
  while (!(fs.existsSync(vncSock) && (await screenIsBusy(vncSock)))) {
    if (performance.now() > deadline) throw new Error('memtest86+ drew nothing in 60 s');
    await sleep(500);
  }

  const served = await startServe(t.env);
  let rpc = null;
  let wsify = null;
  try {
    rpc = await rpcConnect(served);
    wsify = await startWebsockify(vncSock);
    const viaBridge = async () => vncThroughput(wsStream(await openStreamWs(rpc, vm.id, 'vnc')), VNC_SECONDS);
    const viaWebsockify = async () => {
      const ws = new WebSocket(wsify.url);
      ws.binaryType = 'nodebuffer';
      await openedWs(ws);
      return vncThroughput(wsStream(ws), VNC_SECONDS);
    };
    const viaUnix = async () => vncThroughput(unixStream(await connectUnix(vncSock)), VNC_SECONDS);
    // Warm up QEMU's refresh timer (it slows down while nobody asks), then alternate.
    await viaUnix();
    const b = [];
    const w = [];
    const u = [];
    for (let i = 0; i < VNC_ROUNDS; i++) {
      const order = i % 2 ? [[w, viaWebsockify], [b, viaBridge]] : [[b, viaBridge], [w, viaWebsockify]];
      for (const [into, f] of order) into.push(await f());
      u.push(await viaUnix());
    }
    const mb = median(b.map((r) => r.mbps));
    const mw = median(w.map((r) => r.mbps));
    const mu = median(u.map((r) => r.mbps));
    const { width, height, bpp } = b[0].fb;
    rowsOut.push({
      bench: 'display',
      measure: `VNC Raw ${width}×${height}×${bpp}bpp, median of ${VNC_ROUNDS}×${VNC_SECONDS} s (MB/s)`,
      value: `${mb.toFixed(1)} (${median(b.map((r) => r.fps)).toFixed(1)} fps)`,
      baseline: `${mw.toFixed(1)} (websockify, ${median(w.map((r) => r.fps)).toFixed(1)} fps)`,
      ratio: (mb / mw).toFixed(2),
      target: '≥ 0.9',
      ok: mb / mw >= 0.9,
    });
    rowsOut.push({
      bench: 'display',
      measure: 'same, no relay: the VM socket itself (the ceiling; MB/s)',
      value: `${mu.toFixed(1)} (${median(u.map((r) => r.fps)).toFixed(1)} fps)`,
      baseline: '-',
      ratio: `${(mb / mu).toFixed(2)} (bridge/unix)`,
      target: 'report',
      ok: null,
    });
  } finally {
    rpc?.dispose();
    await wsify?.stop();
    await served.stop();
    stopVm('display-bench', t);
  }
}

// ---- library: page load with 200 VMs ---------------------------------------------------------------

/** Copies of one real bundle config with fresh ids and names (as bench/engine.bench.mjs does). */
function fillLibrary(g, t, count) {
  cli(['create', 'vm-0', '--accel', 'tcg', '--memory', '256M', '--cpus', '1', '--display', 'none', '--disk-size', '0',
    '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append], t.env);
  const bundle = JSON.parse(cli(['show', 'vm-0', '--json'], t.env)).path;
  const vmsDir = path.dirname(bundle);
  const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
  for (let i = 1; i < count; i++) {
    const id = randomUUID();
    fs.mkdirSync(path.join(vmsDir, id));
    fs.writeFileSync(path.join(vmsDir, id, 'config.json'), JSON.stringify({ ...config, id, name: `vm-${i}`, disks: [] }));
  }
}

/* global document, window, MutationObserver, requestAnimationFrame -- watchLibrary and the
   waitForFunction/evaluate callbacks below run in the page, not in Node */

/**
 * Runs in the page before its scripts: notes when the library shows `n` VMs (status bar says so and
 * the listbox holds n options), then when the frame after that has been painted. Times are
 * performance.now(): milliseconds since the navigation started.
 */
function watchLibrary(n) {
  const shown = () => {
    const status = document.querySelector('footer[role="status"]')?.textContent ?? '';
    if (!status.startsWith(`${n} VMs`)) return false;
    return document.querySelectorAll('[role="listbox"][aria-label="Virtual machines"] [role="option"]').length === n;
  };
  const obs = new MutationObserver(() => {
    if (!shown()) return;
    obs.disconnect();
    const dom = performance.now();
    // rAF runs before the frame's paint; a message posted from it is handled after that paint.
    requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => (window.__vivLibraryShown = { dom, painted: performance.now() });
      ch.port2.postMessage(null);
    });
  });
  obs.observe(document, { subtree: true, childList: true, characterData: true });
}

async function libraryPage(browser, served, n) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.addInitScript(watchLibrary, n);
  await page.goto(served.url); // ?token= → cookie → /
  const load = async () => {
    await page.waitForFunction(() => window.__vivLibraryShown, null, { timeout: 30_000 });
    const t = await page.evaluate(() => window.__vivLibraryShown);
    // The check the numbers stand for, done by Playwright's own rules.
    const list = page.getByRole('listbox', { name: 'Virtual machines' });
    if (n > 0) await list.getByRole('option').nth(n - 1).waitFor({ state: 'visible', timeout: 5000 });
    await page.getByText(`${n} VMs ·`).waitFor({ state: 'visible', timeout: 5000 });
    if ((await list.getByRole('option').count()) !== n) throw new Error(`the library shows ${await list.getByRole('option').count()} VMs, not ${n}`);
    return t.painted;
  };
  await load(); // the first load warms caches and is not counted
  return {
    load: async () => {
      await page.reload({ waitUntil: 'commit' });
      return load();
    },
    close: () => context.close(),
  };
}

async function libraryRows(g, rowsOut) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  const { chromium } = await import('@playwright/test');
  const full = tempHome();
  const empty = tempHome();
  const cleanups = [];
  try {
    fillLibrary(g, full, LIBRARY_VMS);
    const servedFull = await startServe(full.env);
    cleanups.push(servedFull.stop);
    const servedEmpty = await startServe(empty.env);
    cleanups.push(servedEmpty.stop);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    cleanups.push(() => browser.close());
    const pFull = await libraryPage(browser, servedFull, LIBRARY_VMS);
    const pEmpty = await libraryPage(browser, servedEmpty, 0);
    const f = [];
    const e = [];
    for (let i = 0; i < PAGE_LOADS; i++) {
      f.push(await pFull.load());
      e.push(await pEmpty.load());
    }
    const mf = median(f);
    const me = median(e);
    rowsOut.push({
      bench: 'library',
      measure: `page load → ${LIBRARY_VMS} VM cards painted, median of ${PAGE_LOADS} (ms)`,
      value: mf.toFixed(0),
      baseline: `${me.toFixed(0)} (0 VMs)`,
      ratio: (mf / me).toFixed(2),
      target: '< 500 ms',
      ok: mf < 500,
    });
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    full.cleanup();
    empty.cleanup();
  }
}

// ---- the suite --------------------------------------------------------------------------------------

export async function run() {
  requireBuilt();
  const g = guest();
  const rows = [];
  const t = tempHome();
  try {
    await part('serial', rows, () => serialRows(g, t, rows));
    await part('display', rows, () => displayRows(g, t, rows));
  } finally {
    t.cleanup();
  }
  await part('library', rows, () => libraryRows(g, rows));
  return rows;
}
