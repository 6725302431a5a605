/** The fields shared by the New VM and Settings dialogs. */
import type { ReactNode } from 'react';
import type { Arch, CdDrive, Firmware } from '../../main/common/models/vm-config';
import type { HostDefaults } from '../../main/common/models/vm-settings';
import { formatMemoryMiB } from '../lib/format';
import { BOOT_DEVICE_LABELS, bootOrderRows, moveBootDevice, toggleBootDevice, type BootSource, type FieldErrors, type VmFormValues } from '../lib/vm-form';
import { CheckboxField, RadioGroup, SelectField, TextField } from './fields';

const BOOT_OPTIONS = [
  { value: 'iso', label: 'ISO image' },
  { value: 'kernel', label: 'Linux kernel' },
  { value: 'none', label: 'None' },
] as const satisfies readonly { value: BootSource; label: string }[];

/** In Settings the ISOs are the Hardware tab's CD drives: "Boot from" is the firmware (its boot
 *  order below) or a Linux kernel. */
const EDIT_BOOT_OPTIONS = [
  { value: 'iso', label: 'Disks, CD drives, network (boot order)' },
  { value: 'kernel', label: 'Linux kernel' },
] as const satisfies readonly { value: BootSource; label: string }[];

const FIRMWARE_LABELS: Readonly<Record<Firmware, string>> = { bios: 'BIOS', uefi: 'UEFI' };

/** The firmware choices: what this host offers for the VM's architecture (aarch64: UEFI only);
 *  "Default for this host" only while the engine's defaults are unknown. */
function firmwareOptions(value: Firmware | '', defaults: HostDefaults | null | undefined, arch: string | undefined): readonly { value: Firmware | ''; label: string }[] {
  const kinds: readonly Firmware[] = defaults ? defaults.firmwares : arch === 'aarch64' ? ['uefi'] : ['bios', 'uefi'];
  const list: { value: Firmware | ''; label: string }[] = kinds.map((k) => ({ value: k, label: FIRMWARE_LABELS[k] }));
  if (value === '') list.unshift({ value: '', label: 'Default for this host' });
  else if (!kinds.includes(value)) list.push({ value, label: FIRMWARE_LABELS[value] });
  return list;
}

export function VmFormFields(props: {
  readonly values: VmFormValues;
  readonly errors: FieldErrors;
  readonly onChange: (patch: Partial<VmFormValues>) => void;
  readonly mode: 'create' | 'edit';
  readonly disabled?: boolean;
  /** This host's defaults and limits (`host.defaults`), when known. */
  readonly defaults?: HostDefaults | null;
  /** Notes that do not block, per field (more CPUs than the host has cores). */
  readonly warnings?: FieldErrors;
  /** The VM's architecture (Settings). */
  readonly arch?: string;
  /** The VM's CD drives (Settings shows them; the Hardware tab changes them). */
  readonly cdroms?: readonly CdDrive[];
}): ReactNode {
  const { values: v, errors, onChange, mode, disabled, defaults, warnings } = props;
  const limits = defaults?.limits;
  const defaultNote = (text: string): string | undefined => (mode === 'create' && defaults ? text : undefined);
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
        <RadioGroup
          legend="Boot from"
          value={mode === 'edit' && v.bootSource === 'none' ? 'iso' : v.bootSource}
          options={mode === 'edit' ? EDIT_BOOT_OPTIONS : BOOT_OPTIONS}
          onValue={(bootSource) => onChange({ bootSource })}
          disabled={disabled}
        />
      </div>
      {mode === 'create' && v.bootSource === 'iso' && (
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
      {mode === 'edit' && v.bootSource !== 'kernel' && (
        <div className="span-2 settings-cds" data-testid="settings-cds">
          <p className="field-label">CD drives</p>
          {props.cdroms && props.cdroms.length > 0 ? (
            <ul className="settings-cd-list">
              {props.cdroms.map((cd) => (
                <li key={cd.id}>
                  <span className="cd-id">{cd.id}</span> <span className="path">{cd.path ?? 'empty'}</span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">None.</p>
          )}
          <p className="field-hint">Insert, change or eject ISOs, and add CD drives, on the Hardware tab.</p>
        </div>
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

      <TextField
        label="CPUs"
        value={v.cpus}
        onValue={(cpus) => onChange({ cpus })}
        error={errors.cpus}
        hint={warnings?.cpus ?? (limits ? `This host has ${limits.hostCores} core${limits.hostCores === 1 ? '' : 's'}.` : undefined)}
        placeholder={defaultNote(`${defaults?.cpus ?? ''} (default)`)}
        inputMode="numeric"
        disabled={disabled}
      />
      <TextField
        label="Memory"
        value={v.memory}
        onValue={(memory) => onChange({ memory })}
        error={errors.memory}
        hint={`MiB, or with a unit: 512M, 2G.${limits ? ` This host has ${formatMemoryMiB(limits.maxMemoryMiB)}.` : ''}`}
        placeholder={defaultNote(`${defaults ? formatMemoryMiB(defaults.memoryMiB) : ''} (default)`)}
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
      {mode === 'create' && defaults && defaults.arches.length > 1 && (
        <SelectField<Arch>
          label="Architecture"
          value={v.arch || defaults.arch}
          options={defaults.arches.map((a) => ({ value: a, label: a }))}
          // The firmware choices and the defaults follow the architecture: back to its default.
          onValue={(arch) => onChange({ arch, firmware: '' })}
          disabled={disabled}
        />
      )}
      <SelectField<Firmware | ''>
        label="Firmware"
        value={v.firmware}
        options={firmwareOptions(v.firmware, mode === 'create' ? defaults : null, props.arch ?? defaults?.arch)}
        // BIOS has no Secure Boot: choosing it turns Secure Boot off.
        onValue={(firmware) => onChange(firmware === 'bios' && v.secureBoot ? { firmware, secureBoot: false } : { firmware })}
        error={errors.firmware}
        disabled={disabled}
      />

      {mode === 'edit' && v.bootOrder && <BootOptions values={v} errors={errors} onChange={onChange} disabled={disabled} />}
      <div className="span-2 check-row">
        <CheckboxField label="Network" checked={v.network} onChecked={(network) => onChange({ network })} disabled={disabled} hint={errors.network} />
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

/**
 * Settings' boot options: the boot order (each kind checked to boot from it, moved up and down),
 * the firmware's boot menu, UEFI Secure Boot (switches the firmware to UEFI) and a TPM 2.0.
 */
function BootOptions(props: { readonly values: VmFormValues; readonly errors: FieldErrors; readonly onChange: (patch: Partial<VmFormValues>) => void; readonly disabled?: boolean | undefined }): ReactNode {
  const { values: v, onChange, disabled } = props;
  const order = v.bootOrder ?? [];
  const rows = bootOrderRows(order);
  return (
    <fieldset className="span-2 boot-options" disabled={disabled}>
      <legend>Boot options</legend>
      <ol className="boot-order" aria-label="Boot order">
        {rows.map((r, i) => (
          <li key={r.device} className={r.enabled ? '' : 'muted'}>
            <label className="boot-order-label">
              <input type="checkbox" className="checkbox" checked={r.enabled} onChange={(e) => onChange({ bootOrder: toggleBootDevice(order, r.device, e.target.checked) })} />{' '}
              {BOOT_DEVICE_LABELS[r.device]}
            </label>
            <span className="boot-order-moves">
              <button type="button" className="btn btn-small" disabled={i === 0} aria-label={`Move ${BOOT_DEVICE_LABELS[r.device]} up`} onClick={() => onChange({ bootOrder: moveBootDevice(order, r.device, -1) })}>
                ↑
              </button>
              <button
                type="button"
                className="btn btn-small"
                disabled={i === rows.length - 1}
                aria-label={`Move ${BOOT_DEVICE_LABELS[r.device]} down`}
                onClick={() => onChange({ bootOrder: moveBootDevice(order, r.device, 1) })}
              >
                ↓
              </button>
            </span>
          </li>
        ))}
      </ol>
      <p className="field-hint">
        {order.length === 0 ? 'Check at least one device to boot from.' : 'The firmware tries them in this order. Disk before CD boots an installer while the disk is blank, and the installed system afterwards.'}
      </p>
      <div className="check-row">
        <CheckboxField label="Show boot menu" checked={v.bootMenu ?? false} onChecked={(bootMenu) => onChange({ bootMenu })} hint="The firmware's menu to pick a device at start." />
        <CheckboxField
          label="Secure Boot"
          checked={v.secureBoot ?? false}
          // Secure Boot is a UEFI feature: turning it on chooses UEFI.
          onChecked={(secureBoot) => onChange(secureBoot ? { secureBoot, firmware: 'uefi' } : { secureBoot })}
          hint="UEFI with Microsoft's keys (Windows 11)."
        />
        <CheckboxField label="TPM 2.0" checked={v.tpm ?? false} onChecked={(tpm) => onChange({ tpm })} hint="A virtual TPM (Windows 11, BitLocker)." />
      </div>
    </fieldset>
  );
}
