/**
 * Pure rules of the developer sandbox (issue 11): how the CLI's forward and share arguments parse,
 * which forwards conflict, what the SSH forward of a start is, the 9p arguments, the agent's IPs,
 * and the stop ladder's agent rung (with a fake port: the real guest is in
 * main/cli/sandbox.integration.test.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VmConfig, type VmConfigInput } from '../../common/models/vm-config';
import { planStop, runStopLadder, type LadderPort } from '../drivers/qemu/stop-ladder';
import { sharesArgs } from '../qemu/shares-args';
import { forwardConflict, parseForward } from './forward-rules';
import { ipsOfInterfaces } from './guest-info';
import { LIVE_FORWARDS_FILE, assertSharesPresent, forwardsOfArgv, liveForwardsOf, sshForwardOf, withSshForward } from './ssh-forward';

describe('forward arguments', () => {
  it('parses [tcp|udp:]HOSTPORT:GUESTPORT, tcp by default', () => {
    expect(parseForward('tcp:8080:80')).toEqual({ protocol: 'tcp', hostPort: 8080, guestPort: 80 });
    expect(parseForward('udp:5353:53')).toEqual({ protocol: 'udp', hostPort: 5353, guestPort: 53 });
    expect(parseForward('2222:22')).toEqual({ protocol: 'tcp', hostPort: 2222, guestPort: 22 });
  });
  it('refuses what is not a forward', () => {
    for (const bad of ['', 'tcp:80', 'sctp:1:2', 'tcp:0:22', 'tcp:65536:22', 'tcp:22:70000', 'tcp:a:b', '127.0.0.1:80:80']) {
      expect(parseForward(bad), bad).toBeNull();
    }
  });
});

describe('forward conflicts', () => {
  const f = { protocol: 'tcp' as const, hostPort: 8080, guestPort: 80 };
  it('allows a free host port', () => {
    expect(forwardConflict(f, [], [{ name: 'other', forwards: [{ protocol: 'tcp', hostPort: 9090, guestPort: 80 }] }])).toBeNull();
  });
  it('names the VM that already has the host port, per protocol', () => {
    expect(forwardConflict(f, [], [{ name: 'web', forwards: [{ protocol: 'tcp', hostPort: 8080, guestPort: 8000 }] }])).toBe(
      'tcp port 8080 is already forwarded to the VM "web". Pick another host port.',
    );
    // The same number for UDP is another port.
    expect(forwardConflict(f, [], [{ name: 'dns', forwards: [{ protocol: 'udp', hostPort: 8080, guestPort: 53 }] }])).toBeNull();
  });
  it('refuses the VM\'s own duplicate, saying which guest port it goes to', () => {
    expect(forwardConflict(f, [f], [])).toMatch(/already forwards tcp port 8080 to guest port 80/);
    expect(forwardConflict(f, [{ ...f, guestPort: 81 }], [])).toMatch(/\(to guest port 81\)\. Remove that forward first/);
  });
});

const base: VmConfigInput = {
  version: 3,
  id: '0b3f2a4c-1d2e-4f50-8a6b-7c8d9e0f1a2b',
  name: 'box',
  createdAt: '2026-01-01T00:00:00Z',
  arch: 'x86_64',
  cpus: 1,
  memoryMiB: 512,
  network: { mode: 'user', mac: '52:54:00:12:34:56', forwards: [{ protocol: 'tcp', hostPort: 18080, guestPort: 80 }] },
};
const access = { user: 'dev', hostname: 'box', identityFile: '/b/ssh/id_ed25519', knownHostsFile: '/b/ssh/known_hosts', seed: 'cidata.iso' };

describe('the SSH forward of a start', () => {
  it('adds a free loopback port to guest 22 for a cloud-init VM only', async () => {
    const plain = VmConfig.parse(base);
    expect(await withSshForward(plain)).toBe(plain);
    const sandbox = VmConfig.parse({ ...base, cloudInit: access });
    const started = await withSshForward(sandbox, new Set([18081]));
    const ssh = sshForwardOf(started.network.forwards);
    expect(ssh).toMatchObject({ protocol: 'tcp', guestPort: 22 });
    expect([18080, 18081]).not.toContain(ssh!.hostPort);
    // The saved config is not changed.
    expect(sandbox.network.forwards).toHaveLength(1);
  });
  it('keeps a forward to 22 the user made', async () => {
    const own = VmConfig.parse({ ...base, cloudInit: access, network: { ...base.network, forwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] } });
    expect(await withSshForward(own)).toBe(own);
  });
  it('reads the forwards back from a command line', () => {
    expect(forwardsOfArgv(['-netdev', 'user,id=net0,hostfwd=tcp:127.0.0.1:18080-:80,hostfwd=udp:127.0.0.1:5353-:53'])).toEqual([
      { protocol: 'tcp', hostPort: 18080, guestPort: 80 },
      { protocol: 'udp', hostPort: 5353, guestPort: 53 },
    ]);
  });
});

describe('the live forwards of a run', () => {
  it('are the command line\'s until a forward changes during this run; a file from an earlier run is ignored', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-live-'));
    try {
      const run = { startedAt: '2026-11-30T15:00:00.000Z', argv: ['-netdev', 'user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22'] };
      expect(await liveForwardsOf(dir, run)).toEqual([{ protocol: 'tcp', hostPort: 40022, guestPort: 22 }]);
      const moved = [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }];
      fs.writeFileSync(path.join(dir, LIVE_FORWARDS_FILE), JSON.stringify({ startedAt: run.startedAt, forwards: moved }));
      expect(sshForwardOf(await liveForwardsOf(dir, run))).toEqual(moved[0]);
      expect(await liveForwardsOf(dir, { ...run, startedAt: '2026-11-30T16:00:00.000Z' })).toEqual([{ protocol: 'tcp', hostPort: 40022, guestPort: 22 }]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('shared folders checked at start', () => {
  it('a share whose folder was deleted (or replaced by a file) is named with the way out, before QEMU runs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-share-'));
    try {
      const work = path.join(dir, 'work');
      fs.mkdirSync(work);
      const config = VmConfig.parse({ ...base, name: 'my box', cloudInit: access, shares: [{ hostPath: work, tag: 'work', readOnly: false }] });
      await expect(assertSharesPresent(config)).resolves.toBeUndefined();
      fs.rmdirSync(work);
      await expect(withSshForward(config)).rejects.toThrow(
        `The shared folder ${work} (tag work) no longer exists. Create it again, or remove the share: vivarium share remove 'my box' work`,
      );
      fs.writeFileSync(work, 'a file');
      await expect(assertSharesPresent(config)).rejects.toThrow(/no longer exists as a folder/);
      // A VM that is not a sandbox is checked too.
      await expect(assertSharesPresent({ ...config, cloudInit: null })).rejects.toThrow(/no longer exists/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('9p shares as QEMU arguments', () => {
  it('one fsdev and one virtio-9p device per share; commas in paths doubled; the modes in fw_cfg for the guest', () => {
    expect(sharesArgs([{ hostPath: '/src/a,b', tag: 'code', readOnly: true }, { hostPath: '/w', tag: 'work', readOnly: false }])).toEqual([
      '-fsdev', 'local,id=fs0,path=/src/a,,b,security_model=none,readonly=on', '-device', 'virtio-9p-pci,fsdev=fs0,mount_tag=code',
      '-fsdev', 'local,id=fs1,path=/w,security_model=none', '-device', 'virtio-9p-pci,fsdev=fs1,mount_tag=work',
      '-fw_cfg', 'name=opt/vivarium/shares,string=code:ro work:rw',
    ]);
    expect(sharesArgs([])).toEqual([]);
  });
});

describe('guest agent addresses', () => {
  it('lists non-loopback addresses, IPv4 first, without link-local IPv6', () => {
    expect(
      ipsOfInterfaces([
        { name: 'lo', 'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4' }] },
        {
          name: 'eth0',
          'ip-addresses': [
            { 'ip-address': 'fe80::1', 'ip-address-type': 'ipv6' },
            { 'ip-address': 'fec0::5054:ff:fe12:3456', 'ip-address-type': 'ipv6' },
            { 'ip-address': '10.0.2.15', 'ip-address-type': 'ipv4' },
          ],
        },
      ]),
    ).toEqual(['10.0.2.15', 'fec0::5054:ff:fe12:3456']);
  });
});

describe('the stop ladder\'s agent rung', () => {
  function fakePort(exitAfter: 'agent' | 'never', agentWorks = true) {
    const acted: string[] = [];
    let t = 0;
    let gone = false;
    const port: LadderPort = {
      powerdown: async () => void acted.push('acpi'),
      agentShutdown: async () => {
        acted.push('agent');
        if (!agentWorks) throw new Error('no agent');
        if (exitAfter === 'agent') gone = true;
      },
      quit: async () => {
        acted.push('quit');
        gone = true;
      },
      signal: (s) => void acted.push(s),
      waitForExit: async (ms) => {
        t += ms;
        return gone;
      },
      now: () => t,
      enter: () => undefined,
      log: () => undefined,
    };
    return { port, acted };
  }
  it('comes after the power button only when asked for', () => {
    expect(planStop({ force: false, paused: false, timeoutSec: 10, agent: true }).map((r) => r.name)).toEqual(['acpi', 'agent', 'quit', 'SIGTERM', 'SIGKILL']);
    expect(planStop({ force: false, paused: false, timeoutSec: 10 }).map((r) => r.name)).toEqual(['acpi', 'quit', 'SIGTERM', 'SIGKILL']);
    expect(planStop({ force: true, paused: false, timeoutSec: 10, agent: true }).map((r) => r.name)).toEqual(['quit', 'SIGTERM', 'SIGKILL']);
  });
  it('a guest that ignores ACPI shuts down through its agent: a shutdown, not a forced stop', async () => {
    const { port, acted } = fakePort('agent');
    const out = await runStopLadder(planStop({ force: false, paused: false, timeoutSec: 10, agent: true }), { kind: 'asked' }, port);
    expect(acted).toEqual(['acpi', 'agent']);
    expect(out).toMatchObject({ exited: true, rung: 'agent', escalated: false });
    expect(out.message).toMatch(/through its guest agent/);
  });
  it('without an agent the ladder goes on to QMP quit at once', async () => {
    const { port, acted } = fakePort('never', false);
    const out = await runStopLadder(planStop({ force: false, paused: false, timeoutSec: 10, agent: true }), { kind: 'asked' }, port);
    expect(acted).toEqual(['acpi', 'agent', 'quit']);
    expect(out).toMatchObject({ rung: 'quit', escalated: true });
    // 10 s for the power button + 5 s of quit's wait: the failed agent rung waited for nothing.
    expect(out.message).toBe('The guest did not respond to the power button; forced off after 15 s.');
  });
});
