/**
 * The rules for adding a port forward (pure, unit-tested): each host port (per protocol) is held by
 * at most one forward across the library — another VM's saved or live forward is named — and a
 * port another program holds is refused with its number.
 */
import type { PortForward } from '../../common/models/vm-config';

/** Another VM's forwards: saved ones, and while it runs the live ones (its SSH port included). */
export interface OtherVmForwards {
  readonly name: string;
  readonly forwards: readonly PortForward[];
}

/** "tcp:2222:22" (the CLI's spelling). */
export function forwardText(f: PortForward): string {
  return `${f.protocol}:${f.hostPort}:${f.guestPort}`;
}

/**
 * Parses `[tcp|udp:]HOSTPORT:GUESTPORT` (tcp when the protocol is left out).
 * @returns the forward, or null when the text is not one (ports 1–65535).
 */
export function parseForward(text: string): PortForward | null {
  const m = /^(?:(tcp|udp):)?(\d{1,5}):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const hostPort = Number(m[2]);
  const guestPort = Number(m[3]);
  if (hostPort < 1 || hostPort > 65535 || guestPort < 1 || guestPort > 65535) return null;
  return { protocol: (m[1] ?? 'tcp') as 'tcp' | 'udp', hostPort, guestPort };
}

/**
 * Why `f` cannot be added to a VM whose forwards are `own`, with `others` in the library; null when
 * it can. (Whether another program holds the port is asked of the system separately.)
 */
export function forwardConflict(f: PortForward, own: readonly PortForward[], others: readonly OtherVmForwards[]): string | null {
  const same = (g: PortForward) => g.protocol === f.protocol && g.hostPort === f.hostPort;
  const mine = own.find(same);
  if (mine) {
    return mine.guestPort === f.guestPort
      ? `This VM already forwards ${f.protocol} port ${f.hostPort} to guest port ${f.guestPort}.`
      : `This VM already forwards ${f.protocol} port ${f.hostPort} (to guest port ${mine.guestPort}). Remove that forward first or pick another host port.`;
  }
  const other = others.find((o) => o.forwards.some(same));
  if (other) return `${f.protocol} port ${f.hostPort} is already forwarded to the VM "${other.name}". Pick another host port.`;
  return null;
}
