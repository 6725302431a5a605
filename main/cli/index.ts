/**
 * `vivarium …`: the command line. Talks to a running engine (the app or `vivarium serve`) over its
 * unix socket when there is one, so that only one process ever holds a VM's QMP; otherwise hosts an
 * engine for the length of the command. VMs keep running either way.
 *
 * Output: human text by default, `--json` where documented (README). Errors: one line on stderr that
 * says what to do, exit status 2 when what was typed must change, 1 when the operation failed
 * (cli/exit-status.ts).
 */
// First: settings every schema is built with (see the file).
import './zod-config';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CreateVmSpec, EditVmSpec, Services } from '../common/contract';
import { MAX_SERIAL_LOG_READ_BYTES, MAX_WAIT_SERIAL_CHARS } from '../common/contract/vms';
import { isVivariumError, errors, VivariumError } from '../common/errors';
import { qemuDirAdvice } from '../common/models/host-report';
import type { HostReport } from '../common/models/host-report';
import { formatMiB, MAX_CPUS, parseSize, PortForward, type Arch } from '../common/models/vm-config';
import type { VmInfo } from '../common/models/vm-state';
import { asksForHelp, formatHelp, parseArgs, UsageError, type CommandSpec, type Parsed } from './args';
import { COMMANDS } from './commands';
import { formatCliError } from './remedy';
import { exitStatusFor } from './exit-status';
import { localTime } from './time-text';
import { createWithProgress, importFlag, prepareMedia } from './media-commands';
import { cloudFlags, prepareSandbox, resolveCloudImage, sandboxShowLines } from './sandbox-commands';
import { prepareHardware } from './hardware-commands';
import { prepareSnapshot } from './snapshot-commands';
import { openEngine, type EngineHandle } from './engine-connection';
import { shellArg } from '../common/shell-arg';
import { PRESET_IDS } from '../common/models/presets';
import { MAX_DISK_BYTES } from '../common/contract/disks';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

const VERSION = '0.1.0';

export async function main(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const [command, ...rest] = argv;
  const out = (s: string) => io.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
  const usage = (message: string, about: string | null): number => {
    io.stderr.write(`vivarium${about ? ` ${about}` : ''}: ${message}. Run \`vivarium help${about ? ` ${about}` : ''}\` for usage.\n`);
    return 2;
  };
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    const topic = rest[0];
    if (topic === undefined) {
      out(generalHelp());
      return 0;
    }
    const spec = commandSpec(topic);
    if (!spec) return usage(`there is no command "${topic}"`, null);
    out(formatHelp(topic, spec));
    return 0;
  }
  if (command === '--version' || command === 'version') {
    out(VERSION);
    return 0;
  }
  const spec = commandSpec(command);
  if (!spec) return usage(command.startsWith('-') ? `unknown option ${command}` : `unknown command "${command}"`, null);
  if (asksForHelp(rest)) {
    out(formatHelp(command, spec));
    return 0;
  }
  let engine: EngineHandle | null = null;
  try {
    const parsed = parseArgs(command, spec, rest);
    // Validate what we can before touching the engine: bad input must not write anything.
    const plan = prepare(command, parsed);
    if (command === 'serve') {
      // Loaded only by the commands that use them (start-up is most of a short command's time). The
      // .js suffix: tsc (node16) keeps import() as a real ESM import; esbuild and vitest map it to .ts.
      const { runServe } = await import('../server/serve.js');
      return await runServe({
        host: str(parsed, 'host'),
        port: num(parsed, 'port'),
        tlsCert: str(parsed, 'tls-cert'),
        tlsKey: str(parsed, 'tls-key'),
        autostart: parsed.flags.autostart === true,
        env: io.env,
        stdout: io.stdout,
        stderr: io.stderr,
      });
    }
    if (command === 'screenshot') {
      const dir = path.dirname(path.resolve(parsed.positionals[1]!));
      if (!fs.existsSync(dir)) throw new UsageError(`the folder ${dir} does not exist; create it or save the screenshot elsewhere`, command);
    }
    engine = await openEngine(io.env);
    return await run(command, parsed, plan, engine.services, io, engine);
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message, command);
    if (isVivariumError(e)) {
      io.stderr.write(`vivarium: ${formatCliError(e, { command })}\n`);
      // Exit 2 whenever what was typed must change (invalid, names nothing, or names what is
      // taken); 1 when the operation itself failed (cli/exit-status.ts).
      return exitStatusFor(e.code);
    }
    io.stderr.write(`vivarium: internal error: ${(e as Error).message ?? String(e)}. Please report this as a bug.\n`);
    if (io.env.VIVARIUM_DEBUG) io.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  } finally {
    await engine?.dispose();
  }
}

type Plan = { readonly create?: CreateVmSpec; readonly edit?: EditVmSpec };

/** The longest --timeout: a day (timers in Node cannot wait longer than ~24.8 days anyway). */
const MAX_TIMEOUT_SEC = 24 * 60 * 60;

/** The command's table entry; never one of Object.prototype's keys ("constructor"). */
function commandSpec(name: string): CommandSpec | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

function prepare(command: string, p: Parsed): Plan {
  try {
    const timeout = num(p, 'timeout');
    const minTimeout = command === 'start' ? 'above 0' : '0 or more';
    if (timeout !== undefined && (timeout < 0 || (command === 'start' && timeout === 0) || timeout > MAX_TIMEOUT_SEC)) {
      throw errors.invalid(`--timeout must be a number of seconds, ${minTimeout} and at most ${MAX_TIMEOUT_SEC}, not ${timeout}.`);
    }
    // An empty --host would make the server listen on every interface.
    const host = str(p, 'host');
    if (host !== undefined && host.trim() === '') throw errors.invalid('--host needs an address, such as 127.0.0.1 (the default).');
    const port = num(p, 'port');
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw errors.invalid(`--port must be a whole number from 0 to 65535, not ${port}.`);
    }
    if (command === 'catalog' || command === 'media') prepareMedia(command, p);
    if (command === 'snapshot') prepareSnapshot(command, p);
    if (command === 'forward' || command === 'share' || command === 'images') prepareSandbox(command, p);
    if (command === 'disk' || command === 'cd') prepareHardware(command, p);
    if (command === 'create') return { create: createSpec(p) };
    if (command === 'edit') return { edit: editSpec(p) };
    return {};
  } catch (e) {
    // Flag values that can be judged without the engine are usage errors (exit 2).
    if (isVivariumError(e) && e.code === 'invalid-argument') throw new UsageError(e.message.replace(/\.$/, ''), command);
    throw e;
  }
}

async function run(command: string, p: Parsed, plan: Plan, s: Services, io: CliIo, engine: EngineHandle): Promise<number> {
  const out = (text: string) => io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  const json = (v: unknown) => out(JSON.stringify(v, null, 2));
  const ref = p.positionals[0] ?? '';
  const asJson = p.flags.json === true;
  // What the engine says is worth knowing about the action (unwise settings, state rebuilt): stderr.
  const warn = (vm: VmInfo) => vm.notices?.forEach((n) => io.stderr.write(`warning: ${n}\n`));
  const printVm = (vm: VmInfo) => {
    warn(vm);
    if (asJson) json(publicVm(vm));
    else out(`${vm.name}: ${vm.state}${vm.pid ? ` (pid ${vm.pid})` : ''}`);
  };
  switch (command) {
    case 'doctor': {
      const report = await s.host.doctor();
      if (asJson) json(report);
      else out(formatDoctor(report));
      return report.binaries.some((b) => b.path) ? 0 : 1;
    }
    case 'create': {
      // --cloud-image ID|URL: downloaded and verified first (cli/sandbox-commands.ts).
      const spec = await resolveCloudImage(s, io, plan.create!);
      if (p.flags['dry-run'] === true) {
        // vms.preview: the same checks, nothing written (the New VM wizard's summary uses it too).
        const preview = await s.vms.preview(spec);
        for (const n of preview.notices) io.stderr.write(`warning: ${n}\n`);
        if (asJson) json(preview);
        else out(preview.argv.map(shellArg).join(' '));
        return 0;
      }
      const vm = await createWithProgress(s, io, spec, () => s.vms.create(spec));
      warn(vm);
      if (asJson) json(publicVm(vm));
      else out(vm.id);
      return 0;
    }
    case 'list': {
      const vms = await s.vms.list();
      if (asJson) json(vms.map(publicVm));
      else out(formatList(vms));
      return 0;
    }
    case 'show': {
      const vm = await s.vms.get(ref);
      if (asJson) {
        // `runtime`: where the running VM's sockets are (scripts and the benchmarks attach to them
        // instead of rebuilding Vivarium's layout by hand).
        const rt = engine.layout.runtime(vm.id);
        const runtime = { dir: rt.dir, qmp: rt.qmp, serial: rt.serial, vnc: rt.vnc, qga: rt.qga };
        // `guest`: what the guest agent says (null without one answering; issue 11).
        const guest = vm.state === 'running' ? await s.sandbox.guest(vm.id).catch(() => null) : null;
        json({ ...publicVm(vm), startedAt: vm.startedAt, path: vm.path, runtime, config: vm.config, argv: vm.argv, guest });
      } else {
        out(formatShow(vm, await sandboxShowLines(s, vm)));
      }
      return 0;
    }
    case 'start': {
      const waitSerial = str(p, 'wait-serial');
      // Said in the flag's words here; the engine's own check would say "Invalid request: serial pattern…".
      if (waitSerial !== undefined && waitSerial.length > MAX_WAIT_SERIAL_CHARS) throw errors.invalid(`--wait-serial must be at most ${MAX_WAIT_SERIAL_CHARS} characters (this one has ${waitSerial.length}).`);
      const vm = await s.vms.start(ref, { waitSerial, timeoutSec: num(p, 'timeout') });
      printVm(vm);
      return 0;
    }
    case 'stop': {
      const vm = await s.vms.stop(ref, { force: p.flags.force === true, timeoutSec: num(p, 'timeout') });
      if (asJson) json(publicVm(vm));
      else out(`${vm.name}: ${vm.state}${vm.lastExit ? ` (${vm.lastExit.message})` : ''}`);
      return 0;
    }
    case 'pause':
      printVm(await s.vms.pause(ref));
      return 0;
    case 'resume':
      printVm(await s.vms.resume(ref));
      return 0;
    case 'reset':
      printVm(await s.vms.reset(ref));
      return 0;
    case 'serial': {
      if (p.flags.log === true) {
        // All that is kept (both files, as the README says), not the engine's 1 MiB default tail.
        io.stdout.write(await s.vms.serialLog(ref, { maxBytes: MAX_SERIAL_LOG_READ_BYTES }));
        return 0;
      }
      const { attachSerial } = await import('./serial.js');
      return attachSerial(ref, s, engine, io);
    }
    case 'screenshot': {
      const file = path.resolve(p.positionals[1]!);
      const shot = await s.vms.screenshot(ref);
      fs.writeFileSync(file, Buffer.from(shot.pngBase64, 'base64'), { mode: 0o600 });
      out(`${file} (${shot.width}×${shot.height})`);
      return 0;
    }
    case 'edit': {
      if (Object.keys(plan.edit!).length === 0) throw new UsageError('nothing to change: give at least one option', 'edit');
      printVm(await s.vms.edit(ref, plan.edit!));
      return 0;
    }
    case 'delete': {
      const vm = await s.vms.get(ref);
      const flattenClones = p.flags['flatten-clones'] === true;
      const res = await s.vms.delete(vm.id, { keepDisks: p.flags['keep-disks'] === true, ...(flattenClones ? { flattenClones } : {}) }).catch((e: unknown) => {
        // Linked clones stand on its disks: say how to delete it anyway, in this front end's words.
        const clones = isVivariumError(e) ? (e.data as { linkedClones?: unknown } | undefined)?.linkedClones : undefined;
        if (!flattenClones && Array.isArray(clones) && isVivariumError(e)) {
          const again = vm.name.startsWith('-') ? `vivarium delete --flatten-clones -- ${shellArg(vm.name)}` : `vivarium delete ${shellArg(vm.name)} --flatten-clones`;
          throw new VivariumError(e.code, `${e.message} Or give ${clones.length === 1 ? 'it' : 'them'} disk images of ${clones.length === 1 ? 'its' : 'their'} own and delete "${vm.name}": \`${again}\`.`, e.data);
        }
        throw e;
      });
      for (const c of res.flattenedClones ?? []) out(`Flattened ${c}: its disks no longer use ${vm.name}'s.`);
      out(`Deleted ${vm.name}.`);
      for (const f of res.keptFiles) out(`Kept disk: ${f}`);
      return 0;
    }
    case 'stats': {
      const { runStats } = await import('./stats.js');
      return runStats(s, { vm: p.positionals[0], json: asJson, watch: p.flags.watch === true }, io);
    }
    case 'catalog':
    case 'media': {
      const { runMedia } = await import('./media-commands.js');
      return runMedia(command, p, s, io);
    }
    case 'snapshot':
    case 'suspend':
    case 'export':
    case 'import':
    case 'clone': {
      const { runSnapshot } = await import('./snapshot-commands.js');
      return runSnapshot(command, p, s, io);
    }
    case 'images':
    case 'ssh':
    case 'forward':
    case 'share': {
      const { runSandbox } = await import('./sandbox-commands.js');
      return runSandbox(command, p, s, io);
    }
    case 'disk':
    case 'cd': {
      const { runHardware } = await import('./hardware-commands.js');
      return runHardware(command, p, s, io);
    }
    default:
      throw new UsageError(`"${command}" is not implemented`, command);
  }
}

// ---- specs from flags ----------------------------------------------------------------------------

function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}
function num(p: Parsed, name: string): number | undefined {
  const v = p.flags[name];
  return typeof v === 'number' ? v : undefined;
}

function memoryMiB(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const bytes = parseSize(text, 'M');
  if (bytes === null || bytes <= 0) throw errors.invalid(`--memory must be a size like 512M or 2G, not "${text}".`);
  const mib = bytes / 1024 ** 2;
  if (!Number.isInteger(mib)) throw errors.invalid(`--memory must be a whole number of MiB, not "${text}".`);
  return mib;
}

function enumFlag<T extends string>(p: Parsed, name: string, allowed: readonly T[]): T | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw errors.invalid(`--${name} must be one of ${allowed.join(', ')}, not "${v}".`);
  return v as T;
}

function absPath(p: Parsed, name: string): string | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (v.trim() === '') throw errors.invalid(`--${name} needs a path.`);
  return path.resolve(v);
}

function forwards(p: Parsed): PortForward[] | undefined {
  const list = p.flags.forward as readonly string[] | undefined;
  if (!list) return undefined;
  return list.map((f) => {
    const m = /^(tcp|udp):(\d{1,5}):(\d{1,5})$/.exec(f);
    const parsed = m && PortForward.safeParse({ protocol: m[1], hostPort: Number(m[2]), guestPort: Number(m[3]) });
    if (!parsed || !parsed.success) throw errors.invalid(`--forward must look like tcp:2222:22 (ports 1-65535), not "${f}".`);
    return parsed.data;
  });
}

function createSpec(p: Parsed): CreateVmSpec {
  const diskSize = str(p, 'disk-size');
  let diskSizeBytes: number | undefined;
  if (diskSize !== undefined) {
    const b = parseSize(diskSize, 'B');
    if (b === null || (b > 0 && b < 1024 * 1024)) throw errors.invalid(`--disk-size must be a size like 8G (or 0 for no disk), not "${diskSize}".`);
    if (b > MAX_DISK_BYTES) throw errors.invalid(`--disk-size can be at most 64T (64 TiB), not "${diskSize}".`);
    diskSizeBytes = b;
  }
  if (diskSize !== undefined && str(p, 'disk') !== undefined) throw errors.invalid('Give either --disk-size or --disk, not both.');
  const cpus = num(p, 'cpus');
  if (cpus !== undefined && (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS)) throw errors.invalid(`--cpus must be a whole number from 1 to ${MAX_CPUS} (the machine type may allow fewer).`);
  return stripUndefined({
    name: p.positionals[0]!,
    arch: enumFlag<Arch>(p, 'arch', ['x86_64', 'aarch64']),
    cpus,
    memoryMiB: memoryMiB(str(p, 'memory')),
    accel: enumFlag(p, 'accel', ['auto', 'kvm', 'hvf', 'tcg'] as const),
    firmware: enumFlag(p, 'firmware', ['bios', 'uefi'] as const) ?? (p.flags['secure-boot'] === true ? 'uefi' : undefined),
    diskSizeBytes,
    diskPath: absPath(p, 'disk'),
    diskBus: enumFlag(p, 'disk-bus', ['virtio', 'sata', 'nvme'] as const),
    iso: absPath(p, 'iso'),
    kernel: absPath(p, 'kernel'),
    initrd: absPath(p, 'initrd'),
    append: str(p, 'append'),
    net: enumFlag(p, 'net', ['user', 'none'] as const),
    forwards: forwards(p),
    display: enumFlag(p, 'display', ['vnc', 'none'] as const),
    os: str(p, 'os'),
    import: importFlag(p),
    cloud: cloudFlags(p),
    bootMenu: p.flags['boot-menu'] === true ? true : undefined,
    tpm: p.flags.tpm === true ? true : undefined,
    secureBoot: p.flags['secure-boot'] === true ? true : undefined,
    preset: enumFlag(p, 'preset', PRESET_IDS),
    nicModel: nicFlag(enumFlag(p, 'nic', ['virtio', 'e1000e'] as const)),
  });
}

/** `--nic virtio` is QEMU's virtio-net-pci. */
function nicFlag(v: 'virtio' | 'e1000e' | undefined): 'virtio-net-pci' | 'e1000e' | undefined {
  return v === 'virtio' ? 'virtio-net-pci' : v;
}

function editSpec(p: Parsed): EditVmSpec {
  const both = (a: string, b: string) => {
    if (p.flags[a] !== undefined && p.flags[b] !== undefined) throw errors.invalid(`Give either --${a} or --${b}, not both.`);
  };
  both('iso', 'no-iso');
  both('kernel', 'no-kernel');
  both('forward', 'no-forwards');
  both('autostart', 'no-autostart');
  both('boot-menu', 'no-boot-menu');
  both('tpm', 'no-tpm');
  both('secure-boot', 'no-secure-boot');
  const cpus = num(p, 'cpus');
  if (cpus !== undefined && (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS)) throw errors.invalid(`--cpus must be a whole number from 1 to ${MAX_CPUS} (the machine type may allow fewer).`);
  return stripUndefined({
    name: str(p, 'name'),
    cpus,
    memoryMiB: memoryMiB(str(p, 'memory')),
    accel: enumFlag(p, 'accel', ['auto', 'kvm', 'hvf', 'tcg'] as const),
    firmware: enumFlag(p, 'firmware', ['bios', 'uefi'] as const),
    iso: p.flags['no-iso'] ? null : absPath(p, 'iso'),
    kernel: p.flags['no-kernel'] ? null : absPath(p, 'kernel'),
    initrd: absPath(p, 'initrd'),
    append: str(p, 'append'),
    net: enumFlag(p, 'net', ['user', 'none'] as const),
    forwards: p.flags['no-forwards'] ? [] : forwards(p),
    display: enumFlag(p, 'display', ['vnc', 'none'] as const),
    os: str(p, 'os'),
    autostart: p.flags.autostart === true ? true : p.flags['no-autostart'] === true ? false : undefined,
    bootOrder: bootOrderFlag(str(p, 'boot-order')),
    bootMenu: p.flags['boot-menu'] === true ? true : p.flags['no-boot-menu'] === true ? false : undefined,
    tpm: p.flags.tpm === true ? true : p.flags['no-tpm'] === true ? false : undefined,
    secureBoot: p.flags['secure-boot'] === true ? true : p.flags['no-secure-boot'] === true ? false : undefined,
  });
}

/** `--boot-order disk,cd,net`: each of disk, cd, net at most once. */
function bootOrderFlag(v: string | undefined): ('disk' | 'cd' | 'net')[] | undefined {
  if (v === undefined) return undefined;
  const list = v.split(',').map((x) => x.trim().toLowerCase());
  if (list.length === 0 || list.some((x) => x !== 'disk' && x !== 'cd' && x !== 'net') || new Set(list).size !== list.length) {
    throw errors.invalid(`--boot-order must list disk, cd and net (each at most once, comma-separated), such as disk,cd, not "${v}".`);
  }
  return list as ('disk' | 'cd' | 'net')[];
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---- output --------------------------------------------------------------------------------------

/** The documented, stable JSON shape of a VM in `list --json` (README). */
export function publicVm(vm: VmInfo): {
  name: string;
  id: string;
  state: string;
  pid?: number;
  accel: string | null;
  lastExit: VmInfo['lastExit'];
  error: string | null;
  pausedReason?: string;
  stopping?: NonNullable<VmInfo['stopping']>;
} {
  return {
    name: vm.name,
    id: vm.id,
    state: vm.state,
    ...(vm.pid !== null ? { pid: vm.pid } : {}),
    accel: vm.accel,
    lastExit: vm.lastExit,
    error: vm.error,
    // Why QEMU paused ("paused", "io-error", "guest-panicked"…) and where a Shut Down is.
    ...(vm.state === 'paused' && vm.pausedReason ? { pausedReason: vm.pausedReason } : {}),
    ...(vm.state === 'stopping' && vm.stopping ? { stopping: vm.stopping } : {}),
  };
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd()).join('\n');
}

function formatList(vms: readonly VmInfo[]): string {
  if (vms.length === 0) return 'No VMs yet. Create one with `vivarium create NAME --iso PATH`.';
  const rows = [['NAME', 'ID', 'STATE', 'PID', 'ACCEL', 'NOTE']];
  for (const vm of vms) {
    const note =
      vm.error ??
      (vm.state === 'stopped' && vm.lastExit?.reason === 'crashed' ? vm.lastExit.message : vm.state === 'paused' && vm.pausedReason && vm.pausedReason !== 'paused' ? `QEMU paused it: ${vm.pausedReason}` : '');
    // One line per VM, whatever a name or an error message holds.
    const oneLine = (t: string) => t.replace(/[\r\n\t]+/g, ' ');
    rows.push([oneLine(vm.name), vm.id.slice(0, 8), vm.state, vm.pid ? String(vm.pid) : '-', vm.accel ?? '-', oneLine(note)]);
  }
  return table(rows);
}

function formatShow(vm: VmInfo & { argv: readonly string[] | null }, sandbox: readonly string[] = []): string {
  const c = vm.config;
  const lines = [`${vm.name}  (${vm.id})`, `  state:    ${vm.state}${vm.pid ? ` (pid ${vm.pid})` : ''}`];
  if (vm.error) lines.push(`  error:    ${vm.error}`);
  if (c) {
    lines.push(
      `  arch:     ${c.arch}, ${c.cpus} CPU${c.cpus > 1 ? 's' : ''}, ${formatMiB(c.memoryMiB)}, ${c.firmware}, accel ${vm.accel}`,
      `  disks:    ${c.disks.map((d) => ('bundle' in d.source ? d.source.bundle : d.source.path)).join(', ') || 'none'}`,
      `  cd-rom:   ${c.cdroms.map((d) => `${d.id} ${d.path ?? '(empty)'}`).join(', ') || 'none'}`,
    );
    if (c.kernel) lines.push(`  kernel:   ${c.kernel.path}${c.kernel.initrd ? ` + ${c.kernel.initrd}` : ''} "${c.kernel.append}"`);
    lines.push(
      `  network:  ${c.network.mode}${c.network.forwards.map((f) => ` ${f.protocol}:127.0.0.1:${f.hostPort}->${f.guestPort}`).join('')}`,
      `  display:  ${c.display}`,
    );
    if (c.autostart) lines.push('  autostart: yes (starts when Vivarium or `vivarium serve --autostart` starts)');
    if (c.extraArgs.length) lines.push(`  extra QEMU arguments (advanced, from config.json): ${c.extraArgs.map(shellArg).join(' ')}`);
  }
  lines.push(...sandbox);
  if (vm.lastExit) lines.push(`  last exit: ${vm.lastExit.reason} at ${localTime(vm.lastExit.at, { seconds: true })}: ${vm.lastExit.message}`);
  lines.push(`  folder:   ${vm.path}`);
  if (vm.argv) lines.push('', '  ' + vm.argv.map(shellArg).join(' \\\n    '));
  return lines.join('\n');
}


function formatDoctor(r: HostReport): string {
  const lines = [`Host: ${r.os} ${r.hostArch}`, `Library: ${r.home}`, `Runtime: ${r.runtimeDir}`, ''];
  for (const b of r.binaries) {
    lines.push(`qemu-system-${b.arch}: ${b.path ? `${b.path} (QEMU ${b.version})` : 'not found'}`);
    for (const a of b.accels) lines.push(`  ${a.usable ? '✓' : '✗'} ${a.accel}: ${a.reason}`);
  }
  lines.push(`qemu-img: ${r.qemuImg.path ?? 'not found'}`);
  for (const f of r.firmware) lines.push(`UEFI firmware (${f.arch}): ${f.code}${f.secureBoot ? ' (Secure Boot)' : ''}`);
  if (r.firmware.length === 0) lines.push('UEFI firmware: not found');
  if (r.problems.length) lines.push('', 'Problems:', ...r.problems.map((p) => `  - ${p}`));
  // The first-run guide, as the app shows it (issue 12).
  const s = r.setup;
  if (!s.qemuFound && s.qemuDir) {
    lines.push('', qemuDirAdvice(s.qemuDir));
    if (s.installCommand) lines.push('', 'If this machine has no QEMU at all, install it with:', '', `    ${s.installCommand}`);
  } else if (!s.qemuFound) {
    lines.push('', s.installCommand ? 'QEMU is not installed. Install it with:' : 'QEMU is not installed. Install QEMU, qemu-img and UEFI firmware (OVMF/edk2) with your package manager.');
    if (s.installCommand) lines.push('', `    ${s.installCommand}`, '', 'then run `vivarium doctor` again.');
  }
  if (s.kvmPermission) lines.push('', s.kvmPermission.explanation, '', `    ${s.kvmPermission.command}`);
  if (s.hvf) lines.push('', s.hvf.explanation);
  return lines.join('\n');
}

function generalHelp(): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length)) + 2;
  return [
    'vivarium — run and manage local QEMU virtual machines',
    '',
    'Usage: vivarium COMMAND [options]',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(width)}${COMMANDS[n]!.summary}`),
    '',
    'NAME may be a VM\'s name or id. The library lives in $VIVARIUM_HOME when set.',
    'Run `vivarium help COMMAND` for a command\'s options.',
  ].join('\n');
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`vivarium: internal error: ${String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
