/**
 * `vivarium create NAME --import FILE [--copy|--attach]` through the CLI's entry point with a hosted
 * engine and the real qemu-img: an OVA gives the VM its CPUs, memory and disk (converted into the
 * bundle, equal to the source), a qcow2 is attached in place, unsafe images are refused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { main } from './index';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
let dir: string;
let raw: string;
let t: TestHome;

function qemuImg(...args: string[]): void {
  execFileSync('qemu-img', args, { stdio: 'pipe' });
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vivarium-cli-import-'));
  raw = path.join(dir, 'pattern.img');
  const fd = fs.openSync(raw, 'w');
  fs.ftruncateSync(fd, SIZE);
  for (const [off, byte] of [[0, 0x42], [17 * MiB, 0x99]] as const) fs.writeSync(fd, Buffer.alloc(MiB, byte), 0, MiB, off);
  fs.closeSync(fd);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  t = makeTestHome();
});
afterEach(() => t.cleanup());

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

interface Shown {
  path: string;
  config: { cpus: number; memoryMiB: number; disks: { id: string; role: string; source: { bundle?: string; path?: string }; format: string }[] };
}

describe('vivarium create --import', () => {
  it('an OVA: CPUs and memory from its OVF, its disk converted into the VM\'s folder', async () => {
    const stage = fs.mkdtempSync(path.join(dir, 'ova-'));
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, path.join(stage, 'disk1.vmdk'));
    fs.writeFileSync(
      path.join(stage, 'app.ovf'),
      `<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:id="f1" ovf:href="disk1.vmdk"/></References>
  <DiskSection><Info>disks</Info><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="${SIZE}"/></DiskSection>
  <VirtualSystem ovf:id="appliance"><Info>vm</Info><Name>appliance</Name>
    <VirtualHardwareSection><Info>hw</Info>
      <Item><rasd:ElementName>cpu</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>3</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>mem</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>768</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>disk</rasd:ElementName><rasd:HostResource>ovf:/disk/d1</rasd:HostResource><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`,
    );
    const ova = path.join(dir, 'app.ova');
    execFileSync('tar', ['--format=ustar', '-cf', ova, '-C', stage, 'app.ovf', 'disk1.vmdk']);

    const created = await cli(['create', 'from-ova', '--import', ova, '--accel', 'tcg', '--display', 'none', '--json']);
    expect(created.code).toBe(0);
    // The conversion's progress on stderr, ending at 100%.
    // (A host with fewer cores than the OVF's 3 CPUs also gets the overcommit warning after it.)
    expect(created.stderr).toMatch(/^(Importing app\.ova: \d+%\n)*Importing app\.ova: 100%\n(warning: \d+ CPUs is more than this host's \d+;.*\n)?$/);
    const shown = JSON.parse((await cli(['show', 'from-ova', '--json'])).stdout) as Shown;
    expect(shown.config).toMatchObject({ cpus: 3, memoryMiB: 768 });
    expect(shown.config.disks).toHaveLength(1);
    const disk = path.join(shown.path, shown.config.disks[0]!.source.bundle!);
    expect(shown.config.disks[0]!.format).toBe('qcow2');
    expect(spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, disk]).status).toBe(0);
    // Settings given on the command line win over the appliance's.
    expect((await cli(['create', 'mine', '--import', ova, '--cpus', '1', '--accel', 'tcg', '--display', 'none'])).code).toBe(0);
    expect((JSON.parse((await cli(['show', 'mine', '--json'])).stdout) as Shown).config).toMatchObject({ cpus: 1, memoryMiB: 768 });
  });

  it('an appliance with two disks: the first is the system disk, the second a data disk, both converted', async () => {
    const stage = fs.mkdtempSync(path.join(dir, 'two-'));
    qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, path.join(stage, 'a.vmdk'));
    qemuImg('create', '-f', 'vmdk', path.join(stage, 'b.vmdk'), '8M');
    const item = (id: number, type: number, extra: string) => `<Item><rasd:ElementName>i${id}</rasd:ElementName><rasd:InstanceID>${id}</rasd:InstanceID><rasd:ResourceType>${type}</rasd:ResourceType>${extra}</Item>`;
    fs.writeFileSync(
      path.join(stage, 'two.ovf'),
      `<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:id="f1" ovf:href="a.vmdk"/><File ovf:id="f2" ovf:href="b.vmdk"/></References>
  <DiskSection><Info>disks</Info><Disk ovf:diskId="d1" ovf:fileRef="f1"/><Disk ovf:diskId="d2" ovf:fileRef="f2"/></DiskSection>
  <VirtualSystem ovf:id="two"><Info>vm</Info>
    <VirtualHardwareSection><Info>hw</Info>
      ${item(1, 3, '<rasd:VirtualQuantity>1</rasd:VirtualQuantity>')}
      ${item(2, 4, '<rasd:VirtualQuantity>512</rasd:VirtualQuantity>')}
      ${item(3, 17, '<rasd:HostResource>ovf:/disk/d1</rasd:HostResource>')}
      ${item(4, 17, '<rasd:HostResource>ovf:/disk/d2</rasd:HostResource>')}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`,
    );
    const ova = path.join(dir, 'two.ova');
    execFileSync('tar', ['--format=ustar', '-cf', ova, '-C', stage, 'two.ovf', 'a.vmdk', 'b.vmdk']);
    const created = await cli(['create', 'two-disks', '--import', ova, '--accel', 'tcg', '--display', 'none']);
    expect(created.stderr).toMatch(/Importing two\.ova \(disk 2 of 2\): 100%/);
    expect(created.code).toBe(0);
    const shown = JSON.parse((await cli(['show', 'two-disks', '--json'])).stdout) as Shown;
    expect(shown.config.disks.map((d) => [d.id, d.role, d.source.bundle, d.format])).toEqual([
      ['disk0', 'system', 'disk0.qcow2', 'qcow2'],
      ['disk1', 'data', 'disk1.qcow2', 'qcow2'],
    ]);
    expect(spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, path.join(shown.path, 'disk0.qcow2')]).status).toBe(0);
    expect(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', path.join(shown.path, 'disk1.qcow2')], { encoding: 'utf8' }))['virtual-size']).toBe(8 * MiB);
    // The QEMU command line carries both.
    expect((await cli(['show', 'two-disks'])).stdout).toMatch(/disk1\.qcow2/);
  });

  it('--attach uses a qcow2 in place; a vdi cannot be attached; a backing file is refused', async () => {
    const q = path.join(dir, 'inplace.qcow2');
    qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, q);
    expect((await cli(['create', 'attached', '--import', q, '--attach', '--accel', 'tcg', '--display', 'none'])).code).toBe(0);
    const shown = JSON.parse((await cli(['show', 'attached', '--json'])).stdout) as Shown;
    expect(shown.config.disks).toEqual([expect.objectContaining({ source: { path: q }, format: 'qcow2' })]);

    const vdi = path.join(dir, 'x.vdi');
    qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
    const refused = await cli(['create', 'vdi-attached', '--import', vdi, '--attach', '--accel', 'tcg']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/only qcow2 and raw images can be used in place\. Import it as a copy/);

    const overlay = path.join(dir, 'overlay.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', q, '-F', 'qcow2', overlay);
    const backing = await cli(['create', 'overlay', '--import', overlay, '--accel', 'tcg']);
    expect(backing.code).not.toBe(0);
    expect(backing.stderr).toMatch(/names a backing file .*does not follow backing files/);
    expect(JSON.parse((await cli(['list', '--json'])).stdout).map((v: { name: string }) => v.name).sort()).toEqual(['attached']);

    const usage = await cli(['create', 'both', '--import', q, '--disk-size', '8G']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--import brings its own disks; leave out --disk-size');
    expect((await cli(['create', 'x', '--attach'])).code).toBe(2);
  });
});
