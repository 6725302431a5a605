#!/usr/bin/env node
// Builds the cloud-init test guest from Debian packages only: debootstrap (Debian 12 "bookworm",
// from the Debian archive) with cloud-init, openssh-server, qemu-guest-agent and the generic kernel
// (linux-image-amd64: it has 9p over virtio, the cloud kernel does not — qemu-notes §6), written
// into an ext4 file system with `mkfs.ext4 -d` (no loop device, no mount) and converted to qcow2.
// The guest boots with QEMU's direct kernel boot (-kernel/-initrd/-append, the kernel and initrd
// taken out of the image's /boot), so no boot loader is installed.
//
// Output: <repo>/.cache/cloud-guest/{disk.qcow2,vmlinuz,initrd.img,guest.json}
// (VIVARIUM_CLOUD_GUEST_CACHE overrides the folder; VIVARIUM_DEBIAN_MIRROR the archive URL).
//
// Cached: guest.json carries the hash of RECIPE (below). Same recipe → nothing is rebuilt, whatever
// else changed; edit RECIPE (or bump its `revision`) to rebuild. Parallel-safe: a lock folder, a
// private build folder, finished files renamed into place, guest.json last.
//
// Needs root (debootstrap, chroot) and the Debian packages debootstrap, e2fsprogs (mkfs.ext4 ≥ 1.43
// for -d) and qemu-utils. Takes minutes: CI runs it once before the tests.
//
// Usage: node scripts/build-cloud-guest.mjs   → prints the guest.json path on stdout, logs on stderr.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(SCRIPT), '..');

export const DEFAULT_CACHE_DIR = path.join(REPO, '.cache', 'cloud-guest');
export const ROOT_LABEL = 'cloudimg-rootfs';
const GUEST_JSON_VERSION = 1;

/**
 * Everything that decides what the image contains. Its hash is the cache key.
 * Debian bookworm's cloud-init pulls python3-cffi-backend only through an alternative debootstrap
 * does not resolve, and wants a locale: both are named here. ifupdown + isc-dhcp-client are what
 * cloud-init's ENI renderer (the one bookworm picks) brings networking up with; udev names the NIC.
 */
export const RECIPE = Object.freeze({
  revision: 1,
  suite: 'bookworm',
  arch: 'amd64',
  variant: 'minbase',
  packages: Object.freeze([
    'systemd-sysv', 'udev', 'dbus', 'kmod', 'iproute2', 'ifupdown', 'isc-dhcp-client', 'netbase',
    'linux-image-amd64', 'initramfs-tools',
    'cloud-init', 'python3-cffi-backend', 'locales',
    'openssh-server', 'sudo', 'qemu-guest-agent',
  ]),
  imageSize: '3G',
  // cloud-init reads only NoCloud (then nothing): no 2-minute wait for cloud metadata services.
  cloudCfg: 'datasource_list: [ NoCloud, None ]\n',
  fstab: `LABEL=${ROOT_LABEL} / ext4 rw,discard,errors=remount-ro 0 1\n`,
  interfaces: 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n',
  append: `root=LABEL=${ROOT_LABEL} ro console=ttyS0 panic=-1`,
});

export class BuildError extends Error {
  name = 'BuildError';
}

/** The cache key: sha256 of the recipe and the mirror-independent parts of the build. */
export function recipeKey(recipe = RECIPE) {
  return createHash('sha256').update(JSON.stringify({ v: GUEST_JSON_VERSION, recipe })).digest('hex');
}

/**
 * The mount points below `root` in /proc/self/mountinfo text (5th field, octal escapes decoded),
 * deepest first: the order to unmount them in.
 * @param {string} mountinfo
 * @param {string} root absolute path
 * @returns {string[]}
 */
export function mountsUnder(mountinfo, root) {
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const out = [];
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const mp = field.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (mp === root || mp.startsWith(prefix)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** `debootstrap` arguments for the recipe. */
export function debootstrapArgs(recipe, target, mirror) {
  return [
    `--variant=${recipe.variant}`,
    `--arch=${recipe.arch}`,
    `--include=${recipe.packages.join(',')}`,
    '--components=main',
    recipe.suite,
    target,
    mirror,
  ];
}

// ───────────────────────────── effects ─────────────────────────────

const log = (msg) => process.stderr.write(`[cloud-guest] ${new Date().toISOString().slice(11, 19)} ${msg}\n`);

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20, ...opts });
  } catch (e) {
    const detail = String(e.stderr || e.stdout || e.message).trim().split('\n').slice(-15).join('\n');
    throw new BuildError(`\`${cmd} ${args.join(' ')}\` failed:\n${detail}`);
  }
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/** Unmounts whatever is mounted below `root` (debootstrap mounts /proc, /sys…; a crash may leave them). */
function unmountAll(root) {
  for (const mp of mountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), root)) {
    const r = spawnSync('umount', [mp]);
    if (r.status !== 0) spawnSync('umount', ['-l', mp]);
  }
  const left = mountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), root);
  if (left.length > 0) throw new BuildError(`Still mounted below ${root}: ${left.join(', ')}. Unmount them, then remove ${root}.`);
}

/** rm -rf that first makes sure nothing is mounted below (never delete the host's /proc or /dev through a chroot). */
function removeTree(dir) {
  if (!fs.existsSync(dir)) return;
  unmountAll(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

function readGuestJson(cacheDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(cacheDir, 'guest.json'), 'utf8'));
  } catch {
    return null;
  }
}

function upToDate(cacheDir, key) {
  const info = readGuestJson(cacheDir);
  if (!info || info.key !== key) return null;
  const files = [info.disk, info.kernel, info.initrd];
  const here = files.every((f) => typeof f === 'string' && path.dirname(f) === cacheDir && fs.existsSync(f));
  return here ? info : null;
}

function build(cacheDir, key) {
  if (process.getuid?.() !== 0) throw new BuildError('Building the cloud guest needs root (debootstrap and chroot). Run it as root.');
  for (const tool of ['debootstrap', 'mkfs.ext4', 'qemu-img', 'chroot']) {
    if (!which(tool)) {
      const pkg = { debootstrap: 'debootstrap', 'mkfs.ext4': 'e2fsprogs', 'qemu-img': 'qemu-utils', chroot: 'coreutils' }[tool];
      throw new BuildError(`${tool} is missing: apt-get install ${pkg}`);
    }
  }
  for (const f of fs.readdirSync(cacheDir)) {
    if (f.startsWith('.build-')) removeTree(path.join(cacheDir, f));
  }
  const t0 = Date.now();
  const work = fs.mkdtempSync(path.join(cacheDir, '.build-'));
  const root = path.join(work, 'root');
  try {
    const mirror = process.env.VIVARIUM_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
    log(`debootstrap ${RECIPE.suite} from ${mirror} (minutes)`);
    const r = spawnSync('debootstrap', debootstrapArgs(RECIPE, root, mirror), {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      maxBuffer: 256 << 20,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' },
    });
    if (r.status !== 0) {
      let detail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-20).join('\n');
      try {
        detail += `\n--- debootstrap.log ---\n${fs.readFileSync(path.join(root, 'debootstrap', 'debootstrap.log'), 'utf8').split('\n').slice(-30).join('\n')}`;
      } catch {
        // no log
      }
      throw new BuildError(`debootstrap failed (exit ${r.status ?? r.signal}):\n${detail}`);
    }
    unmountAll(root);
    log(`debootstrap done in ${((Date.now() - t0) / 1000).toFixed(0)} s; configuring`);

    const w = (rel, data, mode = 0o644) => {
      const p = path.join(root, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, data, { mode });
      fs.chmodSync(p, mode);
    };
    w('etc/fstab', RECIPE.fstab);
    w('etc/hostname', 'debian\n');
    w('etc/network/interfaces', RECIPE.interfaces);
    fs.mkdirSync(path.join(root, 'etc/network/interfaces.d'), { recursive: true });
    w('etc/cloud/cloud.cfg.d/90-vivarium-datasource.cfg', RECIPE.cloudCfg);
    w('etc/default/locale', 'LANG=C.UTF-8\n');
    // Each VM gets its own identity on first boot: no host keys, machine id or cloud-init state
    // baked into the image (cloud-init generates the host keys and prints them on the console).
    for (const f of fs.readdirSync(path.join(root, 'etc/ssh'))) {
      if (f.startsWith('ssh_host_')) fs.rmSync(path.join(root, 'etc/ssh', f));
    }
    w('etc/machine-id', '', 0o444);
    fs.rmSync(path.join(root, 'var/lib/dbus/machine-id'), { force: true });
    fs.rmSync(path.join(root, 'var/lib/cloud'), { recursive: true, force: true });
    for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      for (const f of fs.readdirSync(path.join(root, dir))) {
        const p = path.join(root, dir, f);
        if (fs.statSync(p).isFile()) fs.rmSync(p);
      }
    }

    const versions = Object.fromEntries(
      run('chroot', [root, 'dpkg-query', '-W', '-f=${Package}\t${Version}\n', ...RECIPE.packages.filter((p) => p !== 'systemd-sysv')])
        .trim().split('\n').map((l) => l.split('\t')),
    );
    const kernels = fs.readdirSync(path.join(root, 'boot')).filter((f) => f.startsWith('vmlinuz-')).sort();
    const kernelVersion = kernels.at(-1)?.slice('vmlinuz-'.length);
    if (!kernelVersion || !fs.existsSync(path.join(root, 'boot', `initrd.img-${kernelVersion}`))) {
      throw new BuildError(`No kernel and initrd in ${root}/boot (found: ${kernels.join(', ') || 'nothing'}).`);
    }
    const kernelHas9p = fs.readdirSync(path.join(root, 'lib/modules', kernelVersion, 'kernel/net/9p')).some((f) => f.startsWith('9pnet_virtio'));
    if (!kernelHas9p) throw new BuildError(`Kernel ${kernelVersion} has no 9pnet_virtio module; shared folders could not be tested.`);
    const stagedKernel = path.join(work, 'vmlinuz');
    const stagedInitrd = path.join(work, 'initrd.img');
    fs.copyFileSync(path.join(root, 'boot', `vmlinuz-${kernelVersion}`), stagedKernel);
    fs.copyFileSync(path.join(root, 'boot', `initrd.img-${kernelVersion}`), stagedInitrd);
    fs.chmodSync(stagedKernel, 0o644);
    fs.chmodSync(stagedInitrd, 0o644);

    log('writing the ext4 file system (mkfs.ext4 -d) and converting to qcow2');
    const raw = path.join(work, 'disk.raw');
    run('mkfs.ext4', ['-q', '-F', '-L', ROOT_LABEL, '-d', root, raw, RECIPE.imageSize]);
    const stagedDisk = path.join(work, 'disk.qcow2');
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, stagedDisk]);
    fs.rmSync(raw);

    const info = {
      version: GUEST_JSON_VERSION,
      key,
      disk: path.join(cacheDir, 'disk.qcow2'),
      diskFormat: 'qcow2',
      kernel: path.join(cacheDir, 'vmlinuz'),
      initrd: path.join(cacheDir, 'initrd.img'),
      append: RECIPE.append,
      kernelVersion,
      suite: RECIPE.suite,
      packages: versions,
      buildSeconds: Math.round((Date.now() - t0) / 1000),
      builtAt: new Date().toISOString(),
    };
    const stagedJson = path.join(work, 'guest.json');
    fs.writeFileSync(stagedJson, `${JSON.stringify(info, null, 2)}\n`);
    fs.renameSync(stagedDisk, info.disk);
    fs.renameSync(stagedKernel, info.kernel);
    fs.renameSync(stagedInitrd, info.initrd);
    fs.renameSync(stagedJson, path.join(cacheDir, 'guest.json'));
    log(`built ${RECIPE.suite} with ${kernelVersion}, cloud-init ${versions['cloud-init']} in ${info.buildSeconds} s ` +
      `(${(fs.statSync(info.disk).size / 2 ** 20).toFixed(0)} MiB qcow2)`);
    return info;
  } finally {
    removeTree(work);
  }
}

// ───────────────────────────── the lock ─────────────────────────────

const LOCK_WAIT_MS = 40 * 60_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

async function withLock(lockDir, fn) {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let announced = false; ; ) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'owner'), JSON.stringify({ pid: process.pid, host: os.hostname() }));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let stale = false;
    try {
      const owner = JSON.parse(fs.readFileSync(path.join(lockDir, 'owner'), 'utf8'));
      stale = owner.host === os.hostname() && !pidAlive(owner.pid);
    } catch {
      try {
        stale = Date.now() - fs.statSync(lockDir).mtimeMs > 60_000;
      } catch {
        stale = false;
      }
    }
    if (stale) {
      const grave = `${lockDir}.stale-${process.pid}`;
      try {
        fs.renameSync(lockDir, grave);
        fs.rmSync(grave, { recursive: true, force: true });
      } catch {
        // someone else cleaned up
      }
      continue;
    }
    if (Date.now() > deadline) throw new BuildError(`Timed out waiting for ${lockDir}. Remove it if no build is running.`);
    if (!announced) log('another build is running; waiting for it');
    announced = true;
    await sleep(1000);
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

/**
 * Builds (or reuses) the cloud guest and returns what guest.json says:
 * `{version, key, disk, diskFormat, kernel, initrd, append, kernelVersion, suite, packages, buildSeconds, builtAt}`.
 * @param {{ cacheDir?: string }} [opts]
 */
export async function buildCloudGuest(opts = {}) {
  const cacheDir = path.resolve(opts.cacheDir ?? process.env.VIVARIUM_CLOUD_GUEST_CACHE ?? DEFAULT_CACHE_DIR);
  fs.mkdirSync(cacheDir, { recursive: true });
  const key = recipeKey();
  const ready = upToDate(cacheDir, key);
  if (ready) return ready;
  return withLock(path.join(cacheDir, '.lock'), () => upToDate(cacheDir, key) ?? build(cacheDir, key));
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  buildCloudGuest().then(
    (info) => {
      process.stdout.write(`${path.join(path.dirname(info.disk), 'guest.json')}\n`);
    },
    (e) => {
      process.stderr.write(`[cloud-guest] ERROR: ${e instanceof BuildError ? e.message : e.stack}\n`);
      process.exit(1);
    },
  );
}
