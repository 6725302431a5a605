/** The `host` service: what this host can run, and the settings a new VM gets here by default. */
import { z } from 'zod';
import type { HostReport } from '../models/host-report';
import { Arch } from '../models/vm-config';
import type { HostDefaults } from '../models/vm-settings';
import { AbsPath, lazyTuples, type ServiceSchema } from './shared';

export const HostDefaultsOptions = z
  .object({
    /** The guest architecture the defaults are for (default: the host's own when it can run it). */
    arch: Arch.optional(),
  })
  .strict();
export type HostDefaultsOptions = z.infer<typeof HostDefaultsOptions>;

/** Which files the file chooser lists besides folders (by extension, case-insensitive):
 *  `iso` CD/DVD images; `disk` disk images and appliances (qcow2, raw, img, vmdk, vdi, vhd, vhdx,
 *  ova, ovf); `images` both; `ssh-key` SSH public keys (.pub, for a sandbox); `any` every file (a
 *  sandbox's password or user-data file, whose names follow no rule); `folder` no files: the
 *  chooser picks a folder itself (a shared folder); `vivarium` Vivarium's VM export files (issue 10
 *  import). */
export const BrowseFilter = z.enum(['iso', 'disk', 'images', 'ssh-key', 'any', 'folder', 'vivarium']);
export type BrowseFilter = z.infer<typeof BrowseFilter>;

/** The file extensions (lower case, without the dot) each filter lists; the desktop app's Open
 *  dialog offers the same. Cloud images come as .qcow2, .img or .raw. `any` lists every file and
 *  `folder` none, whatever their extensions (see FILTER_ALL). */
export const BROWSE_EXTENSIONS: Readonly<Record<BrowseFilter, readonly string[]>> = {
  iso: ['iso'],
  disk: ['qcow2', 'qcow', 'raw', 'img', 'vmdk', 'vdi', 'vhd', 'vhdx', 'ova', 'ovf'],
  images: ['iso', 'qcow2', 'qcow', 'raw', 'img', 'vmdk', 'vdi', 'vhd', 'vhdx', 'ova', 'ovf'],
  'ssh-key': ['pub'],
  any: [],
  folder: [],
  vivarium: ['vivarium'],
};

/** The filters that do not go by extension: `any` lists every file, `folder` lists no file. */
export const FILTER_ALL: Readonly<Partial<Record<BrowseFilter, boolean>>> = { any: true, folder: false };

export const BrowseOptions = z
  .object({
    /** The folder to list (absolute; default: the user's home folder). Must lie inside home. */
    path: AbsPath.optional(),
    /** List names starting with "." too (default false). */
    showHidden: z.boolean().optional(),
    /** Default `images`. */
    filter: BrowseFilter.optional(),
  })
  .strict();
export type BrowseOptions = z.infer<typeof BrowseOptions>;

/** One entry of a folder listing. `path` is absolute; `sizeBytes` is null for folders. */
export interface BrowseEntry {
  readonly name: string;
  readonly path: string;
  readonly kind: 'dir' | 'file';
  readonly sizeBytes: number | null;
}

/** A folder as the file chooser shows it: folders first, then the matching files, each by name. */
export interface BrowseListing {
  /** The folder listed (symbolic links resolved). */
  readonly path: string;
  /** Its parent, or null at the home folder (the chooser goes no higher). */
  readonly parent: string | null;
  /** The home folder the chooser is rooted at. */
  readonly root: string;
  readonly entries: readonly BrowseEntry[];
  /** True when the folder held more matching entries than a listing returns (see MAX_BROWSE_ENTRIES). */
  readonly truncated: boolean;
}

/** The most entries one listing returns. */
export const MAX_BROWSE_ENTRIES = 1000;

export interface HostService {
  /** What this host can run: QEMU binaries, accelerators (and why not), firmware. */
  doctor(): Promise<HostReport>;
  /**
   * What a new VM gets on this host when the user leaves a setting alone (architecture, firmware,
   * CPUs, memory, disk size), and the limits a form should show. The New VM dialog asks this and
   * sends only what the user chose; the engine fills the rest with the same values
   * (`newConfig` in main/common/models/vm-settings.ts).
   */
  defaults(options: HostDefaultsOptions): Promise<HostDefaults>;
  /**
   * The browser UI's file chooser (the desktop app uses the system's dialog): lists a folder inside
   * the user's home folder — its folders and the ISO/disk-image files `filter` names, hidden names
   * only when asked, at most MAX_BROWSE_ENTRIES. Never lists outside home: a path (or a symbolic
   * link) that resolves outside it is refused, and links inside a folder that lead outside are left
   * out. Errors: invalid-argument (outside home, or not a folder; `field` "path"), not-found.
   */
  browse(options: BrowseOptions): Promise<BrowseListing>;
}

export const hostSchema: ServiceSchema<HostService> = {
  methods: lazyTuples({
    doctor: () => z.tuple([]),
    defaults: () => z.tuple([HostDefaultsOptions]),
    browse: () => z.tuple([BrowseOptions]),
  }),
  events: [],
};
