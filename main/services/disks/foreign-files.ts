/**
 * Whether a file someone asks to attach as a writable disk (create --disk, disk add FILE, an import
 * attached in place) is already another VM's in a way that writing it would corrupt that VM:
 *  - a file inside the library's VM folders (a bundle's disk, a linked clone's frozen base, UEFI
 *    variables…), which Vivarium manages and another VM must never write;
 *  - a base image another VM's disk stands on (a backing layer, wherever it is): a write under a
 *    qcow2 overlay changes what the overlay's guest reads, silently.
 * Another VM's top-level disk outside the library is not refused here: QEMU's image lock keeps two
 * running VMs off one image, and create says so as a notice (vm-service.ts sharingDisks).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { errors, type VivariumError } from '../../common/errors';
import { diskImages, type VmConfig } from '../../common/models/vm-config';
import type { BundleEntry } from '../bundles/bundle-store';

async function real(p: string): Promise<string> {
  return fsp.realpath(p).catch(() => path.resolve(p));
}

function inside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * The refusal for attaching `file` writable, or null when no other VM would be harmed.
 * `bundlesDir`: the library's VM folder (Layout.bundlesDir); `vms`: the library's bundles. `self`: the
 * VM being changed (disk add), whose own folder may hold a disk file it no longer uses (a revert
 * detached it) but not one of its disks' images. Symbolic links are followed (a link to a bundle file is that file).
 * @returns a VivariumError invalid-argument for `field` (the setting that named the file), to throw.
 */
export async function foreignDiskRefusal(
  file: string,
  field: 'diskPath' | 'import',
  bundlesDir: string,
  vms: readonly BundleEntry[],
  self?: { readonly id: string; readonly config: VmConfig },
): Promise<VivariumError | null> {
  const target = await real(file);
  const library = await real(bundlesDir);
  const own = vms.find((vm) => vm.id === self?.id);
  if (self && own && inside(await real(own.dir), target)) {
    // The VM's own folder: a disk file it no longer uses (detached by a revert) may come back; an
    // image its disks use (a base under its overlay) may not.
    for (const disk of self.config.disks) {
      for (const layer of diskImages(disk)) {
        const f = 'path' in layer.source ? layer.source.path : path.join(own.dir, layer.source.bundle);
        if ((await real(f)) === target) {
          return errors.invalid(`${file} is already an image of the disk ${disk.id} of "${self.config.name}"; it cannot be attached twice.`, undefined, { field, remedy: { kind: 'change-setting', field: 'diskPath' } });
        }
      }
    }
    return null;
  }
  const details = { field, remedy: { kind: 'change-setting', field: 'diskPath' } } as const;
  if (inside(library, target)) {
    let owner: BundleEntry | undefined;
    for (const vm of vms) if (inside(await real(vm.dir), target)) owner = vm;
    const name = owner ? (owner.ok ? owner.config.name : owner.name) : null;
    const whose = owner ? `the folder of the VM "${name ?? owner.id}"` : "a VM's folder";
    const copy = name !== null ? ` For a VM with a copy of its disk, clone "${name}".` : '';
    return errors.invalid(
      `${file} is inside Vivarium's library (${whose}), where Vivarium keeps that VM's disks and the base images its disks and clones stand on; writing it from another VM would corrupt them.${copy}`,
      undefined,
      details,
    );
  }
  for (const vm of vms) {
    if (!vm.ok) continue;
    for (const disk of vm.config.disks) {
      const layers = diskImages(disk);
      for (let depth = 1; depth < layers.length; depth++) {
        const source = layers[depth]!.source;
        if (!('path' in source) || (await real(source.path)) !== target) continue;
        return errors.invalid(
          `${file} is the base image that the disk ${disk.id} of "${vm.config.name}" stands on (an overlay keeps only its changes); writing it would change what that VM reads and corrupt it. Attach a copy of the file instead.`,
          undefined,
          details,
        );
      }
    }
  }
  return null;
}

/**
 * The refusal for using `file` as a read-only base under a new overlay (a cloud image), or null:
 * refused when some VM writes the file — it is the top image of a writable disk, given by path or
 * in that VM's folder — because the overlay would then see that VM's writes and its guest would
 * read a corrupted disk. A frozen base (a linked clone's, a cloud image's) may be shared.
 * @returns a VivariumError invalid-argument for `field`, to throw.
 */
export async function sharedBaseRefusal(file: string, field: string, vms: readonly BundleEntry[]): Promise<VivariumError | null> {
  const target = await real(file);
  for (const vm of vms) {
    if (!vm.ok) continue;
    for (const disk of vm.config.disks) {
      if (disk.readOnly) continue;
      const top = 'path' in disk.source ? disk.source.path : path.join(vm.dir, disk.source.bundle);
      if ((await real(top)) !== target) continue;
      return errors.invalid(
        `${file} is the disk ${disk.id} of "${vm.config.name}", which writes it; a VM standing on it would read a disk that changes under it and see it corrupted. Give a copy of the image instead (or clone "${vm.config.name}").`,
        undefined,
        { field },
      );
    }
  }
  return null;
}

/**
 * Start's re-check of create's rule (issue 7: files change between create and start): a writable
 * disk given by path must not be another VM's file or a base some VM stands on. `entries()` lists
 * the library; it is called only when the VM has such a disk (most have none).
 * @throws VivariumError invalid-state `"NAME" cannot start: …`, naming the other VM.
 */
export async function assertNoForeignDisks(config: VmConfig, bundlesDir: string, entries: () => Promise<readonly BundleEntry[]>): Promise<void> {
  const inPlace = config.disks.filter((d) => !d.readOnly && 'path' in d.source);
  if (inPlace.length === 0) return;
  const vms = await entries();
  for (const disk of inPlace) {
    if (!('path' in disk.source)) continue;
    const refusal = await foreignDiskRefusal(disk.source.path, 'diskPath', bundlesDir, vms, { id: config.id, config: { ...config, disks: config.disks.filter((d) => d !== disk) } });
    if (refusal) {
      throw errors.state(`"${config.name}" cannot start: ${refusal.message} Remove the disk ${disk.id} from "${config.name}" and attach a copy of the file instead.`, { disk: disk.id });
    }
  }
}
