/**
 * Run state from real files and real processes: exits reconciled once into last-exit.json, a live
 * QEMU whose runtime folder vanished found again by its identity, and a failed last-exit.json write
 * logged rather than dropped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Layout } from '../paths';
import { EventLog } from './event-log';
import { scanQemuProcesses, writeRecord, writeStopRequest, type RuntimeRecord } from './records';
import { RunStates, type RuntimeEvent } from './run-state';

const ID = '5ca1ab1e-0000-4000-8000-00000000000a';
let home: string;
let runtime: string;
let layout: Layout;
let logged: string[];
let events: RuntimeEvent[];
let states: RunStates;
const children: ChildProcess[] = [];

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-rs-'));
  runtime = fs.mkdtempSync('/tmp/viv-rs-rt-');
  layout = new Layout(home, path.join(runtime, 'lib'), runtime);
  fs.mkdirSync(layout.bundle(ID).dir, { recursive: true });
  logged = [];
  events = [];
  states = new RunStates({ layout, events: new EventLog(layout, (l) => logged.push(l)), log: (l) => logged.push(l) });
  states.onDidChange((e) => events.push(e));
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(runtime, { recursive: true, force: true });
});

/** A stand-in QEMU: a real process whose command line names the VM the way QEMU's does. */
async function fakeQemu(): Promise<number> {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'qemu-system-x86_64', '-name', `guest=${ID},debug-threads=on`], { stdio: 'ignore' });
  children.push(c);
  await new Promise((r) => c.once('spawn', r));
  return c.pid!;
}

function record(pid: number): RuntimeRecord {
  return { pid, supervisorPid: pid, id: ID, startedAt: new Date().toISOString(), accel: 'tcg', argv: ['qemu-system-x86_64'], status: 'running' };
}

describe('RunStates', () => {
  it('reconciles a QEMU that is gone into last-exit.json once, with the ladder\'s sentence, and clears the runtime folder', async () => {
    const rt = layout.runtime(ID);
    layout.ensureRuntimeDir(rt.dir);
    writeRecord(rt, record(9_999_999)); // no such process
    fs.writeFileSync(rt.exitStatus, '0\n');
    writeStopRequest(rt, { by: process.pid, rung: 'quit', message: 'The guest did not respond to the power button; forced off after 30 s.' });
    expect(states.get({ id: ID, name: 'web' })).toEqual({ state: 'stopped' });
    expect(states.lastExit(ID)).toMatchObject({ reason: 'stopped', message: 'The guest did not respond to the power button; forced off after 30 s.' });
    expect(fs.existsSync(rt.record)).toBe(false);
    expect(fs.existsSync(rt.stopRequested)).toBe(false);
    expect(events.map((e) => e.kind)).toEqual(['exited']);
    // Reading again changes nothing and records nothing new.
    expect(states.get({ id: ID, name: 'web' })).toEqual({ state: 'stopped' });
    expect(events).toHaveLength(1);
    expect(await states.getAsync({ id: ID, name: 'web' })).toEqual({ state: 'stopped' });
  });

  it('a live QEMU whose whole runtime folder was removed is found by its identity and adopted, never shown stopped', async () => {
    const pid = await fakeQemu();
    const live = await scanQemuProcesses();
    expect(live.get(ID)).toBe(pid);
    const rs = states.get({ id: ID, name: 'web' }, live);
    expect(rs.state).toBe('running');
    expect('record' in rs && rs.record.pid).toBe(pid);
    expect(events).toEqual([{ kind: 'adopted', id: ID, pid, how: 'identity' }]);
    // The record is back on disk: the next reader (another process) sees it running without a scan.
    expect((await states.getAsync({ id: ID, name: 'web' })).state).toBe('running');
  });

  it('a failed last-exit.json write is logged, not dropped', () => {
    // A folder where the file should go: the atomic rename onto it fails.
    fs.mkdirSync(layout.bundle(ID).lastExit);
    states.recordFailedStart(ID, 'QEMU refused to start: no such file');
    expect(logged.some((l) => /could not record the last exit \(failed: QEMU refused to start: no such file\)/.test(l))).toBe(true);
  });
});

describe('RunStates off the event loop (issue 7)', () => {
  it('getLockedAsync reconciles a QEMU that is gone exactly as getLocked does', async () => {
    const rt = layout.runtime(ID);
    layout.ensureRuntimeDir(rt.dir);
    writeRecord(rt, record(9_999_999)); // no such process
    fs.writeFileSync(rt.exitStatus, '0\n');
    fs.writeFileSync(layout.bundle(ID).qemuLog, 'qemu-system-x86_64: terminating on signal 15 from pid 1\n');
    writeStopRequest(rt, { by: process.pid, rung: 'quit', message: 'The guest did not respond to the power button; forced off after 30 s.' });
    expect(await states.getLockedAsync({ id: ID, name: 'web' })).toEqual({ state: 'stopped' });
    expect(await states.lastExitAsync(ID)).toMatchObject({
      reason: 'stopped',
      message: 'The guest did not respond to the power button; forced off after 30 s.',
      stderrTail: ['qemu-system-x86_64: terminating on signal 15 from pid 1'],
    });
    for (const f of [rt.record, rt.stopRequested, rt.exitStatus]) expect(fs.existsSync(f)).toBe(false);
    expect(events.map((e) => e.kind)).toEqual(['exited']);
    expect(await states.getLockedAsync({ id: ID, name: 'web' })).toEqual({ state: 'stopped' });
    expect(events).toHaveLength(1);
  });

  it('getLockedAsync adopts a live QEMU by its pidfile, and by its identity when the folder is gone', async () => {
    const pid = await fakeQemu();
    const rt = layout.runtime(ID);
    layout.ensureRuntimeDir(rt.dir);
    fs.writeFileSync(rt.pidfile, `${pid}\n`);
    const byPidfile = await states.getLockedAsync({ id: ID, name: 'web' });
    expect(byPidfile.state).toBe('running');
    expect('record' in byPidfile && byPidfile.record).toMatchObject({ pid, id: ID, status: 'running' });
    expect(states.currentRecord(ID)?.pid).toBe(pid);
    fs.rmSync(rt.dir, { recursive: true });
    const byIdentity = await states.getLockedAsync({ id: ID, name: 'web' }, await scanQemuProcesses());
    expect(byIdentity.state).toBe('running');
    expect(events).toEqual([
      { kind: 'adopted', id: ID, pid, how: 'pidfile' },
      { kind: 'adopted', id: ID, pid, how: 'identity' },
    ]);
  });

  it('recordFailedStartAsync records the refusal with the log tail, clears the runtime folder, and logs a failed write', async () => {
    const rt = layout.runtime(ID);
    layout.ensureRuntimeDir(rt.dir);
    writeRecord(rt, record(9_999_999));
    fs.writeFileSync(rt.pidfile, '9999999\n');
    fs.writeFileSync(layout.bundle(ID).qemuLog, "qemu-system-x86_64: -netdev user: Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'\n");
    await states.recordFailedStartAsync(ID, 'QEMU refused to start: host port 2222 (tcp) is already in use by another program');
    expect(await states.lastExitAsync(ID)).toMatchObject({
      reason: 'failed',
      message: expect.stringContaining('host port 2222 (tcp) is already in use'),
      stderrTail: ["qemu-system-x86_64: -netdev user: Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'"],
    });
    expect(states.lastExit(ID)).toEqual(await states.lastExitAsync(ID));
    for (const f of [rt.record, rt.pidfile]) expect(fs.existsSync(f)).toBe(false);
    expect(await states.currentRecordAsync(ID)).toBeNull();
    // A folder where last-exit.json should go: the failure is logged, not dropped.
    fs.rmSync(layout.bundle(ID).lastExit);
    fs.mkdirSync(layout.bundle(ID).lastExit);
    await states.recordFailedStartAsync(ID, 'QEMU refused to start: no such file');
    expect(logged.some((l) => /could not record the last exit \(failed: QEMU refused to start: no such file\)/.test(l))).toBe(true);
  });

  it('getAsync says "starting" while another live process holds the start lock, touching nothing; a stale lock is taken over', async () => {
    const holder = await fakeQemu(); // any live process other than this one
    const rt = layout.runtime(ID);
    layout.ensureRuntimeDir(rt.dir);
    fs.writeFileSync(rt.startLock, `${holder}\n`);
    expect(await states.getAsync({ id: ID, name: 'web' })).toEqual({ state: 'starting', pid: null });
    expect(fs.readFileSync(rt.startLock, 'utf8')).toBe(`${holder}\n`);
    // Its owner gone, the lock is stale: the VM is stopped and the lock goes.
    fs.writeFileSync(rt.startLock, '9999999\n');
    expect(await states.getAsync({ id: ID, name: 'web' })).toEqual({ state: 'stopped' });
    expect(fs.existsSync(rt.startLock)).toBe(false);
  });
});
