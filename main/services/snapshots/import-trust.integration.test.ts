/**
 * A `.vivarium` file is untrusted (imports/untrusted-config.ts): crafted exports (a real export
 * unpacked, its config.json or snapshots.json edited, the manifest's checksums made to match, packed
 * again with tar as an export is) whose settings would let the guest reach host files, or QEMU run
 * with arguments from the file. Each field is refused with a sentence naming it (and nothing is left
 * in the library), or imported with the setting reset and a notice saying what was dropped; a
 * revert to an imported snapshot does not bring a dropped setting back. The plain round trip keeps
 * a kernel a VM here uses, and the imported VM boots (real QEMU, TCG).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { endEngineTest } from '../../test-support/engine-home';
import type { VmConfig } from '../../common/models/vm-config';
import { createEngine, type Engine } from '../engine';
import { MANIFEST } from './bundle-archive';

let t: TestHome;
let engine: Engine;

beforeEach(() => {
  t = makeTestHome();
  engine = createEngine({ env: t.env, log: () => undefined });
});

afterEach(async () => {
  await endEngineTest(engine, t);
});

const MiB = 1024 * 1024;
type Json = Record<string, unknown>;

/** A stopped VM with a disk snapshot "A", exported to `<home>/NAME.vivarium`. */
async function exported(name: string): Promise<string> {
  await engine.manager.create({ name, accel: 'tcg', cpus: 1, memoryMiB: 128, diskSizeBytes: 16 * MiB, net: 'none', display: 'none' });
  await engine.services.snapshots.create(name, { name: 'A' });
  const file = path.join(t.home, `${name}.vivarium`);
  await engine.services.snapshots.exportVm(name, file);
  return file;
}

/**
 * A copy of export `src` with config.json and snapshots.json changed by `edit`, its manifest's
 * sizes and checksums made to match, packed again in the manifest's order (manifest last).
 */
function craft(src: string, label: string, edit: { config?: (c: Json) => void; tree?: (tr: { snapshots: Json[] }) => void; files?: (dir: string) => string[] }): string {
  const dir = fs.mkdtempSync(path.join(t.home, `craft-${label}-`));
  execFileSync('tar', ['-xf', src, '-C', dir]);
  const rewrite = (name: string, fn: ((v: never) => void) | undefined) => {
    if (!fn) return;
    const f = path.join(dir, name);
    const v = JSON.parse(fs.readFileSync(f, 'utf8')) as never;
    fn(v);
    fs.writeFileSync(f, JSON.stringify(v));
  };
  rewrite('config.json', edit.config);
  rewrite('snapshots.json', edit.tree);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as { files: { name: string; size: number; sha256: string }[] };
  for (const name of edit.files?.(dir) ?? []) if (!manifest.files.some((f) => f.name === name)) manifest.files.push({ name, size: 0, sha256: '' });
  for (const f of manifest.files) {
    const bytes = fs.readFileSync(path.join(dir, f.name));
    f.size = bytes.length;
    f.sha256 = createHash('sha256').update(bytes).digest('hex');
  }
  fs.writeFileSync(path.join(dir, MANIFEST), JSON.stringify(manifest));
  const out = path.join(t.home, `${label}.vivarium`);
  execFileSync('tar', ['-cf', out, '-C', dir, ...manifest.files.map((f) => f.name), MANIFEST]);
  return out;
}

function configOf(id: string): VmConfig {
  return JSON.parse(fs.readFileSync(engine.layout.bundle(id).config, 'utf8')) as VmConfig;
}

/** The library's folders (hidden staging leftovers included). */
function folders(): string[] {
  return fs.readdirSync(engine.layout.bundlesDir).sort();
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string; field?: string }> {
  const e = (await p.then(
    () => null,
    (x: unknown) => x,
  )) as { code: string; message: string; field?: string } | null;
  if (!e) throw new Error('it succeeded');
  return e;
}

async function refused(file: string): Promise<string> {
  const before = folders();
  const e = (await engine.services.snapshots.importVm(file, { name: 'crafted' }).then(
    () => null,
    (x: unknown) => x,
  )) as { code: string; message: string } | null;
  if (!e) throw new Error(`${file} was imported`);
  expect(e.code).toBe('invalid-argument');
  expect(folders()).toEqual(before);
  return e.message;
}

describe('import of a crafted file: host settings reset with a notice', () => {
  it('kernel and initrd, CD ISOs, shared folders, extra QEMU arguments, an SSH key: none taken, each said; a trusted ISO stays; port forwards stay, said', async () => {
    const src = await exported('src');
    fs.mkdirSync(engine.layout.mediaDir, { recursive: true });
    const downloaded = path.join(engine.layout.mediaDir, 'debian-12.iso');
    fs.writeFileSync(downloaded, Buffer.alloc(64 * 1024));
    const file = craft(src, 'host', {
      config: (c) => {
        c.kernel = { path: '/boot/vmlinuz-evil', initrd: '/etc/shadow', append: 'console=ttyS0' };
        c.cdroms = [
          { id: 'cd0', path: '/dev/sda' },
          { id: 'cd1', path: downloaded },
          { id: 'cd2', path: `${engine.layout.mediaDir}/../vms/x.iso` },
        ];
        c.shares = [{ hostPath: '/', tag: 'root', readOnly: false }];
        c.extraArgs = ['-drive', 'file=/etc/shadow,if=virtio', '-chardev', 'socket,id=x,path=/tmp/x\nsneaky'];
        c.cloudInit = { user: 'dev', hostname: 'dev', identityFile: '/root/.ssh/id_rsa', knownHostsFile: '/elsewhere/known_hosts', seed: 'seed.iso', passwordSet: false };
        c.network = { ...(c.network as Json), mode: 'user', forwards: [{ protocol: 'tcp', hostPort: 5432, guestPort: 5432 }] };
      },
    });
    const vm = await engine.services.snapshots.importVm(file, { name: 'crafted' });
    expect(vm.notices).toEqual([
      "The kernel /boot/vmlinuz-evil and the initrd /etc/shadow of the exported VM are not files a VM here already uses that way, nor downloads in Vivarium's media folder, so the imported VM has no kernel; set one in its settings if you trust the file.",
      "The ISO /dev/sda in CD drive cd0 of the exported VM is not a file a VM here already uses that way, nor a download in Vivarium's media folder, so that drive is empty; insert an ISO you trust.",
      `The ISO ${engine.layout.mediaDir}/../vms/x.iso in CD drive cd2 of the exported VM is not a file a VM here already uses that way, nor a download in Vivarium's media folder, so that drive is empty; insert an ISO you trust.`,
      'The shared folder / (tag root) of the exported VM was not taken: an import never gives a guest a folder of this machine. Share one again if you mean to.',
      'The extra QEMU arguments of the exported VM (-drive file=/etc/shadow,if=virtio -chardev socket,id=x,path=/tmp/x?sneaky) were not taken: they can open files and sockets on this machine. Add them to its config.json yourself if you trust them.',
      'The imported VM forwards tcp 127.0.0.1:5432 → guest 5432, as the exported VM did: while it runs, programs on this machine that connect to that port reach its guest. Remove it in its port forwards if you did not expect it.',
      'The SSH key /root/.ssh/id_rsa of the exported VM is not one a VM here already uses, so it was not taken: ssh uses its own keys and agent for the imported VM.',
    ]);
    const c = configOf(vm.id);
    expect(c.network.forwards).toEqual([{ protocol: 'tcp', hostPort: 5432, guestPort: 5432 }]);
    expect(c.kernel).toBeNull();
    expect(c.cdroms).toEqual([
      { id: 'cd0', path: null },
      { id: 'cd1', path: downloaded },
      { id: 'cd2', path: null },
    ]);
    expect(c.shares).toEqual([]);
    expect(c.extraArgs).toEqual([]);
    expect(c.cloudInit).toMatchObject({ identityFile: null, knownHostsFile: path.join(engine.layout.bundle(vm.id).dir, 'ssh', 'known_hosts') });
    // The QEMU command line it would start with names none of them.
    const argv = ((await engine.manager.get(vm.id)).argv ?? []).join(' ');
    expect(argv).toContain('-machine');
    expect(argv).not.toMatch(/vmlinuz-evil|\/etc\/shadow|\/dev\/sda|virtfs|sneaky/);
    expect(argv).toContain(downloaded);
    // The VM's event log keeps the notices.
    await engine.manager.events.flushed();
    expect(fs.readFileSync(engine.layout.bundle(vm.id).eventLog, 'utf8')).toContain('The shared folder / (tag root) of the exported VM was not taken');
  }, 60_000);

  it("a snapshot's saved settings pass the same screening: a revert brings back no kernel, ISO, share or argument from the file", async () => {
    const src = await exported('src');
    const file = craft(src, 'snap', {
      tree: (tr) => {
        const st = tr.snapshots[0]!.settings as Json;
        st.kernel = { path: '/boot/vmlinuz-evil', initrd: null, append: '' };
        st.cdroms = [{ id: 'cd0', path: '/dev/sda' }];
        st.shares = [{ hostPath: '/', tag: 'root', readOnly: false }];
        st.extraArgs = ['-monitor', 'unix:/tmp/m,server'];
        st.network = { ...(st.network as Json), mode: 'user', forwards: [{ protocol: 'udp', hostPort: 5353, guestPort: 53 }] };
      },
    });
    const vm = await engine.services.snapshots.importVm(file, { name: 'crafted' });
    expect(vm.notices).toEqual([
      'The kernel /boot/vmlinuz-evil of snapshot "A" is not a file a VM here already uses that way, nor a download in Vivarium\'s media folder, so a revert to snapshot "A" leaves the VM without a kernel; set one in its settings if you trust the file.',
      'The ISO /dev/sda in CD drive cd0 of snapshot "A" is not a file a VM here already uses that way, nor a download in Vivarium\'s media folder, so a revert to snapshot "A" leaves that drive empty; insert an ISO you trust.',
      'A revert to snapshot "A" makes the VM forward udp 127.0.0.1:5353 → guest 53 as well (its saved settings hold that forward): while it runs, programs on this machine that connect to that port reach its guest.',
    ]);
    const tree = fs.readFileSync(engine.layout.bundle(vm.id).file('snapshots.json'), 'utf8');
    expect(tree).not.toMatch(/vmlinuz-evil|\/dev\/sda|"shares"|"extraArgs"|\/tmp\/m/);
    const r = await engine.services.snapshots.revert('crafted', 'A');
    expect(r.name).toBe('A');
    const c = configOf(vm.id);
    expect(c.kernel).toBeNull();
    expect(c.cdroms).toEqual([{ id: 'cd0', path: null }]);
    expect(c.shares).toEqual([]);
    expect(c.extraArgs).toEqual([]);
  }, 60_000);
});

describe('import of a crafted file: refused with a sentence, nothing left', () => {
  it('a disk outside the export, in the config or in a snapshot\'s settings; a suspended VM; a snapshot file name outside the folder; a record file of the VM as an image; a qcow2 with an external data file; control or direction characters in names', async () => {
    const src = await exported('src');
    const tail = 'Nothing was imported; export the VM again or use another copy of the file.';
    const disk = craft(src, 'disk', { config: (c) => ((c.disks as Json[])[0]!.source = { path: '/dev/sda' }) });
    expect(await refused(disk)).toBe(`${disk} cannot be imported: its VM uses files outside its folder. ${tail}`);

    const snapDisk = craft(src, 'snapdisk', { tree: (tr) => (((tr.snapshots[0]!.settings as Json).disks as Json[])[0]!.source = { path: '/home/me/.ssh/id_rsa' }) });
    expect(await refused(snapDisk)).toBe(
      `${snapDisk} cannot be imported: the saved settings of snapshot "A" cannot be used: they name /home/me/.ssh/id_rsa for disk disk0, a file outside the VM's folder that it does not use now, and a revert attaches no such file. ${tail}`,
    );

    const suspended = craft(src, 'suspended', {
      config: (c) => (c.suspended = { file: 'suspend.state', savedAt: new Date().toISOString(), argvSha256: 'a'.repeat(64), sizeBytes: 1 }),
    });
    expect(await refused(suspended)).toBe(`${suspended} cannot be imported: its VM is suspended, and an export never holds a saved state (it was not written by Vivarium). ${tail}`);

    const thumb = craft(src, 'thumb', { tree: (tr) => (tr.snapshots[0]!.thumbnail = '../../../etc/passwd') });
    expect(await refused(thumb)).toBe(`${thumb} cannot be imported: its snapshots.json names ../../../etc/passwd as the thumbnail of snapshot "A", which is not a thumbnail's name. ${tail}`);
    // (Deleting the snapshot deletes its thumbnail: never the VM's disk.)
    const thumbDisk = craft(src, 'thumbdisk', { tree: (tr) => (tr.snapshots[0]!.thumbnail = 'disk0.qcow2') });
    expect(await refused(thumbDisk)).toMatch(/names disk0\.qcow2 as the thumbnail of snapshot "A", which is not a thumbnail's name\./);
    const image = craft(src, 'image', { tree: (tr) => (tr.snapshots[0]!.images = ['../disk0.qcow2']) });
    expect(await refused(image)).toMatch(/its snapshots\.json names \.\.\/disk0\.qcow2 for snapshot "A", which is not a file of a VM's folder\./);

    // Its own config.json (or snapshots.json) as a writable disk would be the guest's to rewrite,
    // extra QEMU arguments and host paths included.
    const recordDisk = craft(src, 'recorddisk', {
      config: (c) => (c.disks as Json[]).push({ id: 'disk1', role: 'data', bus: 'virtio', source: { bundle: 'config.json' }, format: 'raw', readOnly: false, backing: [] }),
    });
    expect(await refused(recordDisk)).toBe(`${recordDisk} cannot be imported: its VM uses config.json, a file Vivarium keeps its own records in, as an image of disk disk1. ${tail}`);
    const recordInSnap = craft(src, 'recordsnap', {
      tree: (tr) => ((tr.snapshots[0]!.settings as Json).disks as Json[]).push({ id: 'disk1', role: 'data', bus: 'virtio', source: { bundle: 'snapshots.json' }, format: 'raw', readOnly: false, backing: [] }),
    });
    expect(await refused(recordInSnap)).toBe(
      `${recordInSnap} cannot be imported: the saved settings of snapshot "A" cannot be used: the VM they describe uses snapshots.json, a file Vivarium keeps its own records in, as an image of disk disk1. ${tail}`,
    );
    const varsDisk = craft(src, 'varsdisk', {
      config: (c) => (c.disks as Json[]).push({ id: 'disk1', role: 'data', bus: 'virtio', source: { bundle: 'efivars.qcow2' }, format: 'qcow2', readOnly: false, backing: [] }),
    });
    expect(await refused(varsDisk)).toBe(`${varsDisk} cannot be imported: its VM uses efivars.qcow2, its UEFI variables, as an image of disk disk1. ${tail}`);
    // Text that reaches terminals and lists: control or direction characters are not taken.
    const escName = craft(src, 'escname', { tree: (tr) => (tr.snapshots[0]!.name = 'A\u001b[2J') });
    expect(await refused(escName)).toMatch(/its snapshots\.json names a snapshot "A\?\[2J", which is not a snapshot name \(a snapshot name must not contain control characters\)\./);
    const escDesc = craft(src, 'escdesc', { tree: (tr) => (tr.snapshots[0]!.description = 'line one\nline two\u001b]0;owned\u0007') });
    expect(await refused(escDesc)).toMatch(/gives snapshot "A" a description with control characters\./);
    const spoof = craft(src, 'spoof', { config: (c) => (c.name = 'src\u202e') });
    const named = await failure(engine.services.snapshots.importVm(spoof, {}));
    expect(named).toMatchObject({ code: 'invalid-argument', field: 'name' });
    expect(named.message).toMatch(new RegExp(`^The VM in ${spoof} is named "src\\?", which a new VM may not be \\(name must not contain invisible or text-direction characters .*\\)\\. Import it under another name\\.$`));
    const underOther = await engine.services.snapshots.importVm(spoof, { name: 'plain' });
    expect(underOther.name).toBe('plain');
    await engine.services.vms.delete('plain', {});
    const host = craft(src, 'host', {
      config: (c) => (c.cloudInit = { user: 'dev', hostname: 'x\u001b[31m', identityFile: null, knownHostsFile: '/k', seed: 'seed.iso', passwordSet: false }),
    });
    expect(await refused(host)).toMatch(/its VM's cloud-init host name "x\?\[31m" is not a host name\./);

    // A qcow2 whose header keeps its data in another file: QEMU would open that file for the guest.
    const secret = path.join(t.home, 'secret.raw');
    fs.writeFileSync(secret, Buffer.alloc(MiB, 0x5e));
    const withDataFile = (dir: string, name: string) => {
      fs.rmSync(path.join(dir, name), { force: true });
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${secret},data_file_raw=on`, path.join(dir, name), '1M']);
    };
    const dataDisk = craft(src, 'datafile', { files: (dir) => (withDataFile(dir, 'disk0.qcow2'), []) });
    expect(await refused(dataDisk)).toBe(`${dataDisk} cannot be imported: disk0.qcow2 keeps its data in another file, ${secret}, outside the export (Vivarium never opens such a file). ${tail}`);
    const dataInSnap = craft(src, 'datasnap', {
      tree: (tr) => ((tr.snapshots[0]!.settings as Json).disks as Json[]).push({ id: 'disk1', role: 'data', bus: 'virtio', source: { bundle: 'disk1.qcow2' }, format: 'qcow2', readOnly: false, backing: [] }),
      files: (dir) => (withDataFile(dir, 'disk1.qcow2'), ['disk1.qcow2']),
    });
    expect(await refused(dataInSnap)).toBe(`${dataInSnap} cannot be imported: disk1.qcow2 keeps its data in another file, ${secret}, outside the export (Vivarium never opens such a file). ${tail}`);

    const recordVars = craft(src, 'recordvars', { config: (c) => (c.uefiVars = 'vivarium.log') });
    expect(await refused(recordVars)).toMatch(/its VM uses vivarium\.log, a file Vivarium keeps its own records in, as its UEFI variables\./);

    const badTree = craft(src, 'badtree', { tree: (tr) => ((tr as unknown as Json).version = 9) });
    expect(await refused(badTree)).toMatch(new RegExp(`^${badTree} cannot be imported: its snapshots\\.json is not a snapshot tree \\(version: `));
    expect((await engine.manager.list()).map((v) => v.name)).toEqual(['src']);
  }, 60_000);
});

describe('the plain round trip', () => {
  it('a UEFI VM keeps its UEFI variables (efivars.qcow2 is its own file, not a record file)', async () => {
    await engine.manager.create({ name: 'efi', accel: 'tcg', cpus: 1, memoryMiB: 128, diskSizeBytes: 16 * MiB, firmware: 'uefi', net: 'none', display: 'none' });
    await engine.services.snapshots.create('efi', { name: 'A' });
    const file = path.join(t.home, 'efi.vivarium');
    await engine.services.snapshots.exportVm('efi', file);
    const copy = await engine.services.snapshots.importVm(file, { name: 'efi copy' });
    expect(copy.notices ?? []).toEqual([]);
    expect(configOf(copy.id)).toMatchObject({ firmware: 'uefi', uefiVars: 'efivars.qcow2' });
    expect(fs.existsSync(engine.layout.bundle(copy.id).file('efivars.qcow2'))).toBe(true);
  }, 60_000);

  it('keeps a kernel a VM here uses and the imported VM boots; imported after the source is gone, the kernel is dropped with a notice', async () => {
    const g = testGuest();
    await engine.manager.create({ name: 'src', accel: 'tcg', cpus: 1, memoryMiB: 128, diskSizeBytes: 16 * MiB, kernel: g.kernel, initrd: g.initrd, append: g.append, net: 'none', display: 'none' });
    await engine.services.snapshots.create('src', { name: 'A' });
    const file = path.join(t.home, 'src.vivarium');
    await engine.services.snapshots.exportVm('src', file);
    const copy = await engine.services.snapshots.importVm(file, { name: 'copy' });
    expect(copy.notices ?? []).toEqual([]);
    expect(configOf(copy.id).kernel).toEqual({ path: g.kernel, initrd: g.initrd, append: g.append });
    const started = await engine.manager.start('copy', { waitSerial: g.readyMarker, timeoutSec: 120 });
    expect(started.state).toBe('running');
    await engine.manager.stop('copy', { force: true });

    await engine.services.vms.delete('src', {});
    await engine.services.vms.delete('copy', {});
    const moved = await engine.services.snapshots.importVm(file, {});
    expect(moved.notices).toEqual([
      `The kernel ${g.kernel} and the initrd ${g.initrd} of the exported VM are not files a VM here already uses that way, nor downloads in Vivarium's media folder, so the imported VM has no kernel; set one in its settings if you trust the file.`,
      `The kernel ${g.kernel} and the initrd ${g.initrd} of snapshot "A" are not files a VM here already uses that way, nor downloads in Vivarium's media folder, so a revert to snapshot "A" leaves the VM without a kernel; set one in its settings if you trust the file.`,
    ]);
    expect(configOf(moved.id).kernel).toBeNull();
  }, 240_000);
});
