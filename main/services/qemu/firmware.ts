/**
 * UEFI firmware discovery from QEMU's firmware descriptor files (docs/interop/firmware.json, the
 * same mechanism libvirt uses for `<os firmware='efi'>`), with well-known distro paths as a
 * fallback for hosts that ship the images without descriptors.
 *
 * Pure apart from reading the directories and files it is given, so tests can point it at fixture
 * trees and an injected `fileExists`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import type { UefiFirmware } from '../../common/models/host';
import type { Arch } from '../../common/models/vm-config';

export interface FirmwareSearch {
  /** Descriptor directories, most general first: a file in a later one overrides (or, when empty,
   *  masks) the file of the same name in an earlier one. */
  readonly dirs: readonly string[];
}

export interface FindFirmwareOptions extends FirmwareSearch {
  /** The machine type the firmware must support, as a versioned name ("pc-q35-7.2", "virt-7.2"),
   *  an alias ("q35", "pc", "virt") or a glob ("pc-q35-*"). Default: q35 for x86_64, virt for aarch64. */
  readonly machine?: string;
  /** Ask for a Secure Boot build (which then also needs SMM). Default false. */
  readonly secureBoot?: boolean;
  /** Whether a firmware image is there (a regular file). Default: stat it. */
  readonly fileExists?: (p: string) => boolean | Promise<boolean>;
}

/** Where QEMU was installed: `<prefix>/bin/qemu-system-*` → `<prefix>`. Homebrew's bin entries are
 *  symlinks into a versioned Cellar folder, and the descriptors it installs live in that folder. */
export async function installPrefix(binaryPath: string): Promise<string> {
  let real = binaryPath;
  try {
    real = await fs.promises.realpath(binaryPath);
  } catch {
    // A missing binary still has a lexical prefix; the dirs below then simply do not exist.
  }
  return path.dirname(path.dirname(real));
}

/** Where QEMU's firmware descriptors are looked for, most general first (docs/interop/firmware.json). */
export async function firmwareSearchDirs(env: NodeJS.ProcessEnv, platform: NodeJS.Platform, qemuBinaryPath: string | null): Promise<string[]> {
  const prefix = qemuBinaryPath ? await installPrefix(qemuBinaryPath) : null;
  const dirs: string[] = [];
  if (platform !== 'win32') dirs.push('/usr/share/qemu/firmware');
  // The installing package's own share dir (Homebrew, /usr/local builds): as general as /usr/share.
  if (prefix) dirs.push(path.join(prefix, 'share', 'qemu', 'firmware'));
  if (platform !== 'win32') dirs.push('/etc/qemu/firmware');
  const home = env.HOME || os.homedir();
  const xdg = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(home, '.config');
  dirs.push(path.join(xdg, 'qemu', 'firmware'));
  return [...new Set(dirs)];
}

const FlashFile = z.object({ filename: z.string().min(1), format: z.string() });
const Descriptor = z.object({
  'interface-types': z.array(z.string()),
  mapping: z.object({
    device: z.string(),
    // Added in QEMU 8.1; absent means "split" (separate code and vars files).
    mode: z.string().optional(),
    executable: FlashFile.optional(),
    'nvram-template': FlashFile.optional(),
  }),
  targets: z.array(z.object({ architecture: z.string(), machines: z.array(z.string()) })),
  features: z.array(z.string()).optional(),
});
type Descriptor = z.infer<typeof Descriptor>;

/** Features whose firmware needs a confidential-computing setup we never build. */
const UNSUPPORTED_FEATURES: ReadonlySet<string> = new Set(['amd-sev-es', 'amd-sev-snp', 'intel-tdx']);

/** The effective descriptor files: later dirs override earlier ones by name, sorted by file name
 *  (byte order, as QEMU's spec says). Masked (empty) files are left out. */
export async function listDescriptors(dirs: readonly string[]): Promise<string[]> {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch {
      continue; // Most of these dirs do not exist on a given host.
    }
    for (const name of names) if (name.endsWith('.json')) byName.set(name, path.join(dir, name));
  }
  const files = [...byName.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((name) => byName.get(name) as string);
  const out: string[] = [];
  for (const file of files) if (!(await isEmptyFile(file))) out.push(file);
  return out;
}

async function isEmptyFile(file: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(file)).size === 0;
  } catch {
    return true;
  }
}

/**
 * The UEFI build for `arch` (and `opts.machine`, Secure Boot or not) by QEMU's firmware descriptors,
 * else well-known install locations; null when none is installed.
 */
export async function findUefiFirmware(arch: Arch, opts: FindFirmwareOptions): Promise<UefiFirmware | null> {
  const secureBoot = opts.secureBoot ?? false;
  const machine = normalizeMachine(opts.machine ?? defaultMachine(arch));
  const fileExists = opts.fileExists ?? defaultFileExists;
  for (const file of await listDescriptors(opts.dirs)) {
    const d = await readDescriptor(file);
    if (!d) continue;
    const fw = matchDescriptor(d, file, arch, machine, secureBoot);
    if (fw && (await fileExists(fw.code)) && (await fileExists(fw.varsTemplate))) return fw;
  }
  return findFallback(arch, secureBoot, opts.dirs, fileExists);
}

async function readDescriptor(file: string): Promise<Descriptor | null> {
  try {
    const parsed = Descriptor.safeParse(JSON.parse(await fs.promises.readFile(file, 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null; // Unreadable or not JSON: a broken descriptor must not hide the others.
  }
}

function matchDescriptor(d: Descriptor, source: string, arch: Arch, machine: string, secureBoot: boolean): UefiFirmware | null {
  if (!d['interface-types'].includes('uefi')) return null;
  const m = d.mapping;
  if (m.device !== 'flash' || (m.mode !== undefined && m.mode !== 'split')) return null;
  if (!d.targets.some((t) => t.architecture === arch && t.machines.some((g) => globMatch(g, machine)))) return null;
  const features = new Set(d.features ?? []);
  if ([...features].some((f) => UNSUPPORTED_FEATURES.has(f))) return null;
  const isSecure = features.has('secure-boot');
  // A Secure Boot request needs a Secure Boot build; a plain request must not get one (it would
  // also need smm=on, and enrolled keys refuse unsigned boot loaders).
  if (secureBoot !== isSecure) return null;
  if (!secureBoot && (features.has('enrolled-keys') || features.has('requires-smm'))) return null;
  const code = m.executable;
  const vars = m['nvram-template'];
  if (!code || !vars || !path.isAbsolute(code.filename) || !path.isAbsolute(vars.filename)) return null;
  const codeFormat = imageFormat(code.format);
  const varsFormat = imageFormat(vars.format);
  if (!codeFormat || !varsFormat) return null;
  return { code: code.filename, codeFormat, varsTemplate: vars.filename, varsFormat, secureBoot: isSecure, source };
}

function imageFormat(f: string): 'raw' | 'qcow2' | null {
  return f === 'raw' || f === 'qcow2' ? f : null;
}

function defaultMachine(arch: Arch): string {
  return arch === 'x86_64' ? 'pc-q35-*' : 'virt-*';
}

/** QEMU's machine aliases → the versioned family the descriptors name. */
function normalizeMachine(machine: string): string {
  switch (machine) {
    case 'q35':
      return 'pc-q35-*';
    case 'pc':
      return 'pc-i440fx-*';
    case 'virt':
      return 'virt-*';
    default:
      return machine;
  }
}

/** fnmatch-style `*` and `?`. A literal `*` in the machine name is matched by a pattern `*`, so an
 *  unversioned family ("pc-q35-*") matches the descriptors' "pc-q35-*". */
export function globMatch(pattern: string, s: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  return new RegExp(`^${re}$`, 's').test(s);
}

async function defaultFileExists(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isFile();
  } catch {
    return false;
  }
}

interface FallbackPair {
  readonly code: string;
  readonly vars: string;
}

/** Known install locations (qemu-notes §2), for hosts whose packages ship no descriptors. */
function fallbackPairs(arch: Arch, secureBoot: boolean, dirs: readonly string[]): FallbackPair[] {
  // Upstream installs (Homebrew, /usr/local builds) keep edk2 images next to their descriptors dir.
  const shareDirs = dirs.filter((d) => d.endsWith(path.join('share', 'qemu', 'firmware'))).map((d) => path.dirname(d));
  const upstream = (code: string, vars: string): FallbackPair[] =>
    shareDirs.map((s) => ({ code: path.join(s, code), vars: path.join(s, vars) }));
  if (arch === 'x86_64' && !secureBoot) {
    return [
      { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
      { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd' },
      { code: '/usr/share/edk2/ovmf/OVMF_CODE.fd', vars: '/usr/share/edk2/ovmf/OVMF_VARS.fd' },
      { code: '/usr/share/edk2/x64/OVMF_CODE.4m.fd', vars: '/usr/share/edk2/x64/OVMF_VARS.4m.fd' },
      ...upstream('edk2-x86_64-code.fd', 'edk2-i386-vars.fd'),
    ];
  }
  if (arch === 'x86_64') {
    return [
      { code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' },
      { code: '/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd', vars: '/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd' },
      { code: '/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd', vars: '/usr/share/edk2/x64/OVMF_VARS.4m.fd' },
      ...upstream('edk2-x86_64-secure-code.fd', 'edk2-i386-vars.fd'),
    ];
  }
  if (secureBoot) return []; // No well-known Secure Boot layout for aarch64: descriptors only.
  return [
    { code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd' },
    { code: '/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw', vars: '/usr/share/edk2/aarch64/vars-template-pflash.raw' },
    { code: '/usr/share/edk2/aarch64/QEMU_CODE.fd', vars: '/usr/share/edk2/aarch64/QEMU_VARS.fd' },
    ...upstream('edk2-aarch64-code.fd', 'edk2-arm-vars.fd'),
  ];
}

async function findFallback(
  arch: Arch,
  secureBoot: boolean,
  dirs: readonly string[],
  fileExists: (p: string) => boolean | Promise<boolean>,
): Promise<UefiFirmware | null> {
  let hit: FallbackPair | undefined;
  for (const p of fallbackPairs(arch, secureBoot, dirs)) {
    if ((await fileExists(p.code)) && (await fileExists(p.vars))) {
      hit = p;
      break;
    }
  }
  if (!hit) return null;
  return {
    code: hit.code,
    codeFormat: 'raw',
    varsTemplate: hit.vars,
    varsFormat: 'raw',
    secureBoot,
    source: `fallback:${hit.code}`,
  };
}
