/**
 * A VM config that came in a file (a `.vivarium` export, issue 10) is untrusted: its host paths and
 * raw QEMU arguments were chosen on another machine, or by whoever crafted the file. Imported as
 * they are, an initrd of /etc/shadow or a CD of /dev/sda would let the guest read host files, a
 * shared folder of / would let it write them, and extra QEMU arguments can open files, chardevs and
 * sockets. As an appliance in VirtualBox's OVA format carries no host media (its DVD drives come
 * in empty) and a UTM bundle's drive bookmarks from another Mac resolve to nothing, such settings
 * are not taken; each one dropped is said in a notice.
 *
 * Decisions, field by field (the README's "Export and import" says the same):
 * - disks: only files inside the export (refused otherwise, by bundle-archive.ts);
 * - kernel + initrd (+ its command line), CD drives' ISOs: kept only when the file is on this
 *   machine's trust list (HostFileTrust): a file a VM of this library already uses in the same role,
 *   or a verified download in Vivarium's media folder. Otherwise the VM gets no kernel, the drive
 *   stays but is empty;
 * - shared folders: never taken (a host folder, writable by the guest);
 * - extra QEMU arguments: never taken;
 * - cloud-init SSH key outside the export: kept only when a VM here already uses it; else none
 *   (ssh's own keys and agent);
 * - port forwards (host ports on 127.0.0.1 only): kept, and said;
 * - a suspended state: refused by the caller (an export never holds one); so are (bundle-archive.ts)
 *   a disk, UEFI variables or seed that is one of Vivarium's record files (config.json…), a qcow2
 *   image with an external data file, and names with control or direction characters.
 * Firmware is chosen by kind (bios/uefi) from this host's own descriptors; the config holds no
 * firmware path, and the UEFI variables are a file of the export.
 *
 * Pure functions over plain data.
 */
import * as path from 'node:path';
import type { VmConfig } from '../../common/models/vm-config';

/** The roles a host file can have in a config. */
export type HostFileRole = 'kernel' | 'initrd' | 'iso' | 'ssh-key';

/** This machine's trust list for host files named by a file from elsewhere. */
export interface HostFileTrust {
  /** Whether `file` (as the config spells it) may be used as `role` by an imported VM. */
  trusts(role: HostFileRole, file: string): boolean;
}

/**
 * The trust list: every file a VM of `configs` (this library) uses in a role, for that role, and
 * the verified downloads directly in `mediaDir` (`<library>/media`, main/services/media/store.ts:
 * names starting with "." are its metadata and partial downloads) for the kernel, initrd and ISO
 * roles. Paths compare as spelled, after path.resolve (a `..` never reaches a trusted folder).
 */
export function hostFileTrust(configs: readonly VmConfig[], mediaDir: string): HostFileTrust {
  const known = new Set<string>();
  const add = (role: HostFileRole, p: string | null | undefined) => {
    if (p) known.add(`${role}\0${path.resolve(p)}`);
  };
  for (const c of configs) {
    add('kernel', c.kernel?.path);
    add('initrd', c.kernel?.initrd);
    for (const cd of c.cdroms) add('iso', cd.path);
    add('ssh-key', c.cloudInit?.identityFile);
  }
  const media = path.resolve(mediaDir);
  return {
    trusts(role, file) {
      if (!path.isAbsolute(file)) return false;
      const p = path.resolve(file);
      if (known.has(`${role}\0${p}`)) return true;
      return role !== 'ssh-key' && path.dirname(p) === media && !path.basename(p).startsWith('.');
    },
  };
}

/** A string from an untrusted file, fit for a sentence: no control, format or line-break
 *  characters (each shown as "?"), at most 200 characters. */
function printable(text: string): string {
  const clean = text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

/** A path or argument from an untrusted file, fit for a sentence (printable), in quotes when it holds a space. */
export function shown(text: string): string {
  const p = printable(text);
  return /\s/.test(p) ? JSON.stringify(p) : p;
}

/** A name from an untrusted file, printable, in double quotes. */
export function quotedName(text: string): string {
  return `"${printable(text).replace(/"/g, "'")}"`;
}

/** What screening kept and what it dropped. */
export interface Screened {
  readonly config: VmConfig;
  /** One sentence per setting dropped (empty when nothing was). */
  readonly notices: readonly string[];
}

const NOT_TRUSTED = 'is not a file a VM here already uses that way, nor a download in Vivarium\'s media folder';

/**
 * The machine part of an imported config with what this machine does not trust taken out: the
 * kernel (with its initrd and command line) unless every file of it is trusted, each CD drive's ISO
 * unless trusted (the drive stays, empty). `snapshot`: the name of the snapshot whose saved
 * settings `config` is (a revert puts them back), or null for the VM's own config. Shares, extra
 * arguments and the SSH key: screenHostAccess.
 */
export function screenMachine(config: VmConfig, trust: HostFileTrust, snapshot: string | null): Screened {
  const notices: string[] = [];
  const what = snapshot === null ? 'the exported VM' : `snapshot ${quotedName(snapshot)}`;
  let kernel = config.kernel;
  if (kernel) {
    const bad = [
      ...(trust.trusts('kernel', kernel.path) ? [] : [`the kernel ${shown(kernel.path)}`]),
      ...(kernel.initrd !== null && !trust.trusts('initrd', kernel.initrd) ? [`the initrd ${shown(kernel.initrd)}`] : []),
    ];
    if (bad.length > 0) {
      const why = bad.length > 1 ? "are not files a VM here already uses that way, nor downloads in Vivarium's media folder" : NOT_TRUSTED;
      const result = snapshot !== null ? `a revert to ${what} leaves the VM without a kernel` : 'the imported VM has no kernel';
      notices.push(`${cap(bad.join(' and '))} of ${what} ${why}, so ${result}; set one in its settings if you trust the file.`);
      kernel = null;
    }
  }
  const cdroms = config.cdroms.map((cd) => {
    if (cd.path === null || trust.trusts('iso', cd.path)) return cd;
    notices.push(`The ISO ${shown(cd.path)} in CD drive ${cd.id} of ${what} ${NOT_TRUSTED}, so ${snapshot !== null ? `a revert to ${what} leaves that drive empty` : 'that drive is empty'}; insert an ISO you trust.`);
    return { ...cd, path: null };
  });
  return { config: { ...config, kernel, cdroms }, notices };
}

/**
 * An imported VM's host access taken out: shared folders and extra QEMU arguments always (each
 * said), the cloud-init SSH key unless `ownKey` (the key carried in the export, moved into the new
 * folder) or trusted. Port forwards are kept and said.
 */
export function screenHostAccess(config: VmConfig, trust: HostFileTrust, ownKey: string | null): Screened {
  const notices: string[] = [];
  for (const s of config.shares) {
    notices.push(`The shared folder ${shown(s.hostPath)} (tag ${s.tag}) of the exported VM was not taken: an import never gives a guest a folder of this machine. Share one again if you mean to.`);
  }
  if (config.extraArgs.length > 0) {
    notices.push(
      `The extra QEMU arguments of the exported VM (${config.extraArgs.map(shown).join(' ')}) were not taken: they can open files and sockets on this machine. Add them to its config.json yourself if you trust them.`,
    );
  }
  // Kept (loopback only, and what the VM is for), but never unsaid: a program here that connects to
  // such a port reaches the guest.
  const fwd = config.network.mode === 'user' ? config.network.forwards : [];
  if (fwd.length > 0) {
    notices.push(
      `The imported VM forwards ${fwd.map((f) => `${f.protocol} 127.0.0.1:${f.hostPort} → guest ${f.guestPort}`).join(', ')}, as the exported VM did: while it runs, programs on this machine that connect to ${fwd.length === 1 ? 'that port' : 'those ports'} reach its guest. Remove ${fwd.length === 1 ? 'it' : 'them'} in its port forwards if you did not expect ${fwd.length === 1 ? 'it' : 'them'}.`,
    );
  }
  let cloudInit = config.cloudInit;
  if (cloudInit) {
    const key = ownKey ?? cloudInit.identityFile;
    if (key !== null && ownKey === null && !trust.trusts('ssh-key', key)) {
      notices.push(`The SSH key ${shown(key)} of the exported VM is not one a VM here already uses, so it was not taken: ssh uses its own keys and agent for the imported VM.`);
      cloudInit = { ...cloudInit, identityFile: null };
    } else {
      cloudInit = { ...cloudInit, identityFile: key };
    }
  }
  return { config: { ...config, shares: [], extraArgs: [], cloudInit }, notices };
}

/**
 * The sentence for port forwards a snapshot's saved settings hold that the imported VM itself does
 * not (a revert puts them back), or null when there are none.
 */
export function snapshotForwardsNotice(vm: VmConfig, snapshotConfig: VmConfig, snapshot: string): string | null {
  if (snapshotConfig.network.mode !== 'user') return null;
  const now = new Set(vm.network.mode === 'user' ? vm.network.forwards.map((f) => `${f.protocol}:${f.hostPort}:${f.guestPort}`) : []);
  const more = snapshotConfig.network.forwards.filter((f) => !now.has(`${f.protocol}:${f.hostPort}:${f.guestPort}`));
  if (more.length === 0) return null;
  return `A revert to snapshot ${quotedName(snapshot)} makes the VM forward ${more.map((f) => `${f.protocol} 127.0.0.1:${f.hostPort} → guest ${f.guestPort}`).join(', ')} as well (its saved settings hold ${more.length === 1 ? 'that forward' : 'those forwards'}): while it runs, programs on this machine that connect to ${more.length === 1 ? 'that port' : 'those ports'} reach its guest.`;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
