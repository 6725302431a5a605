/**
 * The VM manager: turns bundles into running QEMUs and keeps hold of them.
 *
 * Two ways to host it, same code:
 *  - short-lived (the CLI with no engine running): reads state from disk, acts, exits. VMs keep
 *    running; the next process finds them through the runtime folder.
 *  - long-lived (`vivarium serve`, the app): additionally `watch()`es — holds one QMP connection per
 *    running VM for events, and polls the library once a second so changes made by anyone show up.
 *
 * The truth about a running VM is its runtime folder: vm.json (our record), QEMU's locked pidfile,
 * the supervisor's exit-status file. Nothing here needs QMP to answer `list`, so listing never
 * fights the single QMP client slot.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type {
  CreateVmSpec,
  DeleteOptions,
  EditVmSpec,
  StartOptions,
  StopOptions,
  VmService,
} from '../common/contract';
import { errors, ErrorCode, VivariumError } from '../common/errors';
import type { HostCapabilities } from '../common/models/host';
import { CONFIG_VERSION, VmConfig, formatZodIssues, type Disk } from '../common/models/vm-config';
import type { LastExit, VmChange, VmDetails, VmInfo, VmState } from '../common/models/vm-state';
import { BundleStore, type BundleEntry } from './bundles/bundle-store';
import { QemuImg } from './disks/qemu-img';
import { Emitter } from './emitter';
import { BundleFile, type Layout, type VmRuntimePaths, writeFileAtomic } from './paths';
import { buildQemuArgs } from './qemu/argv';
import {
  isQemuFor,
  lastLines,
  readPidFile,
  launchQemu,
  readExitStatus,
  readRecord,
  readTail,
  signalName,
  sleep,
  waitForExit,
  writeRecord,
  type RuntimeRecord,
} from './qemu/process';
import { QmpClient } from './qemu/qmp';

export const DEFAULTS = {
  cpus: 2,
  memoryMiB: 2048,
  diskSizeBytes: 20 * 1024 ** 3,
  stopTimeoutSec: 30,
  startTimeoutSec: 120,
} as const;

/** How long each forceful rung of the stop ladder waits before the next. */
const RUNG_WAIT_MS = 5_000;

export interface VmManagerDeps {
  readonly layout: Layout;
  readonly host: () => Promise<HostCapabilities>;
  readonly log?: (line: string) => void;
}

type RunState =
  | { readonly state: 'stopped' }
  | { readonly state: 'starting'; readonly pid: null }
  | { readonly state: 'running' | 'paused' | 'stopping'; readonly record: RuntimeRecord };

export class VmManager implements VmService {
  readonly store: BundleStore;
  private readonly changes = new Emitter<VmChange>();
  readonly onDidChange = this.changes.event;
  private readonly qmp = new Map<string, Promise<QmpClient>>();
  private readonly busy = new Map<string, Promise<unknown>>();
  private lastSeen = new Map<string, string>();
  private watchTimer: NodeJS.Timeout | null = null;
  private watching = false;

  constructor(private readonly deps: VmManagerDeps) {
    this.store = new BundleStore(deps.layout);
  }

  // ---- queries ---------------------------------------------------------------------------------

  async list(): Promise<readonly VmInfo[]> {
    return this.listSync();
  }

  listSync(): VmInfo[] {
    return this.store
      .list()
      .map((e) => this.info(e))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  async get(ref: string): Promise<VmDetails> {
    const entry = this.resolve(ref);
    const info = this.info(entry);
    let argv: readonly string[] | null = null;
    let error = info.error;
    const rs = this.runState(entry);
    if ('record' in rs) {
      argv = rs.record.argv;
    } else if (entry.ok) {
      try {
        const paths = this.deps.layout.paths(entry.id);
        const caps = withDirectIoWhereSupported(await this.deps.host(), entry.config, paths.bundle.file.bind(paths.bundle));
        const built = buildQemuArgs(entry.config, caps, paths);
        argv = [built.binary, ...built.args];
      } catch (e) {
        if (!(e instanceof VivariumError)) throw e;
        error = error ?? e.message;
      }
    }
    return { ...info, error, argv };
  }

  async serialLog(ref: string, options: { maxBytes?: number }): Promise<string> {
    const entry = this.resolve(ref);
    return readTail(this.deps.layout.bundle(entry.id).serialLog, options.maxBytes ?? 1024 * 1024);
  }

  // ---- library edits ---------------------------------------------------------------------------

  async create(spec: CreateVmSpec): Promise<VmInfo> {
    const caps = await this.deps.host();
    this.assertNameFree(spec.name, null);
    const arch = spec.arch ?? (caps.binaries[caps.hostArch] ? caps.hostArch : 'x86_64');
    const firmware = spec.firmware ?? (arch === 'aarch64' ? 'uefi' : 'bios');
    if (spec.net === 'none' && (spec.forwards?.length ?? 0) > 0) {
      throw errors.invalid('Port forwards need networking: drop --net none, or drop the --forward options.');
    }
    if ((spec.initrd !== undefined || spec.append !== undefined) && spec.kernel === undefined) {
      throw errors.invalid('--initrd and --append need --kernel: give the kernel to boot directly.');
    }
    for (const [what, p] of [
      ['ISO', spec.iso],
      ['Kernel', spec.kernel],
      ['Initrd', spec.initrd],
      ['Disk', spec.diskPath],
    ] as const) {
      if (p !== undefined) assertReadableFile(what, p);
    }
    if (!caps.binaries[arch]) {
      throw new VivariumError(
        ErrorCode.QemuMissing,
        arch === 'aarch64'
          ? 'qemu-system-aarch64 was not found, so ARM guests cannot run here. Install it (Debian/Ubuntu: qemu-system-arm qemu-efi-aarch64; Fedora: qemu-system-aarch64 edk2-aarch64; macOS: brew install qemu) and see `vivarium doctor`.'
          : 'qemu-system-x86_64 was not found. Install QEMU (Debian/Ubuntu: qemu-system-x86; Fedora: qemu-kvm; macOS: brew install qemu) and see `vivarium doctor`.',
      );
    }
    const uefi = firmware === 'uefi' ? caps.firmware[arch] : undefined;
    if (firmware === 'uefi' && !uefi) {
      const pkg = arch === 'aarch64' ? 'Debian/Ubuntu: qemu-efi-aarch64; Fedora: edk2-aarch64' : 'Debian/Ubuntu: ovmf; Fedora: edk2-ovmf';
      throw new VivariumError(
        ErrorCode.Unsupported,
        `No UEFI firmware for ${arch} was found. Install it (${pkg}; macOS: brew install qemu)${arch === 'aarch64' ? '' : ' or use --firmware bios'}.`,
      );
    }
    const qemuImg = new QemuImg(caps.qemuImg);
    const disks: Disk[] = [];
    if (spec.diskPath !== undefined) {
      const info = await qemuImg.info(spec.diskPath);
      if (info.backingFilename !== null) {
        throw errors.invalid(
          `${spec.diskPath} is an overlay on ${info.backingFilename}. Vivarium uses standalone images (it never opens backing files an image names); make one first: qemu-img convert -O qcow2 "${spec.diskPath}" standalone.qcow2`,
        );
      }
      if (info.format !== 'qcow2' && info.format !== 'raw') {
        throw errors.invalid(
          `${spec.diskPath} is a ${info.format} image. Convert it first: qemu-img convert -O qcow2 "${spec.diskPath}" disk.qcow2`,
        );
      }
      disks.push({ id: 'disk0', source: { path: spec.diskPath }, format: info.format, readOnly: false });
    } else {
      const size = spec.diskSizeBytes ?? DEFAULTS.diskSizeBytes;
      if (size > 0) disks.push({ id: 'disk0', source: { bundle: BundleFile.disk0 }, format: 'qcow2', readOnly: false });
    }
    const candidate = {
      version: CONFIG_VERSION,
      id: randomUUID(),
      name: spec.name,
      createdAt: new Date().toISOString(),
      arch,
      accel: spec.accel ?? 'auto',
      machine: null,
      cpus: spec.cpus ?? DEFAULTS.cpus,
      memoryMiB: spec.memoryMiB ?? DEFAULTS.memoryMiB,
      firmware,
      uefiVars: uefi ? BundleFile.uefiVars : null,
      disks,
      cdrom: spec.iso ?? null,
      kernel: spec.kernel ? { path: spec.kernel, initrd: spec.initrd ?? null, append: spec.append ?? '' } : null,
      network: { mode: spec.net ?? 'user', mac: randomMac(), forwards: spec.forwards ?? [] },
      display: spec.display ?? 'vnc',
      os: spec.os ?? 'Other',
      extraArgs: [],
    };
    assertMemoryFits(candidate.memoryMiB);
    const parsed = VmConfig.safeParse(candidate);
    if (!parsed.success) throw errors.invalid(`Invalid VM settings: ${formatZodIssues(parsed.error)}`);
    const config = parsed.data;
    // Fail before writing anything if this host can't build a command line for it.
    buildQemuArgs(config, caps, this.deps.layout.paths(config.id));
    await this.store.create(config, async (dir) => {
      if (disks.some((d) => 'bundle' in d.source)) {
        await qemuImg.createQcow2(`${dir}/${BundleFile.disk0}`, spec.diskSizeBytes ?? DEFAULTS.diskSizeBytes);
      }
      if (uefi) await this.makeUefiVars(qemuImg, uefi.varsTemplate, uefi.varsFormat, `${dir}/${BundleFile.uefiVars}`);
    });
    this.appendEvent(config.id, `created "${config.name}"`);
    const info = this.info(this.resolve(config.id));
    this.changes.fire({ kind: 'updated', vm: info });
    return info;
  }

  async edit(ref: string, patch: EditVmSpec): Promise<VmInfo> {
    const entry = this.resolveOk(ref);
    return this.exclusive(entry.id, async () => {
      this.assertStopped(entry, 'change its settings');
      const c = entry.config;
      if (patch.name !== undefined) this.assertNameFree(patch.name, c.id);
      for (const [what, p] of [
        ['ISO', patch.iso],
        ['Kernel', patch.kernel],
        ['Initrd', patch.initrd],
      ] as const) {
        if (typeof p === 'string') assertReadableFile(what, p);
      }
      const kernelPath = patch.kernel === undefined ? c.kernel?.path ?? null : patch.kernel;
      if (kernelPath === null && (typeof patch.initrd === 'string' || patch.append !== undefined)) {
        throw errors.invalid('--initrd and --append need a kernel: give --kernel too.');
      }
      const kernel =
        kernelPath === null
          ? null
          : {
              path: kernelPath,
              initrd: patch.initrd === undefined ? c.kernel?.initrd ?? null : patch.initrd,
              append: patch.append ?? c.kernel?.append ?? '',
            };
      const netMode = patch.net ?? c.network.mode;
      if (netMode === 'none' && (patch.forwards ?? c.network.forwards).length > 0) {
        throw errors.invalid('Port forwards need networking: use --net user, or remove the forwards (--no-forwards).');
      }
      const firmware = patch.firmware ?? c.firmware;
      const caps = await this.deps.host();
      let uefiVars = c.uefiVars;
      const needVars = firmware === 'uefi' && !uefiVars;
      const uefi = caps.firmware[c.arch];
      if (needVars && !uefi) {
        throw new VivariumError(ErrorCode.Unsupported, `No UEFI firmware for ${c.arch} was found. Install it (see \`vivarium doctor\`).`);
      }
      const next = VmConfig.safeParse({
        ...c,
        name: patch.name ?? c.name,
        cpus: patch.cpus ?? c.cpus,
        memoryMiB: patch.memoryMiB ?? c.memoryMiB,
        accel: patch.accel ?? c.accel,
        firmware,
        uefiVars: needVars ? BundleFile.uefiVars : uefiVars,
        cdrom: patch.iso === undefined ? c.cdrom : patch.iso,
        kernel,
        network: { ...c.network, mode: patch.net ?? c.network.mode, forwards: patch.forwards ?? c.network.forwards },
        display: patch.display ?? c.display,
        os: patch.os ?? c.os,
      });
      if (!next.success) throw errors.invalid(`Invalid VM settings: ${formatZodIssues(next.error)}`);
      if (patch.memoryMiB !== undefined) assertMemoryFits(patch.memoryMiB);
      buildQemuArgs(next.data, caps, this.deps.layout.paths(c.id));
      if (needVars && uefi) {
        await this.makeUefiVars(new QemuImg(caps.qemuImg), uefi.varsTemplate, uefi.varsFormat, this.deps.layout.bundle(c.id).file(BundleFile.uefiVars));
        uefiVars = BundleFile.uefiVars;
      }
      this.store.save(next.data);
      this.appendEvent(c.id, `settings changed: ${Object.keys(patch).join(', ')}`);
      return this.emitInfo(c.id);
    });
  }

  async delete(ref: string, options: DeleteOptions): Promise<{ readonly keptFiles: readonly string[] }> {
    const entry = this.resolve(ref);
    return this.exclusive(entry.id, async () => {
      this.assertStopped(entry, 'delete it');
      // Hold the start lock while the bundle goes, so a start from another process cannot slip in.
      const rt = this.deps.layout.runtime(entry.id);
      this.deps.layout.ensureRuntimeDir(rt.dir);
      const release = acquireStartLock(rt, entry.ok ? entry.config.name : entry.id);
      let kept: string[];
      try {
        if (this.runStateLocked(entry).state !== 'stopped') throw errors.state('The VM was started meanwhile. Shut it down first.');
        kept = this.store.remove(entry, options.keepDisks ?? false);
      } finally {
        release();
      }
      fs.rmSync(this.deps.layout.runtime(entry.id).dir, { recursive: true, force: true });
      this.lastSeen.delete(entry.id);
      this.changes.fire({ kind: 'removed', id: entry.id });
      return { keptFiles: kept };
    });
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  async start(ref: string, options: StartOptions): Promise<VmInfo> {
    const entry = this.resolveOk(ref);
    let waitRe: RegExp | null = null;
    if (options.waitSerial !== undefined) {
      try {
        waitRe = new RegExp(options.waitSerial, 'm');
      } catch (e) {
        throw errors.invalid(`--wait-serial is not a valid regular expression: ${(e as Error).message}`);
      }
    }
    const timeoutMs = (options.timeoutSec ?? DEFAULTS.startTimeoutSec) * 1000;
    const config = entry.config;
    const paths = this.deps.layout.paths(entry.id);
    const startedAt = Date.now();
    const record = await this.exclusive(entry.id, async () => {
      const caps = withDirectIoWhereSupported(await this.deps.host(), config, paths.bundle.file.bind(paths.bundle));
      const built = buildQemuArgs(config, caps, paths);
      assertMediaPresent(config);
      assertSocketPathsFit(paths.runtime);
      this.deps.layout.ensureRuntimeDir(paths.runtime.dir);
      const release = acquireStartLock(paths.runtime, config.name);
      this.changes.fire({ kind: 'updated', vm: this.info(entry) });
      try {
        const rs = this.runStateLocked(entry);
        if (rs.state !== 'stopped') {
          const pid = 'record' in rs ? ` (pid ${rs.record.pid})` : '';
          throw errors.state(`"${config.name}" is already ${rs.state}${pid}. Stop it first or open its console.`);
        }
        clearRuntime(paths.runtime);
        const launched = await launchQemu({
          binary: built.binary,
          args: built.args,
          runtime: paths.runtime,
          logFile: paths.bundle.qemuLog,
          qemuWrites: [paths.bundle.serialLog],
          timeoutMs: Math.min(timeoutMs, 60_000),
        }).catch((e: unknown) => {
          this.recordExit(entry, paths.runtime, 'failed', e instanceof Error ? e.message : String(e));
          throw e;
        });
        const rec: RuntimeRecord = {
          pid: launched.pid,
          supervisorPid: launched.supervisorPid,
          id: entry.id,
          startedAt: new Date().toISOString(),
          accel: built.accel,
          argv: [built.binary, ...built.args],
          status: 'running',
        };
        writeRecord(paths.runtime, rec);
        this.appendEvent(entry.id, `started, pid ${rec.pid}, accel ${rec.accel}`);
        return rec;
      } finally {
        release();
      }
    });
    const info = this.emitInfo(entry.id);
    if (this.watching) void this.attach(entry.id);
    if (waitRe) await this.waitForSerial(entry, record, waitRe, Math.max(1000, timeoutMs - (Date.now() - startedAt)));
    return this.info(this.resolve(entry.id)) ?? info;
  }

  /** The stop ladder: ACPI powerdown → wait → QMP quit → SIGTERM → SIGKILL, each rung logged. */
  async stop(ref: string, options: StopOptions): Promise<VmInfo> {
    const entry = this.resolveOk(ref);
    return this.exclusive(entry.id, async () => {
      const rs = this.runState(entry);
      if (rs.state === 'stopped') return this.info(entry);
      if (rs.state === 'starting') throw errors.busy(`"${entry.config.name}" is starting. Try again in a moment.`);
      const rt = this.deps.layout.runtime(entry.id);
      const { pid } = rs.record;
      const wasPaused = rs.record.status === 'paused';
      if (!options.force) {
        // Another program holding the VM's one QMP connection must not turn a polite shutdown into
        // a kill: say so, and let the user retry or force it.
        try {
          await this.connect(entry.id);
        } catch (e) {
          if (e instanceof VivariumError && e.code === ErrorCode.Busy) {
            throw errors.busy(`${e.message} Or use --force to power "${entry.config.name}" off without asking the guest.`);
          }
          throw e;
        }
      }
      writeRecord(rt, { ...rs.record, status: 'stopping' });
      this.emitInfo(entry.id);
      let exited = false;
      if (!options.force && wasPaused) {
        this.appendEvent(entry.id, 'stop: the VM is paused, so the guest cannot answer an ACPI request; quitting QEMU');
      }
      if (!options.force && !wasPaused) {
        const timeoutMs = (options.timeoutSec ?? DEFAULTS.stopTimeoutSec) * 1000;
        try {
          await (await this.connect(entry.id)).execute('system_powerdown');
          this.appendEvent(entry.id, `stop: ACPI power button pressed, waiting up to ${timeoutMs / 1000} s`);
          exited = await waitForExit(pid, entry.id, timeoutMs);
        } catch (e) {
          this.appendEvent(entry.id, `stop: ACPI request failed (${(e as Error).message})`);
        }
        if (!exited) this.appendEvent(entry.id, 'stop: the guest did not shut down in time');
      }
      if (!exited) {
        writeFileAtomic(rt.stopRequested, `${process.pid}\n`);
        try {
          const qmp = await this.connect(entry.id);
          await qmp.execute('quit', {}, { timeoutMs: RUNG_WAIT_MS });
          this.appendEvent(entry.id, 'stop: QMP quit sent');
        } catch (e) {
          this.appendEvent(entry.id, `stop: QMP quit failed (${(e as Error).message})`);
        }
        exited = await waitForExit(pid, entry.id, RUNG_WAIT_MS);
      }
      for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
        if (exited) break;
        this.appendEvent(entry.id, `stop: sending ${sig} to ${pid}`);
        try {
          process.kill(pid, sig);
        } catch {
          // already gone
        }
        exited = await waitForExit(pid, entry.id, RUNG_WAIT_MS);
      }
      this.dropQmp(entry.id);
      if (!exited) throw errors.qemu(`QEMU (pid ${pid}) survived SIGKILL. Check the process with your system tools.`);
      // Give the supervising shell a moment to record the exit status.
      await waitForFile(rt.exitStatus, 2_000);
      this.runState(entry); // reconciles: records lastExit, clears the runtime folder
      return this.emitInfo(entry.id);
    });
  }

  async pause(ref: string): Promise<VmInfo> {
    return this.transition(ref, ['running'], 'stop', 'paused', 'pause');
  }

  async resume(ref: string): Promise<VmInfo> {
    return this.transition(ref, ['paused'], 'cont', 'running', 'resume');
  }

  async reset(ref: string): Promise<VmInfo> {
    return this.transition(ref, ['running', 'paused'], 'system_reset', null, 'reset');
  }

  async sendKeys(ref: string, keys: readonly string[]): Promise<void> {
    const entry = this.resolveOk(ref);
    this.assertRunning(entry, 'send keys to it');
    await (await this.connect(entry.id)).execute('send-key', {
      keys: keys.map((k) => ({ type: 'qcode', data: k })),
      'hold-time': 100,
    });
  }

  async screenshot(ref: string): Promise<{ readonly pngBase64: string; readonly width: number; readonly height: number }> {
    const entry = this.resolveOk(ref);
    if (entry.config.display === 'none') {
      throw errors.state(`"${entry.config.name}" has no display (it was created with --display none). Use its serial console.`);
    }
    this.assertRunning(entry, 'take a screenshot');
    const rt = this.deps.layout.runtime(entry.id);
    const file = `${rt.dir}/screen-${randomBytes(4).toString('hex')}.png`;
    try {
      await (await this.connect(entry.id)).execute('screendump', { filename: file, format: 'png' });
      const png = fs.readFileSync(file);
      if (png.length < 24 || png.readUInt32BE(0) !== 0x89504e47) throw errors.qemu('QEMU wrote an invalid screenshot.');
      return { pngBase64: png.toString('base64'), width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  // ---- long-lived mode ---------------------------------------------------------------------------

  /** Polls the library once a second and holds QMP for running VMs (events, crash detection). */
  watch(intervalMs = 1000): void {
    if (this.watching) return;
    this.watching = true;
    this.store.sweepStaging();
    const tick = () => {
      try {
        this.refresh();
      } catch (e) {
        this.deps.log?.(`refresh failed: ${(e as Error).message}`);
      }
    };
    tick();
    this.watchTimer = setInterval(tick, intervalMs);
    this.watchTimer.unref?.();
  }

  /** Re-reads the library and fires a change for every VM that differs from last time. */
  refresh(): void {
    const now = new Map<string, string>();
    for (const info of this.listSync()) {
      const key = JSON.stringify(info);
      now.set(info.id, key);
      if (this.lastSeen.get(info.id) !== key) this.changes.fire({ kind: 'updated', vm: info });
      if (this.watching && (info.state === 'running' || info.state === 'paused') && !this.qmp.has(info.id)) {
        void this.attach(info.id);
      }
    }
    for (const id of this.lastSeen.keys()) if (!now.has(id)) this.changes.fire({ kind: 'removed', id });
    this.lastSeen = now;
  }

  dispose(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watching = false;
    for (const id of [...this.qmp.keys()]) this.dropQmp(id);
    this.changes.dispose();
  }

  // ---- internals -------------------------------------------------------------------------------

  resolve(rawRef: string): BundleEntry {
    const ref = rawRef.trim();
    const all = this.store.list();
    const byId = all.find((e) => e.id === ref);
    if (byId) return byId;
    const nameOf = (e: BundleEntry) => (e.ok ? e.config.name : e.name);
    const exact = all.filter((e) => nameOf(e) === ref);
    if (exact.length === 1) return exact[0]!;
    if (exact.length > 1) throw errors.invalid(`More than one VM is named "${ref}". Use its id (see \`vivarium list\`).`);
    const folded = all.filter((e) => nameOf(e)?.toLowerCase() === ref.toLowerCase());
    if (folded.length === 1) return folded[0]!;
    if (ref.length >= 8) {
      const prefix = all.filter((e) => e.id.startsWith(ref.toLowerCase()));
      if (prefix.length === 1) return prefix[0]!;
    }
    throw errors.notFound(ref);
  }

  private resolveOk(ref: string): Extract<BundleEntry, { ok: true }> {
    const entry = this.resolve(ref);
    if (!entry.ok) {
      throw new VivariumError(ErrorCode.BrokenBundle, `VM "${entry.name ?? entry.id}" cannot be loaded: ${entry.error}`, {
        id: entry.id,
      });
    }
    return entry;
  }

  private info(entry: BundleEntry): VmInfo {
    // runState first: it may just have recorded an exit that lastExit must show.
    const rs: RunState = entry.ok ? this.runState(entry) : { state: 'stopped' };
    const lastExit = readLastExit(this.deps.layout.bundle(entry.id).lastExit);
    if (!entry.ok) {
      return {
        id: entry.id,
        name: entry.name ?? entry.id,
        state: 'broken',
        pid: null,
        accel: null,
        lastExit,
        error: entry.error,
        config: null,
        path: entry.dir,
        startedAt: null,
      };
    }
    const running = 'record' in rs ? rs.record : null;
    return {
      id: entry.id,
      name: entry.config.name,
      state: rs.state,
      pid: running?.pid ?? null,
      accel: running?.accel ?? entry.config.accel,
      lastExit,
      error: null,
      config: entry.config,
      path: entry.dir,
      startedAt: running?.startedAt ?? null,
    };
  }

  private emitInfo(id: string): VmInfo {
    const info = this.info(this.resolve(id));
    this.lastSeen.set(id, JSON.stringify(info));
    this.changes.fire({ kind: 'updated', vm: info });
    return info;
  }

  /** The VM's run state from its runtime folder; a dead QEMU is reconciled into lastExit here. */
  private runState(entry: BundleEntry): RunState {
    const rt = this.deps.layout.runtime(entry.id);
    const rec = this.recordOf(entry.id, rt);
    if (rec && isQemuFor(rec.pid, entry.id)) return { state: rec.status, record: rec };
    if (!rec && !fs.existsSync(rt.startLock)) return { state: 'stopped' };
    // QEMU is gone but its supervisor has not written the exit status yet: a moment's transition.
    if (rec && readExitStatus(rt.exitStatus) === null && pidAlive(rec.supervisorPid)) return { state: 'stopping', record: rec };
    // Either a start is in progress, or a QEMU died and nobody has noticed yet: take the start
    // lock so we never clean up under a concurrent start.
    let release: (() => void) | null = null;
    try {
      this.deps.layout.ensureRuntimeDir(rt.dir);
      release = acquireStartLock(rt, entry.ok ? entry.config.name : entry.id);
    } catch {
      return { state: 'starting', pid: null };
    }
    try {
      return this.runStateLocked(entry);
    } finally {
      release();
    }
  }

  /** Same as runState, for callers already holding the start lock. */
  private runStateLocked(entry: BundleEntry): RunState {
    const rt = this.deps.layout.runtime(entry.id);
    const rec = this.recordOf(entry.id, rt);
    if (rec && isQemuFor(rec.pid, entry.id)) return { state: rec.status, record: rec };
    if (rec) this.reconcileExit(entry, rt);
    return { state: 'stopped' };
  }

  /**
   * The runtime record of this VM. A record for another id is ignored. When the record is missing
   * but QEMU's locked pidfile names a live QEMU for this VM (the process that started it died before
   * writing the record), the VM is adopted: a record is rebuilt from QEMU's own command line, so it
   * is never orphaned or started twice.
   */
  private recordOf(id: string, rt: VmRuntimePaths): RuntimeRecord | null {
    const rec = readRecord(rt);
    if (rec) return rec.id === id ? rec : null;
    // While a start is in progress its QEMU has a pidfile but no record yet: that one is not an
    // orphan, and must not be adopted (or its QMP taken) under the starter.
    if (startLockHeld(rt)) return null;
    const pid = readPidFile(rt.pidfile);
    if (pid === null || !isQemuFor(pid, id) || process.platform !== 'linux') return null;
    const argv = safeRead(`/proc/${pid}/cmdline`).split('\0').filter((a) => a.length > 0);
    const accelArg = argv[argv.indexOf('-accel') + 1] ?? '';
    const accel = accelArg.startsWith('kvm') ? 'kvm' : accelArg.startsWith('hvf') ? 'hvf' : 'tcg';
    const ppid = Number(safeRead(`/proc/${pid}/stat`).split(') ').pop()?.split(' ')[1]);
    const adopted: RuntimeRecord = {
      pid,
      supervisorPid: Number.isInteger(ppid) && ppid > 1 ? ppid : pid,
      id,
      startedAt: new Date(fs.statSync(rt.pidfile).mtimeMs).toISOString(),
      accel,
      argv,
      status: 'running',
    };
    writeRecord(rt, adopted);
    this.appendEvent(id, `adopted QEMU pid ${pid} from its pidfile (its record was missing)`);
    return adopted;
  }

  private reconcileExit(entry: BundleEntry, rt: VmRuntimePaths): void {
    const status = readExitStatus(rt.exitStatus);
    const stopRequested = fs.existsSync(rt.stopRequested);
    const pidfileLeft = fs.existsSync(rt.pidfile);
    const signal = status !== null ? signalName(status) ?? (status === 0 && !stopRequested ? killedBy(this.deps.layout.bundle(entry.id).qemuLog) : null) : null;
    const code = status !== null && status <= 128 ? status : null;
    let reason: LastExit['reason'];
    let message: string;
    if (stopRequested) {
      reason = 'stopped';
      message = 'Stopped by Vivarium.';
    } else if (status === 0 && killedBy(this.deps.layout.bundle(entry.id).qemuLog) !== null) {
      const sig = killedBy(this.deps.layout.bundle(entry.id).qemuLog)!;
      reason = 'crashed';
      message = `QEMU was stopped by ${sig} from another program (not by the guest or Vivarium).`;
    } else if (status === 0 && !pidfileLeft) {
      reason = 'shutdown';
      message = 'The guest shut down.';
    } else if (status === null) {
      reason = 'crashed';
      message = 'QEMU stopped unexpectedly and left no exit status (was the host restarted, or its supervisor killed?).';
    } else {
      reason = 'crashed';
      message = signal
        ? `QEMU was killed by ${signal}. Start the VM again; if it keeps happening, see qemu.log in the VM folder.`
        : `QEMU exited with status ${code}. See qemu.log in the VM folder for why.`;
    }
    this.writeLastExit(entry.id, {
      reason,
      at: new Date().toISOString(),
      code,
      signal,
      message,
      stderrTail: lastLines(this.deps.layout.bundle(entry.id).qemuLog, 10),
    });
    this.appendEvent(entry.id, `exited: ${reason}${signal ? ` (${signal})` : code !== null ? ` (status ${code})` : ''}`);
    clearRuntime(rt);
    this.dropQmp(entry.id);
  }

  private recordExit(entry: BundleEntry, rt: VmRuntimePaths, reason: LastExit['reason'], message: string): void {
    this.writeLastExit(entry.id, {
      reason,
      at: new Date().toISOString(),
      code: readExitStatus(rt.exitStatus),
      signal: null,
      message,
      stderrTail: lastLines(this.deps.layout.bundle(entry.id).qemuLog, 10),
    });
    clearRuntime(rt);
  }

  private writeLastExit(id: string, exit: LastExit): void {
    try {
      writeFileAtomic(this.deps.layout.bundle(id).lastExit, `${JSON.stringify(exit, null, 2)}\n`);
    } catch {
      // The bundle may have been deleted meanwhile.
    }
  }

  private async transition(
    ref: string,
    from: readonly VmState[],
    command: string,
    to: RuntimeRecord['status'] | null,
    verb: string,
  ): Promise<VmInfo> {
    const entry = this.resolveOk(ref);
    return this.exclusive(entry.id, async () => {
      const rs = this.runState(entry);
      if (!from.includes(rs.state) || !('record' in rs)) {
        throw errors.state(`Cannot ${verb} "${entry.config.name}": it is ${rs.state}.`);
      }
      await (await this.connect(entry.id)).execute(command);
      if (to) writeRecord(this.deps.layout.runtime(entry.id), { ...rs.record, status: to });
      this.appendEvent(entry.id, verb);
      return this.emitInfo(entry.id);
    });
  }

  /**
   * The engine's QMP connection to a running VM, for other services (stats) that must not open a
   * second one: QEMU serves one QMP client at a time. Do not close it; it lives as long as the VM.
   */
  qmpFor(id: string): Promise<QmpClient> {
    return this.connect(id);
  }

  /** One QMP connection per VM per engine; QEMU allows only one client at a time. */
  private connect(id: string): Promise<QmpClient> {
    const existing = this.qmp.get(id);
    if (existing) return existing;
    const rt = this.deps.layout.runtime(id);
    const p = QmpClient.connect(rt.qmp, { timeoutMs: 3000 }).then(async (client) => {
      const uuid = await client.execute<{ UUID: string }>('query-uuid');
      if (uuid.UUID !== id) {
        client.close();
        throw errors.state(`The control socket of VM ${id} belongs to another VM (${uuid.UUID}).`);
      }
      client.onClose(() => {
        if (this.qmp.get(id) === p) this.qmp.delete(id);
        if (this.watching) setTimeout(() => this.refresh(), 200);
      });
      client.onEvent((e) => {
        if (e.event === 'STOP' || e.event === 'RESUME') {
          const rec = readRecord(rt);
          if (rec && rec.status !== 'stopping') {
            writeRecord(rt, { ...rec, status: e.event === 'STOP' ? 'paused' : 'running' });
            if (this.watching) this.refresh();
          }
        }
      });
      return client;
    });
    this.qmp.set(id, p);
    p.catch(() => {
      if (this.qmp.get(id) === p) this.qmp.delete(id);
    });
    return p;
  }

  /** Long-lived mode: take the QMP connection of a running VM to hear its events. */
  private async attach(id: string): Promise<void> {
    try {
      await this.connect(id);
    } catch (e) {
      this.deps.log?.(`could not attach to VM ${id}: ${(e as Error).message}`);
    }
  }

  private dropQmp(id: string): void {
    const p = this.qmp.get(id);
    this.qmp.delete(id);
    p?.then((c) => c.close()).catch(() => undefined);
  }

  /** Serializes operations on one VM within this engine. */
  private async exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.busy.get(id) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    this.busy.set(id, run);
    try {
      return await run;
    } finally {
      if (this.busy.get(id) === run) this.busy.delete(id);
    }
  }

  private async waitForSerial(entry: Extract<BundleEntry, { ok: true }>, rec: RuntimeRecord, re: RegExp, timeoutMs: number): Promise<void> {
    const file = this.deps.layout.bundle(entry.id).serialLog;
    const deadline = Date.now() + timeoutMs;
    let offset = 0;
    let window = '';
    for (;;) {
      const chunk = readFrom(file, offset);
      if (chunk.length > 0) {
        offset += chunk.length;
        window = (window + chunk.toString('utf8')).slice(-256 * 1024);
        if (re.test(window)) return;
      }
      if (!isQemuFor(rec.pid, entry.id)) {
        const info = this.info(this.resolve(entry.id));
        throw errors.qemu(
          `"${entry.config.name}" stopped before its serial output matched /${re.source}/: ${info.lastExit?.message ?? 'QEMU exited.'}`,
          { lastExit: info.lastExit },
        );
      }
      if (Date.now() > deadline) {
        throw errors.timeout(
          `The serial output of "${entry.config.name}" did not match /${re.source}/ within ${Math.round(timeoutMs / 1000)} s. The VM is still running: see \`vivarium serial "${entry.config.name}" --log\`, or stop it.`,
        );
      }
      await sleep(25);
    }
  }

  private assertNameFree(name: string, exceptId: string | null): void {
    const clash = this.store
      .list()
      .find((e) => e.id !== exceptId && (e.ok ? e.config.name : e.name)?.toLowerCase() === name.trim().toLowerCase());
    if (clash) {
      const existing = clash.ok ? clash.config.name : clash.name;
      const caseNote = existing !== name.trim() ? ' (names are compared without regard to case)' : '';
      throw new VivariumError(ErrorCode.AlreadyExists, `A VM named "${existing}" already exists${caseNote}. Choose another name.`);
    }
  }

  private assertStopped(entry: BundleEntry, what: string): void {
    const rs = this.runState(entry);
    if (rs.state !== 'stopped') {
      const name = entry.ok ? entry.config.name : entry.id;
      throw errors.state(`"${name}" is ${rs.state}. Shut it down first (vivarium stop ${shellArg(name)}), then ${what}.`);
    }
  }

  private assertRunning(entry: Extract<BundleEntry, { ok: true }>, what: string): void {
    const rs = this.runState(entry);
    if (rs.state !== 'running' && rs.state !== 'paused') {
      throw errors.state(`"${entry.config.name}" is ${rs.state}. Start it to ${what}.`);
    }
  }

  private async makeUefiVars(qemuImg: QemuImg, template: string, format: 'raw' | 'qcow2', dest: string): Promise<void> {
    // qcow2 so that internal snapshots work later (qemu-notes §2).
    await qemuImg.convert(template, format, dest, 'qcow2');
  }

  private appendEvent(id: string, line: string): void {
    try {
      fs.appendFileSync(this.deps.layout.bundle(id).eventLog, `${new Date().toISOString()} ${line}\n`);
    } catch {
      // Logging must never fail an operation.
    }
    this.deps.log?.(`[${id.slice(0, 8)}] ${line}`);
  }
}

// ---- helpers ------------------------------------------------------------------------------------

/** A VM name as one shell word, for commands we suggest: names are any text, and a suggestion
 *  that is pasted into a terminal must never run part of a name. */
export function shellArg(s: string): string {
  return /^[A-Za-z0-9_./:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function randomMac(): string {
  const b = randomBytes(3);
  return `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

function assertReadableFile(what: string, p: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw errors.invalid(`${what} not found: ${p}. Check the path and try again.`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw errors.invalid(`${what} ${p} is not a file. Give the path of the ${what.toLowerCase()} file.`);
  try {
    fs.accessSync(p, fs.constants.R_OK);
  } catch {
    throw errors.invalid(`${what} ${p} is not readable by you. Fix its permissions and try again.`);
  }
}

/**
 * `cache.direct=on,aio=native` needs O_DIRECT, which some filesystems refuse (tmpfs — /tmp on many
 * distributions — and some network and FUSE filesystems): QEMU would then fail to open the disk.
 * Try it on each disk and fall back to QEMU's defaults for this start when any refuses.
 */
function withDirectIoWhereSupported(caps: HostCapabilities, c: VmConfig, bundleFile: (name: string) => string): HostCapabilities {
  const O_DIRECT = (fs.constants as Record<string, number>).O_DIRECT;
  if (!caps.nativeAio || O_DIRECT === undefined) return caps;
  for (const d of c.disks) {
    const file = 'bundle' in d.source ? bundleFile(d.source.bundle) : d.source.path;
    try {
      fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | O_DIRECT));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EINVAL') return { ...caps, nativeAio: false };
      // Missing or unreadable files are reported elsewhere, with better words.
    }
  }
  return caps;
}

/** A VM can't be given more memory than the host has: QEMU would only fail later, at start. */
function assertMemoryFits(memoryMiB: number): void {
  const hostMiB = Math.floor(os.totalmem() / 1024 ** 2);
  if (memoryMiB > hostMiB) {
    throw errors.invalid(`${memoryMiB} MiB is more memory than this host has (${hostMiB} MiB). Give the VM less, e.g. --memory ${Math.max(256, Math.floor(hostMiB / 2 / 256) * 256)}M.`);
  }
}

/** Unix socket paths are capped at 108 bytes on Linux and 104 on macOS. */
function assertSocketPathsFit(rt: VmRuntimePaths): void {
  const longest = [rt.qmp, rt.serial, rt.vnc, rt.qga].reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a));
  if (Buffer.byteLength(longest) > 103) {
    throw errors.state(
      `The runtime folder path is too long for unix sockets (${longest}). Set VIVARIUM_RUNTIME_DIR to a short folder such as /tmp/vivarium-$USER and try again.`,
    );
  }
}

function assertMediaPresent(c: VmConfig): void {
  const check = (what: string, p: string | null | undefined, flag: string) => {
    if (p && !fs.existsSync(p)) {
      throw errors.state(`${what} ${p} no longer exists. Put it back or change it: vivarium edit ${shellArg(c.name)} ${flag} PATH.`);
    }
  };
  check('The ISO', c.cdrom, '--iso');
  check('The kernel', c.kernel?.path, '--kernel');
  check('The initrd', c.kernel?.initrd, '--initrd');
  for (const d of c.disks) if ('path' in d.source) check('The disk image', d.source.path, '--disk');
}

/**
 * The start lock: created with O_EXCL and holding our pid, so two concurrent starts (two CLIs, a
 * CLI and the app) can never both launch QEMU. A lock whose owner died is stale and taken over.
 */
function acquireStartLock(rt: VmRuntimePaths, name: string): () => void {
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written whole under a temporary name, then hard-linked into place (atomic, fails if it exists):
    // a reader never sees an empty lock and takes it for a stale one.
    const tmp = `${rt.startLock}.${process.pid}.${randomBytes(4).toString('hex')}`;
    fs.writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
    try {
      fs.linkSync(tmp, rt.startLock);
      return () => fs.rmSync(rt.startLock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number.parseInt(safeRead(rt.startLock), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
        throw errors.busy(`"${name}" is being started by another Vivarium process (pid ${owner}). Wait for it to finish.`);
      }
      if (owner === process.pid) {
        throw errors.busy(`"${name}" is already being started. Wait for it to finish.`);
      }
      fs.rmSync(rt.startLock, { force: true });
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  throw errors.busy(`Could not lock "${name}" for starting. Try again.`);
}

/** QEMU logs "terminating on signal N" when a signal (not the guest, not QMP) ends it. */
function killedBy(qemuLog: string): string | null {
  const m = /terminating on signal (\d+)/.exec(lastLines(qemuLog, 5).join('\n'));
  return m ? signalName(128 + Number(m[1])) : null;
}

/** Whether a live process holds the VM's start lock. */
function startLockHeld(rt: VmRuntimePaths): boolean {
  const owner = Number.parseInt(safeRead(rt.startLock), 10);
  return Number.isInteger(owner) && owner > 0 && pidAlive(owner);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Removes what a previous QEMU left behind (sockets, pidfile, status), never the start lock. */
function clearRuntime(rt: VmRuntimePaths): void {
  for (const f of [rt.record, rt.pidfile, rt.exitStatus, rt.stopRequested, rt.qmp, rt.serial, rt.vnc, rt.qga]) {
    fs.rmSync(f, { force: true });
  }
}

function readLastExit(file: string): LastExit | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LastExit;
  } catch {
    return null;
  }
}

function readFrom(file: string, offset: number): Buffer {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (size < offset) return Buffer.alloc(0);
      const len = Math.min(size - offset, 1024 * 1024);
      const buf = Buffer.alloc(len);
      const n = fs.readSync(fd, buf, 0, len, offset);
      return buf.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return Buffer.alloc(0);
  }
}

async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(file) && Date.now() < deadline) await sleep(20);
}
