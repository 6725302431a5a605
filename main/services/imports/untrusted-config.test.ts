/** This machine's trust list for host files an imported config names, and how such strings are said (pure). */
import { describe, expect, it } from 'vitest';
import { parseVmConfig, type VmConfig } from '../../common/models/vm-config';
import { hostFileTrust, quotedName, screenMachine, shown } from './untrusted-config';

function config(over: Record<string, unknown>): VmConfig {
  const r = parseVmConfig(
    JSON.stringify({ version: 3, id: '11111111-2222-4333-8444-555555555555', name: 'v', createdAt: '2026-01-01T00:00:00Z', arch: 'x86_64', cpus: 1, memoryMiB: 128, network: { mac: '52:54:00:12:34:56' }, ...over }),
  );
  if (!r.ok) throw new Error(r.error);
  return r.config;
}

describe('hostFileTrust', () => {
  const here = config({ kernel: { path: '/srv/k/vmlinuz', initrd: '/srv/k/initrd.img' }, cdroms: [{ id: 'cd0', path: '/srv/iso/debian.iso' }] });
  const trust = hostFileTrust([here], '/home/me/.vivarium/media');

  it('trusts a file a VM here uses, for that role only', () => {
    expect(trust.trusts('kernel', '/srv/k/vmlinuz')).toBe(true);
    expect(trust.trusts('kernel', '/srv/k/../k/vmlinuz')).toBe(true);
    expect(trust.trusts('initrd', '/srv/k/initrd.img')).toBe(true);
    expect(trust.trusts('iso', '/srv/iso/debian.iso')).toBe(true);
    expect(trust.trusts('iso', '/srv/k/vmlinuz')).toBe(false);
    expect(trust.trusts('initrd', '/srv/k/vmlinuz')).toBe(false);
    expect(trust.trusts('ssh-key', '/srv/iso/debian.iso')).toBe(false);
  });

  it("trusts Vivarium's verified downloads, not their metadata, partial downloads, folders below or paths climbing out", () => {
    expect(trust.trusts('iso', '/home/me/.vivarium/media/debian-12.iso')).toBe(true);
    expect(trust.trusts('kernel', '/home/me/.vivarium/media/vmlinuz')).toBe(true);
    expect(trust.trusts('iso', '/home/me/.vivarium/media/.downloads/0123456789abcdef.part')).toBe(false);
    expect(trust.trusts('iso', '/home/me/.vivarium/media/.meta/debian-12.iso.json')).toBe(false);
    expect(trust.trusts('iso', '/home/me/.vivarium/media/sub/x.iso')).toBe(false);
    expect(trust.trusts('iso', '/home/me/.vivarium/media/../vms/x.iso')).toBe(false);
    expect(trust.trusts('iso', 'media/debian-12.iso')).toBe(false);
    expect(trust.trusts('ssh-key', '/home/me/.vivarium/media/id_ed25519')).toBe(false);
    expect(trust.trusts('iso', '/etc/shadow')).toBe(false);
  });
});

describe('screenMachine', () => {
  it('keeps a trusted kernel and ISO, drops an untrusted initrd with its kernel, empties an untrusted drive', () => {
    const trust = hostFileTrust([config({ kernel: { path: '/srv/k/vmlinuz', initrd: null } })], '/m');
    const c = config({ kernel: { path: '/srv/k/vmlinuz', initrd: '/etc/shadow', append: 'init=/bin/sh' }, cdroms: [{ id: 'cd0', path: '/m/a.iso' }, { id: 'cd1', path: '/dev/sda' }] });
    const r = screenMachine(c, trust, null);
    expect(r.config.kernel).toBeNull();
    expect(r.config.cdroms).toEqual([
      { id: 'cd0', path: '/m/a.iso' },
      { id: 'cd1', path: null },
    ]);
    expect(r.notices).toHaveLength(2);
    expect(r.notices[0]).toMatch(/^The initrd \/etc\/shadow of the exported VM is not a file a VM here already uses that way/);
    const kept = screenMachine(config({ kernel: { path: '/srv/k/vmlinuz', initrd: null, append: 'quiet' } }), trust, 'A');
    expect(kept).toEqual({ config: expect.objectContaining({ kernel: { path: '/srv/k/vmlinuz', initrd: null, append: 'quiet' } }) as unknown, notices: [] });
  });
});

describe('strings from the file in sentences', () => {
  it('control, escape and direction characters never reach a terminal', () => {
    expect(shown('/tmp/x\x1b[31mred\n')).toBe('/tmp/x?[31mred?');
    expect(shown('/a b/\u202ecod.exe')).toBe('"/a b/?cod.exe"');
    expect(shown('x'.repeat(300))).toHaveLength(201);
    expect(quotedName('say "hi"\r')).toBe('"say \'hi\'?"');
  });
});
