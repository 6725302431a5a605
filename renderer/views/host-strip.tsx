/** The library's compact host strip: CPU, memory, disk and network as sparklines with their
 *  current values. */
import { useMemo, type ReactNode } from 'react';
import { StatsGraph } from '../components/stats-graph';
import { useStats } from '../hooks/use-stats';
import { hostCpuGraph, hostDiskGraph, hostMemorySpark, hostNetworkGraph } from '../lib/stats-graphs';

export function HostStrip(): ReactNode {
  const { store, status } = useStats();
  const specs = useMemo(
    () => ({
      cpu: hostCpuGraph('Host CPU usage graph'),
      memory: hostMemorySpark(),
      disk: hostDiskGraph('Host disk throughput graph'),
      network: hostNetworkGraph('Host network throughput graph'),
    }),
    [],
  );
  return (
    <section className="host-strip" aria-label="Host resources">
      {status.kind === 'unavailable' ? (
        <p className="muted" role="status">
          Statistics unavailable: {status.message}
        </p>
      ) : (
        <>
          <StatsGraph store={store} variant="spark" title="CPU" spec={specs.cpu} />
          <StatsGraph store={store} variant="spark" title="Memory" spec={specs.memory} />
          <StatsGraph store={store} variant="spark" title="Disk" spec={specs.disk} />
          <StatsGraph store={store} variant="spark" title="Network" spec={specs.network} />
        </>
      )}
    </section>
  );
}
