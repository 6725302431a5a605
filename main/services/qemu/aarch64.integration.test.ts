/**
 * ARM guests for real, under TCG on this x86_64 host (Debian's qemu-system-arm and
 * qemu-efi-aarch64), created and driven through the `vivarium` command like a user would:
 *  - the arm64 Debian kernel with a busybox initramfs boots to a shell on the serial console
 *    (PL011, ttyAMA0), and the shell answers typed commands as an aarch64 machine;
 *  - UEFI (AAVMF) draws a non-blank screen on virtio-gpu, read back with `vivarium screenshot`.
 * On macOS the same configs use HVF (golden command lines: argv.test.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCliJson } from '../../test-support/cli';
import { armTestGuest } from '../../test-support/guest';
import { makeTestHome } from '../../test-support/home';
import type { TestHome } from '../../test-support/home';
import { qemuProcessesUnder } from '../../test-support/qemu-procs';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
});

const cli = (args: string[], timeoutMs = 240_000) => runCli(args, { env: t.env, timeoutMs });

describe('aarch64 guests under TCG', () => {
  it('boots the arm64 kernel + busybox initramfs to a shell on serial (vivarium create --arch aarch64)', async () => {
    const g = armTestGuest();
    const created = await cli([
      'create', 'arm shell', '--arch', 'aarch64', '--accel', 'tcg', '--cpus', '1', '--memory', '256M', '--disk-size', '0',
      '--net', 'none', '--display', 'none', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append,
    ]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);

    const shown = await runCliJson<{ argv: string[] }>(['show', 'arm shell', '--json'], { env: t.env });
    expect(shown.argv[0]).toMatch(/qemu-system-aarch64$/);
    expect(shown.argv.join(' ')).toMatch(/-machine virt,/);

    const start = await cli(['start', 'arm shell', '--wait-serial', g.readyMarker, '--timeout', '200']);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    const vm = (await runCliJson<{ state: string; accel: string; pid: number }[]>(['list', '--json'], { env: t.env }))[0]!;
    expect(vm).toMatchObject({ state: 'running', accel: 'tcg' });
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([vm.pid]);

    const typed = await runCli(['serial', 'arm shell'], { env: t.env, input: 'echo "$(uname -m)-$((6*7))"\n', timeoutMs: 30_000 });
    expect(typed.code).toBe(0);
    expect(typed.stdout).toContain('aarch64-42');

    expect((await cli(['stop', 'arm shell', '--force'])).code).toBe(0);
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  });

  it('boots UEFI (AAVMF) to a non-blank screen on virtio-gpu, read with vivarium screenshot', async () => {
    const g = armTestGuest();
    expect(g.aavmfCode, 'qemu-efi-aarch64 must be installed (see .ci/run)').toBeTruthy();
    const created = await cli(['create', 'arm-uefi', '--arch', 'aarch64', '--firmware', 'uefi', '--accel', 'tcg', '--cpus', '1', '--memory', '512M', '--disk-size', '0', '--net', 'none']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const shown = await runCliJson<{ argv: string[] }>(['show', 'arm-uefi', '--json'], { env: t.env });
    expect(shown.argv).toContain('virtio-gpu-pci,id=video0');
    expect(shown.argv.join(' ')).toContain('AAVMF_CODE');

    expect((await cli(['start', 'arm-uefi'])).code).toBe(0);
    const file = path.join(t.home, 'arm-uefi.png');
    let lit = 0;
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      const shot = await cli(['screenshot', 'arm-uefi', file]);
      expect(shot.stderr).toBe('');
      expect(shot.code).toBe(0);
      lit = litPixelShare(fs.readFileSync(file));
      if (lit > 0.005) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    // The screen the firmware drew (its logo/boot manager text), not a black framebuffer.
    expect(lit).toBeGreaterThan(0.005);
    fs.mkdirSync(path.join(__dirname, '..', '..', '..', 'artifacts'), { recursive: true });
    fs.copyFileSync(file, path.join(__dirname, '..', '..', '..', 'artifacts', 'aarch64-uefi.png'));
    expect((await cli(['stop', 'arm-uefi', '--force'])).code).toBe(0);
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
  });
});

/** Share of pixels that are not black in an 8-bit RGB/RGBA PNG (what QEMU's screendump writes). */
function litPixelShare(png: Buffer): number {
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const bpp = png[25] === 6 ? 4 : 3;
  const idat: Buffer[] = [];
  for (let off = 8; off < png.length; ) {
    const len = png.readUInt32BE(off);
    if (png.toString('latin1', off + 4, off + 8) === 'IDAT') idat.push(png.subarray(off + 8, off + 8 + len));
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
