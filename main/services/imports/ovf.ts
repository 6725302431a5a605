/**
 * Reading an OVF descriptor (DMTF DSP0243, OVF 1.x/2.x) for what a VM needs: its name, CPUs, memory
 * and disks. Parsed with fast-xml-parser, namespace prefixes dropped (exporters use ovf:, rasd:,
 * vssd: or their own), no external entity ever fetched.
 *
 * - References/File: `href` (the file name inside the OVA or next to the .ovf), `id`, optional
 *   `compression="gzip"` and `chunkSize` (split files).
 * - DiskSection/Disk: `diskId`, `fileRef`, `capacity` × `capacityAllocationUnits`.
 * - VirtualSystem/VirtualHardwareSection/Item (CIM_ResourceAllocationSettingData, DSP1041):
 *   ResourceType 3 = processor (VirtualQuantity = count), 4 = memory (VirtualQuantity ×
 *   AllocationUnits, "byte * 2^20" = MiB), 17 = disk drive (HostResource "ovf:/disk/<diskId>").
 */
import { XMLParser } from 'fast-xml-parser';

export interface OvfDisk {
  readonly diskId: string;
  /** The file's name as the descriptor gives it (checked by the caller before use). */
  readonly href: string;
  readonly compression: 'gzip' | null;
  readonly chunked: boolean;
  readonly capacityBytes: number | null;
}

export interface OvfDescriptor {
  readonly name: string | null;
  readonly cpus: number | null;
  readonly memoryMiB: number | null;
  /** In the order the VM's disk drives list them (the boot disk first, as exporters write it). */
  readonly disks: readonly OvfDisk[];
  /** "efi" when the descriptor asks for UEFI firmware (VirtualBox/VMware extensions), else null. */
  readonly firmware: 'efi' | 'bios' | null;
}

type Node = Record<string, unknown>;

const ARRAYS = new Set(['File', 'Disk', 'Item', 'VirtualSystem', 'Config', 'ExtraConfig']);

function asArray(v: unknown): Node[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is Node => typeof x === 'object' && x !== null);
}

function text(v: unknown): string | null {
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number') return String(v);
  if (v && typeof v === 'object' && '#text' in v) return text((v as Node)['#text']);
  return null;
}

/** "byte * 2^20" → 2^20; "MegaBytes" → 2^20; unknown → null. DSP0004 Annex C programmatic units. */
export function unitBytes(units: string | null, fallback: number): number | null {
  if (units === null || units.trim() === '') return fallback;
  const u = units.replace(/\s+/g, '').toLowerCase();
  const pow = /^byte(?:\*2\^(\d+))?$/.exec(u);
  if (pow) return pow[1] ? 2 ** Number(pow[1]) : 1;
  const named: Record<string, number> = { bytes: 1, kilobytes: 2 ** 10, megabytes: 2 ** 20, gigabytes: 2 ** 30, terabytes: 2 ** 40, kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30 };
  return named[u] ?? null;
}

/** Parses an OVF descriptor. Throws with a sentence when it is not one. */
export function parseOvf(xml: string): OvfDescriptor {
  if (xml.length > 8 * 1024 * 1024) throw new Error('the OVF descriptor is larger than 8 MiB');
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    removeNSPrefix: true,
    parseTagValue: false,
    parseAttributeValue: false,
    processEntities: false,
    isArray: (name) => ARRAYS.has(name),
  });
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (e) {
    throw new Error(`the OVF descriptor is not valid XML (${(e as Error).message})`);
  }
  const env = doc.Envelope as Node | undefined;
  if (!env || typeof env !== 'object') throw new Error('the OVF descriptor has no Envelope');

  const files = new Map<string, Node>();
  for (const f of asArray((env.References as Node | undefined)?.File)) {
    const id = text(f['@_id']);
    if (id) files.set(id, f);
  }
  const diskSection = (env.DiskSection ?? env.VirtualDiskSection) as Node | undefined;
  const disksById = new Map<string, OvfDisk>();
  for (const d of asArray(diskSection?.Disk)) {
    const diskId = text(d['@_diskId']);
    const fileRef = text(d['@_fileRef']);
    if (!diskId) continue;
    if (!fileRef) continue; // a disk with no file: an empty disk the importer would create (not supported; skipped)
    const f = files.get(fileRef);
    if (!f) throw new Error(`the OVF descriptor's disk ${diskId} names file ${fileRef}, which its References do not list`);
    const href = text(f['@_href']) ?? '';
    const cap = Number(text(d['@_capacity']));
    const capUnits = unitBytes(text(d['@_capacityAllocationUnits']), 1);
    disksById.set(diskId, {
      diskId,
      href,
      compression: text(f['@_compression'])?.toLowerCase() === 'gzip' ? 'gzip' : null,
      chunked: text(f['@_chunkSize']) !== null,
      capacityBytes: Number.isFinite(cap) && cap > 0 && capUnits !== null ? cap * capUnits : null,
    });
  }

  const systems = asArray(env.VirtualSystem);
  const vs = systems[0] ?? (asArray((env.VirtualSystemCollection as Node | undefined)?.VirtualSystem)[0] as Node | undefined);
  let cpus: number | null = null;
  let memoryMiB: number | null = null;
  let name: string | null = null;
  let firmware: 'efi' | 'bios' | null = null;
  const ordered: OvfDisk[] = [];
  if (vs) {
    name = text(vs.Name) ?? text(vs['@_id']);
    const hw = asArray(vs.VirtualHardwareSection)[0];
    for (const item of asArray(hw?.Item)) {
      const type = text(item.ResourceType);
      if (type === '3') {
        const n = Number(text(item.VirtualQuantity));
        if (Number.isInteger(n) && n > 0) cpus = n;
      } else if (type === '4') {
        const n = Number(text(item.VirtualQuantity));
        const unit = unitBytes(text(item.AllocationUnits), 2 ** 20);
        if (Number.isFinite(n) && n > 0 && unit !== null) memoryMiB = Math.round((n * unit) / 2 ** 20);
      } else if (type === '17') {
        const res = text(item.HostResource) ?? '';
        const m = /(?:^|\/)disk\/([^/]+)$/.exec(res);
        const disk = m ? disksById.get(m[1]!) : undefined;
        if (disk && !ordered.includes(disk)) ordered.push(disk);
      }
    }
    // VMware: <vmw:Config vmw:key="firmware" vmw:value="efi"/>; VirtualBox: <Machine><Hardware><Firmware type="EFI"/>.
    for (const c of asArray(hw?.Config)) {
      if (text(c['@_key']) === 'firmware') {
        const v = text(c['@_value'])?.toLowerCase();
        if (v === 'efi' || v === 'bios') firmware = v;
      }
    }
    const vbox = (vs.Machine as Node | undefined)?.Hardware as Node | undefined;
    const fw = text((vbox?.Firmware as Node | undefined)?.['@_type'])?.toLowerCase();
    if (fw) firmware = fw.startsWith('efi') ? 'efi' : 'bios';
  }
  // Disks no drive names come after, in descriptor order.
  for (const d of disksById.values()) if (!ordered.includes(d)) ordered.push(d);
  return { name: name && name.length > 0 ? name : null, cpus, memoryMiB, disks: ordered, firmware };
}
