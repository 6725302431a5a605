// Issue 7 benchmarks for the command line, each against a baseline measured in the same run:
//  - list: `vivarium list` on a library of 20 VMs vs `node -e 0` (Node's own start-up), interleaved;
//    target: no more than 80 ms above it (the bundled CLI and its code cache, scripts/build-cli.mjs).
//  - start: `vivarium start NAME --wait-serial REGEX` until it returns on the guest's first line of
//    text vs a hand-written QEMU command line for the same guest — the same kernel and the same virtual
//    hardware (the RNG, the balloon and the guest agent's channel every Vivarium VM has), written as a
//    person would, serial on stdout — until that line reaches its stdout; interleaved, median of the
//    per-pair ratios; target ≤ 1.05. That ratio is Vivarium's own cost. A third line without those
//    devices, in the same rounds, gives what the devices cost the guest's boot (information: the
//    devices are kept, README "Benchmarks").
// Paths come from the product (`vivarium show --json`), never from a copy of its layout.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, REPO, cli, guest, median, tempHome, part, timedRun } from './lib.mjs';

const LIST_RUNS = Number(process.env.BENCH_LIST_RUNS ?? 15);
const LIST_VMS = 20;
const LIST_SLACK_MS = 80;
// One guest boot varies by about ±150 ms (a standard deviation of ~5 % of a per-round ratio) from
// run to run under TCG, more than the difference measured: the median of 15 rounds has a standard
// error of ~1.6 % (7 rounds: ~2.4 %).
const START_PAIRS = Number(process.env.BENCH_START_PAIRS ?? process.env.BENCH_RUNS ?? 15);
const START_TARGET = 1.05;
/** The guest's first line with text: busybox's banner (the kernel is `quiet`). */
const FIRST_LINE = 'BusyBox v';

/**
 * Wall time of one process from spawn to exit, in ms; rejects on a non-zero exit. `[CLI, …]` runs
 * the `vivarium` executable as a person's shell does (its first line picks Node and its flags);
 * anything else runs under this Node.
 */
function timed(args, env) {
  return args[0] === CLI ? timedRun(CLI, args.slice(1), env) : timedRun(process.execPath, args, env);
}

async function listRow(rows) {
  const t = tempHome();
  try {
    for (let i = 0; i < LIST_VMS; i++) {
      cli(['create', `vm-${String(i).padStart(2, '0')}`, '--accel', 'tcg', '--memory', '128M', '--disk-size', '0', '--display', 'none', '--net', 'none'], t.env);
    }
    if (JSON.parse(cli(['list', '--json'], t.env)).length !== LIST_VMS) throw new Error(`list did not show ${LIST_VMS} VMs`);
    const node = [];
    const viv = [];
    await timed(['-e', '0'], t.env); // warm the file cache for both
    await timed([CLI, 'list'], t.env);
    for (let i = 0; i < LIST_RUNS; i++) {
      const order = i % 2 ? [[viv, [CLI, 'list']], [node, ['-e', '0']]] : [[node, ['-e', '0']], [viv, [CLI, 'list']]];
      for (const [into, args] of order) into.push(await timed(args, t.env));
    }
    const v = median(viv);
    const n = median(node);
    rows.push({
      bench: 'cli',
      measure: `list, ${LIST_VMS} VMs, median of ${LIST_RUNS} (ms)`,
      value: v.toFixed(0),
      baseline: `${n.toFixed(0)} (node -e 0)`,
      ratio: `+${(v - n).toFixed(0)} ms`,
      target: `≤ node + ${LIST_SLACK_MS} ms`,
      ok: v - n <= LIST_SLACK_MS,
    });
  } finally {
    t.cleanup();
  }
}

/**
 * The virtual hardware every Vivarium VM has besides the basics, written by hand as a person (or
 * libvirt's domain XML) would give it: an RNG fed from /dev/urandom, a memory balloon, and a
 * virtio-serial port for the guest agent (its socket in `dir`).
 */
function sameDevices(dir) {
  // prettier-ignore
  return [
    '-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0',
    '-device', 'virtio-balloon-pci,deflate-on-oom=on,free-page-reporting=on',
    '-device', 'virtio-serial-pci', '-chardev', `socket,id=qga0,path=${path.join(dir, 'qga.sock')},server=on,wait=off`,
    '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
  ];
}

/**
 * The same guest by hand: what a person would type, serial on stdout; ms until FIRST_LINE.
 * `devices`: extra arguments (sameDevices) or none.
 */
async function handWritten(g, devices = []) {
  const t0 = performance.now();
  // prettier-ignore
  const p = spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-machine', 'q35', '-cpu', 'max', '-m', '256', '-smp', '1', '-nodefaults', '-display', 'none',
    '-kernel', g.kernel, '-initrd', g.initrd, '-append', g.append, '-serial', 'stdio', '-net', 'none', ...devices,
  ], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    return await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the hand-written QEMU printed no "${FIRST_LINE}" in 120 s`)), 120_000);
      p.stdout.on('data', (d) => {
        out += d.toString('latin1');
        if (out.includes(FIRST_LINE)) {
          clearTimeout(timer);
          resolve(performance.now() - t0);
        }
      });
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the hand-written QEMU exited (${code}) before "${FIRST_LINE}"`));
      });
    });
  } finally {
    const exited = new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', r)));
    p.kill('SIGKILL');
    await exited;
  }
}

async function startRow(rows) {
  const g = guest();
  const t = tempHome();
  const sock = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-bench-qga-'));
  try {
    cli(['create', 'start-bench', '--accel', 'tcg', '--memory', '256M', '--cpus', '1', '--display', 'none', '--disk-size', '0',
      '--net', 'none', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append], t.env);
    const kinds = {
      vivarium: async () => {
        const ms = await timed([CLI, 'start', 'start-bench', '--wait-serial', FIRST_LINE, '--timeout', '120'], t.env);
        cli(['stop', 'start-bench', '--force'], t.env);
        return ms;
      },
      same: () => handWritten(g, sameDevices(sock)),
      bare: () => handWritten(g),
    };
    // One of each first (page cache, the host probe's cache), not counted.
    for (const run of Object.values(kinds)) await run();
    const ms = { vivarium: [], same: [], bare: [] };
    const order = Object.keys(kinds);
    for (let i = 0; i < START_PAIRS; i++) {
      // Each round runs all three, starting with a different one each time (a rotation).
      for (let k = 0; k < order.length; k++) {
        const kind = order[(i + k) % order.length];
        ms[kind].push(await kinds[kind]());
      }
    }
    const ratioOf = (a, b) => median(ms[a].map((v, i) => v / ms[b][i]));
    const ratio = ratioOf('vivarium', 'same');
    // The rounds themselves, for reading a noisy run (stderr; the table has the medians).
    console.error(`cli start rounds (vivarium/hand-written/hand-written without the devices, ms): ${ms.vivarium.map((v, i) => `${v.toFixed(0)}/${ms.same[i].toFixed(0)}/${ms.bare[i].toFixed(0)}`).join(' ')}`);
    rows.push({
      bench: 'cli',
      measure: `start --wait-serial → guest's first line, ${START_PAIRS} interleaved rounds (ms)`,
      value: median(ms.vivarium).toFixed(0),
      baseline: `${median(ms.same).toFixed(0)} (hand-written qemu, same devices)`,
      ratio: ratio.toFixed(3),
      target: `≤ ${START_TARGET}`,
      ok: ratio <= START_TARGET,
    });
    rows.push({
      bench: 'cli',
      measure: "what the RNG, balloon and agent channel cost the guest's boot (the hand-written lines)",
      value: median(ms.same).toFixed(0),
      baseline: `${median(ms.bare).toFixed(0)} (hand-written qemu, no devices)`,
      ratio: ratioOf('same', 'bare').toFixed(3),
      target: 'information',
      ok: null,
    });
  } finally {
    fs.rmSync(sock, { recursive: true, force: true });
    t.cleanup();
  }
}

export async function run() {
  if (!fs.existsSync(path.join(REPO, 'out', 'main', 'cli', 'vivarium.js'))) {
    throw new Error('out/main/cli/vivarium.js is missing: run `npm run build` (or `npm run bench`) first');
  }
  const rows = [];
  await part('cli', rows, () => listRow(rows));
  await part('cli', rows, () => startRow(rows));
  return rows;
}
