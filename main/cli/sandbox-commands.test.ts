/** `create --cloud-image`'s flags and `--share HOSTDIR[:TAG][:ro]` (issue 11): pure parsing. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultShareTag } from '../common/models/sandbox';
import { cloudFlags, parseShareFlag, shareNotes } from './sandbox-commands';

describe('share arguments', () => {
  it('parses HOSTDIR[:TAG][:ro], relative folders from the current directory', () => {
    expect(parseShareFlag('/src/app')).toEqual({ hostPath: '/src/app' });
    expect(parseShareFlag('/src/app:code')).toEqual({ hostPath: '/src/app', tag: 'code' });
    expect(parseShareFlag('/src/app:code:ro')).toEqual({ hostPath: '/src/app', tag: 'code', readOnly: true });
    expect(parseShareFlag('/src/app:ro')).toEqual({ hostPath: '/src/app', readOnly: true });
    expect(parseShareFlag('app', '/home/me')).toEqual({ hostPath: '/home/me/app' });
  });
  it('refuses a share without a folder', () => {
    expect(() => parseShareFlag(':ro')).toThrow(/needs a folder/);
  });
  it('makes unique default tags from folder names', () => {
    expect(defaultShareTag('/home/me/My Project/', [])).toBe('my-project');
    expect(defaultShareTag('/a/src', ['src'])).toBe('src-2');
    expect(defaultShareTag('/', [])).toBe('share');
  });
});

describe('create --cloud-image flags', () => {
  const parsed = (flags: Record<string, unknown>) => ({ positionals: ['box'], flags: flags as never });
  it('gathers the cloud-init settings', () => {
    expect(cloudFlags(parsed({ 'cloud-image': 'debian-12-genericcloud-amd64', user: 'dev', packages: 'git, curl,', share: ['/w:work:ro'], 'no-agent-install': true }))).toEqual({
      image: 'debian-12-genericcloud-amd64',
      user: 'dev',
      packages: ['git', 'curl'],
      shares: [{ hostPath: '/w', tag: 'work', readOnly: true }],
      installGuestAgent: false,
    });
    expect(cloudFlags(parsed({}))).toBeUndefined();
  });
  it('refuses sandbox flags without --cloud-image, a bad user name, and an ISO with it', () => {
    expect(() => cloudFlags(parsed({ user: 'dev' }))).toThrow('--user goes with --cloud-image.');
    expect(() => cloudFlags(parsed({ 'cloud-image': 'x.qcow2', user: 'Root User' }))).toThrow(/--user must be a Linux user name/);
    expect(() => cloudFlags(parsed({ 'cloud-image': 'x.qcow2', iso: '/a.iso' }))).toThrow(/leave out --iso/);
  });
});


describe('share add\'s notes', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-notes-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const share = (dir: string, readOnly = false) => ({ hostPath: dir, tag: 'work', readOnly, guestPath: '/mnt/work' });

  it('gives a guest without cloud-init the mount command to type', () => {
    expect(shareNotes(share('/src/work', true), false, 0).join('\n')).toBe(
      'This VM was not made from a cloud image, so nothing mounts the share for it. In the guest (Linux with 9p), mount it with:\n' +
        '  sudo mkdir -p /mnt/work && sudo mount -t 9p -o trans=virtio,version=9p2000.L,msize=131072,cache=mmap,ro work /mnt/work',
    );
  });

  it('says when the guest user cannot write to a read-write share (another uid owns the folder), and how to fix it', () => {
    const dir = path.join(tmp, 'a dir');
    fs.mkdirSync(dir);
    const owner = fs.statSync(dir).uid;
    // Vivarium as root: the guest user has uid 1000; a folder of root's is read-only to it.
    fs.chownSync(dir, 0, 0);
    const asRoot = shareNotes(share(dir), true, 0);
    expect(asRoot[0]).toBe('The guest mounts it at /mnt/work at its next start.');
    expect(asRoot[1]).toBe(
      `${dir} belongs to uid 0, but the guest user has uid 1000 (Vivarium runs as root, so the guest user keeps the default uid): ` +
        `to the guest user the folder is read-only (writes need sudo in the guest). To let the guest user write, give the folder to uid 1000 on the host: chown 1000 '${dir}'`,
    );
    // Owned by the uid the guest user has: nothing to say. A read-only share: nothing either.
    fs.chownSync(dir, 1000, 1000);
    expect(shareNotes(share(dir), true, 0)).toHaveLength(1);
    // A macOS user (501) whose folder it is: the guest user has 501 too.
    fs.chownSync(dir, 501, 20);
    expect(shareNotes(share(dir), true, 501)).toHaveLength(1);
    expect(shareNotes(share(dir), true, 1001)[1]).toMatch(/belongs to uid 501, but the guest user has uid 1001: /);
    expect(shareNotes(share(dir, true), true, 1001)).toHaveLength(1);
    fs.chownSync(dir, owner, owner);
  });
});
