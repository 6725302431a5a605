/**
 * Boot order against real QEMU (TCG) with SeaBIOS and with OVMF (UEFI), through the real `vivarium`
 * command (run `npm run build:main` first): a VM with a blank disk and an installer ISO boots the
 * ISO; once the disk holds a bootable system it boots the disk, with the ISO still inserted and no
 * edit in between.
 *
 * Which device the firmware booted is read from QEMU's own block statistics (QMP
 * query-blockstats): booting the GRUB rescue image reads some 800 KiB from the device it boots,
 * while the firmware only probes the other (a blank disk's first sector; a few KiB of the CD).
 * The "installed system" is the same GRUB image written onto the VM's disk (it is a hybrid ISO with
 * an MBR boot sector), as an installer would have left it.
 *
 * UEFI: the installer is an ISO made in the test whose El Torito EFI boot image is a FAT file system
 * holding \EFI\BOOT\BOOTX64.EFI (the test guest's kernel: an EFI application through its EFI stub,
 * about 7 MiB that OVMF reads from the device it boots); the "installed system" is that FAT file
 * system written onto the VM's disk. The UEFI VM's disk is on SATA (the Windows preset's bus), so
 * this also shows OVMF finds and boots a SATA disk by its bootindex.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCliJson } from '../../test-support/cli';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { QmpClient } from '../qemu/qmp';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
});

const cli = (args: string[], timeoutMs?: number) => runCli(args, { env: t.env, timeoutMs });

/** Bytes read so far, per device: `disk0` (virtio-blk vda, or SATA sda) and `cd0`. */
async function bytesRead(qmpSocket: string): Promise<{ disk: number; cd: number }> {
  const qmp = await QmpClient.connect(qmpSocket);
  try {
    const stats = await qmp.execute<{ qdev?: string; device?: string; stats: { rd_bytes: number } }[]>('query-blockstats');
    const of = (re: RegExp) => stats.filter((s) => re.test(s.qdev ?? '') || re.test(s.device ?? '')).reduce((n, s) => n + s.stats.rd_bytes, 0);
    return { disk: of(/\b(vda|sda)\b|virtio-backend/), cd: of(/\bcd0$/) };
  } finally {
    qmp.close();
  }
}

/** Starts the VM and waits until one device has been read past `threshold` bytes: the one booted. */
async function bootedFrom(name: string, threshold = 512 * 1024, timeoutMs = 90_000): Promise<{ disk: number; cd: number }> {
  const start = await cli(['start', name], 60_000);
  expect(start.stderr).toBe('');
  expect(start.code).toBe(0);
  const argv = (await runCliJson<{ argv: string[] }>(['show', name, '--json'], { env: t.env })).argv;
  const qmpSocket = argv.map((a) => /^socket,id=qmp,path=([^,]+)/.exec(a)?.[1]).find(Boolean)!;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await bytesRead(qmpSocket);
    if (r.disk > threshold || r.cd > threshold || Date.now() > deadline) {
      // A little longer, so a device read only after the other one failed would show.
      await new Promise((res) => setTimeout(res, 2000));
      const final = await bytesRead(qmpSocket);
      expect((await cli(['stop', name, '--force'])).code).toBe(0);
      return final;
    }
    await new Promise((res) => setTimeout(res, 500));
  }
}

describe('boot order that does the right thing', () => {
  it('a blank disk falls through to the installer ISO; an installed disk boots first with the ISO still inserted', async () => {
    const iso = testGuest().grubRescueIso;
    if (!iso) throw new Error('grub-rescue-pc is not installed (the boot test needs /usr/lib/grub-rescue/grub-rescue-cdrom.iso): apt-get install grub-rescue-pc');
    const created = await cli(['create', 'inst', '--accel', 'tcg', '--memory', '256M', '--disk-size', '64M', '--iso', iso, '--net', 'none', '--display', 'none', '--json'], 60_000);
    expect(created.stderr).toBe('');
    const id = (JSON.parse(created.stdout) as { id: string }).id;

    const first = await bootedFrom('inst');
    expect(first.cd).toBeGreaterThan(512 * 1024);
    expect(first.disk).toBeLessThan(64 * 1024);

    // "Install": the system lands on the VM's own disk. Nothing about the VM is edited.
    const disk = path.join(t.home, 'vms', id, 'disk0.qcow2');
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', iso, disk]);
    execFileSync('qemu-img', ['resize', '-q', '-f', 'qcow2', disk, '64M']);
    const drives = await runCliJson<{ kind: string; path: string | null }[]>(['disk', 'list', 'inst', '--json'], { env: t.env });
    expect(drives.find((d) => d.kind === 'cdrom')?.path).toBe(iso);

    const second = await bootedFrom('inst');
    expect(second.disk).toBeGreaterThan(512 * 1024);
    expect(second.cd).toBeLessThan(64 * 1024);
  });

  it('UEFI (OVMF): a blank SATA disk falls through to the EFI installer ISO; once the disk holds an EFI system it boots first with the ISO still inserted', async () => {
    const g = testGuest();
    if (!g.ovmfCode) throw new Error('OVMF is not installed (the UEFI boot test needs it): apt-get install ovmf');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-efi-'));
    try {
      // The EFI system partition: FAT with \EFI\BOOT\BOOTX64.EFI (the removable-media boot path).
      const esp = path.join(dir, 'esp.img');
      execFileSync('mkfs.vfat', ['-C', esp, String(Math.ceil(fs.statSync(g.kernel).size / 1024) + 2048)], { stdio: 'ignore' });
      execFileSync('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT']);
      execFileSync('mcopy', ['-i', esp, g.kernel, '::/EFI/BOOT/BOOTX64.EFI']);
      const root = path.join(dir, 'root');
      fs.mkdirSync(root);
      fs.copyFileSync(esp, path.join(root, 'efiboot.img'));
      const iso = path.join(dir, 'installer.iso');
      execFileSync('genisoimage', ['-quiet', '-V', 'INSTALLER', '-e', 'efiboot.img', '-no-emul-boot', '-o', iso, root]);

      const created = await cli(['create', 'uefi', '--accel', 'tcg', '--firmware', 'uefi', '--memory', '256M', '--disk-size', '64M', '--disk-bus', 'sata', '--iso', iso, '--net', 'none', '--display', 'none', '--json'], 60_000);
      expect(created.stderr).toBe('');
      const id = (JSON.parse(created.stdout) as { id: string }).id;
      const drives = await runCliJson<{ id: string; kind: string; bus: string; path: string | null }[]>(['disk', 'list', 'uefi', '--json'], { env: t.env });
      expect(drives.map((d) => [d.id, d.bus])).toEqual([
        ['disk0', 'sata'],
        ['cd0', 'sata'],
      ]);

      const first = await bootedFrom('uefi', 2 * 1024 * 1024, 180_000);
      expect(first.cd).toBeGreaterThan(2 * 1024 * 1024);
      expect(first.disk).toBeLessThan(256 * 1024);

      // "Install": the EFI system partition lands on the VM's disk. Nothing about the VM is edited,
      // and the UEFI variables keep what the first boot left in them (OVMF's boot entries).
      const disk = path.join(t.home, 'vms', id, 'disk0.qcow2');
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', esp, disk]);
      execFileSync('qemu-img', ['resize', '-q', '-f', 'qcow2', disk, '64M']);

      const second = await bootedFrom('uefi', 2 * 1024 * 1024, 180_000);
      expect(second.disk).toBeGreaterThan(2 * 1024 * 1024);
      expect(second.cd).toBeLessThan(256 * 1024);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
