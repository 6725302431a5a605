/**
 * The developer-sandbox commands (issue 11): `create --cloud-image` flags, `ssh`, `forward`, `share`.
 * JSON shapes are stable and documented in the README ("Developer sandbox").
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CloudCreateSpec, CreateVmSpec, ForwardInfo, Services, ShareInfo } from '../common/contract';
import { assertNever, errors } from '../common/errors';
import { parseForward, ShareTag } from '../common/models/sandbox';
import { DEFAULT_GUEST_UID, guestUidFor, ninePMountCommand } from '../common/guest-uid';
import { shellArg } from '../common/shell-arg';
import type { CommandSpec, Parsed } from './args';
import { UsageError } from './args';

interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

const VM = 'NAME';

/** Flags `create` gains for a sandbox. */
export const SANDBOX_CREATE_FLAGS = {
  'cloud-image': { type: 'string', value: 'ID|PATH|URL', help: 'a developer sandbox from a cloud image: a catalog id (vivarium images), a local qcow2/raw file or a URL; the image is never modified' },
  user: { type: 'string', value: 'U', help: 'with --cloud-image: the guest user (default: your user name)' },
  'ssh-key': { type: 'string', value: 'FILE.pub', help: 'with --cloud-image: your SSH public key (default: a key pair made for this VM)' },
  'password-file': { type: 'string', value: 'F', help: 'with --cloud-image: a file whose first line is the user\'s password (default: no password login)' },
  hostname: { type: 'string', value: 'H', help: 'with --cloud-image: the guest\'s host name (default: the VM name)' },
  packages: { type: 'string', value: 'a,b', help: 'with --cloud-image: packages to install at first boot' },
  'user-data': { type: 'string', value: 'FILE', help: 'with --cloud-image: extra cloud-init user-data merged with Vivarium\'s' },
  'no-agent-install': { type: 'boolean', help: 'with --cloud-image: do not install qemu-guest-agent at first boot (the image has it, or the guest has no internet)' },
  share: { type: 'string', multiple: true, value: 'HOSTDIR[:TAG][:ro]', help: 'with --cloud-image: share a host folder (9p, mounted at /mnt/TAG); repeatable' },
} as const;

/** Parses `HOSTDIR[:TAG][:ro]` (a relative folder is taken from the current directory). */
export function parseShareFlag(text: string, cwd = process.cwd()): { hostPath: string; tag?: string; readOnly?: boolean } {
  let rest = text;
  let readOnly = false;
  if (/:ro$/.test(rest)) {
    readOnly = true;
    rest = rest.slice(0, -3);
  }
  let tag: string | undefined;
  const m = /^(.*):([A-Za-z0-9][A-Za-z0-9_.-]{0,30})$/.exec(rest);
  if (m && m[1] !== '') {
    rest = m[1]!;
    tag = m[2];
  }
  if (rest.trim() === '') throw errors.invalid(`--share needs a folder: HOSTDIR[:TAG][:ro], not "${text}".`);
  return { hostPath: path.resolve(cwd, rest), ...(tag !== undefined ? { tag } : {}), ...(readOnly ? { readOnly } : {}) };
}

/** What the sandbox flags of `create` ask for (image not yet resolved: `image` is what was typed). */
export function cloudFlags(p: Parsed): CloudCreateSpec | undefined {
  const str = (n: string) => (typeof p.flags[n] === 'string' ? (p.flags[n] as string) : undefined);
  const image = str('cloud-image');
  const others = ['user', 'ssh-key', 'password-file', 'hostname', 'packages', 'user-data', 'share', 'no-agent-install'].filter((f) => p.flags[f] !== undefined);
  if (image === undefined) {
    if (others.length > 0) throw errors.invalid(`--${others[0]} goes with --cloud-image.`);
    return undefined;
  }
  if (image.trim() === '') throw errors.invalid('--cloud-image needs a catalog id, a file or a URL.');
  for (const f of ['iso', 'disk', 'import']) {
    if (p.flags[f] !== undefined) throw errors.invalid(`--cloud-image brings its own disk and boots it; leave out --${f}.`);
  }
  const file = (n: string) => {
    const v = str(n);
    if (v === undefined) return undefined;
    if (v.trim() === '') throw errors.invalid(`--${n} needs a file.`);
    return path.resolve(v);
  };
  const packages = str('packages')
    ?.split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  const user = str('user');
  if (user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) {
    throw errors.invalid(`--user must be a Linux user name (lower-case letters, digits, "_" or "-", starting with a letter), not "${user}".`);
  }
  const shares = ((p.flags.share as readonly string[] | undefined) ?? []).map((s) => parseShareFlag(s));
  const spec: CloudCreateSpec = {
    image,
    ...(user !== undefined ? { user } : {}),
    ...(file('ssh-key') !== undefined ? { sshKeyFile: file('ssh-key')! } : {}),
    ...(file('password-file') !== undefined ? { passwordFile: file('password-file')! } : {}),
    ...(str('hostname') !== undefined ? { hostname: str('hostname')! } : {}),
    ...(packages !== undefined ? { packages } : {}),
    ...(file('user-data') !== undefined ? { userDataFile: file('user-data')! } : {}),
    ...(shares.length > 0 ? { shares } : {}),
    ...(p.flags['no-agent-install'] === true ? { installGuestAgent: false } : {}),
  };
  return spec;
}

/**
 * Turns what `--cloud-image` named into a local file: an existing file as is (checked by the engine
 * as an untrusted image); a URL or a catalog id downloaded and verified by the media service first
 * (progress on stderr).
 */
export async function resolveCloudImage(s: Services, io: Io, spec: CreateVmSpec): Promise<CreateVmSpec> {
  const cloud = spec.cloud;
  if (!cloud) return spec;
  const typed = cloud.image;
  const local = path.resolve(typed);
  if (!/^https?:\/\//i.test(typed) && (fs.existsSync(local) || typed.includes('/') || /\.(qcow2|img|raw)$/i.test(typed))) {
    if (!fs.existsSync(local)) throw errors.invalid(`The cloud image ${local} does not exist. Give a catalog id (vivarium images), a file or a URL.`);
    return { ...spec, cloud: { ...cloud, image: local } };
  }
  let label: { os?: string; shell?: string } = {};
  if (!/^https?:\/\//i.test(typed)) {
    const entry = (await s.media.catalog({ kind: 'cloud' })).find((e) => e.id === typed);
    if (!entry) throw errors.invalid(`"${typed}" is neither a file nor a cloud image of the catalog. See vivarium images for the ids.`);
    // Alpine's images have no bash: the user's login shell is /bin/sh there.
    label = { os: entry.name.slice(0, 100), ...(entry.presetHints.preset === 'alpine' ? { shell: '/bin/sh' } : {}) };
  }
  const started = await s.media.download({ source: typed });
  io.stderr.write(`Downloading ${typed} (verified before use)…\n`);
  const item = await s.media.wait(started.id);
  return { ...spec, ...(spec.os === undefined && label.os ? { os: label.os } : {}), cloud: { ...cloud, image: item.path, ...(label.shell && !cloud.shell ? { shell: label.shell } : {}) } };
}

/** The actions of `forward` and `share`: what the parser accepts (CommandSpec.actions) and what
 *  runSandbox's switches handle, one list (actions.test.ts runs each). */
const LIST_ADD_REMOVE = ['list', 'add', 'remove'] as const;
type ListAddRemove = (typeof LIST_ADD_REMOVE)[number];

export const SANDBOX_COMMANDS: Readonly<Record<string, CommandSpec>> = {
  images: {
    usage: 'images [--arch x86_64|aarch64] [--json]',
    summary: 'List the cloud images a sandbox can start from (create NAME --cloud-image ID).',
    positionals: [],
    flags: {
      arch: { type: 'string', value: 'x86_64|aarch64', help: 'only this guest architecture' },
      json: { type: 'boolean', help: 'print a JSON array of {id, name, version, arch, url, checksumUrl, sizeBytes}' },
    },
  },
  ssh: {
    usage: 'ssh NAME [--timeout SECONDS] [--print] [--] [COMMAND ...]',
    summary:
      'Open an SSH session in a sandbox (made with create --cloud-image), or run COMMAND there and exit with its status. ' +
      'As with OpenSSH, the words after -- are joined with spaces into one command line that the guest\'s shell runs: ' +
      'vivarium ssh NAME -- \'cd /mnt/work && make; echo done\'.',
    positionals: [VM, ...Array.from({ length: 255 }, () => 'ARG')],
    optionalPositionals: 255,
    flags: {
      timeout: { type: 'number', value: 'SECONDS', help: 'how long to wait for the guest\'s SSH server (default 600)' },
      print: { type: 'boolean', help: 'print the ssh command line instead of running it' },
    },
  },
  forward: {
    usage: 'forward list|add|remove NAME [tcp|udp]:HOSTPORT:GUESTPORT [--json]',
    summary: 'List, add or remove port forwards (127.0.0.1:HOSTPORT → guest port), live while the VM runs and saved for the next start.',
    positionals: ['ACTION', VM, 'FORWARD'],
    actions: LIST_ADD_REMOVE,
    optionalPositionals: 1,
    flags: { json: { type: 'boolean', help: 'print a JSON array of {protocol, hostAddress, hostPort, guestPort}' } },
  },
  share: {
    usage: 'share list|add|remove NAME HOSTDIR [--tag TAG] [--readonly] [--json]',
    summary: 'List, add or remove shared folders (9p, mounted at /mnt/TAG in cloud-init guests); add and remove while the VM is stopped.',
    positionals: ['ACTION', VM, 'HOSTDIR'],
    actions: LIST_ADD_REMOVE,
    optionalPositionals: 1,
    flags: {
      tag: { type: 'string', value: 'TAG', help: 'the mount tag (default: from the folder name)' },
      readonly: { type: 'boolean', help: 'the guest may read but not write' },
      json: { type: 'boolean', help: 'print a JSON array of {hostPath, tag, readOnly, guestPath}' },
    },
  },
};

/**
 * The sandbox lines of the text `show` (what `show --json` has as `guest`, `cloudInit`, `shares`):
 *   guest:    HOSTNAME, IP, IP (OS)          what the guest agent says, while it runs and answers
 *   ssh:      USER@127.0.0.1:PORT (vivarium ssh NAME)      a sandbox; without PORT while stopped
 *   shares:   HOSTDIR -> /mnt/TAG (rw|read-only)           one line each
 * Nothing for a VM without them; the engine's refusals are left out (show must still show).
 */
export async function sandboxShowLines(s: Services, vm: { readonly id: string; readonly name: string; readonly state: string; readonly config: { readonly cloudInit: { readonly user: string; readonly hostname: string } | null; readonly shares: readonly { readonly hostPath: string; readonly tag: string; readonly readOnly: boolean }[] } | null }): Promise<string[]> {
  const lines: string[] = [];
  const c = vm.config;
  if (!c) return lines;
  if (vm.state === 'running') {
    const g = await s.sandbox.guest(vm.id).catch(() => null);
    if (g) lines.push(`  guest:    ${[g.hostname ?? '(no host name)', ...g.ips].join(', ')}${g.os ? ` (${g.os})` : ''}`);
    else if (c.cloudInit) lines.push('  guest:    the guest agent does not answer (yet)');
  }
  if (c.cloudInit) {
    const access = await s.sandbox.sshAccess(vm.id).catch(() => null);
    const where = access?.running && access.port !== null ? `@127.0.0.1:${access.port}` : '';
    lines.push(`  ssh:      ${c.cloudInit.user}${where} (host name ${c.cloudInit.hostname}; vivarium ssh ${shellArg(vm.name)}${where ? '' : ' once it runs'})`);
  }
  c.shares.forEach((sh, i) => lines.push(`  ${i === 0 ? 'shares:  ' : '         '} ${sh.hostPath} -> /mnt/${sh.tag} (${sh.readOnly ? 'read-only' : 'rw'}${c.cloudInit ? '' : ', mount it in the guest'})`));
  return lines;
}

/** Usage checks that need no engine (exit 2). */
export function prepareSandbox(command: string, p: Parsed): void {
  if (command === 'images') {
    const arch = p.flags.arch;
    if (arch !== undefined && arch !== 'x86_64' && arch !== 'aarch64') throw new UsageError(`--arch must be x86_64 or aarch64, not "${String(arch)}"`, command);
  }
  if (command === 'forward' || command === 'share') {
    const [action, , arg] = p.positionals;
    if (!(LIST_ADD_REMOVE as readonly string[]).includes(action ?? '')) throw new UsageError(`unknown action "${action}"; use one of ${LIST_ADD_REMOVE.join(', ')}`, command);
    if (action === 'list' && arg !== undefined) throw new UsageError(`${command} list takes only NAME`, command);
    if (action !== 'list' && arg === undefined) throw new UsageError(`${command} ${action} needs ${command === 'forward' ? '[tcp|udp]:HOSTPORT:GUESTPORT' : 'HOSTDIR (or, for remove, the TAG)'}`, command);
    if (command === 'forward' && arg !== undefined && parseForward(arg) === null) {
      throw new UsageError(`a forward looks like tcp:8080:80 or udp:5353:53 (ports 1-65535), not "${arg}"`, command);
    }
    if (command === 'share' && action !== 'add' && (p.flags.tag !== undefined || p.flags.readonly !== undefined)) {
      throw new UsageError('--tag and --readonly go with share add', command);
    }
  }
}

export async function runSandbox(command: string, p: Parsed, s: Services, io: Io): Promise<number> {
  const out = (text: string) => io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  const asJson = p.flags.json === true;
  if (command === 'ssh') return runSsh(p, s, io);
  if (command === 'images') {
    const arch = p.flags.arch as 'x86_64' | 'aarch64' | undefined;
    const entries = await s.media.catalog({ kind: 'cloud', ...(arch ? { arch } : {}) });
    if (asJson) {
      out(JSON.stringify(entries.map((e) => ({ id: e.id, name: e.name, version: e.version, arch: e.arch, url: e.url, checksumUrl: e.checksumUrl, sizeBytes: e.sizeBytes })), null, 2));
    } else {
      for (const e of entries) out(`${e.id.padEnd(28)} ${e.name}`);
      out('\nCreate a sandbox with `vivarium create NAME --cloud-image ID`.');
    }
    return 0;
  }
  const [action, ref, arg] = p.positionals as [ListAddRemove, string, string | undefined];
  if (command === 'forward') {
    let list: readonly ForwardInfo[];
    switch (action) {
      case 'add':
        list = await s.sandbox.addForward(ref, parseForward(arg!)!);
        break;
      case 'remove':
        list = await s.sandbox.removeForward(ref, parseForward(arg!)!);
        break;
      case 'list':
        list = await s.sandbox.forwards(ref);
        break;
      default:
        return assertNever(action, 'forward action');
    }
    if (asJson) out(JSON.stringify(list, null, 2));
    else if (list.length === 0) out('No port forwards.');
    else for (const f of list) out(`${f.protocol} ${f.hostAddress}:${f.hostPort} -> guest ${f.guestPort}`);
    return 0;
  }
  let list: readonly ShareInfo[];
  switch (action) {
    case 'add':
      // Said in the flag's words here; the engine's own check would say "Invalid request: Tag: …".
      if (typeof p.flags.tag === 'string' && !ShareTag.safeParse(p.flags.tag).success) {
        throw new UsageError(`--tag "${p.flags.tag}" is not a usable share tag: use 1–31 letters, digits, ".", "_" or "-", starting with a letter or digit (it becomes /mnt/TAG in the guest)`, command);
      }
      list = await s.sandbox.addShare(ref, {
        hostPath: path.resolve(arg!),
        ...(typeof p.flags.tag === 'string' ? { tag: p.flags.tag } : {}),
        ...(p.flags.readonly === true ? { readOnly: true } : {}),
      });
      break;
    case 'remove':
      list = await s.sandbox.removeShare(ref, arg!.includes('/') || arg === '.' ? path.resolve(arg!) : arg!);
      break;
    case 'list':
      list = await s.sandbox.shares(ref);
      break;
    default:
      return assertNever(action, 'share action');
  }
  if (asJson) out(JSON.stringify(list, null, 2));
  else if (list.length === 0) out('No shared folders.');
  else for (const sh of list) out(`${sh.hostPath} -> ${sh.guestPath} (tag ${sh.tag}${sh.readOnly ? ', read-only' : ''})`);
  if (action === 'add' && !asJson) {
    const added = list.find((sh) => sh.hostPath === path.resolve(arg!) || sh.tag === p.flags.tag);
    const vm = await s.vms.get(ref);
    if (added) for (const line of shareNotes(added, vm.config?.cloudInit != null)) out(line);
  }
  return 0;
}

/**
 * What `share add` adds in words: for a VM not made from a cloud image (nothing mounts the share
 * for it), the mount command to type in the guest; for a read-write share, whether the guest user
 * may write to it. 9p with security_model=none shows the host's owners as they are, and the guest
 * user has the host user's uid (provisioning/cloud-init.ts guestUidFor) or 1000 when Vivarium runs
 * as root; a folder owned by another uid is then read-only to the guest user (writes need sudo).
 */
export function shareNotes(share: ShareInfo, cloudInitGuest: boolean, hostUid: number | null = process.getuid?.() ?? null): string[] {
  const notes: string[] = [];
  if (!cloudInitGuest) {
    notes.push(`This VM was not made from a cloud image, so nothing mounts the share for it. In the guest (Linux with 9p), mount it with:\n  ${ninePMountCommand({ tag: share.tag, readOnly: share.readOnly })}`);
    return notes;
  }
  notes.push(`The guest mounts it at ${share.guestPath} at its next start.`);
  if (share.readOnly) return notes;
  const guestUid = guestUidFor(hostUid) ?? DEFAULT_GUEST_UID;
  let owner: number | null = null;
  try {
    owner = fs.statSync(share.hostPath).uid;
  } catch {
    // checked by the engine already
  }
  if (owner !== null && owner !== guestUid) {
    notes.push(
      `${share.hostPath} belongs to uid ${owner}, but the guest user has uid ${guestUid}${hostUid === 0 ? ' (Vivarium runs as root, so the guest user keeps the default uid)' : ''}: ` +
        `to the guest user the folder is read-only (writes need sudo in the guest). To let the guest user write, give the folder to uid ${guestUid} on the host: chown ${guestUid} ${shellArg(share.hostPath)}`,
    );
  }
  return notes;
}

async function runSsh(p: Parsed, s: Services, io: Io): Promise<number> {
  const [ref, ...command] = p.positionals as [string, ...string[]];
  // The engine builds the command (the VM's key, its known_hosts, this run's port) and waits for
  // the guest's sshd; the CLI only runs the system's ssh with the terminal it was given.
  const cmd = await s.sandbox.sshCommand(ref, { command });
  if (p.flags.print === true) {
    io.stdout.write(`${cmd.line}\n`);
    return 0;
  }
  const timeoutSec = typeof p.flags.timeout === 'number' ? p.flags.timeout : 600;
  const hint = setTimeout(() => io.stderr.write(`Waiting for ${ref}'s SSH server (a first boot also runs cloud-init)…\n`), 1500);
  try {
    await s.sandbox.waitForSsh(ref, Math.min(24 * 3600_000, Math.max(1000, Math.round(timeoutSec * 1000))));
  } finally {
    clearTimeout(hint);
  }
  const inherit = io.stdout === process.stdout && io.stderr === process.stderr;
  const child = spawn(cmd.file, [...cmd.args], { stdio: inherit ? 'inherit' : ['inherit', 'pipe', 'pipe'] });
  if (!inherit) {
    child.stdout?.on('data', (d: Buffer) => io.stdout.write(d));
    child.stderr?.on('data', (d: Buffer) => io.stderr.write(d));
  }
  return new Promise<number>((resolve, reject) => {
    child.once('error', (e) => reject(errors.state(`Could not run ssh (${e.message}). Install the OpenSSH client.`)));
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
}
