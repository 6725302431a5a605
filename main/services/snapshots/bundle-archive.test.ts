/**
 * Export and import failures a person can act on (issue 10, tester findings 5 and 10): a full disk,
 * a folder that takes no files, a missing file, a folder, a file that is not a tar archive, an
 * archive holding a link, a damaged image — each a sentence that names no internal folder, errno or
 * raw bytes. Real engine, real qemu-img and filesystems (a small tmpfs when running as root, as CI
 * does); no guest is booted.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { createEngine, type Engine } from '../engine';
import { listTar } from '../imports/tar';
import { exportVm, MANIFEST } from './bundle-archive';

let t: TestHome;
let engine: Engine;
const mounts: string[] = [];

beforeEach(() => {
  t = makeTestHome();
  engine = createEngine({ env: t.env, log: () => undefined });
});

afterEach(async () => {
  for (const m of mounts.splice(0)) execFileSync('umount', [m]);
  await engine.dispose();
  await t.cleanup();
});

const MiB = 1024 * 1024;
const root = typeof process.getuid === 'function' && process.getuid() === 0;

/** A stopped VM whose export is about 4 MiB (4 MiB of data written into its disk). */
async function vm(name: string): Promise<string> {
  const v = await engine.manager.create({ name, accel: 'tcg', cpus: 1, memoryMiB: 128, diskSizeBytes: 32 * MiB, net: 'none', display: 'none' });
  const d = v.config!.disks[0]!;
  if (!('bundle' in d.source)) throw new Error('no bundle disk');
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 4M', engine.layout.bundle(v.id).file(d.source.bundle)]);
  return v.id;
}

function tmpfs(options: string): string {
  const mnt = fs.mkdtempSync(path.join(t.home, 'small-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `${options},mode=0700`, 'tmpfs', mnt]);
  mounts.push(mnt);
  return mnt;
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const e = (await p.then(
    () => null,
    (x: unknown) => x,
  )) as { code: string; message: string } | null;
  if (!e) throw new Error('it succeeded');
  // Never an internal error, an errno, an internal folder or raw bytes.
  expect(e.code).not.toBe('internal');
  expect(e.message).not.toMatch(/internal error|ENOSPC|ENOENT|EISDIR|\.creating-|bad number|[^\x20-\x7e…→]/i);
  return e;
}

describe('export failures', () => {
  it.skipIf(!root)('a disk too small for the export: said with what it needs and what is free, before anything is written', async () => {
    await vm('g');
    const mnt = tmpfs('size=1m');
    const e = await failure(engine.services.snapshots.exportVm('g', path.join(mnt, 'g.vivarium')));
    expect(e.code).toBe('disk-full');
    expect(e.message).toMatch(new RegExp(`^There is not enough space in ${mnt} for the export of "g": it needs about 4(\\.\\d)? MiB and (1 MiB|\\d+(\\.\\d)? KiB) are free\\. Nothing was written; free some space there or choose another place for the export\\.$`));
    expect(fs.readdirSync(mnt)).toEqual([]);
  }, 60_000);

  it.skipIf(!root)('a filesystem out of file entries (ENOSPC at open) says so', async () => {
    await vm('g');
    const mnt = tmpfs('size=64m,nr_inodes=1');
    const e = await failure(engine.services.snapshots.exportVm('g', path.join(mnt, 'g.vivarium')));
    expect(e.code).toBe('disk-full');
    expect(e.message).toBe(`The filesystem holding ${mnt} can take no more files (it has no free file entries left, though 64 MiB are free). Nothing was written; remove some files there or choose another place for the export.`);
    expect(fs.readdirSync(mnt)).toEqual([]);
  }, 60_000);

  it.skipIf(!root)('the disk filling up while the export is written: the same sentence, and no .part file is left', async () => {
    const id = await vm('g');
    const mnt = tmpfs('size=6m');
    const entry = engine.manager.library.resolveOk(id);
    const bundle = engine.layout.bundle(id);
    let filled = false;
    // Another program takes the room once the export has started (after the up-front check).
    const fill = (): void => {
      if (filled) return;
      filled = true;
      try {
        fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(6 * MiB, 1));
      } catch {
        // ENOSPC once the tmpfs is full: what is written stays
      }
    };
    const e = await failure(exportVm(entry, (n) => bundle.file(n), path.join(mnt, 'g.vivarium'), fill));
    expect(filled).toBe(true);
    expect(e.code).toBe('disk-full');
    expect(e.message).toMatch(new RegExp(`^There is not enough space in ${mnt} for the export of "g": it needs about 4(\\.\\d)? MiB and [\\d.]+ \\w+ are free\\. Nothing was written`));
    expect(fs.readdirSync(mnt)).toEqual(['filler']);
  }, 60_000);

  it('a folder the system manages (/proc) is a sentence', async () => {
    await vm('g');
    const e = await failure(engine.services.snapshots.exportVm('g', '/proc/g.vivarium'));
    expect(e.message).toBe('No file can be created in /proc (it is a folder the system manages, not one for your files). Choose another place for the export, such as your home folder.');
    expect(e.code).toBe('invalid-argument');
    // A folder given as the export file is a wrong argument too (as a missing folder is), not a clash.
    const dir = await failure(engine.services.snapshots.exportVm('g', t.home));
    expect(dir).toMatchObject({ code: 'invalid-argument', message: `${t.home} is a folder. Give a file name in it, such as ${path.join(t.home, 'g.vivarium')}.` });
  }, 60_000);
});

describe('import failures', () => {
  it('a missing file, a folder, a file that is not an archive, an empty file: plain sentences', async () => {
    const missing = path.join(t.home, 'nope.vivarium');
    expect((await failure(engine.services.snapshots.importVm(missing, {}))).message).toBe(`There is no file ${missing}. Check its name and folder.`);
    expect((await failure(engine.services.snapshots.importVm(t.home, {}))).message).toMatch(new RegExp(`^${t.home} is a folder, not an export file\\.`));
    const text = path.join(t.home, 'notes.vivarium');
    fs.writeFileSync(text, Buffer.concat([Buffer.from('w\xff\xfe\x01 not an archive at all\n', 'latin1'), Buffer.alloc(2000, 0x77)]));
    expect((await failure(engine.services.snapshots.importVm(text, {}))).message).toBe(
      `${text} cannot be imported: it is not a Vivarium export file (not a tar archive). Nothing was imported; export the VM again or use another copy of the file.`,
    );
    const empty = path.join(t.home, 'empty.vivarium');
    fs.writeFileSync(empty, '');
    expect((await failure(engine.services.snapshots.importVm(empty, {}))).message).toMatch(/cannot be imported: it is empty\./);
    expect((await engine.manager.list()).length).toBe(0);
  });

  it('an archive holding a link is refused by name, before anything is written', async () => {
    const src = path.join(t.home, 'src');
    fs.mkdirSync(src);
    fs.symlinkSync('/etc/passwd', path.join(src, 'disk0.qcow2'));
    fs.writeFileSync(path.join(src, MANIFEST), '{}');
    const archive = path.join(t.home, 'link.vivarium');
    execFileSync('tar', ['-cf', archive, '-C', src, 'disk0.qcow2', MANIFEST]);
    const e = await failure(engine.services.snapshots.importVm(archive, {}));
    expect(e.message).toBe(`${archive} cannot be imported: it holds "disk0.qcow2", which is a link; a Vivarium export holds only plain files. Nothing was imported; export the VM again or use another copy of the file.`);
    expect(fs.existsSync(engine.layout.bundlesDir) ? fs.readdirSync(engine.layout.bundlesDir) : []).toEqual([]);
  });

  it('an export whose disk image is not a qcow2 (checksums made to match) names the file, not the staging folder', async () => {
    await vm('g');
    const file = path.join(t.home, 'g.vivarium');
    await engine.services.snapshots.exportVm('g', file);
    // Replace the disk's bytes and fix its checksum in the manifest (the same length: in place).
    const buf = fs.readFileSync(file);
    const members = await listTar(file);
    const disk = members.find((m) => /^disk0.*\.qcow2$/.test(m.name))!;
    const man = members.find((m) => m.name === MANIFEST)!;
    const oldSum = createHash('sha256').update(buf.subarray(disk.offset, disk.offset + disk.size)).digest('hex');
    buf.fill(0x78, disk.offset, disk.offset + disk.size);
    const newSum = createHash('sha256').update(buf.subarray(disk.offset, disk.offset + disk.size)).digest('hex');
    const manText = buf.subarray(man.offset, man.offset + man.size).toString('utf8');
    expect(manText).toContain(oldSum);
    buf.write(manText.replace(oldSum, newSum), man.offset, 'utf8');
    fs.writeFileSync(file, buf);
    await engine.services.vms.delete('g', {});
    const e = await failure(engine.services.snapshots.importVm(file, {}));
    expect(e.message).toMatch(new RegExp(`^${file} cannot be imported: ${disk.name} is not a qcow2 image \\(`));
    expect(e.message).not.toContain(engine.layout.bundlesDir);
    expect((await engine.manager.list()).length).toBe(0);
  }, 60_000);
});
