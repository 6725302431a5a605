/**
 * Which other VMs use files inside a VM's folder: a linked clone's backing image, a disk or ISO
 * someone pointed at by path. Deleting (or moving the disks of) that VM would pull the file from
 * under them, so delete refuses while any exist (issue 7: no operation deletes a file another VM
 * uses; issue 10: a linked clone's source cannot be deleted while the clone exists).
 */
import * as path from 'node:path';
import { diskImages, type VmConfig } from '../../common/models/vm-config';

/** One use of a file inside the VM's folder by another VM. */
export interface ImageUse {
  /** The other VM's id and name. */
  readonly vmId: string;
  readonly vmName: string;
  /** The absolute path of the file it uses. */
  readonly file: string;
  /** How, as a phrase: "a backing image of its disk disk0", "its disk disk1", "its CD". */
  readonly as: string;
}

function inside(dir: string, file: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * The uses, by VMs other than `target`, of files inside `targetDir` (the target's bundle folder).
 * `others` are the other VMs' configs with their own bundle folders (a bundle-relative image of
 * another VM is in that VM's folder, so only `{path}` sources can point into the target's). Pure: no
 * file system access.
 */
export function usesOfFilesIn(
  targetId: string,
  targetDir: string,
  others: readonly { readonly config: VmConfig; readonly dir: string }[],
): readonly ImageUse[] {
  const uses: ImageUse[] = [];
  for (const { config } of others) {
    if (config.id === targetId) continue;
    const add = (file: string, as: string) => {
      if (inside(targetDir, file)) uses.push({ vmId: config.id, vmName: config.name, file, as });
    };
    for (const disk of config.disks) {
      diskImages(disk).forEach((layer, depth) => {
        if ('path' in layer.source) add(layer.source.path, depth === 0 ? `its disk ${disk.id}` : `a backing image of its disk ${disk.id}`);
      });
    }
    for (const cd of config.cdroms) if (cd.path) add(cd.path, `its CD (${cd.id})`);
    if (config.kernel) {
      add(config.kernel.path, 'its kernel');
      if (config.kernel.initrd) add(config.kernel.initrd, 'its initrd');
    }
  }
  return uses;
}

/** A sentence for a refused delete, or null when nobody else uses the VM's files. */
export function deleteBlockedBy(targetName: string, uses: readonly ImageUse[]): string | null {
  const first = uses[0];
  if (!first) return null;
  const others = [...new Set(uses.map((u) => u.vmName))];
  const more = others.length > 1 ? ` (and ${others.length - 1} other VM${others.length > 2 ? 's' : ''}: ${others.slice(1).map((n) => `"${n}"`).join(', ')})` : '';
  // Every VM that stands in the way is named in what to do, not only the first.
  const quoted = others.map((n) => `"${n}"`);
  const all = quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} and ${quoted[quoted.length - 1]!}` : quoted[0]!;
  const copy = others.length > 1 ? 'give them their own copies of the files they use' : 'give it its own copy of that file';
  return `"${targetName}" cannot be deleted: "${first.vmName}"${more} uses ${first.file} from its folder as ${first.as}. Delete ${all} first (or ${copy}).`;
}
