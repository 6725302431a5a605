import type { ReactNode } from 'react';
import type { VmState } from '../../main/common/models/vm-state';
import { STATE_LABELS, STATE_TONES } from '../lib/vm-actions';

/** The state as text plus a coloured dot; colour is never the only signal. */
export function StateBadge({ state, id }: { readonly state: VmState; readonly id?: string }): ReactNode {
  return (
    <span id={id} className={`state-badge tone-${STATE_TONES[state]}`} data-state={state}>
      <span className="state-dot" aria-hidden="true" />
      {STATE_LABELS[state]}
    </span>
  );
}
