// Shared helpers for the benchmarks: temp libraries, timing, medians, the result table.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { WebSocket } from 'ws';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(REPO, 'bin', 'vivarium.js');

export function tempHome() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-bench-'));
  const runtimeDir = fs.mkdtempSync('/tmp/vb-');
  const env = { ...process.env, VIVARIUM_HOME: home, VIVARIUM_RUNTIME_DIR: runtimeDir };
  return {
    home,
    runtimeDir,
    env,
    cleanup() {
      // Kill every QEMU of this library: pidfiles live at <runtime>/<library>/<vm>/qemu.pid, and
      // as a backstop any process whose command line names the runtime folder.
      const pids = new Set();
      const sub = (d) => (fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(d, e.name)) : []);
      for (const lib of sub(runtimeDir)) {
        for (const vm of sub(lib)) {
          const pidfile = path.join(vm, 'qemu.pid');
          if (fs.existsSync(pidfile)) pids.add(Number(fs.readFileSync(pidfile, 'utf8')));
        }
      }
      for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
        try {
          if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(runtimeDir)) pids.add(Number(p));
        } catch {
          // gone
        }
      }
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(runtimeDir, { recursive: true, force: true });
    },
  };
}

export function cli(args, env) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vivarium ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

export function cliAsync(args, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vivarium ${args.join(' ')}: ${err}`))));
  });
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wall time of one process `cmd args` from spawn to exit, in ms; rejects on a non-zero exit with its stderr. */
export function timedRun(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.once('error', reject);
    p.once('exit', (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${code}: ${err.trim()}`));
    });
  });
}


export function guest() {
  const file = path.join(REPO, '.cache', 'test-guest', 'guest.json');
  if (!fs.existsSync(file)) {
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'build-test-guest.mjs')], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('could not build the test guest');
  }
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Prints the result table. Each row: {bench, measure, value, baseline, ratio, target, ok}. */
export function printTable(rows) {
  const cols = ['bench', 'measure', 'vivarium', 'baseline', 'ratio', 'target', 'result'];
  const cells = rows.map((r) => [r.bench, r.measure, r.value, r.baseline ?? '-', r.ratio ?? '-', r.target, r.ok === null ? 'n/a' : r.ok ? 'PASS' : 'FAIL']);
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => String(row[i]).length)));
  const line = (row) => row.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  console.log(line(cols));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells) console.log(line(row));
}

const requireCjs = createRequire(import.meta.url);

/** SIGTERM (or `signal`), SIGKILL after 5 s; resolves when the child has exited. */
export async function stopProcess(proc, signal = 'SIGTERM') {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** `vivarium serve --port 0` on a library; resolves with its URL, origin, token and pid once it printed the URL. */
export async function startServe(env) {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`vivarium serve printed no URL in 20 s: ${err}`)), 20_000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vivarium serve exited (${code}): ${err}`));
    });
  }).catch((e) => {
    proc.kill('SIGKILL');
    throw e;
  });
  const u = new URL(url);
  return { url, origin: u.origin, token: u.searchParams.get('token'), pid: proc.pid, stop: () => stopProcess(proc) };
}

/** The browser's RPC client, from Node: ws://…/rpc with the page's Origin and the token as ?token=. */
export async function rpcConnect(served) {
  const { createRpcClient } = requireCjs('../out/main/common/rpc/client.js');
  const { wsConnection } = requireCjs('../out/main/server/transports/websocket.js');
  const ws = new WebSocket(`${served.origin.replace(/^http/, 'ws')}/rpc?token=${encodeURIComponent(served.token)}`, {
    headers: { Origin: served.origin },
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
  });
  return createRpcClient(wsConnection(ws), { onError: () => {} });
}

/** The compiled engine and renderer the suites load; `npm run bench` builds them. */
export function requireBuilt() {
  for (const f of ['out/main/common/rpc/client.js', 'out/main/server/transports/websocket.js', 'out/renderer/index.html']) {
    if (!fs.existsSync(path.join(REPO, f))) throw new Error(`${f} is missing: run \`npm run build\` (or \`npm run bench\`) first`);
  }
}

/** Runs one part of a suite; a part that throws becomes one failed row, so the other parts still report. */
export async function part(name, rows, f) {
  try {
    await f();
  } catch (e) {
    rows.push({ bench: name, measure: `failed: ${e.message.split('\n')[0]}`, value: '-', target: '-', ok: false });
  }
}
