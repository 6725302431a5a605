/**
 * The members of a tar archive (an OVA) and where each one's data starts, read from the headers only,
 * so a disk inside the archive can be converted in place (as a raw `offset`/`size` slice under
 * QEMU's vmdk driver) without unpacking it first.
 *
 * Format: POSIX.1-1988 ustar with the pax extended headers of POSIX.1-2001 (typeflag `x` for the
 * next member, `g` global) and GNU long names (typeflag `L`): 512-byte headers, each member's data
 * padded to 512 bytes, the end marked by zero blocks. Sizes are octal or (GNU) base-256.
 */
import * as fs from 'node:fs/promises';

export interface TarMember {
  readonly name: string;
  /** Byte offset of the member's data in the archive. */
  readonly offset: number;
  readonly size: number;
  /** '0' (or NUL) regular file, '5' directory, … */
  readonly type: string;
}

const BLOCK = 512;

function cstr(buf: Buffer, start: number, len: number): string {
  const slice = buf.subarray(start, start + len);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul === -1 ? slice.length : nul).toString('utf8');
}

function numberField(buf: Buffer, start: number, len: number): number {
  const f = buf.subarray(start, start + len);
  if (f[0]! & 0x80) {
    // GNU base-256: big-endian with the top bit set.
    let n = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) n = n * 256 + f[i]!;
    return n;
  }
  const text = cstr(buf, start, len).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`not a tar archive (bad number "${text}")`);
  return parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = numberField(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === stored;
}

/** pax records: "<len> <key>=<value>\n"… */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = Number(data.subarray(pos, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0) break;
    const rec = data.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** Lists the members of the tar archive `file` (at most `maxMembers`). Throws on a damaged header. */
export async function listTar(file: string, maxMembers = 10_000): Promise<TarMember[]> {
  const fh = await fs.open(file, 'r');
  try {
    const { size: total } = await fh.stat();
    const out: TarMember[] = [];
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let longName: string | null = null;
    let pax: Record<string, string> = {};
    while (pos + BLOCK <= total && out.length < maxMembers) {
      await fh.read(header, 0, BLOCK, pos);
      if (header.every((b) => b === 0)) break;
      if (!checksumOk(header)) throw new Error(`not a tar archive (bad header checksum at byte ${pos})`);
      const type = String.fromCharCode(header[156]!) || '0';
      let size = numberField(header, 124, 12);
      const dataStart = pos + BLOCK;
      if (type === 'x' || type === 'L' || type === 'g') {
        if (size > 1024 * 1024) throw new Error('not a usable tar archive (an extended header over 1 MiB)');
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataStart);
        if (type === 'L') longName = cstr(data, 0, data.length);
        else if (type === 'x') pax = parsePax(data);
        pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
        continue;
      }
      const prefix = header.subarray(257, 262).toString('latin1') === 'ustar' ? cstr(header, 345, 155) : '';
      let name = longName ?? (prefix ? `${prefix}/${cstr(header, 0, 100)}` : cstr(header, 0, 100));
      if (pax.path) name = pax.path;
      if (pax.size && /^\d+$/.test(pax.size)) size = Number(pax.size);
      if (dataStart + size > total) throw new Error(`the archive is truncated (${name} runs past its end)`);
      out.push({ name, offset: dataStart, size, type: type === '\0' ? '0' : type });
      longName = null;
      pax = {};
      pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    }
    return out;
  } finally {
    await fh.close();
  }
}
