/**
 * Export and import of a whole VM (issue 10): one file (`.vivarium`) holding its bundle — config,
 * disks, UEFI variables, snapshot tree and thumbnails (internal snapshots live inside the disks), a
 * sandbox's own SSH files (`ssh/…`) and a TPM's state (`tpm/…`: swtpm's files, so a guest that sealed
 * a key to its TPM, such as Windows with BitLocker, does not ask for its recovery key after import).
 *
 * Format: a POSIX ustar archive (read back with imports/tar.ts). Its last member is
 * `vivarium-manifest.json`: `{format: "vivarium-export", version: 1, vm: {id, name}, files: [{name,
 * size, sha256}]}` listing every other member once. An import checks the manifest, that the members
 * are exactly the files it lists, and every file's SHA-256 before anything is written, then writes
 * the bundle through BundleStore.create (a staging folder renamed into place), so a partial or
 * corrupt file is refused with a sentence and nothing half-imported is left.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { ErrorCode, errors, VivariumError } from '../../common/errors';
import { BundleFileName, diskImages, NewVmName, parseVmConfig, type VmConfig } from '../../common/models/vm-config';
import { findNameClash } from '../../common/models/vm-settings';
import { SnapshotName } from '../../common/contract/snapshots';
import { formatBytes } from '../../common/format';
import { listTar } from '../imports/tar';
import { libraryNames, randomMac } from '../library/checks';
import { TPM_STATE_FILES, TPM_STATE_MAX_BYTES, tpmStateFiles } from '../library/clone';
import { readSeedImage, reissueSeed } from '../library/clone-sandbox';
import { writeSeedIso } from '../provisioning/seed-iso';
import type { Library, OkEntry } from '../library/library';
import { BundleFile } from '../paths';
import { onInterrupt } from '../qemu/tied-child';
import { SUSPEND_FILE } from '../drivers/qemu/suspender';
import { hostFileTrust, quotedName, screenHostAccess, screenMachine, shown, snapshotForwardsNotice } from '../imports/untrusted-config';
import { revertTarget, settingsOf } from './settings';
import { SnapshotTree, TREE_FILE } from './tree';

export const MANIFEST = 'vivarium-manifest.json';
const BLOCK = 512;

/** A sandbox's own SSH files, kept in its folder's `ssh/` (provisioning/provision.ts CloudInitFiles). */
const SshFileName = z.string().regex(/^ssh\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);
/** A TPM's state files, kept in its folder's `tpm/` (library/clone.ts TPM_STATE_FILES): those names only. */
const TpmFileName = z.enum(TPM_STATE_FILES);
const Manifest = z
  .object({
    format: z.literal('vivarium-export'),
    version: z.literal(1),
    vm: z.object({ id: z.string(), name: z.string() }).strict(),
    files: z.array(z.object({ name: z.union([BundleFileName, SshFileName, TpmFileName]), size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict()).min(1).max(2000),
  })
  .strict();

const SSH_FILES = ['ssh/id_ed25519', 'ssh/id_ed25519.pub', 'ssh/known_hosts'] as const;

/** The bundle files a snapshot's saved settings name (its disks' layers, its UEFI variables); the
 *  settings are unchecked JSON here, so only well-formed bundle file names count. */
function snapshotFiles(settings: unknown): string[] {
  if (!settings || typeof settings !== 'object') return [];
  const st = settings as { disks?: unknown; uefiVars?: unknown };
  const out: unknown[] = [st.uefiVars];
  for (const d of Array.isArray(st.disks) ? (st.disks as { source?: { bundle?: unknown }; backing?: unknown }[]) : []) {
    out.push(d?.source?.bundle);
    for (const b of Array.isArray(d?.backing) ? (d.backing as { source?: { bundle?: unknown } }[]) : []) out.push(b?.source?.bundle);
  }
  return out.filter((n): n is string => typeof n === 'string' && BundleFileName.safeParse(n).success);
}

/** A bundle file's path: `ssh/…` and `tpm/…` names live one folder down. */
function memberPath(dir: string, name: string): string {
  return path.join(dir, ...name.split('/'));
}

/** The bundle files an export carries: config, disks (every layer in the bundle), UEFI vars, the
 *  snapshot tree and its thumbnails. @throws invalid-state for a VM that uses files outside its folder */
async function exportFiles(entry: OkEntry, file: (n: string) => string): Promise<string[]> {
  const c = entry.config;
  const outside = c.disks.flatMap((d) => diskImages(d)).find((l) => !('bundle' in l.source));
  if (outside && !('bundle' in outside.source)) {
    throw errors.state(`"${c.name}" uses ${outside.source.path}, a file outside its folder, which an export cannot carry. Make a full clone and export that.`);
  }
  if (c.suspended) throw errors.state(`"${c.name}" is suspended. Start it (it resumes where it was) and shut it down, or discard its saved state with Force Off; then export it.`);
  const names = new Set<string>([BundleFile.config]);
  for (const d of c.disks) for (const l of diskImages(d)) if ('bundle' in l.source) names.add(l.source.bundle);
  if (c.uefiVars) names.add(c.uefiVars);
  try {
    const tree = JSON.parse(await fsp.readFile(file(TREE_FILE), 'utf8')) as { snapshots?: { thumbnail?: unknown; settings?: unknown }[] };
    names.add(TREE_FILE);
    for (const s of tree.snapshots ?? []) if (typeof s.thumbnail === 'string' && BundleFileName.safeParse(s.thumbnail).success) names.add(s.thumbnail);
    // A disk removed since a snapshot was taken comes back with a revert to it (settings.ts): its
    // files in the folder travel too (only present ones are carried, below).
    for (const s of tree.snapshots ?? []) for (const n of snapshotFiles(s.settings)) names.add(n);
  } catch {
    // no snapshots
  }
  const present: string[] = [];
  for (const n of names) if (await fsp.access(file(n)).then(() => true, () => false)) present.push(n);
  // A cloud-init sandbox's own key pair and known_hosts (in its folder), so the imported VM keeps
  // its SSH access.
  if (c.cloudInit) {
    for (const n of SSH_FILES) if (await fsp.access(memberPath(entry.dir, n)).then(() => true, () => false)) present.push(n);
  }
  // A TPM's state (swtpm's plain files in tpm/; none before its first start): the imported VM has
  // the same TPM, so what the guest sealed to it (BitLocker's key) still unseals.
  if (c.tpm) {
    for (const n of await tpmStateFiles(entry.dir)) {
      const size = (await fsp.stat(memberPath(entry.dir, n))).size;
      if (size > TPM_STATE_MAX_BYTES) throw errors.state(`The TPM state file ${n} of "${c.name}" holds ${formatBytes(size)}, more than a TPM's state can (${formatBytes(TPM_STATE_MAX_BYTES)}), so it is not swtpm's. Remove it from the VM's folder, then export again.`);
      present.push(n);
    }
  }
  return present;
}

function header(name: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  if (Buffer.byteLength(name) > 99) throw errors.invalid(`The file name ${name} is too long for an export.`);
  h.write(name, 0, 'utf8');
  h.write('0000600\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/**
 * Writes the stopped VM `entry` to `dest` (via `dest.part`, renamed at the end). The caller holds
 * the VM's start lock. @throws already-exists (dest exists), invalid-argument (dest is a folder, or
 * its folder is missing or takes no files), disk-full, invalid-state
 */
export async function exportVm(entry: OkEntry, bundleFile: (n: string) => string, dest: string, progress?: (f: number) => void): Promise<{ readonly bytes: number }> {
  const destStat = await fsp.stat(dest).catch(() => null);
  if (destStat?.isDirectory()) {
    // A wrong argument (as a missing folder is), not a name clash.
    throw errors.invalid(`${dest} is a folder. Give a file name in it, such as ${path.join(dest, `${entry.config.name.replace(/[/\\\0]/g, '_')}.vivarium`)}.`);
  }
  if (destStat) throw new VivariumError(ErrorCode.AlreadyExists, `${dest} already exists. Choose another file name.`);
  const folder = path.dirname(dest);
  const folderStat = await fsp.stat(folder).catch(() => null);
  if (!folderStat) throw errors.invalid(`The folder ${folder} does not exist. Create it first or choose another place for the export.`);
  if (!folderStat.isDirectory()) throw errors.invalid(`${folder} is not a folder. Choose another place for the export.`);
  const names = await exportFiles(entry, bundleFile);
  const fileOf = (n: string) => (n.includes('/') ? memberPath(entry.dir, n) : bundleFile(n));
  const sizes = await Promise.all(names.map(async (n) => (await fsp.stat(fileOf(n))).size));
  const total = sizes.reduce((a, b) => a + b, 0);
  // The export's size: each file padded to whole blocks behind its header, the manifest (a few
  // hundred bytes per file at most) and the two closing blocks.
  const need = sizes.reduce((a, n) => a + BLOCK + Math.ceil(n / BLOCK) * BLOCK, 0) + BLOCK + Math.ceil((256 + 200 * names.length) / BLOCK) * BLOCK + 2 * BLOCK;
  const free = await freeSpace(folder);
  if (free !== null && free.bytes < need) throw diskFull(folder, entry.config.name, need, free.bytes);
  const part = `${dest}.part`;
  let out: fsp.FileHandle;
  try {
    out = await fsp.open(part, 'w', 0o600);
  } catch (e) {
    throw (await cannotWrite(e, folder, entry.config.name, need)) ?? e;
  }
  // Ctrl-C (or a kill) of the exporting process: no half-written file stays behind.
  const forget = onInterrupt(() => fs.rmSync(part, { force: true }));
  const files: { name: string; size: number; sha256: string }[] = [];
  let done = 0;
  try {
    // A failure writing the export (not reading the VM's files) is said of where it was written,
    // once the .part file is gone (so the free space said is what there is).
    const put = async (what: () => Promise<unknown>): Promise<void> => {
      try {
        await what();
      } catch (e) {
        throw new WriteFailure(e);
      }
    };
    for (const [i, n] of names.entries()) {
      await put(() => out.write(header(n, sizes[i]!)));
      const hash = createHash('sha256');
      const input = fs.createReadStream(fileOf(n));
      for await (const chunk of input) {
        hash.update(chunk as Buffer);
        await put(() => out.write(chunk as Buffer));
        done += (chunk as Buffer).length;
        progress?.(total > 0 ? done / total : 1);
      }
      const pad = (BLOCK - (sizes[i]! % BLOCK)) % BLOCK;
      if (pad) await put(() => out.write(Buffer.alloc(pad)));
      files.push({ name: n, size: sizes[i]!, sha256: hash.digest('hex') });
    }
    const manifest = Buffer.from(`${JSON.stringify({ format: 'vivarium-export', version: 1, vm: { id: entry.id, name: entry.config.name }, files }, null, 2)}\n`);
    await put(() => out.write(header(MANIFEST, manifest.length)));
    await put(() => out.write(manifest));
    await put(() => out.write(Buffer.alloc((BLOCK - (manifest.length % BLOCK)) % BLOCK + 2 * BLOCK)));
    await put(() => out.sync());
    await put(() => out.close());
    await put(() => fsp.rename(part, dest));
  } catch (e) {
    await out.close().catch(() => undefined);
    await fsp.rm(part, { force: true });
    if (e instanceof WriteFailure) throw (await cannotWrite(e.cause, folder, entry.config.name, need)) ?? e.cause;
    throw e;
  } finally {
    forget();
  }
  return { bytes: (await fsp.stat(dest)).size };
}

/** A file system error writing the export file (said by cannotWrite once the .part file is gone). */
class WriteFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('writing the export failed');
  }
}

/**
 * Free bytes for an unprivileged writer in `folder` (statfs), and whether its filesystem has no free
 * file entries (inodes) left; null when the system does not say, or for a filesystem without a size
 * (/proc, /sys: statfs gives 0 blocks).
 */
async function freeSpace(folder: string): Promise<{ readonly bytes: number; readonly noInodes: boolean } | null> {
  try {
    const st = await fsp.statfs(folder);
    if (st.blocks === 0) return null;
    return { bytes: st.bavail * st.bsize, noInodes: st.files > 0 && st.ffree === 0 };
  } catch {
    return null;
  }
}

function diskFull(folder: string, vm: string, need: number, free: number | null, quota = false): VivariumError {
  const freeText = free !== null ? ` and ${formatBytes(free)} ${free === 1 ? 'is' : 'are'} free` : '';
  return new VivariumError(
    ErrorCode.DiskFull,
    `There is not enough space in ${folder} for the export of "${vm}"${quota ? ' (your disk quota there is used up)' : ''}: it needs about ${formatBytes(need)}${freeText}. Nothing was written; free some space there or choose another place for the export.`,
    { path: folder, neededBytes: need, ...(free !== null ? { freeBytes: free } : {}) },
  );
}

/**
 * The sentence for a failure to write the export file in `folder` (a file system error code), or
 * null for anything else (a bug stays a bug).
 */
async function cannotWrite(e: unknown, folder: string, vm: string, need: number): Promise<VivariumError | null> {
  if (e instanceof VivariumError) return e;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string') return null;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT': {
      const free = await freeSpace(folder);
      if (code === 'ENOSPC' && free?.noInodes) {
        return new VivariumError(
          ErrorCode.DiskFull,
          `The filesystem holding ${folder} can take no more files (it has no free file entries left, though ${formatBytes(free.bytes)} ${free.bytes === 1 ? 'is' : 'are'} free). Nothing was written; remove some files there or choose another place for the export.`,
          { path: folder, neededBytes: need, freeBytes: free.bytes },
        );
      }
      return diskFull(folder, vm, need, free?.bytes ?? null, code === 'EDQUOT');
    }
    case 'EACCES':
    case 'EPERM':
      return errors.invalid(`Vivarium may not write in ${folder} (permission denied). Choose another place for the export.`);
    case 'EROFS':
      return errors.invalid(`${folder} is on a read-only filesystem. Choose another place for the export.`);
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EINVAL':
    case 'EISDIR':
      // A folder that takes no new files (such as /proc or /sys, which the system fills itself).
      return errors.invalid(`No file can be created in ${folder} (it is a folder the system manages, not one for your files). Choose another place for the export, such as your home folder.`);
    case 'EIO':
      return errors.invalid(`Writing the export in ${folder} failed with an input/output error (the disk there may be failing or was removed). Nothing was written; choose another place for the export.`);
    default:
      return errors.invalid(`The export could not be written in ${folder} (${code}). Nothing was written; choose another place for the export.`);
  }
}

/** Files of a VM's folder that hold Vivarium's own records (and the export's manifest): never an
 *  image (the UEFI variables' file is one, but only as the UEFI variables). */
const RECORD_FILES: ReadonlySet<string> = new Set([...Object.values(BundleFile).filter((n) => n !== BundleFile.uefiVars), TREE_FILE, MANIFEST, SUSPEND_FILE]);

/**
 * The first image of `config` (a disk's layer, the UEFI variables, a cloud-init seed) that is one of
 * Vivarium's record files or a snapshot thumbnail, said as "uses NAME as …", or null. Attached as a
 * writable disk, config.json or snapshots.json would be the guest's to write, and with it every
 * setting an import screens (extra QEMU arguments, host paths).
 */
function recordFileAsImage(config: Pick<VmConfig, 'disks' | 'uefiVars' | 'cloudInit'>): string | null {
  const own = (n: string) => RECORD_FILES.has(n) || /^snap-[0-9a-f]{12}\.png$/.test(n);
  for (const d of config.disks) {
    for (const l of diskImages(d)) {
      if (!('bundle' in l.source)) continue;
      if (own(l.source.bundle)) return `uses ${l.source.bundle}, a file Vivarium keeps its own records in, as an image of disk ${d.id}`;
      if (l.source.bundle === config.uefiVars || l.source.bundle === BundleFile.uefiVars) return `uses ${l.source.bundle}, its UEFI variables, as an image of disk ${d.id}`;
    }
  }
  if (config.uefiVars && own(config.uefiVars)) return `uses ${config.uefiVars}, a file Vivarium keeps its own records in, as its UEFI variables`;
  if (config.cloudInit && own(config.cloudInit.seed)) return `uses ${config.cloudInit.seed}, a file Vivarium keeps its own records in, as its cloud-init seed`;
  return null;
}

function refuse(file: string, why: string): VivariumError {
  return errors.invalid(`${file} cannot be imported: ${why}. Nothing was imported; export the VM again or use another copy of the file.`);
}

async function sliceSha256(file: string, offset: number, size: number): Promise<string> {
  const hash = createHash('sha256');
  if (size > 0) for await (const chunk of fs.createReadStream(file, { start: offset, end: offset + size - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Imports an export file as a new VM. Checks everything first; writes the bundle whole or not at all.
 * The file is untrusted (imports/untrusted-config.ts): host files this machine does not trust
 * (kernel, initrd, ISOs, an SSH key), shared folders and extra QEMU arguments are not taken, from the
 * config and from every snapshot's saved settings alike, each said in `notices`; a VM using disks
 * outside the export, or a suspended one, is refused.
 * @returns the new VM's config and one sentence per setting dropped
 * @throws invalid-argument (partial, corrupt or not an export, with the reason), already-exists (name)
 */
export async function importVm(
  library: Library,
  file: string,
  options: { readonly name?: string },
  qemuImg: string | null,
  progress?: (f: number) => void,
): Promise<{ readonly config: VmConfig; readonly notices: readonly string[] }> {
  // What the file is, before reading it as an archive: said plainly, never as an error code.
  const st = await fsp.stat(file).catch((e: NodeJS.ErrnoException) => e);
  if (st instanceof Error) {
    if (st.code === 'ENOENT' || st.code === 'ENOTDIR') throw errors.invalid(`There is no file ${file}. Check its name and folder.`);
    if (st.code === 'EACCES' || st.code === 'EPERM') throw errors.invalid(`Vivarium may not read ${file} (permission denied). Make it readable or copy it somewhere readable, then import it again.`);
    throw errors.invalid(`${file} cannot be read (${st.code ?? 'unknown error'}).`);
  }
  if (st.isDirectory()) throw errors.invalid(`${file} is a folder, not an export file. Give the file an export wrote (its name ends in .vivarium).`);
  if (!st.isFile()) throw errors.invalid(`${file} is not a regular file, so it is not a Vivarium export file. Give the file an export wrote (its name ends in .vivarium).`);
  let members;
  try {
    members = await listTar(file);
  } catch (e) {
    const why = (e as Error).message;
    const cut = /^the archive is truncated \((.*)\)$/.exec(why);
    if (cut) throw refuse(file, `it is cut short: ${cut[1]}`);
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') throw errors.invalid(`${file} cannot be read (${code}).`);
    throw refuse(file, 'it is not a Vivarium export file (not a tar archive)');
  }
  if (members.length === 0) throw refuse(file, st.size === 0 ? 'it is empty' : 'it is not a Vivarium export file (not a tar archive)');
  // An export holds plain files only: a link or a folder member is none of Vivarium's.
  const odd = members.find((m) => m.type !== '0' && m.type !== '7');
  if (odd) throw refuse(file, `it holds ${safeName(odd.name)}, which is ${odd.type === '2' || odd.type === '1' ? 'a link' : odd.type === '5' ? 'a folder' : 'not a plain file'}; a Vivarium export holds only plain files`);
  const last = members.at(-1);
  if (!last || last.name !== MANIFEST) throw refuse(file, 'its manifest is missing (the file is cut short or is not a Vivarium export)');
  let manifest: z.infer<typeof Manifest>;
  let badName = false;
  try {
    const text = Buffer.alloc(last.size);
    const fh = await fsp.open(file, 'r');
    try {
      await fh.read(text, 0, last.size, last.offset);
    } finally {
      await fh.close();
    }
    const r = Manifest.safeParse(JSON.parse(text.toString('utf8')));
    if (!r.success) {
      // A member name that is not a file of a VM's folder (a path like ../x) is said as such.
      badName = r.error.issues.some((i) => i.path[0] === 'files' && i.path.at(-1) === 'name');
      throw r.error;
    }
    manifest = r.data;
  } catch {
    throw refuse(file, badName ? "its manifest names a file that does not belong in a VM's folder (a path outside it, or an unknown name)" : 'its manifest is unreadable');
  }
  const byName = new Map(members.slice(0, -1).map((m) => [m.name, m]));
  if (byName.size !== members.length - 1 || byName.size !== manifest.files.length) throw refuse(file, 'its files do not match its manifest');
  // The name first (config.json is small): a clash is said before gigabytes are hashed. Its
  // checksum is checked with the others below.
  const cfgMember = byName.get(BundleFile.config);
  if (!cfgMember || !manifest.files.some((f) => f.name === BundleFile.config)) throw refuse(file, 'it holds no config.json');
  const cfgText = Buffer.alloc(cfgMember.size);
  const fh = await fsp.open(file, 'r');
  try {
    await fh.read(cfgText, 0, cfgMember.size, cfgMember.offset);
  } finally {
    await fh.close();
  }
  const cfgSum = manifest.files.find((f) => f.name === BundleFile.config)!;
  if (cfgSum.size !== cfgMember.size || createHash('sha256').update(cfgText).digest('hex') !== cfgSum.sha256) {
    throw refuse(file, `${BundleFile.config} does not match its checksum (the file is damaged)`);
  }
  const parsed = parseVmConfig(cfgText.toString('utf8'));
  if (!parsed.ok) throw refuse(file, parsed.error.replace(/[. ]*(Restore it from a backup or delete the VM|Fix the file or delete the VM)\.*$/, ''));
  const outside = parsed.config.disks.flatMap((d) => diskImages(d)).some((l) => !('bundle' in l.source));
  if (outside) throw refuse(file, 'its VM uses files outside its folder');
  const record = recordFileAsImage(parsed.config);
  if (record) throw refuse(file, `its VM ${record}`);
  // An export never holds a suspended VM (exportFiles refuses one): such a file was made by hand.
  if (parsed.config.suspended) throw refuse(file, 'its VM is suspended, and an export never holds a saved state (it was not written by Vivarium)');
  const taken = library.entries().some((e) => e.id === parsed.config.id);
  const name = (options.name ?? parsed.config.name).trim();
  // Text from the file reaches terminals and lists: a name that could pass for another (invisible
  // or direction characters) or for an id is not taken as the new VM's; a host name shown by
  // `ssh-info` must be one.
  const nameCheck = NewVmName.safeParse(name);
  if (!nameCheck.success) {
    throw errors.invalid(`The VM in ${file} is named ${quotedName(name)}, which a new VM may not be (${nameCheck.error.issues[0]?.message ?? 'invalid'}). Import it under another name.`, undefined, {
      field: 'name',
    });
  }
  if (parsed.config.cloudInit && !/^(?=.{1,63}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/.test(parsed.config.cloudInit.hostname)) {
    throw refuse(file, `its VM's cloud-init host name ${quotedName(parsed.config.cloudInit.hostname)} is not a host name`);
  }
  const clash = findNameClash(name, libraryNames(library));
  if (clash) {
    throw new VivariumError(ErrorCode.AlreadyExists, `A VM named "${clash.name}" already exists. Import it under another name.`, undefined, {
      field: 'name',
      remedy: { kind: 'rename', taken: clash.name },
    });
  }
  // A TPM's state travels only with a VM that has a TPM, and is small (TPM_STATE_MAX_BYTES).
  for (const f of manifest.files) {
    if (!f.name.startsWith('tpm/')) continue;
    if (!parsed.config.tpm) throw refuse(file, `it holds ${f.name}, TPM state, but its VM has no TPM`);
    if (f.size > TPM_STATE_MAX_BYTES) throw refuse(file, `its TPM state file ${f.name} is ${formatBytes(f.size)}, more than a TPM's state can be (${formatBytes(TPM_STATE_MAX_BYTES)})`);
  }
  const total = manifest.files.reduce((a, f) => a + f.size, 0);
  let checked = 0;
  for (const f of manifest.files) {
    const m = byName.get(f.name);
    if (!m || m.size !== f.size) throw refuse(file, `${f.name} is missing or cut short`);
    if ((await sliceSha256(file, m.offset, m.size)) !== f.sha256) throw refuse(file, `${f.name} does not match its checksum (the file is damaged)`);
    checked += f.size;
    progress?.(total > 0 ? (checked / total) * 0.5 : 0.5);
  }
  const id = taken ? randomUUID() : parsed.config.id;
  const finalDir = library.layout.bundle(id).dir;
  const carried = new Set(manifest.files.map((f) => f.name));
  const ci = parsed.config.cloudInit;
  // A sandbox's key and known_hosts are its own files in its new folder (the paths in the file
  // named the exporter's folder); a key elsewhere is kept only when this machine trusts it.
  const ownKey = ci?.identityFile && carried.has('ssh/id_ed25519') && ci.identityFile.endsWith('/ssh/id_ed25519') ? memberPath(finalDir, 'ssh/id_ed25519') : null;
  const trust = hostFileTrust(
    library.entries().flatMap((e) => (e.ok ? [e.config] : [])),
    library.layout.mediaDir,
  );
  const machine = screenMachine(
    {
      ...parsed.config,
      id,
      name,
      network: taken ? { ...parsed.config.network, mac: randomMac() } : parsed.config.network,
      cloudInit: ci ? { ...ci, knownHostsFile: memberPath(finalDir, 'ssh/known_hosts') } : null,
    },
    trust,
    null,
  );
  const access = screenHostAccess(machine.config, trust, ownKey);
  const config: VmConfig = access.config;
  const notices = [...machine.notices, ...access.notices];
  // The snapshot tree (checked against its checksum above): each snapshot's saved settings are
  // what a revert puts back, so they pass the same screening, and its file names stay in the folder.
  const tree = carried.has(TREE_FILE) ? await screenTree(file, byName.get(TREE_FILE)!, config, trust, notices) : null;
  const treeText = tree?.text ?? null;
  let copied = 0;
  await library.store.create(config, async (dir) => {
    if ([...carried].some((n) => n.startsWith('ssh/'))) await fsp.mkdir(path.join(dir, 'ssh'), { mode: 0o700 });
    if ([...carried].some((n) => n.startsWith('tpm/'))) await fsp.mkdir(path.join(dir, 'tpm'), { mode: 0o700 });
    for (const f of manifest.files) {
      if (f.name === BundleFile.config) continue;
      const m = byName.get(f.name)!;
      const out = memberPath(dir, f.name);
      if (f.name === TREE_FILE && treeText !== null) await fsp.writeFile(out, treeText, { mode: 0o600 });
      else if (m.size === 0) await fsp.writeFile(out, '', { mode: 0o600 });
      else await pipeline(fs.createReadStream(file, { start: m.offset, end: m.offset + m.size - 1 }), fs.createWriteStream(out, { mode: 0o600 }));
      copied += f.size;
      progress?.(0.5 + (total > 0 ? (copied / total) * 0.5 : 0.5));
    }
    // Images name only their own layers, and those by their place in this folder.
    await checkImages(qemuImg, config, dir, finalDir, file, (tree?.images ?? []).filter((i) => carried.has(i)));
    // Imported as a copy next to the original (its id was taken): a new instance for cloud-init too,
    // as a clone gets (library/clone-sandbox.ts).
    if (ci && taken && carried.has(ci.seed)) {
      const seedFile = path.join(dir, ci.seed);
      const seed = reissueSeed(readSeedImage(await fsp.readFile(seedFile)), id, parsed.config.network.mac, config.network.mac);
      await writeSeedIso(seedFile, seed);
    }
  });
  return { config, notices };
}

/**
 * The imported snapshots.json as it is written into the new folder: the tree checked (its shape,
 * and every image and thumbnail a plain file name of the folder), each snapshot's saved settings
 * checked as a config is (settings.ts revertTarget against the imported `config`: a disk outside the
 * folder is refused) and screened as the config was, sentences for what was dropped added to
 * `notices`. @throws VivariumError invalid-argument (refuse) naming the snapshot
 */
async function screenTree(
  file: string,
  member: { readonly offset: number; readonly size: number },
  config: VmConfig,
  trust: ReturnType<typeof hostFileTrust>,
  notices: string[],
): Promise<{ readonly text: string; readonly images: readonly string[] }> {
  const text = Buffer.alloc(member.size);
  const fh = await fsp.open(file, 'r');
  try {
    await fh.read(text, 0, member.size, member.offset);
  } finally {
    await fh.close();
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.toString('utf8'));
  } catch {
    throw refuse(file, `its ${TREE_FILE} is not valid JSON`);
  }
  const parsed = SnapshotTree.safeParse(raw);
  if (!parsed.success) throw refuse(file, `its ${TREE_FILE} is not a snapshot tree (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'})`);
  const snapshots = [];
  const images = new Set<string>();
  for (const s of parsed.data.snapshots) {
    const named = quotedName(s.name);
    const nameCheck = SnapshotName.safeParse(s.name);
    if (!nameCheck.success || nameCheck.data !== s.name) throw refuse(file, `its ${TREE_FILE} names a snapshot ${named}, which is not a snapshot name (${nameCheck.success ? 'spaces around it' : (nameCheck.error.issues[0]?.message ?? 'invalid')})`);
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s.description)) throw refuse(file, `its ${TREE_FILE} gives snapshot ${named} a description with control characters`);
    const badFile = s.images.find((n) => !BundleFileName.safeParse(n).success);
    if (badFile !== undefined) throw refuse(file, `its ${TREE_FILE} names ${shown(badFile)} for snapshot ${named}, which is not a file of a VM's folder`);
    // A thumbnail is `<snapshot id>.png` (snapshot-service.ts); deleting the snapshot deletes it.
    if (s.thumbnail !== null && s.thumbnail !== `${s.id}.png`) throw refuse(file, `its ${TREE_FILE} names ${shown(s.thumbnail)} as the thumbnail of snapshot ${named}, which is not a thumbnail's name`);
    if (!s.settings) {
      snapshots.push(s);
      continue;
    }
    const target = revertTarget(config, s.settings);
    if (!target.ok) throw refuse(file, `the saved settings of snapshot ${named} cannot be used: ${target.why}`);
    const recordInSettings = recordFileAsImage(target.target.config);
    if (recordInSettings) throw refuse(file, `the saved settings of snapshot ${named} cannot be used: the VM they describe ${recordInSettings}`);
    const screened = screenMachine(target.target.config, trust, s.name);
    notices.push(...screened.notices);
    const forwards = snapshotForwardsNotice(config, screened.config, s.name);
    if (forwards) notices.push(forwards);
    for (const d of screened.config.disks) for (const l of diskImages(d)) if (l.format === 'qcow2' && 'bundle' in l.source) images.add(l.source.bundle);
    if (screened.config.uefiVars) images.add(screened.config.uefiVars);
    snapshots.push({ ...s, settings: settingsOf(screened.config) });
  }
  return { text: `${JSON.stringify({ ...parsed.data, snapshots }, null, 2)}\n`, images: [...images] };
}

/** A member name as read from an untrusted archive, fit for a sentence: printable, at most 100 characters. */
function safeName(name: string): string {
  const clean = name.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 100 ? `${clean.slice(0, 100)}…` : clean);
}

/** qemu-img's words with the staging folder's paths (an internal name) said as the files' own names. */
function unstaged(text: string, dir: string): string {
  return text.split(`${dir}${path.sep}`).join('').split(dir).join("the imported VM's folder");
}

function qemuImgRun(binary: string, args: readonly string[]): Promise<{ readonly ok: boolean; readonly out: string }> {
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: 60_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve(err ? { ok: false, out: ((stderr || err.message).trim().split('\n').pop() ?? '').replace(/^qemu-img: /, '') } : { ok: true, out: stdout });
    });
  });
}

/**
 * Checks the qcow2 images written to `dir` (the import's staging folder) against the config: each
 * opened as the format the config says (`qemu-img info -f`, never probed, never following a
 * backing file), the bottom of each chain and the UEFI variables naming no backing file, every
 * other layer naming the next one of its chain (by file name: the header holds the exporter's
 * absolute path), which is then rewritten to the layer's path in `finalDir` (`rebase -u`); no
 * image (nor one only `snapshotImages`, the qcow2 images of snapshots' saved settings, name) with an
 * external data file.
 * @throws VivariumError invalid-argument (refuse) for an image that names a file outside the export
 */
async function checkImages(binary: string | null, config: VmConfig, dir: string, finalDir: string, file: string, snapshotImages: readonly string[] = []): Promise<void> {
  const qcow2 = config.disks.flatMap((d) => diskImages(d)).some((l) => l.format === 'qcow2') || config.uefiVars !== null || snapshotImages.length > 0;
  if (!qcow2) return;
  if (!binary) throw errors.qemu('qemu-img was not found, and an import checks its images with it. Install QEMU, then import again.', undefined, { remedy: { kind: 'check-host' } });
  const backingOf = async (name: string): Promise<string | null> => {
    const r = await qemuImgRun(binary, ['info', '-U', '-f', 'qcow2', '--output=json', memberPath(dir, name)]);
    if (!r.ok) throw refuse(file, `${name} is not a qcow2 image (${unstaged(r.out, dir)})`);
    const j = JSON.parse(r.out) as { 'backing-filename'?: unknown; 'format-specific'?: { data?: { 'data-file'?: unknown } } };
    // An external data file (qcow2's data_file) is opened by QEMU from the header, whatever the
    // command line says of backing files: it would give the guest any file of this machine.
    const dataFile = j['format-specific']?.data?.['data-file'];
    if (typeof dataFile === 'string') throw refuse(file, `${name} keeps its data in another file, ${shown(dataFile)}, outside the export (Vivarium never opens such a file)`);
    return typeof j['backing-filename'] === 'string' ? j['backing-filename'] : null;
  };
  const seen = new Set<string>();
  for (const d of config.disks) {
    const layers = diskImages(d);
    for (const [i, l] of layers.entries()) {
      if (l.format !== 'qcow2' || !('bundle' in l.source) || seen.has(l.source.bundle)) continue;
      seen.add(l.source.bundle);
      const named = await backingOf(l.source.bundle);
      const next = layers[i + 1];
      const nextName = next && 'bundle' in next.source ? next.source.bundle : null;
      if (named === null) {
        if (nextName !== null) throw refuse(file, `${l.source.bundle} names no backing file, but the VM's settings layer it on ${nextName}`);
        continue;
      }
      if (nextName === null || path.basename(named) !== nextName) {
        throw refuse(file, `${l.source.bundle} names ${named} as its backing file, a file outside the export (Vivarium never opens such a file)`);
      }
      const r = await qemuImgRun(binary, ['rebase', '-u', '-f', 'qcow2', '-b', memberPath(finalDir, nextName), '-F', next!.format, memberPath(dir, l.source.bundle)]);
      if (!r.ok) throw errors.qemu(`Could not point ${l.source.bundle} at ${nextName} in the imported VM's folder: ${unstaged(r.out, dir)}`);
    }
  }
  if (config.uefiVars) {
    const named = await backingOf(config.uefiVars);
    if (named !== null) throw refuse(file, `${config.uefiVars} names ${named} as its backing file, a file outside the export`);
    seen.add(config.uefiVars);
  }
  // Images only a snapshot's saved settings name (a disk removed since, attached again by a revert):
  // qcow2 images without an external data file (their backing files are given on QEMU's command
  // line, never taken from their headers).
  for (const name of snapshotImages) if (!seen.has(name)) await backingOf(name);
}
