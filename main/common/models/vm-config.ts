/**
 * A VM's declarative configuration: what lives in its bundle's config.json.
 *
 * Loading is always: parse JSON → migrate (pure functions, one per version step) → fill defaults →
 * validate with the schema. Saving writes the current version only.
 */
import { z } from 'zod';
import { VIRT_MAX_VCPUS, X86_MAX_VCPUS_WITHOUT_IOMMU } from './machine-limits';
import { CloudInitAccess, SharedFolderList } from './sandbox';

export const CONFIG_VERSION = 3;

export const Arch = z.enum(['x86_64', 'aarch64']);
export type Arch = z.infer<typeof Arch>;

export const AccelChoice = z.enum(['auto', 'kvm', 'hvf', 'tcg']);
export type AccelChoice = z.infer<typeof AccelChoice>;
/** An accelerator QEMU actually ran with. */
export const Accel = z.enum(['kvm', 'hvf', 'tcg']);
export type Accel = z.infer<typeof Accel>;

export const Firmware = z.enum(['bios', 'uefi']);
export type Firmware = z.infer<typeof Firmware>;

export const DisplayKind = z.enum(['vnc', 'none']);
export type DisplayKind = z.infer<typeof DisplayKind>;

export const NetMode = z.enum(['user', 'none']);
export type NetMode = z.infer<typeof NetMode>;
/** The network card QEMU gives the guest: virtio-net (fastest; Linux and BSD have the driver) or an
 *  Intel 82574 (e1000e), which Windows' installer has a driver for (libosinfo picks it for Windows). */
export const NicModel = z.enum(['virtio-net-pci', 'e1000e']);
export type NicModel = z.infer<typeof NicModel>;

/** Paths in a config are absolute host paths (external media) or bundle-relative file names. */
const HostPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'must not contain NUL');

/** A file name inside the bundle: no separators, no dot-dot, so it can never escape the bundle. */
export const BundleFileName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a plain file name inside the bundle')
  .refine((n) => !n.includes('..'), 'must not contain ..');

export const DiskFormat = z.enum(['qcow2', 'raw']);
export type DiskFormat = z.infer<typeof DiskFormat>;

/** Where an image lives: `{bundle: "disk0.qcow2"}` is owned by the bundle (deleted with it),
 *  `{path: "/abs"}` is an image the user pointed at (never deleted by Vivarium). */
export const ImageSource = z.union([
  z.object({ bundle: BundleFileName }).strict(),
  z.object({ path: HostPath }).strict(),
]);
export type ImageSource = z.infer<typeof ImageSource>;

/** What the disk is for: the one "system" disk holds the OS (boot order, installers, clones);
 *  "data" disks are everything else. */
export const DiskRole = z.enum(['system', 'data']);
export type DiskRole = z.infer<typeof DiskRole>;

/**
 * The guest-side controller of a disk: `virtio` (virtio-blk, the fastest; Linux and BSD installers
 * carry the driver, Windows needs the virtio-win ISO), `sata` (an AHCI port: x86 q35's built-in
 * controller, an added `ich9-ahci` on aarch64; every OS has the driver, Windows' installer
 * included), `nvme` (an NVMe controller per disk; Windows 10+/Linux have the driver built in).
 */
export const DiskBus = z.enum(['virtio', 'sata', 'nvme']);
export type DiskBus = z.infer<typeof DiskBus>;

/** One read-only layer below a disk's top image. */
export const BackingLayer = z.object({ source: ImageSource, format: DiskFormat }).strict();
export type BackingLayer = z.infer<typeof BackingLayer>;

/** The most layers a disk's backing chain may have (linked clone + a few external snapshots). */
export const MAX_BACKING_LAYERS = 8;

/**
 * A disk: a top image plus an explicit backing chain that Vivarium itself opens (qemu-notes §8).
 *
 * `backing` lists the layers below the top image, nearest first: `backing[0]` is the top image's
 * backing file, `backing[1]` is `backing[0]`'s, and so on; `[]` means a standalone image. The argv
 * builder emits one `-blockdev` pair per layer with its own node name and `backing=<node>`, and
 * `backing: null` at the bottom, so whatever backing file an image header names is never opened.
 * Layers are always opened read-only; only the top image is written (unless `readOnly`).
 * Rules: a raw image cannot have a backing file, so every image that has one below it is qcow2
 * (only the last layer may be raw). Start-time preflight (main/services/disks/preflight.ts) checks
 * that each file's header agrees with this chain.
 */
export const Disk = z
  .object({
    /** Stable id, also the QEMU node name of the top image ("disk0", "disk1", …). */
    id: z.string().regex(/^disk[0-9]{1,2}$/, 'must be disk0..disk99'),
    role: DiskRole.default('data'),
    bus: DiskBus.default('virtio'),
    source: ImageSource,
    format: DiskFormat,
    readOnly: z.boolean().default(false),
    backing: z.array(BackingLayer).max(MAX_BACKING_LAYERS).default([]),
  })
  .strict()
  .superRefine((d, ctx) => {
    const chain = [{ format: d.format }, ...d.backing];
    chain.slice(0, -1).forEach((layer, i) => {
      if (layer.format !== 'qcow2') {
        ctx.addIssue({
          code: 'custom',
          path: i === 0 ? ['format'] : ['backing', i - 1, 'format'],
          message: 'only a qcow2 image can have a backing image below it',
        });
      }
    });
  });
export type Disk = z.infer<typeof Disk>;

/** Every image file of a disk, top first: what a start checks and what a delete must consider. */
export function diskImages(d: Disk): readonly BackingLayer[] {
  return [{ source: d.source, format: d.format }, ...d.backing];
}

/** The file name of a disk Vivarium makes inside the bundle, from its id ("disk1" → "disk1.qcow2"). */
export function bundleDiskFile(id: string): string {
  return `${id}.qcow2`;
}

/** The next free disk id ("disk0", "disk1", …) for a VM's disk list. */
export function nextDiskId(disks: readonly Pick<Disk, 'id'>[]): string {
  const used = new Set(disks.map((d) => d.id));
  for (let i = 0; ; i++) if (!used.has(`disk${i}`)) return `disk${i}`;
}

/** The most disks a VM may have. */
export const MAX_DISKS = 8;

/** A VM's disk list with its cross-field rules: unique ids, at most one system disk, and no image
 *  file written by one disk and also used by another (a base shared read-only is fine). */
export const DiskList = z
  .array(Disk)
  .max(MAX_DISKS, `at most ${MAX_DISKS} disks`)
  .superRefine((disks, ctx) => {
    const ids = new Set<string>();
    const tops = new Set<string>();
    const layers = new Set<string>();
    const key = (s: ImageSource) => ('bundle' in s ? `bundle:${s.bundle}` : `path:${s.path}`);
    let system = 0;
    disks.forEach((d, i) => {
      if (ids.has(d.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `two disks are called ${d.id}` });
      ids.add(d.id);
      if (d.role === 'system' && ++system > 1) ctx.addIssue({ code: 'custom', path: [i, 'role'], message: 'only one disk can be the system disk' });
      const top = key(d.source);
      if (tops.has(top) || layers.has(top)) ctx.addIssue({ code: 'custom', path: [i, 'source'], message: 'this image is already used by another disk' });
      tops.add(top);
      const chain = new Set<string>([top]);
      d.backing.forEach((l, j) => {
        const k = key(l.source);
        if (chain.has(k)) ctx.addIssue({ code: 'custom', path: [i, 'backing', j, 'source'], message: 'this image is already in the chain above it (a loop)' });
        else if (tops.has(k)) ctx.addIssue({ code: 'custom', path: [i, 'backing', j, 'source'], message: 'a backing image cannot also be a disk\'s top image' });
        chain.add(k);
        layers.add(k);
      });
    });
  });

/** What the firmware may boot from, by kind: every disk (system disk first, in list order), the CD
 *  drive, the NIC (PXE). */
export const BootDevice = z.enum(['disk', 'cd', 'net']);
export type BootDevice = z.infer<typeof BootDevice>;

/** Boot order (issue 9). The default, disk before CD, boots an installer ISO while the disk is
 *  blank (SeaBIOS finds no boot signature, OVMF no EFI system partition, and both go on to the
 *  next device) and the installed system once there is one, with the ISO still inserted. A kind
 *  left out is never booted from. */
export const BootOrder = z
  .array(BootDevice)
  .min(1, 'the boot order needs at least one device')
  .max(3)
  .refine((o) => new Set(o).size === o.length, 'each device may appear once in the boot order')
  .default(['disk', 'cd']);

/**
 * A CD/DVD drive (issue 9): `cd0`..`cd3`, each with an ISO inserted (`path`, an absolute host path,
 * always opened read-only as raw) or empty (`null`). The guest-side bus is fixed by the arch (x86:
 * an AHCI port of q35's built-in controller, `ide-cd`; aarch64: `scsi-cd` on virtio-scsi), so it is
 * not stored. An empty drive still exists in the guest, so a CD can be inserted while the VM runs.
 */
export const CdDrive = z
  .object({
    id: z.string().regex(/^cd[0-9]$/, 'must be cd0..cd9'),
    path: HostPath.nullable().default(null),
  })
  .strict();
export type CdDrive = z.infer<typeof CdDrive>;

/** The most CD drives a VM may have (an installer, a driver ISO, a cloud-init seed, one spare). */
export const MAX_CD_DRIVES = 4;

/** Ports of an AHCI controller (QEMU's ich9-ahci, q35's built-in one: `ide.0`..`ide.5`). */
export const AHCI_PORTS = 6;

/** A VM's CD drives: unique ids, at most MAX_CD_DRIVES. */
export const CdDriveList = z
  .array(CdDrive)
  .max(MAX_CD_DRIVES, `at most ${MAX_CD_DRIVES} CD drives`)
  .superRefine((drives, ctx) => {
    const ids = new Set<string>();
    drives.forEach((d, i) => {
      if (ids.has(d.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `two CD drives are called ${d.id}` });
      ids.add(d.id);
    });
  });

/** The next free CD drive id ("cd0", "cd1", …). */
export function nextCdDriveId(drives: readonly Pick<CdDrive, 'id'>[]): string {
  const used = new Set(drives.map((d) => d.id));
  for (let i = 0; ; i++) if (!used.has(`cd${i}`)) return `cd${i}`;
}

/** The ISO in the VM's first CD drive that holds one (what `--iso` and the settings form call
 *  "the ISO"), or null. */
export function primaryIso(config: Pick<VmConfig, 'cdroms'>): string | null {
  return config.cdroms.find((d) => d.path !== null)?.path ?? null;
}

/**
 * The CD drives after setting "the ISO" (`create/edit --iso`): `iso` goes into the first drive
 * (cd0 is made when the VM has none); null empties the first drive that holds one. Pure.
 */
export function withPrimaryIso(drives: readonly CdDrive[], iso: string | null): CdDrive[] {
  if (iso === null) {
    const i = drives.findIndex((d) => d.path !== null);
    return drives.map((d, j) => (j === i ? { ...d, path: null } : d));
  }
  if (drives.length === 0) return [{ id: 'cd0', path: iso }];
  return drives.map((d, j) => (j === 0 ? { ...d, path: iso } : d));
}

export const PortForward = z
  .object({
    protocol: z.enum(['tcp', 'udp']),
    hostPort: z.number().int().min(1).max(65535),
    guestPort: z.number().int().min(1).max(65535),
  })
  .strict();
export type PortForward = z.infer<typeof PortForward>;

export const VmName = z
  .string()
  .trim()
  .min(1, 'name must not be empty')
  .max(100, 'name must be at most 100 characters')
  .refine((n) => !/[\u0000-\u001f\u007f]/.test(n), 'name must not contain control characters');

/** The shortest id prefix a reference may use (main/services/library/resolve.ts: MIN_ID_PREFIX). */
const MIN_ID_REFERENCE = 8;
/** A VM id's spelling: hex digits, dashes at these places. */
const UUID_SHAPE = 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx';

/**
 * Whether `name` could be taken for a VM id where a VM is referred to: the full id, or a prefix of at
 * least 8 characters of an id's spelling (resolve() matches ids by such prefixes), or the whole id
 * without its dashes (32 hex digits: how the runtime folder and QEMU's process name spell it),
 * compared without case and after NFKC folding (fullwidth ０-９/ａ-ｆ count as digits).
 */
export function readsAsVmId(name: string): boolean {
  const n = name.trim().normalize('NFKC').toLowerCase();
  if (/^[0-9a-f]{32}$/.test(n)) return true;
  if (n.length < MIN_ID_REFERENCE || n.length > UUID_SHAPE.length) return false;
  for (let i = 0; i < n.length; i++) {
    const c = n[i]!;
    if (UUID_SHAPE[i] === '-' ? c !== '-' : !/[0-9a-f]/.test(c)) return false;
  }
  return true;
}

/**
 * Characters that make two names look alike or reorder what is shown: format characters (zero-width
 * space/joiners, bidi embeddings, overrides and isolates, soft hyphen, BOM: \p{Cf}), other
 * default-ignorable code points (Hangul fillers, tags…), line/paragraph separators (\p{Zl}, \p{Zp}),
 * spaces other than the plain one (\p{Zs}: no-break, ideographic, thin…), controls, surrogates,
 * private-use and unassigned code points. Emoji variation selectors (U+FE0E, U+FE0F) stay allowed.
 */
const INVISIBLE = /(?![\uFE0E\uFE0F])[\p{Cf}\p{Zl}\p{Zp}\p{Cc}\p{Cs}\p{Co}\p{Cn}\p{Default_Ignorable_Code_Point}]|(?! )\p{Zs}/u;

/** The first invisible or direction-changing character of `name`, as `U+XXXX`, or null. */
export function invisibleCharacter(name: string): string | null {
  const m = INVISIBLE.exec(name);
  return m ? `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}` : null;
}

/**
 * A name for a new or renamed VM: any visible text, but never something that reads as a VM id (so
 * a reference can never mean two VMs) and never an invisible or text-direction character (so two
 * names that look the same are the same). Existing configs are loaded with the laxer VmName.
 */
export const NewVmName = VmName.superRefine((n, ctx) => {
  if (readsAsVmId(n)) {
    ctx.addIssue({
      code: 'custom',
      message: 'name must not look like a VM id (a whole id, with or without its dashes, or its first 8 or more characters): add a letter or word that is not hexadecimal',
    });
  }
  const bad = invisibleCharacter(n);
  if (bad) {
    ctx.addIssue({
      code: 'custom',
      message: `name must not contain invisible or text-direction characters (it contains ${bad}); type it again with visible characters only`,
    });
  }
});

/** The sentences of the cross-field rules, one home for each: the schemas below and in
 *  contract/vms.ts attach them to a field path; each front end adds its own remedy. */
export const RULE_MESSAGES = {
  forwardsNeedNetwork: 'port forwards need networking',
  isoOrKernel: 'boot either from an ISO image or from a kernel, not both',
  kernelPartsNeedKernel: 'needs a kernel to boot directly',
  diskPathOrSize: 'give either an existing disk image or the size of a new one, not both',
} as const;

export const MIN_MEMORY_MIB = 16;
export const MAX_MEMORY_MIB = 1024 * 1024;
/** The most vCPUs any config may hold: the largest machine limit (machine-limits.ts, the one home
 *  of the vCPU rule). A config's own arch and machine are held to theirs by the settings rules. */
export const MAX_CPUS = Math.max(X86_MAX_VCPUS_WITHOUT_IOMMU, VIRT_MAX_VCPUS);

export const VmConfig = z
  .object({
    version: z.literal(CONFIG_VERSION),
    id: z.uuid(),
    name: VmName,
    createdAt: z.string(),
    arch: Arch,
    accel: AccelChoice.default('auto'),
    /** null = the builder's modern default for the arch (q35 / virt). */
    machine: z.string().regex(/^[a-z0-9._-]+$/).nullable().default(null),
    cpus: z.number().int().min(1, 'a VM needs at least 1 CPU').max(MAX_CPUS, `at most ${MAX_CPUS} CPUs`),
    memoryMiB: z
      .number()
      .int()
      .min(MIN_MEMORY_MIB, `memory must be at least ${MIN_MEMORY_MIB} MiB`)
      .max(MAX_MEMORY_MIB, 'memory must be at most 1 TiB'),
    firmware: Firmware.default('bios'),
    /** Per-VM UEFI variable store (qcow2 so that internal snapshots work), inside the bundle. */
    uefiVars: BundleFileName.nullable().default(null),
    disks: DiskList.default([]),
    /** CD drives (config v3; v2's single `cdrom` became `cd0`). */
    cdroms: CdDriveList.default([]),
    /** The firmware's boot order (BootOrder above). */
    bootOrder: BootOrder,
    /** Show the firmware's boot menu at start (`-boot menu=on`). */
    bootMenu: z.boolean().default(false),
    /** A TPM 2.0 (issue 9): a per-VM swtpm whose state is kept in the bundle's `tpm/` folder. */
    tpm: z.boolean().default(false),
    /** UEFI Secure Boot (issue 9): the firmware's Secure Boot build with Microsoft-enrolled
     *  variables (HostCapabilities.secureFirmware); needs `firmware: "uefi"`. */
    secureBoot: z.boolean().default(false),
    kernel: z
      .object({ path: HostPath, initrd: HostPath.nullable().default(null), append: z.string().max(4096).default('') })
      .nullable()
      .default(null),
    network: z
      .object({
        mode: NetMode.default('user'),
        mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
        forwards: z.array(PortForward).max(64).default([]),
        /** Absent: virtio-net-pci (configs from before the field). */
        model: NicModel.optional(),
      })
      .strict(),
    display: DisplayKind.default('vnc'),
    /** Free-form label for the UI ("Debian 12", "Other"). */
    os: z.string().max(100).default('Other'),
    /** Start this VM when an engine starts with autostart on (the desktop app, `vivarium serve
     *  --autostart`); main/services/autostart.ts. */
    autostart: z.boolean().default(false),
    /** Set while the VM is suspended to disk (issue 10): its whole state is in `file` (in the
     *  bundle), saved from a QEMU whose command line hashed to `argvSha256`; the next start resumes
     *  from it (main/services/drivers/qemu/suspender.ts), paused when `paused` (it was paused when
     *  suspended; absent in records from before the field: running). */
    suspended: z
      .object({ file: BundleFileName, savedAt: z.string(), argvSha256: z.string().regex(/^[0-9a-f]{64}$/), sizeBytes: z.number().int().min(0), paused: z.boolean().optional() })
      .strict()
      .nullable()
      .default(null),
    /** Advanced, explicit, visible: raw extra QEMU arguments appended at the end. Never assembled
     *  from UI text fields; only set by the user on purpose. */
    extraArgs: z.array(z.string().max(4096)).max(64).default([]),
    /** A cloud-init sandbox's SSH access (issue 11, models/sandbox.ts); null for other VMs. */
    cloudInit: CloudInitAccess.nullable().default(null),
    /** Host folders shared over 9p (models/sandbox.ts). */
    shares: SharedFolderList.default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    // x86: CD drives and SATA disks share q35's six AHCI ports (aarch64 CDs sit on virtio-scsi and
    // SATA disks on their own ich9-ahci controller).
    const sata = c.disks.filter((d) => d.bus === 'sata').length;
    const ports = sata + (c.arch === 'x86_64' ? c.cdroms.length : 0);
    if (ports > AHCI_PORTS) {
      ctx.addIssue({
        code: 'custom',
        path: ['disks'],
        message: c.arch === 'x86_64'
          ? `SATA disks and CD drives share ${AHCI_PORTS} SATA ports, and this VM would need ${ports}; put a disk on virtio or NVMe, or remove a CD drive`
          : `at most ${AHCI_PORTS} SATA disks; put a disk on virtio or NVMe`,
      });
    }
    if (c.secureBoot && c.firmware !== 'uefi') {
      ctx.addIssue({ code: 'custom', path: ['firmware'], message: 'Secure Boot needs UEFI firmware', params: { remedy: { kind: 'change-setting', field: 'firmware', to: 'uefi' } } });
    }
    if (c.network.mode === 'none' && c.network.forwards.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['network', 'forwards'],
        message: RULE_MESSAGES.forwardsNeedNetwork,
        params: { remedy: { kind: 'change-setting', field: 'net', to: 'user' } },
      });
    }
  });
export type VmConfig = z.infer<typeof VmConfig>;
export type VmConfigInput = z.input<typeof VmConfig>;

export type Migration = (raw: Record<string, unknown>) => Record<string, unknown>;

/** migrations[n] turns a version-n object into a version-(n+1) object. Pure: no I/O, no clock. */
export const MIGRATIONS: Readonly<Record<number, Migration>> = {
  // Version 0 was never written by a release; it is the shape of a hand-written config without a
  // version field. Accept it by stamping the version, so people may write configs by hand.
  0: (raw) => ({ ...raw, version: 1 }),
  // v2: disks became a list of typed disks with a role, a bus and an explicit backing chain. v1
  // disks were standalone images (v1 never opened a backing file), so the chain is empty; the first
  // disk was the one the VM booted from.
  1: (raw) => ({
    ...raw,
    version: 2,
    ...(Array.isArray(raw.disks)
      ? {
          disks: (raw.disks as unknown[]).map((d, i) =>
            d && typeof d === 'object' && !Array.isArray(d)
              ? { role: i === 0 ? 'system' : 'data', bus: 'virtio', backing: [], ...(d as Record<string, unknown>) }
              : d,
          ),
        }
      : {}),
  }),
  // v3: CD drives became a list (several drives: an installer plus a driver ISO). v2's one `cdrom`
  // (an ISO path or null) is drive cd0 when it held an ISO; a v2 VM without an ISO started with no
  // CD drive at all, and keeps having none (so its QEMU command line does not change).
  2: (raw) => {
    const { cdrom, ...rest } = raw;
    return {
      ...rest,
      version: 3,
      cdroms: cdrom === null || cdrom === undefined ? [] : [{ id: 'cd0', path: cdrom }],
    };
  },
};

export type LoadResult =
  | { readonly ok: true; readonly config: VmConfig; readonly migrated: boolean }
  | { readonly ok: false; readonly error: string };

/** load → migrate → defaults → validate, as a pure function of the file's text. */
export function parseVmConfig(text: string): LoadResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `config.json is not valid JSON (${(e as Error).message}). Restore it from a backup or delete the VM.` };
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, error: 'config.json does not hold a JSON object. Restore it from a backup or delete the VM.' };
  }
  let obj = raw as Record<string, unknown>;
  const startVersion = obj.version === undefined ? 0 : obj.version;
  if (typeof startVersion !== 'number' || !Number.isInteger(startVersion) || startVersion < 0) {
    return { ok: false, error: `config.json has an invalid "version" (${JSON.stringify(obj.version)}).` };
  }
  if (startVersion > CONFIG_VERSION) {
    return {
      ok: false,
      error: `config.json is version ${startVersion}, written by a newer Vivarium (this one reads up to ${CONFIG_VERSION}). Update Vivarium to use this VM.`,
    };
  }
  for (let v = startVersion; v < CONFIG_VERSION; v++) {
    const step = MIGRATIONS[v];
    if (!step) return { ok: false, error: `No migration from config version ${v}.` };
    obj = step(obj);
  }
  const parsed = VmConfig.safeParse(obj);
  if (!parsed.success) {
    return { ok: false, error: `config.json is invalid: ${formatZodIssues(parsed.error)}. Fix the file or delete the VM.` };
  }
  return { ok: true, config: parsed.data, migrated: startVersion !== CONFIG_VERSION };
}

export function formatZodIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

// ---- sizes -------------------------------------------------------------------------------------

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
};

/**
 * Parses "512M", "1G", "1.5GiB", "2048" (bytes unless `defaultUnit` says otherwise).
 * Returns null when the text is not a size; callers turn that into a helpful error.
 */
export function parseSize(text: string, defaultUnit: 'B' | 'M' = 'B'): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? '').toUpperCase();
  const factor = unit === '' ? SIZE_UNITS[defaultUnit] : SIZE_UNITS[unit];
  if (factor === undefined) return null;
  const value = Number(m[1]) * factor;
  return Number.isFinite(value) ? Math.round(value) : null;
}

export function formatMiB(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`;
}
