/**
 * Empty qcow2 overlays written without a process (issue 10: a linked clone "in well under a
 * second"; spawning qemu-img alone costs more than the whole budget next to `qemu-img create` by
 * hand). The file is exactly what `qemu-img create -f qcow2 -o cluster_size=65536 -b BASE -F FMT
 * OUT SIZE` (QEMU 7.2) lays out, feature name table aside:
 *
 *   cluster 0   header (version 3, 112 bytes), the backing format header extension, the end of the
 *               header extensions, then the backing file name
 *   cluster 1   refcount table, one cluster; entry 0 names cluster 2
 *   cluster 2   the one refcount block (16-bit counts): 1 for every cluster the file uses
 *   cluster 3…  the active L1 table, all zeros (nothing allocated: every read goes to the backing
 *               file); the file ends where the L1 table ends, as qemu-img leaves it
 *
 * Format: QEMU docs/interop/qcow2.txt (https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.txt),
 * sections "Header" (field offsets, version 3 fields, header_length a multiple of 8), "Additional
 * fields" (compression_type at byte 104, 0 = zlib), "Header extensions" (type 0xE2792ACA backing file
 * format name, type 0 end of the area, 8-byte padding; the backing file name lives in the rest of
 * the first cluster, at most 1023 bytes, not NUL-terminated), "String header extensions", "Host
 * cluster management" (refcount table and blocks, refcount_block_entries = cluster_size * 8 /
 * refcount_bits) and "Cluster mapping" (l2_entries = cluster_size / 8, so one L1 entry maps
 * cluster_size * cluster_size / 8 bytes). The layout (which cluster holds what, the 112-byte header,
 * the size rounded up to 512 bytes, the file ending with the L1 table, L1 offset 0 for an empty
 * disk) is what qemu-img 7.2 writes; main/services/disks/qcow2-overlay.test.ts compares the two with
 * `qemu-img info` and `qemu-img check`.
 *
 * One refcount block (32768 clusters of 64 KiB = 2 GiB of file) always covers such a file: even the
 * largest L1 table QEMU opens (32 MiB, "Header": size note) makes it 515 clusters. So every virtual
 * size QEMU accepts with 64 KiB clusters (up to 2 PiB) is handled here; larger ones, and backing
 * names or formats QEMU would not take, are refused with Qcow2OverlayRefused so that the caller can
 * hand the request to qemu-img (which then says in its own words what is wrong).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { expectedFsError, PRIVATE_FILE_MODE } from '../paths';

/** The cluster size of every overlay written here: 64 KiB (qemu-img's default). */
export const OVERLAY_CLUSTER_SIZE = 65536;
const CLUSTER_BITS = 16;
/** "QFI\xfb" ("Header", bytes 0-3). */
const QCOW2_MAGIC = 0x514649fb;
/** Header length written (version 3: 104 bytes of fields, compression_type at 104, padded to 8). */
const HEADER_LENGTH = 112;
/** refcount_order 4: 16-bit refcounts (qemu-img's default). */
const REFCOUNT_ORDER = 4;
const REFCOUNT_BYTES = (1 << REFCOUNT_ORDER) / 8;
/** "Header extensions": backing file format name string. */
const EXT_BACKING_FORMAT = 0xe2792aca;
/** "Header", backing_file_size: at most 1023 bytes. */
const MAX_BACKING_NAME_BYTES = 1023;
/** QEMU's limit on the L1 table ("Header", size note): 32 MiB. */
const MAX_L1_BYTES = 32 * 1024 * 1024;
/** Guest bytes one L1 entry maps ("Cluster mapping": l2_entries = cluster_size / 8). */
const BYTES_PER_L1_ENTRY = OVERLAY_CLUSTER_SIZE * (OVERLAY_CLUSTER_SIZE / 8);
/** qemu-img rounds a requested size up to whole 512-byte sectors. */
const SECTOR = 512;
/** The first clusters: header, refcount table, refcount block. */
const FIXED_CLUSTERS = 3;
const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/**
 * What this writer does not make (a size over QEMU's limit, a backing name longer than 1023 bytes or
 * holding a NUL, a relative backing path, an odd format name). The message is a sentence; callers
 * fall back to qemu-img, which refuses or handles it in its own words.
 */
export class Qcow2OverlayRefused extends Error {
  override readonly name = 'Qcow2OverlayRefused';
}

/** An overlay to write. */
export interface Qcow2OverlaySpec {
  /** Guest-visible size in bytes (a safe integer ≥ 0); rounded up to 512 like qemu-img does. */
  readonly virtualSize: number;
  /** The backing file, an absolute path, stored as given (UTF-8). */
  readonly backingFile: string;
  /** Its format as QEMU names it ("qcow2", "raw"), stored in the backing format extension. */
  readonly backingFormat: string;
}

/** The bytes of an overlay: `head` (written as is) and the file's total length (zeros after `head`). */
export interface Qcow2OverlayImage {
  readonly head: Buffer;
  readonly fileSize: number;
  /** The virtual size written in the header (the request rounded up to 512). */
  readonly virtualSize: number;
}

/**
 * Lays out the overlay `spec` describes (pure; no file system access).
 * @throws Qcow2OverlayRefused for what qemu-img should handle instead (see the module comment)
 */
export function qcow2OverlayImage(spec: Qcow2OverlaySpec): Qcow2OverlayImage {
  const { backingFile, backingFormat } = spec;
  if (!Number.isSafeInteger(spec.virtualSize) || spec.virtualSize < 0) {
    throw new Qcow2OverlayRefused(`The overlay's size ${spec.virtualSize} is not a whole number of bytes.`);
  }
  const virtualSize = Math.ceil(spec.virtualSize / SECTOR) * SECTOR;
  const l1Size = Math.ceil(virtualSize / BYTES_PER_L1_ENTRY);
  const l1Bytes = l1Size * 8;
  if (l1Bytes > MAX_L1_BYTES) {
    throw new Qcow2OverlayRefused(`A ${virtualSize}-byte disk needs an L1 table larger than QEMU's 32 MiB limit with 64 KiB clusters.`);
  }
  if (!path.isAbsolute(backingFile)) throw new Qcow2OverlayRefused(`The backing file ${backingFile} is not an absolute path.`);
  const name = Buffer.from(backingFile, 'utf8');
  if (name.length > MAX_BACKING_NAME_BYTES || name.includes(0)) {
    throw new Qcow2OverlayRefused(`The backing file name is longer than qcow2's 1023 bytes or holds a NUL byte.`);
  }
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(backingFormat)) throw new Qcow2OverlayRefused(`"${backingFormat}" is not a QEMU image format name.`);
  const fmt = Buffer.from(backingFormat, 'ascii');

  const l1Clusters = Math.ceil(l1Bytes / OVERLAY_CLUSTER_SIZE);
  const clusters = FIXED_CLUSTERS + l1Clusters;
  const l1Offset = l1Size === 0 ? 0 : FIXED_CLUSTERS * OVERLAY_CLUSTER_SIZE;
  const fileSize = FIXED_CLUSTERS * OVERLAY_CLUSTER_SIZE + l1Bytes;
  // The zeroed L1 goes out in the same write when it is small (every real disk); a large one is
  // left to the file's length (a hole reads as zeros).
  const head = Buffer.alloc(fileSize <= 4 * OVERLAY_CLUSTER_SIZE ? fileSize : FIXED_CLUSTERS * OVERLAY_CLUSTER_SIZE);

  // Header extensions: backing format (padded to 8), then the end marker (type 0, length 0).
  const extStart = HEADER_LENGTH;
  head.writeUInt32BE(EXT_BACKING_FORMAT, extStart);
  head.writeUInt32BE(fmt.length, extStart + 4);
  fmt.copy(head, extStart + 8);
  const endMarker = extStart + 8 + Math.ceil(fmt.length / 8) * 8;
  const nameOffset = endMarker + 8; // the end marker's 8 bytes are zeros already
  name.copy(head, nameOffset);

  // Header ("Header"; unnamed fields stay 0: crypt_method, nb_snapshots, snapshots_offset, the
  // feature bitmaps, compression_type = zlib).
  head.writeUInt32BE(QCOW2_MAGIC, 0);
  head.writeUInt32BE(3, 4); // version
  head.writeBigUInt64BE(BigInt(nameOffset), 8); // backing_file_offset
  head.writeUInt32BE(name.length, 16); // backing_file_size
  head.writeUInt32BE(CLUSTER_BITS, 20);
  head.writeBigUInt64BE(BigInt(virtualSize), 24); // size
  head.writeUInt32BE(l1Size, 36);
  head.writeBigUInt64BE(BigInt(l1Offset), 40); // l1_table_offset
  head.writeBigUInt64BE(BigInt(OVERLAY_CLUSTER_SIZE), 48); // refcount_table_offset: cluster 1
  head.writeUInt32BE(1, 56); // refcount_table_clusters
  head.writeUInt32BE(REFCOUNT_ORDER, 96);
  head.writeUInt32BE(HEADER_LENGTH, 100);

  // Refcount table entry 0 → the refcount block in cluster 2, which counts every used cluster once.
  head.writeBigUInt64BE(BigInt(2 * OVERLAY_CLUSTER_SIZE), OVERLAY_CLUSTER_SIZE);
  for (let c = 0; c < clusters; c++) head.writeUInt16BE(1, 2 * OVERLAY_CLUSTER_SIZE + c * REFCOUNT_BYTES);
  return { head, fileSize, virtualSize };
}

/**
 * Writes the empty overlay `spec` describes to `file`: created exclusively (O_EXCL, never through a
 * symbolic link), owner-only (0600), fsync'd; on any failure the file is removed again. The caller
 * makes the folder entry durable (an fsync of the folder, e.g. by the atomic config write that
 * follows in the same folder).
 * @throws Qcow2OverlayRefused before touching the disk, for what qemu-img should handle instead;
 *   VivariumError disk-full / invalid-state (read-only filesystem) from expectedFsError; the
 *   system error otherwise (EEXIST when `file` exists).
 */
export async function writeQcow2Overlay(file: string, spec: Qcow2OverlaySpec): Promise<void> {
  const image = qcow2OverlayImage(spec);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW, PRIVATE_FILE_MODE);
  } catch (e) {
    throw expectedFsError(e, file, image.fileSize);
  }
  try {
    try {
      await fh.write(image.head, 0, image.head.length, 0);
      if (image.fileSize > image.head.length) await fh.truncate(image.fileSize);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    await fsp.rm(file, { force: true });
    throw expectedFsError(e, file, image.fileSize);
  }
}

/** The header fields of a qcow2 image that say whether it stands alone ("Header"). */
export interface Qcow2HeaderFacts {
  readonly version: number;
  /** backing_file_offset ≠ 0 */
  readonly hasBacking: boolean;
  readonly cryptMethod: number;
  readonly nbSnapshots: number;
  readonly incompatibleFeatures: bigint;
  readonly autoclearFeatures: bigint;
}

/** The facts of a qcow2 header in `head` (its first ≥ 104 bytes), or null when it is not qcow2. */
export function qcow2HeaderFacts(head: Buffer): Qcow2HeaderFacts | null {
  if (head.length < 72 || head.readUInt32BE(0) !== QCOW2_MAGIC) return null;
  const version = head.readUInt32BE(4);
  const v3 = version >= 3 && head.length >= 104;
  return {
    version,
    hasBacking: head.readBigUInt64BE(8) !== 0n,
    cryptMethod: head.readUInt32BE(32),
    nbSnapshots: head.readUInt32BE(60),
    incompatibleFeatures: v3 ? head.readBigUInt64BE(72) : 0n,
    autoclearFeatures: v3 ? head.readBigUInt64BE(88) : 0n,
  };
}

/** The largest qcow2 copyPlainQcow2 copies in memory (a UEFI variable store is well under 1 MiB). */
const MAX_PLAIN_COPY_BYTES = 64 * 1024 * 1024;

/**
 * Copies the qcow2 image `src` to `dest` byte for byte when that copy is what `qemu-img convert -O
 * qcow2` would give a user: version 2 or 3, no backing file, no encryption, no internal snapshots,
 * no incompatible feature bit (dirty, corrupt, external data file, zstd, extended L2) and no
 * auto-clear bit (bitmaps), at most 64 MiB. Returns false without writing anything otherwise (the
 * caller converts instead). `src` is never followed through a symbolic link (read from one open
 * descriptor); `dest` is created as writeQcow2Overlay creates its file (O_EXCL, 0600, fsync'd,
 * removed on failure).
 * @throws VivariumError broken-bundle when `src` is a symbolic link (paths.ts symlinkError); the
 *   system error opening or reading `src` otherwise (ENOENT…); expectedFsError's for `dest`
 */
export async function copyPlainQcow2(src: string, dest: string): Promise<boolean> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(src, fs.constants.O_RDONLY | NOFOLLOW);
  } catch (e) {
    throw expectedFsError(e, src);
  }
  let data: Buffer;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_PLAIN_COPY_BYTES) return false;
    data = Buffer.alloc(st.size);
    let filled = 0;
    while (filled < data.length) {
      const { bytesRead } = await fh.read(data, filled, data.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    data = data.subarray(0, filled);
  } finally {
    await fh.close();
  }
  const f = qcow2HeaderFacts(data);
  if (!f || (f.version !== 2 && f.version !== 3) || f.hasBacking || f.cryptMethod !== 0 || f.nbSnapshots !== 0 || f.incompatibleFeatures !== 0n || f.autoclearFeatures !== 0n) {
    return false;
  }
  let out: fsp.FileHandle;
  try {
    out = await fsp.open(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW, PRIVATE_FILE_MODE);
  } catch (e) {
    throw expectedFsError(e, dest, data.length);
  }
  try {
    try {
      await out.writeFile(data);
      await out.sync();
    } finally {
      await out.close();
    }
  } catch (e) {
    await fsp.rm(dest, { force: true });
    throw expectedFsError(e, dest, data.length);
  }
  return true;
}
