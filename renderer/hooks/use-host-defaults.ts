/** This host's defaults and limits for a new VM, for the New VM wizard and the Settings dialog. */
import { useEffect, useState } from 'react';
import type { Arch } from '../../main/common/models/vm-config';
import type { HostDefaults } from '../../main/common/models/vm-settings';
import { useServices } from '../engine';

/**
 * `host.defaults` for a VM of `arch` (none or "": the host's default architecture): CPUs, memory,
 * disk size, firmware and the limits a form shows. Null until they arrive, and stays null when the
 * engine cannot say (no QEMU): the forms then leave those values to the engine.
 */
export function useHostDefaults(arch?: Arch | ''): HostDefaults | null {
  const services = useServices();
  const [defaults, setDefaults] = useState<HostDefaults | null>(null);
  useEffect(() => {
    let cancelled = false;
    services.host.defaults(arch ? { arch } : {}).then(
      (d) => !cancelled && setDefaults(d),
      () => undefined,
    );
    return () => {
      cancelled = true;
    };
  }, [services, arch]);
  return defaults;
}
