/**
 * Disk checks with sentences, so a person never sees QEMU's raw `-blockdev {json}` error.
 *
 *  - checkDiskImage(path): at create, is this file a disk image we may attach writable?
 *  - preflightDisks(config, paths): at every start, does each disk still match what create checked?
 *    Files change between create and start (a disk is replaced, chmod-ed, converted, rebased,
 *    marked corrupt by a crashed QEMU), so every start re-checks, in parallel, each image of each
 *    disk's declared chain.
 *
 * The rule for "is a disk image" (checkDiskImage), documented in the README:
 *  1. a regular file or block device that exists, readable and writable by you;
 *  2. not an ISO 9660 / UDF CD image ("CD001", "BEA01" or "NSR0x" at byte 32769): that is a CD;
 *  3. not a compressed or archive file (gzip, xz, zstd, bzip2, zip, 7z, tar): unpack it first;
 *  4. its format, as qemu-img probes it, is qcow2 or raw (vmdk, vdi, vhdx, vpc are converted first);
 *  5. a qcow2 must be standalone (no backing file: Vivarium never opens one an image names) and not
 *     marked corrupt;
 *  6. a raw image (a regular file) must be a non-empty multiple of 512 bytes (disks are made of
 *     512-byte sectors) and hold at least one NUL byte in its first 64 KiB: a text file (/etc/passwd)
 *     has none, while every disk does (partition tables, file system headers and blank space are
 *     mostly zeros; a random-looking 64 KiB without a single zero byte has odds of 1 in 10^111).
 *
 * Probing a format is safe at create (the guest has not written to the image yet). At start a raw
 * disk the guest can write is never probed: the guest may have written any header into it (the
 * reason formats are always given explicitly, qemu-notes §8). Rule 6 is redone at every start (a
 * raw file's size and its zero bytes say nothing about which header the guest wrote), so a text file
 * put where a raw disk was is refused instead of being given to the guest to write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors, ErrorCode, VivariumError } from '../../common/errors';
import type { BackingLayer, Disk, DiskFormat, ImageSource, VmConfig } from '../../common/models/vm-config';
import { diskImages } from '../../common/models/vm-config';
import type { VmBundlePaths } from '../paths';
import type { ImageInfo, QemuImg } from './qemu-img';

/** Bytes read from the start of a file to classify it (covers the ISO 9660 volume descriptor). */
const SNIFF_BYTES = 64 * 1024;
const SECTOR = 512;

/** What checkDiskImage found: the image's format, for the config. */
export interface DiskImageCheck {
  readonly format: DiskFormat;
  readonly virtualSize: number;
}

async function readHead(file: string, bytes: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** ISO 9660 ("CD001") or UDF ("BEA01"/"NSR02"/"NSR03") volume descriptor at sector 16 of 2048. */
export function looksLikeCdImage(head: Buffer): boolean {
  const id = head.subarray(32769, 32774).toString('latin1');
  return id === 'CD001' || id === 'BEA01' || id === 'NSR02' || id === 'NSR03';
}

/** Compressed and archive files people download images in, by their magic bytes. */
export function archiveKind(head: Buffer): string | null {
  const starts = (...b: number[]) => b.every((x, i) => head[i] === x);
  if (starts(0x1f, 0x8b)) return 'a gzip-compressed file';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'an xz-compressed file';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'a zstd-compressed file';
  if (starts(0x42, 0x5a, 0x68)) return 'a bzip2-compressed file';
  if (starts(0x50, 0x4b, 0x03, 0x04)) return 'a zip archive';
  if (starts(0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c)) return 'a 7-Zip archive';
  if (head.subarray(257, 262).toString('latin1') === 'ustar') return 'a tar archive (an OVA is one: import it instead)';
  return null;
}

function invalidDisk(message: string, remedy?: ConstructorParameters<typeof VivariumError>[3]): VivariumError {
  return new VivariumError(ErrorCode.InvalidArgument, message, undefined, { field: 'diskPath', ...remedy });
}

/**
 * Create-time check that `file` is a disk image Vivarium may attach writable (the rule is in this
 * module's header). Returns its format and virtual size in bytes. Throws invalid-argument errors on
 * field `diskPath` with a sentence (an ISO carries a remedy: attach it as the CD instead).
 */
export async function checkDiskImage(file: string, qemuImg: QemuImg): Promise<DiskImageCheck> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch {
    throw invalidDisk(`The disk image ${file} does not exist. Check the path and try again.`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw invalidDisk(`${file} is not a file, so it cannot be a disk image. Give the path of a disk image file.`);
  try {
    await fs.promises.access(file, fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    throw invalidDisk(`${file} is not readable and writable by you, and a VM writes to its disk. Fix the file's permissions (or make a copy you own) and try again.`);
  }
  const head = await readHead(file, SNIFF_BYTES);
  if (looksLikeCdImage(head)) {
    throw invalidDisk(`${file} is a CD/DVD image (ISO 9660), not a disk image. Attach it as the VM's CD instead.`, {
      remedy: { kind: 'change-setting', field: 'iso', to: file },
    });
  }
  const archive = archiveKind(head);
  if (archive) throw invalidDisk(`${file} is ${archive}, not a disk image. Unpack it first and use the image inside.`);
  const probed = await qemuImg.tryInfo(file);
  if (!probed.ok) throw invalidDisk(`${file} cannot be read as a disk image (${probed.reason}).`);
  const info = probed.info;
  switch (info.format) {
    case 'qcow2':
      if (info.backingFilename !== null) {
        throw invalidDisk(
          `${file} is an overlay on ${info.backingFilename}. Vivarium uses standalone images (it never opens a backing file an image names): make one with qemu-img convert -O qcow2 "${file}" standalone.qcow2 and use that.`,
        );
      }
      if (info.corrupt) throw invalidDisk(corruptSentence(file));
      // QEMU opens an external data file from the header: any file of this machine, for the guest.
      if (info.dataFile !== null) throw invalidDisk(`${file} keeps its data in another file (${info.dataFile}), which Vivarium never opens. Make a standalone copy with qemu-img convert -O qcow2 "${file}" standalone.qcow2 and use that.`);
      return { format: 'qcow2', virtualSize: info.virtualSize };
    case 'raw':
      if (st.isFile()) {
        const why = rawFileProblem(st.size, head);
        if (why) throw invalidDisk(`${file} ${why}. Give the path of a disk image (qcow2 or raw).`);
      }
      return { format: 'raw', virtualSize: info.virtualSize };
    default:
      throw invalidDisk(`${file} is a ${info.format} image. Convert it to qcow2 first: qemu-img convert -f ${info.format} -O qcow2 "${file}" disk.qcow2`);
  }
}

/**
 * Rule 6 of the module header, shared by create and every start: why a regular file of `size` bytes
 * whose first bytes are `head` (up to SNIFF_BYTES) cannot be a raw disk, as a clause after its path
 * ("is not a disk image: …"), or null. A guest cannot change its raw disk's size, and any disk it
 * uses keeps zero bytes in its first 64 KiB (partition tables, file system headers, blank space).
 */
export function rawFileProblem(size: number, head: Buffer): string | null {
  if (size === 0 || size % SECTOR !== 0) {
    return `is not a disk image: its size (${size} bytes) is not a whole number of 512-byte sectors`;
  }
  if (!head.includes(0)) {
    return `looks like a text or data file, not a disk image (its first ${Math.min(size, SNIFF_BYTES) / 1024} KiB hold no zero byte, which every disk has)`;
  }
  return null;
}

/**
 * rawFileProblem for a file on disk (its size and first 64 KiB), for callers that take a raw image
 * from the user (imports). null when it may be a raw disk.
 * @throws the fs error when the file cannot be read.
 */
export async function rawImageProblem(file: string): Promise<string | null> {
  const st = await fs.promises.stat(file);
  return rawFileProblem(st.size, await readHead(file, SNIFF_BYTES));
}

function corruptSentence(file: string): string {
  return `QEMU marked ${file} as corrupt (a consistency check failed while it was in use), and will not write to it. Back it up, then repair it with qemu-img check -r all "${file}" and try again.`;
}

/**
 * Create- and edit-time check that `file` (a readable file: assertReadableFile) is a CD/DVD image:
 * an ISO 9660 or UDF volume descriptor ("CD001", "BEA01", "NSR02"/"NSR03") at byte 32769, as every
 * installer and live image has (El Torito boot records live inside ISO 9660). Anything else (a text
 * file, a qcow2, a raw disk, a compressed image) is refused: the guest would get a CD it cannot read
 * and no word why. There is no way to insist: a raw disk image belongs in a disk, not the CD drive.
 * @throws VivariumError invalid-argument on field `iso`, with a sentence (and for a disk image the
 *         remedy of giving it as the disk).
 */
export async function checkCdImage(file: string): Promise<void> {
  const head = await readHead(file, SNIFF_BYTES);
  if (looksLikeCdImage(head)) return;
  const invalid = (message: string, remedy?: ConstructorParameters<typeof VivariumError>[3]) =>
    new VivariumError(ErrorCode.InvalidArgument, message, undefined, { field: 'iso', ...remedy });
  const archive = archiveKind(head);
  if (archive) throw invalid(`${file} is ${archive}, not a CD/DVD image. Unpack it first and use the .iso inside.`);
  if (head.subarray(0, 4).toString('latin1') === 'QFI\xfb') {
    throw invalid(`${file} is a qcow2 disk image, not a CD/DVD image. Give it as the VM's disk instead.`, { remedy: { kind: 'change-setting', field: 'diskPath', to: file } });
  }
  throw invalid(
    `${file} is not a CD/DVD image: it has no ISO 9660 or UDF volume descriptor (an .iso file has one at byte 32769). Give the path of an .iso file.`,
  );
}

// ---- start-time preflight ------------------------------------------------------------------------

/** One image of one disk's chain, as a start sees it. */
interface ImageToCheck {
  readonly disk: Disk;
  /** 0 = the disk's top image, 1.. = backing layers. */
  readonly depth: number;
  readonly layer: BackingLayer;
  readonly file: string;
  /** The next layer's file and format, or null at the bottom of the chain. */
  readonly declaredBacking: string | null;
  readonly declaredBackingFormat: DiskFormat | null;
  readonly writable: boolean;
}

function imageFile(bundle: Pick<VmBundlePaths, 'file'>, source: ImageSource): string {
  return 'bundle' in source ? bundle.file(source.bundle) : source.path;
}

function what(img: ImageToCheck): string {
  return img.depth === 0 ? `The image of disk ${img.disk.id} (${img.file})` : `The backing image ${img.file} (layer ${img.depth} of disk ${img.disk.id})`;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    const [ra, rb] = await Promise.all([fs.promises.realpath(a), fs.promises.realpath(b)]);
    return ra === rb;
  } catch {
    return false;
  }
}

/** @param locked collects the files found held by another program's write lock */
async function checkOne(img: ImageToCheck, qemuImg: QemuImg, locked?: Set<string>): Promise<string | null> {
  // A VM's own image is a file in its folder: a link planted there would make QEMU open (and write)
  // whatever it points at, so it is refused (issue 8). Images given by path are the user's choice.
  if ('bundle' in img.layer.source && (await fs.promises.lstat(img.file).catch(() => null))?.isSymbolicLink()) {
    return `${what(img)} is a symbolic link; Vivarium does not follow links in a VM folder. Put the image itself in the VM's folder (or remove the link), then start the VM again.`;
  }
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(img.file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `${what(img)} no longer exists. Put the file back (or restore it from a backup), then start the VM again.`;
    return `${what(img)} cannot be reached (${code ?? 'error'}). Check the folder's permissions, then start the VM again.`;
  }
  if (!st.isFile() && !st.isBlockDevice()) return `${what(img)} is no longer a file. Put the disk image back at that path.`;
  try {
    await fs.promises.access(img.file, fs.constants.R_OK | (img.writable ? fs.constants.W_OK : 0));
  } catch {
    return img.writable
      ? `${what(img)} is not readable and writable by you, and the VM writes to it. Give yourself read and write access to it (e.g. chmod u+rw "${img.file}"), then start the VM again.`
      : `${what(img)} is not readable by you. Give yourself read access to it (e.g. chmod u+r "${img.file}"), then start the VM again.`;
  }
  // Always open with the declared format. A writable image is opened with locking, so one another
  // QEMU (another VM) is writing is caught here instead of by QEMU's raw error.
  const opened = await qemuImg.tryInfo(img.file, { format: img.layer.format, shareLock: !img.writable });
  if (!opened.ok) {
    if (/lock|another process using/i.test(opened.reason)) {
      locked?.add(img.file);
      return `${what(img)} is in use by another program (another running VM, or a disk tool). Stop that program first, then start the VM again.`;
    }
    if (/not in qcow2 format/i.test(opened.reason)) {
      const probe = await qemuImg.tryInfo(img.file);
      const now = probe.ok ? ` (it is a ${probe.info.format} image now)` : '';
      return `${what(img)} is no longer a qcow2 image${now}, but the VM's settings say qcow2. Put the original image back, or convert this one: qemu-img convert -O qcow2 "${img.file}" new.qcow2.`;
    }
    return `${what(img)} cannot be opened as ${img.layer.format} (${opened.reason}). Put a good copy of the image back, then start the VM again.`;
  }
  const info: ImageInfo = opened.info;
  // A raw image the guest can write is never probed (it may hold any header the guest wrote); one
  // the guest cannot write is, so a qcow2 put where a raw image was is caught.
  if (img.layer.format === 'raw' && !img.writable) {
    const probe = await qemuImg.tryInfo(img.file);
    if (probe.ok && probe.info.format !== 'raw') {
      return `${what(img)} is a ${probe.info.format} image now, but the VM's settings say raw. Put the original image back, then start the VM again.`;
    }
  }
  // A raw file must still pass create's raw rule (rule 6): a text file put where the image was
  // would otherwise be given to the guest to write.
  if (img.layer.format === 'raw' && st.isFile()) {
    const why = rawFileProblem(st.size, await readHead(img.file, SNIFF_BYTES));
    if (why) return `${what(img)} ${why}: it was replaced since the VM was made. Put the original image back, then start the VM again.`;
  }
  if (info.corrupt) return corruptSentence(img.file);
  if (img.layer.format === 'qcow2' && info.dataFile !== null) {
    return `${what(img)} now keeps its data in another file (${info.dataFile}), and Vivarium never opens such a file (QEMU would give it to the guest). Make it standalone (qemu-img convert -O qcow2 "${img.file}" standalone.qcow2) and use that, or restore the original image.`;
  }
  if (img.layer.format === 'qcow2') {
    const named = info.fullBackingFilename ?? info.backingFilename;
    if (named !== null && img.declaredBacking === null) {
      return `${what(img)} now names ${info.backingFilename ?? named} as its backing file, which the VM's settings do not list, and Vivarium never opens a backing file an image names. Make it standalone (qemu-img convert -O qcow2 "${img.file}" standalone.qcow2) and use that, or restore the original image.`;
    }
    if (named === null && img.declaredBacking !== null) {
      return `${what(img)} has no backing file, but the VM's settings layer it on ${img.declaredBacking}: the chain was changed outside Vivarium (flattened or committed). Restore the original images, then start the VM again.`;
    }
    if (named !== null && img.declaredBacking !== null && !(await sameFile(named, img.declaredBacking))) {
      return `${what(img)} names ${named} as its backing file, but the VM's settings say ${img.declaredBacking}. Restore the original images (or, if the file only moved, fix the link with qemu-img rebase -u -b "${img.declaredBacking}" -F ${img.declaredBackingFormat ?? 'qcow2'} "${img.file}"), then start the VM again.`;
    }
  }
  return null;
}

/** Every image of every disk, top first per disk. */
function imagesOf(config: VmConfig, bundle: Pick<VmBundlePaths, 'file'>): ImageToCheck[] {
  return config.disks.flatMap((disk) => {
    const layers = diskImages(disk);
    const files = layers.map((l) => imageFile(bundle, l.source));
    return layers.map((layer, depth) => ({
      disk,
      depth,
      layer,
      file: files[depth] as string,
      declaredBacking: files[depth + 1] ?? null,
      declaredBackingFormat: layers[depth + 1]?.format ?? null,
      writable: depth === 0 && !disk.readOnly,
    }));
  });
}

/**
 * Start-time re-check of every image of every disk's declared chain (in parallel): it exists, is a
 * file, is readable (and writable for a writable top image), opens as its declared format, is not in
 * use by another program, a raw file still passes create's raw rule (rule 6), is not marked corrupt, and names as its backing file exactly the next
 * layer of the declared chain (or nothing at the bottom). Returns the problems as sentences (empty:
 * all good) — one per image, in disk order.
 */
export async function diskProblems(config: VmConfig, bundle: Pick<VmBundlePaths, 'file'>, qemuImg: QemuImg, locked?: Set<string>): Promise<readonly string[]> {
  const images = imagesOf(config, bundle);
  if (images.length === 0) return [];
  const found = await Promise.all(images.map((img) => checkOne(img, qemuImg, locked)));
  return found.filter((p): p is string => p !== null);
}

/**
 * diskProblems() as a start's gate: throws an invalid-state error whose message is the first
 * problem (all of them in `data.problems`; `data.lockedImage`: a file another program holds), or
 * returns when every disk is fine.
 */
export async function preflightDisks(config: VmConfig, bundle: Pick<VmBundlePaths, 'file'>, qemuImg: QemuImg): Promise<void> {
  const locked = new Set<string>();
  const problems = await diskProblems(config, bundle, qemuImg, locked);
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (${problems.length - 1} more disk problem${problems.length > 2 ? 's' : ''} found.)` : '';
    // `lockedImage`: the caller may know which VM holds it (vm-service names it).
    const [lockedImage] = locked;
    throw errors.state(`"${config.name}" cannot start: ${problems[0]}${more}`, { problems, ...(lockedImage !== undefined ? { lockedImage } : {}) });
  }
}
