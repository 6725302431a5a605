/**
 * The `vms` service: the library (list, get, create, edit, delete) and each VM's lifecycle.
 *
 * The spec schemas carry the cross-field rules of a create or an edit *with field paths*, so a form
 * gets one message per field straight from `safeParse`, and the engine refuses the same input with
 * the same sentence (main/common/models/vm-settings.ts applies the rules that need the current
 * config or the host).
 */
import { z } from 'zod';
import { AccelChoice, Arch, BootDevice, DiskBus, DisplayKind, Firmware, MAX_CPUS, MAX_MEMORY_MIB, MIN_MEMORY_MIB, NetMode, NewVmName, NicModel, PortForward, RULE_MESSAGES } from '../models/vm-config';
import type { VmChange, VmDetails, VmInfo } from '../models/vm-state';
import { Remedy } from '../errors';
import { AbsPath, VmRef, lazySchema, lazyTuples, type Event, type ServiceSchema } from './shared';
import { CloudCreateSpec } from './sandbox';
import { PresetHints } from './media';

/** The remedy a cross-field rule suggests, carried in the zod issue's params (see `issueRemedy`). */
function ruleRemedy(remedy: Remedy): { readonly remedy: Remedy } {
  return { remedy };
}

/** The remedy a schema rule attached to an issue, if any. */
export function issueRemedy(issue: { readonly code: string; readonly params?: unknown }): Remedy | undefined {
  if (issue.code !== 'custom' || typeof issue.params !== 'object' || issue.params === null) return undefined;
  const parsed = Remedy.safeParse((issue.params as { remedy?: unknown }).remedy);
  return parsed.success ? parsed.data : undefined;
}


/** Port forwards: each host port (per protocol) at most once, or QEMU refuses to start. */
const Forwards = z
  .array(PortForward)
  .max(64)
  .refine(
    (list) => new Set(list.map((f) => `${f.protocol}:${f.hostPort}`)).size === list.length,
    'two port forwards use the same host port',
  );

/** vCPUs: the absolute bound; what a machine type can start is checked against the host. */
const Cpus = z.number().int().min(1, 'a VM needs at least 1 CPU').max(MAX_CPUS, `at most ${MAX_CPUS} CPUs`);
/** Memory in MiB: the absolute bounds; what the host has is checked against the host. */
const MemoryMiB = z
  .number()
  .int()
  .min(MIN_MEMORY_MIB, `memory must be at least ${MIN_MEMORY_MIB} MiB`)
  .max(MAX_MEMORY_MIB, 'memory must be at most 1 TiB');

/** The machine's size and kind, as create and edit take them: each optional (absent = the engine's
 *  default at create, unchanged at edit). */
const machineSettings = () => ({
  cpus: Cpus.optional(),
  memoryMiB: MemoryMiB.optional(),
  accel: AccelChoice.optional(),
  firmware: Firmware.optional(),
});

/** The other settings create and edit take alike (each optional, as machineSettings). */
const sharedSettings = () => ({
  append: z.string().max(4096).optional(),
  net: NetMode.optional(),
  forwards: Forwards.optional(),
  display: DisplayKind.optional(),
  os: z.string().max(100).optional(),
  /** Start the VM whenever an engine with autostart starts (the app, `vivarium serve --autostart`). */
  autostart: z.boolean().optional(),
  /** Firmware boot order (models/vm-config.ts BootOrder; default disk, then CD). */
  bootOrder: z.array(BootDevice).min(1).max(3).optional(),
  /** Show the firmware's boot menu at start. */
  bootMenu: z.boolean().optional(),
  /** A TPM 2.0 (a per-VM swtpm). */
  tpm: z.boolean().optional(),
  /** UEFI Secure Boot with Microsoft's keys enrolled (needs UEFI firmware). */
  secureBoot: z.boolean().optional(),
});

export const CreateVmSpec = lazySchema(() =>
  z
    .object({
      name: NewVmName,
      arch: Arch.optional(),
      ...machineSettings(),
      /** Size of a new, empty qcow2 disk. 0 = no disk. */
      diskSizeBytes: z.number().int().min(0).max(64 * 1024 ** 4, 'disk size must be at most 64 TiB').optional(),
      /** Use an existing disk image in place (never deleted by Vivarium). */
      diskPath: AbsPath.optional(),
      /** The system disk's bus (default virtio); an OS preset whose installer lacks virtio drivers
       *  (Windows) picks sata or nvme (models/vm-config.ts DiskBus). */
      diskBus: DiskBus.optional(),
      iso: AbsPath.optional(),
      kernel: AbsPath.optional(),
      initrd: AbsPath.optional(),
      ...sharedSettings(),
      /** The network card (default virtio-net-pci; e1000e for guests without virtio drivers). */
      nicModel: NicModel.optional(),
      /** An OS preset whose hardware fills what the spec leaves open (main/common/models/presets.ts). */
      preset: PresetHints.shape.preset.optional(),
      /** Create the VM from a disk image or appliance (qcow2, raw, vmdk, vdi, vhdx, vhd, ova, ovf):
       *  `copy` converts its disks to qcow2 in the bundle, `attach` uses qcow2/raw in place.
       *  CPUs, memory and UEFI come from an OVF unless given (main/services/imports). */
      import: z.object({ path: AbsPath, mode: z.enum(['copy', 'attach']) }).strict().optional(),
      /** A developer sandbox from a cloud image (issue 11): its disk is a qcow2 overlay on the image
       *  (never modified), grown to `diskSizeBytes`, with a cloud-init seed (contract/sandbox.ts). */
      cloud: CloudCreateSpec.optional(),
    })
    .strict()
    .superRefine((s, ctx) => {
      if (s.net === 'none' && (s.forwards?.length ?? 0) > 0) {
        ctx.addIssue({ code: 'custom', path: ['forwards'], message: RULE_MESSAGES.forwardsNeedNetwork, params: ruleRemedy({ kind: 'change-setting', field: 'net', to: 'user' }) });
      }
      if (s.iso !== undefined && s.kernel !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['kernel'], message: RULE_MESSAGES.isoOrKernel, params: ruleRemedy({ kind: 'change-setting', field: 'iso', to: null }) });
      }
      if (s.kernel === undefined) {
        const needKernel = ruleRemedy({ kind: 'change-setting', field: 'kernel' });
        if (s.initrd !== undefined) ctx.addIssue({ code: 'custom', path: ['initrd'], message: RULE_MESSAGES.kernelPartsNeedKernel, params: needKernel });
        if (s.append !== undefined) ctx.addIssue({ code: 'custom', path: ['append'], message: RULE_MESSAGES.kernelPartsNeedKernel, params: needKernel });
      }
      if (s.diskPath !== undefined && s.diskSizeBytes !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['diskSizeBytes'], message: RULE_MESSAGES.diskPathOrSize, params: ruleRemedy({ kind: 'change-setting', field: 'diskSizeBytes', to: null }) });
      }
    }),
);
export type CreateVmSpec = z.infer<typeof CreateVmSpec>;

/**
 * A patch: absent = unchanged. Rules that depend on the current config (a forward added to a VM
 * without networking, an ISO added to a VM that boots a kernel) are checked by `applyEdit` on the
 * result, with the same sentences and field paths.
 */
export const EditVmSpec = lazySchema(() =>
  z
    .object({
      name: NewVmName.optional(),
      ...machineSettings(),
      /** null removes the CD. */
      iso: AbsPath.nullable().optional(),
      /** null removes direct kernel boot. */
      kernel: AbsPath.nullable().optional(),
      initrd: AbsPath.nullable().optional(),
      ...sharedSettings(),
    })
    .strict()
    .superRefine((s, ctx) => {
      if (s.net === 'none' && (s.forwards?.length ?? 0) > 0) {
        ctx.addIssue({ code: 'custom', path: ['forwards'], message: RULE_MESSAGES.forwardsNeedNetwork, params: ruleRemedy({ kind: 'change-setting', field: 'net', to: 'user' }) });
      }
      if (typeof s.iso === 'string' && typeof s.kernel === 'string') {
        ctx.addIssue({ code: 'custom', path: ['kernel'], message: RULE_MESSAGES.isoOrKernel, params: ruleRemedy({ kind: 'change-setting', field: 'iso', to: null }) });
      }
    }),
);
export type EditVmSpec = z.infer<typeof EditVmSpec>;

/** The longest `waitSerial` pattern, in characters (patterns arrive from outside: issue 8 item 2). */
export const MAX_WAIT_SERIAL_CHARS = 1000;

export const StartOptions = z
  .object({
    /** Resolve only once the guest's serial output matches this regular expression. */
    waitSerial: z.string().max(MAX_WAIT_SERIAL_CHARS).optional(),
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

/** keepDisks: move the VM's own disk images out of its folder first. flattenClones: give linked
 *  clones standing on its disks standalone images first (they must be shut down and have no
 *  snapshots); without it such a delete is refused with data `{linkedClones: [names]}`. */
export const DeleteOptions = z.object({ keepDisks: z.boolean().optional(), flattenClones: z.boolean().optional() }).strict();
export type DeleteOptions = z.infer<typeof DeleteOptions>;

/** QEMU qcodes ("ctrl", "alt", "delete", "a", "f1"…). */
export const KeyCombo = z.array(z.string().regex(/^[a-z0-9_]{1,20}$/)).min(1).max(8);

/** The most a serialLog call returns, in bytes: more than the whole kept log (serial.log plus
 *  serial.log.0 stay under 8 MiB, main/services/logs/serial-log.ts), so asking for this gets all of it. */
export const MAX_SERIAL_LOG_READ_BYTES = 16 * 1024 * 1024;
export const SerialLogOptions = z.object({ maxBytes: z.number().int().min(1).max(MAX_SERIAL_LOG_READ_BYTES).optional() }).strict();

/** What a create would do, worked out without writing anything (`vms.preview`). */
export interface CreatePreview {
  /** The QEMU command line the VM would start with on this host, binary first, one argument each
   *  (no shell). Paths inside the VM's folder use an id picked for the preview; the real create
   *  picks its own. */
  readonly argv: readonly string[];
  /** The accelerator QEMU would run with (`auto` resolved). */
  readonly accel: string;
  /** Sentences about settings that work but are unwise, as `create` would return them. */
  readonly notices: readonly string[];
}

export interface VmService {
  list(): Promise<readonly VmInfo[]>;
  get(ref: string): Promise<VmDetails>;
  create(spec: CreateVmSpec): Promise<VmInfo>;
  /**
   * A dry run of `create`: every check it makes (files, images, settings, this host) and the launch
   * plan it would start with, without writing anything (the New VM wizard's summary). Same errors as
   * `create`, with the same `field`s.
   */
  preview(spec: CreateVmSpec): Promise<CreatePreview>;
  edit(ref: string, patch: EditVmSpec): Promise<VmInfo>;
  /** Removes the VM. With keepDisks, its own disk images are moved out of the bundle first; the
   *  result lists where they went (and, with flattenClones, the linked clones given images of their own). */
  delete(ref: string, options: DeleteOptions): Promise<{ readonly keptFiles: readonly string[]; readonly flattenedClones?: readonly string[] }>;
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

export const vmsSchema: ServiceSchema<VmService> = {
  methods: lazyTuples({
    list: () => z.tuple([]),
    get: () => z.tuple([VmRef]),
    create: () => z.tuple([CreateVmSpec]),
    preview: () => z.tuple([CreateVmSpec]),
    edit: () => z.tuple([VmRef, EditVmSpec]),
    delete: () => z.tuple([VmRef, DeleteOptions]),
    start: () => z.tuple([VmRef, StartOptions]),
    stop: () => z.tuple([VmRef, StopOptions]),
    pause: () => z.tuple([VmRef]),
    resume: () => z.tuple([VmRef]),
    reset: () => z.tuple([VmRef]),
    sendKeys: () => z.tuple([VmRef, KeyCombo]),
    screenshot: () => z.tuple([VmRef]),
    serialLog: () => z.tuple([VmRef, SerialLogOptions]),
  }),
  events: ['onDidChange'],
};
