/**
 * Disk checks against real files made by qemu-img: what create accepts as a disk image, and what
 * every start re-checks (existence, permissions, format, backing chain, the qcow2 corrupt flag,
 * another program holding the image). Each refusal must be a sentence, never QEMU's -blockdev JSON.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, VivariumError } from '../../common/errors';
import { CONFIG_VERSION, VmConfig, type VmConfigInput } from '../../common/models/vm-config';
import { testGuest } from '../../test-support/guest';
import { QemuImg } from './qemu-img';
import { checkDiskImage, diskProblems, preflightDisks } from './preflight';

const QEMU_IMG = '/usr/bin/qemu-img';
const QEMU = '/usr/bin/qemu-system-x86_64';
const qemuImg = new QemuImg(QEMU_IMG);
const img = (...args: string[]) => execFileSync(QEMU_IMG, args, { stdio: 'pipe' });

let tmp: string;
const immutable: string[] = [];
let holder: ChildProcess | null = null;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-preflight-'));
});

afterEach(async () => {
  const h = holder;
  holder = null;
  if (h && h.exitCode === null && h.signalCode === null) {
    const gone = new Promise((r) => h.once('exit', r));
    h.kill('SIGKILL');
    await gone;
  }
  for (const f of immutable.splice(0)) execFileSync('chattr', ['-i', f]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Takes write access away for real: chmod for a normal user; root ignores modes, so the file is
 *  made immutable (chattr +i), which refuses writes even to root. */
function makeUnwritable(file: string): void {
  if (process.getuid?.() === 0) {
    execFileSync('chattr', ['+i', file]);
    immutable.push(file);
  } else {
    fs.chmodSync(file, 0o444);
  }
}

/** Sets the qcow2 v3 "corrupt" incompatible-feature bit (header offset 72, bit 1), as QEMU does when
 *  a consistency check fails on a running image. */
function markCorrupt(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, 79);
    b[0] = (b[0] ?? 0) | 0x02;
    fs.writeSync(fd, b, 0, 1, 79);
  } finally {
    fs.closeSync(fd);
  }
}

async function refusal(p: Promise<unknown>): Promise<VivariumError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(VivariumError);
    const err = e as VivariumError;
    expect(err.message).not.toMatch(/\{"driver"|-blockdev|json:/);
    return err;
  }
  throw new Error('expected a refusal');
}

describe('checkDiskImage: --disk must be a disk image', () => {
  it('accepts a standalone qcow2 and a blank raw image, and says which format', async () => {
    const q = path.join(tmp, 'a.qcow2');
    img('create', '-q', '-f', 'qcow2', q, '64M');
    expect(await checkDiskImage(q, qemuImg)).toEqual({ format: 'qcow2', virtualSize: 64 * 1024 * 1024 });
    const r = path.join(tmp, 'b.img');
    img('create', '-q', '-f', 'raw', r, '8M');
    expect(await checkDiskImage(r, qemuImg)).toEqual({ format: 'raw', virtualSize: 8 * 1024 * 1024 });
  });

  it('refuses /etc/passwd: a text file is not a disk', async () => {
    const err = await refusal(checkDiskImage('/etc/passwd', qemuImg));
    expect(err.code).toBe(ErrorCode.InvalidArgument);
    expect(err.field).toBe('diskPath');
    expect(err.message).toMatch(/^\/etc\/passwd is not a disk image|^\/etc\/passwd looks like a text or data file|^\/etc\/passwd is not readable and writable/);
  });

  it('refuses a text file even when its size is a whole number of sectors', async () => {
    const t = path.join(tmp, 'notes.img');
    fs.writeFileSync(t, 'root:x:0:0:root:/root:/bin/bash\n'.repeat(32).slice(0, 1024));
    expect(fs.statSync(t).size).toBe(1024);
    const err = await refusal(checkDiskImage(t, qemuImg));
    expect(err.message).toContain('looks like a text or data file, not a disk image');
  });

  it('refuses a raw file whose size is not a multiple of 512 bytes', async () => {
    const t = path.join(tmp, 'odd.raw');
    fs.writeFileSync(t, Buffer.alloc(1000));
    expect((await refusal(checkDiskImage(t, qemuImg))).message).toContain('not a whole number of 512-byte sectors');
  });

  it('refuses an ISO (a real one) and points to attaching it as the CD', async () => {
    const iso = path.join(tmp, 'cd.iso');
    const real = testGuest().memtestIso;
    if (real) {
      fs.copyFileSync(real, iso);
    } else {
      const dir = path.join(tmp, 'isodir');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'hello.txt'), 'hi\n');
      execFileSync('genisoimage', ['-quiet', '-o', iso, '-V', 'TEST', dir]);
    }
    const err = await refusal(checkDiskImage(iso, qemuImg));
    expect(err.message).toContain('is a CD/DVD image (ISO 9660), not a disk image. Attach it as the VM\'s CD instead.');
    expect(err.remedy).toEqual({ kind: 'change-setting', field: 'iso', to: iso });
  });

  it('refuses an overlay, another format, a compressed image, a corrupt qcow2, a missing file', async () => {
    const base = path.join(tmp, 'base.qcow2');
    img('create', '-q', '-f', 'qcow2', base, '16M');
    const over = path.join(tmp, 'over.qcow2');
    img('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', over);
    expect((await refusal(checkDiskImage(over, qemuImg))).message).toContain(`is an overlay on ${base}`);
    const vmdk = path.join(tmp, 'd.vmdk');
    img('create', '-q', '-f', 'vmdk', vmdk, '16M');
    expect((await refusal(checkDiskImage(vmdk, qemuImg))).message).toContain('is a vmdk image. Convert it to qcow2 first');
    const raw = path.join(tmp, 'disk.raw');
    fs.writeFileSync(raw, Buffer.alloc(1024 * 1024));
    execFileSync('gzip', ['-k', raw]);
    expect((await refusal(checkDiskImage(`${raw}.gz`, qemuImg))).message).toContain('is a gzip-compressed file, not a disk image. Unpack it first');
    const bad = path.join(tmp, 'bad.qcow2');
    img('create', '-q', '-f', 'qcow2', bad, '16M');
    markCorrupt(bad);
    expect((await refusal(checkDiskImage(bad, qemuImg))).message).toContain('QEMU marked');
    expect((await refusal(checkDiskImage(path.join(tmp, 'nope.qcow2'), qemuImg))).message).toContain('does not exist');
  });

  it('refuses an image you cannot write', async () => {
    const q = path.join(tmp, 'ro.qcow2');
    img('create', '-q', '-f', 'qcow2', q, '16M');
    makeUnwritable(q);
    expect((await refusal(checkDiskImage(q, qemuImg))).message).toContain('is not readable and writable by you');
  });
});

// ---- start-time preflight ------------------------------------------------------------------------

function config(disks: VmConfigInput['disks']): VmConfig {
  return VmConfig.parse({
    version: CONFIG_VERSION,
    id: '0b7e1f2a-3c4d-4e5f-8a6b-7c8d9e0f1a2b',
    name: 'Pre',
    createdAt: '2025-01-01T00:00:00.000Z',
    arch: 'x86_64',
    cpus: 1,
    memoryMiB: 256,
    disks,
    network: { mac: '52:54:00:0b:7e:1f' },
  });
}
const bundle = () => ({ file: (n: string) => path.join(tmp, n) });

describe('preflight at every start', () => {
  it('a sound VM with a declared chain passes', async () => {
    img('create', '-q', '-f', 'raw', path.join(tmp, 'base.raw'), '16M');
    img('create', '-q', '-f', 'qcow2', '-b', path.join(tmp, 'base.raw'), '-F', 'raw', path.join(tmp, 'mid.qcow2'));
    // A relative backing name resolves against the overlay's folder, as QEMU does.
    img('create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', path.join(tmp, 'top.qcow2'));
    img('create', '-q', '-f', 'qcow2', path.join(tmp, 'data.qcow2'), '16M');
    const c = config([
      {
        id: 'disk0',
        role: 'system',
        source: { bundle: 'top.qcow2' },
        format: 'qcow2',
        backing: [
          { source: { bundle: 'mid.qcow2' }, format: 'qcow2' },
          { source: { path: path.join(tmp, 'base.raw') }, format: 'raw' },
        ],
      },
      { id: 'disk1', source: { bundle: 'data.qcow2' }, format: 'qcow2' },
    ]);
    expect(await diskProblems(c, bundle(), qemuImg)).toEqual([]);
    await preflightDisks(c, bundle(), qemuImg);
  });

  it('a disk file that vanished, lost write access or was replaced by another format', async () => {
    img('create', '-q', '-f', 'qcow2', path.join(tmp, 'd0.qcow2'), '16M');
    img('create', '-q', '-f', 'raw', path.join(tmp, 'd1.qcow2'), '16M'); // raw where qcow2 is declared
    img('create', '-q', '-f', 'qcow2', path.join(tmp, 'd2.qcow2'), '16M');
    makeUnwritable(path.join(tmp, 'd2.qcow2'));
    const c = config([
      { id: 'disk0', source: { bundle: 'gone.qcow2' }, format: 'qcow2' },
      { id: 'disk1', source: { bundle: 'd1.qcow2' }, format: 'qcow2' },
      { id: 'disk2', source: { bundle: 'd2.qcow2' }, format: 'qcow2' },
      { id: 'disk3', source: { bundle: 'd0.qcow2' }, format: 'qcow2', readOnly: true },
    ]);
    const problems = await diskProblems(c, bundle(), qemuImg);
    expect(problems).toEqual([
      `The image of disk disk0 (${path.join(tmp, 'gone.qcow2')}) no longer exists. Put the file back (or restore it from a backup), then start the VM again.`,
      expect.stringContaining('The image of disk disk1') as unknown as string,
      expect.stringContaining('is not readable and writable by you, and the VM writes to it') as unknown as string,
    ]);
    expect(problems[1]).toContain('is no longer a qcow2 image (it is a raw image now), but the VM\'s settings say qcow2');
    const err = await refusal(preflightDisks(c, bundle(), qemuImg));
    expect(err.code).toBe(ErrorCode.InvalidState);
    expect(err.message).toMatch(/^"Pre" cannot start: The image of disk disk0 .* no longer exists\. .*\(2 more disk problems found\.\)$/);
  });

  it('the qcow2 corrupt flag', async () => {
    const f = path.join(tmp, 'c.qcow2');
    img('create', '-q', '-f', 'qcow2', f, '16M');
    markCorrupt(f);
    const problems = await diskProblems(config([{ id: 'disk0', source: { bundle: 'c.qcow2' }, format: 'qcow2' }]), bundle(), qemuImg);
    expect(problems).toEqual([expect.stringContaining(`QEMU marked ${f} as corrupt`)]);
    expect(problems[0]).toContain('qemu-img check -r all');
  });

  it('a backing file the chain does not declare, a missing one, or a different one', async () => {
    const secret = path.join(tmp, 'secret.raw');
    fs.writeFileSync(secret, Buffer.alloc(1024 * 1024));
    img('create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', path.join(tmp, 'sneaky.qcow2'));
    img('create', '-q', '-f', 'qcow2', path.join(tmp, 'flat.qcow2'), '16M');
    img('create', '-q', '-f', 'raw', path.join(tmp, 'declared.raw'), '1M');
    img('create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', path.join(tmp, 'rebased.qcow2'));
    const declared = { source: { bundle: 'declared.raw' }, format: 'raw' } as const;
    const problems = await diskProblems(
      config([
        { id: 'disk0', source: { bundle: 'sneaky.qcow2' }, format: 'qcow2' },
        { id: 'disk1', source: { bundle: 'flat.qcow2' }, format: 'qcow2', backing: [declared] },
        { id: 'disk2', source: { bundle: 'rebased.qcow2' }, format: 'qcow2', backing: [declared] },
      ]),
      bundle(),
      qemuImg,
    );
    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain(`now names ${secret} as its backing file, which the VM's settings do not list`);
    expect(problems[1]).toContain('has no backing file, but the VM\'s settings layer it on');
    expect(problems[2]).toContain(`names ${secret} as its backing file, but the VM's settings say ${path.join(tmp, 'declared.raw')}`);
  });

  it('a read-only raw base replaced by a qcow2 is caught; a writable raw disk is never probed', async () => {
    img('create', '-q', '-f', 'qcow2', path.join(tmp, 'base.raw'), '16M');
    img('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', path.join(tmp, 'top.qcow2'));
    // A raw disk whose guest wrote a qcow2 header into it: still raw to Vivarium.
    img('create', '-q', '-f', 'qcow2', path.join(tmp, 'guest-wrote.raw'), '16M');
    fs.truncateSync(path.join(tmp, 'guest-wrote.raw'), 16 * 1024 * 1024); // a raw disk keeps its size
    const problems = await diskProblems(
      config([
        { id: 'disk0', source: { bundle: 'top.qcow2' }, format: 'qcow2', backing: [{ source: { bundle: 'base.raw' }, format: 'raw' }] },
        { id: 'disk1', source: { bundle: 'guest-wrote.raw' }, format: 'raw' },
      ]),
      bundle(),
      qemuImg,
    );
    expect(problems).toEqual([expect.stringContaining('is a qcow2 image now, but the VM\'s settings say raw')]);
    expect(problems[0]).toContain('The backing image');
  });

  it('a raw disk replaced by a text file after create is refused at start, as create refuses it', async () => {
    const raw = path.join(tmp, 'disk.raw');
    img('create', '-q', '-f', 'raw', raw, '1M');
    const disks = [{ id: 'disk0', source: { path: raw }, format: 'raw' as const }];
    expect(await diskProblems(config(disks), bundle(), qemuImg)).toEqual([]);
    // Same path, now /etc/passwd's bytes: the size rule refuses it (as checkDiskImage does).
    fs.copyFileSync('/etc/passwd', raw);
    const [bySize] = await diskProblems(config(disks), bundle(), qemuImg);
    expect(bySize).toMatch(new RegExp(`^The image of disk disk0 \\(${raw}\\) is not a disk image: its size \\(\\d+ bytes\\) is not a whole number of 512-byte sectors: it was replaced`));
    // A text file padded to whole sectors: no zero byte in it.
    fs.writeFileSync(raw, 'root:x:0:0:root:/root:/bin/bash\n'.repeat(4096).slice(0, 64 * 1024));
    const [byContent] = await diskProblems(config(disks), bundle(), qemuImg);
    expect(byContent).toContain('looks like a text or data file, not a disk image');
    const e = await refusal(preflightDisks(config(disks), bundle(), qemuImg));
    expect(e.message).toContain('cannot start: The image of disk disk0');
  });

  it('an image another QEMU is writing is reported as in use (real QEMU holding the lock)', async () => {
    const f = path.join(tmp, 'busy.qcow2');
    img('create', '-q', '-f', 'qcow2', f, '16M');
    const h = spawn(QEMU, ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-blockdev', `driver=file,filename=${f},node-name=f`, '-blockdev', 'driver=qcow2,file=f,node-name=q'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    holder = h;
    let stderr = '';
    h.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // Wait until QEMU holds the lock, seen in /proc/locks (QEMU takes OFD byte-range locks on the
    // image): probing with qemu-img instead took a lock itself and, on a loaded host, made QEMU's own
    // start fail with 'Failed to get "write" lock'.
    const ino = fs.statSync(f).ino;
    const heldByQemu = () => fs.readFileSync('/proc/locks', 'utf8').split('\n').some((l) => l.includes('OFDLCK') && l.split(/\s+/).some((w) => w.endsWith(`:${ino}`)));
    const deadline = Date.now() + 10_000;
    let locked = false;
    while (!locked && Date.now() < deadline && h.exitCode === null) {
      locked = heldByQemu();
      if (!locked) await new Promise((res) => setTimeout(res, 50));
    }
    expect(locked, `QEMU exit ${h.exitCode}, stderr: ${stderr}`).toBe(true);
    const problems = await diskProblems(config([{ id: 'disk0', source: { bundle: 'busy.qcow2' }, format: 'qcow2' }]), bundle(), qemuImg);
    expect(problems).toEqual([`The image of disk disk0 (${f}) is in use by another program (another running VM, or a disk tool). Stop that program first, then start the VM again.`]);
    // A read-only use of the same image (as a linked clone's base) takes no write lock: fine.
    expect(await diskProblems(config([{ id: 'disk0', source: { bundle: 'busy.qcow2' }, format: 'qcow2', readOnly: true }]), bundle(), qemuImg)).toEqual([]);
  });
});
