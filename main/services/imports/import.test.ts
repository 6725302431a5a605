/**
 * Imports with the real qemu-img: images made by qemu-img from a disk with a known pattern come back
 * equal (`qemu-img compare`), an OVA built here (OVF + streamOptimized VMDK in a tar) gives its CPUs,
 * memory and disk, and unsafe images are refused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listTar } from './tar';
import { parseOvf, unitBytes } from './ovf';
import { inspectImport, runImport } from './import';
import { MediaManager } from '../media/media-service';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
let dir: string;
let raw: string;

function qemuImg(...args: string[]): void {
  execFileSync('qemu-img', args, { stdio: 'pipe' });
}

/** `qemu-img compare` exit 0: identical contents. */
function sameContents(a: string, aFmt: string, b: string, bFmt: string): { same: boolean; out: string } {
  const r = spawnSync('qemu-img', ['compare', '-f', aFmt, '-F', bFmt, a, b], { encoding: 'utf8' });
  return { same: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function ovfXml(o: { name: string; cpus: number; memoryMiB: number; href: string; compression?: string }): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope ovf:version="1.0" xml:lang="en-US" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vbox="http://www.virtualbox.org/ovf/machine">
  <References>
    <File ovf:id="file1" ovf:href="${o.href}"${o.compression ? ` ovf:compression="${o.compression}"` : ''}/>
  </References>
  <DiskSection>
    <Info>List of the virtual disks used in the package</Info>
    <Disk ovf:capacity="${SIZE}" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="${o.name}">
    <Info>A virtual machine</Info>
    <Name>${o.name}</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements for a virtual machine</Info>
      <Item>
        <rasd:Caption>${o.cpus} virtual CPU</rasd:Caption>
        <rasd:ElementName>${o.cpus} virtual CPU</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>${o.cpus}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits>
        <rasd:ElementName>${o.memoryMiB} MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>${o.memoryMiB}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>disk1</rasd:ElementName>
        <rasd:HostResource>/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-import-'));
  // A disk with a known pattern: a few regions of distinct bytes, holes (zeros) between them.
  raw = path.join(dir, 'pattern.img');
  const fd = fs.openSync(raw, 'w');
  fs.ftruncateSync(fd, SIZE);
  for (const [off, byte] of [[0, 0x11], [5 * MiB + 512, 0x5a], [31 * MiB, 0xa5], [SIZE - MiB, 0xee]] as const) {
    const buf = Buffer.alloc(MiB, byte);
    buf.write(`vivarium pattern at ${off}`, 0);
    // A zero after the text, as every real disk has in its first 64 KiB (disks/preflight.ts rule 6).
    buf[40] = 0;
    fs.writeSync(fd, buf, 0, buf.length, off);
  }
  fs.closeSync(fd);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function freshDest(name: string): string {
  const d = path.join(dir, `dest-${name}`);
  fs.mkdirSync(d);
  return d;
}

describe('disk image imports', () => {
  const cases: [string, string, string[]][] = [
    ['vmdk (monolithicSparse)', 'disk.vmdk', ['-O', 'vmdk']],
    ['vmdk (streamOptimized)', 'stream.vmdk', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']],
    ['vdi', 'disk.vdi', ['-O', 'vdi']],
    ['vhdx', 'disk.vhdx', ['-O', 'vhdx']],
    ['vhd (dynamic)', 'disk.vhd', ['-O', 'vpc', '-o', 'force_size=on']],
    ['vhd (fixed)', 'fixed.vhd', ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on']],
    ['qcow2', 'disk.qcow2', ['-O', 'qcow2']],
  ];
  for (const [label, file, args] of cases) {
    it(`${label}: converted to qcow2 with progress, equal to the original`, async () => {
      const src = path.join(dir, file);
      qemuImg('convert', '-f', 'raw', ...args, raw, src);
      const dest = freshDest(file);
      const progress: number[] = [];
      const plan = await runImport(src, { mode: 'copy', destDir: dest, onProgress: (p) => progress.push(p.fraction) });
      expect(plan.name).toBe(file.replace(/\.[^.]+$/, ''));
      expect(plan.disks).toEqual([{ path: path.join(dest, 'disk0.qcow2'), format: 'qcow2', virtualSizeBytes: SIZE, attached: false }]);
      expect(sameContents(raw, 'raw', plan.disks[0]!.path, 'qcow2')).toMatchObject({ same: true });
      expect(fs.statSync(plan.disks[0]!.path).mode & 0o777).toBe(0o600);
      expect(progress.at(-1)).toBe(1);
      expect(progress.every((p, i) => i === 0 || p >= progress[i - 1]!)).toBe(true);
    });
  }

  it('attaches qcow2 and raw in place, and refuses to attach other formats', async () => {
    const q = path.join(dir, 'attach.qcow2');
    qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, q);
    const plan = await runImport(q, { mode: 'attach', destDir: freshDest('attach') });
    expect(plan.disks).toEqual([{ path: q, format: 'qcow2', virtualSizeBytes: SIZE, attached: true }]);
    const rawPlan = await runImport(raw, { mode: 'attach', destDir: dir });
    expect(rawPlan.disks[0]).toMatchObject({ path: raw, format: 'raw', attached: true });
    const vdi = path.join(dir, 'attach.vdi');
    qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
    await expect(runImport(vdi, { mode: 'attach', destDir: dir })).rejects.toThrow(/only qcow2 and raw images can be used in place, and attach.vdi is vdi.*as a copy/);
  });

  it('refuses an image with a backing file, and leaves nothing behind', async () => {
    const base = path.join(dir, 'secret-base.qcow2');
    qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, base);
    const overlay = path.join(dir, 'overlay.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay);
    const dest = freshDest('backing');
    await expect(runImport(overlay, { mode: 'copy', destDir: dest })).rejects.toThrow(/names a backing file \(.*secret-base\.qcow2\)\. Vivarium does not follow backing files/);
    await expect(runImport(overlay, { mode: 'attach', destDir: dest })).rejects.toThrow(/backing file/);
    expect(fs.readdirSync(dest)).toEqual([]);
    // A raw-named file that is really a qcow2 with a backing file is still seen as qcow2 and refused.
    const disguised = path.join(dir, 'disguised.img');
    fs.copyFileSync(overlay, disguised);
    await expect(inspectImport(disguised)).rejects.toThrow(/backing file/);
  });

  it('refuses a multi-file VMDK whose extents live elsewhere, and files that are not images', async () => {
    const flat = path.join(dir, 'flat.vmdk');
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', raw, flat);
    await expect(inspectImport(flat)).rejects.toThrow(/monolithicFlat VMDK whose data lives in other files/);
    // An installer ISO is a CD, not a disk, whatever its name says.
    for (const name of ['installer.iso', 'installer.img']) {
      const iso = path.join(dir, name);
      const buf = Buffer.alloc(64 * 1024);
      buf.write('CD001', 0x8001, 'latin1');
      fs.writeFileSync(iso, buf);
      await expect(inspectImport(iso)).rejects.toThrow(/is an ISO 9660 image \(an installer or data CD\), not a disk to import\. Attach it as a CD instead/);
    }
    // A .img file that cannot be a raw disk meets the rule create and start apply (tester-s3 #4):
    // a size that is not whole sectors, or data without a zero byte in its first 64 KiB.
    const odd = path.join(dir, 'random.img');
    fs.writeFileSync(odd, Buffer.alloc(100_000, 7));
    await expect(inspectImport(odd)).rejects.toThrow(`${odd} is not a disk image: its size (100000 bytes) is not a whole number of 512-byte sectors.`);
    const noZero = path.join(dir, 'nozero.img');
    fs.writeFileSync(noZero, Buffer.alloc(128 * 1024, 7));
    await expect(runImport(noZero, { mode: 'attach', destDir: freshDest('nozero') })).rejects.toThrow(/looks like a text or data file, not a disk image/);
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'hello');
    await expect(inspectImport(text)).rejects.toThrow(/not a disk image Vivarium can import/);
    await expect(inspectImport('relative.qcow2')).rejects.toThrow(/absolute path/);
    // A file named as one kind but without its signature says which kind it is not (tester-9 #24).
    const fakeOva = path.join(dir, 'notreally.ova');
    fs.writeFileSync(fakeOva, 'not an appliance\n');
    await expect(inspectImport(fakeOva)).rejects.toThrow(`${fakeOva} is not an OVA appliance (not a tar archive)`);
  });

  it('a cut-short image of a known format is one sentence, without qemu-img\'s blockdev JSON (tester-9 #8)', async () => {
    const whole = path.join(dir, 'whole.vhdx');
    qemuImg('convert', '-f', 'raw', '-O', 'vhdx', raw, whole);
    const cut = path.join(dir, 'cut.vhdx');
    fs.writeFileSync(cut, fs.readFileSync(whole).subarray(0, 100_000));
    const dest = freshDest('cut');
    const err = await runImport(cut, { mode: 'copy', destDir: dest }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/^cut\.vhdx looks like a VHDX image but is damaged or incomplete \(qemu-img: [^'{}]+\)\.$/);
    expect(err?.message).not.toMatch(/json:|Could not open/);
    expect(fs.readdirSync(dest)).toEqual([]);
  });
});

describe('appliances (OVA/OVF)', () => {
  let vmdk: string;
  beforeAll(() => {
    vmdk = path.join(dir, 'app-disk1.vmdk');
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, vmdk);
  });

  function buildOva(name: string, files: Record<string, string | Buffer>): string {
    const stage = fs.mkdtempSync(path.join(dir, 'stage-'));
    for (const [n, content] of Object.entries(files)) fs.writeFileSync(path.join(stage, n), content);
    const ova = path.join(dir, name);
    // The descriptor first, as the OVF spec requires; plain ustar like VirtualBox/VMware write.
    execFileSync('tar', ['--format=ustar', '-cf', ova, '-C', stage, ...Object.keys(files)]);
    return ova;
  }

  it('an OVA gives the VM its name, CPUs, memory and disk, converted without unpacking the tar', async () => {
    const ova = buildOva('appliance.ova', {
      'appliance.ovf': ovfXml({ name: 'Test Appliance', cpus: 3, memoryMiB: 1536, href: 'app-disk1.vmdk' }),
      'app-disk1.vmdk': fs.readFileSync(vmdk),
    });
    const members = await listTar(ova);
    expect(members.map((m) => m.name)).toEqual(['appliance.ovf', 'app-disk1.vmdk']);
    expect(members[1]!.size).toBe(fs.statSync(vmdk).size);
    expect(members[1]!.offset % 512).toBe(0);

    const found = await inspectImport(ova);
    expect(found).toMatchObject({ kind: 'ova', name: 'Test Appliance', cpus: 3, memoryMiB: 1536, attachable: false });
    expect(found.disks[0]!.source).toEqual({ file: ova, format: 'vmdk', slice: { offset: members[1]!.offset, size: members[1]!.size } });

    const dest = freshDest('ova');
    const plan = await runImport(ova, { mode: 'copy', destDir: dest });
    expect(plan).toMatchObject({ name: 'Test Appliance', cpus: 3, memoryMiB: 1536 });
    expect(plan.disks).toEqual([{ path: path.join(dest, 'disk0.qcow2'), format: 'qcow2', virtualSizeBytes: SIZE, attached: false }]);
    expect(sameContents(raw, 'raw', plan.disks[0]!.path, 'qcow2')).toMatchObject({ same: true });
    // Nothing was unpacked next to the OVA or in the VM's folder.
    expect(fs.readdirSync(dest)).toEqual(['disk0.qcow2']);
    await expect(runImport(ova, { mode: 'attach', destDir: dest })).rejects.toThrow(/disks inside an OVA archive cannot be used in place/);
  });

  it('an OVA\'s manifest is checked before the copy: a damaged disk is refused, a sound one imports', async () => {
    const ovf = ovfXml({ name: 'Manifested', cpus: 1, memoryMiB: 512, href: 'app-disk1.vmdk' });
    const disk = fs.readFileSync(vmdk);
    const sha = (b: string | Buffer, a = 'sha256') => createHash(a).update(b).digest('hex');
    const good = buildOva('manifest-good.ova', {
      'm.ovf': ovf,
      'm.mf': `SHA256(m.ovf)= ${sha(ovf)}\nSHA1(app-disk1.vmdk)= ${sha(disk, 'sha1')}\n`,
      'app-disk1.vmdk': disk,
    });
    expect((await inspectImport(good)).manifest.map((c) => [c.member, c.algorithm])).toEqual([
      ['m.ovf', 'sha256'],
      ['app-disk1.vmdk', 'sha1'],
    ]);
    const plan = await runImport(good, { mode: 'copy', destDir: freshDest('manifest-good') });
    expect(sameContents(raw, 'raw', plan.disks[0]!.path, 'qcow2')).toMatchObject({ same: true });

    const damaged = buildOva('manifest-bad.ova', {
      'm.ovf': ovf,
      'm.mf': `SHA256(m.ovf)= ${sha(ovf)}\nSHA256(app-disk1.vmdk)= ${'0'.repeat(64)}\n`,
      'app-disk1.vmdk': disk,
    });
    const dest = freshDest('manifest-bad');
    await expect(runImport(damaged, { mode: 'copy', destDir: dest })).rejects.toThrow(/manifest-bad\.ova is damaged: app-disk1\.vmdk does not match the SHA256 digest in its manifest/);
    expect(fs.readdirSync(dest)).toEqual([]);
  });

  it('an OVA with a gzip-compressed disk member is decompressed, then converted', async () => {
    const ova = buildOva('gz.ova', {
      'gz.ovf': ovfXml({ name: 'Gz', cpus: 1, memoryMiB: 512, href: 'app-disk1.vmdk', compression: 'gzip' }),
      'app-disk1.vmdk': gzipSync(fs.readFileSync(vmdk)),
    });
    const dest = freshDest('gz');
    const plan = await runImport(ova, { mode: 'copy', destDir: dest });
    expect(sameContents(raw, 'raw', plan.disks[0]!.path, 'qcow2')).toMatchObject({ same: true });
    expect(fs.readdirSync(dest)).toEqual(['disk0.qcow2']);
  });

  it('an OVF next to its disk imports; a descriptor naming a file outside itself is refused', async () => {
    const ovfDir = fs.mkdtempSync(path.join(dir, 'ovf-'));
    fs.copyFileSync(vmdk, path.join(ovfDir, 'app-disk1.vmdk'));
    fs.writeFileSync(path.join(ovfDir, 'vm.ovf'), ovfXml({ name: 'From OVF', cpus: 2, memoryMiB: 2048, href: 'app-disk1.vmdk' }));
    const plan = await runImport(path.join(ovfDir, 'vm.ovf'), { mode: 'copy', destDir: freshDest('ovf') });
    expect(plan).toMatchObject({ name: 'From OVF', cpus: 2, memoryMiB: 2048 });
    expect(sameContents(raw, 'raw', plan.disks[0]!.path, 'qcow2')).toMatchObject({ same: true });

    fs.writeFileSync(path.join(ovfDir, 'evil.ovf'), ovfXml({ name: 'Evil', cpus: 1, memoryMiB: 512, href: '../../etc/passwd' }));
    await expect(inspectImport(path.join(ovfDir, 'evil.ovf'))).rejects.toThrow(/names a disk file "..\/..\/etc\/passwd" outside itself/);
    const evilOva = buildOva('evil.ova', { 'evil.ovf': ovfXml({ name: 'Evil', cpus: 1, memoryMiB: 512, href: '/etc/passwd' }) });
    await expect(inspectImport(evilOva)).rejects.toThrow(/outside itself/);
  });

  it('the media service tells a front end what an appliance holds, and refuses unsafe images as invalid input', async () => {
    const ova = buildOva('summary.ova', {
      'summary.ovf': ovfXml({ name: 'Summary', cpus: 2, memoryMiB: 1024, href: 'app-disk1.vmdk' }),
      'app-disk1.vmdk': fs.readFileSync(vmdk),
    });
    const m = new MediaManager({ dir: path.join(dir, 'media') });
    try {
      expect(await m.inspectImport(ova)).toEqual({
        path: ova,
        kind: 'ova',
        name: 'Summary',
        cpus: 2,
        memoryMiB: 1024,
        firmware: null,
        disks: [{ label: 'app-disk1.vmdk', format: 'vmdk', virtualSizeBytes: SIZE }],
        attachable: false,
      });
      const overlay = path.join(dir, 'summary-overlay.qcow2');
      qemuImg('create', '-f', 'qcow2', '-b', raw, '-F', 'raw', overlay);
      await expect(m.inspectImport(overlay)).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringMatching(/names a backing file/) });
    } finally {
      await m.dispose();
    }
  });

  it('reads OVF units and exporters\' variants', () => {
    expect(unitBytes('byte * 2^20', 1)).toBe(MiB);
    expect(unitBytes('byte*2^30', 1)).toBe(1024 * MiB);
    expect(unitBytes('MegaBytes', 1)).toBe(MiB);
    expect(unitBytes(null, MiB)).toBe(MiB);
    const vmware = ovfXml({ name: 'x', cpus: 4, memoryMiB: 4096, href: 'd.vmdk' })
      .replace('<rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits>', '<rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits>')
      .replace('<rasd:VirtualQuantity>4096</rasd:VirtualQuantity>', '<rasd:VirtualQuantity>4</rasd:VirtualQuantity>')
      .replace('</VirtualHardwareSection>', '<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi" xmlns:vmw="http://www.vmware.com/schema/ovf"/></VirtualHardwareSection>');
    expect(parseOvf(vmware)).toMatchObject({ cpus: 4, memoryMiB: 4096, firmware: 'efi', disks: [{ diskId: 'vmdisk1', href: 'd.vmdk', capacityBytes: SIZE }] });
    expect(() => parseOvf('<html><body/></html>')).toThrow(/no Envelope/);
  });
});
