// Issue 2 benchmarks: start latency against a hand-written QEMU command line, and list speed.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { cli, cliAsync, guest, median, tempHome, sleep } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

/** Waits for the first complete line in a file; returns ms since t0. */
async function firstLine(file, t0, timeoutMs = 60_000) {
  for (;;) {
    try {
      if (fs.readFileSync(file, 'latin1').includes('\n')) return performance.now() - t0;
    } catch {
      // not there yet
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`no serial output in ${file}`);
    await sleep(5);
  }
}

async function rawQemu(g, dir) {
  const log = path.join(dir, `raw-${randomUUID()}.log`);
  const t0 = performance.now();
  // What a person would type: TCG, the same memory/CPUs, the same kernel, serial to a file.
  const p = spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-cpu', 'max', '-m', '256', '-smp', '1', '-nodefaults', '-display', 'none',
    '-kernel', g.kernel, '-initrd', g.initrd, '-append', g.append,
    '-serial', `file:${log}`, '-nic', 'user,model=virtio-net-pci',
  ], { stdio: 'ignore' });
  try {
    return await firstLine(log, t0);
  } finally {
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
  }
}

async function vivariumStart(g, t, name) {
  // The bundle folder as the product reports it; serial.log is a documented bundle file (README).
  const log = path.join(JSON.parse(cli(['show', name, '--json'], t.env)).path, 'serial.log');
  fs.rmSync(log, { force: true });
  const t0 = performance.now();
  await cliAsync(['start', name], t.env);
  const ms = await firstLine(log, t0);
  cli(['stop', name, '--force'], t.env);
  return ms;
}

export async function run() {
  const g = guest();
  const t = tempHome();
  const rows = [];
  try {
    cli(['create', 'bench', '--accel', 'tcg', '--memory', '256M', '--cpus', '1', '--display', 'none', '--disk-size', '0',
      '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append], t.env);
    const viv = [];
    const raw = [];
    for (let i = 0; i < RUNS; i++) {
      raw.push(await rawQemu(g, t.home));
      viv.push(await vivariumStart(g, t, 'bench'));
    }
    const v = median(viv);
    const r = median(raw);
    rows.push({ bench: 'start', measure: `start → first serial line, median of ${RUNS} (ms)`, value: v.toFixed(0), baseline: `${r.toFixed(0)} (raw qemu)`, ratio: (v / r).toFixed(2), target: '≤ 1.15', ok: v / r <= 1.15 });

    // 200 bundles: copies of one real config with fresh ids and names.
    const bundle = JSON.parse(cli(['show', 'bench', '--json'], t.env)).path;
    const vmsDir = path.dirname(bundle);
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    for (let i = 1; i < 200; i++) {
      const id = randomUUID();
      fs.mkdirSync(path.join(vmsDir, id));
      fs.writeFileSync(path.join(vmsDir, id, 'config.json'), JSON.stringify({ ...config, id, name: `vm-${i}`, disks: [] }));
    }
    const times = [];
    const nodeTimes = [];
    for (let i = 0; i < RUNS; i++) {
      let t0 = performance.now();
      const out = cli(['list', '--json'], t.env);
      times.push(performance.now() - t0);
      if (JSON.parse(out).length !== 200) throw new Error('list did not return 200 VMs');
      t0 = performance.now();
      await new Promise((res) => spawn(process.execPath, ['-e', '0']).once('exit', res));
      nodeTimes.push(performance.now() - t0);
    }
    const l = median(times);
    const n = median(nodeTimes);
    // Against Node's own start-up in the same run (was an absolute "< 300 ms", which only held on an
    // idle machine): at most 200 ms above it.
    rows.push({ bench: 'list', measure: `list --json, 200 bundles, median of ${RUNS} (ms)`, value: l.toFixed(0), baseline: `${n.toFixed(0)} (node -e 0)`, ratio: `+${(l - n).toFixed(0)} ms`, target: '≤ node + 200 ms', ok: l - n <= 200 });
  } finally {
    t.cleanup();
  }
  return rows;
}
