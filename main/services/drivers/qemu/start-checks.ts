/**
 * Checks the QEMU driver makes before every start, because files change between create and start.
 * (Disk content checks — format, backing files, the qcow2 corrupt flag — are disks/preflight.ts.)
 */
import * as fs from 'node:fs';
import { errors } from '../../../common/errors';
import type { HostCapabilities } from '../../../common/models/host';
import type { VmConfig } from '../../../common/models/vm-config';
import { shellArg } from '../../../common/shell-arg';
import type { VmRuntimePaths } from '../../paths';

/**
 * `cache.direct=on,aio=native` needs O_DIRECT, which some filesystems refuse (tmpfs — /tmp on many
 * distributions — and some network and FUSE filesystems): QEMU would then fail to open the disk.
 * Try it on each disk and fall back to QEMU's defaults for this start when any refuses. The probe
 * opens run on libuv's thread pool (an open on a slow network filesystem must not stall the engine).
 */
export async function withDirectIoWhereSupportedAsync(caps: HostCapabilities, c: VmConfig, bundleFile: (name: string) => string): Promise<HostCapabilities> {
  const O_DIRECT = (fs.constants as Record<string, number>).O_DIRECT;
  if (!caps.nativeAio || O_DIRECT === undefined) return caps;
  for (const d of c.disks) {
    const file = 'bundle' in d.source ? bundleFile(d.source.bundle) : d.source.path;
    try {
      await (await fs.promises.open(file, fs.constants.O_RDONLY | O_DIRECT)).close();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EINVAL') return { ...caps, nativeAio: false };
      // Missing or unreadable files are reported elsewhere, with better words.
    }
  }
  return caps;
}

/** Unix socket paths are capped at 108 bytes on Linux and 104 on macOS. */
export function assertSocketPathsFit(rt: VmRuntimePaths): void {
  const longest = [rt.qmp, rt.serial, rt.vnc, rt.qga].reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a));
  if (Buffer.byteLength(longest) > 103) {
    throw errors.state(
      `The runtime folder path is too long for unix sockets (${longest}). Set VIVARIUM_RUNTIME_DIR to a short folder such as /tmp/vivarium-$USER and try again.`,
    );
  }
}

/**
 * A CD whose ISO is gone (the installer deleted from Downloads once the OS is installed) does not
 * stop a start: that drive starts empty, as VMware, VirtualBox and UTM do, and a notice says so.
 * The saved config keeps the path (put the file back and the next start has it again); `cd insert`
 * or `cd eject` changes it. Returns the config to start with and the notices (none when every ISO
 * is there). Missing disks, kernels and initrds still refuse the start (`assertMediaPresentAsync`).
 */
export async function withMissingCdsEmptiedAsync(c: VmConfig): Promise<{ readonly config: VmConfig; readonly notices: readonly string[] }> {
  const missing = new Set<string>();
  for (const d of c.cdroms) if (d.path !== null && !(await exists(d.path))) missing.add(d.path);
  return cdsEmptied(c, (p) => !missing.has(p));
}

function cdsEmptied(c: VmConfig, present: (p: string) => boolean): { readonly config: VmConfig; readonly notices: readonly string[] } {
  const notices: string[] = [];
  const cdroms = c.cdroms.map((d) => {
    if (d.path === null || present(d.path)) return d;
    const vm = shellArg(c.name);
    notices.push(
      `The ISO in ${d.id}, ${d.path}, no longer exists: ${d.id} was started empty. Insert another (vivarium cd insert ${vm} PATH --drive ${d.id}, or the Hardware tab), or eject it to stop this notice (vivarium cd eject ${vm} --drive ${d.id}).`,
    );
    return { ...d, path: null };
  });
  return notices.length === 0 ? { config: c, notices } : { config: { ...c, cdroms }, notices };
}

/** External media named by the config must still exist (CDs: `withMissingCdsEmptiedAsync`).
 *  @throws VivariumError invalid-state naming the missing file and how to fix it. */
export async function assertMediaPresentAsync(c: VmConfig): Promise<void> {
  for (const m of externalMedia(c)) if (!(await exists(m.path))) throw mediaGone(m);
}

interface ExternalMedium {
  readonly what: string;
  readonly path: string;
  readonly remedy: string;
}

function externalMedia(c: VmConfig): ExternalMedium[] {
  const out: ExternalMedium[] = [];
  const add = (what: string, p: string | null | undefined, remedy: string) => {
    if (p) out.push({ what, path: p, remedy });
  };
  const edit = (flag: string) => `change it: vivarium edit ${shellArg(c.name)} ${flag} PATH`;
  add('The kernel', c.kernel?.path, edit('--kernel'));
  add('The initrd', c.kernel?.initrd, edit('--initrd'));
  for (const d of c.disks) {
    if ('path' in d.source) add('The disk image', d.source.path, 'create a new VM with that image where it is now (vivarium create NAME --disk PATH)');
  }
  return out;
}

function mediaGone(m: ExternalMedium): Error {
  return errors.state(`${m.what} ${m.path} no longer exists. Put it back, or ${m.remedy}.`);
}

/** Whether `p` exists (links followed, as fs.existsSync), off the event loop. */
function exists(p: string): Promise<boolean> {
  return fs.promises.access(p).then(
    () => true,
    () => false,
  );
}
