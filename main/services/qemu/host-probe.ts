/**
 * The host probe: which QEMU binaries exist, what they were built with, which accelerators would
 * work for each guest architecture (and, when not, why and what to do), and which UEFI firmware to
 * use. The result is plain data (HostCapabilities) handed to the pure argv builder.
 *
 * Every CLI command needs it, so the result is cached in a file keyed by a fingerprint that costs
 * only a few stat() calls; a cache hit spawns nothing.
 *
 * Effects live in two injectable places: `HostFacts` (files under /dev and /sys, sysctl, os-release)
 * so tests can simulate any host, and the QEMU binaries themselves, which are run for real.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { ErrorCode, VivariumError } from '../../common/errors';
import type { AccelStatus, HostCapabilities, HostOs, QemuBinary, QemuVersion, UefiFirmware } from '../../common/models/host';
import { formatVersion } from '../../common/models/host';
import type { HostReport, HostSetup, PackageManager } from '../../common/models/host-report';
import type { Accel, Arch } from '../../common/models/vm-config';
import { mkdirPrivateAsync, writeFileAtomicAsync } from '../paths';
import { findUefiFirmware, firmwareSearchDirs } from './firmware';

const ARCHES: readonly Arch[] = ['x86_64', 'aarch64'];
const RUN_TIMEOUT_MS = 5000;
/** Bumped whenever the probe's output changes meaning, so old cache files are ignored. */
const CACHE_VERSION = 4; // 3: caps.swtpm; 4: caps.secureFirmware

export const KVM_DEVICE = '/dev/kvm';
export const KVM_MODULE = '/sys/module/kvm';
export const KVM_PVM_MODULE = '/sys/module/kvm_pvm';

// ---------------------------------------------------------------------------------------------
// Host facts

/** The host checks that are not "run a QEMU binary", injectable so tests can simulate any host. */
export interface HostFacts {
  exists(p: string): Promise<boolean>;
  /** Opens `p` read-write and closes it: null when that worked, else the errno code ("EACCES"). */
  openReadWrite(p: string): Promise<string | null>;
  /** `sysctl -n <name>` (macOS), trimmed; null when it fails. */
  sysctl(name: string): Promise<string | null>;
  /** The file's text, null when it cannot be read. */
  readText(p: string): Promise<string | null>;
}

/** The host as it is, every check off the event loop (doctor probes again on each request). */
export const realHostFacts: HostFacts = {
  exists: (p) =>
    fs.promises.access(p).then(
      () => true,
      () => false,
    ),
  openReadWrite: async (p) => {
    try {
      await (await fs.promises.open(p, fs.constants.O_RDWR)).close();
      return null;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code ?? 'EIO';
    }
  },
  sysctl: async (name) => {
    const r = await run('sysctl', ['-n', name], process.env);
    return r.ok ? r.stdout.trim() : null;
  },
  readText: async (p) => {
    try {
      return await fs.promises.readFile(p, 'utf8');
    } catch {
      return null;
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Probe problems: things the probe found broken, kept as data so the report can word them.

export type ProbeTool = Arch | 'qemu-img';

export type ProbeProblem =
  /** VIVARIUM_QEMU_DIR is set (so nothing else is searched) but lacks required tools. */
  | { readonly kind: 'qemu-dir'; readonly dir: string; readonly dirExists: boolean; readonly missing: readonly string[] }
  /** A binary exists but does not run or answers nonsense. */
  | { readonly kind: 'broken-binary'; readonly tool: ProbeTool; readonly path: string; readonly detail: string };

/** HostCapabilities plus what went wrong while probing (for the doctor report). */
export interface ProbedCapabilities extends HostCapabilities {
  readonly probeProblems: readonly ProbeProblem[];
}

export interface ProbeOptions {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  /** Node's (`x64`, `arm64`) or QEMU's (`x86_64`, `aarch64`) name. Default: process.arch. */
  hostArch?: string;
  /** Where to cache the result (Layout.hostCache); null or absent: always probe. */
  cacheFile?: string | null;
  facts?: HostFacts;
}

// ---------------------------------------------------------------------------------------------
// Running binaries

interface RunResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** Why it failed, for a problem sentence. */
  readonly failure: string;
}

/** Runs a program without a shell; never rejects. */
function run(bin: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      { env, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (!err) return resolve({ ok: true, stdout, stderr, failure: '' });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
        const failure = e.killed
          ? `no answer within ${RUN_TIMEOUT_MS / 1000} s`
          : typeof e.code === 'string'
            ? e.code
            : firstLine(stderr) || (e.signal ? `killed by ${e.signal}` : `exit code ${String(e.code)}`);
        resolve({ ok: false, stdout, stderr, failure });
      },
    );
  });
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.trim() ?? '';
}

export function parseQemuVersion(text: string): QemuVersion | null {
  const m = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3] ?? 0) };
}

/** `-accel help` → the accelerators Vivarium knows (xen, whpx, nvmm… are ignored). */
export function parseAccelHelp(text: string): Accel[] {
  const known: readonly Accel[] = ['kvm', 'hvf', 'tcg'];
  const lines = text.split('\n').map((l) => l.trim());
  const start = lines.findIndex((l) => /^Accelerators supported/i.test(l));
  return lines.slice(start + 1).filter((l): l is Accel => (known as readonly string[]).includes(l));
}

// ---------------------------------------------------------------------------------------------
// Locating binaries

export function normalizeArch(arch: string): Arch {
  switch (arch) {
    case 'x64':
    case 'x86_64':
    case 'amd64':
      return 'x86_64';
    case 'arm64':
    case 'aarch64':
      return 'aarch64';
    default:
      throw new VivariumError(ErrorCode.Unsupported, `Vivarium runs on x86_64 and arm64 hosts; this host is ${arch}.`);
  }
}

function hostOs(platform: NodeJS.Platform): HostOs {
  if (platform === 'linux' || platform === 'darwin' || platform === 'win32') return platform;
  throw new VivariumError(ErrorCode.Unsupported, `Vivarium runs on Linux, macOS and Windows; this host is ${platform}.`);
}

interface SearchPlan {
  readonly dirs: readonly string[];
  /** Set when VIVARIUM_QEMU_DIR restricts the search to one folder. */
  readonly qemuDir: string | null;
}

/** Searched after PATH: Homebrew (Apple silicon; Intel uses /usr/local), source builds, and RHEL's
 *  /usr/libexec/qemu-kvm. GUI apps on macOS start with a minimal PATH, so these matter there. */
const EXTRA_DIRS: readonly string[] = ['/opt/homebrew/bin', '/usr/local/bin', '/usr/libexec'];
const EXTRA_DIRS_WIN32: readonly string[] = ['C:\\Program Files\\qemu'];

function searchPlan(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): SearchPlan {
  if (env.VIVARIUM_QEMU_DIR) {
    const dir = path.resolve(env.VIVARIUM_QEMU_DIR);
    return { dirs: [dir], qemuDir: dir };
  }
  const fromPath = (env.PATH ?? '').split(platform === 'win32' ? ';' : ':').filter((d) => d && path.isAbsolute(d));
  const extra = platform === 'win32' ? EXTRA_DIRS_WIN32 : EXTRA_DIRS;
  return { dirs: [...new Set([...fromPath, ...extra])], qemuDir: null };
}

async function isExecutableFile(p: string): Promise<boolean> {
  try {
    if (!(await fs.promises.stat(p)).isFile()) return false;
    await fs.promises.access(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first `name` in `dirs` that is an executable file (a PATH search), or null. Every folder is
 * asked at once and the first in order wins: one after another, a PATH of ~10 folders cost every
 * command's host probe ~10 thread-pool round trips per name (~6 ms of `vivarium start`, issue 7).
 */
async function findExecutable(dirs: readonly string[], name: string, platform: NodeJS.Platform): Promise<string | null> {
  const file = platform === 'win32' ? `${name}.exe` : name;
  const candidates = dirs.map((d) => path.join(d, file));
  const found = await Promise.all(candidates.map(isExecutableFile));
  const i = found.indexOf(true);
  return i < 0 ? null : candidates[i]!;
}

interface Located {
  readonly system: Partial<Record<Arch, string>>;
  readonly img: string | null;
}

async function locate(plan: SearchPlan, platform: NodeJS.Platform, hostArch: Arch): Promise<Located> {
  const system: Partial<Record<Arch, string>> = {};
  const [systems, img] = await Promise.all([
    Promise.all(ARCHES.map((arch) => findExecutable(plan.dirs, `qemu-system-${arch}`, platform))),
    findExecutable(plan.dirs, 'qemu-img', platform),
  ]);
  ARCHES.forEach((arch, i) => {
    const p = systems[i];
    if (p) system[arch] = p;
  });
  // RHEL/CentOS ship only /usr/libexec/qemu-kvm: a system emulator for the host's own arch.
  if (!system[hostArch] && platform === 'linux') {
    const kvm = await findExecutable(plan.dirs, 'qemu-kvm', platform);
    if (kvm) system[hostArch] = kvm;
  }
  return { system, img };
}

// ---------------------------------------------------------------------------------------------
// Accelerators

const TCG_REASON = 'software emulation: works everywhere, slower';

export interface AccelContext {
  readonly platform: NodeJS.Platform;
  readonly hostArch: Arch;
  readonly facts: HostFacts;
}

/** KVM for a guest arch, checked in the order that gives the most useful reason. */
export async function kvmStatus(guest: Arch, binaryAccels: readonly Accel[], ctx: AccelContext): Promise<AccelStatus> {
  const no = (reason: string): AccelStatus => ({ accel: 'kvm', usable: false, reason });
  if (guest !== ctx.hostArch) {
    return no(`KVM runs only ${ctx.hostArch} guests on this ${ctx.hostArch} host; ${guest} guests use TCG software emulation.`);
  }
  if (!binaryAccels.includes('kvm')) return no('This QEMU build has no KVM support; install your distribution\'s QEMU package.');
  if (await ctx.facts.exists(KVM_PVM_MODULE)) {
    // kvm_pvm is a paravirtual KVM for nested use: SeaBIOS runs, but OVMF fails and stock kernels
    // hang, so `auto` must not trust /dev/kvm here (qemu-notes "These machines").
    return {
      ...no(
        '/dev/kvm is provided by kvm_pvm (a nested, paravirtual KVM) under which stock guests and UEFI firmware hang, so Vivarium uses TCG; choose the kvm accelerator explicitly to try it anyway.',
      ),
      forceable: (await ctx.facts.openReadWrite(KVM_DEVICE)) === null,
    };
  }
  if (!(await ctx.facts.exists(KVM_MODULE))) {
    return no(
      'KVM kernel module not loaded: enable virtualization (VT-x/AMD-V) in the firmware settings and run `sudo modprobe kvm_intel` or `sudo modprobe kvm_amd`.',
    );
  }
  const err = await ctx.facts.openReadWrite(KVM_DEVICE);
  if (err === null) return { accel: 'kvm', usable: true, reason: 'hardware virtualization with KVM.' };
  if (err === 'ENOENT') return no('/dev/kvm does not exist although the kvm module is loaded; load kvm_intel or kvm_amd (`sudo modprobe kvm_intel`).');
  if (err === 'EACCES' || err === 'EPERM') {
    return no('You may not open /dev/kvm: add yourself to the kvm group with `sudo usermod -aG kvm $USER` and log in again.');
  }
  return no(`/dev/kvm cannot be opened (${err}); guests use TCG software emulation.`);
}

export async function hvfStatus(guest: Arch, binaryAccels: readonly Accel[], ctx: AccelContext): Promise<AccelStatus> {
  const no = (reason: string): AccelStatus => ({ accel: 'hvf', usable: false, reason });
  if (guest !== ctx.hostArch) {
    return no(`HVF runs only ${ctx.hostArch} guests on this ${ctx.hostArch === 'aarch64' ? 'Apple silicon' : 'Intel'} Mac; ${guest} guests use TCG software emulation.`);
  }
  if (!binaryAccels.includes('hvf')) return no('This QEMU build has no HVF support: reinstall it with `brew reinstall qemu`.');
  const hv = await ctx.facts.sysctl('kern.hv_support');
  if (hv !== '1') {
    return no('This Mac does not offer the Hypervisor framework (sysctl kern.hv_support is not 1, e.g. inside a VM without nested virtualization); guests use TCG.');
  }
  return { accel: 'hvf', usable: true, reason: 'hardware virtualization with Apple\'s Hypervisor framework.' };
}

export function tcgStatus(binaryAccels: readonly Accel[]): AccelStatus {
  return binaryAccels.includes('tcg')
    ? { accel: 'tcg', usable: true, reason: TCG_REASON }
    : { accel: 'tcg', usable: false, reason: 'This QEMU build has no TCG (software emulation); install a full QEMU package.' };
}

/** Hardware accelerator first, then TCG: pickAccel's `auto` takes the first usable non-TCG one. */
export async function accelStatuses(guest: Arch, binaryAccels: readonly Accel[], ctx: AccelContext): Promise<AccelStatus[]> {
  const list: AccelStatus[] = [];
  if (ctx.platform === 'linux') list.push(await kvmStatus(guest, binaryAccels, ctx));
  if (ctx.platform === 'darwin') list.push(await hvfStatus(guest, binaryAccels, ctx));
  list.push(tcgStatus(binaryAccels));
  return list;
}

// ---------------------------------------------------------------------------------------------
// Probing

type BinaryProbe =
  | { readonly ok: true; readonly binary: QemuBinary; readonly seccomp: boolean }
  | { readonly ok: false; readonly problem: ProbeProblem };

async function probeSystemBinary(arch: Arch, bin: string, env: NodeJS.ProcessEnv, platform: NodeJS.Platform): Promise<BinaryProbe> {
  const broken = (detail: string): BinaryProbe => ({ ok: false, problem: { kind: 'broken-binary', tool: arch, path: bin, detail } });
  // seccomp: QEMU parses `-sandbox` in its option loop before it reaches `-version`, and a build
  // without seccomp exits 1 there ("-sandbox support is not enabled in this QEMU binary"). So
  // `-sandbox on -version` exiting 0 proves support in one ~20 ms run, without starting a VM or
  // QMP (query-command-line-options would need both). macOS/Windows builds never have it.
  const [version, accel, sandbox, cpuMax] = await Promise.all([
    run(bin, ['-version'], env),
    run(bin, ['-accel', 'help'], env),
    platform === 'linux' ? run(bin, ['-sandbox', 'on', '-version'], env) : Promise.resolve(null),
    probeCpuMax(bin, env),
  ]);
  if (!version.ok) return broken(`\`-version\` failed: ${version.failure}`);
  const v = parseQemuVersion(version.stdout);
  if (!v) return broken(`\`-version\` printed no QEMU version: "${firstLine(version.stdout)}"`);
  if (!accel.ok) return broken(`\`-accel help\` failed: ${accel.failure}`);
  const accels = parseAccelHelp(accel.stdout);
  if (accels.length === 0) return broken('`-accel help` lists no accelerator');
  return {
    ok: true,
    binary: { arch, path: bin, version: v, accels, ...(Object.keys(cpuMax).length > 0 ? { cpuMax } : {}) },
    seccomp: sandbox?.ok ?? false,
  };
}

/**
 * `cpu-max` of every machine type, by name and alias, from QMP `query-machines` on a QEMU started
 * with `-machine none` (no guest, no devices; about 50 ms). An empty map when it fails: the limits
 * then fall back to the rules in machine-limits.ts.
 */
export async function probeCpuMax(bin: string, env: NodeJS.ProcessEnv): Promise<Record<string, number>> {
  const out = await new Promise<string>((resolve) => {
    let stdout = '';
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(stdout);
    };
    const child = spawn(bin, ['-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-qmp', 'stdio'], {
      env,
      stdio: ['pipe', 'pipe', 'ignore'],
      windowsHide: true,
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done();
    }, RUN_TIMEOUT_MS);
    child.on('error', done);
    child.on('close', done);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (stdout += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end('{"execute":"qmp_capabilities"}\n{"execute":"query-machines"}\n{"execute":"quit"}\n');
  });
  return parseCpuMax(out);
}

/** The `query-machines` reply among QMP lines → cpu-max by machine name and alias. */
export function parseCpuMax(qmpLines: string): Record<string, number> {
  const map: Record<string, number> = {};
  for (const line of qmpLines.split('\n')) {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      continue;
    }
    const ret = (msg as { return?: unknown } | null)?.return;
    if (!Array.isArray(ret)) continue;
    for (const m of ret as { name?: unknown; alias?: unknown; 'cpu-max'?: unknown }[]) {
      const max = m['cpu-max'];
      if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) continue;
      if (typeof m.name === 'string') map[m.name] = max;
      if (typeof m.alias === 'string') map[m.alias] = max;
    }
  }
  return map;
}

async function probeQemuImg(bin: string, env: NodeJS.ProcessEnv): Promise<ProbeProblem | null> {
  const r = await run(bin, ['--version'], env);
  const broken = (detail: string): ProbeProblem => ({ kind: 'broken-binary', tool: 'qemu-img', path: bin, detail });
  if (!r.ok) return broken(`\`--version\` failed: ${r.failure}`);
  return parseQemuVersion(r.stdout) ? null : broken(`\`--version\` printed no version: "${firstLine(r.stdout)}"`);
}

function defaultMachine(arch: Arch, v: QemuVersion): string {
  // The versioned name QEMU's `q35`/`virt` alias resolves to; descriptors glob against it.
  return arch === 'x86_64' ? `pc-q35-${v.major}.${v.minor}` : `virt-${v.major}.${v.minor}`;
}

interface Context {
  readonly env: NodeJS.ProcessEnv;
  readonly platform: NodeJS.Platform;
  readonly os: HostOs;
  readonly hostArch: Arch;
  readonly facts: HostFacts;
  readonly plan: SearchPlan;
  readonly located: Located;
}

async function probeLocated(ctx: Context): Promise<ProbedCapabilities> {
  const { env, platform, hostArch, facts, located } = ctx;
  const entries = ARCHES.flatMap((arch) => {
    const bin = located.system[arch];
    return bin ? [{ arch, bin }] : [];
  });
  const [systemResults, imgProblem] = await Promise.all([
    Promise.all(entries.map(({ arch, bin }) => probeSystemBinary(arch, bin, env, platform))),
    located.img ? probeQemuImg(located.img, env) : Promise.resolve(null),
  ]);

  const problems: ProbeProblem[] = [];
  const binaries: Partial<Record<Arch, QemuBinary>> = {};
  const accels: Partial<Record<Arch, readonly AccelStatus[]>> = {};
  const firmware: Partial<Record<Arch, UefiFirmware>> = {};
  const secureFirmware: Partial<Record<Arch, UefiFirmware>> = {};
  const seccomp: boolean[] = [];
  const accelCtx: AccelContext = { platform, hostArch, facts };
  for (const r of systemResults) {
    if (!r.ok) {
      problems.push(r.problem);
      continue;
    }
    const { arch } = r.binary;
    binaries[arch] = r.binary;
    seccomp.push(r.seccomp);
    accels[arch] = await accelStatuses(arch, r.binary.accels, accelCtx);
    const fw = await findUefiFirmware(arch, {
      dirs: await firmwareSearchDirs(env, platform, r.binary.path),
      machine: defaultMachine(arch, r.binary.version),
    });
    if (fw) firmware[arch] = fw;
    // Descriptors sort by name and distros number the enrolled build first (40-…-secure-enrolled).
    const secure = await findUefiFirmware(arch, {
      dirs: await firmwareSearchDirs(env, platform, r.binary.path),
      machine: defaultMachine(arch, r.binary.version),
      secureBoot: true,
    });
    if (secure) secureFirmware[arch] = secure;
  }
  if (imgProblem) problems.push(imgProblem);
  if (!binaries[hostArch]) {
    // No usable emulator yet: still say whether the firmware is installed, so the doctor's install
    // command names only what is missing.
    const fw = await findUefiFirmware(hostArch, { dirs: await firmwareSearchDirs(env, platform, null) });
    if (fw) firmware[hostArch] = fw;
  }

  if (ctx.plan.qemuDir) {
    const missing = [
      ...(located.system[hostArch] ? [] : [`qemu-system-${hostArch}`]),
      ...(located.img ? [] : ['qemu-img']),
    ];
    if (missing.length > 0) {
      problems.unshift({ kind: 'qemu-dir', dir: ctx.plan.qemuDir, dirExists: await facts.exists(ctx.plan.qemuDir), missing });
    }
  }

  return {
    os: ctx.os,
    hostArch,
    qemuImg: located.img && !imgProblem ? located.img : null,
    binaries,
    accels,
    firmware,
    secureFirmware,
    // One flag for all binaries (the type has no per-binary flag): only claim it when all have it.
    seccomp: platform === 'linux' && seccomp.length > 0 && seccomp.every(Boolean),
    nativeAio: platform === 'linux',
    swtpm: await findExecutable(ctx.plan.dirs, 'swtpm', platform),
    hostCpus: os.availableParallelism(),
    probeProblems: problems,
  };
}

export async function probeHost(opts: ProbeOptions = {}): Promise<ProbedCapabilities> {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const ctxBase = {
    env,
    platform,
    os: hostOs(platform),
    hostArch: normalizeArch(opts.hostArch ?? process.arch),
    facts: opts.facts ?? realHostFacts,
    plan: searchPlan(env, platform),
  };
  const ctx: Context = { ...ctxBase, located: await locate(ctxBase.plan, platform, ctxBase.hostArch) };
  const cacheFile = opts.cacheFile ?? null;
  if (!cacheFile) return probeLocated(ctx);

  const fp = await fingerprint(ctx);
  const cached = await readCache(cacheFile, fp);
  if (cached) return cached;
  const caps = await probeLocated(ctx);
  await writeCache(cacheFile, fp, caps);
  return caps;
}

// ---------------------------------------------------------------------------------------------
// Cache

async function statPart(p: string): Promise<{ readonly path: string; readonly real: string; readonly size: number; readonly mtimeMs: number } | null> {
  try {
    const real = await fs.promises.realpath(p);
    const st = await fs.promises.stat(real);
    return { path: p, real, size: st.size, mtimeMs: st.mtimeMs };
  } catch {
    return null;
  }
}

async function dirMtime(d: string): Promise<number | null> {
  try {
    return (await fs.promises.stat(d)).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * Everything the probe's answer depends on that can change between runs, at the cost of stat()s:
 * the binaries (realpath + size + mtime, so an upgrade re-probes), where we looked, the KVM state
 * (including whether /dev/kvm opens: joining the kvm group must show up without deleting the
 * cache), and the firmware descriptor dirs (installing ovmf creates or touches them).
 */
async function fingerprint(ctx: Context): Promise<string> {
  const { located, facts, platform } = ctx;
  // The stat()s at once (each is a thread-pool round trip): the tools, the firmware folders, KVM.
  const [tools, fwDirs, kvm] = await Promise.all([
    Promise.all([...ARCHES.map((a) => located.system[a] ?? null), located.img].map((p) => (p ? statPart(p) : null))),
    (async () => {
      const dirs = new Set((await Promise.all(ARCHES.map((a) => firmwareSearchDirs(ctx.env, platform, located.system[a] ?? null)))).flat());
      return Promise.all([...dirs].map(async (d) => [d, await dirMtime(d)] as const));
    })(),
    platform === 'linux'
      ? (async () => {
          const [dev, module, pvm] = await Promise.all([facts.exists(KVM_DEVICE), facts.exists(KVM_MODULE), facts.exists(KVM_PVM_MODULE)]);
          return { dev, open: dev ? await facts.openReadWrite(KVM_DEVICE) : null, module, pvm };
        })()
      : null,
  ]);
  const parts = {
    v: CACHE_VERSION,
    platform,
    hostArch: ctx.hostArch,
    qemuDir: ctx.env.VIVARIUM_QEMU_DIR ?? null,
    searched: ctx.plan.dirs,
    tools,
    kvm,
    fwDirs,
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

const ArchS = z.enum(['x86_64', 'aarch64']);
const AccelS = z.enum(['kvm', 'hvf', 'tcg']);
const ImgFormatS = z.enum(['raw', 'qcow2']);
const AccelStatusS = z.object({ accel: AccelS, usable: z.boolean(), reason: z.string(), forceable: z.boolean().optional() });
const BinaryS = z.object({
  arch: ArchS,
  path: z.string(),
  version: z.object({ major: z.number(), minor: z.number(), micro: z.number() }),
  accels: z.array(AccelS),
  cpuMax: z.record(z.string(), z.number().int().min(1)).optional(),
});
const FirmwareS = z.object({
  code: z.string(),
  codeFormat: ImgFormatS,
  varsTemplate: z.string(),
  varsFormat: ImgFormatS,
  secureBoot: z.boolean(),
  source: z.string(),
});
const ProblemS = z.union([
  z.object({ kind: z.literal('qemu-dir'), dir: z.string(), dirExists: z.boolean(), missing: z.array(z.string()) }),
  z.object({ kind: z.literal('broken-binary'), tool: z.union([ArchS, z.literal('qemu-img')]), path: z.string(), detail: z.string() }),
]);
/** The cache is ours, but it is still a file on disk: check its shape before trusting it. */
const CacheFileS = z.object({
  version: z.literal(CACHE_VERSION),
  fingerprint: z.string(),
  caps: z.object({
    os: z.enum(['linux', 'darwin', 'win32']),
    hostArch: ArchS,
    qemuImg: z.string().nullable(),
    binaries: z.partialRecord(ArchS, BinaryS),
    accels: z.partialRecord(ArchS, z.array(AccelStatusS)),
    firmware: z.partialRecord(ArchS, FirmwareS),
    secureFirmware: z.partialRecord(ArchS, FirmwareS).optional(),
    seccomp: z.boolean(),
    nativeAio: z.boolean(),
    swtpm: z.string().nullable().optional(),
    hostCpus: z.number().int().min(1).optional(),
    probeProblems: z.array(ProblemS),
  }),
});

async function readCache(file: string, fp: string): Promise<ProbedCapabilities | null> {
  let raw: string;
  try {
    raw = await fs.promises.readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = CacheFileS.safeParse(JSON.parse(raw));
    return parsed.success && parsed.data.fingerprint === fp ? parsed.data.caps : null;
  } catch {
    return null; // Corrupt: probe again and overwrite it.
  }
}

async function writeCache(file: string, fp: string, caps: ProbedCapabilities): Promise<void> {
  try {
    await mkdirPrivateAsync(path.dirname(file));
    await writeFileAtomicAsync(file, `${JSON.stringify({ version: CACHE_VERSION, fingerprint: fp, caps }, null, 2)}\n`);
  } catch {
    // The cache only saves time; a read-only home must not break every command.
  }
}

// ---------------------------------------------------------------------------------------------
// The doctor report

export type Distro = 'debian' | 'fedora' | 'arch' | 'suse' | 'other';

/** /etc/os-release → the package family whose install commands we know. */
export function distroFromOsRelease(text: string | null): Distro {
  if (!text) return 'other';
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) values.set(m[1], m[2].replace(/^["']|["']$/g, ''));
  }
  const ids = [values.get('ID') ?? '', ...(values.get('ID_LIKE') ?? '').split(/\s+/)].filter(Boolean);
  for (const id of ids) {
    if (id === 'debian' || id === 'ubuntu') return 'debian';
    if (id === 'fedora' || id === 'rhel' || id === 'centos') return 'fedora';
    if (id === 'arch') return 'arch';
    if (id === 'suse' || id === 'sles' || id.startsWith('opensuse')) return 'suse';
  }
  return 'other';
}

type Component = { readonly kind: 'system'; readonly arch: Arch } | { readonly kind: 'img' } | { readonly kind: 'firmware'; readonly arch: Arch };

function packageFor(distro: Distro, c: Component, hostArch: Arch): string | null {
  switch (distro) {
    case 'debian':
      if (c.kind === 'system') return c.arch === 'x86_64' ? 'qemu-system-x86' : 'qemu-system-arm';
      if (c.kind === 'img') return 'qemu-utils';
      return c.arch === 'x86_64' ? 'ovmf' : 'qemu-efi-aarch64';
    case 'fedora':
      // qemu-kvm pulls in the emulator for the host's own arch; other arches have their own package.
      if (c.kind === 'system') return c.arch === hostArch ? 'qemu-kvm' : `qemu-system-${c.arch === 'x86_64' ? 'x86' : 'aarch64'}`;
      if (c.kind === 'img') return 'qemu-img';
      return c.arch === 'x86_64' ? 'edk2-ovmf' : 'edk2-aarch64';
    case 'arch':
      if (c.kind === 'firmware') return c.arch === 'x86_64' ? 'edk2-ovmf' : 'edk2-aarch64';
      return 'qemu-full';
    case 'suse':
      // openSUSE's split QEMU packages (qemu-x86 pulls in the SeaBIOS/iPXE images it needs).
      if (c.kind === 'system') return c.arch === 'x86_64' ? 'qemu-x86' : 'qemu-arm';
      if (c.kind === 'img') return 'qemu-tools';
      return c.arch === 'x86_64' ? 'qemu-ovmf-x86_64' : 'qemu-uefi-aarch64';
    case 'other':
      return null;
  }
}

const PACKAGE_MANAGERS: Readonly<Record<Exclude<Distro, 'other'>, PackageManager>> = { debian: 'apt', fedora: 'dnf', arch: 'pacman', suse: 'zypper' };

/** The package manager the install command is for, or null when we do not know this OS's. */
export function packageManagerFor(os: HostOs, distro: Distro): PackageManager | null {
  if (os === 'darwin') return 'brew';
  if (os !== 'linux' || distro === 'other') return null;
  return PACKAGE_MANAGERS[distro];
}

/** The exact shell command that installs `components`, or null (unknown package manager). */
export function installCommandLine(os: HostOs, distro: Distro, components: readonly Component[], hostArch: Arch): string | null {
  const pm = packageManagerFor(os, distro);
  if (pm === 'brew') return 'brew install qemu';
  if (pm === null || components.length === 0) return null;
  const pkgs = [...new Set(components.map((c) => packageFor(distro, c, hostArch)))];
  if (pkgs.some((p) => p === null)) return null;
  const list = pkgs.join(' ');
  switch (pm) {
    case 'apt':
      return `sudo apt install ${list}`;
    case 'dnf':
      return `sudo dnf install ${list}`;
    case 'pacman':
      return `sudo pacman -S ${list}`;
    case 'zypper':
      return `sudo zypper install ${list}`;
  }
}

function installCommand(os: HostOs, distro: Distro, components: readonly Component[], hostArch: Arch): string {
  if (os === 'darwin') return 'Install it with `brew install qemu` (Homebrew\'s QEMU includes the UEFI firmware).';
  if (os === 'win32') return 'Install QEMU for Windows from https://www.qemu.org/download/#windows.';
  const cmd = installCommandLine(os, distro, components, hostArch);
  if (cmd === null) {
    return 'Install QEMU (qemu-system-*, qemu-img) and UEFI firmware (OVMF/edk2) with your distribution\'s package manager.';
  }
  return `Install with \`${cmd}\`.`;
}

/** The `kvm` group fix, when /dev/kvm exists (and is a real KVM) but this user may not open it. */
export async function kvmPermissionFix(os: HostOs, facts: HostFacts): Promise<HostSetup['kvmPermission']> {
  if (os !== 'linux' || !(await facts.exists(KVM_DEVICE)) || (await facts.exists(KVM_PVM_MODULE))) return null;
  const err = await facts.openReadWrite(KVM_DEVICE);
  if (err !== 'EACCES' && err !== 'EPERM') return null;
  return {
    command: 'sudo usermod -aG kvm $USER',
    explanation:
      'Your computer supports KVM, but your user may not open /dev/kvm, so virtual machines would run with slow software emulation. ' +
      'Add yourself to the kvm group, then log out and back in (or restart) so the new group applies.',
  };
}

/** macOS: why HVF is not used, with what Homebrew's QEMU has that others lack. */
function hvfExplanation(os: HostOs, accels: readonly AccelStatus[] | undefined): HostSetup['hvf'] {
  if (os !== 'darwin' || !accels) return null;
  const hvf = accels.find((a) => a.accel === 'hvf');
  if (!hvf || hvf.usable) return null;
  return {
    explanation:
      `${hvf.reason} HVF also needs the com.apple.security.hypervisor entitlement on the QEMU binary: Homebrew's QEMU is signed with it, ` +
      'a QEMU built from source or copied elsewhere is not, and then fails to start with HV_DENIED. Use Homebrew\'s (`brew reinstall qemu`), ' +
      'or sign yours with that entitlement (`codesign --sign - --entitlements hvf.plist --force <qemu-system binary>`).',
  };
}

function describe(c: Component): string {
  switch (c.kind) {
    case 'system':
      return `qemu-system-${c.arch}`;
    case 'img':
      return 'qemu-img';
    case 'firmware':
      return `UEFI firmware for ${c.arch} guests (BIOS guests still work)`;
  }
}

export interface HostReportOptions {
  /** Contents of /etc/os-release (picks the install command on Linux). Default: read it. */
  readonly osRelease?: string | null;
  /** /dev/kvm and friends, for the kvm group check. Default: this host. */
  readonly facts?: HostFacts;
}

export async function hostReport(
  caps: HostCapabilities & { readonly probeProblems?: readonly ProbeProblem[] },
  layout: { readonly home: string; readonly runtimeRoot: string },
  opts: HostReportOptions = {},
): Promise<HostReport> {
  const probeProblems = caps.probeProblems ?? [];
  const brokenPath = (t: ProbeTool) =>
    probeProblems.find((p): p is Extract<ProbeProblem, { kind: 'broken-binary' }> => p.kind === 'broken-binary' && p.tool === t)?.path ?? null;
  const distro =
    caps.os === 'linux' ? distroFromOsRelease(opts.osRelease !== undefined ? opts.osRelease : await realHostFacts.readText('/etc/os-release')) : 'other';
  const install = (components: readonly Component[]) => installCommand(caps.os, distro, components, caps.hostArch);

  const problems: string[] = [];
  const qemuDirSet = probeProblems.some((p) => p.kind === 'qemu-dir');
  for (const p of probeProblems) {
    if (p.kind === 'qemu-dir') {
      problems.push(
        `VIVARIUM_QEMU_DIR is set to ${p.dir}, so Vivarium looks for QEMU only there, but ${p.dirExists ? 'it has no' : 'that folder does not exist (no'} ${p.missing.join(' or ')}${p.dirExists ? '' : ')'}. Put QEMU there, or unset VIVARIUM_QEMU_DIR to use the installed QEMU.`,
      );
    } else {
      const c: Component = p.tool === 'qemu-img' ? { kind: 'img' } : { kind: 'system', arch: p.tool };
      problems.push(`${p.path} is installed but does not work (${p.detail}). Reinstall it. ${install([c])}`);
    }
  }

  // Missing pieces, gathered into one install command. A missing emulator for a foreign guest arch
  // is not a problem (most users never run one); the host's own arch and qemu-img are required.
  const missing: Component[] = [];
  if (!qemuDirSet) {
    if (!caps.binaries[caps.hostArch] && !brokenPath(caps.hostArch)) missing.push({ kind: 'system', arch: caps.hostArch });
    if (!caps.qemuImg && !brokenPath('qemu-img')) missing.push({ kind: 'img' });
  }
  for (const arch of ARCHES) {
    const needs = caps.binaries[arch] || (arch === caps.hostArch && missing.some((c) => c.kind === 'system'));
    if (needs && !caps.firmware[arch]) missing.push({ kind: 'firmware', arch });
  }
  if (missing.length > 0) problems.push(`Missing: ${missing.map(describe).join(', ')}. ${install(missing)}`);

  const own = caps.accels[caps.hostArch];
  if (caps.binaries[caps.hostArch] && own && !own.some((a) => a.usable && a.accel !== 'tcg')) {
    const hw = own.find((a) => a.accel !== 'tcg');
    problems.push(`${caps.hostArch} guests will run with TCG software emulation, which is much slower.${hw ? ` ${hw.reason}` : ''}`);
  }

  // The first-run guide names everything the host's own guests need, also when VIVARIUM_QEMU_DIR
  // narrowed the search (the install command is what fills a machine without QEMU).
  const qemuFound = !!caps.binaries[caps.hostArch] && caps.qemuImg !== null;
  const guideMissing: Component[] = [
    ...(caps.binaries[caps.hostArch] ? [] : [{ kind: 'system', arch: caps.hostArch } as const]),
    ...(caps.qemuImg ? [] : [{ kind: 'img' } as const]),
    ...(caps.firmware[caps.hostArch] ? [] : [{ kind: 'firmware', arch: caps.hostArch } as const]),
  ];
  const dirProblem = probeProblems.find((p): p is Extract<ProbeProblem, { kind: 'qemu-dir' }> => p.kind === 'qemu-dir');
  const setup: HostSetup = {
    qemuFound,
    qemuDir: dirProblem ? { path: dirProblem.dir, exists: dirProblem.dirExists, missing: dirProblem.missing } : null,
    packageManager: packageManagerFor(caps.os, distro),
    installCommand: caps.os === 'darwin' ? (qemuFound ? null : 'brew install qemu') : installCommandLine(caps.os, distro, guideMissing, caps.hostArch),
    kvmPermission: await kvmPermissionFix(caps.os, opts.facts ?? realHostFacts),
    hvf: hvfExplanation(caps.os, caps.accels[caps.hostArch]),
  };

  return {
    os: caps.os,
    hostArch: caps.hostArch,
    setup,
    qemuImg: { path: caps.qemuImg ?? brokenPath('qemu-img'), ok: caps.qemuImg !== null },
    binaries: ARCHES.map((arch) => {
      const b = caps.binaries[arch];
      return b
        ? { arch, path: b.path, version: formatVersion(b.version), accels: caps.accels[arch] ?? [] }
        : { arch, path: brokenPath(arch), version: null, accels: [] };
    }),
    firmware: ARCHES.flatMap((arch) => {
      const fw = caps.firmware[arch];
      return fw ? [{ arch, ...fw }] : [];
    }),
    problems,
    home: layout.home,
    runtimeDir: layout.runtimeRoot,
  };
}
