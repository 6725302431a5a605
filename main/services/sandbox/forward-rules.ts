/**
 * The rules for adding a port forward (pure, unit-tested): each host port (per protocol) is held by
 * at most one forward across the library — another VM's saved or live forward is named — and a
 * port another program holds is refused with its number.
 */
import type { PortForward } from '../../common/models/vm-config';

export { forwardText, parseForward } from '../../common/models/sandbox';

/** Another VM's forwards: saved ones, and while it runs the live ones (its SSH port included). */
export interface OtherVmForwards {
  readonly name: string;
  readonly forwards: readonly PortForward[];
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
