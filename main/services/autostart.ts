/**
 * "Start automatically when Vivarium starts": the VMs whose config has `autostart: true` are started
 * by an engine that was asked to (the desktop app always; `vivarium serve --autostart`), once, when
 * it starts. A VM that already runs (an earlier engine started it, or the user did) is left alone;
 * one that fails to start is logged and the others still start. Never twice with two engines: only
 * the engine that holds the library's socket gets this far (main/server/engine-host.ts), and the
 * start lock refuses a second start of the same VM anyway.
 */
import type { VmService } from '../common/contract';
import { isVivariumError } from '../common/errors';

/** Starts every stopped VM marked autostart; resolves to the names it started. Never rejects. */
export async function startAutostartVms(vms: Pick<VmService, 'list' | 'get' | 'start'>, log: (line: string) => void = () => {}): Promise<readonly string[]> {
  let list;
  try {
    list = await vms.list();
  } catch (e) {
    log(`autostart: could not list the VMs: ${String(e)}`);
    return [];
  }
  const started: string[] = [];
  await Promise.all(
    list
      .filter((vm) => vm.state === 'stopped')
      .map(async (vm) => {
        try {
          const details = await vms.get(vm.id);
          if (!details.config?.autostart || details.state !== 'stopped') return;
          await vms.start(vm.id, {});
          started.push(vm.name);
          log(`autostart: started ${vm.name}`);
        } catch (e) {
          log(`autostart: could not start ${vm.name}: ${isVivariumError(e) ? e.message : String(e)}`);
        }
      }),
  );
  return started.sort();
}
