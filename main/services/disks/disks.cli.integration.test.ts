/**
 * Disk checks and generated state through the real `vivarium` command (run `npm run build:main`
 * first), the way a person meets them: create refuses what is not a disk image, a start refuses a
 * disk that changed since, in words; a UEFI VM whose variable store was deleted starts anyway and
 * its log says the UEFI settings were reset; `serial --log` reads a rotated log whole.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCliJson } from '../../test-support/cli';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { SERIAL_LOG_LIMITS, rotateSerialLog } from '../logs/serial-log';

let t: TestHome;
/** Where the person keeps their own images: outside the library. */
let files: string;
beforeEach(() => {
  t = makeTestHome();
  files = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-user-files-'));
});
afterEach(async () => {
  await t.cleanup();
  fs.rmSync(files, { recursive: true, force: true });
});

const cli = (args: string[], timeoutMs?: number) => runCli(args, { env: t.env, timeoutMs });
const noQemuJson = (s: string) => expect(s).not.toMatch(/\{"driver"|-blockdev|json:\{/);

describe('create --disk takes only disk images', () => {
  it('refuses /etc/passwd and creates nothing', async () => {
    const r = await cli(['create', 'pw', '--accel', 'tcg', '--disk', '/etc/passwd']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/\/etc\/passwd (looks like a text or data file|is not a disk image)/);
    noQemuJson(r.stderr);
    expect(await runCliJson<unknown[]>(['list', '--json'], { env: t.env })).toEqual([]);
  });

  it('refuses an ISO and says to give it as the CD (--iso)', async () => {
    const iso = path.join(files, 'installer.iso');
    const real = testGuest().memtestIso;
    if (real) fs.copyFileSync(real, iso);
    else {
      const dir = path.join(files, 'isodir');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'a.txt'), 'a\n');
      execFileSync('genisoimage', ['-quiet', '-o', iso, dir]);
    }
    const r = await cli(['create', 'cd', '--accel', 'tcg', '--disk', iso]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${iso} is a CD/DVD image (ISO 9660), not a disk image.`);
    expect(r.stderr).toContain(`--iso ${iso}`);
  });
});

describe('every start re-checks the disks', () => {
  it('a disk image that vanished or became an overlay is a sentence, not QEMU JSON', async () => {
    const g = testGuest();
    const disk = path.join(files, 'ext.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
    const r = await cli(['create', 'ext', '--accel', 'tcg', '--memory', '256M', '--disk', disk, '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, '--net', 'none', '--display', 'none']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    fs.rmSync(disk);
    const gone = await cli(['start', 'ext']);
    expect(gone.code).not.toBe(0);
    // (The driver's media check may say it before the disk preflight does: either sentence will do.)
    expect(gone.stderr).toContain(disk);
    expect(gone.stderr).toContain('no longer exists. Put');
    noQemuJson(gone.stderr);

    // Put back as an overlay on a file the config never named.
    const secret = path.join(files, 'secret.raw');
    fs.writeFileSync(secret, Buffer.alloc(1024 * 1024));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', disk]);
    const sneaky = await cli(['start', 'ext']);
    expect(sneaky.code).not.toBe(0);
    expect(sneaky.stderr).toContain(`now names ${secret} as its backing file`);
    noQemuJson(sneaky.stderr);
    const vms = await runCliJson<{ state: string }[]>(['list', '--json'], { env: t.env });
    expect(vms.map((v) => v.state)).toEqual(['stopped']);
  });

  it('a VM whose installer ISO was deleted starts with that CD drive empty and says so; the saved path stays', async () => {
    const dir = path.join(files, 'isodir');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.txt'), 'a\n');
    const iso = path.join(files, 'installer (1).iso');
    execFileSync('genisoimage', ['-quiet', '-V', 'INST', '-o', iso, dir]);
    const r = await cli(['create', 'gone iso', '--accel', 'tcg', '--memory', '128M', '--iso', iso, '--disk-size', '0', '--net', 'none', '--display', 'none']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    fs.rmSync(iso);

    const start = await cli(['start', 'gone iso'], 90_000);
    expect(start.stderr).toBe(
      `warning: The ISO in cd0, ${iso}, no longer exists: cd0 was started empty. Insert another (vivarium cd insert 'gone iso' PATH --drive cd0, or the Hardware tab), or eject it to stop this notice (vivarium cd eject 'gone iso' --drive cd0).\n`,
    );
    expect(start.code).toBe(0);
    const shown = await runCliJson<{ state: string; argv: string[] }>(['show', 'gone iso', '--json'], { env: t.env });
    expect(shown.state).toBe('running');
    expect(shown.argv.join(' ')).not.toContain(iso);
    expect(shown.argv.join(' ')).toMatch(/ide-cd,id=cd0/); // the drive is there, empty: a CD can go in live
    const drives = await runCliJson<{ id: string; path: string | null }[]>(['disk', 'list', 'gone iso', '--json'], { env: t.env });
    expect(drives).toEqual([expect.objectContaining({ id: 'cd0', path: iso })]);
    expect(fs.readFileSync(path.join(t.home, 'vms', (await runCliJson<{ id: string }[]>(['list', '--json'], { env: t.env }))[0]!.id, 'vivarium.log'), 'utf8')).toContain(`warning: The ISO in cd0, ${iso}, no longer exists`);
    expect((await cli(['stop', 'gone iso', '--force'])).code).toBe(0);
  });

  it('a UEFI VM whose variable store was deleted starts with a fresh one, and its log says the settings were reset', async () => {
    const r = await cli(['create', 'efi', '--accel', 'tcg', '--memory', '256M', '--firmware', 'uefi', '--disk-size', '64M', '--net', 'none', '--display', 'none', '--json']);
    expect(r.stderr).toBe('');
    const id = (JSON.parse(r.stdout) as { id: string }).id;
    const bundle = path.join(t.home, 'vms', id);
    fs.rmSync(path.join(bundle, 'efivars.qcow2'));
    const start = await cli(['start', 'efi'], 90_000);
    // The person who started it is told too, not only the log (tester finding 5).
    expect(start.stderr).toBe(
      'warning: The UEFI settings store of "efi" was missing, so Vivarium made a new one from the firmware\'s defaults: the VM\'s UEFI settings (boot entries, boot order) were reset.\n',
    );
    expect(start.code).toBe(0);
    expect(fs.existsSync(path.join(bundle, 'efivars.qcow2'))).toBe(true);
    expect(fs.readFileSync(path.join(bundle, 'vivarium.log'), 'utf8')).toContain(
      'The UEFI settings store of "efi" was missing, so Vivarium made a new one from the firmware\'s defaults: the VM\'s UEFI settings (boot entries, boot order) were reset.',
    );
    const vms = await runCliJson<{ state: string }[]>(['list', '--json'], { env: t.env });
    expect(vms.map((v) => v.state)).toEqual(['running']);
    expect((await cli(['stop', 'efi', '--force'])).code).toBe(0);
  });
});

describe('notices reach the person who asked', () => {
  it('more vCPUs than host cores, at create and at edit, on stderr as warnings', async () => {
    const cores = os.cpus().length;
    const many = Math.min(255, cores + 1);
    const r = await cli(['create', 'wide', '--accel', 'tcg', '--memory', '128M', '--cpus', String(many), '--disk-size', '0', '--net', 'none', '--display', 'none']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`warning: ${many} CPUs is more than this host's ${cores}; the VM will run, but slower than with ${cores} or fewer.\n`);
    const e = await cli(['edit', 'wide', '--cpus', String(many)]);
    expect(e.code).toBe(0);
    expect(e.stderr).toContain(`warning: ${many} CPUs is more than this host's ${cores}`);
    const fine = await cli(['edit', 'wide', '--cpus', '1']);
    expect(fine.stderr).toBe('');
  });

  it('--accel kvm where doctor knows KVM cannot work (kvm_pvm) says so at create', async () => {
    const r = await cli(['create', 'kvm', '--accel', 'kvm', '--memory', '128M', '--disk-size', '0', '--net', 'none', '--display', 'none']);
    if (fs.existsSync('/sys/module/kvm_pvm') && fs.existsSync('/dev/kvm')) {
      // This machine's case: allowed (a guest made for it may run), with the reason auto avoids it.
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^warning: KVM may not work here \(auto would not pick it\): \/dev\/kvm is provided by kvm_pvm .*hang\.\n$/);
    } else if (!fs.existsSync('/dev/kvm')) {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('KVM');
    } else {
      expect(r.code).toBe(0);
    }
  });
});

describe('--iso takes only CD/DVD images', () => {
  it('refuses /etc/passwd and a qcow2 (pointing a disk image to --disk), accepts a real ISO, at create and edit', async () => {
    const pw = await cli(['create', 'isopw', '--accel', 'tcg', '--disk-size', '0', '--iso', '/etc/passwd']);
    expect(pw.code).not.toBe(0);
    expect(pw.stderr).toContain('/etc/passwd is not a CD/DVD image: it has no ISO 9660 or UDF volume descriptor');
    const q = path.join(files, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', q, '16M']);
    const qc = await cli(['create', 'isoq', '--accel', 'tcg', '--disk-size', '0', '--iso', q]);
    expect(qc.code).not.toBe(0);
    expect(qc.stderr).toContain(`${q} is a qcow2 disk image, not a CD/DVD image. Give it as the VM's disk instead.`);
    expect(await runCliJson<unknown[]>(['list', '--json'], { env: t.env })).toEqual([]);

    const iso = path.join(files, 'data.iso');
    const dir = path.join(files, 'isodir');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.txt'), 'a\n');
    execFileSync('genisoimage', ['-quiet', '-o', iso, dir]);
    const ok = await cli(['create', 'isook', '--accel', 'tcg', '--memory', '128M', '--disk-size', '0', '--iso', iso, '--net', 'none', '--display', 'none']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const edit = await cli(['edit', 'isook', '--iso', '/etc/passwd']);
    expect(edit.code).not.toBe(0);
    expect(edit.stderr).toContain('/etc/passwd is not a CD/DVD image');
  });
});

describe('two VMs on one --disk', () => {
  it('create warns naming the other VM; the second start names the VM that holds the image, not QEMU\'s lock text', async () => {
    const g = testGuest();
    const shared = path.join(files, 'shared.img');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', shared, '64M']);
    const mk = (name: string) =>
      cli(['create', name, '--accel', 'tcg', '--memory', '128M', '--disk', shared, '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, '--net', 'none', '--display', 'none']);
    const a = await mk('vA');
    expect(a.stderr).toBe('');
    const b = await mk('vB');
    expect(b.code).toBe(0);
    expect(b.stderr).toBe(`warning: The disk image ${shared} is also a disk of "vA". Only one of the two can run at a time (two VMs writing one image would corrupt it): Vivarium refuses to start one while the other runs.\n`);
    expect((await cli(['start', 'vA'], 90_000)).code).toBe(0);
    try {
      const second = await cli(['start', 'vB'], 90_000);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain(`"vB" cannot start: its disk image ${shared} is in use by "vA", which is running, and two VMs writing one image would corrupt it. Shut it down first: \`vivarium stop vA\`.`);
      expect(second.stderr).not.toMatch(/Failed to get "write" lock|-device|virtio-blk/);
    } finally {
      expect((await cli(['stop', 'vA', '--force'])).code).toBe(0);
    }
    // Once vA is off, vB starts.
    expect((await cli(['start', 'vB'], 90_000)).code).toBe(0);
    expect((await cli(['stop', 'vB', '--force'])).code).toBe(0);
  });
});

describe('serial --log after rotations', () => {
  it('shows the output that was rotated out of serial.log', async () => {
    const g = testGuest();
    const r = await cli(['create', 'chatty', '--accel', 'tcg', '--memory', '256M', '--disk-size', '0', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, '--net', 'none', '--display', 'none', '--json']);
    expect(r.stderr).toBe('');
    const id = (JSON.parse(r.stdout) as { id: string }).id;
    const start = await cli(['start', 'chatty', '--wait-serial', g.readyMarker, '--timeout', '90'], 120_000);
    expect(start.code).toBe(0);
    const log = path.join(t.home, 'vms', id, 'serial.log');
    // Rotate as an engine would (small limits, so the boot output is already enough).
    expect(await rotateSerialLog(log, { rotateAtBytes: 16, keepBytes: 64 * 1024 })).toBe(true);
    expect(fs.statSync(log).size).toBe(0);
    const shown = await cli(['serial', 'chatty', '--log']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(g.readyMarker);

    // With the real limits and no engine running: 4 MiB more output (appended the way QEMU appends),
    // then any `vivarium list` trims the log and `serial --log` still ends with the newest line.
    fs.appendFileSync(log, `${'x'.repeat(79)}\n`.repeat(52_429) + 'NEWEST-LINE\n');
    expect(fs.statSync(log).size).toBeGreaterThan(SERIAL_LOG_LIMITS.rotateAtBytes);
    expect((await cli(['list'])).code).toBe(0);
    expect(fs.statSync(log).size).toBeLessThan(64 * 1024);
    expect(fs.statSync(`${log}.0`).size).toBeLessThanOrEqual(SERIAL_LOG_LIMITS.keepBytes + 64 * 1024);
    const latest = await cli(['serial', 'chatty', '--log']);
    expect(latest.stdout.trimEnd().endsWith('NEWEST-LINE')).toBe(true);
    expect((await cli(['stop', 'chatty', '--force'])).code).toBe(0);
  });
});

describe('a file another VM uses is never deleted under it', () => {
  it('a linked clone\'s base cannot go with its VM until the clone is gone', async () => {
    const mk = async (name: string) => {
      const r = await cli(['create', name, '--accel', 'tcg', '--memory', '128M', '--disk-size', '64M', '--net', 'none', '--display', 'none', '--json']);
      expect(r.stderr).toBe('');
      return (JSON.parse(r.stdout) as { id: string }).id;
    };
    const baseId = await mk('base');
    const cloneId = await mk('clone');
    // Make "clone" a linked clone by hand (issue 10 will have a command): an overlay on base's disk,
    // declared in its config's backing chain.
    const baseDisk = path.join(t.home, 'vms', baseId, 'disk0.qcow2');
    const cloneDir = path.join(t.home, 'vms', cloneId);
    fs.rmSync(path.join(cloneDir, 'disk0.qcow2'));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', baseDisk, '-F', 'qcow2', path.join(cloneDir, 'disk0.qcow2')]);
    const cfgFile = path.join(cloneDir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { disks: { backing: unknown[] }[] };
    cfg.disks[0]!.backing = [{ source: { path: baseDisk }, format: 'qcow2' }];
    fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));

    for (const args of [['delete', 'base'], ['delete', 'base', '--keep-disks']]) {
      const refused = await cli(args);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`"base" cannot be deleted: "clone" uses ${baseDisk} from its folder as a backing image of its disk disk0.`);
      expect(fs.existsSync(baseDisk)).toBe(true);
    }
    expect((await cli(['delete', 'clone'])).code).toBe(0);
    expect((await cli(['delete', 'base'])).code).toBe(0);
    expect(fs.existsSync(baseDisk)).toBe(false);
  });
});
