/**
 * The New VM wizard (issue 9; the sandbox entry of issue 11): what to install → OS preset and
 * hardware → storage → summary with the exact QEMU command line. The rules and words are
 * renderer/lib/wizard.ts (pure, tested); this draws the steps and talks to the engine:
 * `host.defaults` (the host's sizes), `media.catalog/list/download` (OS downloads with progress),
 * `media.inspectImport` (what an appliance holds), `vms.preview` (the dry run) and `vms.create`.
 *
 * Keyboard: Enter goes to the next step (creates on the last), Back returns, Escape closes; when a
 * step has errors the first invalid field gets the focus. The body scrolls inside the dialog, so the
 * buttons stay visible at 800×600.
 */
import { useCallback, useEffect, useId, useMemo, useRef, useState, type DragEvent, type FormEvent, type ReactNode } from 'react';
import type { BrowseFilter, CatalogEntry, CreatePreview, DownloadInfo, ImportSummary, MediaItem } from '../../main/common/contract';
import type { Arch, DiskBus, Firmware } from '../../main/common/models/vm-config';
import type { VmInfo } from '../../main/common/models/vm-state';
import type { HostDefaults } from '../../main/common/models/vm-settings';
import { isVivariumError } from '../../main/common/errors';
import { Dialog } from '../components/dialog';
import { BrowseButton, desktopFiles, droppedPath } from '../components/file-chooser';
import { CheckboxField, FormError, RadioGroup, SelectField, TextField } from '../components/fields';
import { useServices } from '../engine';
import { useHostDefaults } from '../hooks/use-host-defaults';
import { formatBytes, formatMemoryMiB } from '../lib/format';
import { uiError } from '../lib/remedy';
import {
  applyPreset,
  baseName,
  BUS_WORDS,
  diskModes,
  formatDownload,
  downloadFailure,
  guessPreset,
  INITIAL_WIZARD,
  PRESET_IDS,
  PRESETS,
  refusalErrors,
  sandboxSummary,
  shellLine,
  SOURCE_LABELS,
  sourcePath,
  STEP_TITLES,
  stepErrors,
  hasHomePath,
  expandHomePaths,
  suggestName,
  toWizardSpec,
  WIZARD_STEPS,
  type AppliedPreset,
  type DiskMode,
  type PresetId,
  type SourceKind,
  type WizardErrors,
  type WizardField,
  type WizardStep,
  type WizardValues,
} from '../lib/wizard';
import { openVmWindow } from '../navigation';
import './new-vm-wizard.css';

const SOURCES: readonly SourceKind[] = ['iso', 'catalog', 'import', 'cloud', 'kernel'];
const FIRMWARE_LABELS: Readonly<Record<Firmware, string>> = { bios: 'BIOS', uefi: 'UEFI' };
const DISK_LABELS: Readonly<Record<DiskMode, string>> = { new: 'A new disk', existing: 'An existing disk image', none: 'No disk' };
const DISK_EXT = /\.(qcow2?|raw|img|vmdk|vdi|vhdx?|ova|ovf)$/i;

/** Limits for a preset while the engine has not said what this host has (or cannot: no QEMU): the
 *  preset's own values, uncut; the engine checks them against the host at the summary. */
const UNKNOWN_HOST: HostDefaults = {
  arch: 'x86_64',
  arches: ['x86_64'],
  firmware: 'bios',
  firmwares: ['bios', 'uefi'],
  cpus: 2,
  memoryMiB: 2048,
  diskSizeBytes: 20 * 1024 ** 3,
  limits: { minCpus: 1, maxCpus: 255, hostCores: 64, minMemoryMiB: 16, maxMemoryMiB: 1024 * 1024 },
};

/** Where the focus goes once React has rendered a step or its messages. */
type FocusTarget = { readonly to: 'invalid' | 'first'; readonly n: number };

/** The catalog for `kind` and this host's architecture, what is already downloaded, and the
 *  downloads running, kept current from `media.onDidProgress`. */
function useMedia(kind: 'installer' | 'cloud', arch: Arch | null): {
  readonly entries: readonly CatalogEntry[] | null;
  readonly items: readonly MediaItem[];
  readonly downloads: ReadonlyMap<string, DownloadInfo>;
  readonly error: string | null;
  readonly refresh: () => void;
} {
  const services = useServices();
  const [entries, setEntries] = useState<readonly CatalogEntry[] | null>(null);
  const [items, setItems] = useState<readonly MediaItem[]>([]);
  const [downloads, setDownloads] = useState<ReadonlyMap<string, DownloadInfo>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const refresh = useCallback(() => {
    services.media.list().then(setItems, () => undefined);
  }, [services]);
  useEffect(() => {
    if (!arch) return;
    let cancelled = false;
    services.media.catalog({ kind, arch }).then(
      (e) => !cancelled && setEntries(e),
      (e: unknown) => !cancelled && setError(uiError(e).message),
    );
    refresh();
    services.media.downloads().then(
      (list) => !cancelled && setDownloads(new Map(list.map((d) => [d.source, d]))),
      () => undefined,
    );
    return () => {
      cancelled = true;
    };
  }, [services, kind, arch, refresh]);
  useEffect(() => {
    const sub = services.media.onDidProgress((d) => {
      setDownloads((m) => new Map(m).set(d.source, d));
      if (d.state === 'done') refresh();
    });
    return () => sub.dispose();
  }, [services, refresh]);
  return { entries, items, downloads, error, refresh };
}

export interface NewVmWizardProps {
  readonly onClose: () => void;
  readonly onCreated: (vm: VmInfo) => void;
  /** The source chosen when the wizard opens (a "New Sandbox" entry passes `cloud`). */
  readonly initialSource?: SourceKind;
}

export function NewVmWizard({ onClose, onCreated, initialSource }: NewVmWizardProps): ReactNode {
  const services = useServices();
  const [values, setValues] = useState<WizardValues>(() => ({ ...INITIAL_WIZARD, source: initialSource ?? INITIAL_WIZARD.source, startAfter: initialSource !== 'kernel' }));
  const [errors, setErrors] = useState<WizardErrors>({});
  const [step, setStep] = useState<WizardStep>('source');
  const [busy, setBusy] = useState(false);
  const [preview, setPreview] = useState<CreatePreview | null>(null);
  const [applied, setApplied] = useState<AppliedPreset | null>(null);
  const [dropNote, setDropNote] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  /** The source the preset was last applied for: going Back and Next again keeps the user's edits. */
  const presetKey = useRef<string>('');
  const importInfo = useRef<ImportSummary | null>(null);
  /** The name the wizard last suggested. */
  const suggested = useRef<string | null>(null);
  const bodyRef = useRef<HTMLDivElement>(null);
  // Focus moves in an effect, i.e. after the commit that shows the messages or the new step (a
  // requestAnimationFrame may run before a render scheduled from an awaited engine call).
  const [focus, setFocus] = useState<FocusTarget>({ to: 'first', n: 0 });
  const focusFirstInvalid = (): void => setFocus((f) => ({ to: 'invalid', n: f.n + 1 }));
  useEffect(() => {
    if (focus.n === 0) return;
    const body = bodyRef.current;
    const target =
      focus.to === 'invalid'
        ? body?.querySelector<HTMLElement>('[aria-invalid="true"]')
        : body?.querySelector<HTMLElement>('input:not([disabled]), select:not([disabled]), textarea, button:not([disabled])');
    target?.focus();
  }, [focus]);
  const defaults = useHostDefaults(values.arch);
  const installers = useMedia('installer', defaults?.arch ?? null);
  const clouds = useMedia('cloud', defaults?.arch ?? null);
  const media = values.source === 'cloud' ? clouds : installers;
  const entry = useMemo(() => media.entries?.find((e) => e.id === values.catalogId) ?? null, [media.entries, values.catalogId]);

  const change = useCallback((patch: Partial<WizardValues>): void => {
    setValues((v) => ({ ...v, ...patch }));
    // A field's message goes away as soon as the user edits it.
    setErrors((e) => {
      const next: Partial<Record<WizardField, string>> = { ...e };
      for (const k of Object.keys(patch)) delete next[k as WizardField];
      if ('catalogId' in patch || 'downloadedPath' in patch) {
        delete next.catalog;
        delete next.cloudImage;
      }
      delete next.form;
      return next;
    });
  }, []);

  // A catalog entry already downloaded (now or earlier) is the file to use.
  useEffect(() => {
    if (values.catalogId === '') return;
    const done = media.items.find((i) => i.catalogId === values.catalogId);
    const path = done?.path ?? '';
    if (path !== values.downloadedPath) change({ downloadedPath: path });
  }, [media.items, values.catalogId, values.downloadedPath, change]);

  const index = WIZARD_STEPS.indexOf(step);
  const goTo = (s: WizardStep, errs: WizardErrors = {}): void => {
    setStep(s);
    setErrors(errs);
    if (Object.keys(errs).length > 0) focusFirstInvalid();
    else setFocus((f) => ({ to: 'first', n: f.n + 1 }));
  };

  /** The preset for what step 1 chose, applied once per source. */
  const presetFor = (v: WizardValues): Partial<WizardValues> => {
    const key = `${v.source}|${v.catalogId}|${sourcePath(v)}`;
    if (key === presetKey.current) return {};
    presetKey.current = key;
    const preset: PresetId = entry?.presetHints.preset ?? (v.source === 'kernel' ? 'linux' : guessPreset(baseName(sourcePath(v))));
    const a = applyPreset(preset, defaults ?? UNKNOWN_HOST, entry?.presetHints ?? null);
    setApplied(a);
    const patch: { -readonly [K in keyof WizardValues]?: WizardValues[K] } = { preset, ...a.values, os: entry ? `${entry.name} ${entry.version}` : '' };
    const found = importInfo.current;
    if (v.source === 'import' && found) {
      if (found.cpus !== null) patch.cpus = String(Math.min(found.cpus, (defaults ?? UNKNOWN_HOST).limits.maxCpus));
      if (found.memoryMiB !== null) patch.memory = `${found.memoryMiB}M`;
      if (found.firmware !== null) patch.firmware = found.firmware;
    }
    // A name the wizard suggested follows the file (a path refused on step 1 and then corrected);
    // a name the user typed stays.
    if (v.name.trim() === '' || v.name === suggested.current) {
      patch.name = v.source === 'import' && found ? found.name : suggestName(v, entry);
      suggested.current = patch.name;
    }
    return patch;
  };

  // What the preset set, for the architecture chosen now (aarch64 has no BIOS: the line follows
  // the Architecture field, as the Firmware field does).
  const shownPreset = useMemo(
    () => (applied && defaults ? applyPreset(values.preset, defaults, entry?.presetHints.preset === values.preset ? entry.presetHints : null) : applied),
    [applied, defaults, values.preset, entry],
  );

  const choosePreset = (preset: PresetId): void => {
    const a = applyPreset(preset, defaults ?? UNKNOWN_HOST, entry?.presetHints.preset === preset ? entry.presetHints : null);
    setApplied(a);
    change({ preset, ...a.values });
  };

  const loadPreview = async (v: WizardValues): Promise<void> => {
    setPreview(null);
    const r = toWizardSpec(v, defaults);
    if (!r.ok) return goTo(r.step, r.errors);
    try {
      setPreview(await services.vms.preview(r.spec));
    } catch (e) {
      showRefusal(e, v.source);
    }
  };

  const showRefusal = (e: unknown, source: SourceKind): void => {
    if (isVivariumError(e)) {
      const ui = uiError(e, 'form');
      const r = refusalErrors({ message: ui.message, field: e.field, fields: e.fields, data: e.data }, source);
      goTo(r.step, r.errors);
    } else goTo('summary', { form: uiError(e).message });
  };

  /** The user's home folder (the engine's chooser root), asked once, for "~/…" paths. */
  const home = useRef<string | null>(null);

  /**
   * The engine's dry run (`vms.preview`) when leaving step 1 or 2: an ISO that does not exist or
   * is not an ISO, a kernel that is not there, a name already taken… shown on the step and field it
   * concerns, before the user goes on. A refusal about a later step waits for that step; an engine
   * that cannot be asked leaves it to the summary. True when the wizard may go on.
   */
  const checkSoFar = async (v: WizardValues, upTo: WizardStep): Promise<boolean> => {
    const limit = WIZARD_STEPS.indexOf(upTo);
    const r = toWizardSpec(v, defaults);
    if (!r.ok) {
      if (WIZARD_STEPS.indexOf(r.step) > limit) return true;
      goTo(r.step, r.errors);
      return false;
    }
    setBusy(true);
    try {
      await services.vms.preview(r.spec);
      return true;
    } catch (e) {
      if (!isVivariumError(e)) return true;
      const ui = uiError(e, 'form');
      const refusal = refusalErrors({ message: ui.message, field: e.field, fields: e.fields, data: e.data }, v.source);
      if (WIZARD_STEPS.indexOf(refusal.step) > limit) return true;
      goTo(refusal.step, refusal.errors);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const next = async (): Promise<void> => {
    if (busy) return;
    let vals = values;
    // "~/Downloads/x.iso": the home folder, as a shell reads it.
    if (step === 'source' && hasHomePath(vals)) {
      try {
        home.current ??= (await services.host.browse({ filter: 'folder' })).root;
        const patch = expandHomePaths(vals, home.current);
        vals = { ...vals, ...patch };
        setValues((old) => ({ ...old, ...patch }));
      } catch {
        // No home known: the field asks for a full path.
      }
    }
    const errs = stepErrors(step, vals, defaults);
    if (Object.keys(errs).length > 0) {
      setErrors(errs);
      focusFirstInvalid();
      return;
    }
    if (step === 'source') {
      // What an image or appliance holds (and whether it is safe) before going on.
      if (vals.source === 'import') {
        setBusy(true);
        try {
          importInfo.current = await services.media.inspectImport(vals.importPath.trim());
        } catch (e) {
          setBusy(false);
          setErrors({ importPath: uiError(e).message });
          focusFirstInvalid();
          return;
        } finally {
          setBusy(false);
        }
      }
      const patch: { -readonly [K in keyof WizardValues]?: WizardValues[K] } = presetFor(vals);
      const v = { ...vals, ...patch };
      if (!diskModes(v.source).includes(v.diskMode)) patch.diskMode = diskModes(v.source)[0] ?? 'new';
      setValues((old) => ({ ...old, ...patch }));
      if (!(await checkSoFar({ ...v, ...patch }, 'source'))) return;
      return goTo('os');
    }
    if (step === 'os') {
      if (!(await checkSoFar(vals, 'os'))) return;
      return goTo('storage');
    }
    if (step === 'storage') {
      goTo('summary');
      return loadPreview(vals);
    }
    await create();
  };

  const create = async (): Promise<void> => {
    const r = toWizardSpec(values, defaults);
    if (!r.ok) return goTo(r.step, r.errors);
    setBusy(true);
    try {
      const vm = await services.vms.create(r.spec);
      if (values.startAfter) {
        // The VM exists whatever the start does: its window shows it running, or why it did not
        // start (the VM's last exit), with its Start button.
        await services.vms.start(vm.id, {}).catch(() => undefined);
        openVmWindow(vm.id);
      }
      onCreated(vm);
    } catch (e) {
      setBusy(false);
      showRefusal(e, values.source);
    }
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    void next();
  };

  const back = (): void => {
    if (index > 0) goTo(WIZARD_STEPS[index - 1]!);
  };

  // Drag and drop: an ISO or a disk image dropped anywhere on the wizard.
  const onDrop = (e: DragEvent): void => {
    const file = e.dataTransfer.files[0];
    if (!file) return;
    e.preventDefault();
    const p = droppedPath(file);
    if (p === null) {
      setDropNote(`A dropped file's location is not known to a browser page: dropping works in the desktop app. Here, use Browse… to choose ${file.name}.`);
      return;
    }
    setDropNote(null);
    if (/\.iso$/i.test(p)) change({ source: 'iso', iso: p });
    else if (DISK_EXT.test(p)) change({ source: 'import', importPath: p });
    else setDropNote(`${file.name} is neither an ISO nor a disk image.`);
    goTo('source');
  };

  // Closing while a download runs asks whether it goes on (Boxes and UTM keep it, and show it).
  const running = [...installers.downloads.values(), ...clouds.downloads.values()].filter((d) => d.state === 'downloading' || d.state === 'verifying');
  const [askClose, setAskClose] = useState(false);
  const askId = useId();
  const requestClose = (): void => {
    if (running.length > 0) setAskClose(true);
    else onClose();
  };
  const stopAndClose = async (): Promise<void> => {
    await Promise.all(running.map((d) => services.media.cancel(d.id).catch(() => undefined)));
    onClose();
  };

  const stepCount = WIZARD_STEPS.length;
  return (
    <Dialog title="New VM" onClose={requestClose} className="dialog-form dialog-wizard">
      <form className="wizard" noValidate onSubmit={submit} aria-busy={busy} onDragOver={(e) => e.preventDefault()} onDrop={onDrop}>
        <ol className="wizard-steps">
          {WIZARD_STEPS.map((s, i) => (
            <li key={s} aria-current={s === step ? 'step' : undefined} className={i < index ? 'done' : undefined}>
              <span className="wizard-step-n">{i + 1}</span> {STEP_TITLES[s]}
            </li>
          ))}
        </ol>
        <div className="wizard-body" ref={bodyRef}>
          <h3 className="wizard-heading">
            Step {index + 1} of {stepCount}: {STEP_TITLES[step]}
          </h3>
          {step === 'source' && <SourceStep values={values} errors={errors} change={change} media={media} dropNote={dropNote} />}
          {step === 'os' && <OsStep values={values} errors={errors} change={change} defaults={defaults} applied={shownPreset} choosePreset={choosePreset} />}
          {step === 'storage' && <StorageStep values={values} errors={errors} change={change} importInfo={importInfo.current} />}
          {step === 'summary' && <SummaryStep values={values} entry={entry} preview={preview} change={change} copied={copied} onCopy={() => preview && void navigator.clipboard?.writeText(shellLine(preview.argv)).then(() => setCopied(true), () => undefined)} />}
          <FormError message={errors.form} />
        </div>
        <div className="dialog-actions wizard-actions">
          <button type="button" className="btn" onClick={requestClose}>
            Cancel
          </button>
          <button type="button" className="btn" onClick={back} disabled={index === 0 || busy}>
            Back
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy || (step === 'summary' && preview === null && !errors.form)}>
            {step === 'summary' ? (busy ? 'Creating…' : 'Create') : busy ? 'Checking…' : 'Next'}
          </button>
        </div>
      </form>
      {askClose && running.length > 0 && (
        <Dialog title="Keep downloading?" onClose={() => setAskClose(false)} role="alertdialog" describedBy={askId} className="dialog-narrow">
          <p id={askId} className="dialog-text">
            {running.map((d) => d.name).join(', ')} {running.length === 1 ? 'is' : 'are'} still downloading. It can go on in the background (the library shows its progress, and the next New VM uses
            it), or stop now; a stopped download keeps what it has and resumes from there.
          </p>
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => void stopAndClose()}>
              Stop the Download
            </button>
            <button type="button" className="btn btn-primary" data-autofocus onClick={onClose}>
              Keep Downloading in the Background
            </button>
          </div>
        </Dialog>
      )}
    </Dialog>
  );
}

// ---- step 1 ----------------------------------------------------------------------------------------

interface StepProps {
  readonly values: WizardValues;
  readonly errors: WizardErrors;
  readonly change: (patch: Partial<WizardValues>) => void;
}

/** A path text field with its Browse button. */
function PathField(props: { readonly label: string; readonly value: string; readonly error?: string | undefined; readonly hint?: string; readonly placeholder?: string; readonly filter?: BrowseFilter; readonly onValue: (v: string) => void }): ReactNode {
  return (
    <div className="path-row">
      <TextField label={props.label} value={props.value} onValue={props.onValue} error={props.error} hint={props.hint} placeholder={props.placeholder} fieldClassName="path-input" />
      {props.filter && <BrowseButton label={props.label} filter={props.filter} current={props.value} onPath={props.onValue} />}
    </div>
  );
}

function SourceStep(props: StepProps & { readonly media: ReturnType<typeof useMedia>; readonly dropNote: string | null }): ReactNode {
  const { values: v, errors, change } = props;
  const dropHint = desktopFiles() ? 'Or drop an ISO or disk image onto this window.' : 'In the desktop app you can also drop a file onto this window.';
  return (
    <div className="wizard-stack">
      <fieldset className="radio-group">
        <legend className="field-label">Install from</legend>
        <div className="wizard-choices">
          {SOURCES.map((s) => (
            <label key={s} className="radio">
              <input
                type="radio"
                name="wizard-source"
                value={s}
                checked={v.source === s}
                onChange={() => change({ source: s, catalogId: '', downloadedPath: '', startAfter: s !== 'kernel' })}
              />
              {SOURCE_LABELS[s]}
            </label>
          ))}
        </div>
      </fieldset>
      {props.dropNote && <p className="notice-inline" role="status">{props.dropNote}</p>}

      {v.source === 'iso' && (
        <PathField label="ISO image path" value={v.iso} error={errors.iso} filter="iso" placeholder="/home/me/Downloads/debian-13.iso" hint={dropHint} onValue={(iso) => change({ iso })} />
      )}
      {v.source === 'catalog' && <CatalogPicker {...props} kind="installer" />}
      {v.source === 'import' && (
        <>
          <PathField
            label="Image or appliance path"
            value={v.importPath}
            error={errors.importPath}
            filter="disk"
            placeholder="/home/me/vm.ova"
            hint={`qcow2, raw, vmdk, vdi, vhdx, vhd, OVA or OVF. ${dropHint}`}
            onValue={(importPath) => change({ importPath })}
          />
          <RadioGroup
            legend="Use it as"
            value={v.importMode}
            options={[
              { value: 'copy', label: 'A copy (converted to qcow2 in the VM’s folder)' },
              { value: 'attach', label: 'Itself, where it is (qcow2 or raw only)' },
            ]}
            onValue={(importMode) => change({ importMode })}
          />
        </>
      )}
      {v.source === 'cloud' && (
        <>
          <CatalogPicker {...props} kind="cloud" />
          {v.catalogId === '' && (
            <PathField label="Cloud image path" value={v.cloudImage} error={errors.cloudImage} filter="disk" placeholder="/home/me/debian-13-genericcloud-amd64.qcow2" hint="A qcow2 or raw cloud image; it is never modified." onValue={(cloudImage) => change({ cloudImage })} />
          )}
          <div className="form-grid">
            <TextField label="User name" value={v.user} onValue={(user) => change({ user })} error={errors.user} placeholder="Your user name" hint="The account cloud-init makes." />
            <TextField label="Host name" value={v.hostname} onValue={(hostname) => change({ hostname })} error={errors.hostname} placeholder="The VM's name" />
            <div className="span-2">
              <PathField
                label="SSH public key file"
                value={v.sshKeyFile}
                onValue={(sshKeyFile) => change({ sshKeyFile })}
                error={errors.sshKeyFile}
                filter="ssh-key"
                placeholder="/home/me/.ssh/id_ed25519.pub"
                hint="Empty: Vivarium makes a key pair for this VM."
              />
            </div>
            <div className="span-2">
              <PathField
                label="Password file"
                value={v.passwordFile}
                onValue={(passwordFile) => change({ passwordFile })}
                error={errors.passwordFile}
                filter="any"
                placeholder="Optional"
                hint="A file whose first line is the user's password; Vivarium reads it at create and never shows it. Empty: password login stays off."
              />
            </div>
            <TextField label="Packages to install" value={v.packages} onValue={(packages) => change({ packages })} error={errors.packages} placeholder="git, curl" hint="Installed at first boot; commas or spaces between." fieldClassName="span-2" />
            <div className="span-2">
              <PathField
                label="Extra user-data file"
                value={v.userDataFile}
                onValue={(userDataFile) => change({ userDataFile })}
                error={errors.userDataFile}
                filter="any"
                placeholder="Optional: /home/me/user-data.yaml"
                hint="A #cloud-config or script that cloud-init runs besides Vivarium's; the engine checks it when the VM is created."
              />
            </div>
            <div className="span-2">
              <PathField
                label="Shared folder"
                value={v.shareFolder}
                onValue={(shareFolder) => change({ shareFolder })}
                error={errors.shareFolder}
                filter="folder"
                placeholder="/home/me/project"
                hint="Optional: a folder of this computer (Browse: open it, then Choose this folder), mounted in the guest at /mnt/<its name>."
              />
            </div>
            <div className="field check-cell">
              <CheckboxField label="Read-only" checked={v.shareReadOnly} onChecked={(shareReadOnly) => change({ shareReadOnly })} />
            </div>
          </div>
          <p className="field-hint">Port forwards are on the next step; SSH gets one of its own at every start.</p>
        </>
      )}
      {v.source === 'kernel' && (
        <div className="form-grid">
          <PathField label="Kernel path" value={v.kernel} error={errors.kernel} placeholder="/boot/vmlinuz" onValue={(kernel) => change({ kernel })} />
          <PathField label="Initrd path" value={v.initrd} error={errors.initrd} placeholder="Optional" onValue={(initrd) => change({ initrd })} />
          <TextField label="Kernel command line" value={v.append} onValue={(append) => change({ append })} error={errors.append} placeholder="console=ttyS0" fieldClassName="span-2" />
        </div>
      )}
    </div>
  );
}

/** The catalog's entries for this host as radio buttons, and the chosen one's download. */
function CatalogPicker(props: StepProps & { readonly media: ReturnType<typeof useMedia>; readonly kind: 'installer' | 'cloud' }): ReactNode {
  const services = useServices();
  const { values: v, errors, change, media } = props;
  const [actionError, setActionError] = useState<string | null>(null);
  const field: WizardField = props.kind === 'cloud' ? 'cloudImage' : 'catalog';
  // The message about the chosen entry (not chosen, not downloaded yet) sits under the list, and the
  // list's first choice takes the focus.
  const error = props.kind === 'cloud' ? (v.catalogId !== '' ? errors.cloudImage : undefined) : errors.catalog;
  const chosen = media.entries?.find((e) => e.id === v.catalogId) ?? null;
  const download = chosen ? (media.downloads.get(chosen.id) ?? null) : null;
  // One request at a time: a double click on Download must not start the download twice.
  const acting = useRef(false);
  const [pending, setPending] = useState(false);
  const act = async (what: () => Promise<unknown>): Promise<void> => {
    if (acting.current) return;
    acting.current = true;
    setPending(true);
    setActionError(null);
    try {
      await what();
    } catch (e) {
      setActionError(uiError(e).message);
    } finally {
      acting.current = false;
      setPending(false);
    }
  };
  const failure = download?.state === 'failed' && download.error ? downloadFailure(download.error) : null;
  const running = download !== null && (download.state === 'downloading' || download.state === 'verifying');
  return (
    <div className="wizard-stack">
      {media.error && <FormError message={media.error} />}
      <fieldset className="radio-group">
        <legend className="field-label">{props.kind === 'cloud' ? 'Cloud image' : 'Operating system'}</legend>
        <div className="wizard-choices catalog-list">
          {props.kind === 'cloud' && (
            <label className="radio">
              <input type="radio" name={`catalog-${props.kind}`} checked={v.catalogId === ''} onChange={() => change({ catalogId: '', downloadedPath: '' })} />A cloud image on this computer
            </label>
          )}
          {media.entries === null && !media.error && <p className="muted">Loading the catalog…</p>}
          {media.entries?.map((e, i) => (
            <label key={e.id} className="radio">
              <input
                type="radio"
                name={`catalog-${props.kind}`}
                value={e.id}
                checked={v.catalogId === e.id}
                aria-invalid={(error !== undefined && (props.kind === 'cloud' ? v.catalogId === e.id : i === 0)) || undefined}
                onChange={() => change({ catalogId: e.id, downloadedPath: '' })}
              />
              <span>
                {e.name} {e.version} <span className="muted">({formatBytes(e.sizeBytes)})</span>
                {media.items.some((m) => m.catalogId === e.id) && <span className="badge-done"> · downloaded</span>}
              </span>
            </label>
          ))}
        </div>
      </fieldset>
      {error && <p className="field-error">{error}</p>}
      {chosen && (
        <div className="download-box" data-field={field}>
          {v.downloadedPath !== '' ? (
            <p role="status" className="download-status">
              Downloaded and verified: <span className="mono">{v.downloadedPath}</span>
            </p>
          ) : (
            <>
              <p role="status" className="download-status" data-testid="download-status">
                {failure ? failure.headline : download ? formatDownload(download) : `${chosen.name} ${chosen.version} is downloaded from ${new URL(chosen.url).host} and verified with ${chosen.checksumAlgorithm.toUpperCase()} before use.`}
              </p>
              {failure?.details && (
                <details className="download-details">
                  <summary>Details</summary>
                  <p className="mono">{failure.details}</p>
                </details>
              )}
              {download && download.totalBytes !== null && download.state !== 'failed' && (
                <progress className="download-bar" max={download.totalBytes} value={download.receivedBytes} aria-label="Download progress" />
              )}
              <div className="download-actions">
                {!running && (
                  <button type="button" className="btn" disabled={pending} onClick={() => void act(() => (download?.state === 'paused' ? services.media.resume(download.id) : services.media.download({ source: chosen.id })))}>
                    {download?.state === 'paused' ? 'Resume Download' : 'Download'}
                  </button>
                )}
                {running && download && (
                  <button type="button" className="btn" disabled={pending} onClick={() => void act(() => services.media.cancel(download.id))}>
                    Cancel Download
                  </button>
                )}
              </div>
            </>
          )}
          <FormError message={actionError} />
        </div>
      )}
    </div>
  );
}

// ---- step 2 ----------------------------------------------------------------------------------------

function firmwareOptions(d: HostDefaults | null, value: Firmware | ''): { value: Firmware | ''; label: string }[] {
  const kinds: readonly Firmware[] = d ? d.firmwares : ['bios', 'uefi'];
  const list: { value: Firmware | ''; label: string }[] = kinds.map((k) => ({ value: k, label: FIRMWARE_LABELS[k] }));
  if (value === '') list.unshift({ value: '', label: 'Default for this host' });
  return list;
}

function OsStep(props: StepProps & { readonly defaults: HostDefaults | null; readonly applied: AppliedPreset | null; readonly choosePreset: (p: PresetId) => void }): ReactNode {
  const { values: v, errors, change, defaults, applied } = props;
  const limits = defaults?.limits;
  return (
    <div className="wizard-stack">
      <div className="form-grid">
        <TextField label="Name" value={v.name} onValue={(name) => change({ name })} error={errors.name} required fieldClassName="span-2" />
        <SelectField<PresetId> label="OS preset" value={v.preset} options={PRESET_IDS.map((p) => ({ value: p, label: PRESETS[p].label }))} onValue={props.choosePreset} hint="Sets the hardware below to what this OS needs, sized to this host." />
        <TextField label="Operating system" value={v.os} onValue={(os) => change({ os })} error={errors.os} placeholder={PRESETS[v.preset].osLabel} hint="The label in the library." />
      </div>
      {applied && (
        <div className="preset-summary" aria-label="What the preset set">
          <p className="field-hint">The preset set: {applied.shown.map((c) => `${c.label} ${c.value}`).join(' · ')}</p>
          {applied.notes.map((n) => (
            <p key={n} className="field-hint preset-note">
              {n}
            </p>
          ))}
        </div>
      )}
      <div className="form-grid">
        <TextField
          label="CPUs"
          value={v.cpus}
          onValue={(cpus) => change({ cpus })}
          error={errors.cpus}
          inputMode="numeric"
          hint={limits ? `This host has ${limits.hostCores} core${limits.hostCores === 1 ? '' : 's'}.` : undefined}
        />
        <TextField label="Memory" value={v.memory} onValue={(memory) => change({ memory })} error={errors.memory} hint={`MiB, or with a unit: 512M, 2G.${limits ? ` This host has ${formatMemoryMiB(limits.maxMemoryMiB)}.` : ''}`} />
        {defaults && defaults.arches.length > 1 && (
          <SelectField<Arch> label="Architecture" value={v.arch || defaults.arch} options={defaults.arches.map((a) => ({ value: a, label: a }))} onValue={(arch) => change({ arch, firmware: '' })} />
        )}
        <SelectField<Firmware | ''> label="Firmware" value={v.firmware} options={firmwareOptions(defaults, v.firmware)} onValue={(firmware) => change({ firmware, ...(firmware === 'bios' ? { secureBoot: false } : {}) })} error={errors.firmware} />
        <div className="span-2 check-row">
          <CheckboxField label="TPM 2.0" checked={v.tpm} onChecked={(tpm) => change({ tpm })} hint={errors.tpm} />
          <CheckboxField label="Secure Boot" checked={v.secureBoot} onChecked={(secureBoot) => change({ secureBoot, ...(secureBoot ? { firmware: 'uefi' } : {}) })} hint={errors.secureBoot} />
          <CheckboxField label="Show boot menu" checked={v.bootMenu} onChecked={(bootMenu) => change({ bootMenu })} />
          <CheckboxField label="Network" checked={v.network} onChecked={(network) => change({ network })} hint={errors.network} />
          <CheckboxField label="Graphical display" checked={v.display} onChecked={(display) => change({ display })} />
        </div>
        <TextField
          label="Port forwards"
          value={v.forwards}
          onValue={(forwards) => change({ forwards })}
          error={errors.forwards}
          hint="Host port on 127.0.0.1 to guest port, e.g. tcp:8080:80; separate several with commas."
          fieldClassName="span-2"
        />
      </div>
    </div>
  );
}

// ---- step 3 ----------------------------------------------------------------------------------------

function StorageStep(props: StepProps & { readonly importInfo: ImportSummary | null }): ReactNode {
  const { values: v, errors, change } = props;
  const modes = diskModes(v.source);
  if (v.source === 'import') {
    const found = props.importInfo;
    return (
      <div className="wizard-stack">
        <p>The VM gets the disks of {baseName(v.importPath)}{v.importMode === 'copy' ? ', converted to qcow2 in its folder' : ', used where they are'}:</p>
        <ul className="plain-list">
          {found?.disks.map((d, i) => (
            <li key={`${d.label}-${i}`}>
              {i === 0 ? 'System disk' : `Disk ${i + 1}`}: {d.label} ({d.format}, {formatBytes(d.virtualSizeBytes)})
            </li>
          ))}
        </ul>
      </div>
    );
  }
  return (
    <div className="wizard-stack">
      {modes.length > 1 && <RadioGroup legend="System disk" value={v.diskMode} options={modes.map((m) => ({ value: m, label: DISK_LABELS[m] }))} onValue={(diskMode) => change({ diskMode })} />}
      {v.diskMode === 'new' && (
        <TextField
          label="Disk size (GiB)"
          value={v.diskGiB}
          onValue={(diskGiB) => change({ diskGiB })}
          error={errors.diskGiB}
          inputMode="decimal"
          hint={v.source === 'cloud' ? 'The VM’s own disk on top of the image (the image is never modified), grown to this size.' : 'A qcow2 file in the VM’s folder; it takes space only as the guest writes.'}
        />
      )}
      {v.diskMode === 'existing' && (
        <PathField label="Disk image path" value={v.diskPath} error={errors.diskPath} filter="disk" placeholder="/home/me/disk.qcow2" hint="A qcow2 or raw image, used in place (never deleted by Vivarium)." onValue={(diskPath) => change({ diskPath })} />
      )}
      {v.diskMode !== 'none' && v.source !== 'cloud' && (
        <SelectField<DiskBus>
          label="Disk bus"
          value={v.diskBus}
          options={(['virtio', 'sata', 'nvme'] as const).map((b) => ({ value: b, label: BUS_WORDS[b] }))}
          onValue={(diskBus) => change({ diskBus })}
          error={errors.diskBus}
          hint="virtio is fastest; SATA or NVMe for installers without virtio drivers (Windows)."
        />
      )}
      {v.diskMode === 'none' && <p className="field-hint">The VM boots from its {v.source === 'kernel' ? 'kernel' : 'CD'} only; add a disk later under Hardware.</p>}
    </div>
  );
}

// ---- step 4 ----------------------------------------------------------------------------------------

function SummaryStep(props: { readonly values: WizardValues; readonly entry: CatalogEntry | null; readonly preview: CreatePreview | null; readonly change: (p: Partial<WizardValues>) => void; readonly copied: boolean; readonly onCopy: () => void }): ReactNode {
  const { values: v, preview } = props;
  const rows: (readonly [string, string])[] = [
    ['Name', v.name],
    ['Install from', v.source === 'catalog' && props.entry ? `${props.entry.name} ${props.entry.version} (${baseName(v.downloadedPath)})` : `${SOURCE_LABELS[v.source]}: ${sourcePath(v)}`],
    ['OS preset', PRESETS[v.preset].label],
    ['Hardware', `${v.cpus} CPU${v.cpus === '1' ? '' : 's'} · ${v.memory} memory · ${v.firmware ? FIRMWARE_LABELS[v.firmware] : 'default'} firmware${v.tpm ? ' · TPM 2.0' : ''}${v.secureBoot ? ' · Secure Boot' : ''}${v.bootMenu ? ' · boot menu' : ''}`],
    ['Storage', v.source === 'import' ? `the image's disks (${v.importMode})` : v.diskMode === 'new' ? `new ${v.diskGiB} GiB disk (${BUS_WORDS[v.source === 'cloud' ? 'virtio' : v.diskBus]})` : v.diskMode === 'existing' ? `${v.diskPath} (${BUS_WORDS[v.diskBus]})` : 'no disk'],
    ['Network', v.network ? `NAT${v.forwards.trim() ? `, forwards ${v.forwards.trim()}` : ''}` : 'none'],
    ...sandboxSummary(v),
  ];
  return (
    <div className="wizard-stack">
      <dl className="summary-list">
        {rows.map(([k, val]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{val}</dd>
          </div>
        ))}
      </dl>
      <div className="field">
        <span className="field-label" id="qemu-cmd-label">
          QEMU command line{preview ? ` (${preview.accel.toUpperCase()})` : ''}
        </span>
        {preview ? (
          <pre className="qemu-cmd" aria-labelledby="qemu-cmd-label" tabIndex={0} data-testid="qemu-command-line">
            {shellLine(preview.argv)}
          </pre>
        ) : (
          <p className="muted" role="status">
            Checking the settings with the engine…
          </p>
        )}
        {preview && (
          <p className="field-hint">
            Exactly what Vivarium will run; paths in the VM’s folder get its id when it is created.{' '}
            <button type="button" className="btn btn-small" onClick={props.onCopy}>
              {props.copied ? 'Copied' : 'Copy'}
            </button>
          </p>
        )}
        {preview?.notices.map((n) => (
          <p key={n} className="field-hint preset-note">
            {n}
          </p>
        ))}
      </div>
      <CheckboxField label="Start the VM now and open its window" checked={v.startAfter} onChecked={(startAfter) => props.change({ startAfter })} />
    </div>
  );
}
