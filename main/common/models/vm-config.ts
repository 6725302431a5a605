/**
 * A VM's declarative configuration: what lives in its bundle's config.json.
 *
 * Loading is always: parse JSON → migrate (pure functions, one per version step) → fill defaults →
 * validate with the schema. Saving writes the current version only.
 */
import { z } from 'zod';

export const CONFIG_VERSION = 1;

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

export const Disk = z.object({
  /** Stable id, used as the QEMU node name ("disk0"). */
  id: z.string().regex(/^disk[0-9]{1,2}$/),
  /** Either `{bundle: "disk0.qcow2"}` (owned by the bundle, deleted with it) or `{path: "/abs"}`
   *  (an existing image the user pointed at; never deleted by Vivarium). */
  source: z.union([
    z.object({ bundle: BundleFileName }).strict(),
    z.object({ path: HostPath }).strict(),
  ]),
  format: DiskFormat,
  readOnly: z.boolean().default(false),
});
export type Disk = z.infer<typeof Disk>;

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
export const MAX_CPUS = 256;

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
    disks: z.array(Disk).max(8).default([]),
    cdrom: HostPath.nullable().default(null),
    kernel: z
      .object({ path: HostPath, initrd: HostPath.nullable().default(null), append: z.string().max(4096).default('') })
      .nullable()
      .default(null),
    network: z
      .object({
        mode: NetMode.default('user'),
        mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
        forwards: z.array(PortForward).max(64).default([]),
      })
      .strict(),
    display: DisplayKind.default('vnc'),
    /** Free-form label for the UI ("Debian 12", "Other"). */
    os: z.string().max(100).default('Other'),
    /** Advanced, explicit, visible: raw extra QEMU arguments appended at the end. Never assembled
     *  from UI text fields; only set by the user on purpose. */
    extraArgs: z.array(z.string().max(4096)).max(64).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.network.mode === 'none' && c.network.forwards.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['network', 'forwards'], message: RULE_MESSAGES.forwardsNeedNetwork });
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
