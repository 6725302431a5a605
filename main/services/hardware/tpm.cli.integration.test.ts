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
});
