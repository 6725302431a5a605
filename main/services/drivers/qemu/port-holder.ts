/**
 * Which running VM holds a host port (issue 10 finding 17): when QEMU refuses to start because a
 * host port forward is taken, the error names the VM that forwards it instead of "another program".
 */
import type { Layout } from '../../paths';
import { readRecordAsync, scanQemuProcesses } from '../../runtime/records';
import { forwardsOfArgv } from '../../sandbox/ssh-forward';
import { errors, VivariumError } from '../../../common/errors';
import { parseVmConfig } from '../../../common/models/vm-config';
import * as fsp from 'node:fs/promises';

/**
 * The name of another running VM (not `selfId`) whose QEMU forwards host port `port` for
 * `protocol` (from its runtime record's command line), or null. Never throws.
 */
export async function vmForwardingPort(layout: Layout, selfId: string, protocol: 'tcp' | 'udp', port: number): Promise<string | null> {
  try {
    for (const id of (await scanQemuProcesses()).keys()) {
      if (id === selfId) continue;
      const rec = await readRecordAsync(layout.runtime(id));
      if (!rec || !forwardsOfArgv(rec.argv).some((f) => f.protocol === protocol && f.hostPort === port)) continue;
      const parsed = parseVmConfig(await fsp.readFile(layout.bundle(id).config, 'utf8'));
      return parsed.ok ? parsed.config.name : id;
    }
  } catch {
    // best effort: the caller keeps QEMU's own reason
  }
  return null;
}

/**
 * `e` unchanged, or, when it is QEMU's refusal over a taken host port that another running VM
 * forwards, the same refusal naming that VM.
 */
export async function nameVmHoldingPort(layout: Layout, selfId: string, selfName: string, e: unknown): Promise<unknown> {
  if (!(e instanceof VivariumError)) return e;
  const m = /host port (\d+) \((tcp|udp)\) is already in use by another program/.exec(e.message);
  if (!m) return e;
  const port = Number(m[1]);
  const holder = await vmForwardingPort(layout, selfId, m[2] as 'tcp' | 'udp', port);
  if (holder === null) return e;
  return errors.qemu(
    `QEMU refused to start: host port ${port} (${m[2]}) is forwarded by the running VM "${holder}", so "${selfName}" cannot forward it too. Shut "${holder}" down, or change the port forwards of one of them.`,
    e.data,
  );
}
