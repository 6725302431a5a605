/**
 * `vivarium catalog` and `vivarium media …`: the OS catalog and verified downloads (the `media`
 * service). JSON shapes are stable and documented in the README.
 *
 * Downloads run in the engine: with a running engine (`vivarium serve`, the app) they go on when this
 * command ends, and the command only follows them; without one, this command hosts the download.
 * Ctrl-C pauses a download this command follows, keeping the partial file; `media resume ID` or the
 * same `media download` command goes on from there.
 */
import * as path from 'node:path';
import { downloadUrlProblem, type DownloadInfo, type DownloadRequest, type MediaItem } from '../common/contract/media';
import type { Services } from '../common/contract';
import { assertNever, errors, isVivariumError } from '../common/errors';
import { CONNECTION_LOST_MESSAGE } from '../common/rpc/client';
import { formatBytes, formatRate } from '../common/format';
import type { CommandSpec, Parsed } from './args';
import { UsageError } from './args';

interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** What the parser accepts (CommandSpec.actions) and what runMedia's switch handles, one list
 *  (actions.test.ts runs each). */
const ACTIONS = ['download', 'list', 'status', 'cancel', 'resume', 'discard', 'remove'] as const;
type Action = (typeof ACTIONS)[number];

export const MEDIA_COMMANDS: Readonly<Record<string, CommandSpec>> = {
  catalog: {
    usage: 'catalog [--arch x86_64|aarch64] [--kind installer|cloud] [--json]',
    summary: 'List the operating systems Vivarium can download for you (installer ISOs and cloud images).',
    positionals: [],
    flags: {
      arch: { type: 'string', value: 'x86_64|aarch64', help: 'only this guest architecture' },
      kind: { type: 'string', value: 'installer|cloud', help: 'only installer ISOs or only cloud images' },
      json: { type: 'boolean', help: 'print a JSON array of {id, name, version, arch, kind, url, checksumUrl, sizeBytes}' },
    },
  },
  media: {
    usage:
      'media download URL|CATALOG_ID [--sha256 HEX | --sha512 HEX | --sums URL] [--json]\n' +
      '       vivarium media list [--json]              (verified files in <library>/media)\n' +
      '       vivarium media status [--json]            (downloads running or paused)\n' +
      '       vivarium media cancel|resume|discard ID   (pause keeping the partial file / go on / delete it)\n' +
      '       vivarium media remove PATH|NAME           (delete a downloaded file no VM uses)',
    summary: 'Download installer ISOs and disk images, verified against their checksum, into <library>/media.',
    positionals: ['ACTION', 'ARG'],
    actions: ACTIONS,
    optionalPositionals: 2,
    flags: {
      sha256: { type: 'string', value: 'HEX', help: 'download: the file\'s SHA-256 checksum' },
      sha512: { type: 'string', value: 'HEX', help: 'download: the file\'s SHA-512 checksum' },
      sums: { type: 'string', value: 'URL', help: 'download: a SHA256SUMS/SHA512SUMS/CHECKSUM file that lists the file' },
      json: { type: 'boolean', help: 'print JSON (see the README for the shapes)' },
    },
  },
};

/** Usage checks that need no engine (exit 2 on failure). */
export function prepareMedia(command: string, p: Parsed): void {
  if (command === 'catalog') {
    const arch = p.flags.arch;
    if (arch !== undefined && arch !== 'x86_64' && arch !== 'aarch64') throw new UsageError(`--arch must be x86_64 or aarch64, not "${String(arch)}"`, command);
    const kind = p.flags.kind;
    if (kind !== undefined && kind !== 'installer' && kind !== 'cloud') throw new UsageError(`--kind must be installer or cloud, not "${String(kind)}"`, command);
    return;
  }
  const [action, arg] = p.positionals;
  if (action === undefined) throw new UsageError(`missing ACTION (one of ${ACTIONS.join(', ')})`, command);
  if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action "${action}"; use one of ${ACTIONS.join(', ')}`, command);
  const needsArg = action !== 'list' && action !== 'status';
  const what = action === 'download' ? 'a URL or a catalog id' : action === 'remove' ? 'a downloaded file (see `vivarium media list`)' : 'a download id (see `vivarium media status`)';
  if (needsArg && (arg === undefined || arg === '')) throw new UsageError(`media ${action} needs ${what}`, command);
  if (!needsArg && arg !== undefined) throw new UsageError(`media ${action} takes no argument`, command);
  const checks = ['sha256', 'sha512', 'sums'].filter((f) => p.flags[f] !== undefined);
  if (checks.length > 0 && action !== 'download') throw new UsageError(`--${checks[0]} only goes with media download`, command);
  if (checks.length > 1) throw new UsageError('give one of --sha256, --sha512 or --sums, not several', command);
  if (action === 'download' && checks.length === 0 && /^[a-z][a-z0-9+.-]*:/i.test(arg!)) {
    throw new UsageError('a URL needs --sha256 HEX, --sha512 HEX or --sums URL (the distro\'s SHA256SUMS or CHECKSUM file), so that the download can be verified', command);
  }
  const sha256 = p.flags.sha256;
  if (typeof sha256 === 'string' && !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new UsageError('--sha256 must be 64 hexadecimal digits', command);
  const sha512 = p.flags.sha512;
  if (typeof sha512 === 'string' && !/^[0-9a-fA-F]{128}$/.test(sha512)) throw new UsageError('--sha512 must be 128 hexadecimal digits', command);
  const sums = p.flags.sums;
  const sumsProblem = typeof sums === 'string' ? downloadUrlProblem(sums) : null;
  if (sumsProblem !== null) throw new UsageError(`--sums must be the URL of a SHA256SUMS, SHA512SUMS or CHECKSUM file: ${sumsProblem} (for a file you have, give --sha256 with its checksum instead)`, command);
}

/** Runs a create and, when it converts an import, shows how far on stderr (`Importing app.ova: 42%`). */
export async function createWithProgress<T>(s: Services, io: Io, spec: { readonly import?: { readonly path: string; readonly mode: string } }, create: () => Promise<T>): Promise<T> {
  const imp = spec.import;
  if (!imp || imp.mode === 'attach') return create();
  const tty = (io.stderr as NodeJS.WriteStream).isTTY === true;
  const name = imp.path.split(/[\\/]/).pop() ?? imp.path;
  let lastPct = -1;
  let lastAt = 0;
  let drawn = false;
  const sub = s.media.onDidImportProgress((p) => {
    if (p.path !== imp.path) return;
    const pct = Math.floor(p.fraction * 100);
    const now = Date.now();
    if (pct === lastPct || (!tty && pct < 100 && now - lastAt < 1000)) return;
    lastPct = pct;
    lastAt = now;
    const line = `Importing ${name}${p.disks > 1 ? ` (disk ${p.disk + 1} of ${p.disks})` : ''}: ${pct}%`;
    io.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    drawn = true;
  });
  try {
    return await create();
  } finally {
    sub.dispose();
    if (drawn && tty) io.stderr.write('\n');
  }
}

/** `create --import FILE [--copy|--attach]` → the spec's `import` (throws invalid-argument: a usage error). */
export function importFlag(p: Parsed): { path: string; mode: 'copy' | 'attach' } | undefined {
  const file = p.flags.import;
  const copy = p.flags.copy === true;
  const attach = p.flags.attach === true;
  if (file === undefined) {
    if (copy || attach) throw errors.invalid(`--${copy ? 'copy' : 'attach'} goes with --import FILE.`);
    return undefined;
  }
  if (typeof file !== 'string' || file.trim() === '') throw errors.invalid('--import needs a file: a disk image (qcow2, raw, vmdk, vdi, vhdx, vhd) or an appliance (ova, ovf).');
  if (copy && attach) throw errors.invalid('Give either --copy or --attach, not both.');
  for (const f of ['disk', 'disk-size']) {
    if (p.flags[f] !== undefined) throw errors.invalid(`--import brings its own disks; leave out --${f}.`);
  }
  return { path: path.resolve(file), mode: attach ? 'attach' : 'copy' };
}

export async function runMedia(command: string, p: Parsed, s: Services, io: Io): Promise<number> {
  const out = (text: string) => io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  const json = (v: unknown) => out(JSON.stringify(v, null, 2));
  const asJson = p.flags.json === true;
  if (command === 'catalog') {
    const entries = await s.media.catalog({
      ...(p.flags.arch !== undefined ? { arch: p.flags.arch as 'x86_64' | 'aarch64' } : {}),
      ...(p.flags.kind !== undefined ? { kind: p.flags.kind as 'installer' | 'cloud' } : {}),
    });
    if (asJson) {
      json(entries.map((e) => ({ id: e.id, name: e.name, version: e.version, arch: e.arch, kind: e.kind, url: e.url, checksumUrl: e.checksumUrl, sizeBytes: e.sizeBytes })));
    } else {
      out(table([['ID', 'NAME', 'VERSION', 'ARCH', 'SIZE'], ...entries.map((e) => [e.id, e.name, e.version, e.arch, `~${formatBytes(e.sizeBytes)}`])]));
      out('\nDownload one with `vivarium media download ID`.');
    }
    return 0;
  }
  const action = p.positionals[0] as Action;
  const arg = p.positionals[1] ?? '';
  switch (action) {
    case 'list': {
      const items = await s.media.list();
      if (asJson) json(items.map(publicItem));
      else if (items.length === 0) out('Nothing downloaded yet. See `vivarium catalog`, then `vivarium media download ID`.');
      else out(table([['PATH', 'SIZE', 'SHA256', 'SOURCE'], ...items.map((i) => [i.path, formatBytes(i.sizeBytes), i.sha256.slice(0, 16) + '…', i.catalogId ?? i.source])]));
      return 0;
    }
    case 'status': {
      const list = await s.media.downloads();
      if (asJson) json(list.map(publicDownload));
      else if (list.length === 0) out('No downloads running or paused.');
      else out(table([['ID', 'NAME', 'STATE', 'PROGRESS', 'NOTE'], ...list.map((d) => [d.id, d.name, d.state, progressText(d), oneLine(d.error ?? '')])]));
      return 0;
    }
    case 'cancel': {
      const d = await s.media.cancel(await resolveId(s, arg));
      if (asJson) json(publicDownload(d));
      else out(`Paused ${d.name} at ${progressText(d)}; the partial file is kept. \`vivarium media resume ${d.id}\` goes on.`);
      return 0;
    }
    case 'discard': {
      const id = await resolveId(s, arg);
      await s.media.discard(id);
      out(`Deleted the partial download ${id}.`);
      return 0;
    }
    case 'remove': {
      // A bare name is a file in the media folder; anything else a path.
      const target = arg.includes('/') || arg.includes('\\') ? path.resolve(arg) : ((await s.media.list()).find((i) => i.name === arg)?.path ?? path.resolve(arg));
      await s.media.remove(target);
      out(`Deleted ${target}.`);
      return 0;
    }
    case 'resume': {
      const id = await resolveId(s, arg);
      return follow(s, io, asJson, () => s.media.resume(id));
    }
    case 'download': {
      const request: DownloadRequest = {
        source: arg,
        ...(typeof p.flags.sha256 === 'string' ? { sha256: p.flags.sha256 } : {}),
        ...(typeof p.flags.sha512 === 'string' ? { sha512: p.flags.sha512 } : {}),
        ...(typeof p.flags.sums === 'string' ? { sumsUrl: p.flags.sums } : {}),
      };
      return follow(s, io, asJson, () => s.media.download(request));
    }
    default:
      return assertNever(action, 'media action');
  }
}

/** Starts (or resumes) a download and follows it to the end, with progress on stderr. */
async function follow(s: Services, io: Io, asJson: boolean, start: () => Promise<DownloadInfo>): Promise<number> {
  const stderrTty = (io.stderr as NodeJS.WriteStream).isTTY === true;
  let id: string | null = null;
  let lastFailed: DownloadInfo | null = null;
  /** How the download was verified, as its last event says (a signed SUMS file names its signer). */
  let lastFrom: string | null = null;
  let lastLine = 0;
  let drawn = false;
  const draw = (d: DownloadInfo, final = false) => {
    const now = Date.now();
    if (!final && now - lastLine < (stderrTty ? 200 : 1000)) return;
    lastLine = now;
    const line = `${d.name}: ${progressText(d)}${d.state === 'downloading' && d.bytesPerSecond > 0 ? `, ${formatRate(d.bytesPerSecond)}` : ''}${d.secondsLeft !== null && d.state === 'downloading' ? `, ${formatDuration(d.secondsLeft)} left` : ''}${d.state === 'verifying' ? ', verifying…' : ''}`;
    if (stderrTty) io.stderr.write(`\r\x1b[K${line}`);
    else io.stderr.write(`${line}\n`);
    drawn = true;
  };
  const buffered: DownloadInfo[] = [];
  const sub = s.media.onDidProgress((d) => {
    if (id === null) {
      buffered.push(d);
      return;
    }
    if (d.id !== id) return;
    if (d.state === 'failed') lastFailed = d;
    lastFrom = d.checksum.from;
    if (d.state === 'downloading' || d.state === 'verifying') draw(d, d.state === 'verifying');
  });
  let cancelled = false;
  const onSigint = () => {
    if (id === null || cancelled) return;
    cancelled = true;
    void s.media.cancel(id).catch(() => undefined);
  };
  process.on('SIGINT', onSigint);
  const endLine = () => {
    if (drawn && stderrTty) io.stderr.write('\n');
  };
  try {
    const info = await start();
    id = info.id;
    for (const d of buffered.splice(0)) if (d.id === id && d.state === 'failed') lastFailed = d;
    let item: MediaItem;
    if (info.state === 'done') {
      io.stderr.write(`${info.name} is already downloaded and verified.\n`);
      item = await s.media.wait(info.id);
    } else {
      // Said before anything is verified: how it will be (the engine's `from` is "the given SHA-256"
      // for --sha256, else the SUMS file and whether its signature is checked).
      const alg = info.checksum.algorithm === 'sha512' ? 'SHA-512' : 'SHA-256';
      const plan = /^the given SHA-(256|512)$/.test(info.checksum.from) ? `the ${alg} you gave` : `the ${alg} from ${info.checksum.from}`;
      io.stderr.write(`Downloading ${info.url}\n  to ${info.path} (id ${info.id}; Ctrl-C pauses, \`vivarium media resume ${info.id}\` goes on)\n  will be verified against ${plan}\n`);
      try {
        item = await s.media.wait(info.id);
      } catch (e) {
        endLine();
        if (cancelled) {
          io.stderr.write(`vivarium: paused; the partial file is kept. Run \`vivarium media resume ${info.id}\` (or the same command) to go on.\n`);
          return 130;
        }
        // A download that failed before we started waiting is gone; its last event says why.
        const failed = lastFailed as DownloadInfo | null;
        if (isVivariumError(e) && e.code === 'not-found' && failed?.error) throw errors.state(failed.error);
        // The engine (the app or `vivarium serve`) went away: it keeps the download as paused.
        if (isVivariumError(e) && e.message === CONNECTION_LOST_MESSAGE) {
          throw errors.state(
            `Lost the connection to the Vivarium engine while downloading ${info.name}: the download is paused, with what has arrived kept, and resumes when Vivarium starts again (the app or \`vivarium serve\`), or run \`vivarium media resume ${info.id}\`.`,
          );
        }
        throw e;
      }
      endLine();
      const from = lastFrom as string | null;
      if (from !== null && from !== info.checksum.from) io.stderr.write(`  verified with ${from}\n`);
    }
    if (asJson) io.stdout.write(`${JSON.stringify({ path: item.path, sha256: item.sha256, sizeBytes: item.sizeBytes }, null, 2)}\n`);
    else io.stdout.write(`${item.path}\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    sub.dispose();
  }
}

/** A download id, or the URL / catalog id a download was started with. */
async function resolveId(s: Services, arg: string): Promise<string> {
  if (/^[0-9a-f]{16}$/.test(arg)) return arg;
  const match = (await s.media.downloads()).find((d) => d.source === arg || d.url === arg);
  if (!match) throw errors.invalid(`No download matches "${arg}". Run \`vivarium media status\` to see the downloads and their ids.`);
  return match.id;
}

/** `media list --json` rows (README). */
function publicItem(i: MediaItem): { path: string; sizeBytes: number; sha256: string; source: string } {
  return { path: i.path, sizeBytes: i.sizeBytes, sha256: i.sha256, source: i.catalogId ?? i.source };
}

/** `media status --json` rows (README). */
function publicDownload(d: DownloadInfo): Pick<DownloadInfo, 'id' | 'source' | 'url' | 'path' | 'state' | 'receivedBytes' | 'totalBytes' | 'error'> {
  return { id: d.id, source: d.source, url: d.url, path: d.path, state: d.state, receivedBytes: d.receivedBytes, totalBytes: d.totalBytes, error: d.error };
}

function progressText(d: DownloadInfo): string {
  if (d.totalBytes === null || d.totalBytes === 0) return formatBytes(d.receivedBytes);
  const pct = Math.floor((d.receivedBytes / d.totalBytes) * 100);
  return `${formatBytes(d.receivedBytes)} of ${formatBytes(d.totalBytes)} (${pct}%)`;
}

function formatDuration(sec: number): string {
  if (sec < 60) return `${sec} s`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ${sec % 60} s`;
  return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`;
}

function oneLine(t: string): string {
  return t.replace(/[\r\n\t]+/g, ' ');
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd()).join('\n');
}
