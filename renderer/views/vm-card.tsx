import { useMemo, useRef, type MouseEvent, type ReactNode } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import { Icon } from '../components/icons';
import { StateBadge } from '../components/state-badge';
import { StatsGraph } from '../components/stats-graph';
import { useStats } from '../hooks/use-stats';
import { useThumbnail } from '../hooks/use-thumbnail';
import { useInView } from '../hooks/use-visibility';
import { formatOsArch, formatResources } from '../lib/format';
import { vmCpuGraph } from '../lib/stats-graphs';
import { hasDisplay, isLive, problemText } from '../lib/vm-actions';

export function optionId(vmId: string): string {
  return `vm-option-${vmId}`;
}

/** One VM in the library: an option of the listbox, named by the VM's name and described by the
 *  rest (state, OS, resources, problems). */
export function VmCard(props: {
  readonly vm: VmInfo;
  readonly selected: boolean;
  readonly onSelect: () => void;
  readonly onOpen: () => void;
  /** Right-click, or the Menu key / Shift+F10 when the browser turns them into a contextmenu event. */
  readonly onContextMenu: (e: MouseEvent<HTMLDivElement>) => void;
}): ReactNode {
  const { vm, selected } = props;
  const ref = useRef<HTMLDivElement>(null);
  const inView = useInView(ref);
  const thumb = useThumbnail(vm, inView);
  const problem = problemText(vm);
  const nameId = `${optionId(vm.id)}-name`;
  const descId = `${optionId(vm.id)}-desc`;
  const c = vm.config;

  return (
    <div
      ref={ref}
      id={optionId(vm.id)}
      role="option"
      aria-selected={selected}
      aria-labelledby={nameId}
      aria-describedby={descId}
      tabIndex={selected ? 0 : -1}
      className={`vm-card state-${vm.state}`}
      data-vm-id={vm.id}
      onClick={props.onSelect}
      // Selection follows focus, however focus arrived (keyboard, a screen reader, a script), so
      // Enter opens the VM that has the focus.
      onFocus={(e) => {
        if (e.target === e.currentTarget && !selected) props.onSelect();
      }}
      onDoubleClick={props.onOpen}
      onContextMenu={props.onContextMenu}
    >
      <div className="vm-thumb">
        {thumb ? (
          <img src={thumb} alt={`Screen of ${vm.name}`} draggable={false} data-testid="vm-thumbnail" />
        ) : (
          <div className="vm-thumb-placeholder" aria-hidden="true">
            <Icon name={c && !hasDisplay(vm) ? 'terminal' : 'monitor'} />
            {isLive(vm.state) && c && !hasDisplay(vm) && <span>No display</span>}
          </div>
        )}
      </div>
      <div className="vm-card-body">
        <div className="vm-card-title">
          <span id={nameId} className="vm-name" title={vm.name}>
            {vm.name}
          </span>
        </div>
        <div id={descId} className="vm-card-facts">
          <StateBadge state={vm.state} />
          {c && (
            <>
              <span className="fact">{formatOsArch(c)}</span>
              <span className="fact">{formatResources(c)}</span>
            </>
          )}
          {/* Issue 11: a running VM's TCP forwards (but SSH's) as links that open in the browser. */}
          {c &&
            vm.state === 'running' &&
            c.network.forwards
              .filter((f) => f.protocol === 'tcp' && f.guestPort !== 22)
              .map((f) => (
                <a
                  key={f.hostPort}
                  className="fact vm-forward"
                  href={`http://127.0.0.1:${f.hostPort}/`}
                  target="_blank"
                  rel="noreferrer"
                  title={`Guest port ${f.guestPort}`}
                  onClick={(e) => e.stopPropagation()}
                >
                  127.0.0.1:{f.hostPort}
                </a>
              ))}
          {problem && <span className="vm-problem">{problem}</span>}
          {vm.state === 'running' && <VmCpuSpark id={vm.id} name={vm.name} />}
        </div>
      </div>
    </div>
  );
}

/** A running VM's CPU over the last two minutes. Inside the card's description, so its hidden
 *  text ("Now 12.3%.") is read with the card. */
function VmCpuSpark({ id, name }: { readonly id: string; readonly name: string }): ReactNode {
  const { store, status } = useStats();
  const spec = useMemo(() => vmCpuGraph(id, `CPU usage graph of ${name}`), [id, name]);
  if (status.kind === 'unavailable') return null;
  return <StatsGraph store={store} variant="spark" title="CPU" spec={spec} className="vm-card-spark" />;
}
