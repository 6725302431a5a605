/**
 * Cloning a stopped VM (issue 10). The clone gets a new id, name and MAC address, its own copy of
 * the UEFI variables, and none of the source's snapshots.
 *
 * - full: every disk's whole chain is copied into one standalone qcow2 in the clone's folder
 *   (`qemu-img convert`, with progress). The clone shares nothing with the source.
 * - linked: the source's current disk state becomes a read-only base both VMs stand on. Each
 *   writable disk's top image is frozen (mode 0444, and only ever opened read-only by Vivarium), the
 *   source gets a fresh overlay on it in its own folder, and the clone an overlay in its folder;
 *   both configs list the chain explicitly (vm-config.ts `Disk.backing`). Instant whatever the disk
 *   size. While a linked clone exists, deleting the source is refused (library/delete.ts: another VM
 *   uses a file from its folder).
 *
 * A cloud-init sandbox's clone also gets a seed, key pair copy and known_hosts of its own
 * (./clone-sandbox.ts): a new instance-id, so cloud-init makes new SSH host keys at its first boot.
 *
 * A VM with a TPM: both kinds of clone get a copy of its TPM state (swtpm's files in `tpm/`,
 * copyTpmState). A clone is a copy of the machine, as VMware Workstation and UTM copy the vTPM with
 * it: a guest that sealed a key to the TPM (BitLocker, LUKS with systemd-cryptenroll) boots the clone
 * without its recovery key. The clone therefore has the same TPM identity (endorsement key) as the
 * source; a guest that must be told apart by its TPM needs the clone's TPM reset in the guest.
 *
 * A linked clone of a VM with snapshots is refused: internal snapshots live inside the image that
 * would become the frozen base, and QEMU (7.2) can neither open an internal snapshot as a backing
 * node nor revert or delete one without writing the image; the VM would keep snapshots it could
 * never use again, or corrupt its clones by using them. A full clone copies the current state only.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { CloneSpec } from '../../common/contract/snapshots';
import { ErrorCode, errors, VivariumError } from '../../common/errors';
import type { HostCapabilities } from '../../common/models/host';
import { bundleDiskFile, diskImages, MAX_BACKING_LAYERS, type BackingLayer, type Disk, type ImageSource, type PortForward, type VmConfig } from '../../common/models/vm-config';
import { findNameClash } from '../../common/models/vm-settings';
import { copyPlainQcow2, Qcow2OverlayRefused, writeQcow2Overlay } from '../disks/qcow2-overlay';
import { BundleFile } from '../paths';
import { spawnTied } from '../qemu/tied-child';
import type { BundleEntry } from '../bundles/bundle-store';
import { randomMac } from './checks';
import type { Library, OkEntry } from './library';
import { nameOf } from './resolve';

export interface CloneDeps {
  readonly library: Library;
  readonly host: () => Promise<HostCapabilities>;
  /** 0..1 over the whole copy (full clones). */
  readonly progress?: (fraction: number) => void;
  /** Aborting it cancels a full clone: the running qemu-img convert is ended, the half-made clone's
   *  folder removed, and cloneVm fails with invalid-state ("… was cancelled …"). */
  readonly signal?: AbortSignal;
}

/** The file Vivarium keeps a VM's snapshot tree in (main/services/snapshots/tree.ts). */
const TREE_FILE = 'snapshots.json';

/**
 * Clones the stopped VM `source` (the caller holds its start lock and a job).
 * @throws VivariumError already-exists (name taken), invalid-state (linked clone of a VM with
 *   snapshots), qemu-failed (qemu-img)
 */
export async function cloneVm(deps: CloneDeps, source: OkEntry, spec: CloneSpec): Promise<{ readonly config: VmConfig; readonly notices: readonly string[] }> {
  const { library } = deps;
  const layout = library.layout;
  // One listing of the library serves the name rule and the port forwards' moves.
  const entries = await library.entriesAsync();
  const clash = findNameClash(
    spec.name,
    entries.flatMap((e) => {
      const name = nameOf(e);
      return name === null ? [] : [{ id: e.id, name }];
    }),
  );
  if (clash) {
    // No remedy: the sentence says it, and `clone` takes the new name as an argument (no --name).
    throw new VivariumError(ErrorCode.AlreadyExists, `A VM named "${clash.name}" already exists. Choose another name for the clone.`, undefined, { field: 'name' });
  }
  const caps = await deps.host();
  const qemuImg = caps.qemuImg;
  if (!qemuImg) throw errors.qemu('qemu-img was not found. Install QEMU and check what this host can run (the doctor) before trying again.', undefined, { remedy: { kind: 'check-host' } });
  const src = layout.bundle(source.id);
  const id = randomUUID();
  const abs = (s: ImageSource): string => ('bundle' in s ? src.file(s.bundle) : s.path);
  // Fixed host ports cannot serve two VMs: the clone's forwards move to free ports (said in a notice).
  const moved = await moveForwards(source.config.network.forwards, entries, source.config.name, spec.name.trim());
  const notices = moved.notice ? [moved.notice] : [];
  const base: VmConfig = {
    ...source.config,
    id,
    name: spec.name.trim(),
    createdAt: new Date().toISOString(),
    network: { ...source.config.network, mac: randomMac(), forwards: [...moved.forwards] },
    autostart: false,
    suspended: null,
  };

  // A cloud-init sandbox's clone: its own seed (new instance-id, new MAC), key pair copy, known_hosts.
  const access = source.config.cloudInit;
  const isSeed = (d: Disk): boolean => access !== null && d.readOnly && 'bundle' in d.source && d.source.bundle === access.seed;
  const ownSandbox = async (dir: string): Promise<void> => {
    if (!access) return;
    // Loaded on use: the seed writer's YAML and SSH-key parsers are start-up time for every command.
    const { cloneSandbox } = await import('./clone-sandbox.js');
    const r = await cloneSandbox({
      access,
      sourceDir: src.dir,
      stagingDir: dir,
      finalDir: layout.bundle(id).dir,
      cloneId: id,
      oldMac: source.config.network.mac,
      newMac: base.network.mac,
      disks: base.disks,
    });
    Object.assign(base, { disks: r.disks, cloudInit: r.access });
  };

  if (spec.linked) {
    if (await hasSnapshots(src.file(TREE_FILE))) {
      const n = source.config.name;
      throw errors.state(
        `"${n}" has snapshots, and a linked clone cannot share its disks safely: the clone would stand on "${n}"'s current disk images, frozen read-only, but "${n}"'s snapshots live inside those very images, so reverting to or deleting one of them would write under the clone, and "${n}" would lose them. Make a full clone (it copies the current state and leaves the snapshots alone), or delete the snapshots of "${n}" first.`,
      );
    }
    // Each linked clone stacks one more read-only layer under the source (its frozen state).
    const deep = source.config.disks.find((d) => !d.readOnly && d.backing.length + 1 > MAX_BACKING_LAYERS);
    if (deep) {
      throw errors.state(
        `Disk ${deep.id} of "${source.config.name}" already stands on ${deep.backing.length} read-only layers, the most a linked clone can add to. Make a full clone instead (or a linked clone of a full clone).`,
      );
    }
    // A disk attached in place (a file outside the VM's folder, such as a raw image the user keeps):
    // freezing it as the shared base would silently move the source off the file it was given, leave
    // the file writable by anything else (another VM attaching it would write under the clone), and
    // unprotected by the library (image-users.ts only guards files inside a VM's folder).
    const loose = source.config.disks.find((d) => !d.readOnly && 'path' in d.source);
    if (loose && 'path' in loose.source) {
      const n = source.config.name;
      throw errors.state(
        `Disk ${loose.id} of "${n}" is ${loose.source.path}${loose.format === 'raw' ? ', a raw image' : ''} attached in place, outside "${n}"'s folder, so a linked clone cannot share it safely: it would become a read-only base that "${n}" no longer writes to, yet other programs or VMs could still change it under the clone. Make a full clone instead (a clone that is not linked): it copies the disk into the clone's own folder and leaves ${loose.source.path} as it is.`,
      );
    }
    const stamp = randomBytes(3).toString('hex');
    const sourceDisks: Disk[] = [];
    const cloneDisks: Disk[] = [];
    const frozen: string[] = [];
    const made: string[] = [];
    try {
      await library.store.create(base, async (dir) => {
        for (const d of source.config.disks) {
          if (d.readOnly) {
            sourceDisks.push(d);
            cloneDisks.push({ ...d, source: 'bundle' in d.source ? { path: abs(d.source) } : d.source, backing: d.backing.map((l) => absLayer(l, abs)) });
            continue;
          }
          // The current top image becomes a shared, read-only base.
          const topFile = abs(d.source);
          const chainBelow: BackingLayer[] = [{ source: { path: topFile }, format: d.format }, ...d.backing.map((l) => absLayer(l, abs))];
          const srcOverlay = `${d.id}-${stamp}.qcow2`;
          // Both overlays are the same empty qcow2 naming the same base by its absolute path.
          const cloneOverlay = `${dir}/${bundleDiskFile(d.id)}`;
          await createOverlay(qemuImg, topFile, d.format, [cloneOverlay, src.file(srcOverlay)], made);
          // The source's own chain keeps bundle-relative names for files in its folder.
          sourceDisks.push({
            ...d,
            source: { bundle: srcOverlay },
            format: 'qcow2',
            backing: [{ source: d.source, format: d.format }, ...d.backing],
          });
          cloneDisks.push({ ...d, source: { bundle: bundleDiskFile(d.id) }, format: 'qcow2', backing: chainBelow });
          if ('bundle' in d.source) frozen.push(topFile);
        }
        if (source.config.uefiVars) await copyUefiVars(qemuImg, src.file(source.config.uefiVars), `${dir}/${BundleFile.uefiVars}`);
        Object.assign(base, { disks: cloneDisks, uefiVars: source.config.uefiVars ? BundleFile.uefiVars : null });
        if (source.config.tpm) await copyTpmState(src.dir, dir);
        await ownSandbox(dir);
      });
    } catch (e) {
      for (const f of made) await fsp.rm(f, { force: true });
      throw e;
    }
    // Only now switch the source onto its overlay, and freeze the base (no one writes it again;
    // owner-only like everything in the library: 0400).
    await library.store.saveAsync({ ...source.config, disks: sourceDisks });
    for (const f of frozen) await fsp.chmod(f, 0o400).catch(() => undefined);
    deps.progress?.(1);
    return { config: base, notices };
  }

  // Full: each disk's chain flattened into one standalone qcow2.
  const total = source.config.disks.length + (source.config.uefiVars ? 1 : 0);
  let done = 0;
  const step = (f: number) => deps.progress?.(Math.min(1, (done + f) / Math.max(1, total)));
  const disks: Disk[] = [];
  const cancelled = () => errors.state(`The clone "${base.name}" of "${source.config.name}" was cancelled; nothing of it was kept.`, { cancelled: true });
  const { signal } = deps;
  await library.store.create(base, async (dir) => {
    for (const d of source.config.disks) {
      if (signal?.aborted) throw cancelled();
      if (isSeed(d)) {
        disks.push(d); // the clone gets a seed of its own (ownSandbox)
        done++;
        continue;
      }
      const out = bundleDiskFile(d.id);
      await copyStandalone(qemuImg, abs(d.source), d.format, `${dir}/${out}`, diskImages(d).slice(1).map((l) => ({ file: abs(l.source), format: l.format })), step, signal);
      if (signal?.aborted) throw cancelled();
      disks.push({ ...d, source: { bundle: out }, format: 'qcow2', backing: [], readOnly: d.readOnly });
      done++;
    }
    if (source.config.uefiVars) {
      await copyUefiVars(qemuImg, src.file(source.config.uefiVars), `${dir}/${BundleFile.uefiVars}`);
      done++;
    }
    Object.assign(base, { disks, uefiVars: source.config.uefiVars ? BundleFile.uefiVars : null });
    if (source.config.tpm) await copyTpmState(src.dir, dir);
    await ownSandbox(dir);
    // The last moment a cancel can still leave nothing: after this the folder becomes the VM.
    if (signal?.aborted) throw cancelled();
  }).catch((e: unknown) => {
    // A copy ended by the cancel fails in qemu-img's words: the cancel is what happened.
    throw signal?.aborted ? cancelled() : e;
  });
  deps.progress?.(1);
  return { config: base, notices };
}

/**
 * The files swtpm keeps a TPM 2.0's state in, inside a VM's folder (`tpm/`, qemu/argv.ts tpmPaths):
 * the persistent state (seeds, NV indexes, persistent keys) and, when swtpm was told to save them,
 * the volatile and suspend states (swtpm(8) `--tpmstate dir=`; libtpms names them
 * `tpm2-00.permall`, `tpm2-00.volatilestate`, `tpm2-00.savestate`). swtpm's lock file and log are not
 * state.
 */
export const TPM_STATE_FILES = ['tpm/tpm2-00.permall', 'tpm/tpm2-00.volatilestate', 'tpm/tpm2-00.savestate'] as const;

/** The most bytes one TPM state file may hold (4 MiB; swtpm's are tens of KiB): a bound on what an
 *  export carries and an import takes. */
export const TPM_STATE_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The TPM state files of the VM folder `dir` that exist as plain files (no link is followed), by
 * their names under the folder (TPM_STATE_FILES).
 */
export async function tpmStateFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of TPM_STATE_FILES) {
    const st = await fsp.lstat(path.join(dir, ...n.split('/'))).catch(() => null);
    if (st?.isFile()) out.push(n);
  }
  return out;
}

/**
 * Copies the source VM's TPM state (its plain TPM_STATE_FILES in `sourceDir`) into the clone's folder
 * `dir`: `tpm/` made 0700, each file 0600 (as swtpm keeps them), never overwriting. A source that
 * never started has no state: the clone's swtpm then makes a new TPM at its first start, as the
 * source's would.
 */
export async function copyTpmState(sourceDir: string, dir: string): Promise<void> {
  const files = await tpmStateFiles(sourceDir);
  if (files.length === 0) return;
  await fsp.mkdir(path.join(dir, 'tpm'), { mode: 0o700 });
  for (const n of files) {
    const out = path.join(dir, ...n.split('/'));
    await fsp.copyFile(path.join(sourceDir, ...n.split('/')), out, fsConstants.COPYFILE_EXCL);
    await fsp.chmod(out, 0o600);
  }
}

/** The lowest port a moved forward may take (below are the well-known and registered ports of the host). */
const MIN_MOVED_PORT = 1024;

/**
 * The clone's port forwards: each keeps its protocol and guest port, and its host port moves to the
 * next port up that no VM of the library (`entries`, a listing of it) forwards and no program holds
 * now (127.0.0.1), so the source and its clone can run at once. Returns the forwards and a sentence
 * listing the moves (null when there were none).
 */
export async function moveForwards(
  forwards: readonly PortForward[],
  entries: readonly BundleEntry[],
  sourceName: string,
  cloneName: string,
): Promise<{ readonly forwards: readonly PortForward[]; readonly notice: string | null }> {
  if (forwards.length === 0) return { forwards, notice: null };
  const taken = new Set<string>();
  for (const e of entries) {
    if (!('config' in e) || !e.config) continue;
    for (const f of e.config.network.forwards) taken.add(`${f.protocol}:${f.hostPort}`);
  }
  const { portInUse } = await import('../sandbox/ssh-forward.js');
  const out: PortForward[] = [];
  const moves: string[] = [];
  for (const f of forwards) {
    let port = Math.max(MIN_MOVED_PORT, f.hostPort + 1);
    for (let tries = 0; ; tries++, port++) {
      if (port > 65535) port = MIN_MOVED_PORT;
      if (tries > 2000) throw errors.state(`No free host port was found for the clone's forward of guest port ${f.guestPort} (${f.protocol}).`);
      if (taken.has(`${f.protocol}:${port}`)) continue;
      if (await portInUse(port, f.protocol)) continue;
      break;
    }
    taken.add(`${f.protocol}:${port}`);
    out.push({ ...f, hostPort: port });
    moves.push(`${f.protocol} ${f.hostPort} → ${port} (guest port ${f.guestPort})`);
  }
  return {
    forwards: out,
    notice: `"${cloneName}" forwards other host ports than "${sourceName}", so both can run at once: ${moves.join(', ')}. Change them with the VM's port forwards.`,
  };
}

function absLayer(l: BackingLayer, abs: (s: ImageSource) => string): BackingLayer {
  return { source: { path: abs(l.source) }, format: l.format };
}

/** Whether a VM's snapshot tree file lists any snapshot (a missing or unreadable file: none). */
export async function hasSnapshots(treeFile: string): Promise<boolean> {
  try {
    const t = JSON.parse(await fsp.readFile(treeFile, 'utf8')) as { snapshots?: unknown[] };
    return Array.isArray(t.snapshots) && t.snapshots.length > 0;
  } catch {
    return false;
  }
}

/** How many internal snapshots the qcow2 images `files` hold together (`qemu-img info -U`). */
export async function imageSnapshotCount(qemuImg: string, files: readonly string[]): Promise<number> {
  let n = 0;
  for (const file of files) {
    const j = await new Promise<{ snapshots?: unknown[] }>((resolve, reject) => {
      execFile(qemuImg, ['info', '-U', '-f', 'qcow2', '--output=json', file], { timeout: 30_000 }, (err, stdout) => {
        if (err) reject(errors.qemu(`qemu-img info failed on ${file}: ${err.message}`));
        else resolve(JSON.parse(stdout) as { snapshots?: unknown[] });
      });
    });
    n += j.snapshots?.length ?? 0;
  }
  return n;
}

function run(binary: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: 120_000 }, (err, _stdout, stderr) => {
      if (err) reject(errors.qemu(`qemu-img ${args[0]} failed: ${((stderr || err.message).trim().split('\n').pop() ?? '').replace(/^qemu-img: /, '')}`));
      else resolve();
    });
  });
}

/**
 * The same empty qcow2 overlay on `base` (its header naming `base` by its absolute path) at each of
 * `outs`, each pushed to `made` once it exists. Written by Vivarium (disks/qcow2-overlay.ts: no
 * process, which is most of a linked clone's time); what that writer refuses (a size over QEMU's
 * limit, a backing name over 1023 bytes) goes to `qemu-img create`, which makes it or says why not.
 */
async function createOverlay(qemuImg: string, base: string, baseFormat: string, outs: readonly string[], made: string[]): Promise<void> {
  // The base's size comes from its own header, read without opening it through QEMU (nor whatever
  // its header names below it).
  const virtualSize = await imageVirtualSize(base, baseFormat);
  const one = async (out: string): Promise<void> => {
    try {
      await writeQcow2Overlay(out, { virtualSize, backingFile: base, backingFormat: baseFormat });
    } catch (e) {
      if (!(e instanceof Qcow2OverlayRefused)) throw e;
      // -u: do not open the base either.
      await run(qemuImg, ['create', '-q', '-u', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', base, '-F', baseFormat, out, String(virtualSize)]);
    }
    made.push(out);
  };
  // At once: each write waits on its own fsync.
  const results = await Promise.allSettled(outs.map(one));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * The clone's copy of a UEFI variable store (a standalone qcow2 Vivarium made: disks/uefi-vars.ts).
 * Copied byte for byte when its header shows nothing a copy would carry over wrongly (no backing
 * file, no internal snapshots, no dirty/feature bits: disks/qcow2-overlay.ts copyPlainQcow2);
 * otherwise — e.g. the source's snapshots are inside it — `qemu-img convert`, which leaves them out.
 */
async function copyUefiVars(qemuImg: string, file: string, out: string): Promise<void> {
  try {
    if (await copyPlainQcow2(file, out)) return;
  } catch (e) {
    // A link, a full disk: said as it is. A missing or unreadable store: qemu-img says it, as before.
    if (e instanceof VivariumError) throw e;
  }
  await copyStandalone(qemuImg, file, 'qcow2', out, []);
}

/** "QFI\xfb": the first four bytes of every qcow2 image. */
const QCOW2_MAGIC = 0x514649fb;

/**
 * The virtual size of an image in bytes: a raw image's file size, or a qcow2 image's header field
 * `size` (big-endian u64 at byte 24; QEMU docs/interop/qcow2.txt, "Header").
 * @throws VivariumError qemu-failed when the file is not what `format` says.
 */
export async function imageVirtualSize(file: string, format: string): Promise<number> {
  const fh = await fsp.open(file, 'r');
  try {
    if (format === 'raw') return (await fh.stat()).size;
    const head = Buffer.alloc(32);
    const { bytesRead } = await fh.read(head, 0, 32, 0);
    if (bytesRead < 32 || head.readUInt32BE(0) !== QCOW2_MAGIC) throw errors.qemu(`${file} is not a qcow2 image (its header is not one).`);
    const size = head.readBigUInt64BE(24);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw errors.qemu(`${file} says it is ${size} bytes, more than Vivarium can handle.`);
    return Number(size);
  } finally {
    await fh.close();
  }
}

/** The JSON image spec of a chain with an explicit bottom (`backing: null`): whatever backing file
 *  a header names is never opened. */
function chainSpec(top: { file: string; format: string }, below: readonly { file: string; format: string }[]): Record<string, unknown> {
  const layers = [top, ...below];
  let spec: Record<string, unknown> | null = null;
  for (const l of [...layers].reverse()) {
    spec = { driver: l.format, file: { driver: 'file', filename: l.file }, ...(l.format === 'qcow2' ? { backing: spec } : {}) };
  }
  return spec!;
}

/**
 * `qemu-img convert -p` of a chain into one standalone qcow2 at `out` (internal snapshots are not
 * copied). `below` lists the layers under `file`, nearest first, each opened as said (never by the
 * names in the headers). Aborting `signal` kills the qemu-img (the copy then fails).
 * @throws VivariumError qemu-failed
 */
export function copyStandalone(
  qemuImg: string,
  file: string,
  format: string,
  out: string,
  below: readonly { file: string; format: string }[],
  progress?: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const src = `json:${JSON.stringify(chainSpec({ file, format }, below))}`;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(errors.state('The copy was cancelled.', { cancelled: true }));
      return;
    }
    // Tied to this process: a CLI killed mid-copy takes its qemu-img along (qemu/tied-child.ts).
    const child = spawnTied(qemuImg, ['convert', '-p', '-O', 'qcow2', '-o', 'cluster_size=65536', src, out]);
    // Cancelled: qemu-img is killed (its output is removed with the clone's folder by the caller).
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('close', () => signal?.removeEventListener('abort', onAbort));
    child.stdin.end();
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      const m = /\((\d+(?:\.\d+)?)\/100%\)/.exec(b.toString('latin1').split('\r').filter(Boolean).pop() ?? '');
      if (m) progress?.(Number(m[1]) / 100);
    });
    child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    child.on('error', (e) => reject(errors.qemu(`qemu-img convert could not run: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(errors.qemu(`Copying ${file} failed: ${(err.trim().split('\n').pop() ?? '').replace(/^qemu-img: /, '')}`));
    });
  });
}
