/**
 * Issue 10's dialogs that copy a VM or bring one in: Clone (linked or full, with progress and a way
 * to open the clone), Export (a shut-down VM to one .vivarium file, chosen with the host file
 * chooser), Import (a .vivarium file as a new VM) and Discard Saved State (a suspended VM's Force
 * Off). Shared by the VM window, its Snapshots tab and the library. Everything goes through the
 * engine's `snapshots` and `vms` services; refusals show the engine's sentences.
 */
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import type { SnapshotProgressEvent } from '../../main/common/contract/snapshots';
import { ErrorCode, isVivariumError } from '../../main/common/errors';
import type { VmInfo } from '../../main/common/models/vm-state';
import { useServices } from '../engine';
import { formatBytes } from '../lib/format';
import { forVmState, uiError } from '../lib/remedy';
import { exportFileName, exportPath, linkedCloneBlock } from '../lib/snapshot-ui';
import { Dialog } from './dialog';
import { BrowseButton } from './file-chooser';
import { FormError } from './fields';

/** The engine's progress of `operation` on VM `vmId` (0..1), null while none is reported. */
function useProgress(vmId: string | null, operation: SnapshotProgressEvent['operation']): number | null {
  const services = useServices();
  const [fraction, setFraction] = useState<number | null>(null);
  useEffect(() => {
    if (vmId === null) return;
    const sub = services.snapshots.onDidProgress((e) => {
      if (e.vmId === vmId && e.operation === operation) setFraction(e.done ? null : e.fraction);
    });
    return () => sub.dispose();
  }, [services, vmId, operation]);
  return fraction;
}

function ProgressLine({ label, fraction }: { readonly label: string; readonly fraction: number | null }): ReactNode {
  return (
    <div role="status" className="copy-progress">
      {label}…{' '}
      {fraction !== null && (
        <>
          <progress max={1} value={fraction} aria-label="Progress" /> {Math.round(fraction * 100)}%
        </>
      )}
    </div>
  );
}

/**
 * Clone…: a name, linked or full. "Linked" is disabled up front with its reason when the engine
 * would refuse it (snapshots, a disk outside the folder). A full clone shows the engine's progress,
 * and Cancel stops it (`snapshots.cancel`: the engine ends the copy and removes the half-made clone);
 * if the engine says it could not, the button says the copy goes on when the dialog closes. When
 * done, it says so and offers to open the clone.
 */
export function CloneDialog({ vm, onClose, onOpen }: { readonly vm: VmInfo; readonly onClose: () => void; readonly onOpen: (clone: VmInfo) => void }): ReactNode {
  const services = useServices();
  const [name, setName] = useState(`${vm.name} copy`);
  const [linked, setLinked] = useState(false);
  const [snapshotCount, setSnapshotCount] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [working, setWorking] = useState(false);
  const [made, setMade] = useState<VmInfo | null>(null);
  // Cancel of a full copy: asked (waiting for the engine), refused (it could not stop it), or done.
  const [cancel, setCancel] = useState<'asked' | 'refused' | 'done' | null>(null);
  const cancelled = useRef(false);
  const progress = useProgress(working ? vm.id : null, 'clone');
  const nameId = useId();
  const errId = useId();
  const linkedWhyId = useId();
  const openRef = useRef<HTMLButtonElement>(null);
  const live = useRef(true);
  useEffect(
    () => () => {
      live.current = false;
    },
    [],
  );

  useEffect(() => {
    let on = true;
    services.snapshots.list(vm.id).then(
      (l) => on && setSnapshotCount(l.length),
      () => undefined,
    );
    return () => {
      on = false;
    };
  }, [services, vm.id]);
  useEffect(() => {
    if (made) openRef.current?.focus();
  }, [made]);

  const linkedWhy = linkedCloneBlock(vm.config, snapshotCount);
  useEffect(() => {
    if (linkedWhy) setLinked(false);
  }, [linkedWhy]);

  const submit = (): void => {
    if (!name.trim() || working) return;
    setWorking(true);
    setError(null);
    setCancel(null);
    cancelled.current = false;
    services.snapshots.clone(vm.id, { name: name.trim(), linked: linked && !linkedWhy }).then(
      (clone) => {
        if (!live.current) return;
        setWorking(false);
        setMade(clone);
      },
      (e: unknown) => {
        if (!live.current) return;
        setWorking(false);
        // The clone's own call fails once a cancel has ended it: that is the cancel's success.
        if (cancelled.current) setCancel('done');
        else setError(forVmState(uiError(e), vm.state).message);
      },
    );
  };

  const stop = (): void => {
    setCancel('asked');
    cancelled.current = true;
    services.snapshots.cancel(vm.id).then(
      (stopped) => {
        if (!live.current || stopped) return;
        cancelled.current = false;
        setCancel('refused');
      },
      () => {
        if (!live.current) return;
        cancelled.current = false;
        setCancel('refused');
      },
    );
  };

  if (cancel === 'done') {
    return (
      <Dialog title={`Clone “${vm.name}”`} onClose={onClose} className="dialog-narrow">
        <p className="dialog-text" role="status">
          Cancelled: the copy was stopped and nothing of it is left.
        </p>
        <div className="dialog-actions">
          <button type="button" className="btn btn-primary" onClick={onClose} data-autofocus>
            Close
          </button>
        </div>
      </Dialog>
    );
  }

  if (made) {
    return (
      <Dialog title={`Clone “${vm.name}”`} onClose={onClose} className="dialog-narrow">
        <p className="dialog-text" role="status">
          Cloned: “{made.name}” is in the library{linked ? ', a linked clone standing on this VM’s disks as they are now' : ', with disks of its own'}.
        </p>
        {made.notices?.length ? <p className="dialog-text muted">{made.notices.join(' ')}</p> : null}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Close
          </button>
          <button ref={openRef} type="button" className="btn btn-primary" onClick={() => onOpen(made)}>
            Open “{made.name}”
          </button>
        </div>
      </Dialog>
    );
  }

  const fullRunning = working && !linked;
  // A full copy can be cancelled until the engine says it could not be; Escape is its Cancel.
  const cancellable = fullRunning && cancel !== 'refused';
  return (
    <Dialog title={`Clone “${vm.name}”`} onClose={cancellable ? () => cancel === null && stop() : onClose} className="dialog-narrow">
      <form
        className="copy-form"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <label htmlFor={nameId}>Name of the clone</label>
        <input
          id={nameId}
          className="input"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            // The refusal was about what was typed: it goes when that changes.
            setError(null);
          }}
          maxLength={100}
          readOnly={working}
          data-autofocus
          aria-invalid={error !== null}
          aria-describedby={error !== null ? errId : undefined}
        />
        {error !== null && (
          <div id={errId} className="field-error" role="alert">
            {error}
          </div>
        )}
        <label className="copy-check">
          <input type="checkbox" checked={linked} disabled={working || linkedWhy !== null} onChange={(e) => setLinked(e.target.checked)} aria-describedby={linkedWhy ? linkedWhyId : undefined} />
          <span>Linked clone (instant; shares this VM’s disks read-only)</span>
        </label>
        {linkedWhy && (
          <p id={linkedWhyId} className="field-hint">
            {linkedWhy}
          </p>
        )}
        {working && <ProgressLine label={linked ? 'Making the linked clone' : 'Copying the disks'} fraction={progress} />}
        {fullRunning && cancel === 'refused' && <p className="field-hint">The copy could not be stopped: closing this dialog lets it finish in the background.</p>}
        <div className="dialog-actions">
          {cancellable ? (
            <button type="button" className="btn" onClick={stop} disabled={cancel === 'asked'}>
              {cancel === 'asked' ? 'Cancelling…' : 'Cancel'}
            </button>
          ) : (
            <button type="button" className="btn" onClick={onClose}>
              {fullRunning ? 'Close (the copy goes on)' : 'Cancel'}
            </button>
          )}
          <button type="submit" className="btn btn-primary" disabled={!name.trim() || working}>
            {working ? 'Cloning…' : 'Clone'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** The user's home folder as the engine's file chooser roots it (the export's default folder), or
 *  null when it cannot be listed. */
function useHomeFolder(): string | null {
  const services = useServices();
  const [home, setHome] = useState<string | null>(null);
  useEffect(() => {
    let on = true;
    services.host.browse({ filter: 'folder' }).then(
      (l) => on && setHome(l.root),
      () => undefined,
    );
    return () => {
      on = false;
    };
  }, [services]);
  return home;
}

/**
 * Export…: a shut-down VM's whole bundle (config, disks, UEFI variables, snapshots) to one
 * .vivarium file. The folder comes from the host file chooser (or is typed), the file name
 * defaults to "<name>.vivarium"; the engine's progress shows while it writes, then the file and
 * its size. `vivarium import FILE` (or Import… in the library) brings it back.
 */
export function ExportDialog({ vm, onClose }: { readonly vm: VmInfo; readonly onClose: () => void }): ReactNode {
  const services = useServices();
  const home = useHomeFolder();
  const [folder, setFolder] = useState<string | null>(null);
  const [fileName, setFileName] = useState(() => exportFileName(vm.name));
  const [errors, setErrors] = useState<{ folder?: string; fileName?: string; form?: string }>({});
  const [working, setWorking] = useState(false);
  const [done, setDone] = useState<{ readonly path: string; readonly bytes: number } | null>(null);
  const progress = useProgress(working ? vm.id : null, 'export');
  const folderId = useId();
  const fileId = useId();
  const folderErrId = useId();
  const fileErrId = useId();
  const doneRef = useRef<HTMLButtonElement>(null);
  const live = useRef(true);
  useEffect(
    () => () => {
      live.current = false;
    },
    [],
  );
  useEffect(() => {
    if (done) doneRef.current?.focus();
  }, [done]);
  const folderValue = folder ?? home ?? '';

  const submit = (): void => {
    if (working) return;
    const dest = exportPath(folderValue, fileName);
    if (!dest.ok) {
      setErrors({ [dest.field]: dest.message });
      return;
    }
    setErrors({});
    setWorking(true);
    services.snapshots.exportVm(vm.id, dest.path).then(
      (r) => {
        if (!live.current) return;
        setWorking(false);
        setDone(r);
      },
      (e: unknown) => {
        if (!live.current) return;
        setWorking(false);
        const msg = forVmState(uiError(e), vm.state).message;
        // A name clash is the file name's; a folder that is missing or not one is the folder's.
        if (isVivariumError(e) && e.code === ErrorCode.AlreadyExists) setErrors({ fileName: msg });
        else if (isVivariumError(e) && e.code === ErrorCode.InvalidArgument && /\bfolder\b/.test(msg)) setErrors({ folder: msg });
        else setErrors({ form: msg });
      },
    );
  };

  if (done) {
    return (
      <Dialog title={`Export “${vm.name}”`} onClose={onClose} className="dialog-narrow">
        <p className="dialog-text" role="status">
          Exported to <span className="copy-path">{done.path}</span> ({formatBytes(done.bytes)}). Import it in Vivarium on any host: Import… in the library, or <code>vivarium import</code>.
        </p>
        <div className="dialog-actions">
          <button ref={doneRef} type="button" className="btn btn-primary" onClick={onClose}>
            Done
          </button>
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog title={`Export “${vm.name}”`} onClose={onClose} className="dialog-narrow">
      <form
        className="copy-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <p className="field-hint">One file with its settings, disks, UEFI variables and snapshots, and a checksum.</p>
        <label htmlFor={folderId}>Folder</label>
        <div className="copy-row">
          <input
            id={folderId}
            className="input"
            value={folderValue}
            onChange={(e) => {
              setFolder(e.target.value);
              setErrors((x) => ({ ...x, folder: undefined, form: undefined }));
            }}
            readOnly={working}
            spellCheck={false}
            aria-invalid={errors.folder !== undefined}
            aria-describedby={errors.folder !== undefined ? folderErrId : undefined}
          />
          <BrowseButton
            label="Folder for the export"
            filter="folder"
            current={folderValue}
            disabled={working}
            onPath={(p) => {
              setFolder(p);
              setErrors((x) => ({ ...x, folder: undefined, form: undefined }));
            }}
          />
        </div>
        {errors.folder !== undefined && (
          <div id={folderErrId} className="field-error" role="alert">
            {errors.folder}
          </div>
        )}
        <label htmlFor={fileId}>File name</label>
        <input
          id={fileId}
          className="input"
          value={fileName}
          onChange={(e) => {
            setFileName(e.target.value);
            setErrors((x) => ({ ...x, fileName: undefined, form: undefined }));
          }}
          readOnly={working}
          spellCheck={false}
          data-autofocus
          aria-invalid={errors.fileName !== undefined}
          aria-describedby={errors.fileName !== undefined ? fileErrId : undefined}
        />
        {errors.fileName !== undefined && (
          <div id={fileErrId} className="field-error" role="alert">
            {errors.fileName}
          </div>
        )}
        <FormError message={errors.form ?? null} />
        {working && <ProgressLine label="Writing the export" fraction={progress} />}
        <div className="dialog-actions">
          {/* An export cannot be stopped once it has begun: closing leaves it to finish. */}
          <button type="button" className="btn" onClick={onClose}>
            {working ? 'Close (the export goes on)' : 'Cancel'}
          </button>
          <button type="submit" className="btn btn-primary" disabled={working}>
            {working ? 'Exporting…' : 'Export'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/**
 * Import…: a .vivarium file (host file chooser, or typed) as a new VM, optionally under a new
 * name. The engine checks the file whole (a partial or corrupt one is refused with a sentence and
 * nothing is left); the new VM is handed to `onImported`.
 */
export function ImportDialog({ onClose, onImported }: { readonly onClose: () => void; readonly onImported: (vm: VmInfo) => void }): ReactNode {
  const services = useServices();
  const [file, setFile] = useState('');
  const [name, setName] = useState('');
  const [errors, setErrors] = useState<{ file?: string; name?: string; form?: string }>({});
  const [working, setWorking] = useState(false);
  const fileId = useId();
  const nameId = useId();
  const fileErrId = useId();
  const nameErrId = useId();
  const live = useRef(true);
  useEffect(
    () => () => {
      live.current = false;
    },
    [],
  );

  const submit = (): void => {
    if (working) return;
    const path = file.trim();
    if (!path) {
      setErrors({ file: 'Choose the .vivarium file to import.' });
      return;
    }
    if (!path.startsWith('/')) {
      setErrors({ file: 'Give the file as a full path, starting with /, or choose it with Browse….' });
      return;
    }
    setErrors({});
    setWorking(true);
    services.snapshots.importVm(path, name.trim() ? { name: name.trim() } : {}).then(
      (vm) => {
        if (live.current) setWorking(false);
        onImported(vm);
      },
      (e: unknown) => {
        if (!live.current) return;
        setWorking(false);
        const msg = uiError(e).message;
        // A name taken (or not allowed) is the name field's; the rest is about the file.
        if (isVivariumError(e) && (e.field === 'name' || e.code === ErrorCode.AlreadyExists)) setErrors({ name: msg });
        else setErrors({ form: msg });
      },
    );
  };

  return (
    <Dialog title="Import a VM" onClose={onClose} className="dialog-narrow">
      <form
        className="copy-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <p className="field-hint">A .vivarium file made by Export… (or <code>vivarium export</code>) becomes a new VM here, with its disks and snapshots.</p>
        <label htmlFor={fileId}>File</label>
        <div className="copy-row">
          <input
            id={fileId}
            className="input"
            value={file}
            onChange={(e) => {
              setFile(e.target.value);
              setErrors((x) => ({ ...x, file: undefined, form: undefined }));
            }}
            readOnly={working}
            spellCheck={false}
            placeholder="/path/to/vm.vivarium"
            data-autofocus
            aria-invalid={errors.file !== undefined}
            aria-describedby={errors.file !== undefined ? fileErrId : undefined}
          />
          <BrowseButton
            label="VM export to import"
            filter="vivarium"
            current={file}
            disabled={working}
            onPath={(p) => {
              setFile(p);
              setErrors((x) => ({ ...x, file: undefined, form: undefined }));
            }}
          />
        </div>
        {errors.file !== undefined && (
          <div id={fileErrId} className="field-error" role="alert">
            {errors.file}
          </div>
        )}
        <label htmlFor={nameId}>Name (optional)</label>
        <input
          id={nameId}
          className="input"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            setErrors((x) => ({ ...x, name: undefined, form: undefined }));
          }}
          readOnly={working}
          maxLength={100}
          placeholder="The name it was exported with"
          aria-invalid={errors.name !== undefined}
          aria-describedby={errors.name !== undefined ? nameErrId : undefined}
        />
        {errors.name !== undefined && (
          <div id={nameErrId} className="field-error" role="alert">
            {errors.name}
          </div>
        )}
        <FormError message={errors.form ?? null} />
        {working && <ProgressLine label="Checking and importing" fraction={null} />}
        <div className="dialog-actions">
          {/* An import cannot be stopped once it has begun: closing leaves it to finish (the VM then
              appears in the library). */}
          <button type="button" className="btn" onClick={onClose}>
            {working ? 'Close (the import goes on)' : 'Cancel'}
          </button>
          <button type="submit" className="btn btn-primary" disabled={working}>
            {working ? 'Importing…' : 'Import'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** Discard Saved State…: a suspended VM's Force Off, asked first. `onDone` gets the VM after it. */
export function DiscardStateDialog({ vm, onClose, onDone, onError }: { readonly vm: VmInfo; readonly onClose: () => void; readonly onDone: (vm: VmInfo | null) => void; readonly onError: (message: string) => void }): ReactNode {
  const services = useServices();
  return (
    <Dialog title={`Discard the saved state of “${vm.name}”?`} onClose={onClose} role="alertdialog" className="dialog-narrow">
      <p className="dialog-text">What the VM was running when it was suspended is lost, as after a power cut. The next start boots it afresh.</p>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose} data-autofocus>
          Cancel
        </button>
        <button
          type="button"
          className="btn btn-danger"
          onClick={() => {
            onClose();
            services.vms.stop(vm.id, { force: true }).then(
              (r) => onDone(r ?? null),
              (e: unknown) => onError(uiError(e).message),
            );
          }}
        >
          Discard Saved State
        </button>
      </div>
    </Dialog>
  );
}
