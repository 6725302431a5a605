/**
 * Which uid a sandbox's guest user gets, and how a 9p share is mounted by hand: facts both the engine
 * (the cloud-init seed, provisioning/cloud-init.ts) and the front ends (`share add`'s notes) use, so
 * they live in common/.
 *
 * Why the uid matters: 9p with `security_model=none` (qemu/shares-args.ts) shows the host's file
 * owners as they are and the guest kernel checks permissions against them, so a read-write share is
 * writable by the guest user only where its uid may write on the host. Lima does the same: its
 * cloud-config creates the guest user with the host user's uid.
 */

/** The uid the guest user gets when the host gives none that fits (useradd's first normal uid). */
export const DEFAULT_GUEST_UID = 1000;

/**
 * The guest user's uid for a host user's uid: a normal uid (500–59999: macOS gives people 501 on,
 * Debian's adduser.conf FIRST_UID 1000 to LAST_UID 59999) is kept, so files the host user owns are
 * the guest user's; root (0), system uids below 500, nobody (65534) and anything else give null (the
 * guest's default, `DEFAULT_GUEST_UID`). So when Vivarium runs as root, a share owned by another uid
 * is read-only to the guest user (writes need sudo in the guest).
 */
export function guestUidFor(hostUid: number | null | undefined): number | null {
  if (hostUid == null || !Number.isInteger(hostUid)) return null;
  return hostUid >= 500 && hostUid <= 59999 ? hostUid : null;
}

/** The 9p options for `mount -o` (qemu-notes §6), read-only shares mounted `ro`. */
export function ninePMountCommandOptions(readOnly: boolean): string {
  return `trans=virtio,version=9p2000.L,msize=131072,cache=mmap${readOnly ? ',ro' : ''}`;
}

/** The same for fstab/cloud-init's mounts, with `nofail` (a missing share must not stop a boot). */
export function ninePMountOptions(readOnly: boolean): string {
  return `${ninePMountCommandOptions(readOnly)},nofail`;
}

/** The command to mount a share by hand at /mnt/<tag> in a guest without cloud-init (shown to the user). */
export function ninePMountCommand(share: { readonly tag: string; readonly readOnly: boolean }): string {
  const mp = `/mnt/${share.tag}`;
  return `sudo mkdir -p ${mp} && sudo mount -t 9p -o ${ninePMountCommandOptions(share.readOnly)} ${share.tag} ${mp}`;
}
