import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IsoWriteError, buildIso9660, level1Name } from './iso9660';

// Independent readers: isoinfo (Debian genisoimage) and 7-Zip (p7zip-full), both in .ci/run.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-iso-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tool(name: string, pkg: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/local/bin']) {
    if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  throw new Error(`${name} is missing: apt-get install ${pkg}`);
}
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const DATE = new Date(Date.UTC(2024, 4, 17, 12, 34, 56));
const bigUserData = Buffer.from(`#cloud-config\n${'# padding line to cross a sector boundary\n'.repeat(120)}`);
const files = [
  { name: 'meta-data', data: Buffer.from('instance-id: vm-1\nlocal-hostname: box\n') },
  { name: 'user-data', data: bigUserData },
  { name: 'network-config', data: Buffer.from('version: 2\n') },
  { name: 'vendor-data', data: Buffer.alloc(0) },
];

function writeImage(name: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, buildIso9660({ volumeId: 'cidata', files, date: DATE }));
  return file;
}

describe('buildIso9660', () => {
  it('writes a volume labelled cidata with a Joliet tree, as isoinfo reads it', () => {
    const iso = writeImage('a.iso');
    expect(fs.statSync(iso).size % 2048).toBe(0);
    const isoinfo = tool('isoinfo', 'genisoimage');
    const info = run(isoinfo, ['-i', iso, '-d']);
    expect(info).toMatch(/^Volume id: cidata$/m);
    expect(info).toMatch(/Joliet with UCS level 3 found/);
    expect(info).toMatch(/^Logical block size is: 2048$/m);
    expect(info).toMatch(new RegExp(`^Volume size is: ${fs.statSync(iso).size / 2048}$`, 'm'));

    const joliet = run(isoinfo, ['-i', iso, '-J', '-l']);
    for (const f of files) expect(joliet).toMatch(new RegExp(`\\s${f.data.length}\\s.*\\]\\s+${f.name}\\s*$`, 'm'));
    expect(joliet).toMatch(/May 17 2024/);

    // The primary (8.3) tree, for readers without Joliet.
    const primary = run(isoinfo, ['-i', iso, '-l']);
    expect(primary).toMatch(/USER_DAT\.;1/);
    expect(primary).toMatch(/META_DAT\.;1/);
    expect(primary).toMatch(/NETWORK_\.;1/);
  });

  it('stores each file byte for byte (isoinfo -x through both trees)', () => {
    const iso = writeImage('b.iso');
    const isoinfo = tool('isoinfo', 'genisoimage');
    for (const f of files) {
      const viaJoliet = execFileSync(isoinfo, ['-i', iso, '-J', '-x', `/${f.name}`]);
      expect(Buffer.compare(viaJoliet, f.data)).toBe(0);
      const viaPrimary = execFileSync(isoinfo, ['-i', iso, '-x', `/${level1Name(f.name)}`]);
      expect(Buffer.compare(viaPrimary, f.data)).toBe(0);
    }
  });

  it('extracts with 7-Zip under the long names', () => {
    const iso = writeImage('c.iso');
    const out = path.join(tmp, 'c-out');
    run(tool('7z', 'p7zip-full'), ['x', '-y', `-o${out}`, iso]);
    expect(fs.readdirSync(out).sort()).toEqual(files.map((f) => f.name).sort());
    for (const f of files) expect(Buffer.compare(fs.readFileSync(path.join(out, f.name)), f.data)).toBe(0);
  });

  it('is reproducible for the same input and date', () => {
    const a = buildIso9660({ volumeId: 'cidata', files, date: DATE });
    const b = buildIso9660({ volumeId: 'cidata', files: [...files].reverse(), date: DATE });
    expect(Buffer.compare(a, b)).toBe(0);
  });

  it('refuses names and labels it cannot write, saying why', () => {
    const one = (name: string): Buffer => buildIso9660({ volumeId: 'cidata', files: [{ name, data: Buffer.from('x') }] });
    expect(() => one('a/b')).toThrow(IsoWriteError);
    expect(() => one('x;1')).toThrow(/cannot be a file name/);
    expect(() => one('')).toThrow(/cannot be a file name/);
    expect(() => one('n'.repeat(65))).toThrow(/1–64 characters/);
    expect(() => buildIso9660({ volumeId: 'has space', files: [] })).toThrow(/Volume id/);
    expect(() => buildIso9660({ volumeId: 'cidata', files: [{ name: 'a', data: Buffer.alloc(1) }, { name: 'a', data: Buffer.alloc(1) }] })).toThrow(/given twice/);
    expect(() =>
      buildIso9660({ volumeId: 'cidata', files: [{ name: 'user-data', data: Buffer.alloc(1) }, { name: 'user_data', data: Buffer.alloc(1) }] }),
    ).toThrow(/both shorten to USER_DAT\.;1/);
  });

  it('shortens names to level-1 8.3 identifiers', () => {
    expect(level1Name('user-data')).toBe('USER_DAT.;1');
    expect(level1Name('seed.config')).toBe('SEED.CON;1');
    expect(level1Name('.hidden')).toBe('_HIDDEN.;1');
  });
});
