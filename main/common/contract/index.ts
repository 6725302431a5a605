/**
 * The one contract. Every front end (Electron window, browser, CLI, tests) reaches the engine only
 * through these service interfaces, and every argument is checked against the zod tuple declared for
 * its method before the service sees it (main/common/rpc/server.ts).
 *
 * Conventions: methods return promises; members named `onDidX` are events (subscribe with a
 * listener, get a Disposable back).
 */
import { z } from 'zod';
import type { HostReport } from '../models/host-report';
import {
  AccelChoice,
  Arch,
  DisplayKind,
  Firmware,
  MAX_CPUS,
  MAX_MEMORY_MIB,
  MIN_MEMORY_MIB,
  NetMode,
  PortForward,
  VmName,
} from '../models/vm-config';
import type { VmChange, VmDetails, VmInfo } from '../models/vm-state';
import type { StatsSample } from '../models/stats';

export interface Disposable {
  dispose(): void;
}
export type Event<T> = (listener: (e: T) => void) => Disposable;

// ---- argument schemas ----------------------------------------------------------------------------

/** A VM reference: its name or its id. */
export const VmRef = z.string().min(1, 'a VM name or id is required').max(200);

/** A host path from a front end: absolute (a relative one would resolve against whichever process
 *  happens to serve the call), without NUL or `..` segments. */
const AbsPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'must not contain NUL')
  .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'must be an absolute path')
  .refine((p) => !p.split(/[\\/]/).includes('..'), 'must not contain ".." segments');

/** A name for a new or renamed VM: any text, but not something that reads as a VM id, so that a
 *  NAME argument can never mean two VMs. */
const NewVmName = VmName.refine((n) => !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(n), 'a VM name must not look like a VM id');

/** Port forwards: each host port (per protocol) at most once, or QEMU refuses to start. */
const Forwards = z
  .array(PortForward)
  .max(64)
  .refine(
    (list) => new Set(list.map((f) => `${f.protocol}:${f.hostPort}`)).size === list.length,
    'two port forwards use the same host port',
  );

export const CreateVmSpec = z
  .object({
    name: NewVmName,
    arch: Arch.optional(),
    cpus: z.number().int().min(1).max(MAX_CPUS).optional(),
    memoryMiB: z.number().int().min(MIN_MEMORY_MIB, `memory must be at least ${MIN_MEMORY_MIB} MiB`).max(MAX_MEMORY_MIB, 'memory must be at most 1 TiB').optional(),
    accel: AccelChoice.optional(),
    firmware: Firmware.optional(),
    /** Size of a new, empty qcow2 disk. 0 = no disk. Ignored when diskPath is given. */
    diskSizeBytes: z.number().int().min(0).max(64 * 1024 ** 4).optional(),
    /** Use an existing disk image in place (never deleted by Vivarium). */
    diskPath: AbsPath.optional(),
    iso: AbsPath.optional(),
    kernel: AbsPath.optional(),
    initrd: AbsPath.optional(),
    append: z.string().max(4096).optional(),
    net: NetMode.optional(),
    forwards: Forwards.optional(),
    display: DisplayKind.optional(),
    os: z.string().max(100).optional(),
  })
  .strict();
export type CreateVmSpec = z.infer<typeof CreateVmSpec>;

export const EditVmSpec = z
  .object({
    name: NewVmName.optional(),
    cpus: z.number().int().min(1).max(MAX_CPUS).optional(),
    memoryMiB: z.number().int().min(MIN_MEMORY_MIB, `memory must be at least ${MIN_MEMORY_MIB} MiB`).max(MAX_MEMORY_MIB, 'memory must be at most 1 TiB').optional(),
    accel: AccelChoice.optional(),
    firmware: Firmware.optional(),
    /** null removes the CD. */
    iso: AbsPath.nullable().optional(),
    /** null removes direct kernel boot. */
    kernel: AbsPath.nullable().optional(),
    initrd: AbsPath.nullable().optional(),
    append: z.string().max(4096).optional(),
    net: NetMode.optional(),
    forwards: Forwards.optional(),
    display: DisplayKind.optional(),
    os: z.string().max(100).optional(),
  })
  .strict();
export type EditVmSpec = z.infer<typeof EditVmSpec>;

export const StartOptions = z
  .object({
    /** Resolve only once the guest's serial output matches this regular expression. */
    waitSerial: z.string().max(1000).optional(),
    timeoutSec: z.number().positive().max(3600).optional(),
  })
  .strict();
export type StartOptions = z.infer<typeof StartOptions>;

export const StopOptions = z
  .object({
    /** Skip the ACPI request: quit QEMU at once (then TERM, then KILL). */
    force: z.boolean().optional(),
    /** How long to wait for the guest to shut down after the ACPI request. */
    timeoutSec: z.number().min(0).max(3600).optional(),
  })
  .strict();
export type StopOptions = z.infer<typeof StopOptions>;

export const DeleteOptions = z.object({ keepDisks: z.boolean().optional() }).strict();
export type DeleteOptions = z.infer<typeof DeleteOptions>;

/** QEMU qcodes ("ctrl", "alt", "delete", "a", "f1"…). */
export const KeyCombo = z.array(z.string().regex(/^[a-z0-9_]{1,20}$/)).min(1).max(8);

export const SerialLogOptions = z.object({ maxBytes: z.number().int().min(1).max(16 * 1024 * 1024).optional() }).strict();

// ---- services ------------------------------------------------------------------------------------

export interface VmService {
  list(): Promise<readonly VmInfo[]>;
  get(ref: string): Promise<VmDetails>;
  create(spec: CreateVmSpec): Promise<VmInfo>;
  edit(ref: string, patch: EditVmSpec): Promise<VmInfo>;
  /** Removes the VM. With keepDisks, its own disk images are moved out of the bundle first; the
   *  result lists where they went. */
  delete(ref: string, options: DeleteOptions): Promise<{ readonly keptFiles: readonly string[] }>;
  start(ref: string, options: StartOptions): Promise<VmInfo>;
  stop(ref: string, options: StopOptions): Promise<VmInfo>;
  pause(ref: string): Promise<VmInfo>;
  resume(ref: string): Promise<VmInfo>;
  reset(ref: string): Promise<VmInfo>;
  sendKeys(ref: string, keys: readonly string[]): Promise<void>;
  /** A PNG of the guest's screen, base64. */
  screenshot(ref: string): Promise<{ readonly pngBase64: string; readonly width: number; readonly height: number }>;
  /** What the guest has written to its serial port so far (the tail, up to maxBytes). */
  serialLog(ref: string, options: { maxBytes?: number }): Promise<string>;
  onDidChange: Event<VmChange>;
}

export interface HostService {
  /** What this host can run: QEMU binaries, accelerators (and why not), firmware. */
  doctor(): Promise<HostReport>;
}

export interface StatsService {
  /** One sample covering about `windowMs` (default 1000): host and running VMs. */
  sample(options: { vm?: string; windowMs?: number }): Promise<StatsSample>;
  /** Live samples, about once a second, while at least one listener is subscribed. */
  onDidSample: Event<StatsSample>;
}

export const StreamKind = z.enum(['serial', 'vnc']);
export type StreamKind = z.infer<typeof StreamKind>;

export const StreamOptions = z
  .object({
    /** Serial only: first send what the guest already wrote (default true; a terminal attach that
     *  only wants what comes next says false). */
    history: z.boolean().optional(),
  })
  .strict();
export type StreamOptions = z.infer<typeof StreamOptions>;

export interface ConsoleService {
  /**
   * A single-use WebSocket URL carrying the raw bytes of a VM's serial console or VNC display
   * (the engine relays the unix socket; QEMU never listens on TCP). The ticket in the URL expires
   * after 30 s if unused.
   */
  openStream(ref: string, kind: StreamKind, options?: StreamOptions): Promise<{ readonly url: string }>;
}

export interface Services {
  readonly vms: VmService;
  readonly host: HostService;
  readonly stats: StatsService;
  readonly console: ConsoleService;
}

// ---- the schema table ------------------------------------------------------------------------------

type MethodNames<S> = { [K in keyof S]: K extends `onDid${string}` ? never : K }[keyof S] & string;
type EventNames<S> = { [K in keyof S]: K extends `onDid${string}` ? K : never }[keyof S] & string;

export interface ServiceSchema<S> {
  readonly methods: { readonly [M in MethodNames<S>]: z.ZodTuple };
  readonly events: readonly EventNames<S>[];
}

export type Contract = { readonly [K in keyof Services]: ServiceSchema<Services[K]> };

export const contract: Contract = {
  vms: {
    methods: {
      list: z.tuple([]),
      get: z.tuple([VmRef]),
      create: z.tuple([CreateVmSpec]),
      edit: z.tuple([VmRef, EditVmSpec]),
      delete: z.tuple([VmRef, DeleteOptions]),
      start: z.tuple([VmRef, StartOptions]),
      stop: z.tuple([VmRef, StopOptions]),
      pause: z.tuple([VmRef]),
      resume: z.tuple([VmRef]),
      reset: z.tuple([VmRef]),
      sendKeys: z.tuple([VmRef, KeyCombo]),
      screenshot: z.tuple([VmRef]),
      serialLog: z.tuple([VmRef, SerialLogOptions]),
    },
    events: ['onDidChange'],
  },
  host: {
    methods: { doctor: z.tuple([]) },
    events: [],
  },
  stats: {
    methods: {
      sample: z.tuple([
        z.object({ vm: VmRef.optional(), windowMs: z.number().int().min(100).max(10_000).optional() }).strict(),
      ]),
    },
    events: ['onDidSample'],
  },
  console: {
    methods: { openStream: z.tuple([VmRef, StreamKind, StreamOptions.optional()]) },
    events: [],
  },
};

export type ServiceName = keyof Services;
export const SERVICE_NAMES = Object.keys(contract) as readonly ServiceName[];
