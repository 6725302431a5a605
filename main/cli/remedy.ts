/**
 * How the CLI words an error's remedy: as a command that exists (main/cli/commands.ts), with the
 * flags of the command the person just ran. The engine's message says what went wrong in words any
 * front end can show; this adds what to type next.
 *
 * remedy.test.ts parses every command this module can print with the real command table, so a
 * suggestion can never name a command or flag that does not exist.
 */
import { assertNever, isVivariumError, type Remedy, type SettingField, type VivariumError } from '../common/errors';
import { formatMiB } from '../common/models/vm-config';
import { shellArg } from '../common/shell-arg';

/** Where the remedy is shown: the command being run (`create` words a setting as its flag alone,
 *  anything else as `vivarium edit NAME --flag`). */
export interface RemedyContext {
  readonly command?: string;
}

/** The flag for a setting, per command ("memoryMiB" → "--memory"); null = the NAME positional. */
const FLAGS: Readonly<Record<SettingField, { readonly flag: string | null; readonly clear?: string; readonly placeholder: string; readonly editable: boolean }>> = {
  name: { flag: '--name', placeholder: 'NEWNAME', editable: true },
  arch: { flag: '--arch', placeholder: 'ARCH', editable: false },
  cpus: { flag: '--cpus', placeholder: 'N', editable: true },
  memoryMiB: { flag: '--memory', placeholder: 'SIZE', editable: true },
  accel: { flag: '--accel', placeholder: 'ACCEL', editable: true },
  firmware: { flag: '--firmware', placeholder: 'FIRMWARE', editable: true },
  diskSizeBytes: { flag: '--disk-size', placeholder: 'SIZE', editable: false },
  diskPath: { flag: '--disk', placeholder: 'PATH', editable: false },
  iso: { flag: '--iso', clear: '--no-iso', placeholder: 'PATH', editable: true },
  kernel: { flag: '--kernel', clear: '--no-kernel', placeholder: 'PATH', editable: true },
  initrd: { flag: '--initrd', placeholder: 'PATH', editable: true },
  append: { flag: '--append', placeholder: 'STR', editable: true },
  net: { flag: '--net', placeholder: 'MODE', editable: true },
  forwards: { flag: '--forward', clear: '--no-forwards', placeholder: 'tcp:HOSTPORT:GUESTPORT', editable: true },
  display: { flag: '--display', placeholder: 'KIND', editable: true },
  os: { flag: '--os', placeholder: 'LABEL', editable: true },
};

/**
 * How each command that names a new VM takes that name, so a remedy names what THAT command takes:
 * an operand (create NAME, clone NAME NEWNAME) or the --name flag (edit, import). Commands not
 * listed word a name as `vivarium edit NAME --name NEWNAME`.
 */
const NEW_NAME: Readonly<Record<string, { readonly operand: string } | { readonly flag: string }>> = {
  create: { operand: 'NAME' },
  clone: { operand: 'NEWNAME' },
  import: { flag: '--name NEWNAME' },
  edit: { flag: '--name NEWNAME' },
};

/** "2G" for whole GiB, else "1536M": what --memory reads back. */
export function memoryFlagValue(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}G` : `${mib}M`;
}

function cmd(...words: string[]): string {
  return `\`vivarium ${words.join(' ')}\``;
}

/** `vivarium COMMAND NAME ARGS…`, or `vivarium COMMAND ARGS… -- NAME` for a name that starts with
 *  "-" (which would otherwise read as an option). */
function vmCmd(command: string, vm: string, ...args: string[]): string {
  return vm.startsWith('-') ? cmd(command, ...args, '--', shellArg(vm)) : cmd(command, shellArg(vm), ...args);
}

/** A setting as it reads on this command line: `--cpus 4`, `--no-iso`, or (while creating) a flag to drop. */
function settingArgs(field: SettingField, to: string | null | undefined): { readonly args: string; readonly dropOnCreate: boolean } {
  const f = FLAGS[field];
  if (to === null) return f.clear ? { args: f.clear, dropOnCreate: true } : { args: `${f.flag} ${f.placeholder}`, dropOnCreate: true };
  const value = to === undefined ? f.placeholder : field === 'memoryMiB' && /^\d+$/.test(to) ? memoryFlagValue(Number(to)) : shellArg(to);
  return { args: `${f.flag} ${value}`, dropOnCreate: false };
}

/** A change to one setting: `vivarium edit NAME --flag V` for an existing VM, the flag alone while
 *  creating. Settings that edit cannot change (arch, disks) say to create the VM again. */
function changeSetting(field: SettingField, to: string | null | undefined, vm: string | undefined, ctx: RemedyContext): string {
  const f = FLAGS[field];
  const { args, dropOnCreate } = settingArgs(field, to);
  const takes = field === 'name' && ctx.command !== undefined && Object.hasOwn(NEW_NAME, ctx.command) ? NEW_NAME[ctx.command] : undefined;
  if (takes && 'operand' in takes) return `Choose another ${takes.operand}.`;
  if (takes && vm === undefined) return `Use ${takes.flag}.`;
  const creating = ctx.command === 'create' || (vm === undefined && ctx.command === undefined);
  if (creating) {
    if (field === 'name') return 'Choose another NAME.';
    if (dropOnCreate) return `Leave out ${f.flag}.`;
    return `Use ${args}.`;
  }
  if (!f.editable) return `An existing VM cannot change this: create a new one, e.g. ${cmd('create', 'NEWNAME', args)}.`;
  if (vm === undefined) return `Use ${args}.`;
  return `Change it: ${vmCmd('edit', vm, args)}.`;
}

function packagesText(r: Extract<Remedy, { kind: 'install' }>): string {
  const ways: string[] = [];
  if (r.packages.debian?.length) ways.push(`Debian/Ubuntu: sudo apt install ${r.packages.debian.join(' ')}`);
  if (r.packages.fedora?.length) ways.push(`Fedora: sudo dnf install ${r.packages.fedora.join(' ')}`);
  if (r.packages.macos?.length) ways.push(`macOS: brew install ${r.packages.macos.join(' ')}`);
  return ways.length ? ` (${ways.join('; ')})` : '';
}

/** A remedy as the CLI says it: one sentence, any command in backticks. */
export function cliRemedy(r: Remedy, ctx: RemedyContext = {}): string {
  switch (r.kind) {
    case 'stop-vm':
      return `Shut it down first: ${vmCmd('stop', r.vm)}.`;
    case 'force-stop':
      return `Power it off without asking the guest: ${vmCmd('stop', r.vm, '--force')}.`;
    case 'start-vm':
      return `Start it first: ${vmCmd('start', r.vm)}.`;
    case 'lower': {
      const value = r.field === 'cpus' ? String(r.max) : memoryFlagValue(r.max);
      const flag = FLAGS[r.field].flag!;
      const orLess = r.field === 'cpus' ? 'or fewer' : 'or less';
      if (r.vm === undefined || ctx.command === 'create') return `Use ${flag} ${value} ${orLess}.`;
      return `Lower it: ${vmCmd('edit', r.vm, flag, value)} (${r.field === 'memoryMiB' ? formatMiB(r.max) : `${r.max} CPUs`} ${orLess}).`;
    }
    case 'install':
      return `Install ${r.what}${packagesText(r)}, then check with ${cmd('doctor')}.`;
    case 'rename':
      return changeSetting('name', undefined, r.vm, ctx);
    case 'change-setting':
      return changeSetting(r.field, r.to, r.vm, ctx);
    case 'use-id':
      return `Use its id instead (see ${cmd('list')}).`;
    case 'list-vms':
      return `Run ${cmd('list')} to see your VMs.`;
    case 'retry-later':
      return r.afterSec !== undefined ? `Try again in ${Math.ceil(r.afterSec)} s.` : 'Try again in a moment.';
    case 'start-engine':
      return `Start one with ${cmd('serve')} (or open the app) and try again.`;
    case 'see-log':
      return `See ${r.file} for why.`;
    case 'check-host':
      return `Run ${cmd('doctor')} to see what this host can run.`;
    default:
      return assertNever(r, 'remedy');
  }
}

/**
 * An expected error as the CLI prints it (after "vivarium: "): the engine's sentence, then the
 * remedy in CLI words. A message that already names a command (from an engine older than
 * remedies) is printed as it is.
 */
export function formatCliError(e: VivariumError, ctx: RemedyContext = {}): string {
  let message = e.message.trim();
  // The engine's "Invalid VM settings: Name …" is, for a command that names a new VM, about the
  // name just typed: say so in those words.
  if (ctx.command !== undefined && Object.hasOwn(NEW_NAME, ctx.command)) {
    message = message.replace(/^Invalid VM settings: Name (?=\S)/, ctx.command === 'edit' ? 'The new name ' : "The new VM's name ");
  }
  if (!e.remedy || /`vivarium /.test(message)) return message;
  return `${message} ${cliRemedy(e.remedy, ctx)}`;
}

/** formatCliError for anything thrown that is a VivariumError; null otherwise. */
export function cliErrorText(e: unknown, ctx: RemedyContext = {}): string | null {
  return isVivariumError(e) ? formatCliError(e, ctx) : null;
}
