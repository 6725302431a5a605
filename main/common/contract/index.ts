/**
 * The one contract. Every front end (Electron window, browser, CLI, tests) reaches the engine only
 * through these service interfaces, and every argument is checked against the zod tuple declared for
 * its method before the service sees it (main/common/rpc/server.ts).
 *
 * Conventions: methods return promises; members named `onDidX` are events (subscribe with a
 * listener, get a Disposable back).
 *
 * One file per service (vms.ts, host.ts, stats.ts, console.ts). To add a service (snapshots, disks,
 * media…): write `<name>.ts` with its interface and its `ServiceSchema`, then add one line to
 * `Services` and one to `contract` below. Generic code — the RPC server and client, the in-process
 * validation, the test fakes — iterates `SERVICE_NAMES` and needs no change.
 */
import type { ConsoleService } from './console';
import { consoleSchema } from './console';
import type { HostService } from './host';
import { hostSchema } from './host';
import type { ServiceSchema } from './shared';
import type { StatsService } from './stats';
import { statsSchema } from './stats';
import type { VmService } from './vms';
import { vmsSchema } from './vms';
import type { MediaService } from './media';
import { mediaContract } from './media';
import type { SnapshotService } from './snapshots';
import { snapshotsSchema } from './snapshots';
import type { SandboxService } from './sandbox';
import { sandboxSchema } from './sandbox';
import type { DiskService } from './disks';
import { disksSchema } from './disks';

export * from './shared';
export * from './vms';
export * from './host';
export * from './stats';
export * from './console';
export * from './media';
export * from './snapshots';
export * from './sandbox';
export * from './disks';

export interface Services {
  readonly vms: VmService;
  readonly host: HostService;
  readonly stats: StatsService;
  readonly console: ConsoleService;
  readonly media: MediaService;
  readonly snapshots: SnapshotService;
  readonly sandbox: SandboxService;
  readonly disks: DiskService;
}

export type ServiceName = keyof Services;

export type Contract = { readonly [K in ServiceName]: ServiceSchema<Services[K]> };

/** The schema table: per service, a zod tuple per method and the list of events. */
export const contract: Contract = {
  vms: vmsSchema,
  host: hostSchema,
  stats: statsSchema,
  console: consoleSchema,
  media: mediaContract,
  snapshots: snapshotsSchema,
  sandbox: sandboxSchema,
  disks: disksSchema,
};

export const SERVICE_NAMES = Object.keys(contract) as readonly ServiceName[];
