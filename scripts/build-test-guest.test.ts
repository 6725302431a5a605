import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestGuest,
  compareVersions,
  cpioNewc,
  initramfsEntries,
  isStaticElf,
  modinfoDepends,
  moduleName,
  parseModulesBuiltin,
  parseModulesDep,
  resolveModules,
} from './build-test-guest.mjs';
import { qemuProcessesUnder } from '../main/test-support/qemu-procs';

const SCRIPT = path.join(__dirname, 'build-test-guest.mjs');
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));

const tmpDirs: string[] = [];
function tmp(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('cpioNewc', () => {
  it('writes headers, names and data padded to 4 bytes and ends with the trailer', () => {
    const buf = cpioNewc([{ name: 'a', type: 'file', data: 'xyz' }]);
    expect(buf.toString('ascii', 0, 6)).toBe('070701');
    // 110-byte header + "a\0" = 112 (aligned), then 3 data bytes + 1 pad.
    expect(buf.toString('ascii', 110, 111)).toBe('a');
    expect(buf.toString('ascii', 112, 115)).toBe('xyz');
    expect(buf.toString('ascii', 116, 122)).toBe('070701');
    expect(buf.toString('ascii', 116 + 110, 116 + 120)).toBe('TRAILER!!!');
    expect(buf.length % 4).toBe(0);
  });

  it('rejects names that climb out of the archive', () => {
    expect(() => cpioNewc([{ name: '../etc/passwd', type: 'file', data: '' }])).toThrow(/Bad cpio entry/);
  });

  it.runIf(BUSYBOX)('produces an archive busybox cpio extracts faithfully', () => {
    const dir = tmp('viv-cpio-');
    const payload = Buffer.from(Array.from({ length: 1001 }, (_, i) => i % 251));
    const archive = cpioNewc([
      { name: 'd', type: 'dir' },
      { name: 'd/bin.dat', type: 'file', data: payload, mode: 0o600 },
      { name: 'd/odd-name.txt', type: 'file', data: 'hello\n' },
      { name: 'd/link', type: 'symlink', target: 'odd-name.txt' },
      { name: 'dev-console', type: 'chardev', major: 5, minor: 1 },
    ]);
    const listing = execFileSync(BUSYBOX!, ['cpio', '-t', '-v'], { input: archive, encoding: 'utf8', stdio: 'pipe' });
    expect(listing).toMatch(/^c.* dev-console$/m);
    expect(listing).toMatch(/^l.* d\/link -> odd-name.txt$/m);
    const onlyFiles = cpioNewc([
      { name: 'd', type: 'dir' },
      { name: 'd/bin.dat', type: 'file', data: payload, mode: 0o600 },
      { name: 'd/odd-name.txt', type: 'file', data: 'hello\n' },
      { name: 'd/link', type: 'symlink', target: 'odd-name.txt' },
    ]);
    execFileSync(BUSYBOX!, ['cpio', '-i', '-d'], { input: onlyFiles, cwd: dir, stdio: 'pipe' });
    expect(fs.readFileSync(path.join(dir, 'd/bin.dat')).equals(payload)).toBe(true);
    expect(fs.statSync(path.join(dir, 'd/bin.dat')).mode & 0o777).toBe(0o600);
    expect(fs.readlinkSync(path.join(dir, 'd/link'))).toBe('odd-name.txt');
    expect(fs.readFileSync(path.join(dir, 'd/link'), 'utf8')).toBe('hello\n');
  });
});

describe('module resolution', () => {
  const dep = parseModulesDep(
    [
      'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio_ring.ko:',
      'kernel/drivers/char/hw_random/virtio-rng.ko.xz: kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/net/orphan.ko: kernel/drivers/net/gone.ko',
    ].join('\n'),
  );

  it('normalizes module names like modprobe', () => {
    expect(moduleName('kernel/drivers/char/hw_random/virtio-rng.ko.xz')).toBe('virtio_rng');
    expect(moduleName('a/b/evdev.ko')).toBe('evdev');
  });

  it('orders dependencies first, once each, and skips built-ins', () => {
    const r = resolveModules(['virtio-rng', 'virtio_blk', 'ext4'], dep, parseModulesBuiltin('kernel/fs/ext4/ext4.ko\n'));
    expect(r.load.map((m: { name: string }) => m.name)).toEqual(['virtio_ring', 'virtio', 'virtio_rng', 'virtio_blk']);
    expect(r.builtin).toEqual(['ext4']);
    expect(r.missing).toEqual([]);
  });

  it('reports modules and dependencies the kernel lacks', () => {
    const r = resolveModules(['nope', 'orphan'], dep, new Set());
    expect(r.missing.sort()).toEqual(['gone', 'nope']);
  });

  it('sorts kernel versions numerically', () => {
    expect(['6.1.0-56-cloud-amd64', '6.1.0-9-cloud-amd64', '6.10.0-1-cloud-amd64'].sort(compareVersions)).toEqual([
      '6.1.0-9-cloud-amd64',
      '6.1.0-56-cloud-amd64',
      '6.10.0-1-cloud-amd64',
    ]);
  });

  const installedKernel = fs.existsSync('/lib/modules')
    ? fs.readdirSync('/lib/modules').find((v) => fs.existsSync(`/lib/modules/${v}/modules.dep`))
    : undefined;
  it.runIf(installedKernel)('reads depends= from a real module, as depmod does', () => {
    const mdir = `/lib/modules/${installedKernel}`;
    const line = fs.readFileSync(`${mdir}/modules.dep`, 'utf8').split('\n').find((l) => /\/virtio_blk\.ko[^:]*:/.test(l));
    expect(line).toBeDefined();
    const [file, deps] = line!.split(':');
    const fromDepmod = deps!.trim().split(/\s+/).filter(Boolean).map(moduleName).sort();
    let data = fs.readFileSync(path.join(mdir, file!));
    if (file!.endsWith('.xz')) data = execFileSync('xz', ['-dc', path.join(mdir, file!)]);
    expect([...modinfoDepends(data)!].sort()).toEqual(fromDepmod);
    expect(modinfoDepends(Buffer.from('not an elf'))).toBeNull();
  });
});

describe('isStaticElf', () => {
  it.runIf(BUSYBOX)('accepts the static busybox', () => {
    expect(isStaticElf(fs.readFileSync(BUSYBOX!))).toBe(true);
  });
  it('rejects a dynamic executable and non-ELF data', () => {
    expect(isStaticElf(fs.readFileSync(process.execPath).subarray(0, 4096))).toBe(false);
    expect(isStaticElf(Buffer.from('#!/bin/sh\n'))).toBe(false);
  });
});

describe('initramfsEntries', () => {
  it('has /init, applet links, the ACPI handler and the modules in load order', () => {
    const entries = initramfsEntries({
      busybox: Buffer.from('bb'),
      applets: ['sh', 'busybox', 'init', 'bad name'],
      modules: [
        { name: 'virtio', data: Buffer.from('a') },
        { name: 'virtio_blk', data: Buffer.from('b') },
      ],
    });
    const byName = new Map(entries.map((e: { name: string }) => [e.name, e]));
    expect(byName.get('init')).toMatchObject({ type: 'file', mode: 0o755 });
    expect(byName.get('bin/sh')).toEqual({ name: 'bin/sh', type: 'symlink', target: 'busybox' });
    expect(byName.has('bin/bad name')).toBe(false);
    expect(byName.get('etc/modules')).toMatchObject({ data: 'virtio\nvirtio_blk\n' });
    expect(byName.get('etc/acpi/PWRF/00000080')).toMatchObject({ mode: 0o755 });
    expect(byName.get('dev/console')).toMatchObject({ type: 'chardev', major: 5, minor: 1 });
  });
});

describe('buildTestGuest (real Debian packages)', () => {
  let cache: string;
  let info: Awaited<ReturnType<typeof buildTestGuest>>;
  beforeAll(async () => {
    cache = tmp('viv-guest-');
    info = await buildTestGuest({ cacheDir: cache });
  });

  it('writes the kernel, the initramfs and guest.json', () => {
    expect(info.kernel).toBe(path.join(cache, 'vmlinuz'));
    expect(fs.statSync(info.kernel).size).toBeGreaterThan(1 << 20);
    // gzip magic
    expect(fs.readFileSync(info.initrd).subarray(0, 2).toString('hex')).toBe('1f8b');
    expect(JSON.parse(fs.readFileSync(path.join(cache, 'guest.json'), 'utf8'))).toEqual(info);
    expect(info.modules).toEqual(expect.arrayContaining(['virtio_pci', 'virtio_blk', 'button', 'evdev']));
    expect(info.append).toContain('console=ttyS0');
  });

  it('does nothing the second time', async () => {
    const before = fs.statSync(info.initrd).mtimeMs;
    const started = Date.now();
    const again = await buildTestGuest({ cacheDir: cache });
    expect(again).toEqual(info);
    expect(fs.statSync(info.initrd).mtimeMs).toBe(before);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('lets concurrent builders share one build', async () => {
    const dir = tmp('viv-guest-par-');
    const runOne = () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(process.execPath, [SCRIPT], { env: { ...process.env, VIVARIUM_TEST_CACHE: dir, VIVARIUM_TEST_GUEST_ARM: '0' } });
        let out = '';
        let err = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (err += d));
        c.on('close', (code) => resolve({ code, out, err }));
      });
    const results = await Promise.all([runOne(), runOne(), runOne()]);
    for (const r of results) {
      expect(r.code, r.err).toBe(0);
      expect(r.out.trim()).toBe(path.join(dir, 'guest.json'));
    }
    expect(results.filter((r) => r.err.includes('built ')).length).toBe(1);
    expect(fs.readdirSync(dir).sort()).toEqual(['guest.json', 'initrd.img', 'vmlinuz']);
  });

  describe('the guest, booted under TCG', () => {
    let qemu: ChildProcess | undefined;
    let runDir: string;
    afterEach(() => {
      if (qemu && qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
    });

    it('prints the marker, runs typed commands and powers off on the ACPI button', async () => {
      runDir = fs.mkdtempSync('/tmp/viv-');
      tmpDirs.push(runDir);
      const serialPath = path.join(runDir, 'serial.sock');
      const qmpPath = path.join(runDir, 'qmp.sock');
      const started = Date.now();
      qemu = spawn(
        'qemu-system-x86_64',
        [
          '-accel', 'tcg', '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none',
          // wait=on: the guest starts only once we listen, so no output is lost.
          '-chardev', `socket,id=ser0,path=${serialPath},server=on,wait=on`, '-serial', 'chardev:ser0',
          '-chardev', `socket,id=qmp,path=${qmpPath},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control',
          '-kernel', info.kernel, '-initrd', info.initrd, '-append', info.append,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const exited = new Promise<number | null>((resolve) => qemu!.on('exit', (code) => resolve(code)));
      const serial = await connectWithRetry(serialPath);
      let output = '';
      serial.on('data', (d: Buffer) => (output += d.toString('latin1')));
      const waitFor = async (what: string, timeoutMs: number, from = 0) => {
        const deadline = Date.now() + timeoutMs;
        while (!output.includes(what, from)) {
          if (Date.now() > deadline) throw new Error(`No "${what}" on the serial console; got ${JSON.stringify(output)}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await waitFor(info.readyMarker, 60_000);
      const readyMs = Date.now() - started;
      await waitFor(info.prompt, 10_000, output.indexOf(info.readyMarker));
      const mark = output.length;
      serial.write('echo $((6*7))\n');
      await waitFor('\n42', 10_000, mark);

      expect(qemuProcessesUnder(runDir)).toEqual([qemu.pid]);
      const qmp = await connectWithRetry(qmpPath);
      qmp.write('{"execute":"qmp_capabilities"}\n{"execute":"system_powerdown"}\n');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
      qmp.destroy();
      serial.destroy();
      expect(code).toBe(0);
      expect(qemuProcessesUnder(runDir)).toEqual([]);
      console.log(`test guest ready in ${readyMs} ms`);
    });
  });
});

async function connectWithRetry(socketPath: string): Promise<net.Socket> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(socketPath);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
