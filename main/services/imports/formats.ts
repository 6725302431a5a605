/**
 * What kind of file an import is, from its first bytes (and its last 512 for a fixed VHD), never from
 * QEMU's own probing: every image is untrusted, so Vivarium decides the format and always passes it
 * to qemu-img explicitly.
 *
 * Magic numbers (each from the format's specification):
 *  - qcow2: "QFI\xfb" at 0 (QEMU docs/interop/qcow2.txt)
 *  - VMDK sparse extent: "KDMV" at 0; a text descriptor starts with "# Disk DescriptorFile" (VMware
 *    Virtual Disk Format 1.1)
 *  - VDI: signature 0xbeda107f (little endian) at 0x40 (VirtualBox VDI header)
 *  - VHDX: "vhdxfile" at 0 (MS-VHDX §2.2.1)
 *  - VHD (QEMU: vpc): "conectix" at 0 (dynamic/differencing: footer copy) or at size-512 (fixed)
 *  - tar (OVA): "ustar" at 257 (POSIX.1-1988 ustar)
 *  - OVF: an XML document whose root is `Envelope`
 */
import * as fs from 'node:fs/promises';

export type ImageFormat = 'qcow2' | 'raw' | 'vmdk' | 'vdi' | 'vhdx' | 'vpc';
export type ImportKind = { readonly kind: 'disk'; readonly format: ImageFormat } | { readonly kind: 'ova' } | { readonly kind: 'ovf' };

/** Formats a VM can use in place (Vivarium's argv attaches qcow2 and raw). */
export const ATTACHABLE: ReadonlySet<ImageFormat> = new Set(['qcow2', 'raw']);

const RAW_EXTENSIONS = ['.img', '.raw', '.bin'];

/** File name endings of the kinds `sniff` recognizes by content, with what a file so named lacks. */
const NAMED_KINDS: readonly (readonly [string, string, string])[] = [
  ['.ova', 'an OVA appliance', 'not a tar archive'],
  ['.ovf', 'an OVF descriptor', 'no OVF Envelope XML in it'],
  ['.qcow2', 'a qcow2 image', 'no qcow2 header'],
  ['.vmdk', 'a VMDK image', 'no VMDK header or descriptor'],
  ['.vdi', 'a VDI image', 'no VDI header'],
  ['.vhdx', 'a VHDX image', 'no VHDX signature'],
  ['.vhd', 'a VHD image', 'no VHD footer'],
];

/** Reads the header (and a fixed VHD's footer) of `file` (or of a slice of it: a tar member) and
 *  names its kind. Throws with a sentence for files that are not disk images (or cannot be read). */
export async function detectKind(file: string, slice?: { readonly offset: number; readonly size: number }): Promise<ImportKind> {
  const fh = await fs.open(file, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error(`${file} is not a regular file`);
    const base = slice?.offset ?? 0;
    const size = slice?.size ?? st.size;
    const head = Buffer.alloc(Math.min(4096, size));
    await fh.read(head, 0, head.length, base);
    const at = (off: number, s: string) => head.length >= off + s.length && head.subarray(off, off + s.length).toString('latin1') === s;
    if (at(0, 'QFI\xfb')) return { kind: 'disk', format: 'qcow2' };
    if (at(0, 'KDMV') || at(0, '# Disk DescriptorFile')) return { kind: 'disk', format: 'vmdk' };
    if (head.length >= 0x44 && head.readUInt32LE(0x40) === 0xbeda107f) return { kind: 'disk', format: 'vdi' };
    if (at(0, 'vhdxfile')) return { kind: 'disk', format: 'vhdx' };
    if (at(0, 'conectix')) return { kind: 'disk', format: 'vpc' };
    if (at(257, 'ustar')) return { kind: 'ova' };
    const text = head.toString('utf8').replace(/^\uFEFF/, '').trimStart();
    if (text.startsWith('<?xml') || text.startsWith('<')) {
      if (/<([A-Za-z_][\w.-]*:)?Envelope[\s>]/.test(text)) return { kind: 'ovf' };
    }
    // An ISO 9660 image: "CD001" in the primary volume descriptor at sector 16 (ECMA-119 §8.4).
    if (size >= 0x8006) {
      const pvd = Buffer.alloc(5);
      await fh.read(pvd, 0, 5, base + 0x8001);
      if (pvd.toString('latin1') === 'CD001') {
        throw new Error(`${file} is an ISO 9660 image (an installer or data CD), not a disk to import. Attach it as a CD instead`);
      }
    }
    if (size >= 512) {
      const foot = Buffer.alloc(512);
      await fh.read(foot, 0, 512, base + size - 512);
      if (foot.subarray(0, 8).toString('latin1') === 'conectix') return { kind: 'disk', format: 'vpc' };
    }
    const lower = file.toLowerCase();
    if (RAW_EXTENSIONS.some((e) => lower.endsWith(e))) return { kind: 'disk', format: 'raw' };
    // Named as one kind but without its signature: say which, not the list of all kinds.
    const named = NAMED_KINDS.find(([ext]) => lower.endsWith(ext));
    if (named) throw new Error(`${file} is not ${named[1]} (${named[2]})`);
    throw new Error(
      `${file} is not a disk image Vivarium can import (qcow2, raw .img/.raw, vmdk, vdi, vhdx, vhd, ova, ovf). A raw image must end in .img or .raw`,
    );
  } finally {
    await fh.close();
  }
}
