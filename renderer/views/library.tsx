/**
 * The VM library: every VM as a card in a keyboard-navigable listbox, with filter and sort, and the
 * power actions a desktop app has there: Start / Shut Down / Force Off on the toolbar and in a
 * context menu (right-click, the Menu key or Shift+F10), with Suspend, Clone…, Export… there too;
 * Import… on the toolbar; Delete on the Delete key, type-ahead.
 */
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent, type ReactNode } from 'react';
import type { MenuAction } from '../../main/common/menu-actions';
import type { VmInfo } from '../../main/common/models/vm-state';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ContextMenu, type ContextMenuItem, type MenuPoint } from '../components/context-menu';
import { Icon } from '../components/icons';
import { DeleteDialog, NewVmDialog } from '../components/vm-dialogs';
import { CloneDialog, ExportDialog, ImportDialog } from '../components/vm-copy-dialogs';
import { useServices } from '../engine';
import { useVmStatsSnapshot } from '../hooks/use-stats';
import { useVmList } from '../hooks/use-vms';
import { gridMove } from '../lib/keys';
import { onMenuAction } from '../lib/menu-events';
import { forVmState, uiError, type UiError } from '../lib/remedy';
import { actionBlockedReason, confirmationFor, isActionEnabled, startLabel, STATE_LABELS, type VmAction } from '../lib/vm-actions';
import { isSortKey, isTypeAheadKey, SORT_KEYS, SORT_LABELS, STATS_SORT_KEYS, TYPE_AHEAD_EMPTY, typeAhead, visibleVms, type SortKey } from '../lib/vm-list';
import { goToHost, openVmWindow } from '../navigation';
import { DownloadsStrip } from './downloads-strip';
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

/** What the library's toolbar and context menu can do to a VM. */
type LibraryAction = 'open' | 'start' | 'shutdown' | 'reset' | 'forceOff' | 'suspend' | 'clone' | 'export' | 'delete';
type PowerAction = Extract<VmAction, 'start' | 'shutdown' | 'reset' | 'forceOff' | 'suspend'>;

/** The context menu of `vm`: what applies now is enabled. Force Off and Reset carry no "…" although
 *  they may ask first: both Apple's and Microsoft's guidelines keep the ellipsis for commands that
 *  need more input, not for a confirmation (Delete… asks which files to keep). */
function menuItems(vm: VmInfo, busy: (action: PowerAction) => boolean): readonly ContextMenuItem<LibraryAction>[] {
  const power = (key: PowerAction, label: string, extra: Partial<ContextMenuItem<LibraryAction>> = {}): ContextMenuItem<LibraryAction> => ({
    key,
    label,
    disabled: !isActionEnabled(key, vm) || busy(key),
    reason: actionBlockedReason(key, vm),
    ...extra,
  });
  return [
    { key: 'open', label: 'Open', shortcut: 'Enter', disabled: vm.config === null },
    // A suspended VM's start resumes it where it was.
    power('start', startLabel(vm), { separatorBefore: true }),
    power('shutdown', 'Shut Down'),
    power('reset', 'Reset'),
    power('suspend', 'Suspend'),
    power('forceOff', 'Force Off', { danger: true }),
    { key: 'clone', label: 'Clone…', separatorBefore: true, disabled: !isActionEnabled('clone', vm), reason: actionBlockedReason('clone', vm) },
    { key: 'export', label: 'Export…', disabled: !isActionEnabled('export', vm), reason: actionBlockedReason('export', vm) },
    { key: 'delete', label: 'Delete…', shortcut: 'Delete', danger: true, separatorBefore: true, disabled: !isActionEnabled('delete', vm) },
  ];
}

/** The app menu's VM commands (Electron) that the library applies to the selected VM. */
const MENU_TO_ACTION: Readonly<Partial<Record<MenuAction, PowerAction>>> = {
  start: 'start',
  restart: 'reset',
  shutdown: 'shutdown',
  'force-off': 'forceOff',
};

/** What the library says above the list after an action: its failure (with the engine's remedy as
 *  text), what the engine thought worth telling, or why a key did nothing. */
type LibraryBanner =
  | { readonly kind: 'error'; readonly vmName: string; readonly error: UiError }
  | { readonly kind: 'notice'; readonly text: string };

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
  /** The New VM wizard is open: for any VM, or on the cloud image source (New Sandbox). */
  const [creating, setCreating] = useState<'vm' | 'sandbox' | null>(null);
  const [menu, setMenu] = useState<{ readonly id: string; readonly at: MenuPoint } | null>(null);
  const [confirming, setConfirming] = useState<{ readonly id: string; readonly action: PowerAction } | null>(null);
  const [deletingId, setDeletingId] = useState<string | null>(null);
  /** Clone… or Export… of a VM, or Import… (no VM). */
  const [copying, setCopying] = useState<{ readonly kind: 'clone' | 'export'; readonly id: string } | { readonly kind: 'import' } | null>(null);
  const [pending, setPending] = useState<ReadonlySet<string>>(new Set());
  const [banner, setBanner] = useState<LibraryBanner | null>(null);
  // The new VM's card takes the focus after the commit that closes the wizard (whose cleanup gives
  // the focus back to New VM first); a requestAnimationFrame could run before that commit.
  const [focusVm, setFocusVm] = useState<string | null>(null);
  useEffect(() => {
    if (focusVm === null) return;
    document.getElementById(optionId(focusVm))?.focus();
    setFocusVm(null);
  }, [focusVm]);
  const typed = useRef(TYPE_AHEAD_EMPTY);
  const listRef = useRef<HTMLDivElement>(null);
  const services = useServices();

  // The app menu's New VM and New Sandbox (Electron) open the same wizard as the buttons.
  useEffect(() => onMenuAction((action) => (action === 'new-vm' || action === 'new-sandbox' ? (setCreating(action === 'new-vm' ? 'vm' : 'sandbox'), true) : false)), []);

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

  const byId = (id: string): VmInfo | null => all?.get(id) ?? null;
  const pendingKey = (id: string, action: PowerAction): string => `${id}:${action}`;
  const busy = (vm: VmInfo, action: PowerAction): boolean => pending.has(pendingKey(vm.id, action));

  /** Runs a power action now (after any confirmation). */
  const perform = async (vm: VmInfo, action: PowerAction): Promise<void> => {
    const key = pendingKey(vm.id, action);
    setBanner(null);
    setPending((p) => new Set(p).add(key));
    try {
      const result =
        action === 'start'
          ? await services.vms.start(vm.id, {})
          : action === 'shutdown'
            ? await services.vms.stop(vm.id, {})
            : action === 'forceOff'
              ? await services.vms.stop(vm.id, { force: true })
              : action === 'suspend'
                ? await services.snapshots.suspend(vm.id)
                : await services.vms.reset(vm.id);
      if (result) upsert(result);
      if (result?.notices?.length) setBanner({ kind: 'notice', text: `${vm.name}: ${result.notices.join(' ')}` });
    } catch (err) {
      setBanner({ kind: 'error', vmName: vm.name, error: forVmState(uiError(err, 'window'), vm.state) });
    } finally {
      setPending((p) => {
        const next = new Set(p);
        next.delete(key);
        return next;
      });
    }
  };

  /** What the toolbar, the context menu and the keys ask for: opened, confirmed first, or done. */
  const request = (vm: VmInfo, action: LibraryAction): void => {
    setMenu(null);
    if (action === 'open') {
      if (vm.config) openVmWindow(vm.id);
      return;
    }
    if (action === 'clone' || action === 'export') {
      if (isActionEnabled(action, vm)) setCopying({ kind: action, id: vm.id });
      else setBanner({ kind: 'notice', text: `“${vm.name}”: ${actionBlockedReason(action, vm) ?? ''}` });
      return;
    }
    if (action === 'delete') {
      if (isActionEnabled('delete', vm)) setDeletingId(vm.id);
      // The Delete key on a running VM says why nothing happens, instead of nothing.
      else setBanner({ kind: 'notice', text: `“${vm.name}” is ${STATE_LABELS[vm.state].toLowerCase()}: shut it down before deleting it.` });
      return;
    }
    if (!isActionEnabled(action, vm) || busy(vm, action)) return;
    if (confirmationFor(action, vm)) setConfirming({ id: vm.id, action });
    else void perform(vm, action);
  };

  // The app menu's Start / Restart / Shut Down / Force Off act on the selected VM, as the toolbar does
  // (and ask first the same way).
  const latest = useRef({ selected, request });
  latest.current = { selected, request };
  useEffect(
    () =>
      onMenuAction((menuAction) => {
        const action = MENU_TO_ACTION[menuAction];
        if (!action) return false;
        const { selected: vm, request: act } = latest.current;
        if (vm) act(vm, action);
        return true;
      }),
    [],
  );

  /** The context menu for `vm`, at the pointer or (from the keyboard) under the card's name. */
  const openMenu = (vm: VmInfo, at: MenuPoint | null): void => {
    // The card takes the focus, so it gets it back when the menu closes (without scrolling: a scroll
    // closes the menu).
    setSelectedId(vm.id);
    const card = document.getElementById(optionId(vm.id));
    card?.focus({ preventScroll: true });
    const box = card?.getBoundingClientRect();
    setMenu({ id: vm.id, at: at ?? (box ? { x: box.left + 12, y: box.top + Math.min(box.height, 48) } : { x: 12, y: 12 }) });
  };

  const onCardContextMenu = (vm: VmInfo, e: MouseEvent<HTMLDivElement>): void => {
    e.preventDefault();
    // A contextmenu from the keyboard carries no pointer position on the card: anchor to the card.
    const box = e.currentTarget.getBoundingClientRect();
    const onCard = e.clientX >= box.left && e.clientX <= box.right && e.clientY >= box.top && e.clientY <= box.bottom && (e.clientX !== 0 || e.clientY !== 0);
    openMenu(vm, onCard ? { x: e.clientX, y: e.clientY } : null);
  };

  const onListKeyDown = (e: KeyboardEvent<HTMLDivElement>): void => {
    if (!selected) return;
    if (e.key === 'Enter') {
      e.preventDefault();
      openVmWindow(selected.id);
      return;
    }
    if (e.key === 'ContextMenu' || (e.key === 'F10' && e.shiftKey)) {
      e.preventDefault();
      openMenu(selected, null);
      return;
    }
    if (e.key === 'Delete' && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      request(selected, 'delete');
      return;
    }
    const now = performance.now();
    if (isTypeAheadKey(e, typed.current, now)) {
      e.preventDefault();
      const r = typeAhead(typed.current, e.key, now, vms.map((v) => v.name), vms.indexOf(selected));
      typed.current = r.state;
      const vm = r.index === null ? null : vms[r.index];
      if (vm) select(vm, true);
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
        <button type="button" className="btn btn-primary" onClick={() => setCreating('vm')}>
          <Icon name="plus" />
          New VM
        </button>
        <button type="button" className="btn" onClick={() => setCreating('sandbox')} title="A Linux VM from a cloud image, with your SSH key, folders and ports (cloud-init)">
          <Icon name="plus" />
          New Sandbox
        </button>
        <button type="button" className="btn" disabled={!selected} onClick={() => selected && openVmWindow(selected.id)}>
          <Icon name="open" />
          Open
        </button>
        <div className="toolbar-group" role="group" aria-label="Power">
          <button
            type="button"
            className="btn"
            disabled={!selected || !isActionEnabled('start', selected) || busy(selected, 'start')}
            title={(selected && actionBlockedReason('start', selected)) ?? undefined}
            onClick={() => selected && request(selected, 'start')}
          >
            <Icon name="play" />
            {selected ? startLabel(selected) : 'Start'}
          </button>
          <button
            type="button"
            className="btn"
            disabled={!selected || !isActionEnabled('shutdown', selected) || busy(selected, 'shutdown')}
            title={(selected && actionBlockedReason('shutdown', selected)) ?? undefined}
            onClick={() => selected && request(selected, 'shutdown')}
          >
            <Icon name="power" />
            Shut Down
          </button>
          <button
            type="button"
            className="btn btn-tool-danger"
            disabled={!selected || !isActionEnabled('forceOff', selected) || busy(selected, 'forceOff')}
            title={(selected && actionBlockedReason('forceOff', selected)) ?? undefined}
            onClick={() => selected && request(selected, 'forceOff')}
          >
            <Icon name="plug" />
            Force Off
          </button>
        </div>
        <button type="button" className="btn" onClick={() => setCopying({ kind: 'import' })} title="Bring in a VM exported to a .vivarium file">
          <Icon name="import" />
          Import…
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
      <DownloadsStrip />

      <main className="library-main">
        {banner?.kind === 'error' && (
          <div className="banner banner-danger" role="alert" data-testid="library-action-error">
            <span>
              {banner.vmName}: {banner.error.message}
              {banner.error.remedy && banner.error.remedy.kind !== 'field' ? ` ${banner.error.remedy.text}` : ''}
            </span>
            <button type="button" className="btn btn-small btn-ghost" onClick={() => setBanner(null)}>
              Dismiss
            </button>
          </div>
        )}
        {banner?.kind === 'notice' && (
          <div className="banner banner-warning" role="status" data-testid="library-notice">
            <span>{banner.text}</span>
            <button type="button" className="btn btn-small btn-ghost" onClick={() => setBanner(null)}>
              Dismiss
            </button>
          </div>
        )}
        {list.kind === 'loading' && <p className="empty muted">Loading VMs…</p>}
        {list.kind === 'error' && (
          <div className="notice notice-danger" role="alert">
            {list.message}
          </div>
        )}
        {list.kind === 'ready' && list.value.size === 0 && (
          <div className="empty">
            <p className="empty-title">No virtual machines yet</p>
            <p className="muted">Create one with New VM, or a Linux sandbox from a cloud image with your SSH key and folders:</p>
            <button type="button" className="btn" onClick={() => setCreating('sandbox')}>
              New Sandbox
            </button>
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
                onContextMenu={(e) => onCardContextMenu(vm, e)}
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

      {menu && byId(menu.id) && (
        <ContextMenu<LibraryAction>
          label={`Actions for ${byId(menu.id)!.name}`}
          items={menuItems(byId(menu.id)!, (a) => busy(byId(menu.id)!, a))}
          at={menu.at}
          onSelect={(action) => request(byId(menu.id)!, action)}
          onClose={() => setMenu(null)}
        />
      )}
      {confirming && byId(confirming.id) && confirmationFor(confirming.action, byId(confirming.id)!) && (
        <ConfirmDialog
          confirmation={confirmationFor(confirming.action, byId(confirming.id)!)!}
          onClose={() => setConfirming(null)}
          onConfirm={() => {
            const vm = byId(confirming.id);
            setConfirming(null);
            if (vm) void perform(vm, confirming.action);
          }}
        />
      )}
      {deletingId && byId(deletingId) && (
        <DeleteDialog
          vm={byId(deletingId)!}
          onClose={() => setDeletingId(null)}
          onDeleted={() => {
            // Its neighbour takes the selection and the focus, as in a file manager.
            const i = vms.findIndex((v) => v.id === deletingId);
            const neighbour = vms[i + 1] ?? vms[i - 1] ?? null;
            setDeletingId(null);
            if (neighbour) requestAnimationFrame(() => select(neighbour, true));
          }}
        />
      )}
      {copying?.kind === 'import' && (
        <ImportDialog
          onClose={() => setCopying(null)}
          onImported={(vm) => {
            setCopying(null);
            upsert(vm);
            setFilter('');
            setSelectedId(vm.id);
            setBanner({ kind: 'notice', text: `Imported “${vm.name}”.${vm.notices?.length ? ` ${vm.notices.join(' ')}` : ''}` });
            setFocusVm(vm.id);
          }}
        />
      )}
      {copying && copying.kind !== 'import' && byId(copying.id) && copying.kind === 'clone' && (
        <CloneDialog
          vm={byId(copying.id)!}
          onClose={() => setCopying(null)}
          onOpen={(clone) => {
            setCopying(null);
            upsert(clone);
            setSelectedId(clone.id);
            openVmWindow(clone.id);
          }}
        />
      )}
      {copying && copying.kind === 'export' && byId(copying.id) && <ExportDialog vm={byId(copying.id)!} onClose={() => setCopying(null)} />}
      {creating && (
        <NewVmDialog
          {...(creating === 'sandbox' ? { initialSource: 'cloud' as const } : {})}
          onClose={() => setCreating(null)}
          onCreated={(vm) => {
            setCreating(null);
            upsert(vm);
            setFilter('');
            setSelectedId(vm.id);
            // What the engine thought worth telling about the new VM (the CLI's "warning: …").
            setBanner(vm.notices?.length ? { kind: 'notice', text: `${vm.name}: ${vm.notices.join(' ')}` } : null);
            setFocusVm(vm.id);
          }}
        />
      )}
    </div>
  );
}
