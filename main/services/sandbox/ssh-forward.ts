/**
 * "SSH comes for free" (issue 11): at each start of a cloud-init VM, a free 127.0.0.1 port is
 * forwarded to the guest's port 22, unless the VM's own forwards already reach 22. The port lives
 * only in the run's command line (the runtime record's argv), so it is whatever this run got;
 * `forwardsOfArgv` reads it back.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { errors } from '../../common/errors';
import type { PortForward, VmConfig } from '../../common/models/vm-config';
import { shellQuote } from '../terminal/ssh-command';

/** Whether something already listens on (or holds) `port` of 127.0.0.1 for `protocol`. */
export function portInUse(port: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<boolean> {
  if (protocol === 'udp') {
    return import('node:dgram').then(
      (dgram) =>
        new Promise<boolean>((resolve) => {
          const s = dgram.createSocket('udp4');
          s.once('error', () => resolve(true));
          s.bind(port, '127.0.0.1', () => s.close(() => resolve(false)));
        }),
    );
  }
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(true));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(false)));
  });
}

/** A TCP port on 127.0.0.1 nobody holds right now (the kernel's pick), not among `avoid`. */
export async function freeLoopbackPort(avoid: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(p));
      });
    });
    if (!avoid.has(port)) return port;
  }
  throw new Error('no free TCP port on 127.0.0.1');
}

/** The forward that reaches the guest's sshd, if the config has one. */
export function sshForwardOf(forwards: readonly PortForward[]): PortForward | null {
  return forwards.find((f) => f.protocol === 'tcp' && f.guestPort === 22) ?? null;
}

/**
 * Every shared folder still exists as a folder (it may have been deleted or moved since `share add`),
 * else QEMU would refuse to start with its raw fsdev error.
 * @throws invalid-state naming the share, its tag and the two ways out.
 */
export async function assertSharesPresent(config: VmConfig): Promise<void> {
  for (const s of config.shares) {
    const st = await fs.promises.stat(s.hostPath).catch(() => null);
    if (!st?.isDirectory()) {
      throw errors.state(
        `The shared folder ${s.hostPath} (tag ${s.tag}) no longer exists${st ? ' as a folder' : ''}. ` +
          `Create it again, or remove the share: vivarium share remove ${shellQuote(config.name)} ${s.tag}`,
      );
    }
  }
}

/**
 * The config a start runs with: a cloud-init VM without a forward to guest port 22 gets one from a
 * free loopback port (not one another VM has saved, `avoid`). Other VMs are returned unchanged.
 * Any VM's shared folders are checked first (`assertSharesPresent`): this is the sandbox's step of
 * every start.
 * @throws invalid-state for a shared folder that no longer exists.
 */
export async function withSshForward(config: VmConfig, avoid: ReadonlySet<number> = new Set()): Promise<VmConfig> {
  await assertSharesPresent(config);
  if (config.cloudInit === null || config.network.mode !== 'user' || sshForwardOf(config.network.forwards)) return config;
  const taken = new Set([...avoid, ...config.network.forwards.map((f) => f.hostPort)]);
  const port = await freeLoopbackPort(taken);
  return { ...config, network: { ...config.network, forwards: [...config.network.forwards, { protocol: 'tcp', hostPort: port, guestPort: 22 }] } };
}

/** The live forwards of a running VM, kept in its runtime folder (gone with the run). */
export const LIVE_FORWARDS_FILE = 'forwards.json';

/**
 * A running VM's forwards as they are now: the command line's (`forwardsOfArgv`), or, after a
 * `forward add/remove` during this run, what `LIVE_FORWARDS_FILE` in its runtime folder says (only
 * when written for this run: its `startedAt` matches).
 */
export async function liveForwardsOf(runtimeDir: string, vm: { readonly startedAt: string | null; readonly argv: readonly string[] | null }): Promise<PortForward[]> {
  try {
    const parsed = JSON.parse(await fs.promises.readFile(path.join(runtimeDir, LIVE_FORWARDS_FILE), 'utf8')) as { startedAt?: string; forwards?: PortForward[] };
    if (parsed.startedAt === vm.startedAt && Array.isArray(parsed.forwards)) return parsed.forwards;
  } catch {
    // none yet: the command line's
  }
  return forwardsOfArgv(vm.argv ?? []);
}

/** The forwards a QEMU command line set up (`hostfwd=PROTO:ADDR:HOSTPORT-:GUESTPORT`), in order. */
export function forwardsOfArgv(argv: readonly string[]): PortForward[] {
  const out: PortForward[] = [];
  for (const a of argv) {
    for (const m of a.matchAll(/hostfwd=(tcp|udp):[0-9.]*:(\d+)-[0-9.]*:(\d+)/g)) {
      out.push({ protocol: m[1] as 'tcp' | 'udp', hostPort: Number(m[2]), guestPort: Number(m[3]) });
    }
  }
  return out;
}
