/**
 * `vivarium snapshot …` and `vivarium clone` through the CLI's own entry point (main(argv, io)) with
 * a hosted engine: the stable interface and JSON shapes of the README, real qcow2 images and, for
 * clones, real QEMU (TCG) guests running side by side.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { processesMentioning, qemuProcessesUnder } from '../test-support/qemu-procs';
import { CLI_BIN } from '../test-support/cli';
import { Layout } from '../services/paths';
import { main } from './index';
// @ts-expect-error -- plain ESM script without type declarations
import { buildCloudGuest } from '../../scripts/build-cloud-guest.mjs';
import { parse as parseYaml } from 'yaml';
import { MACHINE_ID_BOOTCMD } from '../services/library/clone-sandbox';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
  expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => err.push(d));
  const code = await main(args, { stdout, stderr, env: { ...t.env, VIVARIUM_NO_ENGINE: '1' } });
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`vivarium ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function createGuest(name: string): Promise<string> {
  const g = testGuest();
  const id = (
    await ok(['create', name, '--accel', 'tcg', '--cpus', '1', '--memory', '256M', '--disk-size', '64M', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, '--net', 'none', '--display', 'none'])
  ).trim();
  return id;
}

const diskOf = (id: string, file = 'disk0.qcow2') => new Layout(t.home, t.runtimeDir).bundle(id).file(file);
/** A VM's disk0 top image, as its config names it. */
const topOf = (id: string): string => {
  const cfg = JSON.parse(readFileSync(new Layout(t.home, t.runtimeDir).bundle(id).config, 'utf8')) as { disks: { id: string; source: { bundle: string } }[] };
  return diskOf(id, cfg.disks.find((d) => d.id === 'disk0')!.source.bundle);
};
const qemuIo = (file: string, cmd: string) => execFileSync('qemu-io', ['-f', 'qcow2', '-c', cmd, file], { encoding: 'utf8' });

describe('vivarium snapshot', () => {
  it('create, list --json, rename, revert and delete on a shut-down VM; usage errors exit 2', async () => {
    const id = await createGuest('box');
    qemuIo(diskOf(id), 'write -P 0x11 0 64k');
    const made = JSON.parse(await ok(['snapshot', 'create', 'box', 'clean', '--description', 'fresh disk', '--json'])) as Record<string, unknown>;
    expect(Object.keys(made).sort()).toEqual(['createdAt', 'current', 'description', 'id', 'name', 'parentId', 'sizeBytes', 'withMemory']);
    expect(made).toMatchObject({ name: 'clean', description: 'fresh disk', parentId: null, current: true, withMemory: false });
    qemuIo(diskOf(id), 'write -P 0x22 0 64k');
    await ok(['snapshot', 'create', 'box']);
    const list = JSON.parse(await ok(['snapshot', 'list', 'box', '--json'])) as { name: string; parentId: string | null; current: boolean }[];
    expect(list.map((s) => [s.name, s.parentId, s.current])).toEqual([
      ['clean', null, false],
      ['Snapshot 2', made.id, true],
    ]);
    expect(await ok(['snapshot', 'list', 'box'])).toMatch(/- clean[\s\S]*\n {2}\* Snapshot 2 .*<- you are here/);
    expect(await ok(['snapshot', 'rename', 'box', 'Snapshot 2', 'second'])).toMatch(/Renamed to second/);
    expect(await ok(['snapshot', 'revert', 'box', 'clean'])).toMatch(/Reverted to clean/);
    expect(qemuIo(diskOf(id), 'read -P 0x11 0 64k')).not.toMatch(/failed/);
    expect(await ok(['snapshot', 'delete', 'box', 'second'])).toMatch(/Deleted snapshot second/);
    expect((JSON.parse(await ok(['snapshot', 'list', 'box', '--json'])) as unknown[]).length).toBe(1);

    const missing = await cli(['snapshot', 'revert', 'box', 'nope']);
    expect(missing.code).toBe(2); // names no snapshot: what was typed must change
    expect(missing.stderr).toMatch(/"box" has no snapshot named or with id "nope"\. Its snapshots: "clean"\./);
    for (const bad of [['snapshot'], ['snapshot', 'explode', 'box'], ['snapshot', 'revert', 'box'], ['snapshot', 'list', 'box', 'extra'], ['snapshot', 'rename', 'box', 'clean']]) {
      const r = await cli(bad);
      expect(r.code, bad.join(' ')).toBe(2);
    }
  }, 60_000);
});

const tagsOf = (file: string): string[] =>
  ((JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' })) as { snapshots?: { name: string }[] }).snapshots ?? []).map((s) => s.name);

describe('vivarium snapshot, when Vivarium\'s records and the images disagree (tester-s5 #1, #2)', () => {
  it('a damaged snapshots.json is kept aside and the tree rebuilt from the images: no complete snapshot is ever deleted', async () => {
    const id = await createGuest('dmg');
    const bundle = new Layout(t.home, t.runtimeDir).bundle(id);
    qemuIo(diskOf(id), 'write -P 0x11 0 64k');
    await ok(['snapshot', 'create', 'dmg', 'first']);
    qemuIo(diskOf(id), 'write -P 0x22 0 64k');
    await ok(['snapshot', 'create', 'dmg', 'second']);
    const before = tagsOf(diskOf(id));
    expect(before).toHaveLength(2);
    writeFileSync(bundle.file('snapshots.json'), '{broken\n');

    // The list says what happened (not a silent "No snapshots.") and names where the file went.
    const listed = await ok(['snapshot', 'list', 'dmg']);
    expect(listed).toMatch(/- Recovered 1 [\s\S]*- Recovered 2 /);
    expect(listed).toMatch(/snapshots\.json could not be read and was kept as snapshots\.json\.damaged-/);
    const aside = readdirSync(bundle.dir).filter((f) => f.startsWith('snapshots.json.damaged-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(bundle.file(aside[0]!), 'utf8')).toBe('{broken\n');
    const json = JSON.parse(await ok(['snapshot', 'list', 'dmg', '--json'])) as { id: string; name: string; parentId: string | null; withMemory: boolean }[];
    expect(json.map((s) => s.id).sort()).toEqual([...before].sort());
    expect(json.every((s) => s.parentId === null && !s.withMemory)).toBe(true);

    // The next snapshot keeps both (the bug deleted them as "interrupted" leftovers).
    await ok(['snapshot', 'create', 'dmg', 'third']);
    expect(tagsOf(diskOf(id)).sort()).toEqual([...before, JSON.parse(await ok(['snapshot', 'list', 'dmg', '--json'])).find((s: { name: string }) => s.name === 'third').id].sort());
    // A recovered snapshot reverts to its data (the oldest is "Recovered 1").
    expect(await ok(['snapshot', 'revert', 'dmg', 'Recovered 1'])).toMatch(/Reverted to Recovered 1/);
    expect(qemuIo(diskOf(id), 'read -P 0x11 0 64k')).not.toMatch(/failed/);
    let log = '';
    for (let i = 0; i < 50 && !/warning: snapshots\.json is not valid JSON/.test(log); i++) {
      await new Promise((r) => setTimeout(r, 100));
      log = readFileSync(bundle.eventLog, 'utf8');
    }
    expect(log).toMatch(/warning: snapshots\.json is not valid JSON .*kept as snapshots\.json\.damaged-/);
    expect(log).not.toMatch(/interrupted snapshot/);
  }, 60_000);

  it('a disk added after the snapshot is detached by the revert (its file kept, the CLI says so); in a record without settings it refuses the revert before any disk is touched', async () => {
    const id = await createGuest('two');
    qemuIo(diskOf(id), 'write -P 0xaa 0 64k');
    await ok(['snapshot', 'create', 'two', 'A']);
    await ok(['disk', 'add', 'two', '--size', '64M']);
    qemuIo(diskOf(id), 'write -P 0xbb 0 64k');
    qemuIo(diskOf(id, 'disk1.qcow2'), 'write -P 0x11 0 64k');
    const r = await cli(['snapshot', 'revert', 'two', 'A']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Reverted to A \(snap-[0-9a-f]{12}\)\.\n$/);
    expect(r.stderr).toBe('note: Disk disk1 was added after snapshot "A" and was detached by the revert; its image file is kept (disk1.qcow2 in its folder).\n');
    expect(qemuIo(diskOf(id), 'read -P 0xaa 0 64k')).not.toMatch(/failed/);
    expect(qemuIo(diskOf(id, 'disk1.qcow2'), 'read -P 0x11 0 64k')).not.toMatch(/failed/); // kept as it was
    expect(JSON.parse(await ok(['disk', 'list', 'two', '--json'])).map((d: { id: string }) => d.id)).toEqual(['disk0']);

    // A snapshot record from before snapshots held settings: every disk the VM has is checked first.
    rmSync(diskOf(id, 'disk1.qcow2'));
    await ok(['disk', 'add', 'two', '--size', '64M']);
    qemuIo(diskOf(id), 'write -P 0xbb 0 64k');
    const treeFile = new Layout(t.home, t.runtimeDir).bundle(id).file('snapshots.json');
    const tree = JSON.parse(readFileSync(treeFile, 'utf8')) as { snapshots: Record<string, unknown>[] };
    for (const s of tree.snapshots) delete s.settings;
    writeFileSync(treeFile, JSON.stringify(tree));
    const old = await cli(['snapshot', 'revert', 'two', 'A']);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/Cannot revert "two" to snapshot "A": disk disk1 was added after snapshot "A" was taken, so it holds no state to go back to\. Nothing was changed\. To revert the other disks, remove disk disk1 from "two" first/);
    // disk0 still holds what was written after the snapshot (the bug had already reverted it).
    expect(qemuIo(diskOf(id), 'read -P 0xbb 0 64k')).not.toMatch(/failed/);
    expect(JSON.parse(await ok(['snapshot', 'list', 'two', '--json']))).toMatchObject([{ name: 'A', current: true }]);
    // With that disk removed, the revert goes through.
    await ok(['disk', 'remove', 'two', 'disk1']);
    expect(await ok(['snapshot', 'revert', 'two', 'A'])).toMatch(/Reverted to A/);
    expect(qemuIo(diskOf(id), 'read -P 0xaa 0 64k')).not.toMatch(/failed/);
  }, 60_000);
});

describe('vivarium clone', () => {
  it('a linked clone runs beside its source, leaves the source\'s disk as it was, and keeps the source from being deleted', async () => {
    const g = testGuest();
    const src = await createGuest('src');
    qemuIo(diskOf(src), 'write -P 0x5a 0 64k');
    const clone = JSON.parse(await ok(['clone', 'src', 'copy', '--linked', '--json'])) as { id: string; name: string; linked: boolean };
    expect(clone).toMatchObject({ name: 'copy', linked: true });
    expect(clone.id).not.toBe(src);
    const show = JSON.parse(await ok(['show', 'copy', '--json'])) as { config: { network: { mac: string }; disks: { backing: unknown[] }[] } };
    const srcShow = JSON.parse(await ok(['show', 'src', '--json'])) as { config: { network: { mac: string }; disks: { source: { bundle?: string }; backing: unknown[] }[] } };
    expect(show.config.network.mac).not.toBe(srcShow.config.network.mac);
    expect(show.config.disks[0]!.backing).toHaveLength(1);
    // The shared base is frozen: the source now writes an overlay of its own.
    expect(srcShow.config.disks[0]!.source.bundle).not.toBe('disk0.qcow2');
    const { mode } = statSync(diskOf(src));
    expect(mode & 0o222).toBe(0);

    // The clone writes its own overlay; the source's disk keeps its pattern.
    qemuIo(diskOf(clone.id), 'write -P 0x77 0 64k');
    expect(qemuIo(diskOf(src), 'read -P 0x5a 0 64k')).not.toMatch(/failed/);

    // Both run at once.
    await ok(['start', 'src', '--wait-serial', g.readyMarker, '--timeout', '120']);
    await ok(['start', 'copy', '--wait-serial', g.readyMarker, '--timeout', '120']);
    const states = JSON.parse(await ok(['list', '--json'])) as { name: string; state: string }[];
    expect(states.map((v) => [v.name, v.state])).toEqual([
      ['copy', 'running'],
      ['src', 'running'],
    ]);
    await ok(['stop', 'copy', '--force']);
    await ok(['stop', 'src', '--force']);

    const del = await cli(['delete', 'src']);
    expect(del.code).toBe(1);
    expect(del.stderr).toMatch(/copy/);
  }, 300_000);

  it('delete --flatten-clones gives the linked clones images of their own (same contents, still boots), then deletes the source', async () => {
    const g = testGuest();
    const src = await createGuest('base');
    qemuIo(diskOf(src), 'write -P 0x61 0 64k');
    const a = (await ok(['clone', 'base', 'child-a', '--linked'])).trim();
    const b = (await ok(['clone', 'base', 'child-b', '--linked'])).trim();
    qemuIo(diskOf(a), 'write -P 0x62 1M 64k');

    const refused = await cli(['delete', 'base']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/"base" cannot be deleted: "child-[ab]" \(and 1 other VM: "child-[ab]"\) uses .* as a backing image of its disk disk0\. Delete "child-[ab]" and "child-[ab]" first .*`vivarium delete base --flatten-clones`/);

    // A clone with snapshots of its own cannot be flattened (they read from the base): nothing changes.
    await ok(['snapshot', 'create', 'child-b', 'mine']);
    const withSnap = await cli(['delete', 'base', '--flatten-clones']);
    expect(withSnap.code).toBe(1);
    expect(withSnap.stderr).toMatch(/"child-b" is a linked clone of "base" with snapshots of its own/);
    // A refusal changes nothing: no clone was flattened meanwhile.
    const backingOf = async (n: string) => (JSON.parse(await ok(['show', n, '--json'])) as { config: { disks: { backing: unknown[] }[] } }).config.disks[0]!.backing.length;
    expect([await backingOf('child-a'), await backingOf('child-b')]).toEqual([1, 2]);
    await ok(['snapshot', 'delete', 'child-b', 'mine']);
    // A running clone is not flattened under its QEMU.
    await ok(['start', 'child-b', '--wait-serial', g.readyMarker, '--timeout', '120']);
    const running = await cli(['delete', 'base', '--flatten-clones']);
    expect(running.code).toBe(1);
    expect(running.stderr).toMatch(/"child-b" is running; it must be shut down to flatten it before "base" is deleted/);
    expect(await backingOf('child-a')).toBe(1);
    await ok(['stop', 'child-b', '--force']);
    expect(JSON.parse(await ok(['list', '--json'])).map((v: { name: string }) => v.name)).toEqual(['base', 'child-a', 'child-b']);

    // What each clone reads now, for comparing after the source is gone (qemu-img follows the chain).
    const refs = [a, b].map((id) => {
      const ref = path.join(t.home, `ref-${id}.qcow2`);
      execFileSync('qemu-img', ['convert', '-O', 'qcow2', topOf(id), ref]);
      return ref;
    });
    const del = await ok(['delete', 'base', '--flatten-clones']);
    expect(del.split('\n').sort()).toEqual(['', 'Deleted base.', "Flattened child-a: its disks no longer use base's.", "Flattened child-b: its disks no longer use base's."]);
    expect(JSON.parse(await ok(['list', '--json'])).map((v: { name: string }) => v.name)).toEqual(['child-a', 'child-b']);
    for (const [i, id] of [a, b].entries()) {
      const show = JSON.parse(await ok(['show', id, '--json'])) as { config: { disks: { backing: unknown[] }[] } };
      expect(show.config.disks[0]!.backing).toEqual([]);
      const top = topOf(id);
      expect(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', top], { encoding: 'utf8' }))['backing-filename']).toBeUndefined();
      execFileSync('qemu-img', ['compare', '-q', refs[i]!, top]); // throws unless equal
      execFileSync('qemu-img', ['check', '-q', top]);
    }
    expect(qemuIo(topOf(a), 'read -P 0x62 1M 64k')).not.toMatch(/failed/);
    expect(qemuIo(topOf(b), 'read -P 0x61 0 64k')).not.toMatch(/failed/);
    await ok(['start', 'child-a', '--wait-serial', g.readyMarker, '--timeout', '120']);
    await ok(['stop', 'child-a', '--force']);
  }, 300_000);

  it('a full clone is independent: it runs after its source is deleted', async () => {
    const g = testGuest();
    const src = await createGuest('orig');
    qemuIo(diskOf(src), 'write -P 0x33 0 64k');
    await ok(['snapshot', 'create', 'orig', 'before']);
    const id = (await ok(['clone', 'orig', 'full'])).trim();
    expect(JSON.parse(await ok(['snapshot', 'list', 'full', '--json']))).toEqual([]);
    const refused = await cli(['clone', 'orig', 'thin', '--linked']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/"orig" has snapshots, and a linked clone cannot share its disks safely: .* Make a full clone/);
    expect(qemuIo(diskOf(id), 'read -P 0x33 0 64k')).not.toMatch(/failed/);
    await ok(['delete', 'orig']);
    await ok(['start', 'full', '--wait-serial', g.readyMarker, '--timeout', '120']);
    await ok(['stop', 'full', '--force']);
    const linked = await cli(['clone', 'full', 'again', '--linked']);
    expect(linked.code).toBe(0);
  }, 300_000);
});

describe('clones of a cloud-init sandbox', () => {
  /** The user-data's #cloud-config as an object. */
  const userDataOf = (ud: string) => parseYaml(ud) as Record<string, unknown>;
  /** The source's cloud-config as a clone's should be: the same, with the machine-id reset first in bootcmd. */
  const withReset = (c: Record<string, unknown>) => ({ ...c, bootcmd: [[...MACHINE_ID_BOOTCMD], ...((c.bootcmd as unknown[]) ?? [])] });
  const isoFile = (iso: string, name: string) => execFileSync('isoinfo', ['-i', iso, '-J', '-x', `/${name}`], { encoding: 'utf8' });

  it('each clone (full and linked) gets its own seed with a new instance-id and its MAC, a copy of the key pair and known_hosts in its own folder', async () => {
    const image = path.join(t.home, 'cloud.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
    const src = (await ok(['create', 'dev', '--cloud-image', image, '--accel', 'tcg', '--memory', '256M', '--display', 'none', '--no-agent-install'])).trim();
    type Show = { id: string; path: string; config: { network: { mac: string }; cloudInit: { identityFile: string; knownHostsFile: string; seed: string; hostname: string }; disks: { source: { bundle?: string; path?: string }; format: string; readOnly: boolean }[] } };
    const show = async (n: string) => JSON.parse(await ok(['show', n, '--json'])) as Show;
    const s = await show('dev');
    const srcSeed = path.join(s.path, s.config.cloudInit.seed);
    expect(isoFile(srcSeed, 'meta-data')).toContain(`instance-id: ${src}`);

    await ok(['clone', 'dev', 'dev-full']);
    await ok(['clone', 'dev', 'dev-linked', '--linked']);
    for (const name of ['dev-full', 'dev-linked']) {
      const c = await show(name);
      const ci = c.config.cloudInit;
      // Its key pair: a copy in its own folder, the same key (the guest's disk authorizes it).
      expect(path.dirname(path.dirname(ci.identityFile))).toBe(c.path);
      expect(readFileSync(ci.identityFile, 'utf8')).toBe(readFileSync(s.config.cloudInit.identityFile, 'utf8'));
      expect(statSync(ci.identityFile).mode & 0o077).toBe(0);
      expect(path.dirname(path.dirname(ci.knownHostsFile))).toBe(c.path);
      expect(ci.hostname).toBe(s.config.cloudInit.hostname);
      // Its seed: in its folder, attached as a raw read-only disk, a new instance-id, its own MAC,
      // the same user-data byte for byte.
      const seedDisk = c.config.disks.find((d) => d.readOnly)!;
      expect(seedDisk).toMatchObject({ source: { bundle: ci.seed }, format: 'raw' });
      const seed = path.join(c.path, ci.seed);
      expect(isoFile(seed, 'meta-data')).toContain(`instance-id: ${c.id}`);
      expect(isoFile(seed, 'meta-data')).toContain(`local-hostname: ${s.config.cloudInit.hostname}`);
      expect(isoFile(seed, 'network-config')).toContain(`macaddress: ${c.config.network.mac}`);
      expect(c.config.network.mac).not.toBe(s.config.network.mac);
      expect(userDataOf(isoFile(seed, 'user-data'))).toEqual(withReset(userDataOf(isoFile(srcSeed, 'user-data'))));
      expect(execFileSync('isoinfo', ['-d', '-i', seed], { encoding: 'utf8' })).toMatch(/Volume id: cidata/);
    }
    // The source keeps its own.
    expect(isoFile(srcSeed, 'meta-data')).toContain(`instance-id: ${src}`);

    // Exported (a full clone: a sandbox on its cloud image uses a file outside its folder) and
    // imported next to it: the key pair and known_hosts travel and land in the new VM's own folder,
    // and as a copy beside the original it is a new instance with its own MAC in its seed.
    const file = path.join(t.home, 'dev.vivarium');
    await ok(['export', 'dev-full', file]);
    const imported = JSON.parse(await ok(['import', file, '--name', 'dev-moved', '--json'])) as { id: string };
    const full = await show('dev-full');
    const moved = await show('dev-moved');
    expect(moved.id).toBe(imported.id);
    expect(path.dirname(path.dirname(moved.config.cloudInit.identityFile))).toBe(moved.path);
    expect(readFileSync(moved.config.cloudInit.identityFile, 'utf8')).toBe(readFileSync(full.config.cloudInit.identityFile, 'utf8'));
    expect(statSync(moved.config.cloudInit.identityFile).mode & 0o077).toBe(0);
    expect(path.dirname(path.dirname(moved.config.cloudInit.knownHostsFile))).toBe(moved.path);
    const movedSeed = path.join(moved.path, moved.config.cloudInit.seed);
    expect(isoFile(movedSeed, 'meta-data')).toContain(`instance-id: ${moved.id}`);
    expect(isoFile(movedSeed, 'network-config')).toContain(`macaddress: ${moved.config.network.mac}`);
    // A copy of dev-full, whose seed has the machine-id reset already: not added twice.
    expect(userDataOf(isoFile(movedSeed, 'user-data'))).toEqual(withReset(userDataOf(isoFile(srcSeed, 'user-data'))));
  }, 60_000);
});

describe('vivarium export / import', () => {
  it('round-trips a VM with its snapshots under a new id; a damaged or cut-short file is refused and nothing is imported', async () => {
    const id = await createGuest('traveller');
    qemuIo(diskOf(id), 'write -P 0x42 0 64k');
    await ok(['snapshot', 'create', 'traveller', 'packed']);
    qemuIo(diskOf(id), 'write -P 0x43 0 64k');
    const file = path.join(t.home, 'traveller.vivarium');
    expect(await ok(['export', 'traveller', file])).toContain(file);
    expect((await cli(['export', 'traveller', file])).stderr).toMatch(/already exists/);

    const dup = await cli(['import', file]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/A VM named "traveller" already exists/);
    const imported = JSON.parse(await ok(['import', file, '--name', 'arrived', '--json'])) as { id: string; name: string };
    expect(imported.name).toBe('arrived');
    expect(imported.id).not.toBe(id);
    expect(qemuIo(diskOf(imported.id), 'read -P 0x43 0 64k')).not.toMatch(/failed/);
    const snaps = JSON.parse(await ok(['snapshot', 'list', 'arrived', '--json'])) as { name: string }[];
    expect(snaps.map((x) => x.name)).toEqual(['packed']);
    await ok(['snapshot', 'revert', 'arrived', 'packed']);
    expect(qemuIo(diskOf(imported.id), 'read -P 0x42 0 64k')).not.toMatch(/failed/);

    const vmsBefore = readdirSync(path.join(t.home, 'vms')).sort();
    const bytes = readFileSync(file);
    const damaged = path.join(t.home, 'damaged.vivarium');
    const copy = Buffer.from(bytes);
    copy[4096] = copy[4096]! ^ 0xff;
    writeFileSync(damaged, copy);
    const bad = await cli(['import', damaged, '--name', 'broken']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/cannot be imported: .* does not match its checksum \(the file is damaged\)\. Nothing was imported/);
    const cut = path.join(t.home, 'cut.vivarium');
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const short = await cli(['import', cut, '--name', 'half']);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/cannot be imported/);
    expect(readdirSync(path.join(t.home, 'vms')).sort()).toEqual(vmsBefore);
  }, 120_000);
});

describe('clones and host-port forwards', () => {
  it('a clone moves its fixed host ports (a notice says so), so it runs beside its source; a start over a port another VM forwards names that VM', async () => {
    const g = testGuest();
    await ok(['create', 'web', '--accel', 'tcg', '--cpus', '1', '--memory', '256M', '--disk-size', '64M', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, '--net', 'user', '--display', 'none']);
    await ok(['forward', 'add', 'web', 'tcp:18380:8080']);
    await ok(['forward', 'add', 'web', 'udp:18391:53']);
    const r = await cli(['clone', 'web', 'web2', '--json']);
    expect(r.code).toBe(0);
    const made = JSON.parse(r.stdout) as { id: string; notices: string[] };
    expect(made.notices).toHaveLength(1);
    expect(made.notices[0]).toMatch(/^"web2" forwards other host ports than "web", so both can run at once: tcp 18380 → (\d+) \(guest port 8080\), udp 18391 → (\d+) \(guest port 53\)\./);
    expect(r.stderr).toContain('note: "web2" forwards other host ports');
    const forwardsOf = async (n: string) => (await ok(['forward', 'list', n])).trim().split('\n');
    expect(await forwardsOf('web')).toEqual(['tcp 127.0.0.1:18380 -> guest 8080', 'udp 127.0.0.1:18391 -> guest 53']);
    const cloned = await forwardsOf('web2');
    expect(cloned).toHaveLength(2);
    expect(cloned.join('\n')).not.toMatch(/:18380 |:18391 /);
    expect(cloned[0]).toMatch(/^tcp 127\.0\.0\.1:\d+ -> guest 8080$/);

    // Both run at once.
    await ok(['start', 'web', '--wait-serial', g.readyMarker, '--timeout', '120']);
    await ok(['start', 'web2', '--timeout', '120']);
    await ok(['stop', 'web2', '--force']);
    // A VM that forwards the same port as the running "web" (as clones made before this did):
    // the refusal names "web", not "another program".
    const cfgFile = new Layout(t.home, t.runtimeDir).bundle(made.id).config;
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { network: { forwards: { protocol: string; hostPort: number; guestPort: number }[] } };
    cfg.network.forwards = [{ protocol: 'tcp', hostPort: 18380, guestPort: 8080 }];
    writeFileSync(cfgFile, JSON.stringify(cfg));
    const clash = await cli(['start', 'web2', '--timeout', '120']);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toMatch(/host port 18380 \(tcp\) is forwarded by the running VM "web", so "web2" cannot forward it too\. Shut "web" down, or change the port forwards of one of them\./);
    expect(clash.stderr).not.toMatch(/another program/);
    await ok(['stop', 'web', '--force']);
  }, 180_000);
});

describe('import checks', () => {
  it('refuses an export whose image names a backing file outside it, and a name clash before hashing anything', async () => {
    const id = await createGuest('carrier');
    const outside = path.join(t.home, 'outside.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', outside, '64M']);
    // The disk's header now names a file outside the VM's folder (the config lists no backing).
    execFileSync('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-b', outside, '-F', 'qcow2', diskOf(id)]);
    const file = path.join(t.home, 'carrier.vivarium');
    await ok(['export', 'carrier', file]);
    const vmsBefore = readdirSync(path.join(t.home, 'vms')).sort();
    const r = await cli(['import', file, '--name', 'landed']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`cannot be imported: disk0\\.qcow2 names ${outside.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} as its backing file, a file outside the export .*Nothing was imported`));
    expect(readdirSync(path.join(t.home, 'vms')).sort()).toEqual(vmsBefore);

    // A damaged file under a taken name: the clash is found first (config.json only is read).
    const bytes = readFileSync(file);
    const damaged = path.join(t.home, 'damaged.vivarium');
    const copy = Buffer.from(bytes);
    copy[bytes.length - 8192] = copy[bytes.length - 8192]! ^ 0xff;
    writeFileSync(damaged, copy);
    const clash = await cli(['import', damaged]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(/A VM named "carrier" already exists\. Import it under another name/);
  }, 60_000);

  it('a manifest naming a path outside the VM\'s folder is refused, saying so', async () => {
    const evil = path.join(t.home, 'evil.vivarium');
    const script = [
      'import hashlib, io, json, sys, tarfile',
      'data = b"x"',
      'm = json.dumps({"format": "vivarium-export", "version": 1, "vm": {"id": "i", "name": "n"}, "files": [{"name": "../../evil", "size": 1, "sha256": hashlib.sha256(data).hexdigest()}]}).encode()',
      'with tarfile.open(sys.argv[1], "w", format=tarfile.USTAR_FORMAT) as t:',
      '    for name, body in (("../../evil", data), ("vivarium-manifest.json", m)):',
      '        info = tarfile.TarInfo(name); info.size = len(body); t.addfile(info, io.BytesIO(body))',
    ].join('\n');
    execFileSync('python3', ['-c', script, evil]);
    const r = await cli(['import', evil, '--name', 'evil']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot be imported: its manifest names a file that does not belong in a VM's folder/);
    const vms = path.join(t.home, 'vms');
    expect(existsSync(vms) ? readdirSync(vms) : []).toEqual([]);
  });

  it('an export with a linked chain inside it imports and starts (inner layers point into the new folder)', async () => {
    const g = testGuest();
    await createGuest('base');
    await ok(['clone', 'base', 'kid', '--linked']);
    const file = path.join(t.home, 'base.vivarium');
    await ok(['export', 'base', file]); // base now stands on its frozen image: a chain of two in its folder
    const imported = JSON.parse(await ok(['import', file, '--name', 'base-copy', '--json'])) as { id: string };
    const dir = new Layout(t.home, t.runtimeDir).bundle(imported.id).dir;
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { disks: { source: { bundle: string }; backing: { source: { bundle: string } }[] }[] };
    const top = cfg.disks[0]!;
    expect(top.backing).toHaveLength(1);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '-f', 'qcow2', '--output=json', path.join(dir, top.source.bundle)], { encoding: 'utf8' })) as Record<string, string>;
    expect(info['backing-filename']).toBe(path.join(dir, top.backing[0]!.source.bundle));
    await ok(['start', 'base-copy', '--wait-serial', g.readyMarker, '--timeout', '120']);
    await ok(['stop', 'base-copy', '--force']);
  }, 180_000);
});

describe('wording', () => {
  it('a running VM\'s disk-only revert and a suspended VM\'s hardware edit say why once, then the remedy (tester-s5 #17); a suspended VM can be renamed (#13)', async () => {
    const g = testGuest();
    await createGuest('once');
    await ok(['snapshot', 'create', 'once', 'cold']);
    await ok(['start', 'once', '--wait-serial', g.readyMarker, '--timeout', '120']);
    try {
      const r = await cli(['snapshot', 'revert', 'once', 'cold']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('vivarium: Snapshot "cold" was taken while "once" was shut down, so it holds no memory to resume: only the disks of a shut-down VM can go back to it. Shut it down first: `vivarium stop once`.\n');
      await ok(['suspend', 'once']);
      const e = await cli(['edit', 'once', '--memory', '512M']);
      expect(e.code).toBe(1);
      expect(e.stderr).toBe(
        'vivarium: "once" is suspended, and its saved state resumes only on the machine it was saved from: a change to its memory size would keep it from resuming. Its name, OS label and autostart can change now; other settings once it has resumed and been shut down. Start it first: `vivarium start once`.\n',
      );
      await ok(['edit', 'once', '--name', 'twice']);
      expect(JSON.parse(await ok(['list', '--json'])).map((v: { name: string; state: string }) => [v.name, v.state])).toEqual([['twice', 'suspended']]);
    } finally {
      await cli(['stop', 'once', '--force']);
      await cli(['stop', 'twice', '--force']);
    }
  }, 180_000);

  it('snapshot names are checked as snapshot names; a left-out one gets the default, an empty or blank one is refused as a rename\'s; clone and lock refusals say what happens', async () => {
    const id = await createGuest('words');
    for (const blank of ['', '  ']) {
      const r = await cli(['snapshot', 'create', 'words', blank]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('vivarium: Invalid snapshot name: a snapshot name must not be empty. Choose another name.\n');
    }
    expect(await ok(['snapshot', 'create', 'words'])).toMatch(/^Snapshot 1 \(snap-[0-9a-f]+\), disks only/);
    const tab = await cli(['snapshot', 'create', 'words', 'a\tb']);
    expect(tab.code).toBe(2);
    expect(tab.stderr).toBe('vivarium: Invalid snapshot name: a snapshot name must not contain control characters. Choose another name.\n');
    const long = await cli(['snapshot', 'rename', 'words', 'Snapshot 1', 'x'.repeat(101)]);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/Invalid snapshot name: a snapshot name must be at most 100 characters\. Choose another name\./);
    expect(long.stderr).not.toMatch(/VM settings|--name/);

    const dup = await cli(['clone', 'words', 'words']);
    expect(dup.stderr).toBe('vivarium: A VM named "words" already exists. Choose another name for the clone.\n');

    // Another CLI clones it (a full copy takes a moment): refusals say "cloned", not "started".
    execFileSync('qemu-img', ['resize', '-q', '-f', 'qcow2', diskOf(id), '1G']);
    qemuIo(diskOf(id), 'write -P 0x5a 0 600M');
    const cloning = spawn(process.execPath, [CLI_BIN, 'clone', 'words', 'words copy'], { env: { ...t.env, VIVARIUM_NO_ENGINE: '1' }, stdio: 'ignore' });
    const done = new Promise((r) => cloning.once('exit', r));
    try {
      const deadline = Date.now() + 60_000;
      while (!processesMentioning(t.home).some((p) => p.argv[1] === 'convert')) {
        if (Date.now() > deadline || cloning.exitCode !== null) throw new Error('the clone never started copying');
        await new Promise((r) => setTimeout(r, 5));
      }
      const del = await cli(['delete', 'words']);
      expect(del.code).not.toBe(0);
      expect(del.stderr).toMatch(new RegExp(`"words" is being cloned by another Vivarium process \\(pid ${cloning.pid}\\)\\. Wait for it to finish\\.`));
    } finally {
      await done;
    }
  }, 60_000);
});

describe('a sandbox clone on the Debian cloud guest', () => {
  it('boots with a /etc/machine-id of its own (its id), not its source\'s', async () => {
    const guest = (await buildCloudGuest()) as { disk: string; kernel: string; initrd: string; append: string };
    const created = await cli([
      'create', 'mid-src', '--cloud-image', guest.disk, '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append,
      '--accel', 'tcg', '--memory', '1G', '--cpus', '1', '--display', 'none', '--disk-size', '4G', '--user', 'dev', '--no-agent-install',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const machineId = async (name: string): Promise<string> => {
      await ok(['start', name]);
      try {
        return (await ok(['ssh', name, '--timeout', '900', '--', 'cat', '/etc/machine-id'])).trim();
      } finally {
        await ok(['stop', name, '--force']);
      }
    };
    const srcId = created.stdout.trim();
    expect(await machineId('mid-src')).toBe(srcId.replace(/-/g, '')); // systemd took the VM's SMBIOS UUID
    const cloneId = (await ok(['clone', 'mid-src', 'mid-clone'])).trim();
    expect(await machineId('mid-clone')).toBe(cloneId.replace(/-/g, ''));
  }, 1_800_000);
});
