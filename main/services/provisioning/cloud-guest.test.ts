/**
 * The cloud-init path against a real guest: the Debian image built from Debian packages by
 * scripts/build-cloud-guest.mjs, booted under TCG with the product's argv builder and launcher, the
 * seed written by Vivarium's own ISO writer attached as a read-only virtio disk, the SSH port forwarded to a free
 * 127.0.0.1 port. Two VMs boot side by side: "plain" (generated key, no password, two 9p shares)
 * and "pw" (a password and extra user-data merged in).
 *
 * What a user would check: `ssh … hostname` prints the chosen name; the generated key works; the
 * server offers passwords only where one was set; the host key ssh trusts is the one the guest printed
 * on its console; the shares are mounted at /mnt/<tag> and the read-only one refuses writes; the
 * Terminal's pty session resizes the guest's tty.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmConfig, type VmConfigInput } from '../../common/models/vm-config';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { isAlive } from '../../test-support/qemu-procs';
import { Layout } from '../paths';
import { buildQemuArgs } from '../qemu/argv';
import { GuestAgentClient } from '../qemu/guest-agent';
import { probeHost } from '../qemu/host-probe';
import { launchQemu } from '../qemu/process';
import { GuestClockSync } from '../sandbox/clock-sync';
import { buildSshCommand, sshCommandLine, type SshTarget } from '../terminal/ssh-command';
import { startPtySession } from '../terminal/pty-session';
import { SHARES_SCRIPT_PATH, buildSeed, describeSeed, type SeedInput } from './cloud-init';
import { parseHostKeysFromConsole } from './known-hosts';
import { hashPassword } from './password-hash';
import { writeSeedIso } from './seed-iso';
import { waitForSshReady } from './ssh-ready';
import { createVmKeyPair } from './ssh-keys';
// @ts-expect-error -- plain ESM script without type declarations
import { buildCloudGuest } from '../../../scripts/build-cloud-guest.mjs';

const execFileP = promisify(execFile);

interface CloudGuestInfo {
  disk: string;
  kernel: string;
  initrd: string;
  append: string;
}

interface Booted {
  readonly name: string;
  readonly id: string;
  readonly bundleDir: string;
  readonly serialLog: string;
  readonly knownHosts: string;
  readonly port: number;
  readonly target: SshTarget;
  readonly pid: number;
  /** The guest agent's socket (qemu-guest-agent in the image). */
  readonly qga: string;
  readonly shares: Readonly<Record<string, string>>;
  readonly launchedAt: number;
  hostKeysAt?: number;
  sshAt?: number;
}

// Measured: ~80 s alone on 2 cores; ~300 s with two guests booting while the machine's load average was ~18.
const BOOT_TIMEOUT_MS = 12 * 60_000;
const PASSWORD = 'Tr0ub4dor&3-vivarium';

let home: TestHome;
let guest: CloudGuestInfo;
const vms: Booted[] = [];

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

async function run(file: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  try {
    const r = await execFileP(file, [...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

function ssh(vm: Booted, command: readonly string[], extra: Partial<Parameters<typeof buildSshCommand>[1]> = {}) {
  const cmd = buildSshCommand(vm.target, { command, ...extra });
  return run(cmd.file, cmd.args);
}

async function boot(name: string, seedFor: (id: string, publicKey: string) => Promise<SeedInput>, shares: Record<string, { readOnly: boolean }>): Promise<Booted> {
  const id = randomUUID();
  const layout = new Layout(home.home, path.join(home.runtimeDir, 'lib'));
  const paths = layout.paths(id);
  fs.mkdirSync(paths.bundle.dir, { recursive: true });
  fs.mkdirSync(paths.runtime.dir, { recursive: true, mode: 0o700 });

  // The image is never modified: the VM's disk is an overlay on the cached image.
  const overlay = paths.bundle.file('disk0.qcow2');
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', guest.disk, '-F', 'qcow2', overlay]);

  const keys = await createVmKeyPair(paths.bundle.dir, `vivarium@${name}`);
  const seedInput = await seedFor(id, keys.publicKey);
  const seed = buildSeed(seedInput);
  const seedIso = paths.bundle.file('cidata.iso');
  await writeSeedIso(seedIso, seed);
  // What a log line about the seed may say (checked for secrets in the unit tests).
  expect(describeSeed(seedInput, seed)).toContain(`cloud-init seed for ${seedInput.hostname}`);

  const shareDirs: Record<string, string> = {};
  const shareList = Object.entries(shares).map(([tag, s]) => {
    const dir = path.join(home.home, `share-${name}-${tag}`);
    fs.mkdirSync(dir, { recursive: true });
    shareDirs[tag] = dir;
    return { hostPath: dir, tag, readOnly: s.readOnly };
  });

  const port = await freePort();
  const mac = `52:54:00:${[0, 1, 2].map(() => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join(':')}`;
  const input: VmConfigInput = {
    version: 3,
    id,
    name,
    createdAt: new Date().toISOString(),
    arch: 'x86_64',
    accel: 'tcg',
    cpus: 2,
    memoryMiB: 1024,
    firmware: 'bios',
    disks: [
      {
        id: 'disk0',
        role: 'system',
        source: { path: overlay },
        format: 'qcow2',
        backing: [{ source: { path: guest.disk }, format: 'qcow2' }],
      },
      // The seed as a read-only virtio disk, not a CD: every cloud kernel has virtio-blk, while
      // some (Debian's cloud kernel) lack the AHCI driver q35's CD drive needs.
      { id: 'disk1', role: 'data', source: { path: seedIso }, format: 'raw', readOnly: true },
    ],
    cdroms: [],
    kernel: { path: guest.kernel, initrd: guest.initrd, append: guest.append },
    network: { mode: 'user', mac, forwards: [{ protocol: 'tcp', hostPort: port, guestPort: 22 }] },
    display: 'none',
    os: 'Debian 12',
    shares: shareList,
  };
  const config = VmConfig.parse(input);
  const plan = buildQemuArgs(config, await probeHost(), paths);
  expect(plan.args.join(' ')).toContain(`hostfwd=tcp:127.0.0.1:${port}-:22`);
  const launchedAt = Date.now();
  const launched = await launchQemu({
    binary: plan.binary,
    args: plan.args,
    runtime: paths.runtime,
    logFile: paths.bundle.qemuLog,
    qemuWrites: [paths.bundle.serialLog],
  });
  const knownHosts = path.join(paths.bundle.dir, 'ssh', 'known_hosts');
  const vm: Booted = {
    name,
    id,
    bundleDir: paths.bundle.dir,
    serialLog: paths.bundle.serialLog,
    knownHosts,
    port,
    target: { user: seedInput.user.name, port, identityFile: keys.paths.privateKey, knownHostsFile: knownHosts },
    pid: launched.pid,
    qga: paths.runtime.qga,
    shares: shareDirs,
    launchedAt,
  };
  vms.push(vm);
  return vm;
}

/** The product's wait (host keys from the console, then sshd's banner), then one real `ssh … true`. */
async function waitForSsh(vm: Booted): Promise<void> {
  const calledAt = Date.now();
  let ready;
  try {
    ready = await waitForSshReady({
      serialLog: vm.serialLog,
      knownHostsFile: vm.knownHosts,
      port: vm.port,
      timeoutMs: BOOT_TIMEOUT_MS,
      alive: () => isAlive(vm.pid),
    });
  } catch (e) {
    throw new Error(`${vm.name}: ${(e as Error).message}\nSerial tail:\n${tail(vm.serialLog)}`);
  }
  expect(ready.learnedKeys?.length).toBeGreaterThan(0);
  expect(ready.banner).toMatch(/^SSH-2\.0-OpenSSH/);
  vm.hostKeysAt = calledAt + ready.keysAfterMs;
  const r = await ssh(vm, ['true'], { connectTimeoutSeconds: 30 });
  if (r.code !== 0) throw new Error(`${vm.name}: the banner came but ssh failed (${r.stderr.trim()}).`);
  vm.sshAt = Date.now();
}

/**
 * `cloud-init status --wait` in the guest until it answers: exit 0 (done) or 2 (done with recoverable
 * errors, as cloud-init ≥ 23.4 reports deprecations). ssh's own failures (255: sshd restarting) are retried.
 */
async function waitForCloudInit(vm: Booted): Promise<void> {
  const until = Date.now() + BOOT_TIMEOUT_MS;
  let last = { code: -1, stdout: '', stderr: '' };
  while (Date.now() < until) {
    const cmd = buildSshCommand(vm.target, { command: ['cloud-init', 'status', '--wait'] });
    last = await run(cmd.file, cmd.args, { timeoutMs: BOOT_TIMEOUT_MS });
    if (last.code === 0 || last.code === 2) return;
    if (last.code !== 255) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(`${vm.name}: cloud-init did not finish (exit ${last.code}: ${last.stdout}${last.stderr})\nSerial tail:\n${tail(vm.serialLog)}`);
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'latin1').slice(-3000);
  } catch {
    return '(no serial log)';
  }
}

let plain: Booted;
let pw: Booted;

beforeAll(async () => {
  guest = (await buildCloudGuest()) as CloudGuestInfo;
  home = makeTestHome();
  plain = await boot(
    'plain',
    async (id, publicKey) => ({
      instanceId: id,
      hostname: 'viv-plain',
      // The host user's uid (a second Linux user's 1001), as guestUidFor gives it: files owned by
      // 1001 on the host are dev's in the shares.
      user: { name: 'dev', sshAuthorizedKeys: [publicKey], uid: 1001 },
      installGuestAgent: false, // the image has it; installing would need the internet
      shares: [
        { tag: 'work', readOnly: false },
        { tag: 'docs', readOnly: true },
      ],
    }),
    { work: { readOnly: false }, docs: { readOnly: true } },
  );
  fs.writeFileSync(path.join(plain.shares.docs!, 'readme.txt'), 'from the host\n');
  // "work" belongs to dev's uid (1001), as a developer's own folder does; given before cloud-init
  // mounts it (the guest reads the mount root's owner once, at mount time).
  fs.chownSync(plain.shares.work!, 1001, 1001);
  pw = await boot(
    'pw',
    async (id, publicKey) => ({
      instanceId: id,
      hostname: 'viv-pw',
      // uid 998 is the image's systemd-network (a macOS-like low uid that happens to be taken): the
      // seed's bootcmd then makes alice with the next free uid instead of leaving her out.
      user: { name: 'alice', sshAuthorizedKeys: [publicKey], passwordHash: await hashPassword(PASSWORD), uid: 998 },
      installGuestAgent: false,
      network: null,
      extraUserData: '#cloud-config\nhostname: not-this-one\nruncmd:\n  - [sh, -c, "echo merged > /run/extra-user-data"]\n',
    }),
    {},
  );
  await Promise.all([waitForSsh(plain), waitForSsh(pw)]);
  // What the tests check (the user's runcmd, the shares' per-boot script, the agent started by
  // Vivarium's runcmd) is done by cloud-init's final stage, which may still run after sshd answers:
  // a full CI run on 2 loaded cores reached these tests before it finished. Wait for it, as a user
  // who reads `cloud-init status --wait` would.
  await Promise.all([waitForCloudInit(plain), waitForCloudInit(pw)]);
  for (const vm of vms) {
    process.stderr.write(
      `[cloud-guest] ${vm.name}: host keys on the console after ${((vm.hostKeysAt! - vm.launchedAt) / 1000).toFixed(1)} s, ` +
        `first ssh after ${((vm.sshAt! - vm.launchedAt) / 1000).toFixed(1)} s (TCG, two guests side by side)\n`,
    );
  }
}, 20 * 60_000);

afterAll(async () => {
  for (const vm of vms) {
    try {
      process.kill(vm.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  const until = Date.now() + 10_000;
  while (vms.some((vm) => isAlive(vm.pid)) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  await home?.cleanup();
  for (const vm of vms) expect(isAlive(vm.pid)).toBe(false);
}, 60_000);

describe('a Debian cloud guest provisioned by Vivarium\'s seed', () => {
  it('answers ssh with the generated key and prints the chosen hostname', async () => {
    const a = await ssh(plain, ['hostname']);
    expect(a.stderr).toBe('');
    expect(a.stdout.trim()).toBe('viv-plain');
    // The user's extra user-data asked for another hostname: Vivarium's value wins (no_replace).
    const b = await ssh(pw, ['hostname']);
    expect(b.stdout.trim(), `ssh exited ${b.code}: ${b.stderr}\nSerial tail:\n${tail(pw.serialLog)}`).toBe('viv-pw');
    // The command's exit status comes back.
    const seven = await ssh(plain, ['exit 7']);
    expect(seven.code, `${seven.stderr}\nSerial tail:\n${tail(plain.serialLog)}`).toBe(7);
    // As with OpenSSH, the words make one command line for the guest's shell.
    expect((await ssh(plain, ['echo one;', 'echo', 'two'])).stdout).toBe('one\ntwo\n');
    // cloud-init read Vivarium's seed from the read-only virtio disk (said at the end of its final
    // stage, which may still run while sshd already answers).
    const seedLine = /DataSourceNoCloud \[seed=\/dev\/vd[b-z]\]/;
    for (let i = 0; i < 180 && !seedLine.test(fs.readFileSync(plain.serialLog, 'latin1')); i++) await new Promise((r) => setTimeout(r, 1000));
    expect(fs.readFileSync(plain.serialLog, 'latin1')).toMatch(seedLine);
    // The key file is private.
    expect(fs.statSync(plain.target.identityFile!).mode & 0o777).toBe(0o600);
  }, 300_000);

  it('trusts only the host key the guest printed on its serial console', async () => {
    const printed = parseHostKeysFromConsole(fs.readFileSync(plain.serialLog, 'latin1'));
    expect(printed.length).toBeGreaterThan(0);
    const known = fs.readFileSync(plain.knownHosts, 'utf8');
    for (const k of printed) expect(known).toContain(`[127.0.0.1]:${plain.port} ${k.type} ${k.key}`);
    // The guest's real key (read inside the guest) is among them.
    const inGuest = await ssh(plain, ['cat', '/etc/ssh/ssh_host_ed25519_key.pub']);
    expect(known).toContain(inGuest.stdout.trim().split(/\s+/).slice(0, 2).join(' '));
    // With another guest's key in known_hosts, ssh refuses to connect: nothing is accepted blindly.
    const wrong = path.join(plain.bundleDir, 'ssh', 'known_hosts.wrong');
    fs.writeFileSync(wrong, fs.readFileSync(pw.knownHosts, 'utf8').replaceAll(`]:${pw.port} `, `]:${plain.port} `));
    const r = await ssh({ ...plain, target: { ...plain.target, knownHostsFile: wrong } }, ['true']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
  });

  it('offers password login only where a password was set', async () => {
    const probe = (vm: Booted) =>
      run('ssh', [
        '-o', 'BatchMode=yes', '-o', 'PubkeyAuthentication=no', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityFile=/dev/null',
        '-o', `UserKnownHostsFile=${vm.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null',
        '-p', String(vm.port), `${vm.target.user}@127.0.0.1`, 'true',
      ]);
    // The server lists the methods it would accept.
    const a = await probe(plain);
    expect(a.code).toBe(255);
    expect(a.stderr).toMatch(/Permission denied \(publickey\)/);
    const b = await probe(pw);
    expect(b.stderr).toMatch(/Permission denied \(publickey,password\)/);

    // And the password really logs in (OpenSSH's askpass, no tty needed).
    const askpass = path.join(home.home, 'askpass.sh');
    fs.writeFileSync(askpass, `#!/bin/sh\necho '${PASSWORD}'\n`, { mode: 0o700 });
    const login = await run(
      'ssh',
      [
        '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password', '-o', 'NumberOfPasswordPrompts=1',
        '-o', `UserKnownHostsFile=${pw.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null',
        '-p', String(pw.port), 'alice@127.0.0.1', 'id -un',
      ],
      { env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' } },
    );
    expect(login.stdout.trim()).toBe('alice');
    // No password hash was set for "dev": the account is locked.
    const shadow = await ssh(plain, ['sudo', 'getent', 'shadow', 'dev']);
    expect(shadow.stdout).toMatch(/^dev:!/);
  });

  it('keeps sshd running through provisioning: cloud-init never restarts it under an open session', async () => {
    // cloud-init's set_passwords restarts sshd when it has to write ssh_pwauth's value (Debian 12:
    // into sshd_config.d/50-cloud-init.conf); a `vivarium ssh` that connected in between was reset.
    // One "Server listening" line on this boot means one sshd start, with and without a password.
    for (const vm of [plain, pw]) {
      const log = await ssh(vm, ['sudo', 'journalctl', '-b', '-o', 'cat', '-u', 'ssh.service']);
      expect(log.code, log.stderr).toBe(0);
      expect(log.stdout.match(/^Server listening on 0\.0\.0\.0 port 22\.$/gm), log.stdout).toHaveLength(1);
      expect(log.stdout).not.toMatch(/Received signal 15/);
    }
  });

  it('merges the user\'s extra user-data (its runcmd ran beside Vivarium\'s)', async () => {
    const r = await ssh(pw, ['cat', '/run/extra-user-data']);
    expect(r.stdout.trim(), `ssh exited ${r.code}: ${r.stderr}\nSerial tail:\n${tail(pw.serialLog)}`).toBe('merged');
  });

  it('mounts shared folders at /mnt/<tag>; the read-only one refuses writes', async () => {
    // Mounted before sshd started (bootcmd, not cloud-init's later stages), so the first `vivarium
    // ssh` finds them: systemd's mount units and ssh.service say when each became active.
    const when = await ssh(plain, ['systemctl', 'show', '-P', 'ActiveEnterTimestampMonotonic', 'mnt-work.mount', 'mnt-docs.mount', 'ssh.service']);
    const [work, docs, sshd] = when.stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
    expect(work, when.stdout + when.stderr).toBeGreaterThan(0);
    expect(work).toBeLessThan(sshd!);
    expect(docs).toBeLessThan(sshd!);
    const mounts = await ssh(plain, ['findmnt', '-rn', '-t', '9p', '-o', 'SOURCE,TARGET,OPTIONS']);
    expect(mounts.stdout).toMatch(/^work \/mnt\/work \S*rw/m);
    expect(mounts.stdout).toMatch(/^docs \/mnt\/docs \S*ro/m);
    fs.writeFileSync(path.join(plain.shares.work!, 'from-host.txt'), 'hello guest\n');
    expect((await ssh(plain, ['cat', '/mnt/work/from-host.txt'])).stdout).toBe('hello guest\n');
    expect((await ssh(plain, ['cat', '/mnt/docs/readme.txt'])).stdout).toBe('from the host\n');
    const w = await ssh(plain, ['echo x > /mnt/docs/new.txt']);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/Read-only file system/);
    expect(fs.existsSync(path.join(plain.shares.docs!, 'new.txt'))).toBe(false);

    // The guest user has the host user's uid (1001): it writes, without sudo, where that uid may
    // write on the host, and the file is that user's on the host; a folder of another uid (root's,
    // 0755) refuses it, as it would refuse that host user.
    expect((await ssh(plain, ['id -u; id -g'])).stdout).toBe('1001\n1001\n');
    const mine = await ssh(plain, ['echo from-guest > /mnt/work/from-guest.txt']);
    expect(mine).toMatchObject({ code: 0, stderr: '' });
    expect(fs.readFileSync(path.join(plain.shares.work!, 'from-guest.txt'), 'utf8')).toBe('from-guest\n');
    expect(fs.statSync(path.join(plain.shares.work!, 'from-guest.txt')).uid).toBe(1001);
    fs.mkdirSync(path.join(plain.shares.work!, 'roots'), { mode: 0o755 });
    const theirs = await ssh(plain, ['echo x > /mnt/work/roots/x.txt']);
    expect(theirs.code).not.toBe(0);
    expect(theirs.stderr).toMatch(/Permission denied/);
    // The uid the seed asked for was taken in the image (998): alice exists with the next free one.
    expect((await ssh(pw, ['id -u'])).stdout.trim()).toBe('1000');

    // A share that is not mounted (as one added while the VM was stopped) is mounted by the
    // per-boot script cloud-init runs on every boot, with the mode the host gives in fw_cfg: the
    // read-only one `ro` (tester-s3 #1: it was `rw`, QEMU alone refusing the writes).
    expect((await ssh(plain, ['sudo', 'umount', '/mnt/work', '/mnt/docs'])).code).toBe(0);
    expect((await ssh(plain, ['cat', '/mnt/work/from-host.txt'])).code).not.toBe(0);
    const again = await ssh(plain, ['sudo', SHARES_SCRIPT_PATH]);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect((await ssh(plain, ['cat', '/mnt/work/from-host.txt'])).stdout).toBe('hello guest\n');
    const remounted = await ssh(plain, ['findmnt', '-rn', '-t', '9p', '-o', 'SOURCE,TARGET,OPTIONS']);
    expect(remounted.stdout).toMatch(/^work \/mnt\/work rw,/m);
    expect(remounted.stdout).toMatch(/^docs \/mnt\/docs ro,/m);
    // A share mounted with the other mode (its setting changed since the first boot wrote /etc/fstab)
    // is remounted with the host's.
    expect((await ssh(plain, ['sudo', 'mount', '-o', 'remount,rw', '/mnt/docs'])).code).toBe(0);
    expect((await ssh(plain, ['sudo', SHARES_SCRIPT_PATH])).code).toBe(0);
    expect((await ssh(plain, ['findmnt', '-rn', '-o', 'OPTIONS', '/mnt/docs'])).stdout).toMatch(/^ro,/);
  });

  it('runs an interactive session on a pty whose resize reaches the guest (stty size)', async () => {
    const session = startPtySession(buildSshCommand(plain.target, { tty: true }), { cols: 80, rows: 24 });
    let out = '';
    session.onData((d) => {
      out += d.toString('utf8');
    });
    const waitFor = async (re: RegExp): Promise<void> => {
      const until = Date.now() + 60_000;
      while (!re.test(out)) {
        if (Date.now() > until || session.exited) throw new Error(`pty: ${re} not seen; got:\n${out.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      session.write('stty size; echo SIZE-DONE-1\n');
      await waitFor(/24 80\s+SIZE-DONE-1/);
      session.resize(132, 43);
      session.write('stty size; echo SIZE-DONE-2\n');
      await waitFor(/43 132\s+SIZE-DONE-2/);
      session.write('exit 0\n');
      expect(await session.done).toMatchObject({ exitCode: 0 });
    } finally {
      session.kill();
    }
    // The same command, as a user pastes it into a terminal.
    expect(sshCommandLine(buildSshCommand(plain.target))).toContain(`-p ${plain.port} dev@127.0.0.1`);
  });

  it('has the guest agent answering on its socket (what IPs and Shut Down use)', async () => {
    const agent = await GuestAgentClient.connect(plain.qga, { timeoutMs: 10_000 });
    try {
      expect(await agent.execute('guest-get-host-name', undefined, { timeoutMs: 30_000 })).toEqual({ 'host-name': 'viv-plain' });
      const ifaces = await agent.execute<{ 'ip-addresses'?: { 'ip-address': string }[] }[]>('guest-network-get-interfaces', undefined, { timeoutMs: 30_000 });
      expect(ifaces.flatMap((i) => i['ip-addresses'] ?? []).map((a) => a['ip-address'])).toContain('10.0.2.15');
    } finally {
      agent.close();
    }
  });

  it('sets a guest clock that fell behind to the host\'s time through the agent (the re-sync after host sleep)', async () => {
    // A guest frozen while the host slept is behind by the sleep; here, by 25 years.
    expect((await ssh(plain, ['sudo', 'date', '-s', '@1000000000'])).code).toBe(0);
    const before = Number((await ssh(plain, ['date', '+%s'])).stdout.trim());
    expect(before).toBeLessThan(1_000_000_600);
    // What the engine runs when it sees the host's wall clock jump (sandbox/clock-sync.ts).
    const results = await new GuestClockSync({ targets: () => [{ name: plain.name, qgaSocket: plain.qga }] }).resync();
    expect(results.get(plain.name)).toBe('set');
    const after = Number((await ssh(plain, ['date', '+%s'])).stdout.trim());
    expect(Math.abs(after - Date.now() / 1000)).toBeLessThan(30);
  });
});
