/**
 * The engine: every service of the contract, wired together. Front ends (CLI, `vivarium serve`,
 * the Electron app) create one and hand `services` to an RpcServer or call it directly.
 */
import type { ConsoleService, HostService, Services, StatsService } from '../common/contract';
import { ErrorCode, VivariumError } from '../common/errors';
import type { HostCapabilities } from '../common/models/host';
import { Layout, makeLibraryPrivate } from './paths';
import { defaultsFor } from './host-defaults';
import { browseFolder } from './host/file-chooser';
import * as os from 'node:os';
import { hostReport, probeHost } from './qemu/host-probe';
import { configNames, MediaManager } from './media/media-service';
import { StatsEngine } from './stats/stats-service';
import { LocalVmService as VmManager } from './vm-service';
import { LocalSandboxService } from './sandbox/sandbox-service';
import { openSystemTerminal } from './terminal/system-terminal';
import { GuestClockSync } from './sandbox/clock-sync';
import { LocalDiskService } from './hardware/disk-service';
import { LocalSnapshotService } from './snapshots/snapshot-service';

/** Where a library's files and sockets are: front ends find a running engine with it before they
 *  create one of their own (the CLI). */
export { Layout, type VmRuntimePaths } from './paths';

export interface EngineOptions {
  readonly layout?: Layout;
  readonly env?: NodeJS.ProcessEnv;
  /** Long-lived hosts (serve, app) watch the library and hold QMP for events. */
  readonly watch?: boolean;
  /** Provided by hosts that run a stream bridge (serve, app). */
  readonly console?: ConsoleService;
  readonly stats?: StatsService;
  readonly log?: (line: string) => void;
  /** The desktop app: sandbox.openTerminal opens the user's terminal application (issue 11). */
  readonly systemTerminal?: boolean;
}

export interface Engine {
  readonly layout: Layout;
  readonly services: Services;
  readonly manager: VmManager;
  host(): Promise<HostCapabilities>;
  /** Stops the engine's work; resolves once downloads have written what arrived (media.dispose) and
   *  the VMs' event logs (vivarium.log) hold every line appended so far. */
  dispose(): Promise<void>;
}

export function createEngine(options: EngineOptions = {}): Engine {
  const env = options.env ?? process.env;
  const layout = options.layout ?? Layout.fromEnv(env);
  // Everything this engine (and the QEMU/qemu-img it spawns) writes is owner-only (issue 8).
  void makeLibraryPrivate(layout.home, options.log ?? ((line) => void process.stderr.write(`vivarium: ${line}\n`)));
  let caps: Promise<HostCapabilities> | null = null;
  const host = (): Promise<HostCapabilities> => {
    caps ??= probeHost({ env, cacheFile: layout.hostCache }).catch((e: unknown) => {
      caps = null;
      throw e;
    });
    return caps as Promise<HostCapabilities>;
  };
  const manager = new VmManager({ layout, host, log: options.log });
  const hostService: HostService = {
    doctor: async () => {
      // Probe afresh each time ("Check again" after installing QEMU or joining the kvm group); the
      // probe cache's fingerprint (binaries, /dev/kvm, firmware folders) keeps this a few stat()s.
      caps = null;
      return hostReport(await host(), layout);
    },
    defaults: async (o) => defaultsFor(await host(), o),
    browse: (o) => browseFolder(o, { home: os.homedir() }),
  };
  // Built here unless the host brings its own; either way one sampler serves every client.
  let ownStats: StatsEngine | null = null;
  const stats: StatsService = options.stats ?? (ownStats = new StatsEngine({ vms: manager, layout, log: options.log }));
  const media = new MediaManager({
    dir: layout.mediaDir,
    log: options.log,
    qemuImg: async () => (await host()).qemuImg,
    inUse: async (file) => (await manager.list()).find((vm) => configNames(vm.config, file))?.name ?? null,
  });
  const snapshots = new LocalSnapshotService({ vms: manager, layout, host, log: options.log });
  const services: Services = {
    media,
    snapshots,
    sandbox: new LocalSandboxService({
      vms: manager,
      layout,
      ...(options.systemTerminal ? { openTerminal: (cmd, vm) => openSystemTerminal(cmd, { platform: process.platform, env, scriptDir: vm.runtimeDir, title: vm.name }) } : {}),
    }),
    disks: new LocalDiskService({ vms: manager, layout, host }),
    vms: manager,
    host: hostService,
    stats,
    console: options.console ?? {
      openStream: async () => {
        throw new VivariumError(
          ErrorCode.Unsupported,
          'Live consoles are served by a running engine. Start one with `vivarium serve` (or open the app) and try again.',
        );
      },
    },
  };
  if (options.watch) manager.watch();
  // Long-lived engines set running guests' clocks (guest agent) after the host slept (issue 11).
  const clockSync = options.watch
    ? new GuestClockSync({
        targets: () => manager.listSync().filter((v) => v.state === 'running').map((v) => ({ name: v.name, qgaSocket: layout.runtime(v.id).qga })),
        log: options.log,
      }).start()
    : null;
  // Long-lived engines go on with downloads an earlier engine was running when it stopped.
  if (options.watch) void media.resumeInterrupted().catch((e: unknown) => options.log?.(`media: ${String(e)}`));
  return {
    layout,
    services,
    manager,
    host,
    dispose: async () => {
      ownStats?.dispose();
      clockSync?.dispose();
      snapshots.dispose();
      manager.dispose();
      // A short-lived engine (one CLI command) ends its process right after this: every line of the
      // VMs' vivarium.log appended so far must be on disk first.
      await manager.events.flushed();
      // …and a deleted VM's files, which are removed off the event loop (BundleStore.remove).
      await manager.library.store.settled();
      // Last, and awaited: a download stopped by the shutdown writes what has arrived before the
      // process may end (the download says so: "paused, with what has arrived kept").
      await media.dispose();
    },
  };
}
