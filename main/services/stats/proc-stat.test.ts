import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { clockTicksPerSecond, parseProcStat, parsePsLine, parsePsTime, parseVmRssBytes, readProcess, readThreadCpuSeconds } from './proc-stat';
import { cpuPercent } from './rates';

// A QEMU vCPU thread as /proc shows it: the name holds a space, a slash and parentheses.
const QEMU_THREAD_STAT =
  '4242 (CPU 0/TCG) (x)) R 4200 4200 4200 0 -1 4194368 1234 0 0 0 1500 250 0 0 20 0 5 0 98765 2147483648 65536 18446744073709551615 1 1 0 0 0 0 0 4096 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 0 0';

describe('parseProcStat', () => {
  it('splits after the last ")" and reads utime+stime (fields 14, 15) and starttime (22)', () => {
    expect(parseProcStat(QEMU_THREAD_STAT)).toEqual({ cpuTicks: 1750, state: 'R', startTicks: 98765 });
  });

  it('would misread the fields if it split at the first ")"', () => {
    // The guard the brief warns about: a naive split sees "(x))" as part of the fields.
    const naive = QEMU_THREAD_STAT.slice(QEMU_THREAD_STAT.indexOf(')') + 1).trim().split(/\s+/);
    expect(naive[0]).not.toBe('R');
  });

  it('rejects text that is not a stat line', () => {
    expect(parseProcStat('')).toBeNull();
    expect(parseProcStat('12 (x) R 1 2')).toBeNull();
  });
});

describe('parseVmRssBytes', () => {
  it('reads VmRSS in KiB', () => {
    expect(parseVmRssBytes('Name:\tqemu\nVmPeak:\t 100 kB\nVmRSS:\t    4196 kB\nThreads:\t5\n')).toBe(4196 * 1024);
    expect(parseVmRssBytes('Name:\tkthreadd\n')).toBeNull();
  });
});

describe('ps output (macOS and other non-Linux hosts)', () => {
  it('parses both BSD and procps time formats', () => {
    expect(parsePsTime('0:00.03')).toBeCloseTo(0.03);
    expect(parsePsTime('125:03.50')).toBeCloseTo(125 * 60 + 3.5);
    expect(parsePsTime('00:00:11')).toBe(11);
    expect(parsePsTime('1:02:03')).toBe(3723);
    expect(parsePsTime('2-01:00:00')).toBe(2 * 86400 + 3600);
    expect(parsePsTime('n/a')).toBeNull();
  });

  it('parses "time rss"', () => {
    expect(parsePsLine('  1:02.50  204800\n')).toEqual({ cpuSeconds: 62.5, rssBytes: 204800 * 1024 });
    expect(parsePsLine('')).toBeNull();
  });
});

describe('reading a real process', () => {
  let child: ChildProcess | null = null;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = null;
  });

  it('sees a busy process use about one core, and its RSS', async () => {
    expect(await clockTicksPerSecond()).toBeGreaterThan(0);
    child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    const pid = child.pid!;
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    const a = await readProcess(pid);
    await new Promise((r) => setTimeout(r, 1000));
    const b = await readProcess(pid);
    const dt = performance.now() - t0;
    expect(a && b).toBeTruthy();
    const pct = cpuPercent(a!.cpuSeconds, b!.cpuSeconds, dt)!;
    // The machines have 2 cores and run two test files at once: allow for sharing.
    expect(pct).toBeGreaterThan(40);
    expect(pct).toBeLessThan(115);
    expect(b!.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('reads a thread and agrees with ps', async () => {
    const main = await readThreadCpuSeconds(process.pid, process.pid);
    expect(main).toBeGreaterThan(0);
    const viaPs = await readProcess(process.pid, 'darwin'); // the ps path, run on Linux
    expect(viaPs?.rssBytes).toBeGreaterThan(0);
    expect(viaPs?.cpuSeconds).toBeGreaterThanOrEqual(0);
  });

  it('gives null for a process that is gone', async () => {
    child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const pid = child.pid!;
    await new Promise((r) => child!.once('exit', r));
    expect(await readProcess(pid)).toBeNull();
    expect(await readThreadCpuSeconds(pid, pid)).toBeNull();
  });
});
