/**
 * `vivarium snapshot …` and `vivarium clone` (issue 10): the `snapshots` service. JSON shapes are
 * stable and documented in the README.
 */
import * as path from 'node:path';
import type { Services } from '../common/contract';
import { SnapshotName, type SnapshotInfo } from '../common/contract/snapshots';
import { assertNever, errors } from '../common/errors';
import { formatBytes } from '../common/format';
import { shellArg } from '../common/shell-arg';
import type { CommandSpec, Parsed } from './args';
import { UsageError } from './args';
import { localTime } from './time-text';

interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** What the parser accepts (CommandSpec.actions) and what runSnapshot's switch handles, one list
 *  (actions.test.ts runs each). */
const ACTIONS = ['create', 'list', 'revert', 'delete', 'rename'] as const;
type Action = (typeof ACTIONS)[number];

export const SNAPSHOT_COMMANDS: Readonly<Record<string, CommandSpec>> = {
  snapshot: {
    usage:
      'snapshot create NAME [SNAPSHOT] [--description TEXT] [--json]   (SNAPSHOT left out: "Snapshot N", the next free number)\n' +
      '       vivarium snapshot list NAME [--json]\n' +
      '       vivarium snapshot revert NAME SNAPSHOT                         (SNAPSHOT: its name or id)\n' +
      '       vivarium snapshot delete NAME SNAPSHOT\n' +
      '       vivarium snapshot rename NAME SNAPSHOT NEWNAME',
    summary: 'Snapshots of a VM: with its memory while it runs (a revert resumes it mid-run), of its disks while it is shut down.',
    positionals: ['ACTION', 'NAME', 'SNAPSHOT', 'NEWNAME'],
    actions: ACTIONS,
    optionalPositionals: 3,
    flags: {
      description: { type: 'string', value: 'TEXT', help: 'create: a description of the snapshot' },
      json: { type: 'boolean', help: 'create, list: print JSON ({id, name, description, createdAt, parentId, current, withMemory, sizeBytes})' },
    },
  },
  suspend: {
    usage: 'suspend NAME',
    summary: 'Save a running VM\'s whole state to disk and end it; `start` resumes it where it was (list shows "suspended").',
    positionals: ['NAME'],
    flags: {},
  },
  export: {
    usage: 'export NAME FILE',
    summary: 'Write a shut-down VM (config, disks, UEFI variables, snapshots) to one file with a checksum.',
    positionals: ['NAME', 'FILE'],
    flags: {},
  },
  import: {
    usage: 'import FILE [--name NEWNAME] [--json]',
    summary: 'Create a VM from a file written by `vivarium export` (checked whole before anything is written).',
    positionals: ['FILE'],
    flags: {
      name: { type: 'string', value: 'NEWNAME', help: 'the new VM\'s name (default: the exported VM\'s)' },
      json: { type: 'boolean', help: 'print the new VM as JSON' },
    },
  },
  clone: {
    usage: 'clone NAME NEWNAME [--linked] [--json]',
    summary: 'Copy a shut-down VM: a full, independent copy, or with --linked an instant clone sharing the source\'s disks (read-only).',
    positionals: ['NAME', 'NEWNAME'],
    flags: {
      linked: { type: 'boolean', help: 'share the source\'s current disks as a read-only base (instant; the source can then only be deleted with `vivarium delete NAME --flatten-clones`, which first gives its linked clones disk images of their own)' },
      json: { type: 'boolean', help: 'print the new VM as JSON' },
    },
  },
};

/** Usage checks that need no engine (exit 2 on failure). */
export function prepareSnapshot(command: string, p: Parsed): void {
  if (command !== 'snapshot') return;
  const [action, vm, snap, newName] = p.positionals;
  if (action === undefined) throw new UsageError(`missing ACTION (one of ${ACTIONS.join(', ')})`, command);
  if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action "${action}"; use one of ${ACTIONS.join(', ')}`, command);
  if (vm === undefined || vm === '') throw new UsageError(`snapshot ${action} needs the VM's NAME`, command);
  const needs: Record<Action, number> = { create: 0, list: 0, revert: 1, delete: 1, rename: 2 };
  const allows: Record<Action, number> = { create: 1, list: 0, revert: 1, delete: 1, rename: 2 };
  const extra = [snap, newName].filter((x) => x !== undefined).length;
  const a = action as Action;
  if (extra < needs[a]) throw new UsageError(a === 'rename' ? 'snapshot rename needs NAME SNAPSHOT NEWNAME' : `snapshot ${a} needs NAME SNAPSHOT`, command);
  if (extra > allows[a]) throw new UsageError(`unexpected argument "${[snap, newName][allows[a]]}"`, command);
  if (p.flags.description !== undefined && a !== 'create') throw new UsageError('--description only goes with snapshot create', command);
  if (p.flags.json === true && a !== 'create' && a !== 'list') throw new UsageError(`--json does not go with snapshot ${a}`, command);
}

/** The documented JSON shape of one snapshot (README). */
export function publicSnapshot(s: SnapshotInfo): Omit<SnapshotInfo, 'hasThumbnail'> {
  return { id: s.id, name: s.name, description: s.description, createdAt: s.createdAt, parentId: s.parentId, current: s.current, withMemory: s.withMemory, sizeBytes: s.sizeBytes };
}

export async function runSnapshot(command: string, p: Parsed, s: Services, io: Io): Promise<number> {
  const out = (text: string) => io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  const json = (v: unknown) => out(JSON.stringify(v, null, 2));
  const asJson = p.flags.json === true;
  if (command === 'suspend') {
    const info = await s.snapshots.suspend(p.positionals[0]!);
    out(`${info.name}: ${info.state}`);
    return 0;
  }
  if (command === 'export') {
    const r = await s.snapshots.exportVm(p.positionals[0]!, path.resolve(p.positionals[1]!));
    out(`${r.path} (${formatBytes(r.bytes)})`);
    return 0;
  }
  if (command === 'import') {
    const name = p.flags.name;
    const info = await s.snapshots.importVm(path.resolve(p.positionals[0]!), typeof name === 'string' ? { name } : {});
    for (const n of info.notices ?? []) io.stderr.write(`note: ${n}\n`);
    if (asJson) json({ name: info.name, id: info.id, state: info.state, notices: info.notices ?? [] });
    else out(info.id);
    return 0;
  }
  if (command === 'clone') {
    const [vm, newName] = p.positionals as [string, string];
    // Ctrl-C cancels a full copy in the engine (which may outlive this command: the app or
    // `vivarium serve`): its qemu-img ends and the half-made clone is removed. A second Ctrl-C quits.
    let interrupted = false;
    let settled = false;
    const onSigint = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      // The copy may not have begun yet (the engine is still checking): ask until it is cancelled
      // or the clone has ended either way.
      const ask = (): void => {
        if (settled) return;
        void s.snapshots.cancel(vm).then(
          (cancelled) => (cancelled ? undefined : void setTimeout(ask, 200)),
          () => undefined,
        );
      };
      ask();
    };
    process.on('SIGINT', onSigint);
    let info;
    try {
      info = await s.snapshots.clone(vm, { name: newName, linked: p.flags.linked === true }).finally(() => (settled = true));
    } catch (e) {
      if (!interrupted) throw e;
      io.stderr.write(`vivarium: interrupted; the clone was cancelled and nothing of it was kept.\n`);
      return 130;
    } finally {
      process.off('SIGINT', onSigint);
    }
    for (const n of info.notices ?? []) io.stderr.write(`note: ${n}\n`);
    if (asJson) json({ name: info.name, id: info.id, state: info.state, linked: p.flags.linked === true, notices: info.notices ?? [] });
    else out(info.id);
    return 0;
  }
  const [action, vm, snap, newName] = p.positionals as [Action, string, string | undefined, string | undefined];
  switch (action) {
    case 'create': {
      const desc = p.flags.description;
      // SNAPSHOT left out: the default ("Snapshot N"); given, even empty or blank, it is checked as a rename's NEWNAME is.
      const named = snap !== undefined ? snapshotName(snap) : undefined;
      const made = await s.snapshots.create(vm, { ...(named !== undefined ? { name: named } : {}), ...(typeof desc === 'string' ? { description: desc } : {}) });
      if (asJson) json(publicSnapshot(made));
      else out(`${made.name} (${made.id})${made.withMemory ? ', with memory' : ', disks only'}`);
      return 0;
    }
    case 'list': {
      const list = await s.snapshots.list(vm);
      if (asJson) json(list.map(publicSnapshot));
      else out(formatTree(vm, list));
      return 0;
    }
    case 'revert': {
      const r = await s.snapshots.revert(vm, snap!);
      for (const n of r.notices ?? []) io.stderr.write(`note: ${n}\n`); // disks detached or attached again
      out(`Reverted to ${r.name} (${r.id}).`);
      return 0;
    }
    case 'delete': {
      await s.snapshots.delete(vm, snap!);
      out(`Deleted snapshot ${snap!}.`);
      return 0;
    }
    case 'rename': {
      const r = await s.snapshots.edit(vm, snap!, { name: snapshotName(newName!) });
      out(`Renamed to ${r.name} (${r.id}).`);
      return 0;
    }
    default:
      return assertNever(action, 'snapshot action');
  }
}

/** A snapshot name as given on the command line, checked here so a bad one is said as such
 *  (not as a VM setting). @throws VivariumError invalid-argument */
function snapshotName(raw: string): string {
  const r = SnapshotName.safeParse(raw);
  if (!r.success) throw errors.invalid(`Invalid snapshot name: ${r.error.issues[0]?.message ?? 'not allowed'}. Choose another name.`);
  return r.data;
}

/** The tree of `vm`'s snapshots as indented lines, children under their parent, "you are here"
 *  marked, the date in local time to the minute, each description (e.g. why a snapshot was recovered
 *  from the images) on a line under its snapshot. */
function formatTree(vm: string, list: readonly SnapshotInfo[]): string {
  if (list.length === 0) {
    const create = vm.startsWith('-') ? `vivarium snapshot create -- ${shellArg(vm)}` : `vivarium snapshot create ${shellArg(vm)}`;
    return `No snapshots. Take one with \`${create}\`.`;
  }
  const ids = new Set(list.map((s) => s.id));
  const children = new Map<string | null, SnapshotInfo[]>();
  for (const s of list) {
    const parent = s.parentId !== null && ids.has(s.parentId) ? s.parentId : null;
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  const lines: string[] = [];
  const walk = (parent: string | null, depth: number) => {
    for (const s of children.get(parent) ?? []) {
      const what = s.withMemory ? `memory ${formatBytes(s.sizeBytes)}` : 'disks only';
      lines.push(`${'  '.repeat(depth)}${s.current ? '* ' : '- '}${s.name.replace(/[\r\n\t]+/g, ' ')}  (${s.id}, ${localTime(s.createdAt)}, ${what})${s.current ? '  <- you are here' : ''}`);
      if (s.description.trim() !== '') lines.push(`${'  '.repeat(depth + 2)}${s.description.replace(/[\r\n\t]+/g, ' ').trim()}`);
      walk(s.id, depth + 1);
    }
  };
  walk(null, 0);
  return lines.join('\n');
}
