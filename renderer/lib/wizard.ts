/**
 * The New VM wizard as pure data (renderer/views/new-vm-wizard.tsx draws it): what the user chose on
 * each of the four steps → a CreateVmSpec, or a message per field and the step that shows it.
 *
 *   1. source  — what to install: an ISO on this computer, an OS from the catalog (downloaded and
 *                verified by the engine's media service), a disk image or appliance to import, a
 *                cloud image sandbox (cloud-init), or a Linux kernel (advanced);
 *   2. os      — an OS preset that sets the hardware (sized to this host: `host.defaults`), editable;
 *   3. storage — a new disk, an existing image, or none (imports and sandboxes bring their own);
 *   4. summary — what will be made, with the exact QEMU command line (`vms.preview`).
 *
 * The contract's schemas (CreateVmSpec, CloudCreateSpec) and the settings rules decide what is valid,
 * as for the engine; this module turns text into numbers, picks the preset's values, and maps the
 * engine's `field`s onto the wizard's fields and steps.
 */
import { CreateVmSpec, type CatalogEntry, type DownloadInfo, type PresetHints } from '../../main/common/contract';
import type { Arch, DiskBus, Firmware } from '../../main/common/models/vm-config';
import { checkLimits, type HostDefaults } from '../../main/common/models/vm-settings';
import { BUS_WORDS, PRESETS, presetHardware } from '../../main/common/models/presets';
import { shellArg } from '../../main/common/shell-arg';
import { formatBytes, formatMemoryMiB } from './format';
import { issueMessage, memoryText, parseCpus, parseDiskBytes, parseForwards, parseMemoryMiB } from './vm-form';
import { uiRemedy } from './remedy';

// ---- steps and fields ----------------------------------------------------------------------------

export type WizardStep = 'source' | 'os' | 'storage' | 'summary';
export const WIZARD_STEPS: readonly WizardStep[] = ['source', 'os', 'storage', 'summary'];
export const STEP_TITLES: Readonly<Record<WizardStep, string>> = {
  source: 'What to install',
  os: 'Operating system and hardware',
  storage: 'Storage',
  summary: 'Summary',
};

/** What the VM is made from. */
export type SourceKind = 'iso' | 'catalog' | 'import' | 'cloud' | 'kernel';
export const SOURCE_LABELS: Readonly<Record<SourceKind, string>> = {
  iso: 'An ISO image on this computer',
  catalog: 'Download an operating system',
  import: 'Import a disk image or appliance',
  cloud: 'A cloud image sandbox (cloud-init)',
  kernel: 'A Linux kernel (advanced)',
};

export type PresetId = PresetHints['preset'];

export type DiskMode = 'new' | 'existing' | 'none';

export interface WizardValues {
  readonly source: SourceKind;
  // step 1
  readonly iso: string;
  /** The chosen catalog entry (installer for `catalog`, cloud image for `cloud`); "" = none. */
  readonly catalogId: string;
  /** The verified local file of the chosen catalog entry, once downloaded; "" until then. */
  readonly downloadedPath: string;
  readonly importPath: string;
  readonly importMode: 'copy' | 'attach';
  /** A cloud image on this computer (used when no catalog entry is chosen). */
  readonly cloudImage: string;
  readonly user: string;
  /** An SSH public key file (.pub); "" = Vivarium makes a key pair for the VM. */
  readonly sshKeyFile: string;
  /** A file whose first line is the guest user's password; "" = password login stays locked. The
   *  wizard sends the path only: the password itself is never read or shown by the UI. */
  readonly passwordFile: string;
  /** A cloud-init user-data file (#cloud-config or a script) merged with Vivarium's; "" = none.
   *  The engine reads and checks it at create. */
  readonly userDataFile: string;
  readonly hostname: string;
  /** "git, curl build-essential" */
  readonly packages: string;
  /** A host folder to share with the sandbox (9p, mounted at /mnt/<tag>); "" = none. */
  readonly shareFolder: string;
  readonly shareReadOnly: boolean;
  readonly kernel: string;
  readonly initrd: string;
  readonly append: string;
  // step 2
  readonly name: string;
  readonly preset: PresetId;
  /** The library's label, such as "Debian 13". */
  readonly os: string;
  /** "" = the host's default. */
  readonly arch: Arch | '';
  readonly cpus: string;
  readonly memory: string;
  readonly firmware: Firmware | '';
  readonly tpm: boolean;
  readonly secureBoot: boolean;
  /** Show the firmware's boot menu at start (`-boot menu=on`). */
  readonly bootMenu: boolean;
  readonly network: boolean;
  readonly display: boolean;
  readonly forwards: string;
  // step 3
  readonly diskMode: DiskMode;
  /** GiB */
  readonly diskGiB: string;
  readonly diskPath: string;
  /** The system disk's bus: virtio unless the OS's installer has no virtio driver (Windows: SATA). */
  readonly diskBus: DiskBus;
  // step 4
  readonly startAfter: boolean;
}

export type WizardField =
  | 'source'
  | 'iso'
  | 'catalog'
  | 'importPath'
  | 'cloudImage'
  | 'user'
  | 'sshKeyFile'
  | 'passwordFile'
  | 'userDataFile'
  | 'hostname'
  | 'packages'
  | 'shareFolder'
  | 'kernel'
  | 'initrd'
  | 'append'
  | 'name'
  | 'os'
  | 'arch'
  | 'cpus'
  | 'memory'
  | 'firmware'
  | 'tpm'
  | 'secureBoot'
  | 'network'
  | 'forwards'
  | 'diskGiB'
  | 'diskPath'
  | 'diskBus'
  | 'form';

export type WizardErrors = Readonly<Partial<Record<WizardField, string>>>;

/** The step each field is on (`form`: messages no field owns show on the summary). */
export const FIELD_STEP: Readonly<Record<WizardField, WizardStep>> = {
  source: 'source',
  iso: 'source',
  catalog: 'source',
  importPath: 'source',
  cloudImage: 'source',
  user: 'source',
  sshKeyFile: 'source',
  passwordFile: 'source',
  userDataFile: 'source',
  hostname: 'source',
  packages: 'source',
  shareFolder: 'source',
  kernel: 'source',
  initrd: 'source',
  append: 'source',
  name: 'os',
  os: 'os',
  arch: 'os',
  cpus: 'os',
  memory: 'os',
  firmware: 'os',
  tpm: 'os',
  secureBoot: 'os',
  network: 'os',
  forwards: 'os',
  diskGiB: 'storage',
  diskPath: 'storage',
  diskBus: 'storage',
  form: 'summary',
};

export const INITIAL_WIZARD: WizardValues = {
  source: 'iso',
  iso: '',
  catalogId: '',
  downloadedPath: '',
  importPath: '',
  importMode: 'copy',
  cloudImage: '',
  user: '',
  sshKeyFile: '',
  passwordFile: '',
  userDataFile: '',
  hostname: '',
  packages: '',
  shareFolder: '',
  shareReadOnly: false,
  kernel: '',
  initrd: '',
  append: '',
  name: '',
  preset: 'other',
  os: '',
  arch: '',
  cpus: '',
  memory: '',
  firmware: '',
  tpm: false,
  secureBoot: false,
  bootMenu: false,
  network: true,
  display: true,
  forwards: '',
  diskMode: 'new',
  diskGiB: '',
  diskPath: '',
  diskBus: 'virtio',
  startAfter: true,
};

// ---- presets ----------------------------------------------------------------------------------------

// The table and the sizing are shared with the engine's `create --preset` (main/common/models/presets.ts).
export { BUS_WORDS, PRESET_IDS, PRESETS, type Preset } from '../../main/common/models/presets';

/** The preset a file name suggests ("debian-13.1.0-amd64-netinst.iso" → debian); `other` when none. */
export function guessPreset(fileName: string): PresetId {
  const n = fileName.toLowerCase();
  if (/win(dows)?[ _.-]?11/.test(n)) return 'windows11';
  if (/win(dows)?[ _.-]?10/.test(n)) return 'windows10';
  if (n.includes('debian')) return 'debian';
  if (n.includes('ubuntu')) return 'ubuntu';
  if (n.includes('fedora')) return 'fedora';
  if (n.includes('alpine')) return 'alpine';
  if (/(^|[^a-z])arch(linux)?[-_.]/.test(n)) return 'arch';
  return 'other';
}

/** One line of "what the preset set", for the user to see. */
export interface PresetChoice {
  readonly label: string;
  readonly value: string;
}

export interface AppliedPreset {
  /** The step-2 and step-3 values the preset sets. */
  readonly values: Pick<WizardValues, 'cpus' | 'memory' | 'firmware' | 'tpm' | 'secureBoot' | 'diskGiB' | 'diskBus'>;
  /** What was set, in words (shown under the preset). */
  readonly shown: readonly PresetChoice[];
  /** Sentences about what this host or Vivarium changes from the preset. */
  readonly notes: readonly string[];
}

/**
 * The hardware a preset gives a VM on this host: the preset's (or the catalog entry's `presetHints`)
 * recommendations, cut to what the host has — CPUs to its cores, memory to half its memory but never
 * below the OS's minimum while the host has that much — and UEFI only where the host has UEFI
 * firmware for the architecture.
 */
export function applyPreset(id: PresetId, defaults: HostDefaults, hints?: PresetHints | null): AppliedPreset {
  const hw = presetHardware(id, defaults, hints);
  const shown: PresetChoice[] = [
    { label: 'CPUs', value: String(hw.cpus) },
    { label: 'Memory', value: formatMemoryMiB(hw.memoryMiB) },
    { label: 'Disk', value: `${hw.diskGiB} GiB` },
    { label: 'Firmware', value: hw.firmware === 'uefi' ? 'UEFI' : 'BIOS' },
    { label: 'TPM 2.0', value: hw.tpm ? 'on' : 'off' },
    { label: 'Secure Boot', value: hw.secureBoot ? 'on' : 'off' },
    { label: 'Disk bus', value: BUS_WORDS[hw.diskBus] },
  ];
  return { values: { cpus: String(hw.cpus), memory: memoryText(hw.memoryMiB), firmware: hw.firmware, tpm: hw.tpm, secureBoot: hw.secureBoot, diskGiB: String(hw.diskGiB), diskBus: hw.diskBus }, shown, notes: hw.notes };
}

// ---- what step 1 chose ---------------------------------------------------------------------------------

/** The file the chosen source boots or imports ("" when none yet). */
export function sourcePath(v: WizardValues): string {
  switch (v.source) {
    case 'iso':
      return v.iso.trim();
    case 'catalog':
      return v.downloadedPath;
    case 'import':
      return v.importPath.trim();
    case 'cloud':
      return v.catalogId !== '' ? v.downloadedPath : v.cloudImage.trim();
    case 'kernel':
      return v.kernel.trim();
  }
}

/** The last path segment, for names and presets. */
export function baseName(p: string): string {
  return p.split(/[\\/]/).filter(Boolean).pop() ?? '';
}

/** A VM name from a file name or a catalog entry: "debian-13.1.0-amd64-netinst.iso" → "debian-13.1.0-amd64-netinst". */
export function suggestName(v: WizardValues, entry: CatalogEntry | null): string {
  if (entry) return `${entry.name} ${entry.version}`.slice(0, 100);
  const file = baseName(sourcePath(v)).replace(/\.(iso|qcow2|img|raw|vmdk|vdi|vhdx?|ova|ovf)$/i, '');
  return file.slice(0, 100);
}

/** Which disk choices a source offers: imports and sandboxes bring their own disk. */
export function diskModes(source: SourceKind): readonly DiskMode[] {
  if (source === 'import') return [];
  if (source === 'cloud') return ['new'];
  return ['new', 'existing', 'none'];
}

/** What a sandbox gets, as [label, value] rows for the summary. The password file is named, its
 *  content never read or shown. Empty for other sources. */
export function sandboxSummary(v: WizardValues): readonly (readonly [string, string])[] {
  if (v.source !== 'cloud') return [];
  const pk = parsePackages(v.packages);
  const share = v.shareFolder.trim();
  return [
    ['User', v.user.trim() || 'your user name on this computer (or "vivarium")'],
    ['SSH key', v.sshKeyFile.trim() || 'a new key pair made for this VM'],
    ['Password', v.passwordFile.trim() ? `from ${v.passwordFile.trim()} (not shown)` : 'none: password login stays off'],
    ['Extra user-data', v.userDataFile.trim() || 'none'],
    ['Packages', pk.ok && pk.value.length > 0 ? pk.value.join(', ') : 'none'],
    ['Shared folder', share ? `${share}${v.shareReadOnly ? ' (read-only)' : ''}, mounted under /mnt` : 'none'],
  ];
}

// ---- checking a step --------------------------------------------------------------------------------

const ABSOLUTE = /^(\/|[A-Za-z]:[\\/]|\\\\)/;

function pathError(text: string, what: string, required: boolean): string | undefined {
  const t = text.trim();
  if (t === '') return required ? `Choose ${what} (Browse, or type its full path).` : undefined;
  if (/^~(\/|$)/.test(t)) return `Type the full path of ${what}, starting with / (not ~), or use Browse….`;
  if (!ABSOLUTE.test(t)) return `Type the full path of ${what}, starting with /.`;
  return undefined;
}

/** The wizard's fields that hold a host path. */
const PATH_FIELDS = ['iso', 'importPath', 'cloudImage', 'kernel', 'initrd', 'sshKeyFile', 'passwordFile', 'userDataFile', 'shareFolder', 'diskPath'] as const satisfies readonly (keyof WizardValues)[];

/** Whether a path field starts with "~" (the home folder, as shells write it). */
export function hasHomePath(v: WizardValues): boolean {
  return PATH_FIELDS.some((f) => /^~(\/|$)/.test(v[f].trim()));
}

/**
 * "~" and "~/…" in the path fields as the full path under `home` (the user's home folder, as the
 * engine's file chooser roots it: `host.browse`'s `root`). "~user/…" is left alone (pathError then
 * asks for a full path). Returns only the fields it changed.
 */
export function expandHomePaths(v: WizardValues, home: string): Partial<WizardValues> {
  const patch: { -readonly [K in (typeof PATH_FIELDS)[number]]?: string } = {};
  const base = home.replace(/\/+$/, '');
  for (const f of PATH_FIELDS) {
    const t = v[f].trim();
    if (t === '~') patch[f] = base === '' ? '/' : base;
    else if (t.startsWith('~/')) patch[f] = `${base}/${t.slice(2)}`;
  }
  return patch;
}

const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const PACKAGE_RE = /^[A-Za-z0-9][A-Za-z0-9.+:~_-]{0,99}$/;

/** "git, curl build-essential" → ["git", "curl", "build-essential"]. */
export function parsePackages(text: string): { readonly ok: true; readonly value: string[] } | { readonly ok: false; readonly message: string } {
  const list = text.split(/[\s,]+/).filter((x) => x !== '');
  const bad = list.find((p) => !PACKAGE_RE.test(p));
  if (bad !== undefined) return { ok: false, message: `"${bad}" is not a package name; separate package names with commas or spaces.` };
  if (list.length > 100) return { ok: false, message: 'At most 100 packages.' };
  return { ok: true, value: list };
}

function sourceErrors(v: WizardValues): Partial<Record<WizardField, string>> {
  const e: Partial<Record<WizardField, string>> = {};
  const put = (f: WizardField, m: string | undefined): void => {
    if (m !== undefined) e[f] = m;
  };
  switch (v.source) {
    case 'iso':
      put('iso', pathError(v.iso, 'an ISO image', true));
      break;
    case 'catalog':
      if (v.catalogId === '') e.catalog = 'Choose an operating system to download.';
      else if (v.downloadedPath === '') e.catalog = 'Download it first (or wait until its download has been verified).';
      break;
    case 'import':
      put('importPath', pathError(v.importPath, 'the disk image or appliance', true));
      break;
    case 'cloud':
      if (v.catalogId !== '') {
        if (v.downloadedPath === '') e.cloudImage = 'Download the cloud image first (or wait until its download has been verified).';
      } else put('cloudImage', pathError(v.cloudImage, 'a cloud image (qcow2 or raw), or pick one to download', true));
      if (v.user.trim() !== '' && !USER_RE.test(v.user.trim())) e.user = 'A user name is lower-case letters, digits, "_" or "-", starting with a letter or "_".';
      put('sshKeyFile', pathError(v.sshKeyFile, 'your SSH public key file', false));
      put('passwordFile', pathError(v.passwordFile, 'the password file', false));
      put('userDataFile', pathError(v.userDataFile, 'the user-data file', false));
      put('shareFolder', pathError(v.shareFolder, 'the folder to share', false));
      if (v.hostname.trim().length > 63) e.hostname = 'A host name is at most 63 characters.';
      else if (v.hostname.trim() !== '' && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(v.hostname.trim())) e.hostname = 'A host name is letters, digits and "-", not starting or ending with "-".';
      {
        const p = parsePackages(v.packages);
        if (!p.ok) e.packages = p.message;
      }
      break;
    case 'kernel':
      put('kernel', pathError(v.kernel, 'a kernel image', true));
      put('initrd', pathError(v.initrd, 'the initrd', false));
      break;
  }
  return e;
}

function osErrors(v: WizardValues, defaults: HostDefaults | null): Partial<Record<WizardField, string>> {
  const e: Partial<Record<WizardField, string>> = {};
  const name = CreateVmSpec.shape.name.safeParse(v.name);
  if (!name.success) e.name = issueMessage(name.error.issues[0]!, 'name');
  const cpus = parseCpus(v.cpus);
  if (!cpus.ok) e.cpus = cpus.message;
  else {
    const c = CreateVmSpec.shape.cpus.safeParse(cpus.value);
    if (!c.success) e.cpus = issueMessage(c.error.issues[0]!, 'cpus');
  }
  const mem = parseMemoryMiB(v.memory);
  if (!mem.ok) e.memory = mem.message;
  else {
    const m = CreateVmSpec.shape.memoryMiB.safeParse(mem.value);
    if (!m.success) e.memory = issueMessage(m.error.issues[0]!, 'memory');
  }
  if (cpus.ok && mem.ok && !e.cpus && !e.memory && defaults) {
    const checked = checkLimits({ cpus: cpus.value, memoryMiB: mem.value, arch: defaults.arch }, defaults.limits);
    for (const i of checked.errors) {
      const field: WizardField = i.field === 'cpus' ? 'cpus' : i.field === 'memoryMiB' ? 'memory' : 'form';
      const r = uiRemedy(i.remedy, 'form');
      e[field] ??= `${sentence(i.message)}${r.kind === 'field' ? ` ${r.text}` : ''}`;
    }
  }
  const f = parseForwards(v.forwards);
  if (!f.ok) e.forwards = f.message;
  else if (f.value.length > 0 && !v.network) e.forwards = 'Port forwards need networking. Turn Network on.';
  if (v.secureBoot && v.firmware === 'bios') e.secureBoot = 'Secure Boot needs UEFI firmware. Choose UEFI, or turn Secure Boot off.';
  return e;
}

function storageErrors(v: WizardValues): Partial<Record<WizardField, string>> {
  const modes = diskModes(v.source);
  if (modes.length === 0) return {};
  if (v.diskMode === 'new') {
    const d = parseDiskBytes(v.diskGiB);
    // One sentence for text that is not a size and for 0: the wizard has "No disk" for none.
    const needed = modes.includes('none') ? 'A new disk needs a size in GiB above 0, such as 20; choose "No disk" for none.' : 'A sandbox needs its disk: give a size in GiB above 0, such as 20.';
    if (!d.ok || d.value === 0) return { diskGiB: needed };
    return {};
  }
  if (v.diskMode === 'existing') {
    const m = pathError(v.diskPath, 'the disk image', true);
    return m ? { diskPath: m } : {};
  }
  return {};
}

function sentence(s: string): string {
  const t = s.trim();
  const c = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(c) ? c : `${c}.`;
}

/** The messages for one step's fields (empty when the step is fine). */
export function stepErrors(step: WizardStep, v: WizardValues, defaults: HostDefaults | null): WizardErrors {
  switch (step) {
    case 'source':
      return sourceErrors(v);
    case 'os':
      return osErrors(v, defaults);
    case 'storage':
      return storageErrors(v);
    case 'summary':
      return {};
  }
}

/** The first step (in order) that has one of `errors`' fields, or null. */
export function firstStepWithError(errors: WizardErrors): WizardStep | null {
  for (const s of WIZARD_STEPS) if (Object.keys(errors).some((f) => FIELD_STEP[f as WizardField] === s)) return s;
  return null;
}

// ---- the spec -------------------------------------------------------------------------------------

export type WizardResult = { readonly ok: true; readonly spec: CreateVmSpec } | { readonly ok: false; readonly errors: WizardErrors; readonly step: WizardStep };

/** Every step checked, then the CreateVmSpec the wizard sends to `vms.preview` and `vms.create`. */
export function toWizardSpec(v: WizardValues, defaults: HostDefaults | null): WizardResult {
  const errors: Partial<Record<WizardField, string>> = {};
  for (const s of WIZARD_STEPS) Object.assign(errors, stepErrors(s, v, defaults));
  const first = firstStepWithError(errors);
  if (first) return { ok: false, errors, step: first };

  const cpus = parseCpus(v.cpus);
  const mem = parseMemoryMiB(v.memory);
  const fw = parseForwards(v.forwards);
  const raw: Record<string, unknown> = {
    name: v.name,
    os: v.os.trim() === '' ? PRESETS[v.preset].osLabel : v.os.trim(),
    ...(cpus.ok ? { cpus: cpus.value } : {}),
    ...(mem.ok ? { memoryMiB: mem.value } : {}),
    net: v.network ? 'user' : 'none',
    display: v.display ? 'vnc' : 'none',
  };
  if (v.arch) raw.arch = v.arch;
  if (v.firmware) raw.firmware = v.firmware;
  if (v.tpm) raw.tpm = true;
  if (v.secureBoot) raw.secureBoot = true;
  if (v.bootMenu) raw.bootMenu = true;
  if (fw.ok && fw.value.length > 0) raw.forwards = fw.value;
  const diskBytes = (): number => {
    const d = parseDiskBytes(v.diskGiB);
    return d.ok ? d.value : 0;
  };
  const modes = diskModes(v.source);
  if (modes.length > 0) {
    if (v.diskMode === 'existing' && modes.includes('existing')) raw.diskPath = v.diskPath.trim();
    else if (v.diskMode === 'none' && modes.includes('none')) raw.diskSizeBytes = 0;
    else raw.diskSizeBytes = diskBytes();
    // A sandbox's cloud kernel boots from virtio; others get the preset's (or chosen) bus.
    if (v.source !== 'cloud' && raw.diskSizeBytes !== 0 && v.diskBus !== 'virtio') raw.diskBus = v.diskBus;
  }
  // The preset's network card where it is not virtio (Windows' installers: e1000e), as create --preset.
  if (v.source !== 'cloud' && PRESETS[v.preset].nic !== 'virtio-net-pci') raw.nicModel = PRESETS[v.preset].nic;
  switch (v.source) {
    case 'iso':
      raw.iso = v.iso.trim();
      break;
    case 'catalog':
      raw.iso = v.downloadedPath;
      break;
    case 'import':
      raw.import = { path: v.importPath.trim(), mode: v.importMode };
      break;
    case 'kernel':
      raw.kernel = v.kernel.trim();
      if (v.initrd.trim() !== '') raw.initrd = v.initrd.trim();
      if (v.append.trim() !== '') raw.append = v.append.trim();
      break;
    case 'cloud': {
      const pk = parsePackages(v.packages);
      raw.cloud = {
        image: sourcePath(v),
        ...(v.user.trim() !== '' ? { user: v.user.trim() } : {}),
        ...(v.sshKeyFile.trim() !== '' ? { sshKeyFile: v.sshKeyFile.trim() } : {}),
        ...(v.passwordFile.trim() !== '' ? { passwordFile: v.passwordFile.trim() } : {}),
        ...(v.userDataFile.trim() !== '' ? { userDataFile: v.userDataFile.trim() } : {}),
        ...(v.hostname.trim() !== '' ? { hostname: v.hostname.trim() } : {}),
        ...(pk.ok && pk.value.length > 0 ? { packages: pk.value } : {}),
        ...(v.shareFolder.trim() !== '' ? { shares: [{ hostPath: v.shareFolder.trim(), ...(v.shareReadOnly ? { readOnly: true } : {}) }] } : {}),
        // Alpine's cloud image has no bash.
        ...(v.preset === 'alpine' ? { shell: '/bin/sh' } : {}),
      };
      break;
    }
  }
  const parsed = CreateVmSpec.safeParse(raw);
  if (!parsed.success) {
    const out: Partial<Record<WizardField, string>> = {};
    for (const issue of parsed.error.issues) {
      const field = wizardFieldOf(issue.path.map(String).join('.'), v.source);
      out[field] ??= sentence(issue.message);
    }
    return { ok: false, errors: out, step: firstStepWithError(out) ?? 'summary' };
  }
  return { ok: true, spec: parsed.data };
}

// ---- the engine's refusals ------------------------------------------------------------------------

/** The engine's names for a sandbox's fields when it reads the files (the seed's checks,
 *  main/services/provisioning/provision.ts: "sshPublicKeyFile", "extraUserData", "user.name"…, and
 *  the shares' "shares"), as the wizard's fields. */
const SEED_FIELDS: Readonly<Record<string, WizardField>> = {
  user: 'user',
  sshKeyFile: 'sshKeyFile',
  sshPublicKeyFile: 'sshKeyFile',
  passwordFile: 'passwordFile',
  userDataFile: 'userDataFile',
  extraUserData: 'userDataFile',
  hostname: 'hostname',
  packages: 'packages',
  shares: 'shareFolder',
};

/** The wizard field an engine `field` path concerns ("memoryMiB", "cloud.user", "import", "iso",
 *  and for a sandbox the seed's "passwordFile", "extraUserData"…). */
export function wizardFieldOf(path: string | undefined, source: SourceKind): WizardField {
  const [a, b] = (path ?? '').split('.');
  if (source === 'cloud' && a !== undefined && a !== 'cloud' && SEED_FIELDS[a] !== undefined) return SEED_FIELDS[a];
  switch (a) {
    case 'name':
    case 'os':
    case 'arch':
    case 'cpus':
    case 'firmware':
    case 'tpm':
    case 'secureBoot':
    case 'forwards':
    case 'kernel':
    case 'initrd':
    case 'append':
    case 'diskPath':
      return a;
    case 'memoryMiB':
      return 'memory';
    case 'net':
      return 'network';
    case 'diskSizeBytes':
      return 'diskGiB';
    case 'diskBus':
      return 'diskBus';
    case 'iso':
      return source === 'catalog' ? 'catalog' : 'iso';
    case 'import':
      return 'importPath';
    case 'cloudImage':
      return 'cloudImage';
    case 'cloud':
      if (b !== undefined && SEED_FIELDS[b] !== undefined) return SEED_FIELDS[b];
      return 'cloudImage';
    case 'disks':
      return 'diskPath';
    default:
      return 'form';
  }
}

/** What the wizard needs of a thrown engine error (a VivariumError, or its wire form). */
export interface EngineRefusal {
  readonly message: string;
  readonly field?: string | undefined;
  readonly fields?: readonly { readonly field: string; readonly message: string }[];
  readonly data?: unknown;
}

/** An engine refusal on the wizard's fields, and the first step that shows one. A field carried in
 *  `data.field` (imports, cloud images) counts as the error's field. */
export function refusalErrors(e: EngineRefusal, source: SourceKind): { readonly errors: WizardErrors; readonly step: WizardStep } {
  const out: Partial<Record<WizardField, string>> = {};
  for (const f of e.fields ?? []) out[wizardFieldOf(f.field, source)] ??= sentence(f.message);
  const dataField = typeof e.data === 'object' && e.data !== null && typeof (e.data as { field?: unknown }).field === 'string' ? (e.data as { field: string }).field : undefined;
  const field = e.field ?? dataField;
  if (Object.keys(out).length === 0 || field !== undefined) {
    const w = wizardFieldOf(field, source);
    out[w] ??= e.message;
  }
  return { errors: out, step: firstStepWithError(out) ?? 'summary' };
}

// ---- downloads -------------------------------------------------------------------------------------

/** "1.5 MiB of 4 MiB (37%) · 512 KiB/s · 5 s left" — a download's progress in words. */
/**
 * A failed download as the wizard shows it: a first line in plain words, and the engine's full
 * sentence (file, checksum source, expected and received digests) for a Details toggle. A
 * checksum mismatch (main/services/media/media-service.ts: "… did not match its SHA-256 checksum
 * from … (expected …, got …), so it was deleted. …") gets its own headline; other failures are
 * short already and are shown as they are (details null).
 */
export function downloadFailure(error: string): { readonly headline: string; readonly details: string | null } {
  if (/did not match its [\w-]+ checksum/.test(error)) return { headline: 'The download was damaged and has been deleted. Download it again; if it happens again, the mirror may be broken.', details: error };
  return { headline: error, details: null };
}

export function formatDownload(d: Pick<DownloadInfo, 'state' | 'receivedBytes' | 'totalBytes' | 'bytesPerSecond' | 'secondsLeft' | 'error'>): string {
  const got = formatBytes(d.receivedBytes);
  const of = d.totalBytes !== null && d.totalBytes > 0 ? ` of ${formatBytes(d.totalBytes)} (${Math.floor((100 * d.receivedBytes) / d.totalBytes)}%)` : '';
  switch (d.state) {
    case 'downloading': {
      const rate = d.bytesPerSecond > 0 ? ` · ${formatBytes(d.bytesPerSecond)}/s` : '';
      const left = d.secondsLeft !== null ? ` · ${formatDuration(d.secondsLeft)} left` : '';
      return `Downloading: ${got}${of}${rate}${left}`;
    }
    case 'verifying':
      return `Verifying the checksum of ${d.totalBytes !== null ? formatBytes(d.totalBytes) : got}…`;
    case 'done':
      return `Downloaded and verified (${formatBytes(d.totalBytes ?? d.receivedBytes)}).`;
    case 'paused':
      return `Paused at ${got}${of}.${d.error ? ` ${d.error}` : ''}`;
    case 'failed':
      return d.error ?? 'The download failed.';
  }
}

/** 5 → "5 s", 130 → "2 min 10 s", 7300 → "2 h 2 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
}

// ---- the command line ------------------------------------------------------------------------------

/** An argv as one line a person can paste into a POSIX shell (single quotes where needed). */
export function shellLine(argv: readonly string[]): string {
  return argv.map(shellArg).join(' ');
}
