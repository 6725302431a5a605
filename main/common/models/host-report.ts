/** What `vivarium doctor` shows and the UI's host facts panel reads. */
import type { AccelStatus, HostOs, UefiFirmware } from './host';
import type { Arch } from './vm-config';

export interface HostReport {
  readonly os: HostOs;
  readonly hostArch: Arch;
  readonly qemuImg: { readonly path: string | null; readonly ok: boolean };
  readonly binaries: readonly {
    readonly arch: Arch;
    readonly path: string | null;
    readonly version: string | null;
    readonly accels: readonly AccelStatus[];
  }[];
  readonly firmware: readonly ({ readonly arch: Arch } & UefiFirmware)[];
  /** Sentences: what is missing and how to install it. Empty when all is well. */
  readonly problems: readonly string[];
  /** What the first-run guide shows (the UI's "Install QEMU" screen, `vivarium doctor`). */
  readonly setup: HostSetup;
  readonly home: string;
  readonly runtimeDir: string;
}

/** A package manager Vivarium knows the QEMU packages of. */
export type PackageManager = 'brew' | 'apt' | 'dnf' | 'pacman' | 'zypper';

/** The first-run facts: is QEMU there, and if not, how to get it; what stands in the way of the
 *  hardware accelerator. */
export interface HostSetup {
  /** QEMU for the host's own architecture and qemu-img were found and work. */
  readonly qemuFound: boolean;
  /** This OS's package manager: Homebrew on macOS; on Linux from /etc/os-release ID and ID_LIKE
   *  (debian/ubuntu → apt, fedora/rhel/centos → dnf, arch → pacman, suse/opensuse → zypper);
   *  null when unknown (or Windows). */
  readonly packageManager: PackageManager | null;
  /** The exact command that installs what is missing (QEMU, qemu-img, UEFI firmware for the host's
   *  architecture), e.g. `sudo apt install qemu-system-x86 qemu-utils ovmf`; null when nothing is
   *  missing or the package manager is unknown. */
  readonly installCommand: string | null;
  /** VIVARIUM_QEMU_DIR is set, so QEMU was looked for only in that folder, and the folder lacks what
   *  is needed: the first fix is to unset the variable or point it at a folder with qemu-system-*
   *  and qemu-img (installCommand helps only a machine without QEMU at all). Null otherwise. */
  readonly qemuDir: { readonly path: string; readonly exists: boolean; readonly missing: readonly string[] } | null;
  /** /dev/kvm exists but this user may not open it (Linux): the fix, and what it does. */
  readonly kvmPermission: { readonly command: string; readonly explanation: string } | null;
  /** macOS: why HVF is not used, and what to do (Homebrew's QEMU carries the hypervisor
   *  entitlement; a QEMU built or copied by hand does not). Null where HVF works or is not macOS. */
  readonly hvf: { readonly explanation: string } | null;
}

/**
 * The first-run headline when VIVARIUM_QEMU_DIR narrowed the search and the folder lacks QEMU (one
 * sentence pair, shared by `vivarium doctor` and the UI's guide): the install command cannot help
 * there when QEMU is installed elsewhere; unsetting the variable (and restarting Vivarium, since the
 * variable is read at start) or pointing it at the right folder does.
 */
export function qemuDirAdvice(d: NonNullable<HostSetup['qemuDir']>): string {
  const what = d.exists ? `holds no ${d.missing.join(' and no ')}` : 'names a folder that does not exist';
  return (
    `QEMU was looked for only in VIVARIUM_QEMU_DIR=${d.path}, which ${what}. ` +
    'Unset VIVARIUM_QEMU_DIR (then start Vivarium again) to use the QEMU installed on this machine, or point it at a folder with qemu-system-* and qemu-img.'
  );
}
