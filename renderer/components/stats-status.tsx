import type { ReactNode } from 'react';
import type { StatsStatus } from '../lib/stats-store';

/** What the graphs cannot show: an engine without statistics, or figures that stopped coming. */
export function StatsStatusNotice({ status, waitingText }: { readonly status: StatsStatus; readonly waitingText?: string }): ReactNode {
  switch (status.kind) {
    case 'unavailable':
      return (
        <p className="stats-notice" role="status">
          Statistics unavailable: {status.message}
        </p>
      );
    case 'failed':
      return (
        <p className="stats-notice" role="status">
          Statistics are delayed: {status.message}
        </p>
      );
    case 'waiting':
      return waitingText ? <p className="muted stats-waiting">{waitingText}</p> : null;
    case 'idle':
    case 'live':
      return null;
  }
}
