/**
 * The qcow2 overlays Vivarium writes itself (qcow2-overlay.ts) against real qemu-img and qemu-io:
 * `qemu-img check` finds nothing wrong, `qemu-img info` says what it says of the overlay
 * `qemu-img create -f qcow2 -b BASE -F FMT` makes for the same size, everything past the first
 * cluster (refcount table and block, L1 table) is byte for byte qemu-img's, the guest reads the
 * base's data through it and its writes land in the overlay only.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyPlainQcow2, Qcow2OverlayRefused, writeQcow2Overlay } from './qcow2-overlay';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const PiB = 1024 * TiB;

let dir: string;
/** A folder name with a space and non-ASCII letters: the backing name is stored as UTF-8 bytes. */
let baseDir: string;
let n = 0;
const fresh = (ext = 'qcow2'): string => path.join(dir, `f${n++}.${ext}`);

function img(args: readonly string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

function io(format: string, file: string, cmds: readonly string[], readOnly = false): string {
  const out = execFileSync('qemu-io', ['-f', format, ...(readOnly ? ['-r'] : []), ...cmds.flatMap((c) => ['-c', c]), file], { encoding: 'utf8' });
  // qemu-io exits 0 even when a read does not match its pattern; it says so on stdout.
  expect(out).not.toMatch(/Pattern verification failed|error|failed/i);
  return out;
}

interface Info {
  'virtual-size': number;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
  'full-backing-filename'?: string;
  'cluster-size': number;
  format: string;
  'format-specific': unknown;
  'dirty-flag': boolean;
}

function info(file: string): Info {
  return JSON.parse(img(['info', '-U', '--output=json', file])) as Info;
}

/** What a user would compare between two overlays. */
function comparable(i: Info): Partial<Info> {
  return {
    'virtual-size': i['virtual-size'],
    'backing-filename': i['backing-filename'],
    'backing-filename-format': i['backing-filename-format'],
    'full-backing-filename': i['full-backing-filename'],
    'cluster-size': i['cluster-size'],
    format: i.format,
    'format-specific': i['format-specific'],
    'dirty-flag': i['dirty-flag'],
  };
}

/** `qemu-img check` exits non-zero on any error or leak; its text says "No errors were found". */
function checkClean(file: string): void {
  expect(img(['check', '-f', 'qcow2', file])).toContain('No errors were found on the image.');
}

/** Writes ours and qemu-img's overlay of `size` on `base`, checks both and compares them. */
async function compareWithQemuImg(size: number, base: string, format: string): Promise<void> {
  const ours = fresh();
  const theirs = fresh();
  await writeQcow2Overlay(ours, { virtualSize: size, backingFile: base, backingFormat: format });
  // -u: qemu-img does not open the base for a size given explicitly (as createOverlay did).
  img(['create', '-q', '-u', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', base, '-F', format, theirs, String(size)]);
  checkClean(ours);
  expect(comparable(info(ours))).toEqual(comparable(info(theirs)));
  const a = fs.readFileSync(ours);
  const b = fs.readFileSync(theirs);
  expect(a.length).toBe(b.length);
  // The header cluster differs only by qemu-img's optional feature name table (and so where the
  // backing name sits); the rest is the same bytes.
  expect(a.subarray(65536).equals(b.subarray(65536))).toBe(true);
  expect(a.readBigUInt64BE(24)).toBe(b.readBigUInt64BE(24)); // the size in the header
  expect(fs.statSync(ours).mode & 0o777).toBe(0o600);
  fs.rmSync(ours);
  fs.rmSync(theirs);
}

let rawBase: string;
let qcowBase: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-qcow2-'));
  baseDir = path.join(dir, 'bäse dir ü 💾');
  fs.mkdirSync(baseDir);
  rawBase = path.join(baseDir, 'disk 0.raw');
  qcowBase = path.join(baseDir, 'disk 0 é.qcow2');
  img(['create', '-q', '-f', 'raw', rawBase, String(4 * MiB)]);
  img(['create', '-q', '-f', 'qcow2', qcowBase, String(4 * MiB)]);
  for (const [f, fmt] of [[rawBase, 'raw'], [qcowBase, 'qcow2']] as const) {
    io(fmt, f, ['write -P 0xab 0 64k', 'write -P 0xcd 1M 4k', 'write -P 0xef 4193792 512']);
  }
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('writeQcow2Overlay against qemu-img create', () => {
  const sizes: readonly [string, number][] = [
    ['0 bytes', 0],
    ['1 byte (rounded up to 512)', 1],
    ['511', 511],
    ['512', 512],
    ['64 KiB - 1', 64 * KiB - 1],
    ['64 KiB', 64 * KiB],
    ['64 KiB + 1', 64 * KiB + 1],
    ['512 MiB (one L1 entry)', 512 * MiB],
    ['512 MiB + 512', 512 * MiB + 512],
    ['1 GiB', GiB],
    ['100 GiB', 100 * GiB],
    ['1 TiB', TiB],
    ['4 TiB (a full L1 cluster)', 4 * TiB],
    ['4 TiB + 1 (a second L1 cluster)', 4 * TiB + 1],
    ['an odd 3 000 000 007', 3_000_000_007],
    ['2 PiB (QEMU’s largest L1, 32 MiB)', 2 * PiB],
  ];
  it.each(sizes)('%s: check clean, same info and the same tables as qemu-img', async (_label, size) => {
    await compareWithQemuImg(size, qcowBase, 'qcow2');
  });

  it('a raw base, named with a space and non-ASCII letters', async () => {
    await compareWithQemuImg(4 * MiB, rawBase, 'raw');
  });

  it('random sizes up to 2 PiB (property)', async () => {
    const fc = await import('fast-check');
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.integer({ min: 0, max: 16 * MiB }), fc.integer({ min: 0, max: 2 * PiB })), async (size) => {
        await compareWithQemuImg(size, qcowBase, 'qcow2');
      }),
      { numRuns: 25 },
    );
  });
});

describe('an overlay written by Vivarium in use', () => {
  it.each([
    ['raw', () => rawBase],
    ['qcow2', () => qcowBase],
  ] as const)('reads its %s base through and keeps its own writes', (format, base) => {
    return (async () => {
      const ov = fresh();
      await writeQcow2Overlay(ov, { virtualSize: 4 * MiB, backingFile: base(), backingFormat: format });
      const before = fs.readFileSync(base());
      // The base's data, read through the overlay (which QEMU opens by the name and format in it).
      io('qcow2', ov, ['read -P 0xab 0 64k', 'read -P 0xcd 1M 4k', 'read -P 0 2M 4k', 'read -P 0xef 4193792 512'], true);
      // A write into the overlay reads back; the rest still comes from the base.
      io('qcow2', ov, ['write -P 0x5a 0 4k', 'write -P 0x77 3M 64k']);
      io('qcow2', ov, ['read -P 0x5a 0 4k', 'read -P 0xab 4k 60k', 'read -P 0x77 3M 64k', 'read -P 0xcd 1M 4k'], true);
      checkClean(ov);
      // The base did not change.
      expect(fs.readFileSync(base()).equals(before)).toBe(true);
      io(format, base(), ['read -P 0xab 0 64k', 'read -P 0 3M 64k'], true);
    })();
  });
});

describe('writeQcow2Overlay refuses and cleans up', () => {
  it('an existing file is left alone (created exclusively)', async () => {
    const f = fresh();
    fs.writeFileSync(f, 'mine');
    await expect(writeQcow2Overlay(f, { virtualSize: GiB, backingFile: qcowBase, backingFormat: 'qcow2' })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(fs.readFileSync(f, 'utf8')).toBe('mine');
  });

  it('a symbolic link in its place is not followed', async () => {
    const target = fresh('txt');
    fs.writeFileSync(target, 'target');
    const link = fresh();
    fs.symlinkSync(target, link);
    await expect(writeQcow2Overlay(link, { virtualSize: GiB, backingFile: qcowBase, backingFormat: 'qcow2' })).rejects.toThrow();
    expect(fs.readFileSync(target, 'utf8')).toBe('target');
  });

  it.each([
    ['a size past QEMU’s L1 limit', { virtualSize: 2 * PiB + 512, backingFile: '/b.qcow2', backingFormat: 'qcow2' }, /32 MiB limit/],
    ['a negative size', { virtualSize: -1, backingFile: '/b.qcow2', backingFormat: 'qcow2' }, /whole number/],
    ['a relative backing path', { virtualSize: GiB, backingFile: 'b.qcow2', backingFormat: 'qcow2' }, /not an absolute path/],
    ['a backing name over 1023 bytes', { virtualSize: GiB, backingFile: `/${'é'.repeat(512)}`, backingFormat: 'qcow2' }, /1023 bytes/],
    ['a format that is no format name', { virtualSize: GiB, backingFile: '/b.qcow2', backingFormat: 'qcow2\0' }, /not a QEMU image format/],
  ])('%s: refused before anything is written', async (_label, spec, message) => {
    const f = fresh();
    const err = await writeQcow2Overlay(f, spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Qcow2OverlayRefused);
    expect((err as Error).message).toMatch(message);
    expect(fs.existsSync(f)).toBe(false);
  });

  it('qemu-img refuses what the writer refuses for size (so the fallback says why)', () => {
    expect(() => img(['create', '-q', '-u', '-f', 'qcow2', '-b', qcowBase, '-F', 'qcow2', fresh(), String(2 * PiB + 512)])).toThrow(/too large/);
  });

  it('a folder that does not exist: nothing is left behind', async () => {
    const f = path.join(dir, 'missing', 'x.qcow2');
    await expect(writeQcow2Overlay(f, { virtualSize: GiB, backingFile: qcowBase, backingFormat: 'qcow2' })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(fs.existsSync(path.dirname(f))).toBe(false);
  });
});

describe('copyPlainQcow2 (a UEFI variable store copied without qemu-img convert)', () => {
  it('copies a standalone qcow2 byte for byte, owner-only, and the copy is sound', async () => {
    const src = fresh();
    img(['convert', '-O', 'qcow2', rawBase, src]);
    const dest = fresh();
    expect(await copyPlainQcow2(src, dest)).toBe(true);
    expect(fs.readFileSync(dest).equals(fs.readFileSync(src))).toBe(true);
    expect(fs.statSync(dest).mode & 0o777).toBe(0o600);
    checkClean(dest);
    io('qcow2', dest, ['read -P 0xab 0 64k', 'read -P 0xcd 1M 4k'], true);
  });

  it('declines an image with internal snapshots (a clone gets none of them) and one with a backing file', async () => {
    const snap = fresh();
    img(['convert', '-O', 'qcow2', rawBase, snap]);
    img(['snapshot', '-c', 'first', snap]);
    const over = fresh();
    await writeQcow2Overlay(over, { virtualSize: 4 * MiB, backingFile: rawBase, backingFormat: 'raw' });
    for (const src of [snap, over]) {
      const dest = fresh();
      expect(await copyPlainQcow2(src, dest)).toBe(false);
      expect(fs.existsSync(dest)).toBe(false);
    }
  });

  it('declines a raw file and never reads through a symbolic link', async () => {
    expect(await copyPlainQcow2(rawBase, fresh())).toBe(false);
    const link = fresh();
    fs.symlinkSync(qcowBase, link);
    await expect(copyPlainQcow2(link, fresh())).rejects.toThrow(/is a symbolic link; Vivarium does not follow links/);
  });
});
