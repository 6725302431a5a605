/**
 * The `media` service: the OS catalog, verified resumable downloads into `<library>/media/`, and the
 * list of what is there. Implemented by main/services/media/media-service.ts.
 *
 * A download is identified by an id derived from its URL (the same URL always gives the same id), so
 * asking for the same URL or catalog entry again joins a running download or resumes a partial one.
 */
import { z } from 'zod';
import type { Event, ServiceSchema } from './index';
import { AbsPath, lazySchema, lazyTuples } from './shared';

// ---- the catalog -----------------------------------------------------------------------------------

/** Lower-case hex digests. */
export const Sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'a SHA-256 checksum is 64 hexadecimal digits')
  .transform((s) => s.toLowerCase());
export const Sha512Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{128}$/, 'a SHA-512 checksum is 128 hexadecimal digits')
  .transform((s) => s.toLowerCase());

export const ChecksumAlgorithm = z.enum(['sha256', 'sha512']);
export type ChecksumAlgorithm = z.infer<typeof ChecksumAlgorithm>;

/** Only plain web downloads: no file:, ftp:, data: or credentials in the URL. */
export const DownloadUrl = z
  .string()
  .max(2048)
  .superRefine((u, ctx) => {
    const problem = downloadUrlProblem(u);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: `must be an http:// or https:// URL: ${problem}` });
  });

/**
 * Why `u` cannot be downloaded from, as a clause ("its port must be 1–65535"), or null when it can:
 * an http:// or https:// URL (WHATWG URL syntax) with a host and without a user name or password
 * (credentials in a URL end up in logs and in the download's state file).
 */
export function downloadUrlProblem(u: string): string | null {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(u)?.[1]?.toLowerCase();
  if (scheme === undefined) return `"${u}" is not a URL (it needs http:// or https:// in front)`;
  if (scheme !== 'http' && scheme !== 'https') return `only http:// and https:// addresses can be downloaded, not ${scheme}:`;
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    const port = /^[a-z]+:\/\/[^/?#]*:(\d+)(?:[/?#]|$)/i.exec(u)?.[1];
    if (port !== undefined && Number(port) > 65535) return `its port (${port}) must be 1–65535`;
    return /^[a-z]+:\/\/(?:[/?#]|$)/i.test(u) ? 'it names no host' : `"${u}" is not a valid URL (check the host name and the port)`;
  }
  if (url.hostname === '') return 'it names no host';
  if (url.username !== '' || url.password !== '') return 'it must not hold a user name or password';
  return null;
}

/** A file name in `resources/keys/` (an OpenPGP keyring Vivarium ships). */
const KeyringFile = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/);
/** Primary-key fingerprints a signature must come from (40 hex digits, as `gpg --fingerprint` prints
 *  them without spaces). */
const Fingerprints = z.array(z.string().regex(/^[0-9A-Fa-f]{40}$/, 'a key fingerprint is 40 hexadecimal digits')).max(16).default([]);

/**
 * How a catalog entry's SUMS file is signed. A download checks a detached or clear-signed SUMS file's
 * signature against `keyring` (shipped in resources/keys/) narrowed to `fingerprints`, and refuses a
 * bad one (main/services/media/signature.ts); without `keyring` (Vivarium ships no copy of that
 * distro's key) the signature is not checked and the download says so; `fingerprints` still records
 * the key expected, for a person checking with `gpg --verify`.
 */
export const SumsSignature = lazySchema(() =>
  z.discriminatedUnion('kind', [
    /** A detached OpenPGP signature of the SUMS file at `url` (Debian's SHA512SUMS.sign, Ubuntu's SHA256SUMS.gpg, Alpine's .asc). */
    z.object({ kind: z.literal('detached'), url: DownloadUrl, keysUrl: DownloadUrl, keyring: KeyringFile.optional(), fingerprints: Fingerprints }).strict(),
    /** The SUMS file itself is an OpenPGP clear-signed message (Fedora's CHECKSUM files). */
    z.object({ kind: z.literal('clearsigned'), keysUrl: DownloadUrl, keyring: KeyringFile.optional(), fingerprints: Fingerprints }).strict(),
    /** A detached signature of the image itself, not of the SUMS file (Arch's .iso.sig). */
    z.object({ kind: z.literal('image-detached'), url: DownloadUrl, keysUrl: DownloadUrl }).strict(),
    /** No signature is published; the SUMS file is trusted because it comes over HTTPS from the
     *  distro's own server (Debian's and Ubuntu's cloud image folders). */
    z.object({ kind: z.literal('none'), note: z.string().max(300) }).strict(),
  ]),
);
export type SumsSignature = z.infer<typeof SumsSignature>;

/** Hardware a guest of this OS wants; the New VM wizard's preset starts from these. */
export const PresetHints = lazySchema(() =>
  z
    .object({
      preset: z.enum(['debian', 'ubuntu', 'fedora', 'alpine', 'arch', 'linux', 'windows11', 'windows10', 'other']),
      minMemoryMiB: z.number().int().min(64),
      recommendedMemoryMiB: z.number().int().min(64),
      recommendedDiskGiB: z.number().int().min(1),
      recommendedCpus: z.number().int().min(1),
      firmware: z.enum(['bios', 'uefi']),
      diskBus: z.enum(['virtio', 'sata', 'nvme']),
      nic: z.enum(['virtio-net-pci', 'e1000e']),
    })
    .strict(),
);
export type PresetHints = z.infer<typeof PresetHints>;

/** One downloadable OS image. `sizeBytes` is the published size, rounded (for display and free-space
 *  checks); the server's Content-Length is what a download trusts. */
export const CatalogEntry = lazySchema(() =>
  z
    .object({
      /** Stable, e.g. "debian-13-netinst-x86_64". */
      id: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,63}$/),
      name: z.string().min(1).max(100),
      version: z.string().min(1).max(40),
      arch: z.enum(['x86_64', 'aarch64']),
      /** `installer`: an ISO to boot and install from; `cloud`: a ready disk image for cloud-init. */
      kind: z.enum(['installer', 'cloud']),
      url: DownloadUrl,
      /** The distro's SUMS file listing `url`'s file name. */
      checksumUrl: DownloadUrl,
      checksumAlgorithm: ChecksumAlgorithm,
      signature: SumsSignature,
      sizeBytes: z.number().int().positive(),
      /** Image format of the file: an installer is `iso` (raw), a cloud image usually `qcow2`. */
      format: z.enum(['iso', 'qcow2', 'raw']),
      presetHints: PresetHints,
      /** The distro's page that documents this download. */
      homepage: DownloadUrl,
    })
    .strict(),
);
export type CatalogEntry = z.infer<typeof CatalogEntry>;

export const Catalog = lazySchema(() =>
  z
    .object({ version: z.literal(1), entries: z.array(CatalogEntry).min(1) })
    .strict()
    .refine((c) => new Set(c.entries.map((e) => e.id)).size === c.entries.length, 'catalog ids must be unique'),
);
export type Catalog = z.infer<typeof Catalog>;

export const CatalogQuery = z
  .object({ arch: z.enum(['x86_64', 'aarch64']).optional(), kind: z.enum(['installer', 'cloud']).optional() })
  .strict();
export type CatalogQuery = z.infer<typeof CatalogQuery>;

// ---- downloads -------------------------------------------------------------------------------------

/** What to download and how to verify it. Without a checksum, `source` must be a catalog id (whose
 *  SUMS file is used) or `sumsUrl` must be given: nothing unverified is ever handed out. */
export const DownloadRequest = lazySchema(() =>
  z
    .object({
      /** A catalog id or an http(s) URL. */
      source: z.string().min(1).max(2048),
      sha256: Sha256Hex.optional(),
      sha512: Sha512Hex.optional(),
      /** A SUMS file (GNU `sha256sum` or BSD `SHA256 (file) = …` format) that lists the file. */
      sumsUrl: DownloadUrl.optional(),
    })
    .strict()
    .refine((r) => [r.sha256, r.sha512, r.sumsUrl].filter((x) => x !== undefined).length <= 1, 'give one of sha256, sha512 or sumsUrl, not several'),
);
export type DownloadRequest = z.infer<typeof DownloadRequest>;

/** A download id: 16 hex digits (from the URL). */
export const DownloadId = z.string().regex(/^[0-9a-f]{16}$/, 'a download id is 16 hexadecimal digits (see `vivarium media status`)');

export type DownloadState =
  /** Connecting or receiving bytes. */
  | 'downloading'
  /** All bytes are in; the checksum is being compared. */
  | 'verifying'
  /** Verified and moved to `path`. */
  | 'done'
  /** Stopped (cancelled, or the connection failed too often); the partial file is kept for a resume. */
  | 'paused'
  /** Ended for good (wrong checksum, file not found on the server); nothing is left on disk. */
  | 'failed';

export interface DownloadInfo {
  readonly id: string;
  /** What was asked for: a catalog id or the URL. */
  readonly source: string;
  readonly url: string;
  /** The file's name in `<library>/media/`. */
  readonly name: string;
  /** Where the verified file is (or will be). */
  readonly path: string;
  readonly state: DownloadState;
  readonly receivedBytes: number;
  /** From the server's Content-Length/Content-Range; null until known. */
  readonly totalBytes: number | null;
  /** Average over the last few seconds; 0 when not downloading. */
  readonly bytesPerSecond: number;
  /** Estimated from the rate; null when unknown. */
  readonly secondsLeft: number | null;
  /** How it will be verified: the algorithm and where the expected digest comes from. */
  readonly checksum: { readonly algorithm: ChecksumAlgorithm; readonly from: string };
  /** Why it is paused or failed, in a sentence that says what to do. */
  readonly error: string | null;
}

/** A verified file in `<library>/media/`. */
export interface MediaItem {
  readonly path: string;
  readonly name: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  /** Where it came from: the URL (and catalog id, when it came from the catalog). */
  readonly source: string;
  readonly catalogId: string | null;
  /** ISO 8601. */
  readonly downloadedAt: string;
}

/** What an image or appliance to import holds (nothing is written to look). */
export interface ImportSummary {
  readonly path: string;
  readonly kind: 'disk' | 'ova' | 'ovf';
  /** From the OVF, else the file's name without its extension. */
  readonly name: string;
  readonly cpus: number | null;
  readonly memoryMiB: number | null;
  readonly firmware: 'uefi' | 'bios' | null;
  /** Boot disk first. `format` is decided from the file's magic bytes (qcow2, raw, vmdk, vdi, vhdx, vpc). */
  readonly disks: readonly { readonly label: string; readonly format: string; readonly virtualSizeBytes: number }[];
  /** Whether the disks can be used in place (qcow2/raw files) instead of converted copies. */
  readonly attachable: boolean;
}

/** How far an import's conversion has come (`vms.create` with `import`). */
export interface ImportProgress {
  /** The image or appliance being imported. */
  readonly path: string;
  /** 0..1 over all its disks. */
  readonly fraction: number;
  /** The disk being converted (0-based) and how many there are. */
  readonly disk: number;
  readonly disks: number;
}

export interface MediaService {
  /** The OS catalog (resources/catalog), optionally filtered. */
  catalog(query: CatalogQuery): Promise<readonly CatalogEntry[]>;
  /** Verified files in `<library>/media/`, newest first. */
  list(): Promise<readonly MediaItem[]>;
  /** Downloads running in this engine and partial ones left on disk. */
  downloads(): Promise<readonly DownloadInfo[]>;
  /**
   * Starts a download (or joins the running one for the same URL, or resumes its partial file) and
   * returns at once; follow it with `onDidProgress` and `wait`. An already verified file returns
   * `state: "done"`. Errors: invalid-argument (unknown catalog id, no checksum), busy (another process
   * is downloading it).
   */
  download(request: DownloadRequest): Promise<DownloadInfo>;
  /** Resolves with the verified file once download `id` is done; rejects with the reason when it is
   *  paused or fails. */
  wait(id: string): Promise<MediaItem>;
  /** Stops a running download, keeping the partial file (state `paused`); `download` or `resume` go on. */
  cancel(id: string): Promise<DownloadInfo>;
  /** Continues a paused download where it stopped. */
  resume(id: string): Promise<DownloadInfo>;
  /** Stops a download if it runs and deletes its partial file. */
  discard(id: string): Promise<void>;
  /** Deletes a verified file of `<library>/media/` (given by its path). Errors: not-found (not a file
   *  Vivarium downloaded), invalid-state (a VM's settings name it; the message names the VM). */
  remove(path: string): Promise<void>;
  /**
   * Looks inside a disk image (qcow2, raw, vmdk, vdi, vhdx, vhd) or appliance (OVA, OVF) a VM could be
   * created from. Errors: invalid-argument with a sentence when it is not an image, or is unsafe
   * (a backing file, an external data file, disks outside the appliance).
   */
  inspectImport(path: string): Promise<ImportSummary>;
  /** Progress of every download (several times a second while bytes flow, and on each state change). */
  onDidProgress: Event<DownloadInfo>;
  /** Progress of imports being converted by `vms.create` (a few times a second, and at the end). */
  onDidImportProgress: Event<ImportProgress>;
}

export const mediaContract: ServiceSchema<MediaService> = {
  methods: lazyTuples({
    catalog: () => z.tuple([CatalogQuery]),
    list: () => z.tuple([]),
    downloads: () => z.tuple([]),
    download: () => z.tuple([DownloadRequest]),
    wait: () => z.tuple([DownloadId]),
    cancel: () => z.tuple([DownloadId]),
    resume: () => z.tuple([DownloadId]),
    discard: () => z.tuple([DownloadId]),
    inspectImport: () => z.tuple([AbsPath]),
    remove: () => z.tuple([AbsPath]),
  }),
  events: ['onDidProgress', 'onDidImportProgress'],
};
