/**
 * The developer sandbox end to end through the real `vivarium` command (issue 11), against the Debian
 * cloud guest built from Debian packages by scripts/build-cloud-guest.mjs (cached in .cache/), under
 * TCG. One guest boots (4–8 min on a loaded 2-core machine) and every check runs on it in sequence:
 *
 *   create --cloud-image PATH (local image) → start → `vivarium ssh NAME -- hostname` prints the
 *   chosen host name; the command's exit status comes back; no password login without
 *   --password-file; a host file appears in a share and a read-only share refuses writes; a forward
 *   added live reaches a listener in the guest and is gone after removal (and conflicts are named);
 *   `show --json` lists the guest's IP from the agent; what the guest sends shows as its network
 *   figure (live and in `stats --json`); a Shut Down the guest ignores on the power button goes
 *   through the agent. The image file is never modified.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { shellArg } from '../common/shell-arg';
import type { StatsSample } from '../common/models/stats';
import { hostEngine } from '../server/engine-host';
import { createEngine } from '../services/engine';
import { CLI_BIN, runCli, runCliJson, type CliResult } from '../test-support/cli';
import { makeTestHome, type TestHome } from '../test-support/home';
import { qemuProcessesUnder } from '../test-support/qemu-procs';
// @ts-expect-error -- plain ESM script without type declarations
import { buildCloudGuest } from '../../scripts/build-cloud-guest.mjs';

const execFileP = promisify(execFile);

interface CloudGuestInfo {
  disk: string;
  kernel: string;
  initrd: string;
  append: string;
}
interface Forward {
  protocol: string;
  hostAddress: string;
  hostPort: number;
  guestPort: number;
}

const NAME = 'dev box';
const HOSTNAME = 'viv-sandbox';
const BOOT_MS = 15 * 60_000;

let t: TestHome;
let guest: CloudGuestInfo;
let work: string;
let docs: string;
let imageSum: string;

const cli = (args: string[], timeoutMs = 120_000): Promise<CliResult> => runCli(args, { env: t.env, timeoutMs });
const ssh = (command: string[], timeoutMs = 120_000) => cli(['ssh', NAME, '--', ...command], timeoutMs);
const forwards = () => runCliJson<Forward[]>(['forward', 'list', NAME, '--json'], { env: t.env });

const CHUNK = 100_000;
const CHUNKS = 20;
const SEND_LOOP = `for i in $(seq ${CHUNKS}); do head -c ${CHUNK} /dev/urandom; sleep 0.5; done`;

/** Runs `vivarium ssh NAME -- command` and counts the bytes the guest sent to its stdout. */
function sshBytes(command: string, timeoutMs = 120_000): Promise<{ code: number | null; bytes: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, 'ssh', NAME, '--', command], { env: t.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (bytes += d.length));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vivarium ssh timed out after ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, bytes, stderr });
    });
  });
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function httpGet(port: number, file: string): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/${file}`, timeout: 15_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

beforeAll(async () => {
  guest = (await buildCloudGuest()) as CloudGuestInfo;
  imageSum = sha256(guest.disk);
  t = makeTestHome();
  work = path.join(t.home, 'work');
  docs = path.join(t.home, 'docs');
  fs.mkdirSync(work);
  fs.mkdirSync(docs);
  // The shared folder belongs to the uid the guest user gets (1000: Vivarium runs as root here), as
  // a developer's own folder does (the guest reads the mount root's owner once, when it mounts it).
  fs.chownSync(work, 1000, 1000);
  fs.writeFileSync(path.join(docs, 'readme.txt'), 'from the host\n');
  const created = await cli([
    'create', NAME, '--cloud-image', guest.disk,
    '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append,
    '--accel', 'tcg', '--memory', '1G', '--cpus', '2', '--display', 'none', '--disk-size', '4G',
    '--hostname', HOSTNAME, '--user', 'dev', '--share', `${work}:work`, '--share', `${docs}:docs:ro`,
    // The image has qemu-guest-agent and the test machine has no internet to install it.
    '--no-agent-install',
  ]);
  expect(created.stderr).toBe('');
  expect(created.code).toBe(0);
  const start = await cli(['start', NAME]);
  expect(start.code).toBe(0);
  // The first ssh waits for the host keys on the console and sshd's banner (waitForSshReady).
  const first = await ssh(['true'], BOOT_MS);
  if (first.code !== 0) {
    const log = await cli(['serial', NAME, '--log']);
    throw new Error(`first ssh failed (${first.code}): ${first.stderr}\nserial tail:\n${log.stdout.slice(-3000)}`);
  }
}, BOOT_MS + 5 * 60_000);

afterAll(async () => {
  if (!t) return;
  await cli(['stop', NAME, '--force']).catch(() => undefined);
  expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  await t.cleanup();
}, 120_000);

describe('vivarium create --cloud-image, ssh, forward, share, show guest, stop via the agent', () => {
  it('runs commands over ssh as the chosen user and host name, with their exit status', async () => {
    const h = await ssh(['hostname']);
    // Only the waiting notice may appear (a loaded host can take over 1.5 s to answer).
    expect(h.stderr).toMatch(/^(Waiting for dev box's SSH server[^\n]*\n)?$/);
    expect(h.code).toBe(0);
    expect(h.stdout.trim()).toBe(HOSTNAME);
    expect((await ssh(['id', '-un'])).stdout.trim()).toBe('dev');
    expect((await ssh(['exit 7'])).code).toBe(7);
    // As with OpenSSH, the words after -- make one command line for the guest's shell (issue 11 #10).
    const two = await ssh(['echo one; echo', 'two']);
    expect({ code: two.code, stdout: two.stdout }).toEqual({ code: 0, stdout: 'one\ntwo\n' });
    // The VM's own disk is an overlay: the image is never written.
    const shown = await runCliJson<{ path: string; config: { disks: { source: { bundle?: string }; backing: { source: { path: string } }[] }[] } }>(['show', NAME, '--json'], { env: t.env });
    expect(shown.config.disks[0]!.backing[0]!.source.path).toBe(guest.disk);
    expect(sha256(guest.disk)).toBe(imageSum);
    // The generated key is private to the bundle.
    expect(fs.statSync(path.join(shown.path, 'ssh', 'id_ed25519')).mode & 0o777).toBe(0o600);
  });

  it('forwards a free loopback port to sshd, listed with the others; no password login without --password-file', async () => {
    const list = await forwards();
    const sshFwd = list.find((f) => f.guestPort === 22);
    expect(sshFwd).toMatchObject({ protocol: 'tcp', hostAddress: '127.0.0.1' });
    const shown = await runCliJson<{ path: string }>(['show', NAME, '--json'], { env: t.env });
    const probe = await execFileP('ssh', [
      '-o', 'BatchMode=yes', '-o', 'PubkeyAuthentication=no', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityFile=/dev/null',
      '-o', `UserKnownHostsFile=${path.join(shown.path, 'ssh', 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null',
      '-p', String(sshFwd!.hostPort), 'dev@127.0.0.1', 'true',
    ]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code?: number; stderr?: string }) => ({ code: e.code, stderr: e.stderr ?? '' }),
    );
    expect(probe.code).toBe(255);
    // The server offers public keys only.
    expect(probe.stderr).toMatch(/Permission denied \(publickey\)/);
    expect((await ssh(['sudo', 'getent', 'shadow', 'dev'])).stdout).toMatch(/^dev:!/);
  });

  it('prints the exact ssh command (ssh --print), which works pasted into a shell', async () => {
    const shown = await runCliJson<{ path: string }>(['show', NAME, '--json'], { env: t.env });
    const port = (await forwards()).find((f) => f.guestPort === 22)!.hostPort;
    const printed = await cli(['ssh', NAME, '--print', '--', 'echo', 'a b']);
    expect(printed.code).toBe(0);
    const line = printed.stdout.trim();
    // The test library's path has no characters a shell would need quoted.
    expect(line).toContain(`-i ${path.join(shown.path, 'ssh', 'id_ed25519')} `);
    expect(line).toContain(`-o UserKnownHostsFile=${path.join(shown.path, 'ssh', 'known_hosts')} `);
    // The words as given, quoted for the local shell; ssh joins them for the guest's shell.
    expect(line).toContain(`-p ${port} dev@127.0.0.1 -- echo 'a b'`);
    // Pasted into a shell, it runs `echo a b` in the guest, as OpenSSH would.
    const { stdout } = await execFileP('sh', ['-c', line]);
    expect(stdout).toBe('a b\n');
  });

  it('shares host folders at /mnt/<tag>; the read-only one refuses writes', async () => {
    fs.writeFileSync(path.join(work, 'from-host.txt'), 'hello guest\n');
    expect((await ssh(['cat', '/mnt/work/from-host.txt'])).stdout).toBe('hello guest\n');
    expect((await ssh(['cat', '/mnt/docs/readme.txt'])).stdout).toBe('from the host\n');
    // security_model=none shows the host's owners as they are. Vivarium runs as root here, so the
    // guest user keeps uid 1000 (as a host user's own uid would be kept: cloud-guest.test.ts): the
    // guest user writes, without sudo, to a folder uid 1000 owns, and the file is uid 1000's on the
    // host; a folder root owns is read-only to it (issue 11 #9).
    expect((await ssh(['id -u'])).stdout.trim()).toBe('1000');
    const mine = await ssh(['echo from-guest > /mnt/work/from-guest.txt']);
    expect({ code: mine.code, stderr: mine.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.readFileSync(path.join(work, 'from-guest.txt'), 'utf8')).toBe('from-guest\n');
    expect(fs.statSync(path.join(work, 'from-guest.txt')).uid).toBe(1000);
    fs.mkdirSync(path.join(work, 'roots'), { mode: 0o755 });
    const theirs = await ssh(['echo x > /mnt/work/roots/x.txt']);
    expect(theirs.code).not.toBe(0);
    expect(theirs.stderr).toMatch(/Permission denied/);
    expect(fs.existsSync(path.join(work, 'roots', 'x.txt'))).toBe(false);
    const w = await ssh(['echo x > /mnt/docs/new.txt']);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/Read-only file system/);
    expect(fs.existsSync(path.join(docs, 'new.txt'))).toBe(false);
    const shares = await runCliJson<unknown[]>(['share', 'list', NAME, '--json'], { env: t.env });
    expect(shares).toEqual([
      { hostPath: work, tag: 'work', readOnly: false, guestPath: '/mnt/work' },
      { hostPath: docs, tag: 'docs', readOnly: true, guestPath: '/mnt/docs' },
    ]);
    // Shares change only while stopped, and the refusal says so.
    const add = await cli(['share', 'add', NAME, t.home]);
    expect(add.code).toBe(1);
    expect(add.stderr).toMatch(/must be shut down/);
  });

  it('adds a forward live that reaches a listener in the guest, names conflicts, and removes it', async () => {
    // A web server in the guest serving the shared folder, on guest port 8000.
    const bg = await ssh(['cd /mnt/work && { setsid python3 -m http.server 8000 >/dev/null 2>&1 < /dev/null & } ; sleep 2; echo started']);
    expect(bg.stdout).toContain('started');
    const port = await freePort();
    const added = await cli(['forward', 'add', NAME, `tcp:${port}:8000`, '--json']);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(JSON.parse(added.stdout)).toContainEqual({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: port, guestPort: 8000 });
    let got: Awaited<ReturnType<typeof httpGet>> = { error: 'none' };
    for (let i = 0; i < 20 && !('status' in got && got.status === 200); i++) {
      got = await httpGet(port, 'from-host.txt');
      if (!('status' in got)) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(got).toEqual({ status: 200, body: 'hello guest\n' });
    // Saved for the next start.
    const shown = await runCliJson<{ config: { network: { forwards: unknown[] } } }>(['show', NAME, '--json'], { env: t.env });
    expect(shown.config.network.forwards).toContainEqual({ protocol: 'tcp', hostPort: port, guestPort: 8000 });

    // The same host port again, and a port another program holds: refused with the reason.
    const again = await cli(['forward', 'add', NAME, `tcp:${port}:8001`]);
    expect(again.code).toBe(2); // a taken host port: another must be typed
    expect(again.stderr).toMatch(new RegExp(`already forwards tcp port ${port}`));
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const held = (holder.address() as net.AddressInfo).port;
    try {
      const busy = await cli(['forward', 'add', NAME, `tcp:${held}:8000`]);
      expect(busy.code).toBe(2);
      expect(busy.stderr).toMatch(new RegExp(`tcp port ${held} on 127.0.0.1 is in use by another program`));
    } finally {
      holder.close();
    }

    const removed = await cli(['forward', 'remove', NAME, `tcp:${port}:8000`, '--json']);
    expect(removed.code).toBe(0);
    expect((await forwards()).some((f) => f.hostPort === port)).toBe(false);
    expect(await httpGet(port, 'from-host.txt')).toEqual({ error: 'ECONNREFUSED' });
  });

  it('show --json lists the guest IP, host name and OS from the guest agent', async () => {
    type Guest = { hostname: string | null; ips: string[]; os: string | null } | null;
    let g = null as Guest;
    for (let i = 0; i < 30 && !g?.ips.length; i++) {
      g = (await runCliJson<{ guest: Guest }>(['show', NAME, '--json'], { env: t.env })).guest;
      if (!g?.ips.length) await new Promise((r) => setTimeout(r, 2000));
    }
    expect(g).not.toBeNull();
    expect(g!.ips).toContain('10.0.2.15');
    expect(g!.hostname).toBe(HOSTNAME);
    expect(g!.os).toMatch(/Debian/);
  });

  it('the Terminal stream runs an SSH session on a pty whose resize reaches the guest (stty size)', async () => {
    // A long-lived engine, as `vivarium serve` and the app host it; its bridge serves the Terminal tab.
    const hosted = await hostEngine({ env: t.env, http: { port: 0, staticDir: null }, engineSocket: false });
    try {
      const seen = await hosted.engine.services.vms.get(NAME);
      expect({ state: seen.state, error: seen.error }).toEqual({ state: 'running', error: null });
      const { url } = await hosted.bridge.openStream(NAME, 'terminal');
      const ws = new WebSocket(url);
      let out = '';
      ws.on('message', (d: Buffer) => (out += d.toString('utf8')));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.send(JSON.stringify({ type: 'resize', cols: 100, rows: 30 }));
      const waitFor = async (re: RegExp): Promise<void> => {
        const until = Date.now() + 240_000;
        while (!re.test(out)) {
          if (Date.now() > until) throw new Error(`terminal: ${re} not seen; got:\n${out.slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      ws.send(Buffer.from('hostname; stty size; echo SIZE-ONE\n'), { binary: true });
      await waitFor(new RegExp(`${HOSTNAME}\\s+30 100\\s+SIZE-ONE`));
      ws.send(JSON.stringify({ type: 'resize', cols: 132, rows: 43 }));
      ws.send(Buffer.from('stty size; echo SIZE-TWO\n'), { binary: true });
      await waitFor(/43 132\s+SIZE-TWO/);
      const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
      ws.send(Buffer.from('exit 3\n'), { binary: true });
      expect(await closed).toEqual({ code: 1000, reason: 'ssh exited with 3' });
    } finally {
      await hosted.close();
    }
  }, 300_000);

  it('keeps the SSH forward while the VM runs, says "paused" for a paused VM, and shows the guest in text show', async () => {
    const sshFwd = (await forwards()).find((f) => f.guestPort === 22)!;
    // Removing the only forward to sshd would cut off ssh and the Terminal tab: refused (issue 11 #12).
    const rm = await cli(['forward', 'remove', NAME, `tcp:${sshFwd.hostPort}:22`]);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain(`tcp:${sshFwd.hostPort}:22 is how vivarium ssh and the Terminal tab reach "${NAME}"'s SSH server, so it stays while the VM runs.`);
    expect((await forwards()).some((f) => f.hostPort === sshFwd.hostPort)).toBe(true);
    // With another forward to 22 first, the first one can go, and ssh uses the new one.
    const other = await freePort();
    expect((await cli(['forward', 'add', NAME, `tcp:${other}:22`])).code).toBe(0);
    expect((await cli(['forward', 'remove', NAME, `tcp:${sshFwd.hostPort}:22`])).code).toBe(0);
    expect((await cli(['ssh', NAME, '--print'])).stdout).toContain(`-p ${other} dev@127.0.0.1`);
    expect((await ssh(['hostname'])).stdout.trim()).toBe(HOSTNAME);

    // A paused VM: ssh says so at once, with the way out (issue 11 #22).
    expect((await cli(['pause', NAME])).code).toBe(0);
    try {
      const paused = await cli(['ssh', NAME, '--timeout', '5', '--', 'true'], 30_000);
      expect(paused.code).toBe(1);
      expect(paused.stderr).toContain(`"${NAME}" is paused, so its SSH server cannot answer. Resume it first: vivarium resume '${NAME}'`);
      expect(paused.stderr).not.toMatch(/cloud-init|Waiting/);
    } finally {
      expect((await cli(['resume', NAME])).code).toBe(0);
    }

    // The text show has what show --json has: the guest (agent), ssh, the shares (issue 11 #13).
    const shown = await cli(['show', NAME]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`\\n  guest: +${HOSTNAME}, 10\\.0\\.2\\.15\\b.*\\(Debian`));
    expect(shown.stdout).toContain(`\n  ssh:      dev@127.0.0.1:${other} (host name ${HOSTNAME}; vivarium ssh '${NAME}')`);
    expect(shown.stdout).toContain(`\n  shares:   ${work} -> /mnt/work (rw)\n            ${docs} -> /mnt/docs (read-only)\n`);
  });

  it('counts what the guest sends as netTxBps, live (the Stats tab) and in `vivarium stats --json`', async () => {
    // The engine's samples, as the Stats tab receives them; the network figures come from the agent.
    const engine = createEngine({ env: t.env });
    const vmId = engine.manager.resolve(NAME).id;
    const samples: StatsSample[] = [];
    const sub = engine.services.stats.onDidSample((s) => samples.push(s));
    const tx = (s: StatsSample) => s.vms.find((v) => v.id === vmId)?.netTxBps ?? null;
    try {
      // An idle guest may show 0; the figures are there (not null) once the agent answers.
      await waitUntil(() => samples.length >= 3 && samples.slice(-3).every((s) => tx(s) !== null), 60_000, 'no NIC figures from the guest agent');
      for (const s of samples.slice(-3)) expect(tx(s)).toBeGreaterThanOrEqual(0);

      // ~200 KB/s for ~10 s leaves the guest through its NIC (ssh over the user-mode network).
      const from = samples.length;
      const sent = await sshBytes(SEND_LOOP);
      expect(sent.code, sent.stderr).toBe(0);
      expect(sent.bytes).toBe(CHUNK * CHUNKS);
      // Two more samples: the end of the traffic falls inside a sampled interval.
      const to = samples.length;
      await waitUntil(() => samples.length >= to + 2, 10_000, 'no samples after the traffic');
      const during = samples.slice(from, to + 2);
      const rates = during.map(tx);
      // Consecutive samples cover back-to-back intervals: rate × interval adds up to the bytes sent.
      let counted = 0;
      for (let i = 1; i < during.length; i++) counted += (rates[i] ?? 0) * ((during[i]!.at - during[i - 1]!.at) / 1000);
      const peak = Math.max(...rates.map((r) => r ?? 0));
      console.log(
        `net: sent ${sent.bytes} B over ssh; ${during.length} samples: peak out ${(peak / 1024).toFixed(1)} KiB/s, ` +
          `${(counted / 1e6).toFixed(2)} MB counted (ssh/TCP overhead included), ${rates.filter((r) => r === null).length} without the agent's answer`,
      );
      expect(peak).toBeGreaterThan(20 * 1024);
      // The NIC carries the bytes plus ssh's and TCP's framing; a missed agent answer loses an interval or two.
      expect(counted).toBeGreaterThan(sent.bytes * 0.6);
      expect(counted).toBeLessThan(sent.bytes * 1.6);
    } finally {
      sub.dispose();
      await engine.dispose();
    }

    // The one-shot path (`vivarium stats NAME --json`: its own engine, two readings a second apart)
    // while the guest sends again.
    const again = sshBytes(SEND_LOOP);
    await new Promise((r) => setTimeout(r, 2000));
    const oneShot: (number | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const out = await runCliJson<{ vms: { name: string; netTxBps: number | null }[] }>(['stats', NAME, '--json'], { env: t.env, timeoutMs: 30_000 });
      oneShot.push(out.vms.find((v) => v.name === NAME)?.netTxBps ?? null);
    }
    expect((await again).code).toBe(0);
    // Each one-shot sample has the agent's figures; at least one caught the guest sending.
    for (const v of oneShot) expect(v).not.toBeNull();
    expect(Math.max(...oneShot.map((v) => v ?? 0))).toBeGreaterThan(20 * 1024);
  }, 180_000);

  it('shuts down through the guest agent when the guest ignores the power button', async () => {
    // Make the guest ignore ACPI's power button (systemd-logind's HandlePowerKey).
    const ignore = await ssh([
      'sudo', 'sh', '-c',
      shellArg('mkdir -p /etc/systemd/logind.conf.d && printf "[Login]\\nHandlePowerKey=ignore\\n" > /etc/systemd/logind.conf.d/ignore.conf && systemctl kill -s HUP systemd-logind'),
    ]);
    expect(ignore.code).toBe(0);
    const stop = await cli(['stop', NAME, '--timeout', '10', '--json'], 180_000);
    expect(stop.code).toBe(0);
    const vm = JSON.parse(stop.stdout) as { state: string; lastExit: { reason: string; message: string } };
    expect(vm.state).toBe('stopped');
    expect(vm.lastExit.reason).toBe('shutdown');
    expect(vm.lastExit.message).toMatch(/guest agent/);
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
    expect(sha256(guest.disk)).toBe(imageSum);
  });
  it('names a shared folder deleted since it was added, at start, with the fix; share add says how the guest sees it', async () => {
    const gone = path.join(t.home, 'gone');
    fs.mkdirSync(gone);
    // A tag that cannot be one is refused in the flag's words, before anything changes.
    const badTag = await cli(['share', 'add', NAME, gone, '--tag', '../x']);
    expect(badTag.code).toBe(2);
    expect(badTag.stderr).toMatch(/^vivarium share: --tag "\.\.\/x" is not a usable share tag: use 1–31 letters.*\(it becomes \/mnt\/TAG in the guest\)\. Run `vivarium help share` for usage\.\n$/);
    expect(badTag.stderr).not.toContain('Invalid request');
    const add = await cli(['share', 'add', NAME, gone]);
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('The guest mounts it at /mnt/gone at its next start.');
    // Vivarium runs as root: the guest user (uid 1000) may not write to a folder root owns, and is told so.
    expect(add.stdout).toContain(`${gone} belongs to uid 0, but the guest user has uid 1000 (Vivarium runs as root, so the guest user keeps the default uid): to the guest user the folder is read-only (writes need sudo in the guest).`);
    fs.rmdirSync(gone);
    const start = await cli(['start', NAME]);
    expect(start.code).toBe(1);
    expect(start.stderr).toBe(`vivarium: The shared folder ${gone} (tag gone) no longer exists. Create it again, or remove the share: vivarium share remove '${NAME}' gone\n`);
    expect((await runCliJson<{ state: string }>(['show', NAME, '--json'], { env: t.env })).state).toBe('stopped');
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
    expect((await cli(['share', 'remove', NAME, 'gone'])).code).toBe(0);

    // A VM not made from a cloud image: nothing mounts the share, so the mount command is shown.
    expect((await cli(['create', 'plain', '--disk-size', '0', '--accel', 'tcg'])).code).toBe(0);
    const plainAdd = await cli(['share', 'add', 'plain', docs, '--readonly']);
    expect(plainAdd.code).toBe(0);
    expect(plainAdd.stdout).toContain('sudo mkdir -p /mnt/docs && sudo mount -t 9p -o trans=virtio,version=9p2000.L,msize=131072,cache=mmap,ro docs /mnt/docs');
  });

  it('create --dry-run refuses the sandbox inputs create refuses (key, user-data, host name), writing nothing', async () => {
    const bad = path.join(t.home, 'bad.pub');
    fs.writeFileSync(bad, 'not a key\n');
    const priv = path.join(t.home, 'id_test');
    fs.writeFileSync(priv, '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n');
    const ud = path.join(t.home, 'user-data.yaml');
    fs.writeFileSync(ud, 'packages: [git]\n');
    const dry = (...extra: string[]) => cli(['create', 'drybox', '--cloud-image', guest.disk, '--accel', 'tcg', '--dry-run', ...extra]);
    const before = fs.readdirSync(path.join(t.home, 'vms')).sort();
    const cases: [string[], RegExp][] = [
      [['--ssh-key', bad], /Not an OpenSSH public key/],
      [['--ssh-key', priv], /That is a private SSH key/],
      [['--user-data', ud], /cloud-init would ignore this user-data file/],
      [['--hostname', 'bad_name'], /"bad_name" is not a valid host name/],
    ];
    for (const [args, message] of cases) {
      const r = await dry(...args);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.stderr).toMatch(message);
      // The same refusal as create's.
      const real = await cli(['create', 'drybox', '--cloud-image', guest.disk, '--accel', 'tcg', ...args]);
      expect({ code: real.code, stderr: real.stderr }).toEqual({ code: r.code, stderr: r.stderr });
    }
    expect((await dry()).code).toBe(0);
    expect(fs.readdirSync(path.join(t.home, 'vms')).sort()).toEqual(before);
  });
});
