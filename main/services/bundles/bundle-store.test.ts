/**
 * BundleStore against real folders: create/saveAsync/removeAsync/sweep keep their behaviour now that
 * the slow parts (removing a deleted VM's files, writing a config) run off the event loop (issue 7).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, type VivariumError } from '../../common/errors';
import { parseVmConfig, type VmConfig } from '../../common/models/vm-config';
import { KEPT_DISKS_DIR, Layout } from '../paths';
import { BundleStore } from './bundle-store';

const ID = '0b0e7c1a-5d2f-4c3e-9a8b-1234567890ab';

let dir: string;
let layout: Layout;
let store: BundleStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-store-'));
  layout = new Layout(path.join(dir, 'lib'), path.join(dir, 'rt'));
  store = new BundleStore(layout);
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function config(over: Record<string, unknown> = {}): VmConfig {
  const r = parseVmConfig(
    JSON.stringify({
      version: 3,
      id: ID,
      name: 'alpha',
      createdAt: '2026-01-01T00:00:00Z',
      arch: 'x86_64',
      cpus: 1,
      memoryMiB: 512,
      network: { mode: 'user', mac: '52:54:00:12:34:56', forwards: [] },
      ...over,
    }),
  );
  if (!r.ok) throw new Error(r.error);
  return r.config;
}

/** A config whose system disk is disk0.qcow2 in the bundle. */
function withBundleDisk(): VmConfig {
  return config({ disks: [{ id: 'disk0', role: 'system', bus: 'virtio', source: { bundle: 'disk0.qcow2' }, format: 'qcow2', readOnly: false, backing: [] }] });
}

const bundleNames = (): string[] => (fs.existsSync(layout.bundlesDir) ? fs.readdirSync(layout.bundlesDir).sort() : []);

describe('BundleStore', () => {
  it('create writes the bundle through a staging folder; a failed prepare leaves nothing behind', async () => {
    await store.create(config(), async (staging) => {
      expect(path.basename(staging)).toMatch(/^\.creating-/);
      fs.writeFileSync(path.join(staging, 'disk0.qcow2'), 'data');
    });
    expect(bundleNames()).toEqual([ID]);
    const [entry] = store.list();
    expect(entry?.ok && entry.config.name).toBe('alpha');
    expect(fs.readFileSync(path.join(layout.bundle(ID).dir, 'disk0.qcow2'), 'utf8')).toBe('data');
    expect(fs.statSync(layout.bundle(ID).dir).mode & 0o777).toBe(0o700);

    const other = '1b0e7c1a-5d2f-4c3e-9a8b-1234567890ab';
    const e = await store
      .create(config({ id: other, name: 'beta' }), async () => {
        throw new Error('qemu-img failed');
      })
      .catch((err: unknown) => err);
    expect((e as Error).message).toBe('qemu-img failed');
    expect(bundleNames()).toEqual([ID]);
  });

  it('saveAsync rewrites config.json (seen by list), and refuses a missing bundle or one that is a link', async () => {
    await store.create(config(), async () => {});
    await store.saveAsync({ ...config(), name: 'renamed' });
    const [entry] = store.list();
    expect(entry?.ok && entry.config.name).toBe('renamed');
    expect(fs.statSync(layout.bundle(ID).config).mode & 0o777).toBe(0o600);

    const missing = '2b0e7c1a-5d2f-4c3e-9a8b-1234567890ab';
    const e1 = await store.saveAsync(config({ id: missing })).catch((err: unknown) => err);
    expect((e1 as VivariumError).code).toBe(ErrorCode.NotFound);

    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    const linked = '3b0e7c1a-5d2f-4c3e-9a8b-1234567890ab';
    fs.symlinkSync(elsewhere, layout.bundle(linked).dir);
    const e2 = await store.saveAsync(config({ id: linked })).catch((err: unknown) => err);
    expect((e2 as Error).message).toMatch(/symbolic link/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
  });

  it('removeAsync takes the VM out of the library and resolves with its files gone', async () => {
    await store.create(withBundleDisk(), async (staging) => {
      fs.writeFileSync(path.join(staging, 'disk0.qcow2'), Buffer.alloc(4 * 1024 * 1024, 1));
      fs.mkdirSync(path.join(staging, 'ssh'));
      fs.writeFileSync(path.join(staging, 'ssh', 'id'), 'key');
    });
    const [entry] = store.list();
    expect(await store.removeAsync(entry!, false)).toEqual([]);
    // Nothing left to wait for: not listed, not even broken, and the folder is gone.
    expect(store.list()).toEqual([]);
    expect(bundleNames()).toEqual([]);
    expect(fs.existsSync(path.join(layout.home, KEPT_DISKS_DIR))).toBe(false);
  });

  it('removeAsync with keepDisks moves the bundle disks to kept-disks/<name>-<id8>/ before the rest goes', async () => {
    await store.create(withBundleDisk(), async (staging) => {
      fs.writeFileSync(path.join(staging, 'disk0.qcow2'), 'the guest data');
      fs.writeFileSync(path.join(staging, 'serial.log'), 'boot');
    });
    const [entry] = await store.listAsync();
    const kept = await store.removeAsync(entry!, true);
    const expected = path.join(layout.home, KEPT_DISKS_DIR, `alpha-${ID.slice(0, 8)}`, 'disk0.qcow2');
    expect(kept).toEqual([expected]);
    expect(fs.readFileSync(expected, 'utf8')).toBe('the guest data');
    expect(fs.readdirSync(path.dirname(expected))).toEqual(['disk0.qcow2']); // the rest of the bundle is not kept
    expect(bundleNames()).toEqual([]);
    expect(await store.listAsync()).toEqual([]);
  });

  it('sweepStaging removes what a dead process left (through list), never a link target, and keeps a fresh one of a live process', async () => {
    fs.mkdirSync(layout.bundlesDir, { recursive: true });
    // A pid that cannot be alive (above pid_max's ceiling of 2^22).
    const dead = path.join(layout.bundlesDir, `.deleting-${ID}-9999999`);
    fs.mkdirSync(path.join(dead, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dead, 'sub', 'disk0.qcow2'), 'x');
    const target = path.join(dir, 'target');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep.txt'), 'mine');
    const link = path.join(layout.bundlesDir, `.creating-${ID}-9999998`);
    fs.symlinkSync(target, link);
    const live = path.join(layout.bundlesDir, `.creating-${ID}-${process.ppid}`);
    fs.mkdirSync(live);
    expect(store.list()).toEqual([]);
    await store.settled();
    expect(bundleNames()).toEqual([path.basename(live)]);
    expect(fs.readFileSync(path.join(target, 'keep.txt'), 'utf8')).toBe('mine');
  });

  it('listAsync sees what list sees: good, broken, mislabelled and linked bundles, and changes to config.json', async () => {
    await store.create(config(), async () => {});
    const broken = '4b0e7c1a-5d2f-4c3e-9a8b-1234567890ab';
    fs.mkdirSync(layout.bundle(broken).dir);
    fs.writeFileSync(layout.bundle(broken).config, '{"name": "half", ');
    const mislabelled = '5b0e7c1a-5d2f-4c3e-9a8b-1234567890ab';
    fs.mkdirSync(layout.bundle(mislabelled).dir);
    fs.writeFileSync(layout.bundle(mislabelled).config, JSON.stringify({ ...config(), name: 'gamma' }));
    const linkedConfig = '6b0e7c1a-5d2f-4c3e-9a8b-1234567890ab';
    fs.mkdirSync(layout.bundle(linkedConfig).dir);
    fs.symlinkSync('/etc/passwd', layout.bundle(linkedConfig).config);
    const linkedDir = '7b0e7c1a-5d2f-4c3e-9a8b-1234567890ab';
    fs.mkdirSync(path.join(dir, 'real'));
    fs.symlinkSync(path.join(dir, 'real'), layout.bundle(linkedDir).dir);
    fs.mkdirSync(path.join(layout.bundlesDir, '8b0e7c1a-5d2f-4c3e-9a8b-1234567890ab')); // no config.json: not a VM
    const byId = <T extends { id: string }>(es: readonly T[]): T[] => [...es].sort((a, b) => a.id.localeCompare(b.id));
    const sync = byId(new BundleStore(layout).list());
    const async = byId(await new BundleStore(layout).listAsync());
    expect(async).toEqual(sync);
    expect(async.map((e) => [e.id.slice(0, 1), e.ok, e.ok ? e.config.name : e.name])).toEqual([
      ['0', true, 'alpha'],
      ['4', false, 'half'],
      ['5', false, 'gamma'],
      ['6', false, null],
      ['7', false, null],
    ]);
    // A rewritten config.json is read again (the cache is keyed on mtime and size).
    await store.listAsync();
    await store.saveAsync({ ...config(), name: 'alpha-renamed' });
    expect((await store.listAsync()).find((e) => e.id === ID)).toMatchObject({ ok: true, config: { name: 'alpha-renamed' } });
  });
});
