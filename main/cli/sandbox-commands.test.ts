/** `create --cloud-image`'s flags and `--share HOSTDIR[:TAG][:ro]` (issue 11): pure parsing. */
import { describe, expect, it } from 'vitest';
import { defaultShareTag } from '../common/models/sandbox';
import { cloudFlags, parseShareFlag } from './sandbox-commands';

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

