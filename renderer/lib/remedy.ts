/**
 * How the UI words an error's remedy (main/common/errors.ts): as a message on the form field it
 * concerns, or as a button that does it (Shut Down, Force Off, Settings…), or as plain text. Never a
 * CLI command or flag: the CLI words the same remedies its own way (main/cli/remedy.ts).
 */
import { assertNever, isVivariumError, type Remedy, type SettingField } from '../../main/common/errors';
import { formatMemoryMiB } from './format';

/** The form fields of the New VM and Settings dialogs that can carry a message; `form` is for
 *  messages no field owns. */
export type VmFormField =
  | 'name'
  | 'os'
  | 'iso'
  | 'kernel'
  | 'initrd'
  | 'append'
  | 'cpus'
  | 'memory'
  | 'diskGiB'
  | 'firmware'
  | 'network'
  | 'display'
  | 'forwards'
  | 'form';

/** Where each setting shows in the forms. Settings without a control show on the form. */
export const SETTING_TO_FORM_FIELD: Readonly<Record<SettingField, VmFormField>> = {
  name: 'name',
  arch: 'form',
  cpus: 'cpus',
  memoryMiB: 'memory',
  accel: 'form',
  firmware: 'firmware',
  diskSizeBytes: 'diskGiB',
  diskPath: 'form',
  iso: 'iso',
  kernel: 'kernel',
  initrd: 'initrd',
  append: 'append',
  net: 'network',
  forwards: 'forwards',
  display: 'display',
  os: 'os',
};

/** A field path from the engine ("memoryMiB", "forwards.0.hostPort") → the form field showing it. */
export function formFieldOf(path: string | undefined): VmFormField {
  const key = (path ?? '').split('.')[0] ?? '';
  return Object.hasOwn(SETTING_TO_FORM_FIELD, key) ? SETTING_TO_FORM_FIELD[key as SettingField] : 'form';
}

/** Buttons a remedy can offer; the view that shows it decides how each is done. */
export type RemedyAction = 'shutdown' | 'forceOff' | 'discard' | 'start' | 'settings' | 'retry' | 'host' | 'library';

export type UiRemedy =
  /** A message for one form field (the dialog shows it under that field). */
  | { readonly kind: 'field'; readonly field: VmFormField; readonly text: string }
  /** A sentence and a button that does what it says. */
  | { readonly kind: 'action'; readonly action: RemedyAction; readonly label: string; readonly text: string }
  | { readonly kind: 'text'; readonly text: string };

/** Where a remedy is shown: inside the New VM / Settings form, or elsewhere (the VM window, the
 *  library), where a field change becomes a Settings button. */
export type RemedyPlace = 'form' | 'window';

const SETTING_WORDS: Readonly<Record<SettingField, string>> = {
  name: 'the name',
  arch: 'the architecture',
  cpus: 'the number of CPUs',
  memoryMiB: 'the memory',
  accel: 'the accelerator',
  firmware: 'the firmware',
  diskSizeBytes: 'the disk size',
  diskPath: 'the disk image',
  iso: 'the ISO image',
  kernel: 'the kernel',
  initrd: 'the initrd',
  append: 'the kernel command line',
  net: 'the network setting',
  forwards: 'the port forwards',
  display: 'the display setting',
  os: 'the operating system label',
};

/** A setting change in words: "Turn Network on.", "Remove the ISO image.", "Choose UEFI firmware." */
function settingText(field: SettingField, to: string | null | undefined): string {
  if (to === null) return `Remove ${SETTING_WORDS[field]}.`;
  if (to === undefined) return `Change ${SETTING_WORDS[field]}.`;
  switch (field) {
    case 'net':
      return to === 'none' ? 'Turn Network off.' : 'Turn Network on.';
    case 'display':
      return to === 'none' ? 'Turn the graphical display off.' : 'Turn the graphical display on.';
    case 'firmware':
      return `Choose ${to === 'uefi' ? 'UEFI' : 'BIOS'} firmware.`;
    case 'accel':
      return to === 'auto' ? 'Let Vivarium choose the accelerator.' : `Use the ${to.toUpperCase()} accelerator.`;
    case 'memoryMiB':
      return /^\d+$/.test(to) ? `Set the memory to ${formatMemoryMiB(Number(to))}.` : `Change ${SETTING_WORDS[field]}.`;
    default:
      return `Change ${SETTING_WORDS[field]}.`;
  }
}

function packagesText(r: Extract<Remedy, { kind: 'install' }>): string {
  const ways: string[] = [];
  if (r.packages.debian?.length) ways.push(`Debian/Ubuntu package ${r.packages.debian.join(', ')}`);
  if (r.packages.fedora?.length) ways.push(`Fedora package ${r.packages.fedora.join(', ')}`);
  if (r.packages.macos?.length) ways.push(`Homebrew ${r.packages.macos.join(', ')}`);
  return ways.length ? ` (${ways.join('; ')})` : '';
}

/** A remedy as the UI offers it. */
export function uiRemedy(r: Remedy, place: RemedyPlace = 'window'): UiRemedy {
  const onField = (setting: SettingField, text: string): UiRemedy =>
    place === 'form' ? { kind: 'field', field: SETTING_TO_FORM_FIELD[setting], text } : { kind: 'action', action: 'settings', label: 'Settings…', text };
  switch (r.kind) {
    case 'stop-vm':
      return { kind: 'action', action: 'shutdown', label: 'Shut Down', text: 'Shut the VM down first.' };
    case 'force-stop':
      return { kind: 'action', action: 'forceOff', label: 'Force Off', text: 'Force it off without asking the guest.' };
    case 'start-vm':
      return { kind: 'action', action: 'start', label: 'Start', text: 'Start the VM first.' };
    case 'lower':
      return r.field === 'cpus'
        ? onField('cpus', `Use ${r.max} CPU${r.max === 1 ? '' : 's'} or fewer.`)
        : onField('memoryMiB', `Use ${formatMemoryMiB(r.max)} or less.`);
    case 'install':
      return { kind: 'action', action: 'host', label: 'Host Details', text: `Install ${r.what}${packagesText(r)}.` };
    case 'rename':
      return onField('name', 'Choose another name.');
    case 'change-setting':
      return onField(r.field, settingText(r.field, r.to));
    case 'use-id':
      return { kind: 'action', action: 'library', label: 'Library', text: 'Several VMs have this name: open the one you mean from the library.' };
    case 'list-vms':
      return { kind: 'action', action: 'library', label: 'Library', text: 'It may have been deleted: see the library.' };
    case 'retry-later':
      return {
        kind: 'action',
        action: 'retry',
        label: 'Try Again',
        text: r.afterSec !== undefined ? `Try again in ${Math.ceil(r.afterSec)} s.` : 'Try again in a moment.',
      };
    case 'start-engine':
      return { kind: 'text', text: 'This needs a running Vivarium engine: reopen Vivarium and try again.' };
    case 'see-log':
      return { kind: 'text', text: `The log at ${r.file} says why.` };
    case 'check-host':
      return { kind: 'action', action: 'host', label: 'Host Details', text: 'See what this host can run.' };
    default:
      return assertNever(r, 'remedy');
  }
}

/**
 * Drops what only the CLI can use from a message: a sentence that names a `vivarium` command or a
 * `--flag` (engines older than remedies wrote those into their messages). Returns the message
 * unchanged if nothing else would be left.
 */
export function withoutCliText(message: string): string {
  // "vivarium" as a command, not as a file's extension ("porter.vivarium already exists").
  const cli = /`vivarium\b|(?<![\w./-])vivarium [a-z]+ |(^|[\s(])--[a-z]/;
  // A parenthesis that holds a command or a flag goes first: "(vivarium stop web)", "(it was
  // created with --display none)"; the sentence around it stays.
  const cleaned = message.replace(/\s*\([^()]*(?:`?vivarium [a-z]|(?:^|[\s(])--[a-z])[^()]*\)/g, '');
  // A sentence ends at . ! ? before a space or the end; a dot inside a file name does not end one.
  const sentences = cleaned.match(/(?:[^.!?]|[.!?](?!\s|$))+(?:[.!?]+|$)/g) ?? [cleaned];
  const kept = sentences.filter((s) => !cli.test(s)).join('').trim();
  return kept === '' ? message : kept;
}

/**
 * Drops the lead the engine's request check puts before its sentence for every client
 * (main/common/rpc/server.ts parseArgs: "Invalid request: Size bytes: a disk must be at least
 * 1 MiB."): the UI shows the sentence itself, "A disk must be at least 1 MiB." The field words
 * ("Size bytes:") go only when what follows is a sentence of its own (starts "a", "an", "the");
 * "Invalid VM settings: Memory must be…" keeps "Memory must be…".
 */
export function withoutRequestPrefix(message: string): string {
  const m = /^Invalid (request|VM settings): (.+)$/s.exec(message);
  if (!m) return message;
  let rest = m[2]!;
  const field = /^[A-Z][A-Za-z]*(?: [a-z]+)*: ((?:a|an|the) .+)$/s.exec(rest);
  if (m[1] === 'request' && field && !rest.includes(';')) rest = field[1]!;
  return rest.charAt(0).toUpperCase() + rest.slice(1);
}

export interface UiError {
  /** The sentence to show (no CLI commands). */
  readonly message: string;
  readonly remedy: UiRemedy | null;
  /** Messages per form field, when the engine refused settings field by field. */
  readonly fields: Readonly<Partial<Record<VmFormField, string>>>;
}

/** Anything thrown, as the UI shows it. Never a stack trace. */
export function uiError(e: unknown, place: RemedyPlace = 'window'): UiError {
  if (!isVivariumError(e)) {
    const raw = e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string' ? (e as { message: string }).message : typeof e === 'string' ? e : '';
    const first = raw.split('\n')[0]?.trim();
    return { message: first ? withoutRequestPrefix(withoutCliText(first)) : 'Something went wrong. Try again; if it keeps happening, check the engine log.', remedy: null, fields: {} };
  }
  const fields: Partial<Record<VmFormField, string>> = {};
  if (place === 'form') {
    for (const f of e.fields) {
      const field = formFieldOf(f.field);
      const extra = f.remedy ? uiRemedy(f.remedy, 'form') : null;
      fields[field] ??= joinSentences(f.message, extra && extra.kind === 'field' && extra.field === field ? extra.text : '');
    }
    if (e.fields.length === 0 && e.field !== undefined && formFieldOf(e.field) !== 'form') fields[formFieldOf(e.field)] = withoutCliText(e.message);
  }
  return { message: withoutRequestPrefix(withoutCliText(e.message)), remedy: e.remedy ? uiRemedy(e.remedy, place) : null, fields };
}

/** The button that discards a suspended VM's saved state (a suspended VM has no Force Off). */
export const DISCARD_LABEL = 'Discard Saved State…';

/**
 * An error about a VM as the UI shows it for the VM's state. A suspended VM's Force Off button is
 * "Discard Saved State…" (QEMU does not run; what a force-stop does to it is drop its saved state):
 * the engine's front-end-neutral words for that remedy ("force it off to discard its saved state",
 * "discard its saved state with Force Off") name that button instead, and the remedy is a button
 * doing it; a start-vm remedy is its Resume button. Anything else is returned unchanged.
 */
export function forVmState(err: UiError, state: string | undefined): UiError {
  if (state !== 'suspended') return err;
  const message = err.message
    .replace(/\bforce it off to discard (its|the) saved state\b/g, `discard $1 saved state (${DISCARD_LABEL})`)
    .replace(/\bdiscard (its|the) saved state with Force Off\b/g, `discard $1 saved state (${DISCARD_LABEL})`);
  const action = err.remedy?.kind === 'action' ? err.remedy.action : null;
  // Its Start button reads Resume (the start resumes it where it was).
  const remedy: UiRemedy | null =
    action === 'forceOff'
      ? { kind: 'action', action: 'discard', label: DISCARD_LABEL, text: '' }
      : action === 'start'
        ? { kind: 'action', action: 'start', label: 'Resume', text: 'Resume it first.' }
        : err.remedy;
  return { ...err, message, remedy };
}

function joinSentences(a: string, b: string): string {
  const first = a.trim().replace(/([^.!?])$/, '$1.');
  return b ? `${first} ${b}` : first;
}
