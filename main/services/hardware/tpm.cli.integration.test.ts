/**
 * TPM 2.0 against real QEMU and swtpm (TCG), through the real `vivarium` command (run
 * `npm run build:main` first): `create --tpm` starts a per-VM swtpm before QEMU, the guest (the
 * busybox test guest; Debian's cloud kernel has tpm_tis built in) finds a TPM 2.0 at
 * /sys/class/tpm/tpm0, the TPM's state stays in the VM's folder (0700), and stopping the VM ends
 * swtpm too: no process is left.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCliJson } from '../../test-support/cli';
import { testGuest } from '../../test-support/guest';
import { makeTestHome, type TestHome } from '../../test-support/home';
import { isAlive, processesMentioning } from '../../test-support/qemu-procs';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
});

const cli = (args: string[], timeoutMs?: number) => runCli(args, { env: t.env, timeoutMs });

/** Types `cmd` on the guest's serial console and returns what it printed between two markers. */
function runInGuest(serialSocket: string, cmd: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const s = net.createConnection({ path: serialSocket });
    const timer = setTimeout(() => (s.destroy(), reject(new Error(`no answer to ${cmd}; output:\n${text.slice(-1000)}`))), timeoutMs);
    s.on('connect', () => s.write(`echo TPMT-BEGIN; ${cmd}; echo TPMT-END\n`));
    s.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      const m = /\nTPMT-BEGIN\r?\n([\s\S]*?)TPMT-END/.exec(text);
      if (m) {
        clearTimeout(timer);
        s.destroy();
        resolve(m[1]!.replace(/\r/g, ''));
      }
    });
    s.on('error', reject);
  });
}

describe('TPM 2.0 (swtpm as a side process)', () => {
  it('the guest sees a TPM 2.0; swtpm runs beside QEMU with its state in the VM folder and ends with it', async () => {
    const g = testGuest();
    const created = await cli(['create', 'tpm', '--accel', 'tcg', '--memory', '256M', '--disk-size', '0', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, '--net', 'none', '--display', 'none', '--tpm', '--json']);
    expect(created.stderr).toBe('');
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    const stateDir = path.join(t.home, 'vms', id, 'tpm');

    const start = await cli(['start', 'tpm', '--wait-serial', g.readyMarker, '--timeout', '120'], 150_000);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);

    const swtpm = processesMentioning(stateDir).filter((p) => p.argv[0]?.endsWith('swtpm'));
    expect(swtpm).toHaveLength(1);
    const argv = (await runCliJson<{ argv: string[] }>(['show', 'tpm', '--json'], { env: t.env })).argv;
    expect(argv).toContain('tpm-tis,tpmdev=tpm0');
    expect(fs.statSync(stateDir).mode & 0o777).toBe(0o700);

    const serial = argv.map((a) => /^socket,id=ser0,path=([^,]+)/.exec(a)?.[1]).find(Boolean)!;
    const seen = await runInGuest(serial, 'ls /sys/class/tpm; cat /sys/class/tpm/tpm0/tpm_version_major');
    expect(seen.trim().split(/\s+/)).toEqual(['tpm0', '2']);
    // swtpm wrote the TPM's persistent state (endorsement seeds etc.) into the VM's folder.
    expect(fs.readdirSync(stateDir)).toContain('tpm2-00.permall');

    expect((await cli(['stop', 'tpm', '--force'])).code).toBe(0);
    const deadline = Date.now() + 10_000;
    while (swtpm.some((p) => isAlive(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(swtpm.filter((p) => isAlive(p.pid))).toEqual([]);
    expect(processesMentioning(stateDir)).toEqual([]);
  });

  it('OVMF with Secure Boot (Microsoft keys enrolled) and a TPM: the guest kernel says Secure Boot is enabled and sees the TPM; turned off, it says disabled', async () => {
    const g = testGuest();
    const append = g.append.replace(/\bquiet\b/, '').trim();
    const created = await cli(['create', 'sb', '--accel', 'tcg', '--memory', '256M', '--disk-size', '0', '--kernel', g.kernel, '--initrd', g.initrd, '--append', append, '--net', 'none', '--display', 'none', '--secure-boot', '--tpm', '--json']);
    expect(created.stderr).toBe('');
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    const argv = (await runCliJson<{ argv: string[] }>(['show', 'sb', '--json'], { env: t.env })).argv;
    expect(argv.some((a) => a.startsWith('q35,smm=on,'))).toBe(true);
    expect(argv).toContain('driver=cfi.pflash01,property=secure,value=on');
    const serialLog = path.join(t.home, 'vms', id, 'serial.log');

    const start = await cli(['start', 'sb', '--wait-serial', g.readyMarker, '--timeout', '240'], 270_000);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    const log = fs.readFileSync(serialLog, 'utf8');
    expect(log).toContain('secureboot: Secure boot enabled');
    const serial = argv.map((a) => /^socket,id=ser0,path=([^,]+)/.exec(a)?.[1]).find(Boolean)!;
    expect((await runInGuest(serial, 'cat /sys/class/tpm/tpm0/tpm_version_major')).trim()).toBe('2');
    expect((await cli(['stop', 'sb', '--force'])).code).toBe(0);

    // The same VM with Secure Boot turned off: a fresh store from the plain build, no keys enforced.
    const off = await cli(['edit', 'sb', '--no-secure-boot']);
    expect(off.stderr).toBe('');
    const again = await cli(['start', 'sb', '--wait-serial', g.readyMarker, '--timeout', '240'], 270_000);
    expect(again.code).toBe(0);
    expect(fs.readFileSync(serialLog, 'utf8')).toContain('secureboot: Secure boot disabled');
    expect((await cli(['stop', 'sb', '--force'])).code).toBe(0);
    const deadline = Date.now() + 10_000;
    while (processesMentioning(path.join(t.home, 'vms', id, 'tpm')).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(processesMentioning(path.join(t.home, 'vms', id, 'tpm'))).toEqual([]);
  });
});
