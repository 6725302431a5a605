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
  /** /dev/kvm exists but this user may not open it (Linux): the fix, and what it does. */
  readonly kvmPermission: { readonly command: string; readonly explanation: string } | null;
  /** macOS: why HVF is not used, and what to do (Homebrew's QEMU carries the hypervisor
   *  entitlement; a QEMU built or copied by hand does not). Null where HVF works or is not macOS. */
  readonly hvf: { readonly explanation: string } | null;
}
