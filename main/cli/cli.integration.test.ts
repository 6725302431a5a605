/**
 * The CLI against real QEMU (TCG), the way a user drives it: every command is a separate process,
 * so everything here also proves that VMs outlive the process that started them.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCliJson } from '../test-support/cli';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { qemuProcessesUnder } from '../test-support/qemu-procs';
import { QmpClient } from '../services/qemu/qmp';

interface ListedVm {
  name: string;
  id: string;
  state: string;
  pid?: number;
  accel: string | null;
  lastExit: { reason: string; signal: string | null; code: number | null; message: string; stderrTail: string[] } | null;
  error: string | null;
}

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
});

const cli = (args: string[], timeoutMs?: number) => runCli(args, { env: t.env, timeoutMs });
const list = () => runCliJson<ListedVm[]>(['list', '--json'], { env: t.env });

async function createLinuxGuest(name: string, extra: string[] = []): Promise<string> {
  const g = testGuest();
  const r = await cli([
    'create', name, '--accel', 'tcg', '--memory', '256M', '--cpus', '1', '--disk-size', '64M',
    '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, ...extra,
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const id = r.stdout.trim();
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  return id;
}

describe('vivarium CLI with a real TCG guest', () => {
  it('creates, starts, lists, reads serial, stops, and leaves no QEMU behind', async () => {
    const g = testGuest();
    const id = await createLinuxGuest('Test guest: ünïcode & spaces/slashes');

    const start = await cli(['start', id, '--wait-serial', g.readyMarker, '--timeout', '90']);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);

    // A new process sees the VM running, with the pid of a real QEMU for it.
    const vms = await list();
    expect(vms).toHaveLength(1);
    const vm = vms[0]!;
    expect(vm).toMatchObject({ name: 'Test guest: ünïcode & spaces/slashes', id, state: 'running', accel: 'tcg', error: null });
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([vm.pid]);

    const shown = await runCliJson<{ argv: string[]; config: { memoryMiB: number } }>(['show', 'Test guest: ünïcode & spaces/slashes', '--json'], { env: t.env });
    expect(shown.argv[0]).toMatch(/qemu-system-x86_64$/);
    expect(shown.argv).toContain('-kernel');
    expect(shown.config.memoryMiB).toBe(256);

    const log = await cli(['serial', id, '--log']);
    expect(log.code).toBe(0);
    expect(log.stdout).toContain(g.readyMarker);

    // Typing into the console reaches the guest's shell (piped stdin, as a script would).
    const typed = await runCli(['serial', id], { env: t.env, input: 'echo $((6*7))-from-guest\n', timeoutMs: 20_000 });
    expect(typed.code).toBe(0);
    expect(typed.stdout).toContain('42-from-guest');

    const stop = await cli(['stop', id, '--timeout', '10']);
    expect(stop.code).toBe(0);
    const after = (await list())[0]!;
    expect(after.state).toBe('stopped');
    expect(after.pid).toBeUndefined();
    expect(['shutdown', 'stopped']).toContain(after.lastExit?.reason);
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  });

  it('reports a QEMU killed with SIGKILL as stopped with lastExit crashed', async () => {
    const g = testGuest();
    const id = await createLinuxGuest('victim');
    expect((await cli(['start', id, '--wait-serial', g.readyMarker])).code).toBe(0);
    const pid = (await list())[0]!.pid!;
    process.kill(pid, 'SIGKILL');
    await waitUntil(() => qemuProcessesUnder(t.runtimeDir).length === 0);
    const vm = (await list())[0]!;
    expect(vm.state).toBe('stopped');
    expect(vm.lastExit).toMatchObject({ reason: 'crashed', signal: 'SIGKILL' });
    expect(vm.lastExit!.message).toMatch(/killed by SIGKILL/);
    // It can be started again afterwards.
    expect((await cli(['start', id, '--wait-serial', g.readyMarker])).code).toBe(0);
    expect((await cli(['stop', id, '--force'])).code).toBe(0);
    expect((await list())[0]!.lastExit?.reason).toBe('stopped');
  });

  it('refuses to start a VM twice, even when two starts race', async () => {
    const id = await createLinuxGuest('racer');
    const [a, b] = await Promise.all([cli(['start', id]), cli(['start', id])]);
    const codes = [a.code, b.code].sort();
    expect(codes).toEqual([0, 1]);
    const loser = a.code === 0 ? b : a;
    expect(loser.stderr.trim().split('\n')).toHaveLength(1);
    expect(loser.stderr).toMatch(/already|being started/);
    expect(qemuProcessesUnder(t.runtimeDir)).toHaveLength(1);
    // And a later, sequential start is refused too.
    const again = await cli(['start', 'racer']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already running/);
    expect((await cli(['stop', id, '--force'])).code).toBe(0);
  });

  it('pauses, resumes and resets a running VM', async () => {
    const g = testGuest();
    const id = await createLinuxGuest('pauser');
    expect((await cli(['start', id, '--wait-serial', g.readyMarker])).code).toBe(0);
    expect((await cli(['pause', id])).code).toBe(0);
    expect((await list())[0]!.state).toBe('paused');
    expect((await cli(['resume', id])).code).toBe(0);
    expect((await list())[0]!.state).toBe('running');
    const before = (await cli(['serial', id, '--log'])).stdout.split(g.readyMarker).length;
    expect((await cli(['reset', id])).code).toBe(0);
    await waitUntil(async () => (await cli(['serial', id, '--log'])).stdout.split(g.readyMarker).length > before, 60_000);
    expect((await cli(['stop', id, '--force'])).code).toBe(0);
  });
});

describe('vivarium CLI library handling', () => {
  it('shows a corrupt bundle as broken and still lists the others', async () => {
    const good = await createLinuxGuest('good');
    const bad = await createLinuxGuest('bad');
    fs.writeFileSync(path.join(t.home, 'vms', bad, 'config.json'), '{"version": 1, "name": "bad", "cpus": "many"');
    const vms = await list();
    expect(vms.map((v) => v.name).sort()).toEqual(['bad', 'good']);
    const broken = vms.find((v) => v.id === bad)!;
    expect(broken.state).toBe('broken');
    expect(broken.error).toMatch(/not valid JSON/);
    expect(vms.find((v) => v.id === good)!.state).toBe('stopped');
    const start = await cli(['start', bad]);
    expect(start.code).toBe(1);
    expect(start.stderr).toMatch(/cannot be loaded/);
  });

  it('rejects bad input with one clear line and writes nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['create', 'x', '--memory', 'lots'], /--memory must be a size like 512M/],
      [['create', 'x', '--iso', '/nonexistent/disk.iso'], /ISO not found: \/nonexistent\/disk.iso/],
      [['create', 'x', '--cpus', '0'], /--cpus/],
      [['create', 'x', '--forward', 'tcp:99999:22'], /--forward must look like/],
      [['create', 'x', '--accel', 'warp'], /--accel must be one of/],
      [['create', 'x', '--net', 'none', '--forward', 'tcp:2222:22'], /Port forwards need networking/],
      [['create', 'x', '--initrd', '/etc/hostname'], /Initrd needs a kernel to boot directly/],
      [['start', 'no-such-vm'], /No VM named or with id "no-such-vm"/],
      [['create', 'x', '--bogus'], /unknown option --bogus/],
      [['create'], /missing NAME/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
    const vmsDir = path.join(t.home, 'vms');
    expect(fs.existsSync(vmsDir) ? fs.readdirSync(vmsDir) : []).toEqual([]);
    // A duplicate name is refused too, and leaves the first VM alone.
    await createLinuxGuest('dup');
    const dup = await cli(['create', 'DUP', '--disk-size', '0']);
    expect(dup.code).toBe(2); // a taken name: what was typed must change
    expect(dup.stderr).toMatch(/a VM named "dup" already exists \(names are compared ignoring case/i);
    const huge = await cli(['create', 'huge', '--memory', '512G', '--disk-size', '0']);
    expect(huge.code).toBe(2); // a value that must change: exit 2, like a usage error
    expect(huge.stderr).toMatch(/more memory than this host has/);
    expect(fs.readdirSync(vmsDir)).toHaveLength(1);
  });

  it('edits a stopped VM and deletes it, keeping disks when asked', async () => {
    const id = await createLinuxGuest('editable');
    expect((await cli(['edit', id, '--cpus', '2', '--memory', '1G', '--name', 'renamed'])).code).toBe(0);
    const shown = await runCliJson<{ name: string; config: { cpus: number; memoryMiB: number } }>(['show', 'renamed', '--json'], { env: t.env });
    expect(shown).toMatchObject({ name: 'renamed', config: { cpus: 2, memoryMiB: 1024 } });
    const del = await cli(['delete', 'renamed', '--keep-disks']);
    expect(del.code).toBe(0);
    const kept = /Kept disk: (.+)/.exec(del.stdout)![1]!;
    expect(fs.existsSync(kept)).toBe(true);
    expect(fs.existsSync(path.join(t.home, 'vms', id))).toBe(false);
    expect(await list()).toEqual([]);
  });
});

describe('untrusted files and a hostile host', () => {
  it('refuses a disk image that names a backing file, and never opens one a bundle disk names', async () => {
    const secret = path.join(t.home, 'secret.txt');
    fs.writeFileSync(secret, 'top secret');
    const overlay = path.join(t.home, 'overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', overlay]);
    const r = await cli(['create', 'overlay', '--disk', overlay, '--accel', 'tcg']);
    expect(r.code).toBe(2); // a value that must change: exit 2
    expect(r.stderr).toMatch(/is an overlay on .*secret\.txt/);
    // A bundle whose own disk was swapped for such an overlay: the start re-checks the disk and
    // refuses in words (disks/preflight.ts); no QEMU runs, so nothing opens the secret.
    const id = await createLinuxGuest('swapped');
    const disk = path.join(t.home, 'vms', id, 'disk0.qcow2');
    fs.rmSync(disk);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', disk]);
    const start = await cli(['start', id]);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toContain(`now names ${secret} as its backing file, which the VM's settings do not list`);
    expect((await list())[0]).toMatchObject({ state: 'stopped' });
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  });

  it('does not follow a symlink planted as the serial log', async () => {
    const g = testGuest();
    const id = await createLinuxGuest('linked');
    const victim = path.join(t.home, 'victim.txt');
    fs.writeFileSync(victim, 'keep me');
    fs.symlinkSync(victim, path.join(t.home, 'vms', id, 'serial.log'));
    expect((await cli(['start', id, '--wait-serial', g.readyMarker])).code).toBe(0);
    expect(fs.readFileSync(victim, 'utf8')).toBe('keep me');
    expect((await cli(['stop', id, '--force'])).code).toBe(0);
  });

  it('refuses a runtime folder that belongs to another user', async () => {
    const id = await createLinuxGuest('hijack');
    fs.chownSync(t.runtimeDir, 65534, 65534);
    const r = await cli(['start', id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/belongs to another user/);
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
    fs.chownSync(t.runtimeDir, process.getuid!(), process.getgid!());
  });

  it('reports a port forward whose host port is taken as a failed start, in plain words', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const id = await createLinuxGuest('fwd', ['--forward', `tcp:${port}:22`]);
      const r = await cli(['start', id]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`host port ${port} \\(tcp\\) is already in use`));
      const vm = (await list())[0]!;
      expect(vm.state).toBe('stopped');
      expect(vm.lastExit?.reason).toBe('failed');
    } finally {
      server.close();
    }
  });
});

describe('libraries on unusual filesystems', () => {
  // tmpfs refuses O_DIRECT before Linux 6.6; Vivarium then drops cache.direct for that start.
  it.skipIf(!fs.existsSync('/dev/shm'))('starts a VM whose library is on tmpfs', async () => {
    const home = fs.mkdtempSync('/dev/shm/vivarium-home-');
    const env = { ...t.env, VIVARIUM_HOME: home };
    try {
      const g = testGuest();
      const c = await runCli(['create', 'tmpfs', '--accel', 'tcg', '--memory', '256M', '--disk-size', '64M', '--display', 'none',
        '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append], { env });
      expect(c.code).toBe(0);
      const s = await runCli(['start', 'tmpfs', '--wait-serial', g.readyMarker], { env });
      expect(s.stderr).toBe('');
      expect(s.code).toBe(0);
      expect((await runCli(['stop', 'tmpfs', '--force'], { env })).code).toBe(0);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('firmware and ISO guests', () => {
  it('boots OVMF (UEFI) to the UEFI shell on the serial console', async () => {
    const r = await cli(['create', 'uefi', '--accel', 'tcg', '--firmware', 'uefi', '--memory', '256M', '--disk-size', '0', '--net', 'none', '--display', 'none']);
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(fs.existsSync(path.join(t.home, 'vms', id, 'efivars.qcow2'))).toBe(true);
    const start = await cli(['start', id, '--wait-serial', 'Shell>|UEFI Interactive Shell', '--timeout', '90'], 120_000);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    expect((await cli(['stop', id, '--force'])).code).toBe(0);
  });

  it('boots an ISO and shows a non-blank screen', async () => {
    const g = testGuest();
    const iso = g.memtestIso ?? g.grubRescueIso;
    expect(iso, 'memtest86+ or grub-rescue-pc must be installed (see .ci/run)').toBeTruthy();
    const r = await cli(['create', 'iso', '--accel', 'tcg', '--memory', '256M', '--disk-size', '0', '--net', 'none', '--iso', iso!]);
    expect(r.code).toBe(0);
    expect((await cli(['start', 'iso'])).code).toBe(0);
    const file = path.join(t.home, 'screen.png');
    let lit = 0;
    await waitUntil(async () => {
      const shot = await cli(['screenshot', 'iso', file]);
      expect(shot.code).toBe(0);
      lit = litPixelShare(fs.readFileSync(file));
      return lit > 0.01;
    }, 60_000);
    expect(lit).toBeGreaterThan(0.01);
    expect((await cli(['stop', 'iso', '--force'])).code).toBe(0);
  });
});

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Share of pixels that are not black in an 8-bit RGB/RGBA PNG (what QEMU's screendump writes). */
function litPixelShare(png: Buffer): number {
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const colorType = png[25];
  const bpp = colorType === 6 ? 4 : 3;
  const idat: Buffer[] = [];
  for (let off = 8; off < png.length; ) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    if (type === 'IDAT') idat.push(png.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const prev = Buffer.alloc(stride);
  const cur = Buffer.alloc(stride);
  let lit = 0;
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? cur[x - bpp]! : 0;
      const b = prev[x]!;
      const c = x >= bpp ? prev[x - bpp]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      cur[x] = v & 0xff;
    }
    for (let x = 0; x < width; x++) if (cur[x * bpp]! + cur[x * bpp + 1]! + cur[x * bpp + 2]! > 60) lit++;
    cur.copy(prev);
  }
  return lit / (width * height);
}

// ---- the engine's view matches reality (issue 7, items 1 and 6) ---------------------------------

interface ShownVm extends ListedVm {
  runtime: { dir: string; qmp: string; serial: string };
  pausedReason?: string;
  stopping?: { startedAt: string; deadline: string | null; rung: string };
}

async function startReady(name: string): Promise<{ id: string; shown: ShownVm }> {
  const g = testGuest();
  const id = await createLinuxGuest(name);
  const r = await cli(['start', id, '--wait-serial', g.readyMarker], 120_000);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return { id, shown: await runCliJson<ShownVm>(['show', id, '--json'], { env: t.env }) };
}

/** Types a line into the guest's shell through its serial socket (no engine holds it here). */
async function typeIntoGuest(serialSocket: string, line: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = net.createConnection(serialSocket, () => {
      s.write(`${line}\n`, () => setTimeout(() => (s.end(), resolve()), 300));
    });
    s.on('error', reject);
  });
}

describe('whatever happens outside Vivarium, it tells the truth', () => {
  it('shows a VM paused by another QMP client as paused, with the reason, and resumes it', async () => {
    const { id, shown } = await startReady('paused-elsewhere');
    const other = await QmpClient.connect(shown.runtime.qmp);
    await other.execute('stop');
    other.close();
    const vm = (await list())[0] as ListedVm & { pausedReason?: string };
    expect(vm.state).toBe('paused');
    expect(vm.pausedReason).toBe('paused');
    const resumed = await cli(['resume', id]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    const after = (await list())[0] as ListedVm & { pausedReason?: string };
    expect(after.state).toBe('running');
    expect(after.pausedReason).toBeUndefined();
    expect((await cli(['stop', id, '--force'])).code).toBe(0);
  });

  it('says a QEMU that stopped answering (kill -STOP) is not responding, and Shut Down goes on to the signals', async () => {
    const { id } = await startReady('frozen');
    const pid = (await list())[0]!.pid!;
    process.kill(pid, 'SIGSTOP');
    const vm = (await list())[0]!;
    expect(vm.state).toBe('running');
    expect(vm.error).toMatch(/not responding/);
    expect(vm.error).not.toMatch(/another program/i);
    const stop = await cli(['stop', id, '--timeout', '30'], 60_000);
    expect(stop.stderr).toBe('');
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(/frozen: stopped \(QEMU \(pid \d+\) is not responding: its process is stopped .*killed \(SIGKILL\) after \d+ s\.\)/);
    const after = (await list())[0]!;
    expect(after.state).toBe('stopped');
    expect(after.lastExit).toMatchObject({ reason: 'stopped', signal: 'SIGKILL' });
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  });

  it('a running VM whose runtime folder was removed still shows as running, cannot be started twice or deleted, and stops', async () => {
    const { id, shown } = await startReady('orphan');
    const pid = (await list())[0]!.pid!;
    fs.rmSync(shown.runtime.dir, { recursive: true, force: true });
    const vm = (await list())[0]!;
    expect(vm.state).toBe('running');
    expect(vm.pid).toBe(pid);
    const again = await cli(['start', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already running \(pid \d+\)/);
    const del = await cli(['delete', id]);
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/is running/);
    expect(fs.existsSync(path.join(t.home, 'vms', id, 'config.json'))).toBe(true);
    const stop = await cli(['stop', id], 60_000);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(/control socket was removed/);
    expect((await list())[0]!.state).toBe('stopped');
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  });

  it('Shut Down shows its progress while it waits, and says when it had to force the VM off', async () => {
    const { id, shown } = await startReady('deaf');
    // The guest stops listening to the power button.
    await typeIntoGuest(shown.runtime.serial, 'kill $(cat /run/acpid.pid)');
    await new Promise((r) => setTimeout(r, 500));
    const stopping = cli(['stop', id, '--timeout', '4'], 60_000);
    let seen: ShownVm | null = null;
    await waitUntil(async () => {
      const vm = (await list())[0] as ShownVm;
      if (vm.state === 'stopping' && vm.stopping) seen = vm;
      return seen !== null;
    }, 20_000);
    const progress = (seen as ShownVm | null)!.stopping!;
    expect(progress.rung).toBe('acpi');
    const waitMs = Date.parse(progress.deadline!) - Date.parse(progress.startedAt);
    expect(waitMs).toBeGreaterThanOrEqual(3_900);
    expect(waitMs).toBeLessThanOrEqual(4_500);
    const stop = await stopping;
    expect(stop.code).toBe(0);
    // After the 4 s on the power button (and a try through the guest agent, which this guest lacks).
    const said = /deaf: stopped \(The guest did not respond to the power button; forced off after (\d+) s\.\)/.exec(stop.stdout);
    expect(said, stop.stdout).not.toBeNull();
    expect(Number(said![1])).toBeGreaterThanOrEqual(4);
    const after = (await list())[0]!;
    expect(after.lastExit).toMatchObject({ reason: 'stopped' });
    expect(after.lastExit!.message).toBe(`The guest did not respond to the power button; forced off after ${said![1]} s.`);
  });

  it('a guest that answers the power button shuts down and says so', async () => {
    const { id } = await startReady('polite');
    const stop = await cli(['stop', id], 60_000);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(/polite: stopped \(The guest shut down when asked \(ACPI power button\)\.\)/);
    expect((await list())[0]!.lastExit).toMatchObject({ reason: 'shutdown', code: 0 });
  });
});
