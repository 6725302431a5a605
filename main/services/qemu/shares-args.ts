/**
 * Shared folders (issue 11) as QEMU arguments: one `-fsdev local` + `-device virtio-9p-pci` pair per
 * share, the long form of `-virtfs local,path=DIR,mount_tag=TAG,security_model=none,id=fsN[,readonly=on]`
 * (qemu-notes §6; QEMU docs "9p / virtfs"). `security_model=none`: files are written with the
 * user's own permissions (no xattr mapping), which is what a developer's folder needs. Works with
 * `-sandbox on,spawn=deny` (no helper process, unlike virtiofsd).
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
