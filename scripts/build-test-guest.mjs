#!/usr/bin/env node
// Builds the tiny Linux test guest from Debian packages: the Debian cloud kernel plus a busybox
// initramfs written here in pure Node (no cpio binary). Also locates, never builds, the ISO and
// firmware guests the tests boot. Output: <repo>/.cache/test-guest/{vmlinuz,initrd.img,guest.json}
// (VIVARIUM_TEST_CACHE overrides the folder).
//
// Idempotent: guest.json carries a key made of the input package versions (and this file's hash);
// when it matches, nothing is rebuilt. Parallel-safe: builders take a lock folder, build into a
// private temp folder and rename finished files into place, guest.json last.
//
// Usage: node scripts/build-test-guest.mjs   → prints the guest.json path on stdout, logs on stderr.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as zlib from 'node:zlib';

const SCRIPT = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(SCRIPT), '..');

export const READY_MARKER = 'VIVARIUM-GUEST-READY';
export const PROMPT = '~ # ';
export const APPEND = 'console=ttyS0 quiet panic=-1';
const GUEST_JSON_VERSION = 1;

/**
 * Modules loaded at boot, in this order (dependencies first, resolved from modules.dep). Whatever
 * the kernel has built in is skipped; whatever it lacks is reported. button + evdev are what the
 * ACPI power button needs: button turns the ACPI event into an input event, evdev exposes it as
 * /dev/input/event* where busybox acpid listens.
 */
export const WANTED_MODULES = Object.freeze([
  'virtio_pci',
  'virtio_blk',
  'virtio_net',
  'virtio_console',
  'virtio_rng',
  'virtio_balloon',
  'virtio_scsi',
  'button',
  'evdev',
  // i440fx IDE (the cloud kernel has no AHCI, so q35's ide-cd stays invisible in this guest),
  // SCSI disks and CD-ROMs, and the filesystems a test may read off an ISO or vvfat drive.
  'ata_piix',
  'sd_mod',
  'sr_mod',
  'isofs',
  'vfat',
]);

export const DEFAULT_CACHE_DIR = path.join(REPO, '.cache', 'test-guest');

const ISO_CANDIDATES = Object.freeze({
  memtestIso: ['/usr/lib/memtest86+/memtest86+x64.iso'],
  grubRescueIso: ['/usr/lib/grub-rescue/grub-rescue-cdrom.iso'],
});
// Code and vars must come from the same build and size, so they are located as pairs.
const OVMF_PAIRS = Object.freeze([
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
]);

class BuildError extends Error {
  name = 'BuildError';
}

// ───────────────────────────── pure helpers (unit-tested) ─────────────────────────────

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/**
 * @typedef {{ name: string, type: 'dir', mode?: number }
 *   | { name: string, type: 'file', mode?: number, data: Uint8Array | string }
 *   | { name: string, type: 'symlink', target: string }
 *   | { name: string, type: 'chardev', mode?: number, major: number, minor: number }} CpioEntry
 */

const hex8 = (n) => n.toString(16).padStart(8, '0');
const pad4 = (n) => (4 - (n % 4)) % 4;

/**
 * An archive in the "newc" cpio format (what the kernel unpacks as an initramfs): per entry a
 * 110-byte ASCII header of 13 hex fields, the NUL-terminated name, the data, each padded to 4 bytes;
 * then the TRAILER!!! entry. Owners are root and mtimes 0 so the output is reproducible.
 * @param {readonly CpioEntry[]} entries
 * @returns {Buffer}
 */
export function cpioNewc(entries) {
  const chunks = [];
  let ino = 1;
  const push = (name, mode, data, rdevMajor = 0, rdevMinor = 0) => {
    const nameBuf = Buffer.from(`${name}\0`);
    const fields = [
      ino++, mode, 0, 0, (mode & 0o170000) === S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdevMajor, rdevMinor,
      nameBuf.length, 0,
    ];
    const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
    chunks.push(header, nameBuf, Buffer.alloc(pad4(header.length + nameBuf.length)));
    chunks.push(data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const name = e.name.replace(/^\/+/, '');
    if (!name || name.split('/').includes('..')) throw new BuildError(`Bad cpio entry name "${e.name}".`);
    switch (e.type) {
      case 'dir':
        push(name, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0));
        break;
      case 'file':
        push(name, S_IFREG | (e.mode ?? 0o644), typeof e.data === 'string' ? Buffer.from(e.data) : Buffer.from(e.data));
        break;
      case 'symlink':
        push(name, S_IFLNK | 0o777, Buffer.from(e.target));
        break;
      case 'chardev':
        push(name, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), e.major, e.minor);
        break;
      default:
        throw new BuildError(`Unknown cpio entry type ${JSON.stringify(e)}.`);
    }
  }
  ino = 0;
  push('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(chunks);
}

/** "kernel/drivers/char/hw_random/virtio-rng.ko.xz" → "virtio_rng" (modprobe treats - and _ alike). */
export function moduleName(relPath) {
  return path.basename(relPath).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/**
 * modules.dep: "kernel/a.ko: kernel/b.ko kernel/c.ko" per line.
 * @returns {Map<string, {path: string, deps: string[]}>} keyed by module name
 */
export function parseModulesDep(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const file = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean).map(moduleName);
    out.set(moduleName(file), { path: file, deps });
  }
  return out;
}

/** modules.builtin: one "kernel/…/x.ko" per line. */
export function parseModulesBuiltin(text) {
  return new Set(text.split('\n').map((l) => l.trim()).filter(Boolean).map(moduleName));
}

/**
 * The modules to load for `wanted`, each after its dependencies, without duplicates.
 * @returns {{ load: {name: string, path: string}[], builtin: string[], missing: string[] }}
 */
export function resolveModules(wanted, dep, builtin) {
  const load = [];
  const seen = new Set();
  const builtinHit = [];
  const missing = [];
  const visit = (name, stack) => {
    if (seen.has(name) || builtin.has(name)) return true;
    const entry = dep.get(name);
    if (!entry) return false;
    if (stack.includes(name)) throw new BuildError(`Module dependency cycle: ${[...stack, name].join(' → ')}.`);
    for (const d of entry.deps) if (!visit(d, [...stack, name])) missing.push(d);
    seen.add(name);
    load.push({ name, path: entry.path });
    return true;
  };
  for (const raw of wanted) {
    const name = raw.replace(/-/g, '_');
    if (builtin.has(name)) builtinHit.push(name);
    else if (!visit(name, [])) missing.push(name);
  }
  return { load, builtin: builtinHit, missing: [...new Set(missing)] };
}

/**
 * The `depends=` list in a kernel module's .modinfo section: what depmod reads to write
 * modules.dep, which a kernel .deb does not ship (depmod runs at install time).
 * @returns {string[] | null} null when `buf` is not a 64-bit little-endian ELF with .modinfo
 */
export function modinfoDepends(buf) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return null;
  const shoff = Number(buf.readBigUInt64LE(40));
  const shentsize = buf.readUInt16LE(58);
  const shnum = buf.readUInt16LE(60);
  const shstrndx = buf.readUInt16LE(62);
  const section = (i) => {
    const off = shoff + i * shentsize;
    if (off + 64 > buf.length) return null;
    return { name: buf.readUInt32LE(off), offset: Number(buf.readBigUInt64LE(off + 24)), size: Number(buf.readBigUInt64LE(off + 32)) };
  };
  const strtab = section(shstrndx);
  if (!strtab) return null;
  for (let i = 0; i < shnum; i++) {
    const sh = section(i);
    if (!sh) return null;
    const nameStart = strtab.offset + sh.name;
    const name = buf.toString('latin1', nameStart, buf.indexOf(0, nameStart));
    if (name !== '.modinfo') continue;
    const fields = buf.toString('latin1', sh.offset, sh.offset + sh.size).split('\0');
    const depends = fields.find((f) => f.startsWith('depends='))?.slice('depends='.length) ?? '';
    return depends.split(',').map((d) => d.trim().replace(/-/g, '_')).filter(Boolean);
  }
  return null;
}

/** True for an ELF executable with no PT_INTERP program header (needs no dynamic loader). */
export function isStaticElf(buf) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return false;
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > buf.length) return false;
    if (buf.readUInt32LE(off) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

/** Orders Debian kernel versions like "6.1.0-9-cloud-amd64" < "6.1.0-56-cloud-amd64". */
export function compareVersions(a, b) {
  return a.localeCompare(b, 'en', { numeric: true });
}

// The guest's own files. /init prepares the machine and hands PID 1 to busybox init, which gives
// us a respawning shell on the console, and working `poweroff`/`reboot` (SIGUSR2/SIGTERM to PID 1).
const INIT = `#!/bin/sh
# Vivarium test guest. Runs as PID 1, then becomes busybox init.
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
# Keep kernel chatter off the console: the tests read it.
echo 1 > /proc/sys/kernel/printk
while read -r m; do
  insmod "/lib/modules/$m.ko" >> /run/modules.log 2>&1 || echo "failed: $m" >> /run/modules.log
done < /etc/modules
hostname vivarium-guest
ip link set lo up
# The ACPI power button (QMP system_powerdown) → /etc/acpi/PWRF/00000080.
acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid
exec /bin/init
`;

const INITTAB = `::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/bin/reboot
::shutdown:/bin/sync
`;

// The marker is printed by the first login shell, just before its first prompt, so a test that
// waits for it can type right away.
const PROFILE = `export PATH=/bin HOME=/root PS1='${PROMPT}'
cd /root
if [ ! -e /run/vivarium-ready ]; then
  : > /run/vivarium-ready
  echo ${READY_MARKER}
fi
`;

// busybox acpid ignores SIGCHLD; /bin/sh restores it. -f: don't go through init's 2-second
// TERM/KILL dance, the test wants the VM gone; sync first in case a disk was written.
const POWER_BUTTON = `#!/bin/sh
sync
poweroff -f
`;

// udhcpc only asks; this script applies the lease (`udhcpc -i eth0` then works on -netdev user).
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
exit 0
`;

/**
 * Every file of the initramfs.
 * @param {{ busybox: Uint8Array, applets: readonly string[], modules: readonly {name: string, data: Uint8Array}[] }} input
 * @returns {CpioEntry[]}
 */
export function initramfsEntries({ busybox, applets, modules }) {
  const dirs = ['bin', 'dev', 'etc', 'etc/acpi', 'etc/acpi/PWRF', 'lib', 'lib/modules', 'proc', 'sys', 'run', 'tmp',
    'root', 'mnt', 'usr', 'etc/udhcpc', 'var'];
  /** @type {CpioEntry[]} */
  const entries = dirs.map((name) => ({ name, type: 'dir', mode: name === 'tmp' ? 0o1777 : name === 'root' ? 0o700 : 0o755 }));
  // The kernel opens /dev/console before /init runs; devtmpfs covers the rest.
  entries.push({ name: 'dev/console', type: 'chardev', major: 5, minor: 1 });
  entries.push({ name: 'dev/null', type: 'chardev', mode: 0o666, major: 1, minor: 3 });
  entries.push({ name: 'bin/busybox', type: 'file', mode: 0o755, data: busybox });
  for (const a of [...new Set(applets)].sort()) {
    if (a !== 'busybox' && /^[a-z0-9_.[-]+$/i.test(a)) entries.push({ name: `bin/${a}`, type: 'symlink', target: 'busybox' });
  }
  // One bin folder for everything; the usual other paths point at it.
  entries.push({ name: 'sbin', type: 'symlink', target: 'bin' });
  entries.push({ name: 'usr/bin', type: 'symlink', target: '../bin' });
  entries.push({ name: 'usr/sbin', type: 'symlink', target: '../bin' });
  entries.push({ name: 'var/run', type: 'symlink', target: '../run' });
  entries.push({ name: 'init', type: 'file', mode: 0o755, data: INIT });
  entries.push({ name: 'etc/inittab', type: 'file', data: INITTAB });
  entries.push({ name: 'etc/profile', type: 'file', data: PROFILE });
  entries.push({ name: 'etc/acpi/PWRF/00000080', type: 'file', mode: 0o755, data: POWER_BUTTON });
  entries.push({ name: 'etc/udhcpc/default.script', type: 'file', mode: 0o755, data: UDHCPC_SCRIPT });
  entries.push({ name: 'etc/passwd', type: 'file', data: 'root:x:0:0:root:/root:/bin/sh\n' });
  entries.push({ name: 'etc/group', type: 'file', data: 'root:x:0:\n' });
  entries.push({ name: 'etc/hostname', type: 'file', data: 'vivarium-guest\n' });
  entries.push({ name: 'etc/modules', type: 'file', data: modules.map((m) => `${m.name}\n`).join('') });
  for (const m of modules) entries.push({ name: `lib/modules/${m.name}.ko`, type: 'file', data: m.data });
  return entries;
}

// ───────────────────────────── effects: locating inputs ─────────────────────────────

const log = (msg) => process.stderr.write(`[test-guest] ${msg}\n`);

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20, ...opts });
}

function tryRun(cmd, args, opts) {
  try {
    return run(cmd, args, opts);
  } catch {
    return null;
  }
}

/** Installed version of a Debian package, or null. */
function dpkgVersion(pkg) {
  const out = tryRun('dpkg-query', ['-W', '-f=${Status}\t${Version}', pkg]);
  if (!out) return null;
  const [status, version] = out.split('\t');
  return status?.endsWith(' installed') ? (version ?? null) : null;
}

/** The version `apt-get download` would fetch, or null. */
function aptCandidate(pkg) {
  const out = tryRun('apt-cache', ['policy', pkg]);
  const m = out?.match(/Candidate:\s*(\S+)/);
  return m && m[1] !== '(none)' ? m[1] : null;
}

function fileId(file) {
  const st = fs.statSync(file);
  return { path: file, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) };
}

function readable(file) {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The cloud kernel to use: an installed one if readable, else the one the linux-image-cloud-amd64
 * meta-package depends on (downloaded at build time).
 * @returns {{ kind: 'installed', version: string, vmlinuz: string, modulesDir: string, pkgVersion: string | null }
 *   | { kind: 'apt', pkg: string, pkgVersion: string, unreadable: string | null }}
 */
function locateKernel(forceApt) {
  const installed = fs.existsSync('/boot')
    ? fs.readdirSync('/boot')
        .map((f) => /^vmlinuz-(.+-cloud-amd64)$/.exec(f)?.[1])
        .filter((v) => v && fs.existsSync(`/lib/modules/${v}/modules.dep`))
        .sort(compareVersions)
    : [];
  const version = installed.at(-1);
  if (version && !forceApt) {
    const vmlinuz = `/boot/vmlinuz-${version}`;
    if (readable(vmlinuz)) {
      return { kind: 'installed', version, vmlinuz, modulesDir: `/lib/modules/${version}`, pkgVersion: dpkgVersion(`linux-image-${version}`) };
    }
  }
  const unreadable = version && !forceApt ? `/boot/vmlinuz-${version}` : null;
  const deps = tryRun('apt-cache', ['depends', 'linux-image-cloud-amd64']) ?? '';
  const pkg = /Depends:\s*(linux-image-\S+-cloud-amd64)\s*$/m.exec(deps)?.[1];
  const pkgVersion = pkg ? aptCandidate(pkg) : null;
  if (!pkg || !pkgVersion) {
    throw new BuildError(
      unreadable
        ? `Cannot read ${unreadable} (Debian may make kernels root-only) and cannot download one with apt. ` +
            `Run as root, \`sudo chmod 0644 ${unreadable}\`, or run \`apt-get update\` so apt-get download works.`
        : 'No Debian cloud kernel found. Install it with `apt-get install linux-image-cloud-amd64` ' +
            '(or run `apt-get update` so the build can download it).',
    );
  }
  return { kind: 'apt', pkg, pkgVersion, unreadable };
}

/** @returns {{ kind: 'installed', path: string, pkgVersion: string | null } | { kind: 'apt', pkg: string, pkgVersion: string }} */
function locateBusybox(forceApt) {
  for (const p of forceApt ? [] : ['/bin/busybox', '/usr/bin/busybox']) {
    if (!readable(p)) continue;
    const fd = fs.openSync(p, 'r');
    try {
      const head = Buffer.alloc(4096);
      fs.readSync(fd, head, 0, head.length, 0);
      // A dynamic busybox (the "busybox" package) would need a libc in the initramfs.
      if (isStaticElf(head)) return { kind: 'installed', path: p, pkgVersion: dpkgVersion('busybox-static') };
    } finally {
      fs.closeSync(fd);
    }
  }
  const pkgVersion = aptCandidate('busybox-static');
  if (!pkgVersion) {
    throw new BuildError('No static busybox found. Install it with `apt-get install busybox-static` (or run `apt-get update`).');
  }
  return { kind: 'apt', pkg: 'busybox-static', pkgVersion };
}

function firstExisting(candidates) {
  return candidates.find((p) => fs.existsSync(p)) ?? null;
}

function locateExtras() {
  const ovmf = OVMF_PAIRS.find(([c, v]) => fs.existsSync(c) && fs.existsSync(v)) ?? [null, null];
  return {
    memtestIso: firstExisting(ISO_CANDIDATES.memtestIso),
    grubRescueIso: firstExisting(ISO_CANDIDATES.grubRescueIso),
    ovmfCode: ovmf[0],
    ovmfVars: ovmf[1],
  };
}

/** Downloads a .deb with apt (no install, no root needed) and unpacks it into `dest`. */
function aptExtract(pkg, workDir, dest) {
  log(`downloading ${pkg} with apt-get download`);
  const dl = path.join(workDir, `dl-${pkg}`);
  fs.mkdirSync(dl, { recursive: true });
  // apt's sandbox user must be able to write here, or apt warns and falls back to root.
  fs.chmodSync(dl, 0o777);
  try {
    run('apt-get', ['download', '-q', pkg], { cwd: dl });
  } catch (e) {
    throw new BuildError(`\`apt-get download ${pkg}\` failed: ${String(e.stderr || e.message).trim()}. Run \`apt-get update\` or install ${pkg}.`);
  }
  const deb = fs.readdirSync(dl).find((f) => f.endsWith('.deb'));
  if (!deb) throw new BuildError(`apt-get download ${pkg} produced no .deb.`);
  fs.mkdirSync(dest, { recursive: true });
  run('dpkg', ['-x', path.join(dl, deb), dest]);
}

function firstIn(root, rels) {
  return rels.map((r) => path.join(root, r)).find((p) => fs.existsSync(p)) ?? null;
}

/** The uncompressed bytes of a module, or null (with the reason) when no decompressor is at hand. */
function readModule(file) {
  const data = fs.readFileSync(file);
  if (file.endsWith('.ko')) return { data };
  if (file.endsWith('.gz')) return { data: zlib.gunzipSync(data) };
  // busybox insmod takes plain ELF only; xz/zstd modules need the host's tools.
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : null;
  if (!tool) return { data: null, reason: `unknown module compression: ${file}` };
  try {
    return { data: execFileSync(tool, ['-dc', file], { maxBuffer: 256 << 20 }) };
  } catch (e) {
    return { data: null, reason: `${tool} -dc ${path.basename(file)} failed (${e.code ?? e.message}); install ${tool === 'xz' ? 'xz-utils' : 'zstd'}` };
  }
}

/** Every module file under `dir`, relative to it. */
function listModuleFiles(dir, rel = '') {
  const out = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listModuleFiles(dir, r));
    else if (/\.ko(\.(xz|zst|gz))?$/.test(e.name)) out.push(r);
  }
  return out;
}

/**
 * The module dependency map: modules.dep when depmod wrote one (an installed kernel), else read
 * lazily from each module's own .modinfo (an unpacked .deb).
 * @returns {{ get(name: string): {path: string, deps: string[]} | undefined }}
 */
function moduleDeps(modulesDir) {
  const depFile = path.join(modulesDir, 'modules.dep');
  if (fs.existsSync(depFile)) return parseModulesDep(fs.readFileSync(depFile, 'utf8'));
  const byName = new Map(listModuleFiles(modulesDir).map((r) => [moduleName(r), r]));
  if (byName.size === 0) throw new BuildError(`No kernel modules under ${modulesDir}; the kernel package looks incomplete.`);
  const cache = new Map();
  return {
    get(name) {
      if (cache.has(name)) return cache.get(name);
      const rel = byName.get(name);
      let entry;
      if (rel) {
        const { data } = readModule(path.join(modulesDir, rel));
        entry = { path: rel, deps: (data && modinfoDepends(data)) ?? [] };
      }
      cache.set(name, entry);
      return entry;
    },
  };
}

// ───────────────────────────── building ─────────────────────────────

function inputsKey(kernel, busybox, extras) {
  const builder = createHash('sha256').update(fs.readFileSync(SCRIPT)).digest('hex').slice(0, 16);
  const k = kernel.kind === 'installed'
    ? { kind: 'installed', version: kernel.version, pkgVersion: kernel.pkgVersion, file: fileId(kernel.vmlinuz) }
    : { kind: 'apt', pkg: kernel.pkg, pkgVersion: kernel.pkgVersion };
  const b = busybox.kind === 'installed'
    ? { kind: 'installed', pkgVersion: busybox.pkgVersion, file: fileId(busybox.path) }
    : { kind: 'apt', pkg: busybox.pkg, pkgVersion: busybox.pkgVersion };
  const json = JSON.stringify({ builder, kernel: k, busybox: b, extras, modules: WANTED_MODULES });
  return createHash('sha256').update(json).digest('hex').slice(0, 24);
}

function readGuestJson(cacheDir) {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(cacheDir, 'guest.json'), 'utf8'));
    return info && typeof info === 'object' ? info : null;
  } catch {
    return null;
  }
}

function upToDate(cacheDir, key) {
  const info = readGuestJson(cacheDir);
  // The paths must be this folder's too: a copied or moved cache would point at the old one.
  const here = info?.kernel === path.join(cacheDir, 'vmlinuz') && info?.initrd === path.join(cacheDir, 'initrd.img');
  return info?.key === key && here && fs.existsSync(info.kernel) && fs.existsSync(info.initrd) ? info : null;
}

function build(cacheDir, key, kernel, busybox, extras) {
  // We hold the lock, so any leftover build folder is from a build that died.
  for (const f of fs.readdirSync(cacheDir)) {
    if (f.startsWith('.build-')) fs.rmSync(path.join(cacheDir, f), { recursive: true, force: true });
  }
  const work = fs.mkdtempSync(path.join(cacheDir, '.build-'));
  try {
    // Kernel + modules.
    let vmlinuz;
    let modulesDir;
    let kernelVersion;
    if (kernel.kind === 'installed') {
      ({ vmlinuz, modulesDir, version: kernelVersion } = kernel);
    } else {
      if (kernel.unreadable) log(`${kernel.unreadable} is not readable; using ${kernel.pkg} from apt instead`);
      const root = path.join(work, 'kernel');
      aptExtract(kernel.pkg, work, root);
      kernelVersion = kernel.pkg.replace(/^linux-image-/, '');
      vmlinuz = firstIn(root, [`boot/vmlinuz-${kernelVersion}`]);
      modulesDir = firstIn(root, [`lib/modules/${kernelVersion}`, `usr/lib/modules/${kernelVersion}`]);
      if (!vmlinuz || !modulesDir) throw new BuildError(`${kernel.pkg} did not contain boot/vmlinuz-${kernelVersion} and its modules.`);
    }
    const stagedKernel = path.join(work, 'vmlinuz');
    try {
      fs.copyFileSync(vmlinuz, stagedKernel);
    } catch (e) {
      if (e.code === 'EACCES') {
        throw new BuildError(`Cannot read ${vmlinuz} (EACCES). Run the tests as root or \`sudo chmod 0644 ${vmlinuz}\`.`);
      }
      throw e;
    }
    fs.chmodSync(stagedKernel, 0o644);

    const dep = moduleDeps(modulesDir);
    const builtinFile = path.join(modulesDir, 'modules.builtin');
    const builtin = fs.existsSync(builtinFile) ? parseModulesBuiltin(fs.readFileSync(builtinFile, 'utf8')) : new Set();
    const resolved = resolveModules(WANTED_MODULES, dep, builtin);
    const modules = [];
    const skipped = [...resolved.missing.map((m) => `${m} (not in this kernel)`)];
    for (const m of resolved.load) {
      const r = readModule(path.join(modulesDir, m.path));
      if (r.data) modules.push({ name: m.name, data: r.data });
      else skipped.push(`${m.name} (${r.reason})`);
    }
    if (skipped.length > 0) log(`modules skipped: ${skipped.join(', ')}`);

    // Busybox.
    let busyboxPath;
    if (busybox.kind === 'installed') busyboxPath = busybox.path;
    else {
      const root = path.join(work, 'busybox');
      aptExtract(busybox.pkg, work, root);
      busyboxPath = firstIn(root, ['bin/busybox', 'usr/bin/busybox']);
      if (!busyboxPath) throw new BuildError('busybox-static did not contain bin/busybox.');
    }
    const busyboxBytes = fs.readFileSync(busyboxPath);
    if (!isStaticElf(busyboxBytes)) throw new BuildError(`${busyboxPath} is not a static executable; install busybox-static.`);
    let applets;
    try {
      applets = run(busyboxPath, ['--list']).split('\n').map((s) => s.trim()).filter(Boolean);
    } catch (e) {
      throw new BuildError(`Could not run ${busyboxPath} --list: ${e.message}`);
    }
    for (const needed of ['sh', 'init', 'mount', 'insmod', 'acpid', 'cttyhack', 'poweroff', 'setsid']) {
      if (!applets.includes(needed)) throw new BuildError(`${busyboxPath} lacks the "${needed}" applet the guest needs.`);
    }

    const cpio = cpioNewc(initramfsEntries({ busybox: busyboxBytes, applets, modules }));
    const stagedInitrd = path.join(work, 'initrd.img');
    fs.writeFileSync(stagedInitrd, zlib.gzipSync(cpio, { level: 9 }));

    const info = {
      version: GUEST_JSON_VERSION,
      key,
      kernel: path.join(cacheDir, 'vmlinuz'),
      initrd: path.join(cacheDir, 'initrd.img'),
      append: APPEND,
      kernelVersion,
      modules: modules.map((m) => m.name),
      skippedModules: skipped,
      readyMarker: READY_MARKER,
      prompt: PROMPT,
      ...extras,
    };
    const stagedJson = path.join(work, 'guest.json');
    fs.writeFileSync(stagedJson, `${JSON.stringify(info, null, 2)}\n`);
    // guest.json last: it is what says the other two are complete.
    fs.renameSync(stagedKernel, info.kernel);
    fs.renameSync(stagedInitrd, info.initrd);
    fs.renameSync(stagedJson, path.join(cacheDir, 'guest.json'));
    log(`built ${kernelVersion} + busybox initramfs (${(fs.statSync(info.initrd).size / 1024).toFixed(0)} KiB, ${modules.length} modules)`);
    return info;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// ───────────────────────────── the lock ─────────────────────────────

const LOCK_WAIT_MS = 15 * 60_000;

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

function lockIsStale(lockDir) {
  try {
    const owner = JSON.parse(fs.readFileSync(path.join(lockDir, 'owner'), 'utf8'));
    return owner.host === os.hostname() && !pidAlive(owner.pid);
  } catch {
    // Owner not written yet (just created) or unreadable: stale only if old.
    try {
      return Date.now() - fs.statSync(lockDir).mtimeMs > 60_000;
    } catch {
      return false;
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
    if (lockIsStale(lockDir)) {
      // Rename first: only one of several waiters can win the rename, so only one removes it.
      const grave = `${lockDir}.stale-${process.pid}`;
      try {
        fs.renameSync(lockDir, grave);
        fs.rmSync(grave, { recursive: true, force: true });
      } catch {
        // someone else cleaned it up
      }
      continue;
    }
    if (Date.now() > deadline) throw new BuildError(`Timed out waiting for ${lockDir}. Remove it if no build is running.`);
    if (!announced) log('another build is running; waiting for it');
    announced = true;
    await sleep(250);
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

/**
 * Builds (or reuses) the test guest and returns what guest.json says.
 * @param {{ cacheDir?: string, forceApt?: boolean }} [opts] forceApt (or VIVARIUM_TEST_GUEST_FROM_APT=1)
 *   ignores the installed kernel and busybox and downloads them: the path a host without them takes.
 */
export async function buildTestGuest(opts = {}) {
  const cacheDir = path.resolve(opts.cacheDir ?? process.env.VIVARIUM_TEST_CACHE ?? DEFAULT_CACHE_DIR);
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
  } catch (e) {
    throw new BuildError(`Cannot create ${cacheDir} (${e.code ?? e.message}). Set VIVARIUM_TEST_CACHE to a writable folder.`);
  }
  const forceApt = opts.forceApt ?? process.env.VIVARIUM_TEST_GUEST_FROM_APT === '1';
  const kernel = locateKernel(forceApt);
  const busybox = locateBusybox(forceApt);
  const extras = locateExtras();
  const key = inputsKey(kernel, busybox, extras);
  const ready = upToDate(cacheDir, key);
  if (ready) return ready;
  return withLock(path.join(cacheDir, '.lock'), () => upToDate(cacheDir, key) ?? build(cacheDir, key, kernel, busybox, extras));
}


// ───────────────────────────── the aarch64 guest ─────────────────────────────
// The same tiny Linux for ARM guests under TCG: Debian's arm64 cloud kernel and busybox-static:arm64,
// fetched with `apt-get download` for the foreign architecture (needs `dpkg --add-architecture arm64`
// and `apt-get update`; .ci/run does both) and unpacked with `dpkg -x`. Output:
// <cache>/aarch64/{vmlinuz,initrd.img,guest.json}; when it cannot be built, <cache>/aarch64/error.txt
// says why (the x86_64 guest is still built, and only the ARM tests fail, with that sentence).

export const ARM_APPEND = 'console=ttyAMA0 quiet panic=-1';
const ARM_GUEST_JSON_VERSION = 1;
const EM_AARCH64 = 183;
// The AAVMF (edk2 for aarch64) code/vars pair of Debian's qemu-efi-aarch64.
const AAVMF_PAIRS = Object.freeze([['/usr/share/AAVMF/AAVMF_CODE.fd', '/usr/share/AAVMF/AAVMF_VARS.fd']]);

/** True for a 64-bit little-endian ELF for aarch64. */
export function isAarch64Elf(buf) {
  return buf.length >= 20 && buf.readUInt32BE(0) === 0x7f454c46 && buf[4] === 2 && buf[5] === 1 && buf.readUInt16LE(18) === EM_AARCH64;
}

/**
 * The initramfs for the ARM guest: the x86 guest's files, but its busybox cannot run on this host to
 * list its applets, so /init installs the applet links itself before anything else (only /bin/sh,
 * which runs /init, is linked up front). No kernel modules: the virt machine's serial (PL011) and
 * virtio-mmio/pci are built into Debian's arm64 kernels.
 * @param {Uint8Array} busybox
 */
export function armInitramfsEntries(busybox) {
  return initramfsEntries({ busybox, applets: ['sh'], modules: [] }).map((e) =>
    e.name === 'init' && e.type === 'file'
      ? { ...e, data: String(e.data).replace('export PATH=/bin HOME=/root\n', 'export PATH=/bin HOME=/root\n/bin/busybox --install -s /bin\n') }
      : e,
  );
}

/** The arm64 cloud kernel package the meta-package points at, from the arm64 lists. */
function locateArmInputs() {
  const deps = tryRun('apt-cache', ['depends', 'linux-image-cloud-arm64:arm64']) ?? '';
  const kernelPkg = /Depends:\s*(linux-image-\S+-cloud-arm64)(?::arm64)?\s*$/m.exec(deps)?.[1];
  const kernelVersion = kernelPkg ? aptCandidate(`${kernelPkg}:arm64`) : null;
  const busyboxVersion = aptCandidate('busybox-static:arm64');
  if (!kernelPkg || !kernelVersion || !busyboxVersion) {
    throw new BuildError(
      'apt knows no arm64 packages, so the ARM test guest cannot be downloaded. Run ' +
        '`dpkg --add-architecture arm64 && apt-get update` (as root; .ci/run does this), then build again.',
    );
  }
  const aavmf = AAVMF_PAIRS.find(([c, v]) => fs.existsSync(c) && fs.existsSync(v)) ?? [null, null];
  return { kernelPkg, kernelVersion, busyboxVersion, aavmfCode: aavmf[0], aavmfVars: aavmf[1] };
}

function buildArm(dir, key, inputs) {
  for (const f of fs.readdirSync(dir)) {
    if (f.startsWith('.build-')) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  }
  const work = fs.mkdtempSync(path.join(dir, '.build-'));
  try {
    const kroot = path.join(work, 'kernel');
    aptExtract(`${inputs.kernelPkg}:arm64`, work, kroot);
    const kernelVersion = inputs.kernelPkg.replace(/^linux-image-/, '');
    const vmlinuz = firstIn(kroot, [`boot/vmlinuz-${kernelVersion}`]);
    if (!vmlinuz) throw new BuildError(`${inputs.kernelPkg} did not contain boot/vmlinuz-${kernelVersion}.`);
    const broot = path.join(work, 'busybox');
    aptExtract('busybox-static:arm64', work, broot);
    const bb = firstIn(broot, ['bin/busybox', 'usr/bin/busybox']);
    if (!bb) throw new BuildError('busybox-static:arm64 did not contain bin/busybox.');
    const busybox = fs.readFileSync(bb);
    if (!isAarch64Elf(busybox) || !isStaticElf(busybox)) throw new BuildError(`${bb} is not a static aarch64 executable.`);

    const stagedKernel = path.join(work, 'vmlinuz');
    fs.copyFileSync(vmlinuz, stagedKernel);
    fs.chmodSync(stagedKernel, 0o644);
    const stagedInitrd = path.join(work, 'initrd.img');
    fs.writeFileSync(stagedInitrd, zlib.gzipSync(cpioNewc(armInitramfsEntries(busybox)), { level: 9 }));
    const info = {
      version: ARM_GUEST_JSON_VERSION,
      arch: 'aarch64',
      key,
      kernel: path.join(dir, 'vmlinuz'),
      initrd: path.join(dir, 'initrd.img'),
      append: ARM_APPEND,
      kernelVersion,
      readyMarker: READY_MARKER,
      prompt: PROMPT,
      aavmfCode: inputs.aavmfCode,
      aavmfVars: inputs.aavmfVars,
    };
    const stagedJson = path.join(work, 'guest.json');
    fs.writeFileSync(stagedJson, `${JSON.stringify(info, null, 2)}\n`);
    fs.renameSync(stagedKernel, info.kernel);
    fs.renameSync(stagedInitrd, info.initrd);
    fs.renameSync(stagedJson, path.join(dir, 'guest.json'));
    log(`built the aarch64 guest: ${kernelVersion} + busybox initramfs (${(fs.statSync(info.initrd).size / 1024).toFixed(0)} KiB)`);
    return info;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Builds (or reuses) the aarch64 test guest; returns its guest.json. On failure writes the reason to
 * <cache>/aarch64/error.txt and throws.
 * @param {{ cacheDir?: string }} [opts]
 */
export async function buildArmTestGuest(opts = {}) {
  const dir = path.join(path.resolve(opts.cacheDir ?? process.env.VIVARIUM_TEST_CACHE ?? DEFAULT_CACHE_DIR), 'aarch64');
  fs.mkdirSync(dir, { recursive: true });
  const errorFile = path.join(dir, 'error.txt');
  try {
    const inputs = locateArmInputs();
    const builder = createHash('sha256').update(fs.readFileSync(SCRIPT)).digest('hex').slice(0, 16);
    const key = createHash('sha256').update(JSON.stringify({ builder, ...inputs })).digest('hex').slice(0, 24);
    const current = () => {
      const info = readGuestJson(dir);
      return info?.key === key && info.kernel === path.join(dir, 'vmlinuz') && fs.existsSync(info.kernel) && fs.existsSync(info.initrd) ? info : null;
    };
    const info = current() ?? (await withLock(path.join(dir, '.lock'), () => current() ?? buildArm(dir, key, inputs)));
    fs.rmSync(errorFile, { force: true });
    return info;
  } catch (e) {
    fs.writeFileSync(errorFile, `${e instanceof BuildError ? e.message : e.stack}\n`);
    throw e;
  }
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  buildTestGuest().then(
    async (info) => {
      process.stdout.write(`${path.join(path.dirname(info.kernel), 'guest.json')}\n`);
      // The ARM guest is extra: without it only the aarch64 tests fail, saying why (aarch64/error.txt).
      // VIVARIUM_TEST_GUEST_ARM=0 skips it (the builder's own tests of the x86_64 guest).
      if (process.env.VIVARIUM_TEST_GUEST_ARM !== '0') {
        await buildArmTestGuest().catch((e) => log(`WARNING: the aarch64 test guest was not built: ${e instanceof BuildError ? e.message : e.stack}`));
      }
    },
    (e) => {
      process.stderr.write(`[test-guest] ERROR: ${e instanceof BuildError ? e.message : e.stack}\n`);
      process.exit(1);
    },
  );
}
