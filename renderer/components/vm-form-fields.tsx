/** The fields shared by the New VM and Settings dialogs. */
import type { ReactNode } from 'react';
import type { Firmware } from '../../main/common/models/vm-config';
import type { BootSource, FieldErrors, VmFormValues } from '../lib/vm-form';
import { CheckboxField, RadioGroup, SelectField, TextField } from './fields';

const BOOT_OPTIONS = [
  { value: 'iso', label: 'ISO image' },
  { value: 'kernel', label: 'Linux kernel' },
  { value: 'none', label: 'None' },
] as const satisfies readonly { value: BootSource; label: string }[];

const FIRMWARE_OPTIONS = [
  { value: 'bios', label: 'BIOS' },
  { value: 'uefi', label: 'UEFI' },
] as const satisfies readonly { value: Firmware; label: string }[];

export function VmFormFields(props: {
  readonly values: VmFormValues;
  readonly errors: FieldErrors;
  readonly onChange: (patch: Partial<VmFormValues>) => void;
  readonly mode: 'create' | 'edit';
  readonly disabled?: boolean;
}): ReactNode {
  const { values: v, errors, onChange, mode, disabled } = props;
  return (
    <div className="form-grid">
      <TextField label="Name" value={v.name} onValue={(name) => onChange({ name })} error={errors.name} required disabled={disabled} fieldClassName="span-2" />
      <TextField
        label="Operating system"
        value={v.os}
        onValue={(os) => onChange({ os })}
        error={errors.os}
        placeholder="Other"
        hint="A label for the library, such as Debian 12."
        disabled={disabled}
        fieldClassName="span-2"
      />

      <div className="span-2">
        <RadioGroup legend="Boot from" value={v.bootSource} options={BOOT_OPTIONS} onValue={(bootSource) => onChange({ bootSource })} disabled={disabled} />
      </div>
      {v.bootSource === 'iso' && (
        <TextField
          label="ISO image path"
          value={v.iso}
          onValue={(iso) => onChange({ iso })}
          error={errors.iso}
          placeholder="/home/me/Downloads/debian-12.iso"
          disabled={disabled}
          fieldClassName="span-2"
        />
      )}
      {v.bootSource === 'kernel' && (
        <>
          <TextField label="Kernel path" value={v.kernel} onValue={(kernel) => onChange({ kernel })} error={errors.kernel} placeholder="/boot/vmlinuz" disabled={disabled} />
          <TextField label="Initrd path" value={v.initrd} onValue={(initrd) => onChange({ initrd })} error={errors.initrd} placeholder="Optional" disabled={disabled} />
          <TextField
            label="Kernel command line"
            value={v.append}
            onValue={(append) => onChange({ append })}
            error={errors.append}
            placeholder="console=ttyS0"
            disabled={disabled}
            fieldClassName="span-2"
          />
        </>
      )}

      <TextField label="CPUs" value={v.cpus} onValue={(cpus) => onChange({ cpus })} error={errors.cpus} inputMode="numeric" disabled={disabled} />
      <TextField
        label="Memory"
        value={v.memory}
        onValue={(memory) => onChange({ memory })}
        error={errors.memory}
        hint="MiB, or with a unit: 512M, 2G."
        disabled={disabled}
      />
      {mode === 'create' && (
        <TextField
          label="Disk size (GiB)"
          value={v.diskGiB}
          onValue={(diskGiB) => onChange({ diskGiB })}
          error={errors.diskGiB}
          inputMode="decimal"
          hint="A new empty disk; 0 for none."
          disabled={disabled}
        />
      )}
      <SelectField label="Firmware" value={v.firmware} options={FIRMWARE_OPTIONS} onValue={(firmware) => onChange({ firmware })} disabled={disabled} />

      <div className="span-2 check-row">
        <CheckboxField label="Network" checked={v.network} onChecked={(network) => onChange({ network })} disabled={disabled} />
        <CheckboxField label="Graphical display" checked={v.display} onChecked={(display) => onChange({ display })} disabled={disabled} />
      </div>
      <div className="span-2">
        <TextField
          label="Port forwards"
          value={v.forwards}
          onValue={(forwards) => onChange({ forwards })}
          error={errors.forwards}
          hint="Host port on 127.0.0.1 to guest port, e.g. tcp:2222:22; separate several with commas."
          disabled={disabled}
        />
      </div>
    </div>
  );
}
