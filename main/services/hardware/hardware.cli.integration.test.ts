/**
 * Disks and CD drives through the real `vivarium` command against a real QEMU (TCG) running the
 * busybox test guest (run `npm run build:main` first), checked from inside the guest the way a
 * person would: with two CD drives (an installer and a driver ISO), the volume label read from
 * /dev/sr1 changes when that drive's CD is ejected and another inserted while the VM runs, and
 * /dev/sr0 keeps its CD; /sys/block/vda/size grows when the disk is grown online; a disk added on
 * the NVMe bus is the guest's /dev/nvme0n1 (the cloud kernel has NVMe built in).
 *
 * The test guest's kernel (Debian's cloud kernel) has no AHCI driver, so the VM is switched to the
 * i440fx board (`machine: "pc"`), whose PIIX IDE the guest drives (ata_piix): the same `ide-cd` on
 * bus ide.0 that q35 gives every other VM, and the same QMP commands.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCliJson } from '../../test-support/cli';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';

/** The guest's serial console as a line-typing robot. */
class SerialConsole {
  private text = '';
  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => (this.text += d.toString('utf8')));
    socket.on('error', () => undefined);
  }
  static open(file: string): Promise<SerialConsole> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: file });
      s.once('connect', () => resolve(new SerialConsole(s)));
      s.once('error', reject);
    });
  }
  /** Runs `cmd` in the guest and returns what it printed between two markers. */
  async run(cmd: string, timeoutMs = 30_000): Promise<string> {
    const tag = `M${Math.random().toString(36).slice(2, 8)}`;
    const from = this.text.length;
    this.socket.write(`echo ${tag}-BEGIN; ${cmd}; echo ${tag}-END\n`);
    const re = new RegExp(`\\n${tag}-BEGIN\\r?\\n([\\s\\S]*?)${tag}-END`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.text.slice(from));
      if (m) return m[1]!.replace(/\r/g, '');
      if (Date.now() > deadline) throw new Error(`no answer to ${cmd} within ${timeoutMs} ms; last output:\n${this.text.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  close(): void {
    this.socket.destroy();
  }
}

interface Drive {
  id: string;
  kind: 'disk' | 'cdrom';
  path: string | null;
  format: string | null;
  virtualSizeBytes: number | null;
  bus: string;
  readOnly: boolean;
}

let t: TestHome;
let files: string;
let serial: SerialConsole | null = null;
beforeEach(() => {
  t = makeTestHome();
  files = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-hw-'));
});
afterEach(async () => {
  serial?.close();
  serial = null;
  await t.cleanup();
  fs.rmSync(files, { recursive: true, force: true });
});

const cli = (args: string[], timeoutMs?: number) => runCli(args, { env: t.env, timeoutMs });
const json = <T>(args: string[]) => runCliJson<T>([...args, '--json'], { env: t.env });

/** An ISO 9660 image whose volume label is `label`. */
function makeIso(label: string): string {
  const dir = path.join(files, label);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'readme.txt'), `${label}\n`);
  const iso = path.join(files, `${label}.iso`);
  execFileSync('genisoimage', ['-quiet', '-V', label, '-o', iso, dir]);
  return iso;
}

/** The volume label of the CD in the guest's /dev/srN, or the error the guest got reading it. */
const readLabel = (dev: string) =>
  `dd if=/dev/${dev} of=/dev/null bs=2048 count=1 2>&1 | grep -o "No medium found"; dd if=/dev/${dev} bs=2048 skip=16 count=1 2>/dev/null | dd bs=1 skip=40 count=16 2>/dev/null; echo`;

/** Reads the label of /dev/`dev` until it is `want` (the first read after a media change gets the
 *  drive's "medium changed" unit attention and returns nothing). */
async function guestLabelBecomes(s: SerialConsole, want: RegExp, dev = 'sr0'): Promise<string> {
  let last = '';
  for (let i = 0; i < 10; i++) {
    last = (await s.run(readLabel(dev))).trim();
    if (want.test(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the guest's CD never read as ${want}; last read: ${JSON.stringify(last)}`);
}

describe('disks and CD drives of a running VM', () => {
  it('a CD ejected and another inserted while running is what the guest reads, drive by drive; a disk grown online is the size the guest sees; an NVMe disk is the guest\'s nvme0n1', async () => {
    const g = testGuest();
    const alpha = makeIso('ALPHA');
    const beta = makeIso('BETA');
    const gamma = makeIso('GAMMA');
    const drivers = makeIso('DRIVERS');
    const created = await cli(['create', 'hw', '--accel', 'tcg', '--memory', '256M', '--disk-size', '64M', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, '--net', 'none', '--display', 'none', '--json']);
    expect(created.stderr).toBe('');
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    // Stopped: the CD goes into the config.
    const stopped = await json<Drive[]>(['cd', 'insert', 'hw', alpha]);
    expect(stopped.find((d) => d.kind === 'cdrom')).toMatchObject({ id: 'cd0', path: alpha, format: 'raw', readOnly: true });
    // A second drive with the driver ISO, and a data disk on NVMe.
    const two = await json<Drive[]>(['disk', 'add', 'hw', '--cdrom', '--file', drivers]);
    expect(two.filter((d) => d.kind === 'cdrom').map((d) => [d.id, d.path])).toEqual([
      ['cd0', alpha],
      ['cd1', drivers],
    ]);
    const withNvme = await json<Drive[]>(['disk', 'add', 'hw', '--size', '32M', '--bus', 'nvme']);
    expect(withNvme.find((d) => d.id === 'disk1')).toMatchObject({ kind: 'disk', bus: 'nvme', virtualSizeBytes: 32 * 1024 * 1024 });
    const cfgFile = path.join(t.home, 'vms', id, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, machine: 'pc' }, null, 2));

    const start = await cli(['start', 'hw', '--wait-serial', g.readyMarker, '--timeout', '120'], 150_000);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    const sock = (await json<{ argv: string[] }>(['show', 'hw'])).argv.map((a) => /^socket,id=ser0,path=([^,]+)/.exec(a)?.[1]).find(Boolean)!;
    serial = await SerialConsole.open(sock);

    expect(await guestLabelBecomes(serial, /^ALPHA$/)).toBe('ALPHA');
    expect(await guestLabelBecomes(serial, /^DRIVERS$/, 'sr1')).toBe('DRIVERS');
    // The NVMe disk: the guest's nvme0n1, 32 MiB in 512-byte sectors.
    expect((await serial.run('cat /sys/block/nvme0n1/size')).trim()).toBe(String((32 * 1024 * 1024) / 512));

    // The second drive's CD out and another in; the first drive keeps its CD.
    const ejected = await json<Drive[]>(['cd', 'eject', 'hw', '--drive', 'cd1']);
    expect(ejected.filter((d) => d.kind === 'cdrom').map((d) => d.path)).toEqual([alpha, null]);
    expect(await guestLabelBecomes(serial, /No medium found/, 'sr1')).toMatch(/No medium found/);
    expect(await guestLabelBecomes(serial, /^ALPHA$/)).toBe('ALPHA');
    const inserted = await json<Drive[]>(['cd', 'insert', 'hw', gamma, '--drive', 'cd1']);
    expect(inserted.find((d) => d.id === 'cd1')?.path).toBe(gamma);
    expect(await guestLabelBecomes(serial, /^GAMMA$/, 'sr1')).toBe('GAMMA');

    // Without --drive: eject takes the first drive holding a CD, insert the first drive.
    await json<Drive[]>(['cd', 'eject', 'hw']);
    expect(await guestLabelBecomes(serial, /No medium found/)).toMatch(/No medium found/);
    const first = await json<Drive[]>(['cd', 'insert', 'hw', beta]);
    expect(first.filter((d) => d.kind === 'cdrom').map((d) => d.path)).toEqual([beta, gamma]);
    expect(await guestLabelBecomes(serial, /^BETA$/)).toBe('BETA');

    // Saved too: the next start would have BETA and GAMMA.
    expect((JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { cdroms: unknown }).cdroms).toEqual([
      { id: 'cd0', path: beta },
      { id: 'cd1', path: gamma },
    ]);

    // The same checks as create: a missing file, a qcow2 pretending to be an ISO, a drive that does
    // not exist; nothing changes in the guest.
    const fake = path.join(files, 'fake.iso');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', fake, '8M']);
    const notIso = await cli(['cd', 'insert', 'hw', fake, '--drive', 'cd1']);
    expect(notIso.code).not.toBe(0);
    expect(notIso.stderr).toContain(`${fake} is a qcow2 disk image, not a CD/DVD image`);
    const missingIso = await cli(['cd', 'insert', 'hw', path.join(files, 'nope.iso')]);
    expect(missingIso.code).not.toBe(0);
    expect(missingIso.stderr).toContain(`ISO not found: ${path.join(files, 'nope.iso')}`);
    const noDrive = await cli(['cd', 'eject', 'hw', '--drive', 'cd3']);
    expect(noDrive.code).not.toBe(0);
    expect(noDrive.stderr).toContain('"hw" has no CD drive cd3 (its CD drives: cd0, cd1)');
    expect(await guestLabelBecomes(serial, /^GAMMA$/, 'sr1')).toBe('GAMMA');

    // Grow the disk while running: the guest's view of vda (512-byte sectors) follows at once.
    expect((await serial.run('cat /sys/block/vda/size')).trim()).toBe(String((64 * 1024 * 1024) / 512));
    const grown = await json<Drive[]>(['disk', 'resize', 'hw', 'disk0', '--size', '96M']);
    expect(grown.find((d) => d.id === 'disk0')?.virtualSizeBytes).toBe(96 * 1024 * 1024);
    expect((await serial.run('cat /sys/block/vda/size')).trim()).toBe(String((96 * 1024 * 1024) / 512));

    // Shrinking is refused, in words; adding and removing need the VM stopped.
    const shrink = await cli(['disk', 'resize', 'hw', 'disk0', '--size', '32M']);
    expect(shrink.code).not.toBe(0);
    expect(shrink.stderr).toContain('disk0 of "hw" is 96 MiB and disks can only grow');
    const add = await cli(['disk', 'add', 'hw', '--size', '16M']);
    expect(add.code).not.toBe(0);
    expect(add.stderr).toMatch(/"hw" is running; it must be shut down to add a disk/);

    // The NVMe disk cannot grow while the VM runs (QEMU's nvme device does not share `resize`): a
    // sentence with the commands to run, never QEMU's permission text; it grows once shut down.
    const nvme = await cli(['disk', 'resize', 'hw', 'disk1', '--size', '48M']);
    expect(nvme.code).toBe(1);
    expect(nvme.stderr).toContain("An NVMe disk can only grow while the VM is shut down (QEMU's nvme device does not allow resizing a running disk), and disk1 of \"hw\" is on NVMe.");
    expect(nvme.stderr).toContain('Shut it down and run `vivarium stop hw`, then `vivarium disk resize hw disk1 --size 48M`.');
    expect(nvme.stderr).not.toMatch(/Permission conflict|block_resize|unshared/);
    expect((await serial.run('cat /sys/block/nvme0n1/size')).trim()).toBe(String((32 * 1024 * 1024) / 512));

    expect((await cli(['stop', 'hw', '--force'])).code).toBe(0);
    const grownStopped = await json<Drive[]>(['disk', 'resize', 'hw', 'disk1', '--size', '48M']);
    expect(grownStopped.find((d) => d.id === 'disk1')?.virtualSizeBytes).toBe(48 * 1024 * 1024);
  });
});

describe('disks of a stopped VM', () => {
  it('adds a new disk and an existing image, grows one with qemu-img, removes them keeping or deleting only what is the VM\'s', async () => {
    const created = await cli(['create', 'st', '--accel', 'tcg', '--memory', '128M', '--disk-size', '64M', '--net', 'none', '--display', 'none', '--json']);
    expect(created.stderr).toBe('');
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    const bundle = path.join(t.home, 'vms', id);

    // A stray file where the new disk would go (such as one a revert detached) is never overwritten
    // (nor written through, as a link): the new disk takes the next free name.
    const stray = path.join(bundle, 'disk1.qcow2');
    fs.symlinkSync(path.join(files, 'nowhere'), stray);
    const skipped = await json<Drive[]>(['disk', 'add', 'st', '--size', '16M']);
    expect(skipped.map((d) => [d.id, d.path])).toEqual([
      ['disk0', path.join(bundle, 'disk0.qcow2')],
      ['disk2', path.join(bundle, 'disk2.qcow2')],
    ]);
    expect(fs.lstatSync(stray).isSymbolicLink()).toBe(true);
    expect(fs.existsSync(path.join(files, 'nowhere'))).toBe(false);
    await json<Drive[]>(['disk', 'remove', 'st', 'disk2', '--delete-file']);
    fs.rmSync(stray);

    const mine = path.join(files, 'data.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', mine, '8M']);
    let list = await json<Drive[]>(['disk', 'add', 'st', '--size', '16M']);
    list = await json<Drive[]>(['disk', 'add', 'st', '--file', mine]);
    expect(list.map((d) => [d.id, d.kind, d.format, d.virtualSizeBytes])).toEqual([
      ['disk0', 'disk', 'qcow2', 64 * 1024 * 1024],
      ['disk1', 'disk', 'qcow2', 16 * 1024 * 1024],
      ['disk2', 'disk', 'raw', 8 * 1024 * 1024],
    ]);
    expect(list[1]!.path).toBe(path.join(bundle, 'disk1.qcow2'));

    // The QEMU command line has all three, each with its format given.
    const argv = (await json<{ argv: string[] }>(['show', 'st'])).argv.join(' ');
    expect(argv).toContain(`filename=${mine}`);
    expect(argv).toMatch(/driver=raw,file=disk2-file/);

    // An overlay (it names a backing file) is refused, as at create.
    const overlay = path.join(files, 'overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', mine, '-F', 'raw', overlay]);
    const refused = await cli(['disk', 'add', 'st', '--file', overlay]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${overlay} is an overlay on ${mine}`);

    list = await json<Drive[]>(['disk', 'resize', 'st', 'disk2', '--size', '24M']);
    expect(list.find((d) => d.id === 'disk2')?.virtualSizeBytes).toBe(24 * 1024 * 1024);
    expect(fs.statSync(mine).size).toBe(24 * 1024 * 1024);

    // A file outside the VM's folder is never deleted by Vivarium.
    const outside = await cli(['disk', 'remove', 'st', 'disk2', '--delete-file']);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toContain('is outside the VM\'s folder');
    list = await json<Drive[]>(['disk', 'remove', 'st', 'disk2']);
    expect(list.map((d) => d.id)).toEqual(['disk0', 'disk1']);
    expect(fs.existsSync(mine)).toBe(true);

    list = await json<Drive[]>(['disk', 'remove', 'st', 'disk1', '--delete-file']);
    expect(list.map((d) => d.id)).toEqual(['disk0']);
    expect(fs.existsSync(path.join(bundle, 'disk1.qcow2'))).toBe(false);

    const missing = await cli(['disk', 'resize', 'st', 'disk7', '--size', '1G']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('"st" has no disk disk7 (its disks: disk0)');

    // SATA and NVMe disks (for installers without virtio drivers) and an empty CD drive, on the
    // command line as QEMU gets it: the CD on the first AHCI port, the SATA disk on the next.
    await json<Drive[]>(['disk', 'add', 'st', '--size', '16M', '--bus', 'sata']);
    await json<Drive[]>(['disk', 'add', 'st', '--size', '16M', '--bus', 'nvme']);
    list = await json<Drive[]>(['disk', 'add', 'st', '--cdrom']);
    expect(list.map((d) => [d.id, d.kind, d.bus, d.path === null])).toEqual([
      ['disk0', 'disk', 'virtio', false],
      ['disk1', 'disk', 'sata', false],
      ['disk2', 'disk', 'nvme', false],
      ['cd0', 'cdrom', 'sata', true],
    ]);
    const devices = (await json<{ argv: string[] }>(['show', 'st'])).argv;
    expect(devices).toEqual(expect.arrayContaining(['ide-cd,id=cd0,bus=ide.0,bootindex=4', 'ide-hd,id=sda,bus=ide.1,drive=disk1,bootindex=2', 'nvme,id=nvme0,serial=disk2,drive=disk2,bootindex=3']));
    // Six AHCI ports: the CD and five SATA disks fit, a sixth SATA disk does not (and leaves no file).
    for (let i = 0; i < 4; i++) await json<Drive[]>(['disk', 'add', 'st', '--size', '1M', '--bus', 'sata']);
    const full = await cli(['disk', 'add', 'st', '--size', '1M', '--bus', 'sata']);
    expect(full.code).not.toBe(0);
    expect(full.stderr).toContain('SATA disks and CD drives share 6 SATA ports, and this VM would need 7');
    expect(fs.existsSync(path.join(bundle, 'disk7.qcow2'))).toBe(false);
    list = await json<Drive[]>(['disk', 'remove', 'st', 'cd0']);
    expect(list.some((d) => d.kind === 'cdrom')).toBe(false);

    // The system disk (the one it boots from) is not removed without --force (as virt-manager and
    // UTM warn); with --force it goes, its file kept.
    const system = await cli(['disk', 'remove', 'st', 'disk0']);
    expect(system.code).toBe(1);
    expect(system.stderr).toBe(
      'vivarium: disk0 is the system disk of "st", the disk it boots from: without it the VM has nothing to start. Nothing was removed. To remove it anyway: `vivarium disk remove st disk0 --force` (its file is kept).\n',
    );
    expect((await json<Drive[]>(['disk', 'list', 'st'])).map((d) => d.id)).toContain('disk0');
    list = await json<Drive[]>(['disk', 'remove', 'st', 'disk0', '--force']);
    expect(list.map((d) => d.id)).not.toContain('disk0');
    expect(fs.existsSync(path.join(bundle, 'disk0.qcow2'))).toBe(true);
  });
});
