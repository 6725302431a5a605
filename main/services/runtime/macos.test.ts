/**
 * macOS code paths, with macOS behaviour injected (these machines run Linux):
 *  - process identity without /proc: the pid in a pidfile is trusted only when `ps` shows QEMU's
 *    `-name guest=<uuid>` for that VM (a reused pid must never get the stop ladder's SIGKILL);
 *  - unix socket paths: 104 bytes on macOS (103 usable), 108 on Linux; a runtime folder whose
 *    sockets would not fit is refused with what to change.
 * On Linux the same identity check reads /proc for real (this process, and a real child).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, VivariumError } from '../../common/errors';
import { Layout, assertSocketPathFits, maxSocketPathBytes } from '../paths';
import { imageLockingForced } from '../qemu/argv';
import { explainQemuError } from '../qemu/process';
import { argsNameGuest, isQemuProcessFor, processArgs, realIdentityProbe } from './process-identity';
import type { IdentityProbe } from './process-identity';

const ID = '0b6c9f5e-3c1d-4e8f-9a2b-7c6d5e4f3a21';
const OTHER = '9f0e1d2c-3b4a-4958-8776-655443322110';

/** A macOS host: no /proc, and `ps -ww -o command= -p PID` as macOS prints it. */
function macProbe(table: Record<number, string>): IdentityProbe & { asked: number[] } {
  const asked: number[] = [];
  return {
    platform: 'darwin',
    asked,
    readProcCmdline: () => {
      throw new Error('macOS has no /proc');
    },
    psCommand: (pid) => {
      asked.push(pid);
      return pid in table ? `${table[pid]}\n` : null;
    },
  };
}

const QEMU_ON_MAC = `/opt/homebrew/bin/qemu-system-aarch64 -name guest=${ID} -uuid ${ID} -nodefaults -accel hvf -machine virt,highmem=on`;

describe('process identity without /proc (macOS)', () => {
  it('accepts the pid only when ps shows this VM’s QEMU', () => {
    const probe = macProbe({ 501: QEMU_ON_MAC, 502: '/Applications/Safari.app/Contents/MacOS/Safari', 503: QEMU_ON_MAC.replaceAll(ID, OTHER) });
    expect(isQemuProcessFor(501, ID, probe)).toBe(true);
    expect(isQemuProcessFor(502, ID, probe)).toBe(false); // a reused pid
    expect(isQemuProcessFor(503, ID, probe)).toBe(false); // another VM's QEMU
    expect(isQemuProcessFor(504, ID, probe)).toBe(false); // gone between the checks
    expect(probe.asked).toEqual([501, 502, 503, 504]);
  });

  it('reads the guest= option however QEMU was given it', () => {
    expect(processArgs(7, macProbe({ 7: `qemu-system-x86_64 -name guest=${ID},process=qemu-0b6c9f5e,debug-threads=on` }))).toContain(
      `guest=${ID},process=qemu-0b6c9f5e,debug-threads=on`,
    );
    expect(argsNameGuest([`guest=${ID},debug-threads=on`], ID)).toBe(true);
    expect(argsNameGuest([`guest=${ID}x`], ID)).toBe(false);
    expect(argsNameGuest([`xguest=${ID}`], ID)).toBe(false);
  });

  it('on Linux reads /proc for real', async () => {
    expect(realIdentityProbe.platform).toBe('linux');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)', '--', '-name', `guest=${ID},debug-threads=on`], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      expect(isQemuProcessFor(child.pid!, ID)).toBe(true);
      expect(isQemuProcessFor(child.pid!, OTHER)).toBe(false);
      expect(isQemuProcessFor(process.pid, ID)).toBe(false);
      // The same check through ps, as on macOS, against the real process.
      const viaPs: IdentityProbe = { ...realIdentityProbe, platform: 'darwin' };
      expect(isQemuProcessFor(child.pid!, ID, viaPs)).toBe(true);
      expect(isQemuProcessFor(process.pid, ID, viaPs)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('unix socket path length', () => {
  it('is 103 usable bytes on macOS and 107 on Linux', () => {
    expect(maxSocketPathBytes('darwin')).toBe(103);
    expect(maxSocketPathBytes('linux')).toBe(107);
    const at = (n: number) => `/${'x'.repeat(n - 1)}`;
    expect(() => assertSocketPathFits(at(103), 'darwin')).not.toThrow();
    expect(() => assertSocketPathFits(at(104), 'darwin')).toThrow(/too long for unix sockets on macOS: .* 104 bytes, at most 103 work\. Set VIVARIUM_RUNTIME_DIR/);
    expect(() => assertSocketPathFits(at(107), 'linux')).not.toThrow();
    expect(() => assertSocketPathFits(at(108), 'linux')).toThrow(/on Linux/);
    // Bytes, not characters.
    expect(() => assertSocketPathFits(`/${'é'.repeat(52)}`, 'darwin')).toThrow(/105 bytes/);
  });

  it('refuses a runtime folder whose VM sockets would not fit on macOS, and accepts the default shape', () => {
    // The default macOS root: /tmp/vivarium-<uid>/<8 hex>, then <32 hex>/serial.sock.
    const ok = new Layout('/Users/someone/Library/Application Support/Vivarium', '/tmp/vivarium-501/0a1b2c3d');
    expect(ok.runtime(ID, 'darwin').serial).toBe(path.join('/tmp/vivarium-501/0a1b2c3d', ID.replace(/-/g, ''), 'serial.sock'));
    // A longer VIVARIUM_RUNTIME_DIR (e.g. under macOS's $TMPDIR, /var/folders/…/T/): 104 bytes to serial.sock,
    // fine on Linux, too long on macOS.
    const long = new Layout('/Users/u/lib', '/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T/v/0a1b2c3d');
    expect(() => long.runtime(ID, 'linux')).not.toThrow();
    let err: unknown;
    try {
      long.runtime(ID, 'darwin');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VivariumError);
    expect((err as VivariumError).code).toBe(ErrorCode.InvalidArgument);
    expect((err as VivariumError).message).toMatch(/Set VIVARIUM_RUNTIME_DIR to a shorter folder/);
  });
});

describe('image locking', () => {
  it('asks for locking=on on macOS, where QEMU\'s auto means no locks (no OFD locks); Linux keeps auto', () => {
    // The golden command lines (main/services/qemu/golden/*.darwin-*.txt) show it on every writable image.
    expect(imageLockingForced({ os: 'darwin' })).toBe(true);
    expect(imageLockingForced({ os: 'linux' })).toBe(false);
  });
});

describe('HVF refused at start (a QEMU without the hypervisor entitlement)', () => {
  it('explains the entitlement and what to do, in the start error', () => {
    const msg = explainQemuError(['2026-11-30T10:00:00.000000Z qemu-system-aarch64: -accel hvf: Error: ret = HV_DENIED (0xfae94007, at ../target/arm/hvf/hvf.c:1039)']);
    expect(msg).toMatch(/HV_DENIED .*com\.apple\.security\.hypervisor entitlement.*brew reinstall qemu.*accelerator to tcg/);
    const kvm = explainQemuError(['qemu-system-x86_64: -accel kvm: Could not access KVM kernel module: Permission denied']);
    expect(kvm).toMatch(/sudo usermod -aG kvm \$USER/);
  });
});
