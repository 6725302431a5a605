/**
 * The argv builder: golden files pin the whole command line for each fixture config on each host
 * kind; unit tests pin the rules (escaping, loopback-only forwards, no TCP listener, errors); one
 * real check runs QEMU 7.2 with a built argv to prove the syntax is real.
 *
 * UPDATE_GOLDEN=1 npx vitest run main/services/qemu/argv.test.ts   rewrites the golden files.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, VivariumError } from '../../common/errors';
import type { HostCapabilities } from '../../common/models/host';
import { CONFIG_VERSION, VmConfig, type VmConfigInput } from '../../common/models/vm-config';
import { Layout, ensurePrivateDir } from '../paths';
import { buildQemuArgs, escapeOptionValue, tcgTranslationCacheMiB, type BuiltArgv } from './argv';
import { HOST_KINDS, HOST_KIND_NAMES, type HostKind } from './test-fixtures/host-kinds';
import { vcpuLimitOnHost } from '../../common/models/machine-limits';

const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

// Fixed fake paths: bundles under the XDG data dir, sockets under a short runtime dir.
const HOME = '/home/u/.local/share/vivarium';
const RUNTIME_ROOT = '/run/user/1000/vivarium/abcd1234';
const layout = new Layout(HOME, RUNTIME_ROOT);

type FixtureInput = Omit<VmConfigInput, 'version' | 'createdAt'>;

/** Fixtures go through the real schema, so defaults are filled exactly as on load. */
function vm(input: FixtureInput): VmConfig {
  return VmConfig.parse({ version: CONFIG_VERSION, createdAt: '2025-01-01T00:00:00.000Z', ...input });
}

const FIXTURES = {
  'minimal-bios-disk': vm({
    id: '0b7e1f2a-3c4d-4e5f-8a6b-7c8d9e0f1a2b',
    name: 'Minimal',
    arch: 'x86_64',
    cpus: 2,
    memoryMiB: 2048,
    disks: [{ id: 'disk0', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' }],
    network: { mac: '52:54:00:0b:7e:1f' },
  }),
  'uefi-cdrom-forwards': vm({
    id: '5d6e7f80-9a1b-4c2d-9e3f-405162738495',
    name: 'Installer',
    arch: 'x86_64',
    machine: 'pc-q35-7.2',
    cpus: 4,
    memoryMiB: 4096,
    firmware: 'uefi',
    uefiVars: 'efivars.qcow2',
    disks: [
      { id: 'disk0', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' },
      // An external image the user pointed at, read-only, with a comma in its path.
      { id: 'disk1', source: { path: '/home/u/Images/data,v2.raw' }, format: 'raw', readOnly: true },
    ],
    cdroms: [{ id: 'cd0', path: '/home/u/Downloads/debian-12.8.0-amd64-netinst.iso' }],
    network: {
      mac: '52:54:00:5d:6e:7f',
      forwards: [
        { protocol: 'tcp', hostPort: 2222, guestPort: 22 },
        { protocol: 'tcp', hostPort: 8080, guestPort: 80 },
        { protocol: 'udp', hostPort: 5353, guestPort: 53 },
      ],
    },
    extraArgs: ['-global', 'ICH9-LPC.disable_s3=1'],
  }),
  'kernel-headless': vm({
    id: 'a1b2c3d4-e5f6-4789-abcd-ef0123456789',
    name: 'Kernel',
    arch: 'x86_64',
    cpus: 1,
    memoryMiB: 512,
    kernel: {
      path: '/home/u/kernels/vmlinuz-6.1',
      initrd: '/home/u/kernels/initrd.img-6.1',
      append: 'console=ttyS0 root=/dev/vda rw quiet panic=-1 opts=a,b',
    },
    disks: [{ id: 'disk0', source: { bundle: 'root.raw' }, format: 'raw' }],
    network: { mode: 'none', mac: '52:54:00:a1:b2:c3' },
    display: 'none',
  }),
  'aarch64-uefi': vm({
    id: 'c0ffee00-1234-4abc-8def-0123456789ab',
    name: 'Arm',
    arch: 'aarch64',
    cpus: 4,
    memoryMiB: 4096,
    firmware: 'uefi',
    uefiVars: 'efivars.qcow2',
    disks: [{ id: 'disk0', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' }],
    cdroms: [{ id: 'cd0', path: '/home/u/Downloads/debian-12.8.0-arm64-netinst.iso' }],
    network: { mac: '52:54:00:c0:ff:ee', forwards: [{ protocol: 'tcp', hostPort: 2200, guestPort: 22 }] },
  }),
  // A linked clone with an external snapshot on top: an explicit chain, nearest layer first, ending
  // in a read-only raw base outside the bundle (with a comma in its path).
  'linked-clone': vm({
    id: '11c1a2b3-c4d5-4e6f-8a7b-8c9d0e1f2a3b',
    name: 'Clone',
    arch: 'x86_64',
    cpus: 2,
    memoryMiB: 1024,
    disks: [
      {
        id: 'disk0',
        role: 'system',
        source: { bundle: 'disk0.qcow2' },
        format: 'qcow2',
        backing: [
          { source: { bundle: 'snap1.qcow2' }, format: 'qcow2' },
          { source: { path: '/home/u/Images/golden,base.raw' }, format: 'raw' },
        ],
      },
      { id: 'disk1', source: { bundle: 'data.qcow2' }, format: 'qcow2' },
    ],
    network: { mac: '52:54:00:11:c1:a2' },
    display: 'none',
  }),
  // A Windows-style installer VM (issue 9): the system disk on SATA, a data disk on NVMe, the
  // installer and a driver ISO in two CD drives and a third drive left empty.
  'sata-nvme-cds': vm({
    id: '7a8b9c0d-1e2f-4a3b-8c4d-5e6f708192a3',
    name: 'Windows',
    arch: 'x86_64',
    cpus: 2,
    memoryMiB: 4096,
    firmware: 'uefi',
    uefiVars: 'efivars.qcow2',
    disks: [
      { id: 'disk0', role: 'system', bus: 'sata', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' },
      { id: 'disk1', bus: 'nvme', source: { bundle: 'disk1.qcow2' }, format: 'qcow2' },
      { id: 'disk2', bus: 'sata', source: { bundle: 'disk2.qcow2' }, format: 'qcow2' },
    ],
    cdroms: [
      { id: 'cd0', path: '/home/u/Downloads/Win11_24H2_English_x64.iso' },
      { id: 'cd1', path: '/home/u/Downloads/virtio-win-0.1.262.iso' },
      { id: 'cd2', path: null },
    ],
    network: { mac: '52:54:00:7a:8b:9c' },
  }),
  // aarch64: SATA needs an added ich9-ahci; the CDs stay on virtio-scsi.
  'aarch64-sata-cds': vm({
    id: 'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6',
    name: 'ArmSata',
    arch: 'aarch64',
    cpus: 2,
    memoryMiB: 2048,
    firmware: 'uefi',
    uefiVars: 'efivars.qcow2',
    disks: [
      { id: 'disk0', role: 'system', bus: 'nvme', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' },
      { id: 'disk1', bus: 'sata', source: { bundle: 'disk1.qcow2' }, format: 'qcow2' },
    ],
    cdroms: [
      { id: 'cd0', path: '/home/u/Downloads/debian-12.8.0-arm64-netinst.iso' },
      { id: 'cd1', path: null },
    ],
    network: { mac: '52:54:00:d1:e2:f3' },
    display: 'none',
  }),
} as const satisfies Record<string, VmConfig>;
type FixtureName = keyof typeof FIXTURES;
const FIXTURE_NAMES = Object.keys(FIXTURES) as FixtureName[];

function build(config: VmConfig, caps: HostCapabilities): BuiltArgv {
  return buildQemuArgs(config, caps, layout.paths(config.id));
}

/** Tries a build; returns the VivariumError instead of throwing (anything else is a bug). */
function buildOrError(config: VmConfig, caps: HostCapabilities): BuiltArgv | VivariumError {
  try {
    return build(config, caps);
  } catch (e) {
    if (e instanceof VivariumError) return e;
    throw e;
  }
}

function render(result: BuiltArgv | VivariumError): string {
  return result instanceof VivariumError ? `ERROR: ${result.message}\n` : `${[result.binary, ...result.args].join('\n')}\n`;
}

function goldenFile(fixture: string, host: HostKind): string {
  return path.join(GOLDEN_DIR, `${fixture}.${host}.txt`);
}

function withConfig(base: VmConfig, patch: Partial<VmConfigInput>): VmConfig {
  return VmConfig.parse({ ...base, ...patch });
}

/** The value following the first occurrence of `flag`, or all of them. */
function valuesOf(args: readonly string[], flag: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    const next = args[i + 1];
    if (a === flag && next !== undefined) out.push(next);
  });
  return out;
}

function expectError(fn: () => unknown, code: ErrorCode, ...fragments: string[]): VivariumError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a VivariumError').toBeInstanceOf(VivariumError);
  const err = caught as VivariumError;
  expect(err.code).toBe(code);
  for (const f of fragments) expect(err.message).toContain(f);
  return err;
}

// ---- golden ------------------------------------------------------------------------------------

describe('golden argv (fixture × host kind)', () => {
  if (UPDATE) fs.mkdirSync(GOLDEN_DIR, { recursive: true });

  for (const fixture of FIXTURE_NAMES) {
    for (const host of HOST_KIND_NAMES) {
      it(`${fixture} on ${host}`, () => {
        const actual = render(buildOrError(FIXTURES[fixture], HOST_KINDS[host]));
        const file = goldenFile(fixture, host);
        if (UPDATE) {
          fs.writeFileSync(file, actual);
          return;
        }
        expect(fs.existsSync(file), `${file} is missing: run UPDATE_GOLDEN=1 npx vitest run main/services/qemu/argv.test.ts`).toBe(true);
        // A string comparison, so a failure prints a line diff (one arg per line).
        expect(actual).toBe(fs.readFileSync(file, 'utf8'));
      });
    }
  }

  it('has no stale golden files', () => {
    const expected = new Set(FIXTURE_NAMES.flatMap((f) => HOST_KIND_NAMES.map((h) => path.basename(goldenFile(f, h)))));
    const present = fs.readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.txt'));
    const stale = present.filter((f) => !expected.has(f));
    if (UPDATE) for (const f of stale) fs.rmSync(path.join(GOLDEN_DIR, f));
    else expect(stale).toEqual([]);
  });

  it('covers both outcomes: most combinations run, the impossible ones are errors', () => {
    const results = FIXTURE_NAMES.flatMap((f) => HOST_KIND_NAMES.map((h) => [`${f}.${h}`, buildOrError(FIXTURES[f], HOST_KINDS[h])] as const));
    const errors = results.filter(([, r]) => r instanceof VivariumError).map(([n]) => n);
    expect(errors.sort()).toEqual(['aarch64-sata-cds.linux-x86_64-kvm', 'aarch64-uefi.linux-x86_64-kvm', 'sata-nvme-cds.linux-aarch64-kvm', 'uefi-cdrom-forwards.linux-aarch64-kvm']);
  });
});

// ---- the rules ---------------------------------------------------------------------------------

/** Every built argv of every fixture on every host, for the cross-cutting checks. */
function allBuilt(): { readonly name: string; readonly built: BuiltArgv }[] {
  return FIXTURE_NAMES.flatMap((f) =>
    HOST_KIND_NAMES.flatMap((h) => {
      const r = buildOrError(FIXTURES[f], HOST_KINDS[h]);
      return r instanceof VivariumError ? [] : [{ name: `${f} on ${h}`, built: r }];
    }),
  );
}

/**
 * Finds anything that would make QEMU listen on (or talk) TCP: a `tcp:` outside a loopback
 * hostfwd, a VNC display that is not `unix:`, a socket chardev without `path=`, a gdb stub,
 * a TCP monitor or migration, a VNC websocket.
 */
function tcpProblems(args: readonly string[]): string[] {
  const problems: string[] = [];
  args.forEach((a, i) => {
    const prev = args[i - 1];
    const withoutForwards = a.replace(/(^|,)hostfwd=(tcp|udp):127\.0\.0\.1:\d+-:\d+/g, '');
    if (/hostfwd=/.test(withoutForwards)) problems.push(`non-loopback forward: ${a}`);
    if (/tcp:/.test(withoutForwards)) problems.push(`tcp: in ${a}`);
    if (prev === '-vnc' && !a.startsWith('unix:')) problems.push(`VNC not on a unix socket: ${a}`);
    if (/websocket=/.test(a)) problems.push(`websocket: ${a}`);
    if (prev === '-chardev' && a.startsWith('socket') && !/(^|,)path=/.test(a)) problems.push(`socket chardev without path: ${a}`);
    if (/(^|,)(host|port)=/.test(a) && prev !== '-device') problems.push(`host/port option: ${a}`);
    if (a === '-s' || a === '-gdb' || a === '-qmp' || a === '-monitor' || a === '-incoming' || a === '-spice') {
      problems.push(`listener flag ${a}`);
    }
  });
  return problems;
}

describe('no TCP listener', () => {
  it('the checker catches TCP listeners (so the real check can fail)', () => {
    expect(tcpProblems(['-vnc', '127.0.0.1:0'])).not.toEqual([]);
    expect(tcpProblems(['-vnc', ':1'])).not.toEqual([]);
    expect(tcpProblems(['-chardev', 'socket,id=qmp,host=127.0.0.1,port=4444,server=on'])).not.toEqual([]);
    expect(tcpProblems(['-netdev', 'user,id=net0,hostfwd=tcp::2222-:22'])).not.toEqual([]);
    expect(tcpProblems(['-netdev', 'user,id=net0,hostfwd=tcp:0.0.0.0:2222-:22'])).not.toEqual([]);
    expect(tcpProblems(['-gdb', 'tcp::1234'])).not.toEqual([]);
    expect(tcpProblems(['-netdev', 'user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22'])).toEqual([]);
  });

  it('appears in no argv of any fixture on any host', () => {
    const built = allBuilt();
    expect(built.length).toBe(31);
    for (const { name, built: b } of built) expect(tcpProblems(b.args), name).toEqual([]);
  });

  it('VNC, QMP, serial and agent are unix sockets in the runtime dir', () => {
    const paths = layout.paths(FIXTURES['uefi-cdrom-forwards'].id);
    const { args } = build(FIXTURES['uefi-cdrom-forwards'], HOST_KINDS['linux-x86_64-kvm']);
    expect(valuesOf(args, '-vnc')).toEqual([`unix:${paths.runtime.vnc}`]);
    const chardevs = valuesOf(args, '-chardev');
    // QMP, agent, serial on unix sockets; the clipboard agent is in-process (no listener at all).
    const sockets = chardevs.filter((c) => !c.startsWith('qemu-vdagent,'));
    expect(sockets).toHaveLength(3);
    expect(chardevs).toContain('qemu-vdagent,id=vdagent0,name=vdagent,clipboard=on,mouse=off');
    for (const c of sockets) expect(c).toMatch(new RegExp(`^socket,id=\\w+,path=${paths.runtime.dir}/`));
  });
});

describe('port forwards', () => {
  it('always bind 127.0.0.1, whatever the protocol and host kind', () => {
    const forwards = [
      { protocol: 'tcp', hostPort: 1, guestPort: 65535 },
      { protocol: 'udp', hostPort: 65535, guestPort: 1 },
      { protocol: 'tcp', hostPort: 3389, guestPort: 3389 },
    ] as const;
    for (const host of HOST_KIND_NAMES) {
      const base = FIXTURES['minimal-bios-disk'];
      const config = withConfig(base, { network: { ...base.network, forwards: [...forwards] } });
      const [netdev] = valuesOf(build(config, HOST_KINDS[host]).args, '-netdev');
      expect(netdev).toBe(
        'user,id=net0,hostfwd=tcp:127.0.0.1:1-:65535,hostfwd=udp:127.0.0.1:65535-:1,hostfwd=tcp:127.0.0.1:3389-:3389',
      );
    }
  });

  it('network "none" means no netdev and no NIC', () => {
    const { args } = build(FIXTURES['kernel-headless'], HOST_KINDS['linux-x86_64-kvm']);
    expect(args).not.toContain('-netdev');
    expect(args).not.toContain('-nic');
    expect(args.some((a) => a.includes('virtio-net'))).toBe(false);
  });
});

describe('option escaping', () => {
  it('doubles commas and leaves everything else alone', () => {
    expect(escapeOptionValue('/plain/path.qcow2')).toBe('/plain/path.qcow2');
    expect(escapeOptionValue('/a,b/c,,d,')).toBe('/a,,b/c,,,,d,,');
    expect(escapeOptionValue('x=y z')).toBe('x=y z');
  });

  it('escapes paths in -blockdev, -chardev and -vnc, but not in -kernel/-initrd/-append/-pidfile', () => {
    const odd = new Layout('/home/u/My VMs,old', '/run/user/1000/viv,run');
    const base = FIXTURES['kernel-headless'];
    const config = withConfig(base, {
      display: 'vnc',
      cdroms: [{ id: 'cd0', path: '/media/iso,s/boot.iso' }],
      kernel: { path: '/k,ernels/vmlinuz', initrd: '/k,ernels/initrd', append: 'console=ttyS0 a=b,c' },
    });
    const paths = odd.paths(config.id);
    const { args } = buildQemuArgs(config, HOST_KINDS['linux-x86_64-tcg'], paths);
    const blockdevs = valuesOf(args, '-blockdev');
    expect(blockdevs).toContain(`driver=file,filename=/home/u/My VMs,,old/vms/${config.id}/root.raw,node-name=disk0-file,cache.direct=on,aio=native,discard=unmap`);
    expect(blockdevs).toContain('driver=file,filename=/media/iso,,s/boot.iso,node-name=cd0-file,read-only=on');
    const runDir = paths.runtime.dir.replace(/,/g, ',,');
    expect(valuesOf(args, '-chardev')).toContain(`socket,id=qmp,path=${runDir}/qmp.sock,server=on,wait=off`);
    expect(valuesOf(args, '-chardev')).toContain(
      `socket,id=ser0,path=${runDir}/serial.sock,server=on,wait=off,logfile=/home/u/My VMs,,old/vms/${config.id}/serial.log,logappend=on`,
    );
    expect(valuesOf(args, '-vnc')).toEqual([`unix:${runDir}/vnc.sock`]);
    // Whole values, not option strings: QEMU takes them verbatim.
    expect(valuesOf(args, '-kernel')).toEqual(['/k,ernels/vmlinuz']);
    expect(valuesOf(args, '-initrd')).toEqual(['/k,ernels/initrd']);
    expect(valuesOf(args, '-append')).toEqual(['console=ttyS0 a=b,c']);
    expect(valuesOf(args, '-pidfile')).toEqual([paths.runtime.pidfile]);
  });

  it('passes the kernel command line as a single argv element', () => {
    const { args } = build(FIXTURES['kernel-headless'], HOST_KINDS['linux-x86_64-kvm']);
    const i = args.indexOf('-append');
    expect(args[i + 1]).toBe('console=ttyS0 root=/dev/vda rw quiet panic=-1 opts=a,b');
    expect(args[i + 2]).toBe('-object');
  });
});

describe('accelerator', () => {
  it('auto picks the hypervisor where usable, TCG otherwise', () => {
    const c = FIXTURES['minimal-bios-disk'];
    expect(build(c, HOST_KINDS['linux-x86_64-kvm']).accel).toBe('kvm');
    expect(build(c, HOST_KINDS['linux-x86_64-tcg']).accel).toBe('tcg');
    expect(build(c, HOST_KINDS['darwin-x86_64-hvf']).accel).toBe('hvf');
    expect(build(c, HOST_KINDS['darwin-arm64-hvf']).accel).toBe('tcg');
    expect(build(FIXTURES['aarch64-uefi'], HOST_KINDS['darwin-arm64-hvf']).accel).toBe('hvf');
  });

  it('kvm/hvf use the host CPU, TCG uses max with MTTCG and a bounded translation cache', () => {
    const c = FIXTURES['minimal-bios-disk'];
    const kvm = build(c, HOST_KINDS['linux-x86_64-kvm']).args;
    expect(valuesOf(kvm, '-accel')).toEqual(['kvm']);
    expect(valuesOf(kvm, '-cpu')).toEqual(['host']);
    const tcg = build(c, HOST_KINDS['linux-x86_64-tcg']).args;
    expect(valuesOf(tcg, '-accel')).toEqual(['tcg,thread=multi,tb-size=1024']);
    expect(valuesOf(tcg, '-cpu')).toEqual(['max']);
    expect(valuesOf(build(c, HOST_KINDS['darwin-x86_64-hvf']).args, '-cpu')).toEqual(['host,-pdpe1gb,-avx512vl']);
  });

  it('sizes the TCG translation cache to the guest RAM within 256 MiB..1 GiB (QEMU 7.2 default)', () => {
    expect(tcgTranslationCacheMiB(16)).toBe(256);
    expect(tcgTranslationCacheMiB(512)).toBe(512);
    expect(tcgTranslationCacheMiB(1024)).toBe(1024);
    expect(tcgTranslationCacheMiB(1536)).toBe(1024);
    expect(tcgTranslationCacheMiB(65536)).toBe(1024);
  });

  it('forced KVM where KVM is unusable throws, quoting the reason', () => {
    const config = withConfig(FIXTURES['minimal-bios-disk'], { accel: 'kvm' });
    const caps = HOST_KINDS['linux-x86_64-tcg'];
    const reason = caps.accels.x86_64?.find((a) => a.accel === 'kvm')?.reason ?? '';
    expect(reason).toContain('kvm_pvm');
    expectError(() => build(config, caps), ErrorCode.Unsupported, 'set to use KVM', reason, 'Set the VM\'s accelerator to "auto" to use TCG emulation instead.');
  });

  it('forced KVM is allowed where the probe marks it forceable (kvm_pvm), while auto stays on TCG', () => {
    const base = HOST_KINDS['linux-x86_64-tcg'];
    const caps = {
      ...base,
      accels: { ...base.accels, x86_64: (base.accels.x86_64 ?? []).map((a) => (a.accel === 'kvm' ? { ...a, forceable: true } : a)) },
    };
    const forced = build(withConfig(FIXTURES['minimal-bios-disk'], { accel: 'kvm' }), caps);
    expect(forced.accel).toBe('kvm');
    expect(valuesOf(forced.args, '-cpu')).toEqual(['host']);
    expect(build(withConfig(FIXTURES['minimal-bios-disk'], { accel: 'auto' }), caps).accel).toBe('tcg');
  });

  it('forced KVM for a foreign-arch guest throws with the probe\'s reason', () => {
    const config = withConfig(FIXTURES['minimal-bios-disk'], { accel: 'kvm' });
    expectError(() => build(config, HOST_KINDS['linux-aarch64-kvm']), ErrorCode.Unsupported, 'only guests of the host\'s own architecture');
  });

  it('forcing an accelerator the host does not have at all throws', () => {
    const config = withConfig(FIXTURES['minimal-bios-disk'], { accel: 'hvf' });
    expectError(() => build(config, HOST_KINDS['linux-x86_64-kvm']), ErrorCode.Unsupported, 'does not offer', '"auto"');
  });

  it('forced TCG on a KVM host runs TCG', () => {
    const config = withConfig(FIXTURES['minimal-bios-disk'], { accel: 'tcg' });
    const b = build(config, HOST_KINDS['linux-x86_64-kvm']);
    expect(b.accel).toBe('tcg');
    expect(valuesOf(b.args, '-cpu')).toEqual(['max']);
  });

  it('a binary built without the accelerator is refused', () => {
    const base = HOST_KINDS['linux-x86_64-kvm'];
    const bin = base.binaries.x86_64;
    if (!bin) throw new Error('fixture');
    const caps: HostCapabilities = { ...base, binaries: { x86_64: { ...bin, accels: ['tcg'] } } };
    expectError(() => build(FIXTURES['minimal-bios-disk'], caps), ErrorCode.Unsupported, 'was built without KVM');
  });
});

describe('host errors', () => {
  it('no QEMU for the arch: qemu-missing with the package to install', () => {
    const err = expectError(() => build(FIXTURES['aarch64-uefi'], HOST_KINDS['linux-x86_64-kvm']), ErrorCode.QemuMissing, 'qemu-system-aarch64', 'apt install qemu-system-arm');
    expect(err.message).toContain('vivarium doctor');
    const mac: HostCapabilities = { ...HOST_KINDS['darwin-arm64-hvf'], binaries: {} };
    expectError(() => build(FIXTURES['minimal-bios-disk'], mac), ErrorCode.QemuMissing, 'brew install qemu');
  });

  it('UEFI without firmware: says what to install, and offers BIOS on x86', () => {
    expectError(() => build(FIXTURES['uefi-cdrom-forwards'], HOST_KINDS['linux-aarch64-kvm']), ErrorCode.Unsupported, 'no UEFI firmware for x86_64', 'apt install ovmf', '"bios"');
    const caps: HostCapabilities = { ...HOST_KINDS['linux-aarch64-kvm'], firmware: {} };
    const err = expectError(() => build(FIXTURES['aarch64-uefi'], caps), ErrorCode.Unsupported, 'qemu-efi-aarch64');
    expect(err.message).not.toContain('"bios"');
  });

  it('UEFI without a variable store in the config is invalid-state', () => {
    const config = withConfig(FIXTURES['uefi-cdrom-forwards'], { uefiVars: null });
    expectError(() => build(config, HOST_KINDS['linux-x86_64-kvm']), ErrorCode.InvalidState, 'uefiVars');
  });

  it('aarch64 with BIOS firmware: needs UEFI (unless it boots a kernel directly)', () => {
    const config = withConfig(FIXTURES['aarch64-uefi'], { firmware: 'bios', uefiVars: null });
    expectError(() => build(config, HOST_KINDS['linux-aarch64-kvm']), ErrorCode.Unsupported, 'need UEFI', '"uefi"');
    const kernelBoot = withConfig(config, { kernel: { path: '/k/Image', initrd: null, append: 'console=ttyAMA0' } });
    const { args } = build(kernelBoot, HOST_KINDS['linux-aarch64-kvm']);
    expect(valuesOf(args, '-machine')).toEqual(['virt,highmem=on,gic-version=max,dump-guest-core=off']);
    expect(args.some((a) => a.includes('pflash'))).toBe(false);
    expect(valuesOf(args, '-kernel')).toEqual(['/k/Image']);
  });

  it('HVF before QEMU 8.0 has no GICv3: aarch64 stays on GICv2 and at most 8 vCPUs', () => {
    const base = HOST_KINDS['darwin-arm64-hvf'];
    const bin = base.binaries.aarch64;
    if (!bin) throw new Error('fixture');
    const caps: HostCapabilities = { ...base, binaries: { ...base.binaries, aarch64: { ...bin, version: { major: 7, minor: 2, micro: 0 } } } };
    const eight = withConfig(FIXTURES['aarch64-uefi'], { cpus: 8 });
    expect(valuesOf(build(eight, caps).args, '-machine')).toEqual(['virt,highmem=on,dump-guest-core=off,pflash0=fw-code,pflash1=fw-vars']);
    expectError(() => build(withConfig(eight, { cpus: 10 }), caps), ErrorCode.Unsupported, 'at most 8 CPUs', '8.0');
    // QEMU 9.2 (the fixture): GICv3, so 10 vCPUs are fine.
    expect(valuesOf(build(withConfig(eight, { cpus: 10 }), base).args, '-machine')[0]).toContain('gic-version=3');
  });
});

describe('machine, firmware and devices', () => {
  it('Secure Boot firmware turns SMM on and secures the varstore flash', () => {
    const base = HOST_KINDS['linux-x86_64-kvm'];
    const fw = base.firmware.x86_64;
    if (!fw) throw new Error('fixture');
    const caps: HostCapabilities = { ...base, firmware: { x86_64: { ...fw, secureBoot: true, code: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd' } } };
    const { args } = build(FIXTURES['uefi-cdrom-forwards'], caps);
    expect(valuesOf(args, '-machine')).toEqual(['pc-q35-7.2,smm=on,vmport=off,dump-guest-core=off,pflash0=fw-code,pflash1=fw-vars']);
    expect(valuesOf(args, '-global')).toContain('driver=cfi.pflash01,property=secure,value=on');
    // Without Secure Boot: SMM off, no -global for the flash.
    const plain = build(FIXTURES['uefi-cdrom-forwards'], base).args;
    expect(valuesOf(plain, '-machine')[0]).toContain('smm=off');
    expect(valuesOf(plain, '-global')).toEqual(['ICH9-LPC.disable_s3=1']);
  });

  it('BIOS guests get no pflash; UEFI guests get code read-only and the bundle varstore as qcow2', () => {
    const bios = build(FIXTURES['minimal-bios-disk'], HOST_KINDS['linux-x86_64-kvm']).args;
    expect(valuesOf(bios, '-machine')).toEqual(['q35,smm=off,vmport=off,dump-guest-core=off']);
    expect(bios.some((a) => a.includes('fw-'))).toBe(false);
    const id = FIXTURES['uefi-cdrom-forwards'].id;
    const uefi = valuesOf(build(FIXTURES['uefi-cdrom-forwards'], HOST_KINDS['linux-x86_64-kvm']).args, '-blockdev');
    expect(uefi.slice(0, 4)).toEqual([
      'driver=file,filename=/usr/share/OVMF/OVMF_CODE_4M.fd,node-name=fw-code-file,read-only=on',
      'driver=raw,file=fw-code-file,node-name=fw-code,read-only=on',
      `driver=file,filename=${HOME}/vms/${id}/efivars.qcow2,node-name=fw-vars-file`,
      '{"driver":"qcow2","file":"fw-vars-file","node-name":"fw-vars","backing":null}',
    ]);
  });

  it('boots the disks first (system disk first), then the CD, so a blank disk falls through to the installer; without a CD the first disk is 1', () => {
    const withCd = build(FIXTURES['uefi-cdrom-forwards'], HOST_KINDS['linux-x86_64-kvm']).args;
    expect(valuesOf(withCd, '-device').filter((d) => d.includes('bootindex'))).toEqual([
      'virtio-blk-pci,id=vda,drive=disk0,iothread=io0,bootindex=1',
      'virtio-blk-pci,id=vdb,drive=disk1,iothread=io0,bootindex=2',
      'ide-cd,id=cd0,bus=ide.0,drive=cd0,bootindex=3',
    ]);
    const noCd = build(FIXTURES['minimal-bios-disk'], HOST_KINDS['linux-x86_64-kvm']).args;
    expect(valuesOf(noCd, '-device').filter((d) => d.includes('bootindex'))).toEqual(['virtio-blk-pci,id=vda,drive=disk0,iothread=io0,bootindex=1']);
    expect(noCd).not.toContain('-boot');
  });

  it('follows an explicit boot order: CD first, the NIC (PXE) when asked, nothing left out boots; --boot-menu is -boot menu=on', () => {
    const base = FIXTURES['uefi-cdrom-forwards'];
    const cdFirst = build({ ...base, bootOrder: ['cd', 'disk', 'net'], bootMenu: true }, HOST_KINDS['linux-x86_64-kvm']).args;
    expect(valuesOf(cdFirst, '-device').filter((d) => d.includes('bootindex'))).toEqual([
      'virtio-blk-pci,id=vda,drive=disk0,iothread=io0,bootindex=2',
      'virtio-blk-pci,id=vdb,drive=disk1,iothread=io0,bootindex=3',
      'ide-cd,id=cd0,bus=ide.0,drive=cd0,bootindex=1',
      expect.stringMatching(/^virtio-net-pci,id=nic0,.*,bootindex=4$/),
    ]);
    expect(valuesOf(cdFirst, '-boot')).toEqual(['menu=on']);
    const netOnly = build({ ...base, bootOrder: ['net'] }, HOST_KINDS['linux-x86_64-kvm']).args;
    expect(valuesOf(netOnly, '-device').filter((d) => d.includes('bootindex'))).toEqual([expect.stringMatching(/^virtio-net-pci,.*bootindex=1$/)]);
  });

  it('a TPM is a swtpm side process started before QEMU (state in the bundle, socket in the runtime folder) and -tpmdev emulator + tpm-tis', () => {
    const caps = { ...HOST_KINDS['linux-x86_64-kvm'], swtpm: '/usr/bin/swtpm' };
    const plan = build({ ...FIXTURES['uefi-cdrom-forwards'], tpm: true }, caps);
    const id = FIXTURES['uefi-cdrom-forwards'].id;
    expect(plan.sideProcesses).toHaveLength(1);
    const side = plan.sideProcesses[0]!;
    expect(side.binary).toBe('/usr/bin/swtpm');
    expect(side.args.slice(0, 3)).toEqual(['socket', '--tpm2', '--tpmstate']);
    expect(side.args[3]).toBe(`dir=${HOME}/vms/${id}/tpm,mode=0600`);
    expect(side.args).toContain('--terminate');
    expect(side.stateDirs).toEqual([`${HOME}/vms/${id}/tpm`]);
    const sock = /path=([^,]+)/.exec(side.args[5]!)![1]!;
    expect(side.readyWhen).toEqual({ kind: 'file', path: sock });
    expect(valuesOf(plan.args, '-chardev')).toContain(`socket,id=chrtpm,path=${sock}`);
    expect(valuesOf(plan.args, '-tpmdev')).toEqual(['emulator,id=tpm0,chardev=chrtpm']);
    expect(valuesOf(plan.args, '-device')).toContain('tpm-tis,tpmdev=tpm0');
    expect(build(FIXTURES['uefi-cdrom-forwards'], caps).sideProcesses).toEqual([]);
    const missing = buildOrError({ ...FIXTURES['uefi-cdrom-forwards'], tpm: true }, { ...caps, swtpm: null });
    expect(missing).toBeInstanceOf(VivariumError);
    expect((missing as VivariumError).message).toContain('needs swtpm (the TPM emulator), and it was not found. Install it (Debian/Ubuntu: sudo apt install swtpm)');
  });

  it('aarch64 puts the CD on virtio-scsi and adds a USB keyboard; x86 does neither', () => {
    const arm = valuesOf(build(FIXTURES['aarch64-uefi'], HOST_KINDS['linux-aarch64-kvm']).args, '-device');
    expect(arm).toContain('virtio-scsi-pci,id=scsi0');
    expect(arm).toContain('scsi-cd,id=cd0,bus=scsi0.0,drive=cd0,bootindex=2');
    expect(arm).toContain('usb-kbd,bus=xhci.0');
    expect(arm).toContain('virtio-gpu-pci,id=video0');
    const x86 = valuesOf(build(FIXTURES['uefi-cdrom-forwards'], HOST_KINDS['linux-x86_64-kvm']).args, '-device');
    expect(x86.some((d) => d.startsWith('usb-kbd') || d.startsWith('virtio-scsi'))).toBe(false);
    expect(x86).toContain('virtio-vga,id=video0');
  });

  it('read-only disks are read-only on both nodes and get no discard', () => {
    const blockdevs = valuesOf(build(FIXTURES['uefi-cdrom-forwards'], HOST_KINDS['darwin-x86_64-hvf']).args, '-blockdev');
    expect(blockdevs).toContain('driver=file,filename=/home/u/Images/data,,v2.raw,node-name=disk1-file,read-only=on');
    expect(blockdevs).toContain('driver=raw,file=disk1-file,node-name=disk1,read-only=on');
  });

  it('O_DIRECT/native AIO and seccomp only where the host has them; process naming only on Linux', () => {
    const linux = build(FIXTURES['minimal-bios-disk'], HOST_KINDS['linux-x86_64-kvm']).args;
    expect(linux.join(' ')).toContain('aio=native');
    expect(linux).toContain('-sandbox');
    expect(valuesOf(linux, '-name')[0]).toBe(`guest=${FIXTURES['minimal-bios-disk'].id},process=qemu-0b7e1f2a,debug-threads=on`);
    const mac = build(FIXTURES['minimal-bios-disk'], HOST_KINDS['darwin-x86_64-hvf']).args;
    expect(mac.join(' ')).not.toContain('aio=native');
    expect(mac.join(' ')).not.toContain('cache.direct');
    expect(mac).not.toContain('-sandbox');
    expect(valuesOf(mac, '-name')).toEqual([`guest=${FIXTURES['minimal-bios-disk'].id}`]);
  });

  it('display none: -display none, no VNC, no video or USB input devices', () => {
    const { args } = build(FIXTURES['kernel-headless'], HOST_KINDS['linux-x86_64-kvm']);
    expect(valuesOf(args, '-display')).toEqual(['none']);
    expect(args).not.toContain('-vnc');
    expect(valuesOf(args, '-device').some((d) => /vga|gpu|xhci|usb/.test(d))).toBe(false);
  });

  it('startPaused adds -S; extra args come last, verbatim', () => {
    const config = FIXTURES['uefi-cdrom-forwards'];
    const paused = buildQemuArgs(config, HOST_KINDS['linux-x86_64-kvm'], layout.paths(config.id), { startPaused: true }).args;
    expect(paused.slice(-3)).toEqual(['-S', '-global', 'ICH9-LPC.disable_s3=1']);
    expect(build(config, HOST_KINDS['linux-x86_64-kvm']).args).not.toContain('-S');
  });

  it('is pure: the same inputs give the same argv, and inputs are not mutated', () => {
    const config = FIXTURES['aarch64-uefi'];
    const snapshot = JSON.stringify(config);
    const a = build(config, HOST_KINDS['darwin-arm64-hvf']);
    const b = build(config, HOST_KINDS['darwin-arm64-hvf']);
    expect(a).toEqual(b);
    expect(JSON.stringify(config)).toBe(snapshot);
  });
});

// ---- real QEMU ---------------------------------------------------------------------------------

const QEMU = '/usr/bin/qemu-system-x86_64';
const QEMU_IMG = '/usr/bin/qemu-img';
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

function findBootFile(pattern: RegExp): string | null {
  try {
    const hit = fs.readdirSync('/boot').find((f) => pattern.test(f));
    return hit ? path.join('/boot', hit) : null;
  } catch {
    return null;
  }
}
const KERNEL = findBootFile(/^vmlinuz-.*-cloud-amd64$/);
const INITRD = findBootFile(/^initrd\.img-/);
const missing = [!KERNEL && 'a Debian cloud kernel in /boot (apt install linux-image-cloud-amd64)', !fs.existsSync(QEMU) && QEMU, !fs.existsSync(QEMU_IMG) && QEMU_IMG].filter(Boolean);
const SKIP_REAL = missing.length > 0 ? ` [SKIPPED: needs ${missing.join(', ')}]` : '';

async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A minimal QMP client: greeting, capabilities, then one command at a time; events skipped. */
async function qmpQuery(socket: string, commands: readonly string[]): Promise<Record<string, unknown>> {
  const conn = net.connect(socket);
  const lines: Record<string, unknown>[] = [];
  const waiters: ((m: Record<string, unknown>) => void)[] = [];
  let buf = '';
  conn.setEncoding('utf8');
  conn.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as Record<string, unknown>;
      if ('event' in msg) continue;
      const w = waiters.shift();
      if (w) w(msg);
      else lines.push(msg);
    }
  });
  const next = () => new Promise<Record<string, unknown>>((resolve) => {
    const m = lines.shift();
    if (m) resolve(m);
    else waiters.push(resolve);
  });
  try {
    const greeting = await next();
    expect(greeting).toHaveProperty('QMP');
    conn.write('{"execute":"qmp_capabilities"}\n');
    expect(await next()).toHaveProperty('return');
    const out: Record<string, unknown> = {};
    for (const c of commands) {
      conn.write(`${JSON.stringify({ execute: c })}\n`);
      const reply = await next();
      expect(reply, c).toHaveProperty('return');
      out[c] = reply.return;
    }
    return out;
  } finally {
    conn.destroy();
  }
}

describe('real QEMU accepts the built argv', () => {
  let child: ChildProcess | null = null;
  let tmp: string | null = null;

  afterEach(async () => {
    const c = child;
    child = null;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGKILL');
      await exited;
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    tmp = null;
  });

  it.skipIf(SKIP_REAL !== '')(`kernel boot + disks + CD + UEFI + forward + VNC on linux-x86_64-tcg, paused, on QEMU 7.2${SKIP_REAL}`, async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-argv-'));
    // Commas in the library, the runtime dir and the kernel path: every escaping rule meets QEMU.
    const realLayout = new Layout(path.join(tmp, 'lib,rary'), path.join(tmp, 'run,time'));
    const id = '7e57a160-0000-4000-8000-00000000beef';
    const paths = realLayout.paths(id);
    fs.mkdirSync(paths.bundle.dir, { recursive: true });
    ensurePrivateDir(paths.runtime.dir);

    for (const d of ['disk0', 'disk2', 'disk3']) execFileSync(QEMU_IMG, ['create', '-q', '-f', 'qcow2', paths.bundle.file(`${d}.qcow2`), '64M']);
    const external = path.join(tmp, 'ext,ra.raw');
    fs.writeFileSync(external, Buffer.alloc(1024 * 1024));
    const iso = path.join(tmp, 'cd,rom.iso');
    fs.writeFileSync(iso, Buffer.alloc(2 * 1024 * 1024));
    const kernel = path.join(tmp, 'ker,nel');
    fs.symlinkSync(KERNEL as string, kernel);
    const uefi = fs.existsSync(OVMF_CODE) && fs.existsSync(OVMF_VARS);
    if (uefi) execFileSync(QEMU_IMG, ['convert', '-q', '-f', 'raw', '-O', 'qcow2', OVMF_VARS, paths.bundle.file('efivars.qcow2')]);

    const config = vm({
      id,
      name: 'Real',
      arch: 'x86_64',
      cpus: 2,
      memoryMiB: 256,
      firmware: uefi ? 'uefi' : 'bios',
      uefiVars: uefi ? 'efivars.qcow2' : null,
      kernel: { path: kernel, initrd: INITRD, append: 'console=ttyS0 panic=-1 x=a,b' },
      disks: [
        { id: 'disk0', source: { bundle: 'disk0.qcow2' }, format: 'qcow2' },
        { id: 'disk1', source: { path: external }, format: 'raw', readOnly: true },
        { id: 'disk2', bus: 'sata', source: { bundle: 'disk2.qcow2' }, format: 'qcow2' },
        { id: 'disk3', bus: 'nvme', source: { bundle: 'disk3.qcow2' }, format: 'qcow2' },
      ],
      // An installer, a driver ISO and an empty drive (issue 9).
      cdroms: [
        { id: 'cd0', path: iso },
        { id: 'cd1', path: iso },
        { id: 'cd2', path: null },
      ],
      network: { mac: '52:54:00:7e:57:a1', forwards: [{ protocol: 'tcp', hostPort: await freeTcpPort(), guestPort: 22 }] },
      display: 'vnc',
    });
    const fixture = HOST_KINDS['linux-x86_64-tcg'];
    const bin = fixture.binaries.x86_64;
    if (!bin) throw new Error('fixture has no x86_64 binary');
    const caps: HostCapabilities = {
      ...fixture,
      binaries: { x86_64: { ...bin, path: QEMU } },
      firmware: uefi ? { x86_64: { code: OVMF_CODE, codeFormat: 'raw', varsTemplate: OVMF_VARS, varsFormat: 'raw', secureBoot: false, source: 'test' } } : {},
    };
    const built = buildQemuArgs(config, caps, paths, { startPaused: true });
    expect(built.accel).toBe('tcg');
    expect(built.args).toContain('-sandbox');

    let stderr = '';
    const c = spawn(built.binary, [...built.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (d: string) => (stderr += d));
    await new Promise((r) => setTimeout(r, 1000));
    expect(c.exitCode, `QEMU exited early: ${stderr}`).toBeNull();
    expect(c.signalCode, `QEMU was killed: ${stderr}`).toBeNull();

    expect(fs.readFileSync(paths.runtime.pidfile, 'utf8').trim()).toBe(String(c.pid));
    for (const sock of [paths.runtime.qmp, paths.runtime.serial, paths.runtime.qga, paths.runtime.vnc]) {
      expect(fs.statSync(sock).isSocket(), sock).toBe(true);
    }
    const replies = await qmpQuery(paths.runtime.qmp, ['query-status', 'query-uuid', 'query-named-block-nodes', 'query-vnc', 'query-block']);
    expect(replies['query-status']).toMatchObject({ running: false, status: 'prelaunch' });
    expect(replies['query-uuid']).toEqual({ UUID: id });
    const nodes = (replies['query-named-block-nodes'] as { 'node-name': string }[]).map((n) => n['node-name']);
    expect(nodes).toEqual(expect.arrayContaining(['disk0', 'disk1', 'disk2', 'disk3', 'cd0', 'cd1', ...(uefi ? ['fw-code', 'fw-vars'] : [])]));
    // Each drive on its device: SATA on an AHCI port, NVMe on its controller, three CD drives (the
    // last empty, still there to take a CD while the VM runs).
    const blocks = replies['query-block'] as { qdev?: string; removable: boolean; inserted?: { 'node-name': string } }[];
    const byQdev = new Map(blocks.map((b) => [b.qdev, b]));
    expect(byQdev.get('sda')?.inserted?.['node-name']).toBe('disk2');
    expect(byQdev.get('nvme0')?.inserted?.['node-name']).toBe('disk3');
    expect(['cd0', 'cd1', 'cd2'].map((q) => [byQdev.get(q)?.removable, byQdev.get(q)?.inserted?.['node-name'] ?? null])).toEqual([
      [true, 'cd0'],
      [true, 'cd1'],
      [true, null],
    ]);
    expect(replies['query-vnc']).toMatchObject({ enabled: true, family: 'unix', service: paths.runtime.vnc });
    expect(stderr).not.toMatch(/error/i);
  });

  const ARM_MISSING = ['/usr/bin/qemu-system-aarch64', '/usr/share/AAVMF/AAVMF_CODE.fd', '/usr/share/AAVMF/AAVMF_VARS.fd', QEMU_IMG].filter((f) => !fs.existsSync(f));
  it.skipIf(ARM_MISSING.length > 0)(`aarch64 virt: an NVMe system disk, a SATA disk on the added ich9-ahci, two CD drives on virtio-scsi (one empty), paused${ARM_MISSING.length ? ` [SKIPPED: needs ${ARM_MISSING.join(', ')}]` : ''}`, async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-argv-arm-'));
    const realLayout = new Layout(path.join(tmp, 'lib'), path.join(tmp, 'run'));
    const config = withConfig(FIXTURES['aarch64-sata-cds'], { accel: 'tcg', memoryMiB: 512 });
    const paths = realLayout.paths(config.id);
    fs.mkdirSync(paths.bundle.dir, { recursive: true });
    ensurePrivateDir(paths.runtime.dir);
    for (const d of ['disk0', 'disk1']) execFileSync(QEMU_IMG, ['create', '-q', '-f', 'qcow2', paths.bundle.file(`${d}.qcow2`), '16M']);
    execFileSync(QEMU_IMG, ['convert', '-q', '-f', 'raw', '-O', 'qcow2', '/usr/share/AAVMF/AAVMF_VARS.fd', paths.bundle.file('efivars.qcow2')]);
    const iso = path.join(tmp, 'netinst.iso');
    fs.writeFileSync(iso, Buffer.alloc(2 * 1024 * 1024));
    const withIso = withConfig(config, { cdroms: [{ id: 'cd0', path: iso }, { id: 'cd1', path: null }] });
    const fixture = HOST_KINDS['linux-x86_64-tcg'];
    const caps: HostCapabilities = {
      ...fixture,
      binaries: { aarch64: { arch: 'aarch64', path: '/usr/bin/qemu-system-aarch64', version: { major: 7, minor: 2, micro: 0 }, accels: ['tcg'], cpuMax: { virt: 512 } } },
      accels: { aarch64: [{ accel: 'tcg', usable: true, reason: 'test' }] },
      firmware: { aarch64: { code: '/usr/share/AAVMF/AAVMF_CODE.fd', codeFormat: 'raw', varsTemplate: '/usr/share/AAVMF/AAVMF_VARS.fd', varsFormat: 'raw', secureBoot: false, source: 'test' } },
      nativeAio: false,
    };
    const built = buildQemuArgs(withIso, caps, paths, { startPaused: true });
    let stderr = '';
    const c = spawn(built.binary, [...built.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (d: string) => (stderr += d));
    for (let i = 0; i < 100 && !fs.existsSync(paths.runtime.qmp) && c.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    expect(c.exitCode, `QEMU exited early: ${stderr}`).toBeNull();
    const replies = await qmpQuery(paths.runtime.qmp, ['query-block']);
    const blocks = replies['query-block'] as { qdev?: string; removable: boolean; inserted?: { 'node-name': string } }[];
    const seen = Object.fromEntries(blocks.filter((b) => b.qdev && !b.qdev.startsWith('/machine/')).map((b) => [b.qdev, [b.removable, b.inserted?.['node-name'] ?? null]]));
    expect(seen).toEqual({ nvme0: [false, 'disk0'], sda: [false, 'disk1'], cd0: [true, 'cd0'], cd1: [true, null] });
  });
});

describe('real QEMU opens exactly the declared backing chain', () => {
  let child: ChildProcess | null = null;
  let tmp: string | null = null;

  afterEach(async () => {
    const c = child;
    child = null;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGKILL');
      await exited;
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    tmp = null;
  });

  it.skipIf(SKIP_REAL !== '')(`a chain whose headers lie: QEMU reads the declared base, never the header's file${SKIP_REAL}`, async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-chain-'));
    const realLayout = new Layout(path.join(tmp, 'lib'), path.join(tmp, 'run'));
    const id = '7e57a160-0000-4000-8000-0000000c4a17';
    const paths = realLayout.paths(id);
    fs.mkdirSync(paths.bundle.dir, { recursive: true });
    ensurePrivateDir(paths.runtime.dir);
    const img = (...a: string[]) => execFileSync(QEMU_IMG, a, { stdio: 'pipe' });
    // The declared base: raw, 0xab in its first 64 KiB. A decoy with 0xcd that the headers name.
    const base = path.join(tmp, 'base,1.raw');
    fs.writeFileSync(base, Buffer.alloc(4 * 1024 * 1024, 0xab));
    const decoy = path.join(tmp, 'decoy.raw');
    fs.writeFileSync(decoy, Buffer.alloc(4 * 1024 * 1024, 0xcd));
    const mid = paths.bundle.file('snap1.qcow2');
    const top = paths.bundle.file('disk0.qcow2');
    // Both overlays' headers point at the decoy; the config says top → mid → base.
    img('create', '-q', '-f', 'qcow2', '-b', decoy, '-F', 'raw', mid, '4M');
    img('create', '-q', '-f', 'qcow2', '-b', decoy, '-F', 'raw', top, '4M');
    const config = vm({
      id,
      name: 'Chain',
      arch: 'x86_64',
      cpus: 1,
      memoryMiB: 128,
      disks: [
        {
          id: 'disk0',
          role: 'system',
          source: { bundle: 'disk0.qcow2' },
          format: 'qcow2',
          backing: [
            { source: { bundle: 'snap1.qcow2' }, format: 'qcow2' },
            { source: { path: base }, format: 'raw' },
          ],
        },
      ],
      network: { mode: 'none', mac: '52:54:00:7e:57:a2' },
      display: 'none',
    });
    const fixture = HOST_KINDS['linux-x86_64-tcg'];
    const bin = fixture.binaries.x86_64;
    if (!bin) throw new Error('fixture has no x86_64 binary');
    const caps: HostCapabilities = { ...fixture, binaries: { x86_64: { ...bin, path: QEMU } }, firmware: {}, nativeAio: false };
    const built = buildQemuArgs(config, caps, paths, { startPaused: true });
    let stderr = '';
    let stdout = '';
    // HMP's qemu-io prints to QEMU's stdout on 7.2, not into the QMP reply.
    const c = spawn(built.binary, [...built.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (d: string) => (stderr += d));
    c.stdout?.setEncoding('utf8');
    c.stdout?.on('data', (d: string) => (stdout += d));
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(paths.runtime.qmp) && c.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(c.exitCode, `QEMU exited early: ${stderr}`).toBeNull();
    const replies = await qmpQuery(paths.runtime.qmp, ['query-named-block-nodes']);
    const nodes = replies['query-named-block-nodes'] as { 'node-name': string; file: string; ro: boolean; backing_file_depth: number }[];
    const byName = new Map(nodes.map((n) => [n['node-name'], n]));
    expect(byName.get('disk0-file')).toMatchObject({ file: top, ro: false });
    expect(byName.get('disk0-b0-file')).toMatchObject({ file: mid, ro: true });
    expect(byName.get('disk0-b1-file')).toMatchObject({ file: base, ro: true });
    expect(byName.get('disk0')).toMatchObject({ ro: false, backing_file_depth: 2 });
    expect(byName.get('disk0-b0')).toMatchObject({ ro: true, backing_file_depth: 1 });
    expect(byName.get('disk0-b1')).toMatchObject({ ro: true, backing_file_depth: 0 });
    expect(nodes.some((n) => n.file.includes('decoy'))).toBe(false);
    // What the guest would read: the base's bytes through both overlays, not the decoy's.
    const conn = net.connect(paths.runtime.qmp);
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      let sent = false;
      conn.setEncoding('utf8');
      conn.on('error', reject);
      conn.on('data', (d: string) => {
        buf += d;
        if (!sent && buf.includes('"QMP"')) {
          sent = true;
          conn.write('{"execute":"qmp_capabilities"}\n');
          conn.write(`${JSON.stringify({ execute: 'human-monitor-command', arguments: { 'command-line': 'qemu-io disk0 "read -P 0xab 0 64k"' } })}\n`);
        }
        if (/"return": ""/.test(buf)) resolve();
      });
    });
    conn.destroy();
    const readDeadline = Date.now() + 5000;
    while (!/read 65536\/65536|Pattern verification failed/.test(stdout) && Date.now() < readDeadline) await new Promise((r) => setTimeout(r, 20));
    expect(stdout).toMatch(/read 65536\/65536 bytes/);
    expect(stdout).not.toMatch(/Pattern verification failed/);
  });
});

describe('vCPU limits hold on real QEMU 7.2 (TCG)', () => {
  /** Starts QEMU paused with a built argv (no disks) and says whether it stayed up, with stderr. */
  async function starts(built: BuiltArgv, args: readonly string[]): Promise<{ readonly up: boolean; readonly stderr: string }> {
    const c = spawn(built.binary, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (d: string) => (stderr += d));
    const exited = new Promise((r) => c.once('exit', r));
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    const up = c.exitCode === null && c.signalCode === null;
    if (up) {
      c.kill('SIGKILL');
      await exited;
    }
    return { up, stderr };
  }

  it.skipIf(SKIP_REAL !== '')(`q35 starts with the limit (255) and QEMU itself refuses one more, which the builder refuses first with a sentence${SKIP_REAL}`, async () => {
    const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-cpus-'));
    try {
      const realLayout = new Layout(path.join(tmpDir, 'lib'), path.join(tmpDir, 'run'));
      const base = withConfig(FIXTURES['kernel-headless'], { disks: [], kernel: null, memoryMiB: 256 });
      const paths = realLayout.paths(base.id);
      fs.mkdirSync(paths.bundle.dir, { recursive: true });
      ensurePrivateDir(paths.runtime.dir);
      const fixture = HOST_KINDS['linux-x86_64-tcg'];
      const bin = fixture.binaries.x86_64;
      if (!bin) throw new Error('fixture has no x86_64 binary');
      const caps: HostCapabilities = { ...fixture, binaries: { x86_64: { ...bin, path: QEMU, cpuMax: { q35: 288, pc: 255 } } } };
      const at = buildQemuArgs(withConfig(base, { cpus: 255 }), caps, paths, { startPaused: true });
      const ok = await starts(at, at.args);
      expect(ok.up, ok.stderr).toBe(true);
      // The same line with 256: QEMU refuses it (so the limit is real, not a guess)…
      const over = at.args.map((a) => a.replace(/^255,sockets=1,cores=255,threads=1$/, '256,sockets=1,cores=256,threads=1'));
      expect(over).not.toEqual(at.args);
      const refused = await starts(at, over);
      expect(refused.up).toBe(false);
      expect(refused.stderr).toMatch(/X2APIC|requires/);
      // …and the builder refuses it first, in words, with the bound a form can use.
      const err = expectError(() => buildQemuArgs(withConfig(base, { cpus: 256 }), caps, paths), ErrorCode.Unsupported, 'IOMMU', 'Lower the VM\'s CPU count to 255.');
      expect(err.field).toBe('cpus');
      expect(err.remedy).toEqual({ kind: 'lower', field: 'cpus', max: 255 });
    } finally {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  const AARCH64 = '/usr/bin/qemu-system-aarch64';
  const AAVMF_CODE = '/usr/share/AAVMF/AAVMF_CODE.fd';
  const AAVMF_VARS = '/usr/share/AAVMF/AAVMF_VARS.fd';
  const SKIP_ARM = [AARCH64, AAVMF_CODE, QEMU_IMG].filter((f) => !fs.existsSync(f));
  it.skipIf(SKIP_ARM.length > 0)(`aarch64 virt starts with its cpu-max (512, GICv3) and QEMU refuses 513: the limit's figure${SKIP_ARM.length ? ` [SKIPPED: needs ${SKIP_ARM.join(', ')}]` : ''}`, async () => {
    const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-cpus-arm-'));
    try {
      const realLayout = new Layout(path.join(tmpDir, 'lib'), path.join(tmpDir, 'run'));
      const base = withConfig(FIXTURES['aarch64-uefi'], { cdroms: [], disks: [], memoryMiB: 512, accel: 'tcg', display: 'none', network: { mode: 'none', mac: '52:54:00:c0:ff:ee', forwards: [] } });
      const paths = realLayout.paths(base.id);
      fs.mkdirSync(paths.bundle.dir, { recursive: true });
      ensurePrivateDir(paths.runtime.dir);
      execFileSync(QEMU_IMG, ['convert', '-q', '-f', 'raw', '-O', 'qcow2', AAVMF_VARS, paths.bundle.file('efivars.qcow2')]);
      const fixture = HOST_KINDS['linux-x86_64-tcg'];
      const caps: HostCapabilities = {
        ...fixture,
        binaries: { aarch64: { arch: 'aarch64', path: AARCH64, version: { major: 7, minor: 2, micro: 0 }, accels: ['tcg'], cpuMax: { virt: 512 } } },
        accels: { aarch64: [{ accel: 'tcg', usable: true, reason: 'test' }] },
        firmware: { aarch64: { code: AAVMF_CODE, codeFormat: 'raw', varsTemplate: AAVMF_VARS, varsFormat: 'raw', secureBoot: false, source: 'test' } },
        nativeAio: false,
      };
      // The config schema stops at MAX_CPUS (256), below virt's 512; the line is then raised by hand
      // to show what QEMU itself accepts, which is the figure the limit uses (query-machines cpu-max).
      const built = buildQemuArgs(withConfig(base, { cpus: 256 }), caps, paths, { startPaused: true });
      const withSmp = (n: number) => built.args.map((a) => a.replace(/^256,sockets=1,cores=256,threads=1$/, `${n},sockets=1,cores=${n},threads=1`));
      expect(withSmp(512)).not.toEqual(built.args);
      const ok = await starts(built, withSmp(512));
      expect(ok.up, ok.stderr).toBe(true);
      const refused = await starts(built, withSmp(513));
      expect(refused.up).toBe(false);
      expect(refused.stderr).toContain("The max CPUs supported by machine 'virt-7.2' is 512");
      expect(vcpuLimitOnHost({ arch: 'aarch64', machine: null, accel: 'tcg' }, caps)).toMatchObject({ max: 512 });
    } finally {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    }
  });
});
