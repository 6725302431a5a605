/**
 * Side processes and the supervisor with real processes: a helper that serves a unix socket, one that
 * writes a file when ready, one that fails; and the supervising shell ending helpers when "QEMU" (here
 * a shell that exits) ends.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SUPERVISOR_SCRIPT } from '../../qemu/process';
import { pidAlive } from '../../runtime/records';
import { startSideProcesses, stopSideProcesses, transientFiles, writeGeneratedFiles, type StartedSide } from './side-processes';

let dir: string;
let started: StartedSide[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-side-'));
});
afterEach(async () => {
  await stopSideProcesses(started);
  started = [];
  fs.rmSync(dir, { recursive: true, force: true });
});

const node = process.execPath;
const socketHelper = (sock: string, delayMs = 200) =>
  `setTimeout(() => require('net').createServer((c) => c.end()).listen(${JSON.stringify(sock)}), ${delayMs}); setInterval(() => {}, 1000);`;

async function waitGone(pids: readonly number[], ms = 5_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pids.some(pidAlive)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('side processes', () => {
  it('starts helpers in order, each once it is ready, and ends them', async () => {
    const sock = path.join(dir, 'tpm.sock');
    const flag = path.join(dir, 'ready');
    started = await startSideProcesses(
      [
        { name: 'swtpm', binary: node, args: ['-e', socketHelper(sock)], readyWhen: { kind: 'socket', path: sock }, readyTimeoutMs: 5_000, lifetime: 'vm', stopTimeoutMs: 1_000, logFile: path.join(dir, 'swtpm.log') },
        {
          name: 'virtiofsd-share0',
          binary: node,
          args: ['-e', `require('fs').writeFileSync(${JSON.stringify(flag)}, 'x'); setInterval(() => {}, 1000);`],
          readyWhen: { kind: 'file', path: flag },
          readyTimeoutMs: 5_000,
          lifetime: 'vm',
          stopTimeoutMs: 1_000,
          logFile: null,
        },
      ],
      dir,
    );
    expect(started.map((s) => s.name)).toEqual(['swtpm', 'virtiofsd-share0']);
    expect(fs.existsSync(sock)).toBe(true);
    expect(started.every((s) => pidAlive(s.pid))).toBe(true);
    await stopSideProcesses(started);
    expect(await waitGone(started.map((s) => s.pid))).toBe(true);
  });

  it('a helper that dies says so in its own words, and the ones started before it are ended', async () => {
    const sock = path.join(dir, 'a.sock');
    const log = path.join(dir, 'bad.log');
    const attempt = startSideProcesses(
      [
        { name: 'good', binary: node, args: ['-e', socketHelper(sock, 0)], readyWhen: { kind: 'socket', path: sock }, readyTimeoutMs: 5_000, lifetime: 'vm', stopTimeoutMs: 500, logFile: null },
        { name: 'bad', binary: node, args: ['-e', `console.error('swtpm: cannot open state dir'); process.exit(3)`], readyWhen: { kind: 'file', path: path.join(dir, 'never') }, readyTimeoutMs: 5_000, lifetime: 'vm', stopTimeoutMs: 500, logFile: log },
      ],
      dir,
    );
    await expect(attempt).rejects.toThrow(/^bad ended before it was ready \(exit 3\)\. swtpm: cannot open state dir$/);
    // The good helper was ended: nothing listens on its socket any more.
    const listening = fs.readFileSync('/proc/net/unix', 'utf8').split('\n').some((line) => line.endsWith(` ${sock}`));
    expect(listening).toBe(false);
  });

  it('a helper that never gets ready is given up after its time', async () => {
    await expect(
      startSideProcesses(
        [{ name: 'slow', binary: node, args: ['-e', 'setInterval(() => {}, 1000)'], readyWhen: { kind: 'file', path: path.join(dir, 'never') }, readyTimeoutMs: 300, lifetime: 'vm', stopTimeoutMs: 500, logFile: null }],
        dir,
      ),
    ).rejects.toThrow(/^slow was not ready within 0.3 s\.$/);
  });

  it('writes generated files privately, and knows which are transient', async () => {
    const seed = path.join(dir, 'user-data');
    const files = [{ kind: 'text' as const, path: seed, contents: '#cloud-config\n', transient: true }];
    await writeGeneratedFiles(files);
    expect(fs.readFileSync(seed, 'utf8')).toBe('#cloud-config\n');
    expect(fs.statSync(seed).mode & 0o777).toBe(0o600);
    expect(transientFiles(files)).toEqual([seed]);
    await expect(writeGeneratedFiles([{ kind: 'generator', path: seed, generator: 'nope', inputs: {}, transient: false }])).rejects.toThrow(/does not know: "nope"/);
  });
});

describe('the supervising shell', () => {
  it('when "QEMU" exits, ends the side processes, removes transient files, then records the status', async () => {
    const sock = path.join(dir, 'h.sock');
    started = await startSideProcesses(
      [{ name: 'helper', binary: node, args: ['-e', `process.on('SIGTERM', () => {}); ${socketHelper(sock, 0)}`], readyWhen: { kind: 'socket', path: sock }, readyTimeoutMs: 5_000, lifetime: 'vm', stopTimeoutMs: 300, logFile: null }],
      dir,
    );
    const transient = path.join(dir, 'seed.iso');
    fs.writeFileSync(transient, 'x');
    const status = path.join(dir, 'exit-status');
    const sup = spawn('/bin/sh', ['-c', SUPERVISOR_SCRIPT, 'vivarium-supervisor', status, '/bin/sh', '-c', 'sleep 0.2; exit 7'], {
      env: { ...process.env, VIVARIUM_SIDE_PIDS: String(started[0]!.pid), VIVARIUM_SIDE_WAIT: '3', VIVARIUM_TRANSIENT: transient },
      stdio: 'ignore',
    });
    await new Promise((r) => sup.once('exit', r));
    expect(fs.readFileSync(status, 'utf8')).toBe('7\n');
    // The helper ignored SIGTERM, so it got SIGKILL after its 0.3 s.
    expect(await waitGone([started[0]!.pid], 2_000)).toBe(true);
    expect(fs.existsSync(transient)).toBe(false);
  });
});
