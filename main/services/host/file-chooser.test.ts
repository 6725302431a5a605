/**
 * The browser file chooser (`host.browse`) against a real home folder made for the test: what it
 * lists, and that nothing outside home can be listed — by an absolute path, a `..` path, or a
 * symbolic link.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostSchema, MAX_BROWSE_ENTRIES } from '../../common/contract/host';
import { VivariumError } from '../../common/errors';
import { browseFolder, matchesFilter } from './file-chooser';

let base: string;
let home: string;
let outside: string;

beforeEach(() => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-chooser-')));
  home = path.join(base, 'home');
  outside = path.join(base, 'outside');
  fs.mkdirSync(path.join(home, 'Downloads', 'nested'), { recursive: true });
  fs.mkdirSync(path.join(home, '.cache'));
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(home, 'Downloads', 'debian.ISO'), Buffer.alloc(4096));
  fs.writeFileSync(path.join(home, 'Downloads', 'disk.qcow2'), Buffer.alloc(100));
  fs.writeFileSync(path.join(home, 'Downloads', 'app.ova'), Buffer.alloc(10));
  fs.writeFileSync(path.join(home, 'Downloads', 'notes.txt'), 'hello');
  fs.writeFileSync(path.join(home, 'Downloads', '.secret.iso'), Buffer.alloc(1));
  fs.writeFileSync(path.join(outside, 'private.iso'), Buffer.alloc(1));
  // Links: one to a folder outside home, one to a file outside home, one inside home.
  fs.symlinkSync(outside, path.join(home, 'Downloads', 'escape'));
  fs.symlinkSync(path.join(outside, 'private.iso'), path.join(home, 'Downloads', 'linked.iso'));
  fs.symlinkSync(path.join(home, 'Downloads', 'nested'), path.join(home, 'Downloads', 'to-nested'));
  fs.symlinkSync(path.join(base, 'nowhere'), path.join(home, 'Downloads', 'dangling.iso'));
});

afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

const names = (l: { entries: readonly { name: string }[] }): string[] => l.entries.map((e) => e.name);

async function refusal(p: Promise<unknown>): Promise<VivariumError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(VivariumError);
  return e as VivariumError;
}

describe('host.browse', () => {
  it('lists home by default: its folders, no hidden ones, no parent above home', async () => {
    const l = await browseFolder({}, { home });
    expect(l.path).toBe(home);
    expect(l.root).toBe(home);
    expect(l.parent).toBeNull();
    expect(names(l)).toEqual(['Downloads']);
    expect(l.entries[0]).toEqual({ name: 'Downloads', path: path.join(home, 'Downloads'), kind: 'dir', sizeBytes: null });
  });

  it('lists folders first, then only ISO and disk-image files, with their sizes', async () => {
    const l = await browseFolder({ path: path.join(home, 'Downloads') }, { home });
    expect(l.parent).toBe(home);
    expect(names(l)).toEqual(['nested', 'to-nested', 'app.ova', 'debian.ISO', 'disk.qcow2']);
    expect(l.entries.find((e) => e.name === 'debian.ISO')).toMatchObject({ kind: 'file', sizeBytes: 4096, path: path.join(home, 'Downloads', 'debian.ISO') });
    expect(l.truncated).toBe(false);
  });

  it('filters by kind and shows hidden names only when asked', async () => {
    const dl = path.join(home, 'Downloads');
    expect(names(await browseFolder({ path: dl, filter: 'iso' }, { home }))).toEqual(['nested', 'to-nested', 'debian.ISO']);
    expect(names(await browseFolder({ path: dl, filter: 'disk' }, { home }))).toEqual(['nested', 'to-nested', 'app.ova', 'disk.qcow2']);
    expect(names(await browseFolder({ path: dl, showHidden: true }, { home }))).toContain('.secret.iso');
    expect(names(await browseFolder({ showHidden: true }, { home }))).toEqual(['.cache', 'Downloads']);
  });

  it('lists every file for "any" and only folders for "folder", links that leave home still left out', async () => {
    const dl = path.join(home, 'Downloads');
    expect(names(await browseFolder({ path: dl, filter: 'any' }, { home }))).toEqual(['nested', 'to-nested', 'app.ova', 'debian.ISO', 'disk.qcow2', 'notes.txt']);
    expect(names(await browseFolder({ path: dl, filter: 'folder' }, { home }))).toEqual(['nested', 'to-nested']);
    expect(names(await browseFolder({ path: dl, filter: 'folder', showHidden: true }, { home }))).toEqual(['nested', 'to-nested']);
    // Both come through the contract's schema, as a browser sends them.
    expect(hostSchema.methods.browse.safeParse([{ path: dl, filter: 'folder' }]).success).toBe(true);
    expect(hostSchema.methods.browse.safeParse([{ path: dl, filter: 'dirs' }]).success).toBe(false);
  });

  it('never lists a link that leads outside home, nor a dangling one', async () => {
    const l = await browseFolder({ path: path.join(home, 'Downloads'), showHidden: true }, { home });
    expect(names(l)).not.toContain('escape');
    expect(names(l)).not.toContain('linked.iso');
    expect(names(l)).not.toContain('dangling.iso');
  });

  it('refuses a folder outside home, and a link inside home that leads there, with a sentence', async () => {
    const direct = await refusal(browseFolder({ path: outside }, { home }));
    expect(direct.code).toBe('invalid-argument');
    expect(direct.field).toBe('path');
    expect(direct.message).toBe(`The file chooser shows only your home folder (${home}); ${outside} is outside it. Type the path of a file elsewhere instead.`);
    const viaLink = await refusal(browseFolder({ path: path.join(home, 'Downloads', 'escape') }, { home }));
    expect(viaLink.message).toContain(`is outside it (it leads to ${outside})`);
    const root = await refusal(browseFolder({ path: '/' }, { home }));
    expect(root.code).toBe('invalid-argument');
  });

  it('refuses a ".." path: the contract rejects it, and the service alone still stays inside home', async () => {
    const dotdot = path.join(home, 'Downloads') + '/../..';
    const parsed = hostSchema.methods.browse.safeParse([{ path: dotdot }]);
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('must not contain \\"..\\" segments');
    // Called directly (no schema in between), the path is folded and then confined.
    const e = await refusal(browseFolder({ path: dotdot }, { home }));
    expect(e.message).toContain(`${base} is outside it`);
    // A ".." that stays inside home is fine for the service.
    const l = await browseFolder({ path: `${home}/Downloads/nested/..` }, { home });
    expect(l.path).toBe(path.join(home, 'Downloads'));
  });

  it('follows a link inside home to where it leads', async () => {
    const l = await browseFolder({ path: path.join(home, 'Downloads', 'to-nested') }, { home });
    expect(l.path).toBe(path.join(home, 'Downloads', 'nested'));
    expect(l.parent).toBe(path.join(home, 'Downloads'));
  });

  it('says what is wrong with a missing folder or a file', async () => {
    const missing = await refusal(browseFolder({ path: path.join(home, 'nope') }, { home }));
    expect(missing.code).toBe('not-found');
    expect(missing.message).toContain(`${path.join(home, 'nope')} does not exist`);
    const file = await refusal(browseFolder({ path: path.join(home, 'Downloads', 'disk.qcow2') }, { home }));
    expect(file.message).toContain('is a file, not a folder');
  });

  it('returns at most MAX_BROWSE_ENTRIES entries and says the listing was cut', async () => {
    const many = path.join(home, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i < MAX_BROWSE_ENTRIES + 5; i++) fs.writeFileSync(path.join(many, `img-${i}.iso`), '');
    const l = await browseFolder({ path: many }, { home });
    expect(l.entries).toHaveLength(MAX_BROWSE_ENTRIES);
    expect(l.truncated).toBe(true);
    // Numeric order: img-2 before img-10.
    expect(names(l).slice(0, 3)).toEqual(['img-0.iso', 'img-1.iso', 'img-2.iso']);
  });

  it('matches image extensions case-insensitively', () => {
    expect(matchesFilter('X.VMDK', 'disk')).toBe(true);
    expect(matchesFilter('cloud.img', 'images')).toBe(true);
    expect(matchesFilter('cloud.img', 'iso')).toBe(false);
    expect(matchesFilter('readme.iso.txt', 'images')).toBe(false);
    expect(matchesFilter('id_ed25519.pub', 'ssh-key')).toBe(true);
    expect(matchesFilter('id_ed25519', 'ssh-key')).toBe(false);
  });
});
