/** New VM, Settings and Delete dialogs. Each validates on the client with the contract's schemas and
 *  shows the engine's own sentence when the engine says no. */
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import type { VmConfig } from '../../main/common/models/vm-config';
import { useServices } from '../engine';
import { useHostDefaults } from '../hooks/use-host-defaults';
import { errorMessage } from '../lib/errors';
import { forVmState, uiError } from '../lib/remedy';
import { formFromConfig, formWarnings, toEditPatch, type FieldErrors, type VmFormValues } from '../lib/vm-form';
import { linkedClonesOf, namesText } from '../lib/snapshot-ui';
import { Dialog } from './dialog';
import { CheckboxField, FormError } from './fields';
import { VmFormFields } from './vm-form-fields';
import { NewVmWizard, type NewVmWizardProps } from '../views/new-vm-wizard';

/** Moves focus to the first field with an error, after React has rendered the messages. */
function focusFirstInvalid(form: HTMLFormElement | null): void {
  requestAnimationFrame(() => form?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
}

function useVmForm(initial: VmFormValues) {
  const [values, setValues] = useState<VmFormValues>(initial);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [serverError, setServerError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const onChange = (patch: Partial<VmFormValues>): void => {
    setValues((v) => ({ ...v, ...patch }));
    // A field's message goes away as soon as the user edits it.
    setErrors((e) => {
      const next: Record<string, string | undefined> = { ...e };
      for (const k of Object.keys(patch)) delete next[k];
      return next;
    });
  };
  /** An engine refusal: messages on the fields it names, the sentence (and its remedy) below. */
  const showServerError = (err: unknown, vmState?: string): void => {
    const e = forVmState(uiError(err, 'form'), vmState);
    const onFields = Object.keys(e.fields).filter((k) => k !== 'form');
    if (onFields.length > 0) setErrors((prev) => ({ ...prev, ...e.fields }));
    const remedyText = e.remedy && e.remedy.kind !== 'field' ? ` ${e.remedy.text}` : '';
    setServerError(onFields.length > 0 ? null : `${e.message}${remedyText}`);
  };
  return { values, setValues, errors, setErrors, serverError, setServerError, showServerError, busy, setBusy, onChange };
}

/** New VM: the wizard (renderer/views/new-vm-wizard.tsx): what to install, OS preset and hardware,
 *  storage, and a summary with the exact QEMU command line. */
export function NewVmDialog(props: NewVmWizardProps): ReactNode {
  return <NewVmWizard {...props} />;
}

export function SettingsDialog({
  vm,
  config,
  onClose,
  onSaved,
}: {
  readonly vm: VmInfo;
  readonly config: VmConfig;
  readonly onClose: () => void;
  readonly onSaved: (vm: VmInfo) => void;
}): ReactNode {
  const services = useServices();
  const form = useVmForm(formFromConfig(config));
  const formRef = useRef<HTMLFormElement>(null);
  // Settings apply to the next start; the engine refuses edits to a running VM, so say it first.
  // A suspended VM takes a new name or OS label (no part of its saved state); the engine refuses,
  // naming it, a hardware change that would keep the state from resuming.
  const locked = vm.state !== 'stopped' && vm.state !== 'suspended';
  const noteId = useId();
  const defaults = useHostDefaults(config.arch);
  // Saved, with what the engine thought worth telling (the CLI prints it as "warning: …"): the
  // dialog stays open to say it, and hands the VM on when closed.
  const [saved, setSaved] = useState<VmInfo | null>(null);
  const doneRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (saved) doneRef.current?.focus();
  }, [saved]);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    if (saved) {
      onSaved(saved);
      return;
    }
    if (form.busy || locked) return;
    form.setServerError(null);
    const result = toEditPatch(form.values, config, defaults);
    if (!result.ok) {
      form.setErrors(result.errors);
      focusFirstInvalid(formRef.current);
      return;
    }
    if (Object.keys(result.value).length === 0) {
      onClose();
      return;
    }
    form.setBusy(true);
    try {
      const updated = await services.vms.edit(vm.id, result.value);
      if (updated.notices?.length) {
        form.setBusy(false);
        setSaved(updated);
      } else onSaved(updated);
    } catch (err) {
      form.showServerError(err, vm.state);
      form.setBusy(false);
      focusFirstInvalid(formRef.current);
    }
  };

  return (
    <Dialog title={`Settings — ${vm.name}`} onClose={saved ? () => onSaved(saved) : onClose} className="dialog-form" describedBy={locked ? noteId : undefined}>
      <form ref={formRef} noValidate onSubmit={(e) => void submit(e)} aria-busy={form.busy}>
        {saved && (
          <div className="notice-inline notice-saved" role="status" data-testid="settings-notices">
            <p>Saved. Worth knowing:</p>
            <ul>
              {saved.notices?.map((n) => (
                <li key={n}>{n}</li>
              ))}
            </ul>
          </div>
        )}
        {locked && (
          <p id={noteId} className="notice-inline">
            Shut down the VM to change its settings.
          </p>
        )}
        {vm.state === 'suspended' && (
          <p className="notice-inline">Suspended: its name and OS label can change now, its hardware once it has resumed and been shut down.</p>
        )}
        <VmFormFields
          values={form.values}
          errors={form.errors}
          onChange={form.onChange}
          mode="edit"
          disabled={locked || saved !== null}
          defaults={defaults}
          warnings={formWarnings(form.values, defaults)}
          arch={config.arch}
          cdroms={config.cdroms}
        />
        <FormError message={form.errors.form ?? form.serverError} />
        <div className="dialog-actions">
          {saved ? (
            <button ref={doneRef} type="submit" className="btn btn-primary">
              Done
            </button>
          ) : (
            <>
              <button type="button" className="btn" onClick={onClose}>
                Cancel
              </button>
              <button type="submit" className="btn btn-primary" disabled={form.busy || locked}>
                {form.busy ? 'Saving…' : 'Save'}
              </button>
            </>
          )}
        </div>
      </form>
    </Dialog>
  );
}

export function DeleteDialog({ vm, onClose, onDeleted }: { readonly vm: VmInfo; readonly onClose: () => void; readonly onDeleted: () => void }): ReactNode {
  const services = useServices();
  const [keepDisks, setKeepDisks] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  /** Linked clones standing on this VM's disks: from the library when the dialog opens (their disks
   *  read files in this VM's folder), or as the engine named them when it refused. */
  const [clones, setClones] = useState<readonly string[] | null>(null);
  const [flattenClones, setFlattenClones] = useState(false);
  const descId = useId();
  const { id: vmId, path: vmPath } = vm;
  useEffect(() => {
    let on = true;
    services.vms.list().then(
      (all) => {
        if (!on) return;
        const names = linkedClonesOf({ id: vmId, path: vmPath }, all);
        setClones((known) => known ?? (names.length > 0 ? names : null));
      },
      () => undefined,
    );
    return () => {
      on = false;
    };
  }, [services, vmId, vmPath]);

  const confirm = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await services.vms.delete(vm.id, { keepDisks, ...(flattenClones ? { flattenClones } : {}) });
      onDeleted();
    } catch (err) {
      const named = (err as { data?: { linkedClones?: unknown } } | null)?.data?.linkedClones;
      if (Array.isArray(named) && named.every((n) => typeof n === 'string') && named.length > 0 && !flattenClones) {
        // The engine's sentence names files and ids; the dialog's own choice says it in names.
        setClones(named as string[]);
        setError(`${namesText(named as string[])} ${named.length === 1 ? 'is a linked clone' : 'are linked clones'} of “${vm.name}” and ${named.length === 1 ? 'needs' : 'need'} its disks. Tick “Flatten…” above to give ${named.length === 1 ? 'it disks of its own' : 'them disks of their own'} first, or delete ${named.length === 1 ? 'it' : 'them'} first.`);
      } else setError(errorMessage(err));
      setBusy(false);
    }
  };

  const cloneList = namesText(clones ?? []);
  return (
    <Dialog title={`Delete “${vm.name}”?`} onClose={onClose} role="alertdialog" describedBy={descId} className="dialog-narrow">
      <p id={descId} className="dialog-text">
        This removes the VM and its folder. Disk images you attached from elsewhere are never deleted.
      </p>
      <CheckboxField label="Keep disk images" checked={keepDisks} onChecked={setKeepDisks} hint="The VM's own disk images stay on disk." />
      {clones && clones.length > 0 ? (
        <CheckboxField
          label={`Flatten its linked clones first (${cloneList})`}
          checked={flattenClones}
          onChecked={(on) => {
            setFlattenClones(on);
            setError(null);
          }}
          hint="Each clone gets a full copy of its disks, so it no longer needs this VM. The clones must be shut down and have no snapshots; copying takes as long as their disks are full."
        />
      ) : null}
      <FormError message={error} />
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose} data-autofocus>
          Cancel
        </button>
        <button type="button" className="btn btn-danger" disabled={busy} onClick={() => void confirm()}>
          {busy ? (flattenClones ? 'Flattening clones…' : 'Deleting…') : flattenClones ? 'Flatten Clones and Delete' : 'Delete VM'}
        </button>
      </div>
    </Dialog>
  );
}
