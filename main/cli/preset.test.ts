/**
 * `vivarium create NAME --preset OS` (issue 9's stable CLI) through the real CLI process: the
 * preset's hardware (main/common/models/presets.ts, the table the New VM wizard uses too) shows in
 * the QEMU command line and the saved VM, and flags given as well win over it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../test-support/cli';
import { makeTestHome, type TestHome } from '../test-support/home';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(() => t.cleanup());

const cli = (...args: string[]) => runCli(args, { env: t.env, timeoutMs: 60_000 });

describe('create --preset', () => {
  it('windows11 gives UEFI with Secure Boot, a TPM and a SATA system disk', async () => {
    const r = await cli('create', 'win', '--preset', 'windows11', '--accel', 'tcg', '--dry-run', '--json');
    expect(r.code).toBe(0);
    const argv = (JSON.parse(r.stdout) as { argv: string[] }).argv.join(' ');
    expect(argv).toMatch(/pflash0=fw-code,pflash1=fw-vars/); // UEFI
    expect(argv).toContain('smm=on'); // Secure Boot needs SMM…
    expect(argv).toContain('property=secure,value=on'); // …and the secure flash
    expect(argv).toContain('tpm-tis,tpmdev=tpm0');
    expect(argv).toMatch(/ide-hd,id=sda,bus=ide\.0,drive=disk0/); // SATA
    expect(argv).toMatch(/ e1000e,id=nic0,netdev=net0/); // a network card the installer has a driver for
    expect(argv).not.toContain('virtio-net-pci');
    expect(r.stderr).toContain("warning: Windows 11's installer has no virtio drivers: its system disk is SATA and its network card an Intel e1000e, which it has drivers for.");
  });

  it('an explicit --firmware bios wins, and says Secure Boot is off', async () => {
    const r = await cli('create', 'win', '--preset', 'windows11', '--firmware', 'bios', '--accel', 'tcg', '--dry-run', '--json');
    expect(r.code).toBe(0);
    const argv = (JSON.parse(r.stdout) as { argv: string[] }).argv.join(' ');
    expect(argv).not.toContain('pflash');
    expect(argv).toContain('smm=off');
    expect(argv).toContain('tpm-tis'); // the rest of the preset stays
    expect(r.stderr).toContain('The Windows 11 preset turns Secure Boot on, but the firmware chosen is BIOS, which has none: Secure Boot is off.');
    // --nic wins over the preset's card too.
    const nic = await cli('create', 'win', '--preset', 'windows11', '--nic', 'virtio', '--accel', 'tcg', '--dry-run', '--json');
    expect((JSON.parse(nic.stdout) as { argv: string[] }).argv.join(' ')).toMatch(/ virtio-net-pci,id=nic0/);
    // Asking for Secure Boot explicitly with BIOS is still refused.
    const both = await cli('create', 'win', '--preset', 'windows11', '--firmware', 'bios', '--secure-boot', '--accel', 'tcg', '--dry-run');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/Secure Boot needs UEFI firmware/);
  });

  it('a created VM keeps the preset, except what the flags say', async () => {
    const r = await cli('create', 'deb', '--preset', 'debian', '--cpus', '1', '--disk-size', '1G', '--accel', 'tcg');
    expect(r.code).toBe(0);
    const vm = JSON.parse((await cli('show', 'deb', '--json')).stdout) as { config: { os: string; cpus: number; memoryMiB: number; firmware: string; tpm: boolean; disks: { bus: string }[] } };
    expect(vm.config).toMatchObject({ os: 'Debian', cpus: 1, memoryMiB: 2048, firmware: 'bios', tpm: false });
    expect(vm.config.disks.map((d) => d.bus)).toEqual(['virtio']);
    expect((JSON.parse((await cli('show', 'deb', '--json')).stdout) as { argv: string[] }).argv.join(' ')).toMatch(/ virtio-net-pci,id=nic0/);
    const disks = JSON.parse((await cli('disk', 'list', 'deb', '--json')).stdout) as { virtualSizeBytes: number }[];
    expect(disks[0]!.virtualSizeBytes).toBe(1024 ** 3); // --disk-size won over the preset's 20 GiB
  });

  it('a windows11 VM starts in real QEMU: Secure Boot firmware, swtpm and the e1000e card', async () => {
    expect((await cli('create', 'win', '--preset', 'windows11', '--memory', '256M', '--disk-size', '1M', '--display', 'none', '--accel', 'tcg')).code).toBe(0);
    const start = await runCli(['start', 'win'], { env: t.env, timeoutMs: 90_000 });
    expect(start.code).toBe(0);
    const vm = JSON.parse((await cli('show', 'win', '--json')).stdout) as { state: string; argv: string[] };
    expect(vm.state).toBe('running');
    expect(vm.argv).toEqual(expect.arrayContaining([expect.stringMatching(/^e1000e,id=nic0,netdev=net0,mac=/), 'tpm-tis,tpmdev=tpm0']));
    expect((await cli('stop', 'win', '--force')).code).toBe(0);
  });

  it('refuses an unknown preset and documents them in help', async () => {
    const r = await cli('create', 'x', '--preset', 'beos', '--dry-run');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--preset must be one of debian, ubuntu, fedora, alpine, arch, linux, windows11, windows10, other, not "beos"');
    const help = await cli('help', 'create');
    expect(help.stdout).toMatch(/--preset debian\|ubuntu\|fedora\|alpine\|arch\|windows11\|windows10\|linux\|other/);
  });
});
