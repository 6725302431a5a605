/**
 * The VM window's Hardware tab (issue 9): the VM's disks and CD drives as one list, like
 * virt-manager's hardware list. Grow a disk (also while the VM runs), add a new disk on the bus its
 * guest has drivers for (virtio, SATA, NVMe) or remove one (VM shut down; the file is kept unless
 * asked, and only a file in the VM's folder is ever deleted), add or remove a CD drive (shut down),
 * insert or eject the CD of any drive (also while it runs: the guest sees the change). Everything
 * goes through the engine's `disks` service; its sentences are shown as they come.
 */
import { useCallback, useEffect, useId, useState, type ReactNode } from 'react';
import type { DriveInfo, NewDiskBus } from '../../main/common/contract/disks';
import type { VmInfo } from '../../main/common/models/vm-state';
import { formatBytes } from '../../main/common/format';
import { BrowseButton } from '../components/file-chooser';
import { useServices } from '../engine';
import { driveSizeBytes, removeConfirmation, RUNNING_NOTE } from '../lib/hardware';
import { ConfirmDialog } from '../components/confirm-dialog';
import { DISCARD_LABEL, forVmState, uiError } from '../lib/remedy';

/** The VM's drive list, reloaded after each change and when the VM's state changes. */
export function useDrives(vm: Pick<VmInfo, 'id' | 'state'>): { readonly drives: readonly DriveInfo[] | null; readonly error: string | null; readonly reload: () => Promise<void> } {
  const services = useServices();
  const [drives, setDrives] = useState<readonly DriveInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(async () => {
    try {
      setDrives(await services.disks.list(vm.id));
      setError(null);
    } catch (e) {
      setError(uiError(e).message);
    }
  }, [services, vm.id]);
  useEffect(() => {
    void reload();
  }, [reload, vm.state]);
  return { drives, error, reload };
}

export function HardwareView({ vm }: { readonly vm: VmInfo }): ReactNode {
  const services = useServices();
  const { drives, error: loadError, reload } = useDrives(vm);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [growing, setGrowing] = useState<string | null>(null);
  const [growTo, setGrowTo] = useState('');
  const [newSize, setNewSize] = useState('10G');
  const [newBus, setNewBus] = useState<NewDiskBus>('virtio');
  const [iso, setIso] = useState('');
  const [isoDrive, setIsoDrive] = useState('');
  const [deleteFile, setDeleteFile] = useState(false);
  // The drive whose Remove waits for the person's answer (removeConfirmation says what is lost).
  const [removing, setRemoving] = useState<DriveInfo | null>(null);
  const growId = useId();
  const newId = useId();
  const busId = useId();
  const isoId = useId();
  const isoDriveId = useId();
  const listId = useId();
  const growHintId = useId();
  const newHintId = useId();
  const stopped = vm.state === 'stopped';
  // A suspended VM's drives stay as its saved state left them (the engine refuses any change): the
  // grown disk or the changed CD would not be what the resumed guest sees (tester-s6 #9).
  const suspended = vm.state === 'suspended';
  const suspendedWhy = suspended ? `Suspended: its drives must stay as they are until it resumes. Resume it, or use ${DISCARD_LABEL}, first.` : null;

  const run = async (what: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await what();
      await reload();
      return true;
    } catch (e) {
      setError(forVmState(uiError(e), vm.state).message);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const size = (text: string, what: string): number | null => {
    const n = driveSizeBytes(text);
    if (n === null) setError(`${what} must be a size such as 40 (GiB), 40G or 512M.`);
    return n;
  };

  const disks = (drives ?? []).filter((d) => d.kind === 'disk');
  const cds = (drives ?? []).filter((d) => d.kind === 'cdrom');
  // The drive the ISO goes into: the one chosen, else the first (a VM without one gets cd0 while shut down).
  const target = cds.find((d) => d.id === isoDrive) ?? cds[0] ?? null;

  return (
    <section className="hardware-view" aria-label="Hardware">
      <h3 className="hardware-heading" id={listId}>
        Disks and CD drives
      </h3>
      {(error ?? loadError) && (
        <p className="form-error" role="alert">
          {error ?? loadError}
        </p>
      )}
      {!stopped && (
        <p className="notice-inline hardware-note" data-testid="hardware-running-note">
          {suspendedWhy ?? RUNNING_NOTE}
        </p>
      )}
      <table className="hardware-list" aria-labelledby={listId}>
        <thead>
          <tr>
            <th scope="col">Drive</th>
            <th scope="col">Bus</th>
            <th scope="col">Size</th>
            <th scope="col">File</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {disks.map((d) => (
            <tr key={d.id}>
              <th scope="row">
                {d.id}
                {d.role === 'system' ? <span className="muted"> (system)</span> : ''}
                {d.readOnly ? <span className="muted"> (read-only)</span> : ''}
              </th>
              <td>{d.bus}</td>
              <td>{formatBytes(d.virtualSizeBytes)}</td>
              <td className="path">
                {d.path} <span className="muted">{d.format}</span>
              </td>
              <td>
                {growing === d.id ? (
                  <form
                    className="hardware-grow"
                    onSubmit={(e) => {
                      e.preventDefault();
                      const n = size(growTo, 'The new size');
                      if (n !== null) void run(() => services.disks.resize(vm.id, d.id, n)).then((ok) => ok && setGrowing(null));
                    }}
                  >
                    <label htmlFor={growId}>New size</label>
                    <input id={growId} className="input" value={growTo} onChange={(e) => setGrowTo(e.target.value)} placeholder="40G" aria-describedby={growHintId} autoFocus />
                    <span id={growHintId} className="field-hint">
                      GiB, or with a unit: 512M, 2T
                    </span>
                    <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
                      Grow
                    </button>
                    <button type="button" className="btn btn-small" onClick={() => setGrowing(null)}>
                      Cancel
                    </button>
                  </form>
                ) : (
                  <span className="hardware-actions">
                    <button type="button" className="btn btn-small" disabled={busy || d.readOnly || suspended} title={suspendedWhy ?? undefined} onClick={() => (setGrowing(d.id), setGrowTo(''))}>
                      Grow…
                    </button>
                    <button
                      type="button"
                      className="btn btn-small"
                      disabled={busy || !stopped}
                      title={stopped ? undefined : (suspendedWhy ?? 'Shut the VM down to remove a disk')}
                      onClick={() => setRemoving(d)}
                    >
                      Remove
                    </button>
                  </span>
                )}
              </td>
            </tr>
          ))}
          {cds.map((cd) => (
            <tr key={cd.id}>
              <th scope="row">{cd.id} (CD)</th>
              <td>{cd.bus}</td>
              <td>{cd.path ? formatBytes(cd.virtualSizeBytes) : '—'}</td>
              <td className="path">{cd.path ?? <span className="muted">empty</span>}</td>
              <td className="hardware-actions">
                <button type="button" className="btn btn-small" disabled={busy || !cd.path || suspended} title={suspendedWhy ?? undefined} onClick={() => void run(() => services.disks.ejectCd(vm.id, cd.id))}>
                  Eject
                </button>
                <button
                  type="button"
                  className="btn btn-small"
                  disabled={busy || !stopped}
                  title={stopped ? undefined : (suspendedWhy ?? 'Shut the VM down to remove a CD drive')}
                  onClick={() => setRemoving(cd)}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {removing && (
        <ConfirmDialog
          confirmation={removeConfirmation(removing, deleteFile, vm.name, vm.path)}
          onClose={() => setRemoving(null)}
          onConfirm={() => {
            const drive = removing;
            setRemoving(null);
            // The dialog named the system disk and what removing it means: that is the confirmation
            // the engine asks for (`force`).
            void run(() => services.disks.remove(vm.id, drive.id, drive.kind === 'disk' ? { deleteFile, force: drive.role === 'system' } : undefined));
          }}
        />
      )}
      <label className="hardware-check">
        <input type="checkbox" checked={deleteFile} onChange={(e) => setDeleteFile(e.target.checked)} disabled={!stopped} /> Remove also deletes the disk&apos;s file (only a file in the VM&apos;s folder)
      </label>
      <h3 className="hardware-heading">Add a drive</h3>
      <form
        className="hardware-group hardware-add"
        onSubmit={(e) => {
          e.preventDefault();
          const n = size(newSize, 'The size of the new disk');
          if (n !== null) void run(() => services.disks.add(vm.id, { sizeBytes: n, bus: newBus }));
        }}
      >
        <div className="field">
          <label className="field-label" htmlFor={newId}>
            New disk size
          </label>
          <input id={newId} className="input" value={newSize} onChange={(e) => setNewSize(e.target.value)} aria-describedby={newHintId} />
          <span id={newHintId} className="field-hint">
            GiB, or with a unit: 512M, 2T
          </span>
        </div>
        <div className="field">
          <label className="field-label" htmlFor={busId}>
            Bus
          </label>
        <select id={busId} className="input" value={newBus} onChange={(e) => setNewBus(e.target.value as NewDiskBus)}>
          <option value="virtio">virtio (fastest; Linux has the driver)</option>
          <option value="sata">SATA (every OS, Windows installers too)</option>
          <option value="nvme">NVMe (Windows 10+, Linux)</option>
        </select>
        </div>
        <span className="hardware-buttons">
        <button type="submit" className="btn btn-small" disabled={busy || !stopped} title={stopped ? undefined : (suspendedWhy ?? 'Shut the VM down to add a disk')}>
          Add Disk
        </button>
        <button
          type="button"
          className="btn btn-small"
          disabled={busy || !stopped}
          title={stopped ? 'An empty CD drive (for a driver ISO, say)' : (suspendedWhy ?? 'Shut the VM down to add a CD drive')}
          onClick={() => void run(() => services.disks.add(vm.id, { cdrom: true }))}
        >
          Add CD Drive
        </button>
        </span>
        {!stopped && !suspended && <p className="field-hint hardware-why">Shut the VM down to add a drive.</p>}
      </form>
      <h3 className="hardware-heading">Insert a CD</h3>
      <form
        className="hardware-group hardware-cd"
        onSubmit={(e) => {
          e.preventDefault();
          if (iso.trim()) void run(() => (target ? services.disks.insertCd(vm.id, iso.trim(), target.id) : services.disks.insertCd(vm.id, iso.trim()))).then((ok) => ok && setIso(''));
        }}
      >
        <div className="field hardware-iso">
          <label className="field-label" htmlFor={isoId}>
            ISO to insert (full path)
          </label>
          <input id={isoId} className="input" value={iso} onChange={(e) => setIso(e.target.value)} placeholder="/home/you/Downloads/installer.iso" />
        </div>
        <BrowseButton label="ISO to insert" filter="iso" current={iso} onPath={setIso} disabled={busy} />
        {cds.length > 1 && (
          <>
            <label htmlFor={isoDriveId}>into</label>
            <select id={isoDriveId} className="input" value={target?.id ?? ''} onChange={(e) => setIsoDrive(e.target.value)}>
              {cds.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.id}
                  {d.path ? '' : ' (empty)'}
                </option>
              ))}
            </select>
          </>
        )}
        <button type="submit" className="btn btn-small" disabled={busy || !iso.trim() || suspended} title={suspendedWhy ?? undefined}>
          {target?.path ? 'Change CD' : 'Insert CD'}
        </button>
      </form>
    </section>
  );
}
