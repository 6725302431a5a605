/**
 * The VM settings a snapshot holds (as VMware and VirtualBox keep a VM's configuration with each
 * snapshot): config.json as it was when the snapshot was taken, without what is not the machine.
 * A revert puts them back, so a memory snapshot loads into the hardware it was saved from (QEMU
 * refuses a state whose RAM size or devices differ: "Size mismatch: pc.ram", "Error -22 while
 * loading VM state") and a disk removed since comes back.
 *
 * Kept from the present config on a revert (never taken from the snapshot): the VM's identity and
 * labels (id, name, creation date, OS label, autostart, MAC address), its suspend state, its cloud-init access,
 * its shared folders and its extra QEMU arguments (host integration the user set on purpose; a
 * snapshots.json from an imported bundle must not bring host folders or raw QEMU arguments along).
 * Pure functions over plain data; snapshot-service.ts applies them.
 */
import { parseVmConfig, type Disk, type VmConfig } from '../../common/models/vm-config';

/** Config keys a revert keeps as they are now (see the module comment). */
export const KEPT_ON_REVERT = ['id', 'name', 'createdAt', 'os', 'autostart', 'suspended', 'cloudInit', 'shares', 'extraArgs'] as const;

/** The settings to store with a snapshot: `config` without KEPT_ON_REVERT, its `version` included. */
export function settingsOf(config: VmConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const k of KEPT_ON_REVERT) delete out[k];
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}

/** What a revert to a snapshot with settings does to the VM's config. */
export interface RevertTarget {
  /** The config after the revert: the snapshot's settings with the present identity and labels. */
  readonly config: VmConfig;
  /** Disks the snapshot had that the VM lacks now (removed since): attached again. */
  readonly restored: readonly Disk[];
  /** Disks the VM has now that the snapshot lacks (added since): detached, their files kept. */
  readonly detached: readonly Disk[];
}

/** A disk's top image as a comparable key: the same file is the same disk, whatever its id. */
function sourceKey(d: Disk): string {
  return 'bundle' in d.source ? `bundle:${d.source.bundle}` : `path:${d.source.path}`;
}

/**
 * The config a revert to a snapshot with `settings` leaves: checked as a config.json is (its
 * version migrated, every rule), and refused when it names an image outside the VM's folder that
 * the VM does not use now (such a file can only come from an edited or imported snapshots.json).
 * @returns the target, or a sentence saying why the settings cannot be used (for an error).
 */
export function revertTarget(current: VmConfig, settings: Readonly<Record<string, unknown>>): { readonly ok: true; readonly target: RevertTarget } | { readonly ok: false; readonly why: string } {
  const kept: Record<string, unknown> = {};
  for (const k of KEPT_ON_REVERT) kept[k] = current[k];
  // The settings' own version says which migrations apply; the kept keys are the same in each.
  const parsed = parseVmConfig(JSON.stringify({ ...settings, ...kept }));
  if (!parsed.ok) {
    const detail = parsed.error.replace(/^config\.json is invalid: /, '').replace(/ (Fix the file or delete the VM|Restore it from a backup or delete the VM|Update Vivarium to use this VM)\.$/, '').replace(/config\.json/g, 'the saved settings');
    return { ok: false, why: `they do not make a valid VM configuration here (${detail.replace(/\.$/, '')})` };
  }
  // The MAC address is the VM's own too: an import under a new id gives the VM a new one, and a
  // revert must not bring back the original VM's.
  const config: VmConfig = { ...parsed.config, ...(kept as Pick<VmConfig, (typeof KEPT_ON_REVERT)[number]>), network: { ...parsed.config.network, mac: current.network.mac } };
  const nowPaths = new Set(current.disks.flatMap((d) => [d.source, ...d.backing.map((b) => b.source)]).flatMap((s) => ('path' in s ? [s.path] : [])));
  for (const d of config.disks) {
    for (const s of [d.source, ...d.backing.map((b) => b.source)]) {
      if ('path' in s && !nowPaths.has(s.path)) return { ok: false, why: `they name ${s.path} for disk ${d.id}, a file outside the VM's folder that it does not use now, and a revert attaches no such file` };
    }
  }
  const nowKeys = new Set(current.disks.map(sourceKey));
  const thenKeys = new Set(config.disks.map(sourceKey));
  return {
    ok: true,
    target: {
      config,
      restored: config.disks.filter((d) => !nowKeys.has(sourceKey(d))),
      detached: current.disks.filter((d) => !thenKeys.has(sourceKey(d))),
    },
  };
}

/** JSON with object keys sorted at every level: equal settings give equal text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Whether two configs describe the same machine (every setting a snapshot holds is equal, the
 *  MAC address aside: a revert keeps the present one). */
export function sameHardware(a: VmConfig, b: VmConfig): boolean {
  const of = (c: VmConfig) => canonical(settingsOf({ ...c, network: { ...c.network, mac: '' } }));
  return of(a) === of(b);
}

/** The memory size a snapshot's settings say, in MiB, or null (no settings, or no valid number). */
export function snapshotMemoryMiB(settings: Readonly<Record<string, unknown>> | undefined): number | null {
  const m = settings?.memoryMiB;
  return typeof m === 'number' && Number.isInteger(m) && m > 0 ? m : null;
}

/**
 * QEMU's report of a RAM block whose size differs from the one in a saved state, as qemu.log has it
 * ("Size mismatch: pc.ram: 0x10000000 != 0x20000000": the saved size first, then the VM's; QEMU's
 * qemu_ram_resize, softmmu/physmem.c). Only main RAM blocks (pc.ram, mach-virt.ram) count.
 * @returns the saved and present sizes in MiB, from the last such line of `log`, or null.
 */
export function ramSizeMismatch(log: string): { readonly savedMiB: number; readonly nowMiB: number } | null {
  const all = [...log.matchAll(/Size mismatch: ([^:\s]+): 0x([0-9a-f]+) != 0x([0-9a-f]+)/gi)].filter((m) => /ram$/i.test(m[1]!));
  const m = all.at(-1);
  if (!m) return null;
  return { savedMiB: Math.round(parseInt(m[2]!, 16) / 1024 / 1024), nowMiB: Math.round(parseInt(m[3]!, 16) / 1024 / 1024) };
}

/**
 * The disks a snapshot's saved settings name (unchecked JSON: only well-formed entries count): each
 * disk's id and the bundle file names of its layers. A revert to the snapshot attaches them again,
 * so a new disk must not take one of these ids or files, and such a file must not be deleted.
 */
export function settingsDisks(settings: unknown): readonly { readonly id: string | null; readonly files: readonly string[] }[] {
  if (!settings || typeof settings !== 'object') return [];
  const disks = (settings as { disks?: unknown }).disks;
  if (!Array.isArray(disks)) return [];
  const bundleName = (s: unknown): string[] => {
    const b = s && typeof s === 'object' ? (s as { bundle?: unknown }).bundle : undefined;
    return typeof b === 'string' && b.length > 0 ? [b] : [];
  };
  return disks.flatMap((d: unknown) => {
    if (!d || typeof d !== 'object') return [];
    const disk = d as { id?: unknown; source?: unknown; backing?: unknown };
    const files = [...bundleName(disk.source), ...(Array.isArray(disk.backing) ? disk.backing.flatMap((b: unknown) => bundleName(b && typeof b === 'object' ? (b as { source?: unknown }).source : undefined)) : [])];
    return [{ id: typeof disk.id === 'string' ? disk.id : null, files }];
  });
}
