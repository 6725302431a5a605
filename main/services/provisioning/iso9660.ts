/**
 * A minimal ISO 9660 writer for cloud-init seeds: one root directory of small files, with a Joliet
 * tree so long, lower-case names such as `user-data` and `network-config` keep their names.
 *
 * Why own code: no maintained npm package writes ISO 9660 (qemu-notes §7), and the seed must be made
 * without external tools on every host. Lima does the same in Go (go-diskfs' iso9660 writer). The
 * scope is deliberately narrow — flat root, files < 4 GiB, no Rock Ridge, no El Torito — and the
 * output is checked by `isoinfo` (genisoimage), 7-Zip and a real Linux guest in the tests.
 *
 * Layout (2048-byte sectors; ECMA-119 2nd ed. 1987; Joliet spec, Microsoft 1995):
 *   0–15   system area (zeros)
 *   16     primary volume descriptor (level-1 8.3 names, upper case, ";1")
 *   17     supplementary volume descriptor, Joliet level 3 (escape "%/E", UCS-2 big-endian names)
 *   18     volume descriptor set terminator
 *   19–22  path tables: primary L, primary M, Joliet L, Joliet M (one sector each)
 *   23     primary root directory    24  Joliet root directory
 *   25…    file data, each file from a sector boundary (both trees point at the same extents)
 */

const SECTOR = 2048;

/** One file of the image's root directory. */
export interface IsoFile {
  /** Name as the guest should see it (Joliet): 1–64 UTF-16 code units, no `/`, `\`, `:`, `*`, `?`, `"`, `<`, `>`, `|`, `;`. */
  readonly name: string;
  readonly data: Uint8Array;
}

export interface IsoOptions {
  /** Volume identifier (the file system label blkid reports), 1–16 characters of [A-Za-z0-9_-]. */
  readonly volumeId: string;
  readonly files: readonly IsoFile[];
  /** Recording time of every record; default now. Fixed in tests for reproducible images. */
  readonly date?: Date;
}

/** Thrown for input the writer refuses (a bad name, too many or too big files). */
export class IsoWriteError extends Error {
  override name = 'IsoWriteError';
}

const JOLIET_FORBIDDEN = /[\u0000-\u001f/\\:*?"<>|;]/;
const VOLUME_ID = /^[A-Za-z0-9_-]{1,16}$/;
/** The most files one root sector holds in both trees with the longest names (kept simple: one sector a directory). */
const MAX_DIR_BYTES = SECTOR;

/**
 * The level-1 ISO 9660 name for `name` (primary tree): upper case, d-characters only (others → `_`),
 * 8.3, version `;1`. "user-data" → "USER_DAT.;1", "seed.cfg" → "SEED.CFG;1".
 */
export function level1Name(name: string): string {
  const clean = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const dot = name.lastIndexOf('.');
  const base = clean(dot > 0 ? name.slice(0, dot) : name).slice(0, 8) || '_';
  const ext = dot > 0 ? clean(name.slice(dot + 1)).slice(0, 3) : '';
  return `${base}.${ext};1`;
}

/**
 * Builds the image in memory (seeds are a few KiB).
 * @returns the whole image; its length is a multiple of 2048.
 * @throws IsoWriteError on a bad volume id, a bad or duplicate name, two names that collide in the
 *   8.3 tree, a file ≥ 4 GiB, or more files than one directory sector holds.
 */
export function buildIso9660(options: IsoOptions): Buffer {
  const { volumeId, files } = options;
  const date = options.date ?? new Date();
  if (!VOLUME_ID.test(volumeId)) throw new IsoWriteError(`Volume id "${volumeId}" must be 1–16 characters of A–Z, a–z, 0–9, _ or -.`);
  const seen = new Set<string>();
  const seen83 = new Map<string, string>();
  for (const f of files) {
    if (f.name.length < 1 || f.name.length > 64 || JOLIET_FORBIDDEN.test(f.name) || f.name === '.' || f.name === '..') {
      throw new IsoWriteError(`"${f.name}" cannot be a file name on the seed image (1–64 characters, none of / \\ : * ? " < > | ;).`);
    }
    if (seen.has(f.name)) throw new IsoWriteError(`"${f.name}" is given twice.`);
    seen.add(f.name);
    const short = level1Name(f.name);
    const other = seen83.get(short);
    if (other !== undefined) throw new IsoWriteError(`"${f.name}" and "${other}" both shorten to ${short} in the ISO 9660 names; rename one.`);
    seen83.set(short, f.name);
    if (f.data.length >= 2 ** 32) throw new IsoWriteError(`"${f.name}" is too large for the seed image (4 GiB at most).`);
  }

  const LBA_PVD = 16;
  const LBA_SVD = 17;
  const LBA_TERM = 18;
  const LBA_PT_L = 19;
  const LBA_PT_M = 20;
  const LBA_JPT_L = 21;
  const LBA_JPT_M = 22;
  const LBA_ROOT = 23;
  const LBA_JROOT = 24;
  let next = 25;
  // Data in name order, so the same files give the same image whatever order they came in.
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const extents = sorted.map((f) => {
    const sectors = Math.ceil(f.data.length / SECTOR);
    const lba = sectors === 0 ? 0 : next;
    next += sectors;
    return { file: f, lba, size: f.data.length };
  });
  const totalSectors = next;

  const image = Buffer.alloc(totalSectors * SECTOR);
  const at = (lba: number): Buffer => image.subarray(lba * SECTOR, (lba + 1) * SECTOR);

  // Directories: ".", "..", then files sorted by identifier (ECMA-119 9.3; Joliet: by UCS-2 code units).
  const primaryEntries = extents
    .map((e) => ({ id: Buffer.from(level1Name(e.file.name), 'ascii'), lba: e.lba, size: e.size }))
    .sort((a, b) => Buffer.compare(a.id, b.id));
  const jolietEntries = extents
    .map((e) => ({ id: ucs2be(e.file.name), lba: e.lba, size: e.size }))
    .sort((a, b) => Buffer.compare(a.id, b.id));
  writeDirectory(at(LBA_ROOT), LBA_ROOT, primaryEntries, date);
  writeDirectory(at(LBA_JROOT), LBA_JROOT, jolietEntries, date);

  // Path tables: the root only. 8 bytes + identifier (1 byte, 0x00) + pad = 10.
  const ptSize = writePathTable(at(LBA_PT_L), LBA_ROOT, 'LE');
  writePathTable(at(LBA_PT_M), LBA_ROOT, 'BE');
  writePathTable(at(LBA_JPT_L), LBA_JROOT, 'LE');
  writePathTable(at(LBA_JPT_M), LBA_JROOT, 'BE');

  const common = { totalSectors, ptSize, date };
  writeVolumeDescriptor(at(LBA_PVD), { ...common, type: 1, volumeId, rootLba: LBA_ROOT, ptL: LBA_PT_L, ptM: LBA_PT_M, joliet: false });
  writeVolumeDescriptor(at(LBA_SVD), { ...common, type: 2, volumeId, rootLba: LBA_JROOT, ptL: LBA_JPT_L, ptM: LBA_JPT_M, joliet: true });
  const term = at(LBA_TERM);
  term[0] = 255;
  term.write('CD001', 1, 'ascii');
  term[6] = 1;

  for (const e of extents) {
    if (e.size > 0) image.set(e.file.data, e.lba * SECTOR);
  }
  return image;
}

// ---- records -------------------------------------------------------------------------------------------

function ucs2be(s: string): Buffer {
  const b = Buffer.from(s, 'utf16le');
  b.swap16();
  return b;
}

function both32(buf: Buffer, off: number, n: number): void {
  buf.writeUInt32LE(n, off);
  buf.writeUInt32BE(n, off + 4);
}

function both16(buf: Buffer, off: number, n: number): void {
  buf.writeUInt16LE(n, off);
  buf.writeUInt16BE(n, off + 2);
}

/** The 7-byte recording date of a directory record (ECMA-119 9.1.5), in UTC. */
function recordDate(buf: Buffer, off: number, d: Date): void {
  buf[off] = d.getUTCFullYear() - 1900;
  buf[off + 1] = d.getUTCMonth() + 1;
  buf[off + 2] = d.getUTCDate();
  buf[off + 3] = d.getUTCHours();
  buf[off + 4] = d.getUTCMinutes();
  buf[off + 5] = d.getUTCSeconds();
  buf[off + 6] = 0; // GMT offset, 15-minute units
}

/** The 17-byte volume date (ECMA-119 8.4.26.1): "YYYYMMDDHHMMSScc" + GMT offset; `null` = not specified. */
function volumeDate(buf: Buffer, off: number, d: Date | null): void {
  if (!d) {
    buf.write('0000000000000000', off, 'ascii');
    buf[off + 16] = 0;
    return;
  }
  const p = (n: number, w: number): string => String(n).padStart(w, '0');
  const s = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1, 2)}${p(d.getUTCDate(), 2)}` +
    `${p(d.getUTCHours(), 2)}${p(d.getUTCMinutes(), 2)}${p(d.getUTCSeconds(), 2)}${p(Math.floor(d.getUTCMilliseconds() / 10), 2)}`;
  buf.write(s, off, 'ascii');
  buf[off + 16] = 0;
}

/** A directory record (ECMA-119 9.1) at `off`; returns its length. */
function directoryRecord(buf: Buffer, off: number, r: { id: Buffer; lba: number; size: number; dir: boolean; date: Date }): number {
  const len = 33 + r.id.length + (r.id.length % 2 === 0 ? 1 : 0);
  buf[off] = len;
  buf[off + 1] = 0;
  both32(buf, off + 2, r.lba);
  both32(buf, off + 10, r.size);
  recordDate(buf, off + 18, r.date);
  buf[off + 25] = r.dir ? 2 : 0;
  both16(buf, off + 28, 1);
  buf[off + 32] = r.id.length;
  r.id.copy(buf, off + 33);
  return len;
}

function writeDirectory(sector: Buffer, selfLba: number, entries: readonly { id: Buffer; lba: number; size: number }[], date: Date): void {
  let off = 0;
  off += directoryRecord(sector, off, { id: Buffer.from([0]), lba: selfLba, size: SECTOR, dir: true, date });
  off += directoryRecord(sector, off, { id: Buffer.from([1]), lba: selfLba, size: SECTOR, dir: true, date }); // root's parent is itself
  for (const e of entries) {
    const len = 33 + e.id.length + (e.id.length % 2 === 0 ? 1 : 0);
    if (off + len > MAX_DIR_BYTES) throw new IsoWriteError('Too many files for the seed image (one directory sector).');
    off += directoryRecord(sector, off, { id: e.id, lba: e.lba, size: e.size, dir: false, date });
  }
}

function writePathTable(sector: Buffer, rootLba: number, endian: 'LE' | 'BE'): number {
  sector[0] = 1; // identifier length
  sector[1] = 0;
  if (endian === 'LE') {
    sector.writeUInt32LE(rootLba, 2);
    sector.writeUInt16LE(1, 6);
  } else {
    sector.writeUInt32BE(rootLba, 2);
    sector.writeUInt16BE(1, 6);
  }
  sector[8] = 0; // root identifier
  return 10;
}

interface DescriptorFields {
  readonly type: 1 | 2;
  readonly volumeId: string;
  readonly rootLba: number;
  readonly ptL: number;
  readonly ptM: number;
  readonly ptSize: number;
  readonly totalSectors: number;
  readonly date: Date;
  readonly joliet: boolean;
}

/** A primary (type 1) or Joliet supplementary (type 2) volume descriptor (ECMA-119 8.4, 8.5). */
function writeVolumeDescriptor(d: Buffer, f: DescriptorFields): void {
  // Text fields: a-/d-characters padded with spaces, or (Joliet) UCS-2 BE padded with UCS-2 spaces.
  const text = (off: number, width: number, s: string): void => {
    if (f.joliet) {
      for (let i = 0; i + 1 < width; i += 2) d.writeUInt16BE(0x0020, off + i);
      const u = ucs2be(s).subarray(0, width - (width % 2));
      u.copy(d, off);
      if (width % 2 === 1) d[off + width - 1] = 0x20;
    } else {
      d.fill(0x20, off, off + width);
      d.write(s.slice(0, width), off, 'ascii');
    }
  };
  d[0] = f.type;
  d.write('CD001', 1, 'ascii');
  d[6] = 1;
  text(8, 32, ''); // system identifier
  text(40, 32, f.volumeId);
  both32(d, 80, f.totalSectors);
  if (f.joliet) d.write('%/E', 88, 'ascii'); // UCS-2 level 3
  both16(d, 120, 1); // volume set size
  both16(d, 124, 1); // volume sequence number
  both16(d, 128, SECTOR);
  both32(d, 132, f.ptSize);
  d.writeUInt32LE(f.ptL, 140);
  d.writeUInt32BE(f.ptM, 148);
  directoryRecord(d, 156, { id: Buffer.from([0]), lba: f.rootLba, size: SECTOR, dir: true, date: f.date });
  text(190, 128, ''); // volume set
  text(318, 128, ''); // publisher
  text(446, 128, ''); // data preparer
  text(574, 128, 'VIVARIUM'); // application
  text(702, 37, ''); // copyright file
  text(739, 37, ''); // abstract file
  text(776, 37, ''); // bibliographic file
  volumeDate(d, 813, f.date); // creation
  volumeDate(d, 830, f.date); // modification
  volumeDate(d, 847, null); // expiration
  volumeDate(d, 864, null); // effective
  d[881] = 1; // file structure version
}
