/**
 * `vivarium edit` on settings that need another (tester-9 #27), through the real CLI process: Secure
 * Boot on a BIOS VM switches it to UEFI as `create --secure-boot` does, saying so; `net` in the boot
 * order of a VM without a network is kept but noticed. No QEMU is started.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../test-support/cli';
import { makeTestHome, type TestHome } from '../test-support/home';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(() => t.cleanup());

const cli = (...args: string[]) => runCli(args, { env: t.env, timeoutMs: 60_000 });
const config = async (name: string) => (JSON.parse((await cli('show', name, '--json')).stdout) as { id: string; config: { firmware: string; secureBoot: boolean; uefiVars: string | null; bootOrder: string[] } });

describe('edit notices', () => {
  it('--secure-boot on a BIOS VM implies UEFI, with a notice, and makes its UEFI settings store', async () => {
    expect((await cli('create', 'sb', '--accel', 'tcg', '--memory', '128M', '--disk-size', '1M', '--net', 'none', '--display', 'none')).code).toBe(0);
    expect((await config('sb')).config.firmware).toBe('bios');
    const r = await cli('edit', 'sb', '--secure-boot');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('warning: Secure Boot needs UEFI firmware, so the firmware was switched from BIOS to UEFI (an operating system installed under BIOS may not boot under UEFI).\n');
    const vm = await config('sb');
    expect(vm.config).toMatchObject({ firmware: 'uefi', secureBoot: true });
    expect(fs.existsSync(path.join(t.home, 'vms', vm.id, vm.config.uefiVars!))).toBe(true);
    // Asking for BIOS and Secure Boot together is still refused.
    const both = await cli('edit', 'sb', '--firmware', 'bios', '--secure-boot');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/Secure Boot needs UEFI firmware/);
  });

  it('--boot-order with net on a VM without a network is kept, with a notice', async () => {
    expect((await cli('create', 'pxe', '--accel', 'tcg', '--memory', '128M', '--disk-size', '1M', '--net', 'none', '--display', 'none')).code).toBe(0);
    const r = await cli('edit', 'pxe', '--boot-order', 'net,disk');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('warning: The boot order has net, but the VM has no network, so it never boots from the network.\n');
    expect((await config('pxe')).config.bootOrder).toEqual(['net', 'disk']);
    // With a network, no notice.
    const ok = await cli('edit', 'pxe', '--net', 'user');
    expect(ok.stderr).toBe('');
  });
});
