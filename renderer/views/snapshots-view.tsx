/**
 * The VM window's Snapshots tab (issue 10): the snapshot tree with date, size, thumbnail and "You are
 * here"; Take Snapshot (with progress), Revert (offering to snapshot the present first), Rename and
 * Delete; Clone and Suspend. Everything goes through the engine's `snapshots` service.
 */
import { useCallback, useEffect, useId, useState, type ReactNode } from 'react';
import type { SnapshotInfo, SnapshotProgressEvent } from '../../main/common/contract/snapshots';
import type { VmInfo } from '../../main/common/models/vm-state';
import { Dialog } from '../components/dialog';
import { useServices } from '../engine';
import { formatBytes } from '../../main/common/format';
import { uiError } from '../lib/remedy';

type Ask =
  | { readonly kind: 'revert'; readonly snap: SnapshotInfo }
  | { readonly kind: 'delete'; readonly snap: SnapshotInfo }
  | { readonly kind: 'rename'; readonly snap: SnapshotInfo }
  | { readonly kind: 'clone' }
  | { readonly kind: 'discard' }
  | null;

/** Snapshots of the VM, oldest first, as a tree: children under their parent. */
function treeRows(list: readonly SnapshotInfo[]): { readonly snap: SnapshotInfo; readonly depth: number }[] {
  const ids = new Set(list.map((s) => s.id));
  const kids = new Map<string | null, SnapshotInfo[]>();
  for (const s of list) {
    const p = s.parentId !== null && ids.has(s.parentId) ? s.parentId : null;
    kids.set(p, [...(kids.get(p) ?? []), s]);
  }
  const out: { snap: SnapshotInfo; depth: number }[] = [];
  const walk = (p: string | null, depth: number): void => {
    for (const s of kids.get(p) ?? []) {
      out.push({ snap: s, depth });
      walk(s.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

function Thumbnail({ vmId, snap }: { readonly vmId: string; readonly snap: SnapshotInfo }): ReactNode {
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
  return url ? <img className="snapshot-thumb" src={url} alt={`Screen at snapshot ${snap.name}`} width={96} /> : null;
}

export function SnapshotsView({ vm }: { readonly vm: VmInfo }): ReactNode {
  const services = useServices();
  const [list, setList] = useState<readonly SnapshotInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [progress, setProgress] = useState<SnapshotProgressEvent | null>(null);
  const [busy, setBusy] = useState(false);
  const [ask, setAsk] = useState<Ask>(null);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [notice, setNotice] = useState<string | null>(null);
  const nameId = useId();
  const descId = useId();

  const reload = useCallback(async () => {
    try {
      setList(await services.snapshots.list(vm.id));
    } catch (e) {
      setError(uiError(e).message);
    }
  }, [services, vm.id]);

  useEffect(() => {
    void reload();
    const a = services.snapshots.onDidChange((e) => {
      if (e.vmId === vm.id) void reload();
    });
    const b = services.snapshots.onDidProgress((e) => {
      if (e.vmId === vm.id) setProgress(e.done ? null : e);
    });
    return () => {
      a.dispose();
      b.dispose();
    };
  }, [services, vm.id, reload]);

  const run = async (what: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      // A revert says what it changed besides the disks (a disk detached or attached again).
      const notices = ((await what()) as { notices?: readonly string[] } | undefined)?.notices;
      if (notices?.length) setNotice(notices.join(' '));
      await reload();
      return true;
    } catch (e) {
      setError(uiError(e).message);
      return false;
    } finally {
      setBusy(false);
      setProgress(null);
    }
  };

  const live = vm.state === 'running' || vm.state === 'paused';
  // QEMU cannot save the memory of a running VM whose 9p shared folders are mounted (the engine
  // refuses with the reason): say so up front.
  const shares = vm.config?.shares ?? [];
  const memoryBlocked = live && shares.length > 0;
  const canSnapshot = vm.state === 'stopped' || (live && !memoryBlocked);

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
      return uiError(e).message;
    } finally {
      setBusy(false);
      setProgress(null);
    }
  };
  const rows = treeRows(list ?? []);

  return (
    <section className="snapshots-view" aria-label="Snapshots">
      <form
        className="snapshot-take"
        onSubmit={(e) => {
          e.preventDefault();
          const sentName = name;
          const sentDescription = description;
          void run(() => services.snapshots.create(vm.id, { ...(sentName.trim() ? { name: sentName.trim() } : {}), ...(sentDescription ? { description: sentDescription } : {}) })).then((ok) => {
            // Clear only what was sent: anything typed since stays.
            if (ok) {
              setName((n) => (n === sentName ? '' : n));
              setDescription((d) => (d === sentDescription ? '' : d));
            }
          });
        }}
      >
        <label htmlFor={nameId}>Snapshot name</label>
        <input id={nameId} value={name} onChange={(e) => setName(e.target.value)} placeholder="Snapshot N" maxLength={100} readOnly={busy} aria-busy={busy} />
        <label htmlFor={descId}>Description</label>
        <input id={descId} value={description} onChange={(e) => setDescription(e.target.value)} maxLength={2000} readOnly={busy} aria-busy={busy} />
        <button type="submit" className="btn btn-primary btn-small" disabled={busy || !canSnapshot}>
          Take Snapshot
        </button>
        <span className="muted">
          {memoryBlocked
            ? `Shared folders (${shares.map((x) => x.tag).join(', ')}) keep QEMU from saving the memory of this running VM: shut it down to take a snapshot of its disks, or remove the shared folders. Suspend is not possible either.`
            : vm.state === 'suspended'
              ? 'The VM is suspended: start it (it resumes) or discard its saved state first.'
              : live
                ? 'Includes the memory: a revert resumes the guest where it was.'
                : 'The VM is shut down: the snapshot holds its disks.'}
        </span>
      </form>
      <div className="snapshot-actions">
        <button type="button" className="btn btn-small" disabled={busy || vm.state !== 'stopped'} onClick={() => setAsk({ kind: 'clone' })}>
          Clone…
        </button>
        <button type="button" className="btn btn-small" disabled={busy || !live || memoryBlocked} onClick={() => void run(() => services.snapshots.suspend(vm.id))}>
          Suspend
        </button>
        {vm.state === 'suspended' && (
          <button type="button" className="btn btn-small btn-danger" disabled={busy} onClick={() => setAsk({ kind: 'discard' })}>
            Discard Saved State…
          </button>
        )}
      </div>
      {progress && (
        <div role="status" className="snapshot-progress">
          {progress.operation === 'create' ? 'Saving snapshot' : progress.operation === 'revert' ? 'Reverting' : progress.operation === 'suspend' ? 'Suspending' : progress.operation === 'clone' ? 'Cloning' : 'Deleting snapshot'}
          … <progress max={1} value={progress.fraction} aria-label="Progress" /> {Math.round(progress.fraction * 100)}%
        </div>
      )}
      {busy && !progress && (
        <div role="status" className="snapshot-progress">
          Working…
        </div>
      )}
      {error && (
        <div className="notice notice-danger" role="alert">
          {error}
        </div>
      )}
      {notice && (
        <div className="notice" role="status">
          {notice}
        </div>
      )}
      {list !== null && rows.length === 0 && <p className="muted">No snapshots yet.</p>}
      <ul className="snapshot-tree" aria-label="Snapshot tree">
        {rows.map(({ snap, depth }) => (
          <li key={snap.id} className="snapshot-row" style={{ marginInlineStart: `${depth * 1.5}rem` }} aria-label={snap.name} data-current={snap.current}>
            <Thumbnail vmId={vm.id} snap={snap} />
            <div className="snapshot-text">
              <strong>{snap.name}</strong>
              {snap.current && <span className="badge">You are here</span>}
              <div className="muted">
                {new Date(snap.createdAt).toLocaleString()} · {snap.withMemory ? `with memory, ${formatBytes(snap.sizeBytes)}` : 'disks only'}
              </div>
              {snap.description && <div>{snap.description}</div>}
            </div>
            <div className="snapshot-buttons">
              <button type="button" className="btn btn-small" disabled={busy} onClick={() => setAsk({ kind: 'revert', snap })}>
                Revert
              </button>
              <button type="button" className="btn btn-small btn-ghost" disabled={busy} onClick={() => setAsk({ kind: 'rename', snap })}>
                Rename
              </button>
              <button type="button" className="btn btn-small btn-danger" disabled={busy} onClick={() => setAsk({ kind: 'delete', snap })}>
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
                void run(() => services.snapshots.revert(vm.id, snap.id));
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
                });
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
                void run(() => services.snapshots.delete(vm.id, snap.id));
              }}
            >
              Delete Snapshot
            </button>
          </div>
        </Dialog>
      )}
      {ask?.kind === 'discard' && (
        <Dialog title={`Discard the saved state of “${vm.name}”?`} onClose={() => setAsk(null)} role="alertdialog" className="dialog-narrow">
          <p className="dialog-text">What the VM was running when it was suspended is lost, as after a power cut. The next start boots it afresh.</p>
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => setAsk(null)} data-autofocus>
              Cancel
            </button>
            <button
              type="button"
              className="btn btn-danger"
              onClick={() => {
                setAsk(null);
                void run(() => services.vms.stop(vm.id, { force: true }));
              }}
            >
              Discard Saved State
            </button>
          </div>
        </Dialog>
      )}
      {(ask?.kind === 'rename' || ask?.kind === 'clone') && (
        <NameDialog
          title={ask.kind === 'rename' ? `Rename “${ask.snap.name}”` : `Clone “${vm.name}”`}
          initial={ask.kind === 'rename' ? ask.snap.name : `${vm.name} copy`}
          linkedOption={ask.kind === 'clone'}
          onClose={() => setAsk(null)}
          onDone={async (value, linked) => {
            const a = ask;
            // The dialog stays open on an error, which it shows under the name (what was typed stays).
            const failed = await runInDialog(() => (a.kind === 'rename' ? services.snapshots.edit(vm.id, a.snap.id, { name: value }) : services.snapshots.clone(vm.id, { name: value, linked })));
            if (failed === null) setAsk(null);
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
  readonly linkedOption: boolean;
  readonly onClose: () => void;
  /** Resolves with the error to show (the dialog stays open), or null when done. */
  readonly onDone: (name: string, linked: boolean) => Promise<string | null>;
}): ReactNode {
  const [value, setValue] = useState(props.initial);
  const [linked, setLinked] = useState(false);
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
          void props.onDone(value.trim(), linked).then((why) => {
            setWorking(false);
            setError(why);
          });
        }}
      >
        <label htmlFor={id}>Name</label>
        <input
          id={id}
          value={value}
          onChange={(e) => setValue(e.target.value)}
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
        {props.linkedOption && (
          <label>
            <input type="checkbox" checked={linked} onChange={(e) => setLinked(e.target.checked)} /> Linked clone (instant; shares this VM&apos;s disks read-only)
          </label>
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
