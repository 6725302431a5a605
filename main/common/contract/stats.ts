/** The `stats` service: host and per-VM resource use. */
import { z } from 'zod';
import type { StatsSample } from '../models/stats';
import { VmRef, lazyTuples, type Event, type ServiceSchema } from './shared';

export const SampleOptions = z.object({ vm: VmRef.optional(), windowMs: z.number().int().min(100).max(10_000).optional() }).strict();
export type SampleOptions = z.infer<typeof SampleOptions>;

export interface StatsService {
  /** One sample covering about `windowMs` (default 1000): host and running VMs. */
  sample(options: { vm?: string; windowMs?: number }): Promise<StatsSample>;
  /** Live samples, about once a second, while at least one listener is subscribed. */
  onDidSample: Event<StatsSample>;
}

export const statsSchema: ServiceSchema<StatsService> = {
  methods: lazyTuples({ sample: () => z.tuple([SampleOptions]) }),
  events: ['onDidSample'],
};
