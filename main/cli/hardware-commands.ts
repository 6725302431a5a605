/**
 * The disk and CD commands (issue 9): `disk list|add|resize|remove`, `cd insert|eject`. JSON shapes
 * are stable and documented in the README ("Disks and CD drives"): each command prints the VM's
 * drive list afterwards, `[{id, kind, path, format, virtualSizeBytes, bus, readOnly, role}]`.
 */
import * as path from 'node:path';
import type { DriveInfo, Services } from '../common/contract';
import { MAX_DISK_BYTES } from '../common/contract/disks';
import { parseSize } from '../common/models/vm-config';
import type { CommandSpec, Parsed } from './args';
import { UsageError } from './args';
import { assertNever, isVivariumError, VivariumError } from '../common/errors';
import { shellArg } from '../common/shell-arg';

interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

const VM = 'NAME';
/** The actions of `disk` and `cd`: what the parser accepts (CommandSpec.actions) and what
 *  runHardware's switches handle, one list each (actions.test.ts runs each). */
const DISK_ACTIONS = ['list', 'add', 'resize', 'remove'] as const;
const CD_ACTIONS = ['insert', 'eject'] as const;
type DiskAction = (typeof DISK_ACTIONS)[number];
type CdAction = (typeof CD_ACTIONS)[number];
const JSON_HELP = 'print the drive list as JSON: [{id, kind: "disk"|"cdrom", path|null, format, virtualSizeBytes, bus, readOnly, role}]';

export const HARDWARE_COMMANDS: Readonly<Record<string, CommandSpec>> = {
  disk: {
    usage: 'disk list|add|resize|remove NAME [DRIVE_ID] [--size SIZE | --file PATH] [--bus virtio|sata|nvme] [--cdrom] [--delete-file] [--force] [--json]',
    summary:
      'List a VM\'s disks and CD drives; add a disk (a new one of --size, or an existing image --file, on --bus; VM stopped) or a CD drive (--cdrom, empty or with the ISO --file); grow a disk to --size (works while it runs); remove a disk or CD drive (VM stopped; a disk\'s file is kept unless --delete-file).',
    positionals: ['ACTION', VM, 'DRIVE_ID'],
    actions: DISK_ACTIONS,
    optionalPositionals: 1,
    flags: {
      size: { type: 'string', value: 'SIZE', help: 'add: size of a new disk (e.g. 10G); resize: the new, larger size (e.g. 40G)' },
      file: { type: 'string', value: 'PATH', help: 'add: an existing qcow2 or raw image, used in place (checked: no backing file, not an ISO); with --cdrom: the ISO to put in the new drive' },
      bus: { type: 'string', value: 'virtio|sata|nvme', help: 'add: the disk\'s bus (default virtio; sata or nvme for guests without virtio drivers, such as Windows installers)' },
      cdrom: { type: 'boolean', help: 'add: a CD drive instead of a disk (empty, or holding the ISO --file)' },
      'delete-file': { type: 'boolean', help: 'remove: also delete the disk\'s file (only a file inside the VM\'s folder that no other VM uses)' },
      force: { type: 'boolean', help: 'remove: remove the system disk too (the disk the VM boots from)' },
      json: { type: 'boolean', help: JSON_HELP },
    },
  },
  cd: {
    usage: 'cd insert NAME PATH [--drive ID] | cd eject NAME [--drive ID] [--json]',
    summary: 'Put an ISO in a VM\'s CD drive or empty it: live while it runs (the guest sees the change) and saved for the next start.',
    positionals: ['ACTION', VM, 'PATH'],
    actions: CD_ACTIONS,
    optionalPositionals: 1,
    flags: {
      drive: { type: 'string', value: 'ID', help: 'the CD drive, as disk list shows it (insert: default the first, cd0; eject: default the first holding a CD)' },
      json: { type: 'boolean', help: JSON_HELP },
    },
  },
};

function sizeFlag(p: Parsed, command: string): number | undefined {
  const v = p.flags.size;
  if (typeof v !== 'string') return undefined;
  const n = parseSize(v);
  if (n === null || n < 1024 * 1024 || n > MAX_DISK_BYTES) throw new UsageError(`--size must be a size from 1M to 64T such as 10G or 512M, not "${v}"`, command);
  return n;
}

/** Usage checks that need no engine (exit 2). */
export function prepareHardware(command: string, p: Parsed): void {
  const [action, vm, arg] = p.positionals;
  const has = (f: string) => p.flags[f] !== undefined;
  if (command === 'disk') {
    // The command that lists the ids, for this VM (not a literal NAME).
    const listCmd = vm === undefined ? 'disk list NAME' : vm.startsWith('-') ? `\`vivarium disk list -- ${shellArg(vm)}\`` : `\`vivarium disk list ${shellArg(vm)}\``;
    if (!(DISK_ACTIONS as readonly string[]).includes(action ?? '')) throw new UsageError(`unknown action "${action}"; use one of ${DISK_ACTIONS.join(', ')}`, command);
    if ((action === 'list' || action === 'add') && arg !== undefined) throw new UsageError(`disk ${action} takes only NAME`, command);
    if ((action === 'resize' || action === 'remove') && arg === undefined) throw new UsageError(`disk ${action} needs the ${action === 'resize' ? 'DISK_ID' : 'DRIVE_ID (a disk or a CD drive)'} (see ${listCmd})`, command);
    const size = sizeFlag(p, command);
    if (has('cdrom') && action !== 'add') throw new UsageError('--cdrom goes with disk add', command);
    if (has('cdrom') && (has('size') || has('bus'))) throw new UsageError('disk add --cdrom takes only --file ISO (or nothing, for an empty drive): a CD drive has no size and its bus is fixed', command);
    if (action === 'add' && !has('cdrom') && (size === undefined) === !has('file')) throw new UsageError('disk add needs either --size SIZE (a new disk) or --file PATH (an existing image), not both', command);
    if (action === 'resize' && size === undefined) throw new UsageError('disk resize needs --size, the new size (e.g. 40G)', command);
    if (action !== 'add' && (has('file') || has('bus'))) throw new UsageError('--file and --bus go with disk add', command);
    if (action !== 'add' && action !== 'resize' && has('size')) throw new UsageError('--size goes with disk add or disk resize', command);
    if (has('bus') && !['virtio', 'sata', 'nvme'].includes(String(p.flags.bus))) throw new UsageError(`--bus must be virtio, sata or nvme, not "${String(p.flags.bus)}"`, command);
    if (action !== 'remove' && has('delete-file')) throw new UsageError('--delete-file goes with disk remove', command);
    if (action !== 'remove' && has('force')) throw new UsageError('--force goes with disk remove', command);
  } else {
    if (!(CD_ACTIONS as readonly string[]).includes(action ?? '')) throw new UsageError(`unknown action "${action}"; use one of ${CD_ACTIONS.join(', ')}`, command);
    if (action === 'insert' && arg === undefined) throw new UsageError('cd insert needs the PATH of an ISO', command);
    if (action === 'eject' && arg !== undefined) throw new UsageError('cd eject takes only NAME (and --drive ID)', command);
  }
}

/** The engine's "an NVMe disk grows only while shut down" in this front end's words: the two
 *  commands to run (the others pass through). */
function nvmeResizeAdvice(e: unknown, sizeFlagText: string): unknown {
  const data = isVivariumError(e) ? (e.data as { nvmeRunning?: boolean; vm?: string; disk?: string } | undefined) : undefined;
  if (!isVivariumError(e) || data?.nvmeRunning !== true || !data.vm || !data.disk) return e;
  const vm = shellArg(data.vm);
  const first = e.message.replace(/ Shut the VM down, then grow the disk[^.]*\.$/, '');
  return new VivariumError(e.code, `${first} Shut it down and run \`vivarium stop ${vm}\`, then \`vivarium disk resize ${vm} ${data.disk} --size ${shellArg(sizeFlagText)}\`.`, e.data);
}

/** The engine's "that is the system disk" with the flag that removes it anyway. */
function systemDiskAdvice(e: unknown, deleteFile: boolean): unknown {
  const data = isVivariumError(e) ? (e.data as { systemDisk?: boolean; vm?: string; disk?: string } | undefined) : undefined;
  if (!isVivariumError(e) || data?.systemDisk !== true || !data.vm || !data.disk) return e;
  const first = e.message.replace(/ To remove it anyway, confirm removing the system disk[^.]*\.$/, '');
  return new VivariumError(e.code, `${first} To remove it anyway: \`vivarium disk remove ${shellArg(data.vm)} ${data.disk}${deleteFile ? ' --delete-file' : ''} --force\`${deleteFile ? '' : ' (its file is kept)'}.`, e.data);
}

function sizeText(n: number | null): string {
  if (n === null) return '?';
  const g = n / 1024 ** 3;
  return g >= 1 ? `${+g.toFixed(2)} GiB` : `${+(n / 1024 ** 2).toFixed(1)} MiB`;
}

export async function runHardware(command: string, p: Parsed, s: Services, io: Io): Promise<number> {
  const out = (text: string) => io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  const [, ref, arg] = p.positionals as [string, string, string | undefined];
  const drive = typeof p.flags.drive === 'string' ? p.flags.drive : undefined;
  let list: readonly DriveInfo[];
  if (command === 'disk') {
    const size = sizeFlag(p, command);
    const action = p.positionals[0] as DiskAction;
    switch (action) {
      case 'add':
        list = await s.disks.add(ref, {
          ...(size !== undefined ? { sizeBytes: size } : {}),
          ...(typeof p.flags.file === 'string' ? { file: path.resolve(p.flags.file) } : {}),
          ...(typeof p.flags.bus === 'string' ? { bus: p.flags.bus as 'virtio' | 'sata' | 'nvme' } : {}),
          ...(p.flags.cdrom === true ? { cdrom: true } : {}),
        });
        break;
      case 'resize':
        list = await s.disks.resize(ref, arg!, size!).catch((e: unknown) => Promise.reject(nvmeResizeAdvice(e, String(p.flags.size))));
        break;
      case 'remove': {
        const deleteFile = p.flags['delete-file'] === true;
        list = await s.disks.remove(ref, arg!, { deleteFile, ...(p.flags.force === true ? { force: true } : {}) }).catch((e: unknown) => Promise.reject(systemDiskAdvice(e, deleteFile)));
        break;
      }
      case 'list':
        list = await s.disks.list(ref);
        break;
      default:
        return assertNever(action, 'disk action');
    }
  } else {
    const action = p.positionals[0] as CdAction;
    switch (action) {
      case 'insert':
        // An absent drive is left out, not sent as undefined (JSON would turn it into null).
        list = drive === undefined ? await s.disks.insertCd(ref, path.resolve(arg!)) : await s.disks.insertCd(ref, path.resolve(arg!), drive);
        break;
      case 'eject':
        list = drive === undefined ? await s.disks.ejectCd(ref) : await s.disks.ejectCd(ref, drive);
        break;
      default:
        return assertNever(action, 'cd action');
    }
  }
  if (p.flags.json === true) {
    out(JSON.stringify(list, null, 2));
    return 0;
  }
  if (list.length > 0) out(formatDriveTable(list));
  return 0;
}

/** `disk list`'s plain output: one row per drive in aligned columns (id, kind, bus, size, format,
 *  file, notes); an empty CD drive shows "-" for size and format and "(empty)" for its file. */
export function formatDriveTable(list: readonly DriveInfo[]): string {
  const rows = list.map((d) => {
    const empty = d.kind === 'cdrom' && d.path === null;
    const notes = [d.role === 'system' ? '(system)' : '', d.kind === 'disk' && d.readOnly ? '(read-only)' : ''].filter(Boolean).join('  ');
    return [d.id, d.kind, d.bus, empty ? '-' : sizeText(d.virtualSizeBytes), empty ? '-' : (d.format ?? '?'), d.path ?? '(empty)', notes];
  });
  const widths = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((cell, i) => (i === 3 ? cell.padStart(widths[i]!) : i < 5 ? cell.padEnd(widths[i]!) : cell)).join('  ').trimEnd())
    .join('\n');
}
