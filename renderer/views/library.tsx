/** The VM library: every VM as a card in a keyboard-navigable listbox, with filter and sort. */
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import { Icon } from '../components/icons';
import { NewVmDialog } from '../components/vm-dialogs';
import { useVmStatsSnapshot } from '../hooks/use-stats';
import { useVmList } from '../hooks/use-vms';
import { gridMove } from '../lib/keys';
import { onMenuAction } from '../lib/menu-events';
import { isSortKey, SORT_KEYS, SORT_LABELS, STATS_SORT_KEYS, visibleVms, type SortKey } from '../lib/vm-list';
import { goToHost, openVmWindow } from '../navigation';
import { HostStrip } from './host-strip';
import { optionId, VmCard } from './vm-card';

const SORT_STORAGE_KEY = 'vivarium.library.sort';

function loadSort(): SortKey {
  try {
    const s = localStorage.getItem(SORT_STORAGE_KEY);
    return s && isSortKey(s) ? s : 'name';
  } catch {
    return 'name';
  }
}

/** How many columns the CSS grid laid out (its computed track list has one size per column). */
function gridColumns(el: HTMLElement | null): number {
  if (!el) return 1;
  const tracks = getComputedStyle(el).gridTemplateColumns.split(' ').filter((t) => t !== '' && t !== 'none');
  return Math.max(1, tracks.length);
}

export function Library(): ReactNode {
  const { list, upsert } = useVmList();
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<SortKey>(loadSort);
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const listRef = useRef<HTMLDivElement>(null);

  // The app menu's New VM (Electron) opens the same dialog as the button.
  useEffect(() => onMenuAction((action) => (action === 'new-vm' ? (setCreating(true), true) : false)), []);

  useEffect(() => {
    document.title = 'Vivarium';
  }, []);
  useEffect(() => {
    try {
      localStorage.setItem(SORT_STORAGE_KEY, sort);
    } catch {
      // Storage may be disabled; the choice just won't be remembered.
    }
  }, [sort]);

  const all = list.kind === 'ready' ? list.value : null;
  // Live figures reach the sort every 5 s, and only while sorting by them.
  const stats = useVmStatsSnapshot(STATS_SORT_KEYS.has(sort));
  const vms = useMemo(() => (all ? visibleVms(all, filter, sort, { stats }) : []), [all, filter, sort, stats]);
  // Selection follows focus; when the selected VM is filtered out or removed, the first one is active.
  const selected: VmInfo | null = vms.find((v) => v.id === selectedId) ?? vms[0] ?? null;
  const running = all ? [...all.values()].filter((v) => v.state === 'running').length : 0;

  const select = (vm: VmInfo, focus: boolean): void => {
    setSelectedId(vm.id);
    if (focus) document.getElementById(optionId(vm.id))?.focus();
  };

  const onListKeyDown = (e: KeyboardEvent<HTMLDivElement>): void => {
    if (!selected) return;
    if (e.key === 'Enter') {
      e.preventDefault();
      openVmWindow(selected.id);
      return;
    }
    const next = gridMove(e.key, vms.indexOf(selected), vms.length, gridColumns(listRef.current));
    if (next === null) return;
    e.preventDefault();
    const vm = vms[next];
    if (vm) select(vm, true);
  };

  return (
    <div className="page library-page">
      <header className="app-bar">
        <h1 className="app-title">Vivarium</h1>
        <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
          <Icon name="plus" />
          New VM
        </button>
        <button type="button" className="btn" disabled={!selected} onClick={() => selected && openVmWindow(selected.id)}>
          <Icon name="open" />
          Open
        </button>
        <button type="button" className="btn" onClick={goToHost}>
          <Icon name="chart" />
          Host
        </button>
        <div className="spacer" />
        <input
          type="search"
          className="input input-search"
          placeholder="Filter by name"
          aria-label="Filter by name"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Escape' && filter !== '') {
              e.preventDefault();
              setFilter('');
            } else if (e.key === 'ArrowDown' && selected) {
              e.preventDefault();
              select(selected, true);
            }
          }}
        />
        <label className="inline-field">
          <span>Sort by</span>
          <select className="input select" value={sort} onChange={(e) => isSortKey(e.target.value) && setSort(e.target.value)}>
            {SORT_KEYS.map((k) => (
              <option key={k} value={k}>
                {SORT_LABELS[k]}
              </option>
            ))}
          </select>
        </label>
      </header>

      <HostStrip />

      <main className="library-main">
        {list.kind === 'loading' && <p className="empty muted">Loading VMs…</p>}
        {list.kind === 'error' && (
          <div className="notice notice-danger" role="alert">
            {list.message}
          </div>
        )}
        {list.kind === 'ready' && list.value.size === 0 && (
          <div className="empty">
            <p className="empty-title">No virtual machines yet</p>
            <p className="muted">Create one with New VM.</p>
          </div>
        )}
        {list.kind === 'ready' && list.value.size > 0 && vms.length === 0 && (
          <p className="empty muted" role="status">
            No VMs match “{filter.trim()}”.
          </p>
        )}
        {vms.length > 0 && (
          <div ref={listRef} role="listbox" aria-label="Virtual machines" aria-orientation="vertical" className="vm-grid" onKeyDown={onListKeyDown}>
            {vms.map((vm) => (
              <VmCard
                key={vm.id}
                vm={vm}
                selected={vm.id === selected?.id}
                onSelect={() => select(vm, false)}
                onOpen={() => openVmWindow(vm.id)}
              />
            ))}
          </div>
        )}
      </main>

      <footer className="status-bar" role="status" aria-live="polite">
        {all && (
          <span>
            {all.size === 1 ? '1 VM' : `${all.size} VMs`} · {running} running
            {filter.trim() !== '' && ` · ${vms.length} shown`}
          </span>
        )}
      </footer>

      {creating && (
        <NewVmDialog
          onClose={() => setCreating(false)}
          onCreated={(vm) => {
            setCreating(false);
            upsert(vm);
            setFilter('');
            setSelectedId(vm.id);
            requestAnimationFrame(() => document.getElementById(optionId(vm.id))?.focus());
          }}
        />
      )}
    </div>
  );
}
