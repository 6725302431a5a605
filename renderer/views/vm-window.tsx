/** A VM's own window (#/vm/<id>): power toolbar (Suspend, Clone…, Export… too), Display and Serial
 *  consoles, settings, delete. A disabled toolbar button says why (its title and description). */
import { useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import { ConfirmDialog } from '../components/confirm-dialog';
import { Icon, type IconName } from '../components/icons';
import { StateBadge } from '../components/state-badge';
import { Tabs } from '../components/tabs';
import { DeleteDialog, SettingsDialog } from '../components/vm-dialogs';
import { CloneDialog, DiscardStateDialog, ExportDialog } from '../components/vm-copy-dialogs';
import { useServices } from '../engine';
import { useVm } from '../hooks/use-vms';
import { DISCARD_LABEL, forVmState, uiError, type RemedyAction, type UiError } from '../lib/remedy';
import { onMenuAction } from '../lib/menu-events';
import type { MenuAction } from '../../main/common/menu-actions';
import { base64ToBytes, formatOsArch, formatResources, screenshotFileName } from '../lib/format';
import { actionBlockedReason, confirmationFor, hasDisplay, isActionEnabled, pausedText, problemText, startLabel, startTryText, stopOutcomeText, stopProgressText, type VmAction } from '../lib/vm-actions';
import { routeHash } from '../lib/router';
import { leaveVmWindow, openVmWindow } from '../navigation';
import { DisplayConsole } from './display-console';
import { SerialConsole } from './serial-console';
import { SshTerminal } from './ssh-terminal';
import { VmStatsPanel } from './vm-stats';
import { SnapshotsView } from './snapshots-view';
import { PROGRESS_LABELS } from '../lib/snapshot-ui';
import { useVmOperation } from '../hooks/use-vm-operation';
import { HardwareView } from './hardware-view';

type ConsoleTab = 'display' | 'serial' | 'terminal' | 'stats' | 'snapshots' | 'hardware';
type OpenDialog = 'settings' | 'delete' | 'clone' | 'export' | 'discard' | null;

export function VmWindow({ id }: { readonly id: string }): ReactNode {
  const { view, apply } = useVm(id);

  useEffect(() => {
    document.title = view.kind === 'ready' ? `${view.vm.name} — Vivarium` : 'Vivarium';
  }, [view]);

  if (view.kind === 'loading') {
    return (
      <main className="center-page" aria-busy="true">
        <p className="muted">Loading…</p>
      </main>
    );
  }
  if (view.kind === 'removed' || view.kind === 'error') {
    return (
      <main className="center-page">
        <div className={`notice ${view.kind === 'error' ? 'notice-danger' : ''}`} role="alert">
          <h1 className="notice-title">{view.kind === 'removed' ? 'This VM no longer exists' : 'Cannot show this VM'}</h1>
          <p>{view.kind === 'removed' ? 'It was deleted, or the link is out of date.' : view.message}</p>
          <a className="btn" href="#/">
            Go to the library
          </a>
        </div>
      </main>
    );
  }
  return <VmWindowReady vm={view.vm} apply={apply} />;
}

/** The current time, updated every second while `active` (for countdowns). */
function useTicker(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

/** "14:03:07" in the viewer's time zone. */
function formatClock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** What a remedy's button does here: a toolbar action ("retry" repeats the failed one), or a page. */
function remedyButton(action: RemedyAction, failed: VmAction): VmAction | 'host' | 'library' {
  switch (action) {
    case 'shutdown':
      return 'shutdown';
    case 'forceOff':
      return 'forceOff';
    case 'discard':
      return 'discard';
    case 'start':
      return 'start';
    case 'settings':
      return 'settings';
    case 'retry':
      return failed;
    case 'host':
      return 'host';
    case 'library':
      return 'library';
  }
}

interface ToolbarButton {
  readonly action: VmAction;
  readonly label: string;
  readonly icon: IconName;
  readonly danger?: boolean;
}

const MENU_TO_ACTION: Readonly<Partial<Record<MenuAction, VmAction>>> = {
  start: 'start',
  pause: 'pause',
  resume: 'resume',
  restart: 'reset',
  shutdown: 'shutdown',
  'force-off': 'forceOff',
  'ctrl-alt-del': 'ctrlAltDel',
  screenshot: 'screenshot',
  suspend: 'suspend',
  clone: 'clone',
  export: 'export',
};

function VmWindowReady({ vm, apply }: { readonly vm: VmInfo; readonly apply: (vm: VmInfo) => void }): ReactNode {
  const services = useServices();
  const [tab, setTab] = useState<ConsoleTab>(() => (hasDisplay(vm) ? 'display' : 'serial'));
  const [dialog, setDialog] = useState<OpenDialog>(null);
  // Force Off or Reset of a running guest, waiting for the person to confirm.
  const [confirming, setConfirming] = useState<'forceOff' | 'reset' | null>(null);
  const [pending, setPending] = useState<ReadonlySet<VmAction>>(new Set());
  const [actionError, setActionError] = useState<(UiError & { readonly action: VmAction; readonly state?: string; readonly at?: number }) | null>(null);
  // What the engine said is worth knowing about the last action (UEFI settings reset at start…).
  const [notices, setNotices] = useState<readonly string[]>([]);
  const [serialFocus, setSerialFocus] = useState(0);
  // A suspend, snapshot save, clone or export running on this VM (from the toolbar, a dialog or
  // another window): said above the consoles, so it shows whichever tab is open.
  const operation = useVmOperation(vm.id);
  const [outcome, setOutcome] = useState<{ readonly text: string; readonly escalated: boolean } | null>(null);
  // Each press of Start, numbered and timed: a start the engine refuses before QEMU runs fails in a
  // few milliseconds with the same sentence, so the banner carries the try's number and time.
  const [startTry, setStartTry] = useState<{ readonly n: number; readonly at: string } | null>(null);
  const toolbarRef = useRef<HTMLDivElement>(null);
  const whyPrefix = useId();
  const c = vm.config;
  // A start in flight hides the last failure: pressing Start again visibly retries. A failed start's
  // own banner (below, with the try's time) replaces the same sentence shown as the VM's problem.
  const failedStart = actionError?.action === 'start' ? actionError : null;
  const vmProblem = pending.has('start') ? null : problemText(vm);
  const problem = failedStart && failedStart.message === vmProblem ? null : vmProblem;
  const paused = pausedText(vm);
  const now = useTicker(vm.state === 'stopping');
  const stopping = stopProgressText(vm, now);

  // When a stop ends (from here, the CLI or another window), say how: the guest shut down, or what
  // the engine had to do ("the guest did not respond to the power button; forced off after 30 s").
  const previous = useRef(vm.state);
  // A refusal that depended on the VM's state ("is suspended", "is running") goes once the state
  // has changed: its cause is gone. A failed start keeps its banner (its own try number and time).
  // (Dismiss still closes any banner.)
  const latestState = useRef(vm.state);
  latestState.current = vm.state;
  useEffect(() => {
    // A change in the seconds after the failure is usually part of it (the VM ended), not its cause going.
    setActionError((e) => (e && e.action !== 'start' && e.state !== undefined && e.state !== vm.state && Date.now() - (e.at ?? 0) > 3000 ? null : e));
  }, [vm.state]);
  useEffect(() => {
    if (previous.current === 'stopping' && vm.state === 'stopped') setOutcome(stopOutcomeText(vm.lastExit));
    if (vm.state === 'starting' || vm.state === 'running') setOutcome(null);
    previous.current = vm.state;
  }, [vm.state, vm.lastExit]);

  const run = async (action: VmAction, fn: () => Promise<VmInfo | void>): Promise<void> => {
    setActionError(null);
    setNotices([]);
    if (action === 'start') {
      setOutcome(null);
      setStartTry((t) => ({ n: (t?.n ?? 0) + 1, at: new Date().toISOString() }));
    }
    setPending((p) => new Set(p).add(action));
    try {
      const result = await fn();
      if (result) apply(result);
      if (result?.notices) setNotices(result.notices);
    } catch (e) {
      setActionError({ ...forVmState(uiError(e, 'window'), latestState.current), action, state: latestState.current, at: Date.now() });
    } finally {
      setPending((p) => {
        const next = new Set(p);
        next.delete(action);
        return next;
      });
    }
  };

  const screenshot = async (): Promise<void> => {
    const shot = await services.vms.screenshot(vm.id);
    const url = URL.createObjectURL(new Blob([base64ToBytes(shot.pngBase64)], { type: 'image/png' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = screenshotFileName(vm.name, new Date());
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  const confirmed = {
    reset: () => void run('reset', () => services.vms.reset(vm.id)),
    forceOff: () => void run('forceOff', () => services.vms.stop(vm.id, { force: true })),
  };

  const handlers: Readonly<Record<VmAction, () => void>> = {
    start: () => void run('start', () => services.vms.start(vm.id, {})),
    pause: () => void run('pause', () => services.vms.pause(vm.id)),
    resume: () => void run('resume', () => services.vms.resume(vm.id)),
    // Asked first while the guest runs (it loses what it has not saved); Force Off Now while a
    // shutdown hangs, and Force Off of a start that hangs, act at once.
    reset: () => (confirmationFor('reset', vm) ? setConfirming('reset') : confirmed.reset()),
    shutdown: () => void run('shutdown', () => services.vms.stop(vm.id, {})),
    forceOff: () => (confirmationFor('forceOff', vm) ? setConfirming('forceOff') : confirmed.forceOff()),
    ctrlAltDel: () => void run('ctrlAltDel', () => services.vms.sendKeys(vm.id, ['ctrl', 'alt', 'delete'])),
    screenshot: () => void run('screenshot', screenshot),
    settings: () => setDialog('settings'),
    delete: () => setDialog('delete'),
    suspend: () => void run('suspend', () => services.snapshots.suspend(vm.id)),
    clone: () => setDialog('clone'),
    export: () => setDialog('export'),
    discard: () => setDialog('discard'),
  };

  // Commands from the app menu (Electron) act like the toolbar buttons, and only when those are enabled.
  const latest = useRef({ vm, handlers, pending });
  latest.current = { vm, handlers, pending };
  useEffect(
    () =>
      onMenuAction((menu) => {
        const action = MENU_TO_ACTION[menu];
        if (!action) return false;
        const { vm: current, handlers: h, pending: busy } = latest.current;
        if (isActionEnabled(action, current) && !busy.has(action)) h[action]();
        return true;
      }),
    [],
  );

  // Pause and Resume share a slot: the label follows the state.
  const pauseOrResume: ToolbarButton = vm.state === 'paused' ? { action: 'resume', label: 'Resume', icon: 'play' } : { action: 'pause', label: 'Pause', icon: 'pause' };
  const groups: readonly (readonly ToolbarButton[])[] = [
    [
      // A suspended VM's start resumes it where it was: the button says so.
      { action: 'start', label: startLabel(vm), icon: 'play' },
      pauseOrResume,
      // "Reset", not "Restart": it is the hardware reset button (QMP system_reset), not a reboot.
      { action: 'reset', label: 'Reset', icon: 'reset' },
      { action: 'shutdown', label: 'Shut Down', icon: 'power' },
      // A suspended VM runs nothing to force off: its Force Off drops the saved state.
      vm.state === 'suspended' ? { action: 'discard', label: DISCARD_LABEL, icon: 'plug', danger: true } : { action: 'forceOff', label: 'Force Off', icon: 'plug', danger: true },
    ],
    [
      { action: 'ctrlAltDel', label: 'Send Ctrl+Alt+Del', icon: 'keyboard' },
      { action: 'screenshot', label: 'Screenshot', icon: 'camera' },
    ],
    [
      { action: 'suspend', label: 'Suspend', icon: 'suspend' },
      { action: 'clone', label: 'Clone…', icon: 'copy' },
      { action: 'export', label: 'Export…', icon: 'export' },
    ],
    [
      { action: 'settings', label: 'Settings', icon: 'sliders' },
      { action: 'delete', label: 'Delete', icon: 'trash', danger: true },
    ],
  ];

  // Arrow keys move between toolbar buttons (Tab still visits each one).
  const onToolbarKeyDown = (e: KeyboardEvent<HTMLDivElement>): void => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft' && e.key !== 'Home' && e.key !== 'End') return;
    const buttons = Array.from(toolbarRef.current?.querySelectorAll<HTMLButtonElement>('button:not([disabled])') ?? []);
    const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (i < 0 || buttons.length === 0) return;
    e.preventDefault();
    const next = e.key === 'Home' ? 0 : e.key === 'End' ? buttons.length - 1 : (i + (e.key === 'ArrowRight' ? 1 : -1) + buttons.length) % buttons.length;
    buttons[next]?.focus();
  };

  return (
    <div className="page vm-page">
      <header className="vm-header">
        <a className="btn btn-ghost btn-small" href="#/" aria-label="Library">
          <Icon name="back" />
          Library
        </a>
        <h1 className="vm-title">{vm.name}</h1>
        <StateBadge state={vm.state} />
        {c && (
          <span className="vm-facts">
            {formatOsArch(c)} · {formatResources(c)}
            {vm.accel && vm.accel !== 'auto' ? ` · ${vm.accel.toUpperCase()}` : ''}
          </span>
        )}
      </header>

      <div ref={toolbarRef} className="toolbar" role="toolbar" aria-label="VM controls" onKeyDown={onToolbarKeyDown}>
        {groups.map((group, gi) => (
          <div className="toolbar-group" key={gi}>
            {group.map((b) => {
              const enabled = isActionEnabled(b.action, vm) && !pending.has(b.action);
              // Why it is greyed out, as Take Snapshot says it: on hover and to assistive technology.
              const why = pending.has(b.action) ? null : actionBlockedReason(b.action, vm);
              const whyId = `${whyPrefix}-${b.action}`;
              return (
                <button
                  key={b.action}
                  type="button"
                  className={`btn btn-tool ${b.danger ? 'btn-tool-danger' : ''}`}
                  disabled={!enabled}
                  aria-busy={pending.has(b.action) || undefined}
                  title={why ?? undefined}
                  aria-describedby={why ? whyId : undefined}
                  onClick={handlers[b.action]}
                >
                  <Icon name={b.icon} />
                  <span>{b.label}</span>
                </button>
              );
            })}
          </div>
        ))}
        {/* The reasons the disabled buttons point at (outside them: not part of their names). */}
        <div className="visually-hidden">
          {groups.flat().map((b) => {
            const why = pending.has(b.action) ? null : actionBlockedReason(b.action, vm);
            return why ? (
              <span key={b.action} id={`${whyPrefix}-${b.action}`}>
                {why}
              </span>
            ) : null;
          })}
        </div>
      </div>

      {stopping && (
        <div className="banner banner-busy" role="status" data-testid="stop-progress">
          <span>{stopping}</span>
          <button
            type="button"
            className="btn btn-small btn-danger"
            disabled={pending.has('forceOff') || !isActionEnabled('forceOff', vm)}
            onClick={handlers.forceOff}
          >
            Force Off Now
          </button>
        </div>
      )}
      {outcome && !stopping && (
        <div className={`banner ${outcome.escalated ? 'banner-warning' : 'banner-info'}`} role="status" data-testid="stop-outcome">
          <span>{outcome.text}</span>
          <button type="button" className="btn btn-small btn-ghost" onClick={() => setOutcome(null)}>
            Dismiss
          </button>
        </div>
      )}
      {notices.length > 0 && (
        <div className="banner banner-warning" role="status" data-testid="action-notices">
          <span>{notices.join(' ')}</span>
          <button type="button" className="btn btn-small btn-ghost" onClick={() => setNotices([])}>
            Dismiss
          </button>
        </div>
      )}
      {operation && tab !== 'snapshots' && (
        <div className="banner banner-busy" role="status" data-testid="operation-progress">
          <span>
            {PROGRESS_LABELS[operation.operation]}
            {operation.operation === 'create' && operation.snapshot ? ` “${operation.snapshot.name}”` : ''}…{' '}
            {operation.indeterminate ? (
              <progress aria-label="Progress" />
            ) : (
              <>
                <progress max={1} value={operation.fraction} aria-label="Progress" /> {Math.round(operation.fraction * 100)}%
              </>
            )}
          </span>
        </div>
      )}
      {paused && (
        <div className="banner banner-warning" role="status">
          <span>{paused}</span>
        </div>
      )}
      {problem && (
        // Keyed by the failure's time: each new failed start is a new alert, announced again.
        <div key={vm.lastExit?.at ?? 'problem'} className="banner banner-danger" role="alert" data-testid="vm-problem">
          <span>
            {problem}
            {vm.lastExit && vm.state === 'stopped' ? <span className="banner-time"> ({formatClock(vm.lastExit.at)})</span> : null}
          </span>
        </div>
      )}
      {actionError && (failedStart || actionError.message !== problem) && (
        // A failed start is keyed by its try: each one is a new alert, announced again.
        <div key={failedStart && startTry ? `start-${startTry.n}` : 'action'} className="banner banner-danger" role="alert" data-testid={failedStart ? 'start-failure' : undefined}>
          <span>
            {actionError.message}
            {actionError.remedy && actionError.remedy.kind !== 'field' ? ` ${actionError.remedy.text}` : ''}
            {failedStart && startTry ? <span className="banner-time"> {startTryText(startTry.n, formatClock(startTry.at))}</span> : null}
          </span>
          {actionError.remedy?.kind === 'action' && (
            <button
              type="button"
              className="btn btn-small"
              onClick={() => {
                const remedy = actionError.remedy;
                const act = remedyButton(remedy?.kind === 'action' ? remedy.action : 'retry', actionError.action);
                setActionError(null);
                if (act === 'host') window.location.hash = routeHash({ kind: 'host' });
                else if (act === 'library') leaveVmWindow();
                else handlers[act]();
              }}
            >
              {actionError.remedy.label}
            </button>
          )}
          <button type="button" className="btn btn-small btn-ghost" onClick={() => setActionError(null)}>
            Dismiss
          </button>
        </div>
      )}

      <Tabs<ConsoleTab>
        label="Consoles"
        className="console-tabs"
        active={tab}
        onActive={(next, by) => {
          setTab(next);
          // Clicking Serial means "I want to type there", as in other workstation apps.
          if (next === 'serial' && by === 'pointer') setSerialFocus((n) => n + 1);
        }}
        tabs={[
          { key: 'display', label: 'Display', icon: <Icon name="monitor" />, panel: <DisplayConsole vm={vm} /> },
          { key: 'serial', label: 'Serial', icon: <Icon name="terminal" />, panel: <SerialConsole vm={vm} active={tab === 'serial'} focusRequest={serialFocus} /> },
          // Issue 11: cloud-init sandboxes get an SSH terminal (views/ssh-terminal.tsx).
          ...(c?.cloudInit ? [{ key: 'terminal' as const, label: 'Terminal', icon: <Icon name="terminal" />, panel: <SshTerminal vm={vm} active={tab === 'terminal'} /> }] : []),
          { key: 'stats', label: 'Stats', icon: <Icon name="chart" />, panel: <VmStatsPanel vm={vm} /> },
          { key: 'snapshots', label: 'Snapshots', icon: <Icon name="camera" />, panel: <SnapshotsView vm={vm} /> },
          { key: 'hardware', label: 'Hardware', icon: <Icon name="sliders" />, panel: <HardwareView vm={vm} /> },
        ]}
      />

      {confirming && confirmationFor(confirming, vm) && (
        <ConfirmDialog
          confirmation={confirmationFor(confirming, vm)!}
          onClose={() => setConfirming(null)}
          onConfirm={() => {
            setConfirming(null);
            // The state may have moved on while the dialog was open: act only if it still applies.
            if (isActionEnabled(confirming, vm) && !pending.has(confirming)) confirmed[confirming]();
          }}
        />
      )}
      {dialog === 'settings' && c && (
        <SettingsDialog
          vm={vm}
          config={c}
          onClose={() => setDialog(null)}
          onSaved={(updated) => {
            apply(updated);
            setDialog(null);
          }}
        />
      )}
      {dialog === 'clone' && (
        <CloneDialog
          vm={vm}
          onClose={() => setDialog(null)}
          onOpen={(clone) => {
            setDialog(null);
            openVmWindow(clone.id);
          }}
        />
      )}
      {dialog === 'export' && <ExportDialog vm={vm} onClose={() => setDialog(null)} />}
      {dialog === 'discard' && (
        <DiscardStateDialog
          vm={vm}
          onClose={() => setDialog(null)}
          onDone={(updated) => updated && apply(updated)}
          onError={(message) => setActionError({ message, remedy: null, fields: {}, action: 'discard' })}
        />
      )}
      {dialog === 'delete' && (
        <DeleteDialog
          vm={vm}
          onClose={() => setDialog(null)}
          onDeleted={() => {
            setDialog(null);
            leaveVmWindow();
          }}
        />
      )}
    </div>
  );
}
