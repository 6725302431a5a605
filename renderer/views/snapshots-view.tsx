/**
 * The VM window's Snapshots tab (issue 10): the snapshot tree with date, size, thumbnail (click to
 * enlarge) and "You are here"; Take Snapshot (with progress), Revert (offering to snapshot the
 * present first), Rename and Delete; Clone and Suspend. While the VM is suspended its disks must stay
 * as they are: Take Snapshot, Revert and Delete are disabled, saying so. Everything goes through the
 * engine's `snapshots` service.
 */
import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from 'react';
import type { SnapshotInfo } from '../../main/common/contract/snapshots';
import type { VmInfo } from '../../main/common/models/vm-state';
import { Dialog } from '../components/dialog';
import { CloneDialog, DiscardStateDialog } from '../components/vm-copy-dialogs';
import { useServices } from '../engine';
import { useVmOperation } from '../hooks/use-vm-operation';
import { formatBytes } from '../../main/common/format';
import { isVivariumError } from '../../main/common/errors';
import { DISCARD_LABEL, forVmState, uiError } from '../lib/remedy';
import { localizeIsoTimes, nextSnapshotName, PROGRESS_LABELS, snapshotBlock, snapshotDate, snapshotTreeRows } from '../lib/snapshot-ui';
import { actionBlockedReason } from '../lib/vm-actions';
import { openVmWindow } from '../navigation';

type Ask =
  | { readonly kind: 'revert'; readonly snap: SnapshotInfo }
  | { readonly kind: 'delete'; readonly snap: SnapshotInfo }
  | { readonly kind: 'rename'; readonly snap: SnapshotInfo }
  | { readonly kind: 'clone' }
  | { readonly kind: 'discard' }
  | { readonly kind: 'picture'; readonly snap: SnapshotInfo; readonly url: string }
  | null;

/** How long after a failure a change of the VM's state is taken as part of it (ms). */
const ERROR_GRACE_MS = 3000;

/** A date as the rows show it, in the viewer's locale. */
const formatDate = (d: Date): string => d.toLocaleString();

/** The thumbnail of a snapshot: a button that shows it larger. */
function Thumbnail({ vmId, snap, onOpen }: { readonly vmId: string; readonly snap: SnapshotInfo; readonly onOpen: (url: string) => void }): ReactNode {
  const services = useServices();
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!snap.hasThumbnail) return;
    let live = true;
    services.snapshots.thumbnail(vmId, snap.id).then(
      (t) => live && t && setUrl(`data:image/png;base64,${t.pngBase64}`),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [services, vmId, snap.id, snap.hasThumbnail]);
  return url ? (
    <button type="button" className="snapshot-thumb-btn" onClick={() => onOpen(url)} aria-label={`Enlarge the screen at snapshot ${snap.name}`} title="Show larger">
      <img className="snapshot-thumb" src={url} alt={`Screen at snapshot ${snap.name}`} width={96} />
    </button>
  ) : null;
}

export function SnapshotsView({ vm }: { readonly vm: VmInfo }): ReactNode {
  const services = useServices();
  const [list, setList] = useState<readonly SnapshotInfo[] | null>(null);
  const [error, setErrorState] = useState<string | null>(null);
  const [errorOnName, setErrorOnName] = useState(false);
  // When the error was shown: a state change in the seconds after a failure is usually part of it
  // (a failed revert ends the VM), not its cause going away.
  const errorAt = useRef(0);
  const setError = useCallback((message: string | null) => {
    if (message !== null) errorAt.current = Date.now();
    setErrorState(message);
    setErrorOnName(false);
  }, []);
  // What runs on the VM (this tab's action, a dialog's, another window's), live.
  const progress = useVmOperation(vm.id);
  const [busy, setBusy] = useState(false);
  // An operation of this page or of another (a second window, the CLI's through the same engine):
  // the engine runs one at a time per VM, so the tab's actions wait.
  const working = busy || progress !== null;
  const [ask, setAsk] = useState<Ask>(null);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [notice, setNotice] = useState<string | null>(null);
  // Where the focus goes once an action is done (a key of a [data-focus-key] element in the tab):
  // the button that did it is disabled while it runs and a deleted row is gone.
  const [focusKey, setFocusKey] = useState<string | null>(null);
  const sectionRef = useRef<HTMLElement>(null);
  const nameId = useId();
  const descId = useId();
  const takeWhyId = useId();
  const errorId = useId();
  const rowWhyId = useId();
  const rowNameId = useId();
  /** A row button's description: the snapshot it acts on (screen readers hear "Revert, first"
   *  rather than a list of identical "Revert"s), and why it is disabled. */
  const describe = (snap: SnapshotInfo, why: boolean): string => `${rowNameId}-${snap.id}${why ? ` ${rowWhyId}` : ''}`;

  const reload = useCallback(async () => {
    try {
      setList(await services.snapshots.list(vm.id));
    } catch (e) {
      setError(uiError(e).message);
    }
  }, [services, vm.id]);

  // An error about the VM's state goes when the state changes (a suspended VM resumed, a running
  // one shut down): its cause is gone.
  useEffect(() => {
    if (Date.now() - errorAt.current > ERROR_GRACE_MS) setError(null);
  }, [vm.state, setError]);

  useEffect(() => {
    if (focusKey === null || working) return;
    // Only focus that was lost (its button disabled while the action ran, its row deleted) is put
    // back: where the person has moved it since stays.
    const active = document.activeElement;
    if (active && active !== document.body && active.isConnected) {
      setFocusKey(null);
      return;
    }
    const el = sectionRef.current?.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    if (el && !(el as HTMLButtonElement).disabled) {
      el.focus();
      setFocusKey(null);
    }
  }, [focusKey, working, list]);

  useEffect(() => {
    void reload();
    const a = services.snapshots.onDidChange((e) => {
      if (e.vmId === vm.id) void reload();
    });
    return () => {
      a.dispose();
    };
  }, [services, vm.id, reload]);

  /** Runs an action; then the focus goes to the element with `focusAfter` (when one is given). */
  const run = async (what: () => Promise<unknown>, focusAfter?: string): Promise<boolean> => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      // A revert says what it changed besides the disks (a disk detached or attached again).
      const notices = ((await what()) as { notices?: readonly string[] } | undefined)?.notices;
      if (notices?.length) setNotice(notices.join(' '));
      await reload();
      if (focusAfter) setFocusKey(focusAfter);
      return true;
    } catch (e) {
      const message = forVmState(uiError(e), vm.state).message;
      // A name refused (taken, not allowed) is the name field's: it describes the field, which
      // takes the focus back.
      const onName = isVivariumError(e) && e.field === 'name';
      setError(message);
      setErrorOnName(onName);
      if (focusAfter) setFocusKey(onName ? 'take-name' : focusAfter);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const live = vm.state === 'running' || vm.state === 'paused';
  // QEMU cannot save the memory of a running VM whose 9p shared folders are mounted (the engine
  // refuses with the reason): say so up front.
  const shares = vm.config?.shares ?? [];
  const memoryBlocked = live && shares.length > 0;
  // A disk that can never hold one (raw, or used in place): said before any click.
  const diskBlocked = snapshotBlock(vm.config);
  const canSnapshot = diskBlocked === null && (vm.state === 'stopped' || (live && !memoryBlocked));
  const suspended = vm.state === 'suspended';
  // While suspended, the disks must stay as the saved state left them (the engine refuses).
  const rowWhy = suspended ? `The VM is suspended: its disks must stay as they are until it resumes. Resume it, or use ${DISCARD_LABEL}, first.` : null;
  const takeWhy = diskBlocked
    ? diskBlocked
    : memoryBlocked
    ? `Shared folders (${shares.map((x) => x.tag).join(', ')}) keep QEMU from saving the memory of this running VM: shut it down to take a snapshot of its disks, or remove the shared folders. Suspend is not possible either.`
    : suspended
      ? `The VM is suspended: resume it (Resume), or use ${DISCARD_LABEL}, first.`
      : vm.state === 'starting' || vm.state === 'stopping'
        ? 'Wait until the VM has started or stopped.'
        : vm.state === 'broken'
          ? 'The VM cannot be read.'
          : null;
  const cloneWhy = actionBlockedReason('clone', vm);
  const suspendWhy = actionBlockedReason('suspend', vm);

  /** Runs a rename or clone from its dialog: null when done, else the error to show in the dialog. */
  const runInDialog = async (what: () => Promise<unknown>): Promise<string | null> => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const r = await what();
      const notices = (r as { notices?: readonly string[] } | undefined)?.notices;
      if (notices?.length) setNotice(notices.join(' '));
      await reload();
      return null;
    } catch (e) {
      return forVmState(uiError(e), vm.state).message;
    } finally {
      setBusy(false);
    }
  };
  const rows = snapshotTreeRows(list ?? []);
  // A name refused as taken is the name field's error (the engine: 'already has a snapshot named').
  const nameTaken = error !== null && errorOnName;
  const rowIndex = (id: string): number => rows.findIndex((r) => r.snap.id === id);
  /** After a delete: the next row's Revert, else the one before, else the name field. */
  const focusAfterDelete = (id: string): string => {
    const i = rowIndex(id);
    const next = rows[i + 1] ?? rows[i - 1];
    return next ? `revert-${next.snap.id}` : 'take-name';
  };

  return (
    <section ref={sectionRef} className="snapshots-view" aria-label="Snapshots">
      <form
        className="snapshot-take"
        onSubmit={(e) => {
          e.preventDefault();
          const sentName = name;
          const sentDescription = description;
          void run(() => services.snapshots.create(vm.id, { ...(sentName.trim() ? { name: sentName.trim() } : {}), ...(sentDescription ? { description: sentDescription } : {}) }), 'take').then((ok) => {
            // Clear only what was sent: anything typed since stays.
            if (ok) {
              setName((n) => (n === sentName ? '' : n));
              setDescription((d) => (d === sentDescription ? '' : d));
            }
          });
        }}
      >
        <label htmlFor={nameId}>Snapshot name</label>
        <input
          id={nameId}
          className="input"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            setError(null);
          }}
          placeholder={list ? nextSnapshotName(list) : ''}
          maxLength={100}
          readOnly={busy}
          aria-busy={busy}
          data-focus-key="take-name"
          aria-invalid={nameTaken}
          aria-describedby={nameTaken ? errorId : undefined}
        />
        <label htmlFor={descId}>Description</label>
        <input id={descId} className="input" value={description} onChange={(e) => setDescription(e.target.value)} maxLength={2000} readOnly={busy} aria-busy={busy} />
        <button type="submit" className="btn btn-primary btn-small" disabled={working || !canSnapshot} data-focus-key="take" title={takeWhy ?? undefined} aria-describedby={takeWhyId}>
          Take Snapshot
        </button>
        <span id={takeWhyId} className="muted">
          {takeWhy ?? (live ? 'Includes the memory: a revert resumes the guest where it was.' : 'The VM is shut down: the snapshot holds its disks.')}
        </span>
      </form>
      <div className="snapshot-actions">
        <button type="button" className="btn btn-small" disabled={working || cloneWhy !== null} title={cloneWhy ?? undefined} onClick={() => setAsk({ kind: 'clone' })}>
          Clone…
        </button>
        <button type="button" className="btn btn-small" disabled={working || suspendWhy !== null} title={suspendWhy ?? undefined} onClick={() => void run(() => services.snapshots.suspend(vm.id))}>
          Suspend
        </button>
        {suspended && (
          <button type="button" className="btn btn-small btn-danger" disabled={working} onClick={() => setAsk({ kind: 'discard' })} data-focus-key="discard">
            {DISCARD_LABEL}
          </button>
        )}
        {rowWhy && (
          <span id={rowWhyId} className="muted">
            {rowWhy}
          </span>
        )}
      </div>
      {progress && (
        <div role="status" className="snapshot-progress">
          {PROGRESS_LABELS[progress.operation]}
          {progress.operation === 'create' && progress.snapshot ? ` “${progress.snapshot.name}”` : ''}…{' '}
          {/* QEMU's snapshot jobs report nothing until they end: a moving bar, not a stuck 0 %. */}
          {progress.indeterminate ? (
            <progress aria-label="Progress" />
          ) : (
            <>
              <progress max={1} value={progress.fraction} aria-label="Progress" /> {Math.round(progress.fraction * 100)}%
            </>
          )}
        </div>
      )}
      {busy && !progress && (
        <div role="status" className="snapshot-progress">
          Working…
        </div>
      )}
      {error && (
        <div id={errorId} className="snapshot-message snapshot-error" role="alert">
          <span>{error}</span>
          <button type="button" className="btn btn-small btn-ghost" onClick={() => setError(null)}>
            Dismiss
          </button>
        </div>
      )}
      {notice && (
        <div className="snapshot-message" role="status">
          <span>{notice}</span>
          <button type="button" className="btn btn-small btn-ghost" onClick={() => setNotice(null)}>
            Dismiss
          </button>
        </div>
      )}
      {list !== null && rows.length === 0 && <p className="muted">No snapshots yet.</p>}
      <ul className="snapshot-tree" aria-label="Snapshot tree">
        {rows.map(({ snap, depth, after }) => (
          <li key={snap.id} className="snapshot-row" style={{ marginInlineStart: `${Math.min(depth, 6) * 1.5}rem` }} aria-label={snap.name} data-current={snap.current}>
            <Thumbnail vmId={vm.id} snap={snap} onOpen={(url) => setAsk({ kind: 'picture', snap, url })} />
            <div className="snapshot-text">
              <strong id={`${rowNameId}-${snap.id}`}>{snap.name}</strong>
              {snap.current && <span className="badge">You are here</span>}
              <div className="muted">
                {snapshotDate(snap.createdAt, formatDate)} · {snap.withMemory ? `with memory, ${formatBytes(snap.sizeBytes)}` : 'disks only'}
                {after !== null ? ` · after “${after}”` : ''}
              </div>
              {snap.description && <div className="snapshot-description">{localizeIsoTimes(snap.description, formatDate)}</div>}
            </div>
            <div className="snapshot-buttons">
              <button
                type="button"
                className="btn btn-small"
                disabled={working || rowWhy !== null}
                title={rowWhy ?? undefined}
                aria-describedby={describe(snap, rowWhy !== null)}
                data-focus-key={`revert-${snap.id}`}
                onClick={() => setAsk({ kind: 'revert', snap })}
              >
                Revert
              </button>
              <button type="button" className="btn btn-small btn-ghost" disabled={working} aria-describedby={describe(snap, false)} data-focus-key={`rename-${snap.id}`} onClick={() => setAsk({ kind: 'rename', snap })}>
                Rename
              </button>
              <button
                type="button"
                className="btn btn-small btn-danger"
                disabled={working || rowWhy !== null}
                title={rowWhy ?? undefined}
                aria-describedby={describe(snap, rowWhy !== null)}
                onClick={() => setAsk({ kind: 'delete', snap })}
              >
                Delete
              </button>
            </div>
          </li>
        ))}
      </ul>
      {ask?.kind === 'revert' && (
        <Dialog title={`Revert to “${ask.snap.name}”?`} onClose={() => setAsk(null)} role="alertdialog">
          <p className="dialog-text">What the VM holds now is lost unless you take a snapshot of it first.</p>
          {!live && ask.snap.withMemory ? (
            <p className="dialog-text">This snapshot holds the memory of the running VM: the VM starts, and runs on from that moment.</p>
          ) : null}
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => setAsk(null)} data-autofocus>
              Cancel
            </button>
            <button
              type="button"
              className="btn"
              onClick={() => {
                const snap = ask.snap;
                setAsk(null);
                void run(() => services.snapshots.revert(vm.id, snap.id), `revert-${snap.id}`);
              }}
            >
              Revert Without Saving
            </button>
            <button
              type="button"
              className="btn btn-primary"
              onClick={() => {
                const snap = ask.snap;
                setAsk(null);
                void run(async () => {
                  await services.snapshots.create(vm.id, { description: `Before reverting to ${snap.name}` });
                  return services.snapshots.revert(vm.id, snap.id);
                }, `revert-${snap.id}`);
              }}
            >
              Snapshot, Then Revert
            </button>
          </div>
        </Dialog>
      )}
      {ask?.kind === 'delete' && (
        <Dialog title={`Delete snapshot “${ask.snap.name}”?`} onClose={() => setAsk(null)} role="alertdialog" className="dialog-narrow">
          <p className="dialog-text">Snapshots taken after it stay, and can still be reverted to.</p>
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => setAsk(null)} data-autofocus>
              Cancel
            </button>
            <button
              type="button"
              className="btn btn-danger"
              onClick={() => {
                const snap = ask.snap;
                setAsk(null);
                void run(() => services.snapshots.delete(vm.id, snap.id), focusAfterDelete(snap.id));
              }}
            >
              Delete Snapshot
            </button>
          </div>
        </Dialog>
      )}
      {ask?.kind === 'discard' && <DiscardStateDialog vm={vm} onClose={() => setAsk(null)} onDone={() => setFocusKey('take-name')} onError={(message) => setError(message)} />}
      {ask?.kind === 'picture' && (
        <Dialog title={`Screen at snapshot “${ask.snap.name}”`} onClose={() => setAsk(null)} className="dialog-picture">
          <img className="snapshot-picture" src={ask.url} alt={`Screen at snapshot ${ask.snap.name}, enlarged`} />
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => setAsk(null)} data-autofocus>
              Close
            </button>
          </div>
        </Dialog>
      )}
      {ask?.kind === 'clone' && (
        <CloneDialog
          vm={vm}
          onClose={() => setAsk(null)}
          onOpen={(clone) => {
            setAsk(null);
            openVmWindow(clone.id);
          }}
        />
      )}
      {ask?.kind === 'rename' && (
        <NameDialog
          title={`Rename “${ask.snap.name}”`}
          initial={ask.snap.name}
          onClose={() => setAsk(null)}
          onDone={async (value) => {
            const a = ask;
            // The dialog stays open on an error, which it shows under the name (what was typed stays).
            const failed = await runInDialog(() => services.snapshots.edit(vm.id, a.snap.id, { name: value }));
            if (failed === null) {
              setAsk(null);
              setFocusKey(`rename-${a.snap.id}`);
            }
            return failed;
          }}
        />
      )}
    </section>
  );
}

function NameDialog(props: {
  readonly title: string;
  readonly initial: string;
  readonly onClose: () => void;
  /** Resolves with the error to show (the dialog stays open), or null when done. */
  readonly onDone: (name: string) => Promise<string | null>;
}): ReactNode {
  const [value, setValue] = useState(props.initial);
  const [error, setError] = useState<string | null>(null);
  const [working, setWorking] = useState(false);
  const id = useId();
  const errId = useId();
  return (
    <Dialog title={props.title} onClose={props.onClose} className="dialog-narrow">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!value.trim() || working) return;
          setWorking(true);
          setError(null);
          void props.onDone(value.trim()).then((why) => {
            setWorking(false);
            setError(why);
          });
        }}
      >
        <label htmlFor={id}>Name</label>
        <input
          id={id}
          value={value}
          onChange={(e) => {
            setValue(e.target.value);
            setError(null);
          }}
          className="input"
          maxLength={100}
          data-autofocus
          aria-invalid={error !== null}
          aria-describedby={error !== null ? errId : undefined}
        />
        {error !== null && (
          <div id={errId} className="field-error" role="alert">
            {error}
          </div>
        )}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={!value.trim() || working}>
            {working ? 'Working…' : 'OK'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
