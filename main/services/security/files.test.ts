/**
 * Issue 8, items 1, 4 and 6 at the level of the file primitives every writer uses (paths.ts) and
 * the bundle store: private modes whatever the umask, links never followed, a full disk said
 * plainly and nothing left behind, a shared runtime folder refused.
 *
 * Some cases need root (a tmpfs mount for a real full disk, useradd for a real second user); they
 * say so in their names and are skipped, visibly, when the tests do not run as root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, VivariumError } from '../../common/errors';
import { createRpcClient } from '../../common/rpc/client';
import { createConnectionPair } from '../../common/rpc/memory-connection';
import { RpcServer } from '../../common/rpc/server';
import { createEngine } from '../engine';
import { runCli } from '../../test-support/cli';
import { BundleStore } from '../bundles/bundle-store';
import {
  appendFileNoFollow,
  appendFileNoFollowAsync,
  assertNotLink,
  ensurePrivateDir,
  Layout,
  makeLibraryPrivate,
  mkdirPrivate,
  readFileNoFollow,
  readFileNoFollowAsync,
  tightenLibrary,
  writeFileAtomic,
  writeFileAtomicAsync,
} from '../paths';

const IS_ROOT = process.getuid?.() === 0;
const ID = '0c1f3a52-6d2e-4b8a-9f10-2a3b4c5d6e7f';

let dir: string;
let oldMask: number;

beforeEach(() => {
  oldMask = process.umask(0o022); // a default Debian umask: what users have
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-sec-'));
});

afterEach(() => {
  process.umask(oldMask);
  fs.rmSync(dir, { recursive: true, force: true });
});

const mode = (p: string): number => fs.lstatSync(p).mode & 0o7777;

function minimalConfig(id = ID, name = 'alpha'): string {
  return `${JSON.stringify({ version: 1, id, name }, null, 2)}\n`;
}

describe('private files whatever the umask (umask 022 here)', () => {
  it('writeFileAtomic creates 0600 files, sync and async, and keeps an explicit mode exact', async () => {
    const a = path.join(dir, 'a.json');
    writeFileAtomic(a, '{}');
    expect(mode(a)).toBe(0o600);
    const b = path.join(dir, 'b.json');
    await writeFileAtomicAsync(b, '{}');
    expect(mode(b)).toBe(0o600);
    // Rewriting a file that an older version left 0644 makes it private.
    fs.writeFileSync(a, 'old', { mode: 0o644 });
    fs.chmodSync(a, 0o644);
    writeFileAtomic(a, 'new');
    expect(mode(a)).toBe(0o600);
    expect(fs.readFileSync(a, 'utf8')).toBe('new');
  });

  it('appendFileNoFollow and mkdirPrivate create owner-only entries', async () => {
    const log = path.join(dir, 'vivarium.log');
    appendFileNoFollow(log, 'one\n');
    await appendFileNoFollowAsync(log, 'two\n');
    expect(mode(log)).toBe(0o600);
    expect(fs.readFileSync(log, 'utf8')).toBe('one\ntwo\n');
    const d = path.join(dir, 'lib', 'vms');
    mkdirPrivate(d);
    expect(mode(d)).toBe(0o700);
    // An existing loose folder of ours is tightened, and says so.
    const loose = path.join(dir, 'loose');
    fs.mkdirSync(loose, { mode: 0o755 });
    expect(mkdirPrivate(loose)).toBe(true);
    expect(mode(loose)).toBe(0o700);
  });

  it('the engine umask makes files other programs create (a spawned shell here) private too', async () => {
    const home = path.join(dir, 'home');
    const lines: string[] = [];
    await makeLibraryPrivate(home, (l) => lines.push(l));
    try {
      const out = path.join(dir, 'child-made');
      execFileSync('/bin/sh', ['-c', `echo hi > "${out}"; mkdir "${out}.d"`]);
      expect(mode(out)).toBe(0o600);
      expect(mode(`${out}.d`)).toBe(0o700);
    } finally {
      process.umask(0o022);
    }
    expect(lines).toEqual([]); // nothing existed, nothing to tell
  });

  it('an existing loose library is tightened on first use, links are left alone, and the user is told', async () => {
    const home = path.join(dir, 'home');
    const bundle = path.join(home, 'vms', ID);
    fs.mkdirSync(bundle, { recursive: true, mode: 0o755 });
    for (const f of ['config.json', 'serial.log', 'disk0.qcow2']) fs.writeFileSync(path.join(bundle, f), 'x', { mode: 0o644 });
    fs.chmodSync(home, 0o755);
    const outside = path.join(dir, 'outside.txt');
    fs.writeFileSync(outside, 'not ours to change', { mode: 0o644 });
    fs.symlinkSync(outside, path.join(bundle, 'planted-link'));

    const lines: string[] = [];
    await makeLibraryPrivate(home, (l) => lines.push(l));
    process.umask(0o022);
    for (const p of [home, path.join(home, 'vms'), bundle]) expect(mode(p)).toBe(0o700);
    for (const f of ['config.json', 'serial.log', 'disk0.qcow2']) expect(mode(path.join(bundle, f))).toBe(0o600);
    expect(mode(outside)).toBe(0o644); // the link was not followed
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^made 6 files and folders in the library .* private \(owner only\): other users on this machine could read them before\.$/);
    // Second start: nothing left to do, nothing said.
    expect((await tightenLibrary(home)).tightened).toEqual([]);
  });

  it('a CLI command (its own engine) tightens a loose library before it exits and says so on stderr', async () => {
    const home = path.join(dir, 'cli-home');
    const bundle = path.join(home, 'vms', ID);
    fs.mkdirSync(bundle, { recursive: true, mode: 0o755 });
    fs.chmodSync(home, 0o755);
    fs.writeFileSync(path.join(bundle, 'config.json'), minimalConfig(), { mode: 0o644 });
    const r = await runCli(['list', '--json'], { env: { ...process.env, VIVARIUM_HOME: home, VIVARIUM_RUNTIME_DIR: path.join(dir, 'rt'), VIVARIUM_NO_ENGINE: '1' } });
    expect(r.stderr).toContain(`vivarium: made 4 files and folders in the library ${home} private (owner only)`);
    expect(mode(home)).toBe(0o700);
    expect(mode(path.join(bundle, 'config.json'))).toBe(0o600);
  });

  it('changes only Vivarium\'s own entries when VIVARIUM_HOME is a folder with other things in it', async () => {
    const home = path.join(dir, 'someones-folder');
    fs.mkdirSync(path.join(home, 'public'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(home, 'public', 'index.html'), 'shared on purpose', { mode: 0o644 });
    fs.writeFileSync(path.join(home, 'notes.txt'), 'x', { mode: 0o644 });
    fs.mkdirSync(path.join(home, 'vms', ID), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(home, 'vms', ID, 'config.json'), '{}', { mode: 0o644 });
    await tightenLibrary(home);
    expect(mode(path.join(home, 'public'))).toBe(0o755);
    expect(mode(path.join(home, 'public', 'index.html'))).toBe(0o644);
    expect(mode(path.join(home, 'notes.txt'))).toBe(0o644);
    expect(mode(path.join(home, 'vms', ID, 'config.json'))).toBe(0o600);
    expect(mode(path.join(home, 'vms'))).toBe(0o700);
  });
});

describe('links inside the library are never followed', () => {
  it('a linked vivarium.log is refused and the link target is not appended to', async () => {
    const target = path.join(dir, 'bashrc');
    fs.writeFileSync(target, 'precious\n');
    const log = path.join(dir, 'vivarium.log');
    fs.symlinkSync(target, log);
    const e = (() => {
      try {
        appendFileNoFollow(log, 'evil\n');
        return null;
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(VivariumError);
    expect((e as VivariumError).message).toBe(
      'vivarium.log is a symbolic link; Vivarium does not follow links in a VM folder. Replace it with a real file (or remove it) and try again.',
    );
    await expect(appendFileNoFollowAsync(log, 'evil\n')).rejects.toThrow(/is a symbolic link/);
    expect(fs.readFileSync(target, 'utf8')).toBe('precious\n');
  });

  it('a FIFO in place of a log or config is refused without blocking', async () => {
    const fifo = path.join(dir, 'serial.log');
    execFileSync('mkfifo', [fifo]);
    expect(() => appendFileNoFollow(fifo, 'x')).toThrow(/not a regular file|ENXIO/);
    expect(() => readFileNoFollow(fifo)).toThrow(/not a regular file/);
  });

  it('a linked config.json reads as broken without any of the target in the message', async () => {
    const secret = path.join(dir, 'secret');
    fs.writeFileSync(secret, 'TOP-SECRET-CONTENT {"name":"leak"}');
    const cfg = path.join(dir, 'config.json');
    fs.symlinkSync(secret, cfg);
    expect(() => readFileNoFollow(cfg)).toThrow('config.json is a symbolic link; Vivarium does not follow links in a VM folder.');
    await expect(readFileNoFollowAsync(cfg)).rejects.toThrow(/symbolic link/);
    expect(() => assertNotLink(cfg)).toThrow(/symbolic link/);
    expect(() => assertNotLink(path.join(dir, 'missing'))).not.toThrow();

    // Through the bundle store: the VM is listed as broken, with that sentence and no content.
    const home = path.join(dir, 'lib');
    const layout = new Layout(home, path.join(dir, 'rt'));
    fs.mkdirSync(layout.bundle(ID).dir, { recursive: true });
    fs.symlinkSync(secret, layout.bundle(ID).config);
    const [entry] = new BundleStore(layout).list();
    expect(entry?.ok).toBe(false);
    const error = entry && !entry.ok ? entry.error : '';
    expect(error).toMatch(/^config\.json is a symbolic link; Vivarium does not follow links in a VM folder\./);
    expect(error).not.toMatch(/TOP-SECRET|leak/);
    expect(entry && !entry.ok ? entry.name : 'x').toBeNull();
  });

  it('a bundle folder that is itself a link shows as broken and is never read or written through', () => {
    const home = path.join(dir, 'lib');
    const layout = new Layout(home, path.join(dir, 'rt'));
    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'config.json'), minimalConfig());
    fs.mkdirSync(layout.bundlesDir, { recursive: true });
    fs.symlinkSync(elsewhere, layout.bundle(ID).dir);
    const store = new BundleStore(layout);
    const [entry] = store.list();
    expect(entry?.ok).toBe(false);
    expect(entry && !entry.ok ? entry.error : '').toMatch(/This VM folder is a symbolic link; Vivarium does not follow links/);
    expect(entry && !entry.ok ? entry.name : 'x').toBeNull();
  });

  it('an oversized config.json is not read into memory', () => {
    const cfg = path.join(dir, 'config.json');
    fs.writeFileSync(cfg, '');
    fs.truncateSync(cfg, 64 * 1024 * 1024); // sparse: costs nothing on disk
    expect(() => readFileNoFollow(cfg)).toThrow(/config\.json is 64 MB, far larger than Vivarium ever writes/);
  });
});

describe('the runtime folder', () => {
  it('refuses a shared (1777) VIVARIUM_RUNTIME_DIR instead of chmod-ing it', () => {
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    const layout = Layout.fromEnv({ VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: shared });
    expect(() => layout.ensureRuntimeDir(layout.runtimeRoot)).toThrow(
      /shared\/? is a shared folder \(mode 1777: others may create files in it\), so it is not safe for Vivarium's sockets\. Set VIVARIUM_RUNTIME_DIR to a new, empty folder of your own/,
    );
    expect(mode(shared)).toBe(0o1777);
    expect(fs.readdirSync(shared)).toEqual([]);
  });

  it.skipIf(!IS_ROOT)('refuses /tmp itself as root and leaves its mode alone (needs root: skipped otherwise)', () => {
    const before = mode('/tmp');
    // Refused by name even if /tmp had lost its sticky bit (as a mis-set machine may have).
    const layout = Layout.fromEnv({ VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: '/tmp' });
    expect(() => ensurePrivateDir(layout.runtimeRoot, layout.runtimeBase)).toThrow(/\/tmp is a shared folder/);
    expect(mode('/tmp')).toBe(before);
  });

  it('never narrows a folder of ours given as VIVARIUM_RUNTIME_DIR: its own folder below it is 0700', () => {
    const mine = path.join(dir, 'mine');
    fs.mkdirSync(mine, { mode: 0o755 });
    fs.chmodSync(mine, 0o755);
    const layout = Layout.fromEnv({ VIVARIUM_HOME: path.join(dir, 'lib'), VIVARIUM_RUNTIME_DIR: mine });
    layout.ensureRuntimeDir(layout.runtimeRoot);
    expect(mode(mine)).toBe(0o755);
    expect(mode(layout.runtimeRoot)).toBe(0o700);
  });
});

describe.skipIf(!IS_ROOT)('a real full disk (tmpfs; needs root to mount: skipped otherwise)', () => {
  let mnt: string;
  beforeEach(() => {
    mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
  });
  afterEach(() => {
    execFileSync('umount', [mnt]);
  });

  it('writeFileAtomic says the disk is full, how much is needed, and leaves no temp file', async () => {
    const file = path.join(mnt, 'config.json');
    const big = Buffer.alloc(3 * 1024 * 1024, 1);
    for (const write of [async () => writeFileAtomic(file, big), () => writeFileAtomicAsync(file, big)]) {
      const e: unknown = await write().catch((err: unknown) => err);
      expect(e).toBeInstanceOf(VivariumError);
      expect((e as VivariumError).code).toBe(ErrorCode.DiskFull);
      expect((e as VivariumError).message).toMatch(/^Could not write config\.json: the disk holding your library is full; 3 MB needed \(\d+ MB free\)\. Free some space and try again\.$/);
      expect(fs.readdirSync(mnt)).toEqual([]);
    }
    // The old content survives a failed rewrite.
    writeFileAtomic(file, 'old');
    await writeFileAtomicAsync(file, big).catch(() => {});
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(fs.readdirSync(mnt)).toEqual(['config.json']);
  });

  it('appends and bundle creates fail with the same sentence, and a failed create leaves no staging folder', async () => {
    fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(1024 * 1024 - 8 * 1024, 1), { flag: 'w' });
    const log = path.join(mnt, 'vivarium.log');
    expect(() => appendFileNoFollow(log, Buffer.alloc(64 * 1024))).toThrow(/the disk holding your library is full; 1 MB needed/);
    fs.rmSync(log, { force: true });
    const layout = new Layout(path.join(mnt, 'lib'), path.join(dir, 'rt'));
    const store = new BundleStore(layout);
    const config = JSON.parse(minimalConfig()) as never;
    const e: unknown = await store
      .create(config, async (staging) => {
        fs.writeFileSync(path.join(staging, 'disk0.qcow2'), Buffer.alloc(2 * 1024 * 1024));
      })
      .catch((err: unknown) => err);
    expect((e as VivariumError).code).toBe(ErrorCode.DiskFull);
    expect(fs.readdirSync(layout.bundlesDir)).toEqual([]);
  });
});

describe.skipIf(!IS_ROOT)('a full library through the engine (tmpfs; needs root to mount: skipped otherwise)', () => {
  let mnt: string;
  beforeEach(() => {
    mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  });
  afterEach(() => {
    execFileSync('umount', [mnt]);
  });

  it('a create says the disk is full (qemu-img and our own writes alike), not "internal error", and leaves nothing behind', async () => {
    const env = { ...process.env, VIVARIUM_HOME: path.join(mnt, 'lib'), VIVARIUM_RUNTIME_DIR: path.join(dir, 'rt') };
    const engine = createEngine({ env });
    const [a, b] = createConnectionPair();
    new RpcServer(engine.services).serve(a);
    const client = createRpcClient(b);
    try {
      await client.services.host.doctor();
      const spec = { accel: 'tcg' as const, memoryMiB: 64, cpus: 1, net: 'none' as const, display: 'none' as const };
      const free = (): number => {
        const st = fs.statfsSync(mnt);
        return st.bavail * st.bsize;
      };
      // Room for a config, not for a qcow2 header and its tables.
      fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(free() - 48 * 1024, 1));
      const e1: unknown = await client.services.vms.create({ name: 'full-disk', diskSizeBytes: 1024 * 1024, ...spec }).catch((err: unknown) => err);
      expect((e1 as VivariumError).code).toBe(ErrorCode.DiskFull);
      expect((e1 as VivariumError).message).toMatch(/^Could not write disk0\.qcow2: the disk holding your library is full \(0 MB free\)\. Free some space and try again\.$/);
      // No room at all: our own config write says the same, with what it needed.
      fs.appendFileSync(path.join(mnt, 'filler'), Buffer.alloc(free(), 1));
      const e2: unknown = await client.services.vms.create({ name: 'full-config', diskSizeBytes: 0, ...spec }).catch((err: unknown) => err);
      expect((e2 as VivariumError).code).toBe(ErrorCode.DiskFull);
      expect((e2 as VivariumError).message).toMatch(/^Could not write config\.json: the disk holding your library is full; 1 MB needed/);
      expect(fs.readdirSync(path.join(mnt, 'lib', 'vms'))).toEqual([]);
      expect(await client.services.vms.list()).toEqual([]);
    } finally {
      client.dispose();
      await engine.dispose();
    }
  });
});

describe.skipIf(!IS_ROOT)('a real second local user (useradd; needs root: skipped otherwise)', () => {
  const user = `vivsec${process.pid}`;
  beforeEach(() => {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
  });
  afterEach(() => {
    spawnSync('userdel', [user]);
  });
  const canRead = (file: string): boolean => spawnSync('runuser', ['-u', user, '--', 'head', '-c', '1', file], { stdio: 'ignore' }).status === 0;

  it('can read a loose library of an older version, and cannot once an engine made it private', async () => {
    // A world-traversable parent, so only the library's own modes decide.
    const parent = path.join(dir, 'pub');
    fs.mkdirSync(parent, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    const home = path.join(parent, 'lib');
    const bundle = path.join(home, 'vms', ID);
    fs.mkdirSync(bundle, { recursive: true, mode: 0o755 });
    const files = ['config.json', 'disk0.qcow2', 'serial.log'].map((f) => path.join(bundle, f));
    for (const f of files) fs.writeFileSync(f, 'guest data', { mode: 0o644 });
    for (const f of files) expect(canRead(f)).toBe(true);

    await makeLibraryPrivate(home, () => {});
    process.umask(0o022);
    for (const f of files) expect(canRead(f)).toBe(false);
    // Even with the folders opened up again by hand, the files themselves stay closed.
    for (const p of [home, path.join(home, 'vms'), bundle]) fs.chmodSync(p, 0o755);
    for (const f of files) expect(canRead(f)).toBe(false);
  });
});
