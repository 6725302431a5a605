/** The host (#/host): live graphs of its CPU, memory, swap, disk, network and load, and what it can
 *  run (accelerators, QEMU version) from `host.doctor()`. */
import { useEffect, useMemo, useState, type ReactNode } from 'react';
import type { HostReport } from '../../main/common/models/host-report';
import { Icon } from '../components/icons';
import { GraphRangeChoice, StatsGraph } from '../components/stats-graph';
import { StatsStatusNotice } from '../components/stats-status';
import { useServices } from '../engine';
import { useStats, useStatsDerived } from '../hooks/use-stats';
import { errorMessage } from '../lib/errors';
import { problemsBesideReasons } from '../lib/host-facts';
import { DEFAULT_GRAPH_RANGE, rangeText, type GraphRange, hostCoresGraph, hostCpuGraph, hostDiskGraph, hostLoadGraph, hostMemoryGraph, hostNetworkGraph, hostSwapGraph } from '../lib/stats-graphs';
import type { Loadable } from '../hooks/use-vms';

export function HostView(): ReactNode {
  const { store, status } = useStats();
  const cores = useStatsDerived((h) => h.host.groupSize);
  // Opens on the last minute; 10 minutes on request (issue 9).
  const [range, setRange] = useState<GraphRange>(DEFAULT_GRAPH_RANGE);

  useEffect(() => {
    document.title = 'Host — Vivarium';
  }, []);

  const fixed = useMemo(
    () => ({
      cpu: hostCpuGraph(),
      memory: hostMemoryGraph(),
      swap: hostSwapGraph(),
      disk: hostDiskGraph(),
      network: hostNetworkGraph(),
      load: hostLoadGraph(),
    }),
    [],
  );
  const perCore = useMemo(() => (cores > 0 ? hostCoresGraph(cores) : null), [cores]);

  return (
    <div className="page host-page">
      <header className="app-bar">
        <a className="btn btn-ghost btn-small" href="#/">
          <Icon name="back" />
          Library
        </a>
        <h1 className="app-title">Host</h1>
      </header>
      <main className="host-main">
        <HostFacts />
        <section className="host-graphs" aria-labelledby="host-graphs-title">
          <h2 id="host-graphs-title" className="section-title">
            Resources <span className="muted section-hint">{rangeText(range)}, one point a second; hover a graph to read a value at a time</span>
          </h2>
          <div className="graph-toolbar">
            <GraphRangeChoice value={range} onChange={setRange} />
          </div>
          <StatsStatusNotice status={status} waitingText="Waiting for the first figures…" />
          {status.kind !== 'unavailable' && (
            <div className="graph-grid">
              <StatsGraph store={store} variant="full" windowSec={range} title="CPU" spec={fixed.cpu} />
              {perCore && <StatsGraph store={store} variant="full" windowSec={range} title="CPU per core" spec={perCore} />}
              <StatsGraph store={store} variant="full" windowSec={range} title="Memory" spec={fixed.memory} />
              <StatsGraph store={store} variant="full" windowSec={range} title="Swap" spec={fixed.swap} />
              <StatsGraph store={store} variant="full" windowSec={range} title="Disk" spec={fixed.disk} />
              <StatsGraph store={store} variant="full" windowSec={range} title="Network" spec={fixed.network} />
              <StatsGraph store={store} variant="full" windowSec={range} title="Load" spec={fixed.load} />
            </div>
          )}
        </section>
      </main>
    </div>
  );
}

const ACCEL_NAMES: Readonly<Record<string, string>> = { kvm: 'KVM', hvf: 'Hypervisor.framework (HVF)', tcg: 'TCG (software emulation)' };

/** Accelerators and QEMU, for the host's own architecture first. */
function HostFacts(): ReactNode {
  const services = useServices();
  const [report, setReport] = useState<Loadable<HostReport>>({ kind: 'loading' });

  useEffect(() => {
    let cancelled = false;
    services.host.doctor().then(
      (value) => !cancelled && setReport({ kind: 'ready', value }),
      (e: unknown) => !cancelled && setReport({ kind: 'error', message: errorMessage(e) }),
    );
    return () => {
      cancelled = true;
    };
  }, [services]);

  return (
    <section className="host-facts" aria-labelledby="host-facts-title" aria-busy={report.kind === 'loading'}>
      <h2 id="host-facts-title" className="section-title">
        Virtualization
      </h2>
      {report.kind === 'loading' && <p className="muted">Checking this host…</p>}
      {report.kind === 'error' && (
        <p className="stats-notice" role="alert">
          {report.message}
        </p>
      )}
      {report.kind === 'ready' && <HostFactsList report={report.value} />}
    </section>
  );
}

function HostFactsList({ report }: { readonly report: HostReport }): ReactNode {
  // The host's own architecture first: that is what runs fast (or not).
  const binaries = [...report.binaries].sort((a, b) => Number(b.arch === report.hostArch) - Number(a.arch === report.hostArch));
  const installed = binaries.filter((b) => b.path !== null);
  const own = binaries.find((b) => b.arch === report.hostArch);
  // The doctor's problems repeat the accelerator's reason shown above them: say it once.
  const problems = problemsBesideReasons(report.problems, own?.accels.map((a) => a.reason) ?? []);
  return (
    <>
      <dl className="facts-list">
        <dt>Host</dt>
        <dd>
          {report.os} · {report.hostArch}
        </dd>
        <dt>QEMU</dt>
        <dd>
          {installed.length === 0
            ? 'Not installed'
            : installed.map((b) => (
                <span key={b.arch} className="fact-line" data-testid="qemu-version">
                  {b.version ?? 'unknown version'} ({b.path})
                </span>
              ))}
        </dd>
        <dt>Accelerators{own ? ` for ${own.arch} guests` : ''}</dt>
        <dd>
          {own && own.accels.length > 0 ? (
            <ul className="accel-list">
              {own.accels.map((a) => (
                <li key={a.accel} data-accel={a.accel}>
                  <span className={`state-badge tone-${a.usable ? 'ok' : 'neutral'}`}>
                    <span className="state-dot" aria-hidden="true" />
                    {ACCEL_NAMES[a.accel] ?? a.accel}: {a.usable ? 'usable' : 'not usable'}
                  </span>
                  <span className="accel-reason">{a.reason}</span>
                </li>
              ))}
            </ul>
          ) : (
            'None found'
          )}
        </dd>
      </dl>
      {problems.length > 0 && (
        <ul className="host-problems">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
    </>
  );
}
