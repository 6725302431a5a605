/**
 * serial.log stays bounded: rotation keeps the tail in order while a real O_APPEND writer (a shell,
 * then a real QEMU with a chatty guest) keeps writing, and the reader still shows the latest output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONFIG_VERSION, VmConfig } from '../../common/models/vm-config';
import { testGuest } from '../../test-support/guest';
import { Layout, ensurePrivateDir } from '../paths';
import { buildQemuArgs } from '../qemu/argv';
import { HOST_KINDS } from '../qemu/test-fixtures/host-kinds';
import type { HostCapabilities } from '../../common/models/host';
import {
  SERIAL_LOG_CAP_BYTES,
  SERIAL_LOG_LIMITS,
  SerialLogKeeper,
  olderSerialLog,
  readSerialLogTail,
  resetSerialLog,
  rotateSerialLog,
  type SerialLogLimits,
} from './serial-log';

let tmp: string;
const children: ChildProcess[] = [];
let keeper: SerialLogKeeper | null = null;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-serial-log-'));
});

afterEach(async () => {
  keeper?.dispose();
  keeper = null;
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const size = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rotateSerialLog', () => {
  const small: SerialLogLimits = { rotateAtBytes: 1000, keepBytes: 600 };

  it('leaves a log under the threshold alone, and a missing log is fine', async () => {
    const f = path.join(tmp, 'serial.log');
    expect(await rotateSerialLog(f, small)).toBe(false);
    fs.writeFileSync(f, 'x'.repeat(1000));
    expect(await rotateSerialLog(f, small)).toBe(false);
    expect(size(f)).toBe(1000);
  });

  it('keeps the last keepBytes of both parts, in order, and empties serial.log', async () => {
    const f = path.join(tmp, 'serial.log');
    const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line ${String(from + i).padStart(5, '0')}\n`).join('');
    fs.writeFileSync(f, lines(0, 100)); // 1100 bytes
    expect(await rotateSerialLog(f, small)).toBe(true);
    expect(size(f)).toBe(0);
    expect(fs.readFileSync(olderSerialLog(f), 'utf8')).toBe(lines(0, 100).slice(-600));
    fs.appendFileSync(f, lines(100, 200));
    expect(await rotateSerialLog(f, small)).toBe(true);
    expect(fs.readFileSync(olderSerialLog(f), 'utf8')).toBe(lines(0, 200).slice(-600));
    fs.appendFileSync(f, lines(200, 210));
    expect(await readSerialLogTail(f, 10_000)).toBe(lines(0, 200).slice(-600) + lines(200, 210));
    expect(await readSerialLogTail(f, 121)).toBe(lines(199, 210));
  });

  it('resetSerialLog empties both parts before a start', async () => {
    const f = path.join(tmp, 'serial.log');
    fs.writeFileSync(f, 'old run\n');
    fs.writeFileSync(olderSerialLog(f), 'older\n');
    await resetSerialLog(f);
    expect(size(f)).toBe(0);
    expect(fs.existsSync(olderSerialLog(f))).toBe(false);
    await resetSerialLog(path.join(tmp, 'none.log'));
  });

  it('two rotations at once: one rotates, the other skips (a lock), and nothing is duplicated', async () => {
    const f = path.join(tmp, 'serial.log');
    const lines = Array.from({ length: 200 }, (_, i) => `line ${String(i).padStart(5, '0')}\n`).join('');
    fs.writeFileSync(f, lines);
    const results = await Promise.all([rotateSerialLog(f, small), rotateSerialLog(f, small), rotateSerialLog(f, small)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await readSerialLogTail(f, 10_000)).toBe(lines.slice(-600));
    expect(fs.existsSync(`${f}.rotating`)).toBe(false);
    // A lock left by a process that died long ago is taken over.
    fs.writeFileSync(f, lines);
    fs.writeFileSync(`${f}.rotating`, '');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(`${f}.rotating`, old, old);
    expect(await rotateSerialLog(f, small)).toBe(true);
  });

  it('never follows a symbolic link planted as the log', async () => {
    const victim = path.join(tmp, 'victim.txt');
    fs.writeFileSync(victim, 'precious\n'.repeat(500));
    const f = path.join(tmp, 'serial.log');
    fs.symlinkSync(victim, f);
    expect(await rotateSerialLog(f, { rotateAtBytes: 10, keepBytes: 5 })).toBe(false);
    await resetSerialLog(f);
    expect(fs.existsSync(f)).toBe(false);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n'.repeat(500));
  });

  it('while a real O_APPEND writer keeps writing: bounded, no hole, the newest line readable', async () => {
    const f = path.join(tmp, 'serial.log');
    const limits: SerialLogLimits = { rotateAtBytes: 64 * 1024, keepBytes: 48 * 1024 };
    // `>>` opens with O_APPEND, as QEMU does with logappend=on. Numbered lines, so order is checkable.
    // Bursts of 1000 lines 20 ms apart, so rotations happen while it writes.
    const writer = spawn(
      '/bin/sh',
      ['-c', `i=0; while [ $i -lt 60000 ]; do echo "line $i"; i=$((i+1)); [ $((i % 1000)) -eq 0 ] && sleep 0.02; done >> '${f}'; echo END >> '${f}'`],
      { stdio: 'ignore' },
    );
    children.push(writer);
    const exited = new Promise((r) => writer.once('exit', r));
    let rotations = 0;
    let max = 0;
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      if (await rotateSerialLog(f, limits)) rotations++;
      max = Math.max(max, size(f) + size(olderSerialLog(f)));
      await sleep(5);
    }
    await rotateSerialLog(f, limits);
    expect(rotations).toBeGreaterThan(5);
    expect(max).toBeLessThan(limits.rotateAtBytes + limits.keepBytes + 64 * 1024);
    const text = await readSerialLogTail(f, 1024 * 1024);
    expect(text.endsWith('line 59999\nEND\n')).toBe(true);
    // No hole of zero bytes (what truncating under a writer without O_APPEND would leave).
    expect(text.includes('\0')).toBe(false);
    // Order kept: the numbers rise through the kept tail (a line cut at a rotation edge may be lost).
    const nums = text.split('\n').map((l) => /^line (\d+)$/.exec(l)?.[1]).filter((n): n is string => n !== undefined).map(Number);
    for (let i = 1; i < nums.length; i++) expect(nums[i]).toBeGreaterThan(nums[i - 1] as number);
  });
});

describe('a chatty guest on real QEMU keeps serial.log under the cap', () => {
  it('the documented defaults fit the cap', () => {
    expect(SERIAL_LOG_LIMITS.rotateAtBytes + SERIAL_LOG_LIMITS.keepBytes).toBeLessThanOrEqual(SERIAL_LOG_CAP_BYTES - 512 * 1024);
  });

  it('the guest prints ~2 MiB; with a 256 KiB budget the log stays within it and the last line is readable', async () => {
    const guest = testGuest();
    const layout = new Layout(path.join(tmp, 'lib'), path.join(tmp, 'run'));
    const config = VmConfig.parse({
      version: CONFIG_VERSION,
      id: '5e1a1a09-0000-4000-8000-0000000c4a77',
      name: 'Chatty',
      createdAt: '2025-01-01T00:00:00.000Z',
      arch: 'x86_64',
      accel: 'tcg',
      cpus: 1,
      memoryMiB: 256,
      kernel: { path: guest.kernel, initrd: guest.initrd, append: guest.append },
      network: { mode: 'none', mac: '52:54:00:5e:1a:1a' },
      display: 'none',
    });
    const paths = layout.paths(config.id);
    fs.mkdirSync(paths.bundle.dir, { recursive: true });
    ensurePrivateDir(paths.runtime.dir);
    const fixture = HOST_KINDS['linux-x86_64-tcg'];
    const bin = fixture.binaries.x86_64;
    if (!bin) throw new Error('fixture has no x86_64 binary');
    const caps: HostCapabilities = { ...fixture, binaries: { x86_64: { ...bin, path: '/usr/bin/qemu-system-x86_64' } }, nativeAio: false };
    const plan = buildQemuArgs(config, caps, paths);
    expect(plan.args.find((a) => a.startsWith('socket,id=ser0'))).toContain('logappend=on');

    // A log left by an earlier run: the start empties it.
    fs.writeFileSync(paths.bundle.serialLog, 'EARLIER RUN\n'.repeat(1000));
    await resetSerialLog(paths.bundle.serialLog);
    const q = spawn(plan.binary, [...plan.args], { stdio: 'ignore' });
    children.push(q);
    const limits: SerialLogLimits = { rotateAtBytes: 128 * 1024, keepBytes: 96 * 1024 };
    const budget = 256 * 1024;
    keeper = new SerialLogKeeper(() => [paths.bundle.serialLog], { intervalMs: 100, limits });
    keeper.start();

    const log = paths.bundle.serialLog;
    const waitFor = async (re: RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      let max = 0;
      while (Date.now() < deadline) {
        max = Math.max(max, size(log) + size(olderSerialLog(log)));
        if (re.test(await readSerialLogTail(log, 64 * 1024))) return max;
        expect(q.exitCode, 'QEMU exited').toBeNull();
        await sleep(50);
      }
      throw new Error(`serial output did not match ${re} in ${ms} ms: ${(await readSerialLogTail(log, 2000)).slice(-500)}`);
    };
    await waitFor(new RegExp(guest.readyMarker), 60_000);
    // What makes truncating in place safe: QEMU 7.2 holds the log open with O_APPEND (octal 02000).
    const fdFlags = fs
      .readdirSync(`/proc/${q.pid}/fd`)
      .filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/${q.pid}/fd/${fd}`) === log;
        } catch {
          return false;
        }
      })
      .map((fd) => Number.parseInt(/flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/${q.pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8));
    expect(fdFlags.length).toBeGreaterThan(0);
    for (const f of fdFlags) expect(f & fs.constants.O_APPEND).toBe(fs.constants.O_APPEND);
    const sock = net.connect(paths.runtime.serial);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    // Drain what QEMU sends us: a client that never reads fills the socket and stalls the guest's UART.
    sock.on('data', () => undefined);
    // ~2 MiB of numbered 64-byte lines, then a marker.
    sock.write('i=0; while [ $i -lt 32000 ]; do echo "chatty line $i ................................................"; i=$((i+1)); done; echo ALL-DONE-$((6*7))\n');
    const maxSeen = await waitFor(/ALL-DONE-42/, 240_000);
    sock.destroy();
    await keeper.pass();
    expect(maxSeen).toBeLessThanOrEqual(budget);
    expect(size(log) + size(olderSerialLog(log))).toBeLessThanOrEqual(budget);
    const text = await readSerialLogTail(log, 1024 * 1024);
    expect(text).not.toContain('EARLIER RUN');
    // The newest lines are there, before the marker. Not one exact line: when the reader falls behind
    // (a loaded host), QEMU's chardev retries a character the socket refused and its logfile gets it
    // twice ("chattty line"), so any single line may be garbled; ten in a row cannot all be.
    const last = [...text.matchAll(/^chatty line (319\d\d) /gm)];
    expect(last.length, text.slice(-2000)).toBeGreaterThan(0);
    expect(last.at(-1)!.index).toBeLessThan(text.indexOf('ALL-DONE-42'));
    expect(text.includes('\0')).toBe(false);
  }, 300_000);
});
