/**
 * Importing a disk image or an appliance as a new VM's disks: qcow2, raw, vmdk (monolithicSparse and
 * streamOptimized), vdi, vhdx, vhd, OVA and OVF.
 *
 *   const found = await inspectImport('/home/me/appliance.ova');        // what it holds, nothing written
 *   const plan = await runImport('/home/me/appliance.ova', { mode: 'copy', destDir: bundleDir });
 *   // plan: {name, cpus, memoryMiB, firmware, disks: [{path, format, virtualSizeBytes, attached}]}
 *
 * Every image is untrusted: its format is decided by Vivarium from its magic bytes and given to
 * qemu-img explicitly, and an image whose header names a backing file, an external data file, or
 * (VMDK) extents in other files is refused — such a header can point QEMU at any file on the host
 * (QEMU docs/system/qemu-block-drivers "Image security"). An OVA's disk is converted straight out of
 * the archive as a raw offset/size slice under the vmdk driver, without unpacking the tar first
 * (gzip-compressed members are decompressed to a temporary file first).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ATTACHABLE, detectKind } from './formats';
import type { OvfDescriptor } from './ovf';
import { convertToQcow2, probeImage, type ImageSource, type ProbedImage } from './qemu-img';
import { listTar } from './tar';
import { rawImageProblem } from '../disks/preflight';

/** A refusal or failure a person can act on; the message says what to do. */
export class ImportError extends Error {
  override readonly name = 'ImportError';
}

export interface FoundDisk {
  /** Where the bytes are (the image file, or a member of the OVA). */
  readonly source: ImageSource;
  /** The name in the archive or descriptor, or the file's name. */
  readonly label: string;
  readonly virtualSizeBytes: number;
  /** The member is gzip-compressed inside the OVA (decompressed before conversion). */
  readonly gzip: boolean;
}

export interface FoundImport {
  readonly kind: 'disk' | 'ova' | 'ovf';
  /** From the OVF, else the file's name without its extension. */
  readonly name: string;
  readonly cpus: number | null;
  readonly memoryMiB: number | null;
  readonly firmware: 'uefi' | 'bios' | null;
  readonly disks: readonly FoundDisk[];
  /** Whether every disk can be used in place (qcow2 or raw files). */
  readonly attachable: boolean;
  /** OVA: the digests its manifest (.mf) gives for the descriptor and the disks, checked before a copy. */
  readonly manifest: readonly ManifestCheck[];
}

/** One line of an OVA manifest: `SHA256(disk1.vmdk)= <hex>` (OVF spec §5.1; SHA1 in OVF 1.x). */
export interface ManifestCheck {
  readonly member: string;
  readonly algorithm: 'sha1' | 'sha256' | 'sha512';
  readonly digest: string;
  readonly slice: { readonly offset: number; readonly size: number };
}

export interface ImportedDisk {
  readonly path: string;
  readonly format: 'qcow2' | 'raw';
  readonly virtualSizeBytes: number;
  /** Used in place (the user's file), not a copy in the VM's folder. */
  readonly attached: boolean;
}

/** What `create` uses: the VM's settings from the appliance and its disks, boot disk first. */
export interface ImportPlan {
  readonly name: string;
  readonly cpus: number | null;
  readonly memoryMiB: number | null;
  readonly firmware: 'uefi' | 'bios' | null;
  readonly disks: readonly ImportedDisk[];
}

export interface ImportOptions {
  /** `copy` converts every disk to qcow2 in destDir; `attach` uses qcow2/raw files in place. */
  readonly mode: 'copy' | 'attach';
  /** The new VM's folder (must exist); converted disks are written there. */
  readonly destDir: string;
  /** File name of converted disk `i` (default `disk<i>.qcow2`). */
  readonly diskFileName?: (index: number) => string;
  readonly qemuImg?: string;
  readonly signal?: AbortSignal;
  /** Overall progress, 0..1, with the disk being converted (several times a second). */
  readonly onProgress?: (p: { readonly fraction: number; readonly disk: number; readonly disks: number }) => void;
}

const OK_VMDK_TYPES = new Set(['monolithicSparse', 'streamOptimized']);

/** Looks at `file` and everything it refers to, refusing what is unsafe; writes nothing. */
export async function inspectImport(file: string, o: { qemuImg?: string } = {}): Promise<FoundImport> {
  const qemuImg = o.qemuImg ?? 'qemu-img';
  if (!path.isAbsolute(file)) throw new ImportError(`${file} must be an absolute path.`);
  const st = await fs.stat(file).catch(() => null);
  if (!st) throw new ImportError(`${file} does not exist.`);
  if (!st.isFile()) throw new ImportError(`${file} is not a regular file; give a disk image or an .ova/.ovf file.`);
  let kind;
  try {
    kind = await detectKind(file);
  } catch (e) {
    throw new ImportError(`${(e as Error).message}.`);
  }
  const stem = path.basename(file).replace(/\.[^.]+$/, '') || 'Imported VM';
  if (kind.kind === 'disk') {
    // The same rule a raw disk meets at create and at every start (disks/preflight.ts, rule 6).
    const rawWhy = kind.format === 'raw' ? await rawImageProblem(file) : null;
    if (rawWhy) throw new ImportError(`${file} ${rawWhy}.`);
    const source: ImageSource = { file, format: kind.format };
    const probed = await checkedProbe(qemuImg, source, path.basename(file));
    return {
      kind: 'disk',
      name: stem,
      cpus: null,
      memoryMiB: null,
      firmware: null,
      disks: [{ source, label: path.basename(file), virtualSizeBytes: probed.virtualSizeBytes, gzip: false }],
      attachable: ATTACHABLE.has(kind.format),
      manifest: [],
    };
  }
  if (kind.kind === 'ovf') {
    const ovf = await parseOrRefuse(await fs.readFile(file, 'utf8'), file);
    const dir = path.dirname(file);
    const disks: FoundDisk[] = [];
    for (const d of ovf.disks) {
      const name = plainMemberName(d.href, file);
      if (d.chunked) throw new ImportError(`${file} splits disk ${name} into chunks, which Vivarium cannot import. Export the appliance without splitting disks.`);
      if (d.compression) throw new ImportError(`${file} lists ${name} as gzip-compressed; decompress it next to the .ovf (gunzip) and remove ovf:compression, or import the .ova.`);
      const diskFile = path.join(dir, name);
      const dst = await fs.lstat(diskFile).catch(() => null);
      if (!dst || !dst.isFile()) throw new ImportError(`${file} names the disk ${name}, but ${diskFile} is not there (or is not a regular file).`);
      const k = await detectKind(diskFile).catch((e: unknown) => {
        throw new ImportError(`${(e as Error).message}.`);
      });
      if (k.kind !== 'disk') throw new ImportError(`${diskFile}, named as a disk by ${file}, is not a disk image.`);
      const source: ImageSource = { file: diskFile, format: k.format };
      const probed = await checkedProbe(qemuImg, source, name);
      disks.push({ source, label: name, virtualSizeBytes: probed.virtualSizeBytes, gzip: false });
    }
    return found('ovf', ovf, stem, disks, disks.every((d) => ATTACHABLE.has(d.source.format)), []);
  }
  // OVA: a tar whose descriptor comes first (OVF spec §5.3), then the files it names.
  let members;
  try {
    members = await listTar(file);
  } catch (e) {
    throw new ImportError(`${file} is not a usable OVA: ${(e as Error).message}.`);
  }
  const descriptor = members.find((m) => m.type === '0' && m.name.toLowerCase().endsWith('.ovf'));
  if (!descriptor) throw new ImportError(`${file} holds no .ovf descriptor, so it is not an OVA.`);
  if (descriptor.size > 8 * 1024 * 1024) throw new ImportError(`${file}'s descriptor is larger than 8 MiB; that is not an OVF descriptor.`);
  const xml = Buffer.alloc(descriptor.size);
  const fh = await fs.open(file, 'r');
  try {
    await fh.read(xml, 0, descriptor.size, descriptor.offset);
  } finally {
    await fh.close();
  }
  const ovf = await parseOrRefuse(xml.toString('utf8'), `${file} (${descriptor.name})`);
  const disks: FoundDisk[] = [];
  for (const d of ovf.disks) {
    const name = plainMemberName(d.href, file);
    if (d.chunked) throw new ImportError(`${file} splits disk ${name} into chunks, which Vivarium cannot import. Export the appliance without splitting disks.`);
    const member = members.find((m) => m.type === '0' && (m.name === name || m.name === `./${name}`));
    if (!member) throw new ImportError(`${file}'s descriptor names the disk ${name}, but the archive does not hold it.`);
    const slice = { offset: member.offset, size: member.size };
    if (d.compression === 'gzip') {
      // Probed after decompression (runImport); the format is VMDK in every OVA exporter we know.
      disks.push({ source: { file, format: 'vmdk', slice }, label: name, virtualSizeBytes: d.capacityBytes ?? 0, gzip: true });
      continue;
    }
    const k = await detectKind(file, slice).catch((e: unknown) => {
      throw new ImportError(`${name} in ${file}: ${(e as Error).message}.`);
    });
    if (k.kind !== 'disk') throw new ImportError(`${name} in ${file} is not a disk image.`);
    const source: ImageSource = { file, format: k.format, slice };
    const probed = await checkedProbe(qemuImg, source, `${name} in ${path.basename(file)}`);
    disks.push({ source, label: name, virtualSizeBytes: probed.virtualSizeBytes, gzip: false });
  }
  // The manifest, when there is one: digests of the descriptor and the disks we will read.
  const manifest: ManifestCheck[] = [];
  const mf = members.find((m) => m.type === '0' && m.name.toLowerCase().endsWith('.mf'));
  if (mf && mf.size <= 1024 * 1024) {
    const text = Buffer.alloc(mf.size);
    const h = await fs.open(file, 'r');
    try {
      await h.read(text, 0, mf.size, mf.offset);
    } finally {
      await h.close();
    }
    const wanted = new Map([descriptor, ...disks.map((d) => members.find((m) => m.offset === d.source.slice?.offset)!)].map((m) => [m.name.replace(/^\.\//, ''), m]));
    for (const line of text.toString('utf8').split(/\r?\n/)) {
      const m = /^(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)\s*$/.exec(line.trim());
      const member = m ? wanted.get(m[2]!.replace(/^\.\//, '')) : undefined;
      if (m && member) manifest.push({ member: member.name, algorithm: m[1]!.toLowerCase() as ManifestCheck['algorithm'], digest: m[3]!.toLowerCase(), slice: { offset: member.offset, size: member.size } });
    }
  }
  return found('ova', ovf, stem, disks, false, manifest);
}

/**
 * Inspects `file` and makes its disks usable by a new VM: converted to qcow2 in `destDir` (copy) or
 * used in place (attach; qcow2 and raw only). On failure or cancel, what it wrote is removed.
 */
export async function runImport(file: string, o: ImportOptions): Promise<ImportPlan> {
  const qemuImg = o.qemuImg ?? 'qemu-img';
  const f = await inspectImport(file, { qemuImg });
  if (f.disks.length === 0) throw new ImportError(`${file} has no disks to import.`);
  if (o.mode === 'attach' && !f.attachable) {
    const why = f.kind === 'ova' ? 'disks inside an OVA archive cannot be used in place' : `only qcow2 and raw images can be used in place, and ${f.disks.find((d) => !ATTACHABLE.has(d.source.format))!.label} is ${f.disks.find((d) => !ATTACHABLE.has(d.source.format))!.source.format}`;
    throw new ImportError(`${path.basename(file)} cannot be attached: ${why}. Import it as a copy (converted to qcow2) instead.`);
  }
  if (o.mode === 'attach') {
    return {
      name: f.name,
      cpus: f.cpus,
      memoryMiB: f.memoryMiB,
      firmware: f.firmware,
      disks: f.disks.map((d) => ({ path: d.source.file, format: d.source.format as 'qcow2' | 'raw', virtualSizeBytes: d.virtualSizeBytes, attached: true })),
    };
  }
  // A damaged download of an OVA is caught here, before anything is written.
  for (const c of f.manifest) {
    const got = await hashSlice(file, c.slice, c.algorithm, o.signal);
    if (got !== c.digest) {
      throw new ImportError(
        `${path.basename(file)} is damaged: ${c.member} does not match the ${c.algorithm.toUpperCase()} digest in its manifest. Download or export it again.`,
      );
    }
  }
  const written: string[] = [];
  const temps: string[] = [];
  const out: ImportedDisk[] = [];
  try {
    for (let i = 0; i < f.disks.length; i++) {
      const d = f.disks[i]!;
      const dest = path.join(o.destDir, o.diskFileName?.(i) ?? `disk${i}.qcow2`);
      if (await fs.lstat(dest).then(() => true, () => false)) throw new ImportError(`${dest} already exists; Vivarium never overwrites a disk.`);
      let source = d.source;
      let virtualSizeBytes = d.virtualSizeBytes;
      if (d.gzip) {
        const tmp = path.join(o.destDir, `.import-${i}.vmdk`);
        temps.push(tmp);
        await gunzipSlice(d.source, tmp, o.signal);
        const k = await detectKind(tmp);
        if (k.kind !== 'disk') throw new ImportError(`${d.label} in ${file} is not a disk image once decompressed.`);
        source = { file: tmp, format: k.format };
        virtualSizeBytes = (await checkedProbe(qemuImg, source, d.label)).virtualSizeBytes;
      }
      written.push(dest);
      try {
        await convertToQcow2(qemuImg, source, dest, {
          signal: o.signal,
          onProgress: (fr) => o.onProgress?.({ fraction: (i + fr) / f.disks.length, disk: i, disks: f.disks.length }),
        });
      } catch (e) {
        throw new ImportError(`Importing ${d.label} failed: ${(e as Error).message}.`);
      }
      await fs.chmod(dest, 0o600);
      // qemu-img convert keeps the virtual size.
      out.push({ path: dest, format: 'qcow2', virtualSizeBytes, attached: false });
    }
  } catch (e) {
    await Promise.all(written.map((w) => fs.rm(w, { force: true })));
    throw e;
  } finally {
    await Promise.all(temps.map((t) => fs.rm(t, { force: true })));
  }
  return { name: f.name, cpus: f.cpus, memoryMiB: f.memoryMiB, firmware: f.firmware, disks: out };
}

function found(kind: 'ova' | 'ovf', ovf: OvfDescriptor, stem: string, disks: FoundDisk[], attachable: boolean, manifest: ManifestCheck[]): FoundImport {
  return {
    kind,
    name: ovf.name ?? stem,
    cpus: ovf.cpus,
    memoryMiB: ovf.memoryMiB,
    firmware: ovf.firmware === 'efi' ? 'uefi' : ovf.firmware,
    disks,
    attachable,
    manifest,
  };
}

async function parseOrRefuse(xml: string, where: string): Promise<OvfDescriptor> {
  // The XML parser is loaded when an appliance is imported, not by every command (issue 7).
  const { parseOvf } = await import('./ovf.js');
  try {
    return parseOvf(xml);
  } catch (e) {
    throw new ImportError(`${where} is not a usable OVF descriptor: ${(e as Error).message}.`);
  }
}

/** A descriptor's file reference must be a plain name in the same folder/archive: no path, no URL. */
function plainMemberName(href: string, where: string): string {
  const name = href.startsWith('./') ? href.slice(2) : href;
  if (name === '' || name.includes('/') || name.includes('\\') || name === '..' || name === '.' || name.includes('\0') || /^[a-z][a-z0-9+.-]*:/i.test(name)) {
    throw new ImportError(`${where} names a disk file "${href}" outside itself; Vivarium only imports disks that sit in the archive or next to the descriptor.`);
  }
  return name;
}

/** Probes and refuses what is unsafe or broken, with a sentence naming `label`. */
async function checkedProbe(qemuImg: string, src: ImageSource, label: string): Promise<ProbedImage> {
  let p: ProbedImage;
  try {
    p = await probeImage(qemuImg, src);
  } catch (e) {
    const m = (e as Error).message;
    throw new ImportError(m.startsWith('looks like ') ? `${label} ${m}.` : `${label}: ${m}.`);
  }
  if (p.backingFilename !== null) {
    throw new ImportError(
      `${label} names a backing file (${p.backingFilename}). Vivarium does not follow backing files of imported images, since one can point at any file on this computer. If you trust it, flatten it first (qemu-img convert -O qcow2 on the image) and import the result.`,
    );
  }
  if (p.dataFile !== null) throw new ImportError(`${label} keeps its data in another file (${p.dataFile}); Vivarium does not import such images. Flatten it first with qemu-img convert.`);
  if (p.corrupt) throw new ImportError(`${label} is marked corrupt by QEMU. Repair it first (qemu-img check -r all) and import it again.`);
  if (p.encrypted) throw new ImportError(`${label} is encrypted; Vivarium cannot import encrypted images.`);
  if (src.format === 'vmdk') {
    const t = p.vmdkCreateType;
    if (t === null || !OK_VMDK_TYPES.has(t)) {
      throw new ImportError(
        `${label} is a ${t ?? 'multi-file'} VMDK whose data lives in other files; Vivarium imports single-file VMDKs (monolithicSparse, streamOptimized). Convert it first (qemu-img convert -O qcow2) or export it as one file.`,
      );
    }
  }
  if (!(p.virtualSizeBytes > 0)) throw new ImportError(`${label} has no size; it is not a usable disk image.`);
  return p;
}

async function hashSlice(file: string, slice: { offset: number; size: number }, algorithm: string, signal?: AbortSignal): Promise<string> {
  const h = createHash(algorithm);
  if (slice.size === 0) return h.digest('hex');
  const stream = createReadStream(file, { start: slice.offset, end: slice.offset + slice.size - 1, highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) });
  for await (const chunk of stream as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest('hex');
}

async function gunzipSlice(src: ImageSource, dest: string, signal?: AbortSignal): Promise<void> {
  const s = src.slice!;
  const input = createReadStream(src.file, { start: s.offset, end: s.offset + s.size - 1 });
  const output = createWriteStream(dest, { flags: 'wx', mode: 0o600 });
  try {
    await pipeline(input, createGunzip(), output, signal ? { signal } : {});
  } catch (e) {
    throw new ImportError(`Decompressing the disk failed: ${(e as Error).message}.`);
  }
}
