/** New VM, Settings and Delete dialogs. Each validates on the client with the contract's schemas and
 *  shows the engine's own sentence when the engine says no. */
import { useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { VmInfo } from '../../main/common/models/vm-state';
import type { VmConfig } from '../../main/common/models/vm-config';
import { useServices } from '../engine';
import { errorMessage } from '../lib/errors';
import { DEFAULT_VM_FORM, formFromConfig, toCreateSpec, toEditPatch, type FieldErrors, type VmFormValues } from '../lib/vm-form';
import { Dialog } from './dialog';
import { CheckboxField, FormError } from './fields';
import { VmFormFields } from './vm-form-fields';

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
  return { values, errors, setErrors, serverError, setServerError, busy, setBusy, onChange };
}

export function NewVmDialog({ onClose, onCreated }: { readonly onClose: () => void; readonly onCreated: (vm: VmInfo) => void }): ReactNode {
  const services = useServices();
  const form = useVmForm(DEFAULT_VM_FORM);
  const formRef = useRef<HTMLFormElement>(null);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    if (form.busy) return;
    form.setServerError(null);
    const result = toCreateSpec(form.values);
    if (!result.ok) {
      form.setErrors(result.errors);
      focusFirstInvalid(formRef.current);
      return;
    }
    form.setBusy(true);
    try {
      const vm = await services.vms.create(result.value);
      onCreated(vm);
    } catch (err) {
      form.setServerError(errorMessage(err));
      form.setBusy(false);
    }
  };

  return (
    <Dialog title="New VM" onClose={onClose} className="dialog-form">
      <form ref={formRef} noValidate onSubmit={(e) => void submit(e)} aria-busy={form.busy}>
        <VmFormFields values={form.values} errors={form.errors} onChange={form.onChange} mode="create" />
        <FormError message={form.errors.form ?? form.serverError} />
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={form.busy}>
            {form.busy ? 'Creating…' : 'Create'}
          </button>
        </div>
      </form>
    </Dialog>
  );
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
  const locked = vm.state !== 'stopped';
  const noteId = useId();

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    if (form.busy || locked) return;
    form.setServerError(null);
    const result = toEditPatch(form.values, config);
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
      onSaved(await services.vms.edit(vm.id, result.value));
    } catch (err) {
      form.setServerError(errorMessage(err));
      form.setBusy(false);
    }
  };

  return (
    <Dialog title={`Settings — ${vm.name}`} onClose={onClose} className="dialog-form" describedBy={locked ? noteId : undefined}>
      <form ref={formRef} noValidate onSubmit={(e) => void submit(e)} aria-busy={form.busy}>
        {locked && (
          <p id={noteId} className="notice-inline">
            Shut down the VM to change its settings.
          </p>
        )}
        <VmFormFields values={form.values} errors={form.errors} onChange={form.onChange} mode="edit" disabled={locked} />
        <FormError message={form.errors.form ?? form.serverError} />
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={form.busy || locked}>
            {form.busy ? 'Saving…' : 'Save'}
          </button>
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
  const descId = useId();

  const confirm = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await services.vms.delete(vm.id, { keepDisks });
      onDeleted();
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <Dialog title={`Delete “${vm.name}”?`} onClose={onClose} role="alertdialog" describedBy={descId} className="dialog-narrow">
      <p id={descId} className="dialog-text">
        This removes the VM and its folder. Disk images you attached from elsewhere are never deleted.
      </p>
      <CheckboxField label="Keep disk images" checked={keepDisks} onChecked={setKeepDisks} hint="The VM's own disk images stay on disk." />
      <FormError message={error} />
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose} data-autofocus>
          Cancel
        </button>
        <button type="button" className="btn btn-danger" disabled={busy} onClick={() => void confirm()}>
          {busy ? 'Deleting…' : 'Delete VM'}
        </button>
      </div>
    </Dialog>
  );
}
