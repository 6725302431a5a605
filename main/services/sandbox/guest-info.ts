/**
 * What the guest agent (qemu-guest-agent, reached on the VM's `qga` socket) says about a running
 * guest: host name, IP addresses and OS (QEMU's qga/qapi-schema.json: guest-get-host-name,
 * guest-network-get-interfaces, guest-get-osinfo).
 */
import { GuestAgentClient } from '../qemu/guest-agent';
import type { GuestInfo } from '../../common/contract';

interface AgentIface {
  readonly name?: string;
  readonly 'ip-addresses'?: readonly { readonly 'ip-address': string; readonly 'ip-address-type': 'ipv4' | 'ipv6' }[];
}

/** The non-loopback addresses of the agent's interface list, IPv4 first, link-local IPv6 left out. */
export function ipsOfInterfaces(ifaces: readonly AgentIface[]): string[] {
  const all = ifaces
    .filter((i) => i.name !== 'lo')
    .flatMap((i) => i['ip-addresses'] ?? [])
    .filter((a) => !a['ip-address'].startsWith('127.') && a['ip-address'] !== '::1' && !/^fe80:/i.test(a['ip-address']));
  return [...all.filter((a) => a['ip-address-type'] === 'ipv4'), ...all.filter((a) => a['ip-address-type'] !== 'ipv4')].map((a) => a['ip-address']);
}

/** Asks the agent at `socketPath`; null when no agent answers within `timeoutMs`. */
export async function queryGuestInfo(socketPath: string, timeoutMs = 3000): Promise<GuestInfo | null> {
  let agent: GuestAgentClient;
  try {
    agent = await GuestAgentClient.connect(socketPath, { timeoutMs });
  } catch {
    return null;
  }
  try {
    const host = await agent.execute<{ 'host-name'?: string }>('guest-get-host-name', undefined, { timeoutMs }).catch(() => null);
    const ifaces = await agent.execute<AgentIface[]>('guest-network-get-interfaces', undefined, { timeoutMs }).catch(() => []);
    const os = await agent.execute<{ 'pretty-name'?: string; name?: string }>('guest-get-osinfo', undefined, { timeoutMs }).catch(() => null);
    return { hostname: host?.['host-name'] ?? null, ips: ipsOfInterfaces(Array.isArray(ifaces) ? ifaces : []), os: os?.['pretty-name'] ?? os?.name ?? null };
  } finally {
    agent.close();
  }
}
