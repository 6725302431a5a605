/**
 * Shared folders (issue 11) as QEMU arguments: one `-fsdev local` + `-device virtio-9p-pci` pair per
 * share, the long form of `-virtfs local,path=DIR,mount_tag=TAG,security_model=none,id=fsN[,readonly=on]`
 * (qemu-notes §6; QEMU docs "9p / virtfs"). Works with `-sandbox on,spawn=deny` (no helper
 * process, unlike virtiofsd).
 *
 * `security_model=none` (Lima's default for 9p too), not `mapped-xattr` or `passthrough`: the guest
 * sees the host's owners and modes as they are, and files it writes are ordinary files of the user
 * QEMU runs as (with QEMU as root, chowned to the guest user's uid), so a folder shared with a
 * developer's editor, git and build tools stays theirs on both sides. `mapped-xattr` would keep the
 * guest's owners and modes in `user.virtfs.*` xattrs and create host files 0600 owned by QEMU's
 * user (other host programs see wrong modes; needs xattr support, which tmpfs and some network
 * filesystems lack); `passthrough` fails every write whose chown the unprivileged QEMU cannot do.
 * With `none`, the guest kernel checks permissions against the host's uids, so the guest user gets
 * the host user's uid (common/guest-uid.ts).
 */
import type { SharedFolder } from '../../common/models/sandbox';

/** The arguments for `shares`, in order (ids fs0, fs1, …); a comma in a path is doubled (QemuOpts). Pure. */
export function sharesArgs(shares: readonly SharedFolder[]): string[] {
  return shares.flatMap((s, i) => [
    '-fsdev',
    `local,id=fs${i},path=${s.hostPath.replace(/,/g, ',,')},security_model=none${s.readOnly ? ',readonly=on' : ''}`,
    '-device',
    `virtio-9p-pci,fsdev=fs${i},mount_tag=${s.tag}`,
  ]);
}
