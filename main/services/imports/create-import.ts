/**
 * `create NAME --import FILE [--copy|--attach]`: what the library's create needs from an import.
 *
 *   const imported = spec.import ? await prepareImport(spec, qemuImg) : null;
 *   newConfig(imported?.spec ?? spec, …, { diskPathFormat: imported?.diskPathFormat ?? … })
 *   config = imported ? imported.complete(config) : config;
 *   store.create(config, (dir) => imported?.copies ? imported.materialize(dir, config) : …);
 *
 * Nothing is written before `materialize`, which converts every disk into the staging folder the
 * bundle store gives (so a failed import leaves no VM behind). Settings the person chose win over
 * the appliance's; the appliance's fill in the rest (CPUs, memory, UEFI).
 */
import * as path from 'node:path';
import type { CreateVmSpec } from '../../common/contract';
import { errors } from '../../common/errors';
import type { Disk, DiskFormat, VmConfig } from '../../common/models/vm-config';
import { ImportError, inspectImport, runImport, type FoundImport } from './import';
import { importReporter } from './progress';

export interface PreparedImport {
  /** The spec for newConfig: without `import`; for attach, `diskPath` is the image; for copy, a
   *  system disk in the bundle (its size is the image's). */
  readonly spec: CreateVmSpec;
  /** The format of `spec.diskPath` when attaching. */
  readonly diskPathFormat?: DiskFormat;
  /** Whether `materialize` must write the disks (copy), or they are used in place (attach). */
  readonly copies: boolean;
  readonly found: FoundImport;
  /** The config with the appliance's further disks (data disks disk1, disk2, …) added. */
  complete(config: VmConfig): VmConfig;
  /** Converts every disk to qcow2 into `dir` (the bundle's staging folder), named as `config` says. */
  materialize(dir: string, config: VmConfig, onProgress?: (fraction: number) => void): Promise<void>;
}

/** An invalid-argument error about the import (its sentence says what to change; `data.field` is
 *  "import" for a form). */
function refuse(message: string): never {
  throw errors.invalid(message, { field: 'import' });
}

/** Inspects `spec.import` and plans the create. Throws invalid-argument on the `import` field. */
export async function prepareImport(spec: CreateVmSpec, qemuImg: string): Promise<PreparedImport> {
  const imp = spec.import;
  if (!imp) throw new Error('prepareImport needs spec.import');
  if (spec.diskPath !== undefined || spec.diskSizeBytes !== undefined) {
    refuse('An imported VM gets its disks from the image: leave out the disk image and disk size.');
  }
  let found: FoundImport;
  try {
    found = await inspectImport(imp.path, { qemuImg });
  } catch (e) {
    if (e instanceof ImportError) refuse(e.message);
    throw e;
  }
  if (found.disks.length === 0) refuse(`${imp.path} has no disks to import.`);
  const copies = (imp.mode ?? 'copy') === 'copy';
  if (!copies && !found.attachable) {
    refuse(
      found.kind === 'ova'
        ? `${path.basename(imp.path)} is an OVA archive; its disks cannot be used in place. Import it as a copy.`
        : `${path.basename(imp.path)} is ${found.disks.find((d) => d.source.format !== 'qcow2' && d.source.format !== 'raw')?.source.format} and only qcow2 and raw images can be used in place. Import it as a copy (converted to qcow2).`,
    );
  }
  const first = found.disks[0]!;
  const { import: _omit, ...rest } = spec;
  void _omit;
  const fromAppliance = {
    ...(spec.cpus === undefined && found.cpus !== null ? { cpus: found.cpus } : {}),
    ...(spec.memoryMiB === undefined && found.memoryMiB !== null ? { memoryMiB: found.memoryMiB } : {}),
    // An appliance that asks for UEFI gets it; BIOS is the default where it exists anyway.
    ...(spec.firmware === undefined && found.firmware === 'uefi' ? { firmware: 'uefi' as const } : {}),
  };
  const newSpec: CreateVmSpec = copies
    ? { ...rest, ...fromAppliance, diskSizeBytes: first.virtualSizeBytes }
    : { ...rest, ...fromAppliance, diskPath: first.source.file };
  return {
    spec: newSpec,
    ...(copies ? {} : { diskPathFormat: first.source.format as DiskFormat }),
    copies,
    found,
    complete(config: VmConfig): VmConfig {
      const extra: Disk[] = found.disks.slice(1).map((d, i) => {
        const id = `disk${config.disks.length + i}`;
        return {
          id,
          role: 'data',
          bus: 'virtio',
          source: copies ? { bundle: `${id}.qcow2` } : { path: d.source.file },
          format: copies ? 'qcow2' : (d.source.format as DiskFormat),
          readOnly: false,
          backing: [],
        } as Disk;
      });
      return extra.length === 0 ? config : { ...config, disks: [...config.disks, ...extra] };
    },
    async materialize(dir: string, config: VmConfig, onProgress?: (fraction: number) => void): Promise<void> {
      const names = config.disks.map((d) => ('bundle' in d.source ? d.source.bundle : null));
      // Shown by front ends as media.onDidImportProgress.
      const report = importReporter(imp.path);
      try {
        await runImport(imp.path, {
          mode: 'copy',
          destDir: dir,
          qemuImg,
          diskFileName: (i) => names[i] ?? `disk${i}.qcow2`,
          onProgress: (p) => {
            report(p);
            onProgress?.(p.fraction);
          },
        });
      } catch (e) {
        if (e instanceof ImportError) refuse(e.message);
        throw e;
      }
    },
  };
}
