/** The `host` service: what this host can run, and the settings a new VM gets here by default. */
import { z } from 'zod';
import type { HostReport } from '../models/host-report';
import { Arch } from '../models/vm-config';
import type { HostDefaults } from '../models/vm-settings';
import type { ServiceSchema } from './shared';

export const HostDefaultsOptions = z
  .object({
    /** The guest architecture the defaults are for (default: the host's own when it can run it). */
    arch: Arch.optional(),
  })
  .strict();
export type HostDefaultsOptions = z.infer<typeof HostDefaultsOptions>;

export interface HostService {
  /** What this host can run: QEMU binaries, accelerators (and why not), firmware. */
  doctor(): Promise<HostReport>;
  /**
   * What a new VM gets on this host when the user leaves a setting alone (architecture, firmware,
   * CPUs, memory, disk size), and the limits a form should show. The New VM dialog asks this and
   * sends only what the user chose; the engine fills the rest with the same values
   * (`newConfig` in main/common/models/vm-settings.ts).
   */
  defaults(options: HostDefaultsOptions): Promise<HostDefaults>;
}

export const hostSchema: ServiceSchema<HostService> = {
  methods: {
    doctor: z.tuple([]),
    defaults: z.tuple([HostDefaultsOptions]),
  },
  events: [],
};
