import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findUefiFirmware, firmwareSearchDirs, globMatch, listDescriptors } from './firmware';

// Fixture tree: share/ (distro), etc/ (admin: masks 55-masked.json), user/ (overrides 60-plain.json).
// Descriptors point at /fw/* paths that do not exist; `fileExists` decides which of them "exist".
const FIXTURES = path.join(__dirname, 'test-fixtures', 'firmware');
const share = path.join(FIXTURES, 'share');
const etc = path.join(FIXTURES, 'etc');
const user = path.join(FIXTURES, 'user');
const ALL = [share, etc, user];

const FW_FILES = new Set([
  '/fw/arm-code.fd',
  '/fw/arm-vars.fd',
  '/fw/sb-ms-code.fd',
  '/fw/sb-ms-vars.fd',
  '/fw/sb-code.fd',
  '/fw/sev.fd',
  '/fw/none.fd',
  '/fw/sev-es-code.fd',
  '/fw/sev-es-vars.fd',
  '/fw/bios.bin',
  '/fw/bios-vars.fd',
  '/fw/vars.fd',
  '/fw/masked-code.fd',
  '/fw/plain-code.fd',
  '/fw/i440fx-code.fd',
  '/fw/user-code.qcow2',
  '/fw/user-vars.qcow2',
]);
const exists = (p: string) => FW_FILES.has(p);
const existsExcept = (missing: string) => (p: string) => p !== missing && exists(p);

describe('findUefiFirmware with fixture descriptors', () => {
  it('lists descriptors by file name, with overrides and masks applied', async () => {
    const names = (await listDescriptors(ALL)).map((f) => path.relative(FIXTURES, f));
    expect(names).toEqual([
      'share/10-bios.json',
      'share/20-arm.json',
      'share/40-secure-enrolled.json',
      'share/45-memory.json',
      'share/46-sev-es.json',
      'share/47-broken.json',
      'share/50-secure.json',
      'share/52-missing-file.json',
      'user/60-plain.json',
      'share/70-i440fx.json',
    ]);
  });

  it('skips BIOS, Secure Boot, memory-mapped, SEV-ES, broken and missing-file descriptors, and takes the user override', async () => {
    expect(await findUefiFirmware('x86_64', { dirs: ALL, fileExists: exists })).toEqual({
      code: '/fw/user-code.qcow2',
      codeFormat: 'qcow2',
      varsTemplate: '/fw/user-vars.qcow2',
      varsFormat: 'qcow2',
      secureBoot: false,
      source: path.join(user, '60-plain.json'),
    });
  });

  it('uses the general file when there is no override', async () => {
    const fw = await findUefiFirmware('x86_64', { dirs: [share, etc], fileExists: exists });
    expect(fw?.code).toBe('/fw/plain-code.fd');
    expect(fw?.source).toBe(path.join(share, '60-plain.json'));
  });

  it('an empty file masks the descriptor of the same name', async () => {
    // Without etc/ the 55 descriptor is visible and wins (it sorts first).
    expect((await findUefiFirmware('x86_64', { dirs: [share], fileExists: exists }))?.code).toBe('/fw/masked-code.fd');
    expect((await findUefiFirmware('x86_64', { dirs: [share, etc], fileExists: exists }))?.code).toBe('/fw/plain-code.fd');
  });

  it('takes a descriptor whose files exist: the missing-file one is used once its file appears', async () => {
    const withMissing = (p: string) => p === '/fw/missing-code.fd' || exists(p);
    expect((await findUefiFirmware('x86_64', { dirs: [share, etc], fileExists: withMissing }))?.code).toBe('/fw/missing-code.fd');
    // The vars template must exist too; the overridden share/60-plain.json is not consulted then.
    expect(await findUefiFirmware('x86_64', { dirs: ALL, fileExists: existsExcept('/fw/user-vars.qcow2') })).toBeNull();
  });

  it('picks Secure Boot builds only when asked, first by file name', async () => {
    const fw = await findUefiFirmware('x86_64', { dirs: ALL, secureBoot: true, fileExists: exists });
    expect(fw).toMatchObject({ code: '/fw/sb-ms-code.fd', varsTemplate: '/fw/sb-ms-vars.fd', secureBoot: true });
    const next = await findUefiFirmware('x86_64', { dirs: ALL, secureBoot: true, fileExists: existsExcept('/fw/sb-ms-code.fd') });
    expect(next).toMatchObject({ code: '/fw/sb-code.fd', secureBoot: true, source: path.join(share, '50-secure.json') });
  });

  it('matches the machine glob against versioned names and aliases', async () => {
    expect((await findUefiFirmware('x86_64', { dirs: ALL, machine: 'pc-q35-7.2', fileExists: exists }))?.code).toBe('/fw/user-code.qcow2');
    expect((await findUefiFirmware('x86_64', { dirs: ALL, machine: 'pc-i440fx-7.2', fileExists: exists }))?.code).toBe('/fw/i440fx-code.fd');
    expect((await findUefiFirmware('x86_64', { dirs: ALL, machine: 'pc', fileExists: exists }))?.code).toBe('/fw/i440fx-code.fd');
    expect(await findUefiFirmware('x86_64', { dirs: ALL, machine: 'microvm', fileExists: exists })).toBeNull();
  });

  it('matches the target architecture', async () => {
    expect(await findUefiFirmware('aarch64', { dirs: ALL, fileExists: exists })).toMatchObject({
      code: '/fw/arm-code.fd',
      source: path.join(share, '20-arm.json'),
    });
    expect((await findUefiFirmware('aarch64', { dirs: ALL, machine: 'virt-7.2', fileExists: exists }))?.code).toBe('/fw/arm-code.fd');
    expect(await findUefiFirmware('aarch64', { dirs: [user, etc], fileExists: exists })).toBeNull();
    expect(await findUefiFirmware('aarch64', { dirs: ALL, secureBoot: true, fileExists: exists })).toBeNull();
  });
});

describe('fallback paths', () => {
  it('finds Fedora-style images when no descriptor matches', async () => {
    const files = new Set(['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd']);
    expect(await findUefiFirmware('x86_64', { dirs: [], fileExists: (p) => files.has(p) })).toEqual({
      code: '/usr/share/edk2/ovmf/OVMF_CODE.fd',
      codeFormat: 'raw',
      varsTemplate: '/usr/share/edk2/ovmf/OVMF_VARS.fd',
      varsFormat: 'raw',
      secureBoot: false,
      source: 'fallback:/usr/share/edk2/ovmf/OVMF_CODE.fd',
    });
  });

  it('finds Homebrew edk2 images next to the prefix firmware dir', async () => {
    const dir = '/opt/homebrew/Cellar/qemu/9.2.0/share/qemu/firmware';
    const files = new Set([
      '/opt/homebrew/Cellar/qemu/9.2.0/share/qemu/edk2-aarch64-code.fd',
      '/opt/homebrew/Cellar/qemu/9.2.0/share/qemu/edk2-arm-vars.fd',
    ]);
    const fw = await findUefiFirmware('aarch64', { dirs: [dir], fileExists: (p) => files.has(p) });
    expect(fw?.source).toBe('fallback:/opt/homebrew/Cellar/qemu/9.2.0/share/qemu/edk2-aarch64-code.fd');
    expect(fw?.varsTemplate).toBe('/opt/homebrew/Cellar/qemu/9.2.0/share/qemu/edk2-arm-vars.fd');
    expect(await findUefiFirmware('x86_64', { dirs: [dir], fileExists: (p) => files.has(p) })).toBeNull();
  });

  it('returns null when nothing exists', async () => {
    expect(await findUefiFirmware('x86_64', { dirs: ALL, fileExists: () => false })).toBeNull();
  });
});

describe('firmwareSearchDirs', () => {
  let tmp: string | null = null;
  afterEach(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    tmp = null;
  });

  it('orders distro, package prefix, admin, user; resolves a symlinked binary to its real prefix', async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-fw-'));
    const cellarBin = path.join(tmp, 'Cellar', 'qemu', '9.2.0', 'bin');
    fs.mkdirSync(cellarBin, { recursive: true });
    fs.writeFileSync(path.join(cellarBin, 'qemu-system-aarch64'), '');
    fs.mkdirSync(path.join(tmp, 'bin'));
    fs.symlinkSync(path.join(cellarBin, 'qemu-system-aarch64'), path.join(tmp, 'bin', 'qemu-system-aarch64'));
    const real = fs.realpathSync(tmp);
    expect(await firmwareSearchDirs({ HOME: '/home/u' }, 'darwin', path.join(tmp, 'bin', 'qemu-system-aarch64'))).toEqual([
      '/usr/share/qemu/firmware',
      path.join(real, 'Cellar', 'qemu', '9.2.0', 'share', 'qemu', 'firmware'),
      '/etc/qemu/firmware',
      '/home/u/.config/qemu/firmware',
    ]);
  });

  it('honours XDG_CONFIG_HOME and drops duplicates', async () => {
    expect(await firmwareSearchDirs({ HOME: '/home/u', XDG_CONFIG_HOME: '/cfg' }, 'linux', '/usr/bin/qemu-system-x86_64')).toEqual([
      '/usr/share/qemu/firmware',
      '/etc/qemu/firmware',
      '/cfg/qemu/firmware',
    ]);
    // A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored.
    expect((await firmwareSearchDirs({ HOME: '/home/u', XDG_CONFIG_HOME: 'cfg' }, 'linux', null)).at(-1)).toBe('/home/u/.config/qemu/firmware');
  });

  it('globMatch handles * and ? and escapes the rest', () => {
    expect(globMatch('pc-q35-*', 'pc-q35-7.2')).toBe(true);
    expect(globMatch('pc-q35-*', 'pc-i440fx-7.2')).toBe(false);
    expect(globMatch('virt-?.?', 'virt-7.2')).toBe(true);
    expect(globMatch('pc.q35', 'pcXq35')).toBe(false);
  });
});

describe('on this machine (Debian 12, ovmf installed)', () => {
  let dirs: string[] = [];
  beforeAll(async () => {
    dirs = await firmwareSearchDirs(process.env, 'linux', '/usr/bin/qemu-system-x86_64');
  });

  it('finds OVMF_CODE_4M.fd through 60-edk2-x86_64.json', async () => {
    expect(await findUefiFirmware('x86_64', { dirs, machine: 'pc-q35-7.2' })).toEqual({
      code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
      codeFormat: 'raw',
      varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd',
      varsFormat: 'raw',
      secureBoot: false,
      source: '/usr/share/qemu/firmware/60-edk2-x86_64.json',
    });
  });

  it('finds the MS-enrolled Secure Boot build when asked', async () => {
    expect(await findUefiFirmware('x86_64', { dirs, secureBoot: true })).toMatchObject({
      code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd',
      varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
      secureBoot: true,
      source: '/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json',
    });
  });

  it('falls back to the Debian path when the descriptors are gone', async () => {
    expect((await findUefiFirmware('x86_64', { dirs: [] }))?.source).toBe('fallback:/usr/share/OVMF/OVMF_CODE_4M.fd');
  });
});
