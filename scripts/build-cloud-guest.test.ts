import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RECIPE, buildCloudGuest, debootstrapArgs, mountsUnder, recipeKey } from './build-cloud-guest.mjs';

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('the cloud guest recipe', () => {
  it('names what debootstrap cannot work out for cloud-init, and a kernel with 9p', () => {
    const args = debootstrapArgs(RECIPE, '/x/root', 'http://deb.debian.org/debian');
    expect(args.slice(-3)).toEqual(['bookworm', '/x/root', 'http://deb.debian.org/debian']);
    const include = args.find((a: string) => a.startsWith('--include='))!.slice('--include='.length).split(',');
    for (const p of ['cloud-init', 'python3-cffi-backend', 'locales', 'openssh-server', 'qemu-guest-agent', 'linux-image-amd64']) {
      expect(include).toContain(p);
    }
    // The cloud kernel lacks 9p (qemu-notes §6): shared folders would not mount.
    expect(include).not.toContain('linux-image-cloud-amd64');
  });

  it('keys the cache on the recipe: same recipe, same key; any change, a new key', () => {
    expect(recipeKey()).toBe(recipeKey(RECIPE));
    expect(recipeKey({ ...RECIPE, packages: [...RECIPE.packages, 'vim'] })).not.toBe(recipeKey());
    expect(recipeKey({ ...RECIPE, revision: RECIPE.revision + 1 })).not.toBe(recipeKey());
  });
});

describe('mountsUnder', () => {
  const mountinfo = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '90 22 0:5 / /srv/c/.build-1/root/proc rw - proc proc rw',
    '91 90 0:6 / /srv/c/.build-1/root/proc/sys/fs/binfmt_misc rw - binfmt_misc none rw',
    '92 22 0:7 / /srv/c/.build-1/root/dev/pts rw - devpts devpts rw',
    '93 22 0:8 / /srv/c/.build-1/root2/sys rw - sysfs sysfs rw',
    '94 22 0:9 / /srv/c/.build-1/root/with\\040space rw - tmpfs tmpfs rw',
  ].join('\n');

  it('lists what is mounted inside the chroot, deepest first, and nothing beside it', () => {
    expect(mountsUnder(mountinfo, '/srv/c/.build-1/root')).toEqual([
      '/srv/c/.build-1/root/proc/sys/fs/binfmt_misc',
      '/srv/c/.build-1/root/with space',
      '/srv/c/.build-1/root/dev/pts',
      '/srv/c/.build-1/root/proc',
    ]);
    expect(mountsUnder(mountinfo, '/nothing')).toEqual([]);
  });
});

describe('buildCloudGuest', () => {
  it('returns the cached guest when the recipe is unchanged, without rebuilding', async () => {
    // The cache CI built before the tests (.ci/run) or a previous run left.
    const info = await buildCloudGuest();
    expect(info.key).toBe(recipeKey());
    for (const f of [info.disk, info.kernel, info.initrd]) expect(fs.statSync(f).size).toBeGreaterThan(0);
    const before = fs.statSync(info.disk).mtimeMs;
    const again = await buildCloudGuest();
    expect(again).toEqual(info);
    expect(fs.statSync(info.disk).mtimeMs).toBe(before);
    expect(info.packages['cloud-init']).toMatch(/^\d/);
  }, 20 * 60_000);

  it('fails with the reason when the cache folder cannot be made, building nothing', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'viv-cg-')), 'plain-file');
    tmpDirs.push(path.dirname(file));
    fs.writeFileSync(file, '');
    await expect(buildCloudGuest({ cacheDir: path.join(file, 'sub') })).rejects.toThrow(/ENOTDIR/);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['plain-file']);
  });
});
