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

/**
 * The fw_cfg file that tells the guest each share's mode, "TAG:ro TAG:rw …" (QEMU docs "QEMU Firmware
 * Configuration (fw_cfg) Device": names a user adds start with `opt/`; Linux shows it at
 * /sys/firmware/qemu_fw_cfg/by_name/<name>/raw with the qemu_fw_cfg module). A 9p device carries only
 * its tag, so without this a share added after the first boot (mounted by the guest's per-boot
 * script, provisioning/cloud-init.ts) would be mounted `rw` even when QEMU refuses its writes.
 */
export const SHARE_MODES_FW_CFG = 'opt/vivarium/shares';

/** "TAG:ro TAG:rw …", the contents of SHARE_MODES_FW_CFG. Tags never hold spaces, commas or colons. Pure. */
export function shareModes(shares: readonly SharedFolder[]): string {
  return shares.map((s) => `${s.tag}:${s.readOnly ? 'ro' : 'rw'}`).join(' ');
}

/**
 * The arguments for `shares`, in order (ids fs0, fs1, …), then the fw_cfg file with their modes; a
 * comma in a path is doubled (QemuOpts). None without shares. Pure.
 */
export function sharesArgs(shares: readonly SharedFolder[]): string[] {
  if (shares.length === 0) return [];
  return [
    ...shares.flatMap((s, i) => [
      '-fsdev',
      `local,id=fs${i},path=${s.hostPath.replace(/,/g, ',,')},security_model=none${s.readOnly ? ',readonly=on' : ''}`,
      '-device',
      `virtio-9p-pci,fsdev=fs${i},mount_tag=${s.tag}`,
    ]),
    '-fw_cfg',
    `name=${SHARE_MODES_FW_CFG},string=${shareModes(shares)}`,
  ];
}
