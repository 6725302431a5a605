/**
 * qemu-img for imports: `info` and `convert` on untrusted images. The image is always named as a
 * `json:` blockdev description with its driver (format) given explicitly and, for formats that can
 * have one, `"backing": null`, so no header can make QEMU probe the format or open another file
 * (QEMU docs: "qemu-img convert … json:{…}", qapi/block-core.json BlockdevOptions).
 */
import { spawnTied } from '../qemu/tied-child';
import type { ImageFormat } from './formats';

/** Where the image's bytes are: a whole file, or a slice of one (a disk inside an OVA). */
export interface ImageSource {
  readonly file: string;
  readonly format: ImageFormat;
  /** A raw slice of `file`: the member of a tar archive. */
  readonly slice?: { readonly offset: number; readonly size: number };
}

/** The blockdev description (for `json:`) of an image source. */
export function blockdevJson(src: ImageSource): Record<string, unknown> {
  const fileNode: Record<string, unknown> = { driver: 'file', filename: src.file };
  const proto = src.slice ? { driver: 'raw', offset: src.slice.offset, size: src.slice.size, file: fileNode } : fileNode;
  const node: Record<string, unknown> = { driver: src.format, file: proto };
  // Formats with a backing chain get none: a header that names a backing file is ignored (and refused by probe).
  if (src.format === 'qcow2' || src.format === 'vmdk') node.backing = null;
  // The VMDK driver reads a descriptor's extents itself; `json:` keeps them relative to nothing we trust.
  return node;
}

export function jsonFilename(src: ImageSource): string {
  return `json:${JSON.stringify(blockdevJson(src))}`;
}

export interface ProbedImage {
  readonly format: string;
  readonly virtualSizeBytes: number;
  /** A backing file the header names (never followed), or null. */
  readonly backingFilename: string | null;
  /** qcow2: an external data file the header names, or null. */
  readonly dataFile: string | null;
  /** qcow2: QEMU marked it corrupt. */
  readonly corrupt: boolean;
  /** vmdk: createType (streamOptimized, monolithicSparse, …). */
  readonly vmdkCreateType: string | null;
  /** vmdk: the files its extents live in. */
  readonly vmdkExtentFiles: readonly string[];
  readonly encrypted: boolean;
}

interface RunOutput {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(qemuImg: string, args: readonly string[], opts: { signal?: AbortSignal; onStdout?: (chunk: string) => void } = {}): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    const child = spawnTied(qemuImg, args, { signal: opts.signal }); // dies with Vivarium (qemu/tied-child.ts)
    child.stdin.end();
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      if (opts.onStdout) opts.onStdout(d);
      else if (stdout.length < 16 * 1024 * 1024) stdout += d;
    });
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    child.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error(`qemu-img was not found (${qemuImg}). Install QEMU (Debian/Ubuntu: qemu-utils; macOS: brew install qemu).`));
      else reject(e);
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function reason(stderr: string): string {
  const line = stderr.trim().split('\n').filter(Boolean).pop() ?? 'no reason given';
  return line.replace(/^qemu-img: /, '');
}

/** Formats as people name them. */
const FORMAT_WORDS: Readonly<Record<string, string>> = { qcow2: 'qcow2', raw: 'raw', vmdk: 'VMDK', vdi: 'VDI', vhdx: 'VHDX', vpc: 'VHD' };

/** qemu-img's reason without the blockdev JSON and file names it wraps it in ("Could not open
 *  'json:{…}': Could not open '/x.vhdx': Invalid argument" → "Invalid argument"). */
export function plainReason(stderr: string): string {
  return reason(stderr).replace(/Could not open '(?:[^']|'(?!: ))*': /g, '').trim() || 'no reason given';
}

/**
 * `qemu-img info --output=json` on the source, format given (the format its first bytes showed).
 * @throws Error "looks like a VHDX image but is damaged or incomplete (qemu-img: …)" when qemu-img
 *   cannot read it: a sentence to follow the file's name
 */
export async function probeImage(qemuImg: string, src: ImageSource): Promise<ProbedImage> {
  const r = await run(qemuImg, ['info', '--output=json', jsonFilename(src)]);
  if (r.code !== 0) throw new Error(`looks like a ${FORMAT_WORDS[src.format] ?? src.format} image but is damaged or incomplete (qemu-img: ${plainReason(r.stderr)})`);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  const spec = (j['format-specific'] as { type?: string; data?: Record<string, unknown> } | undefined)?.data ?? {};
  const extents = Array.isArray(spec.extents) ? (spec.extents as { filename?: unknown }[]) : [];
  return {
    format: String(j.format),
    virtualSizeBytes: Number(j['virtual-size']),
    backingFilename: typeof j['backing-filename'] === 'string' ? j['backing-filename'] : null,
    dataFile: typeof spec['data-file'] === 'string' ? spec['data-file'] : null,
    corrupt: spec.corrupt === true,
    vmdkCreateType: typeof spec['create-type'] === 'string' ? spec['create-type'] : null,
    vmdkExtentFiles: extents.map((e) => (typeof e.filename === 'string' ? e.filename : '')),
    encrypted: j.encrypted === true,
  };
}

/**
 * `qemu-img convert -p -f <fmt> -O qcow2 <src> <dest>`, reporting progress (0..1) from `-p`'s
 * `(NN.NN/100%)` lines (qemu-img writes them even when stdout is not a terminal). Aborting the
 * signal kills qemu-img; the caller removes `dest`.
 */
export async function convertToQcow2(
  qemuImg: string,
  src: ImageSource,
  dest: string,
  opts: { signal?: AbortSignal; onProgress?: (fraction: number) => void } = {},
): Promise<void> {
  let buf = '';
  const r = await run(qemuImg, ['convert', '-p', '-O', 'qcow2', jsonFilename(src), dest], {
    signal: opts.signal,
    onStdout: (d) => {
      buf += d;
      const matches = [...buf.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
      if (matches.length > 0) {
        opts.onProgress?.(Math.min(1, Number(matches[matches.length - 1]![1]) / 100));
        buf = buf.slice(matches[matches.length - 1]!.index! + matches[matches.length - 1]![0].length);
      }
      if (buf.length > 4096) buf = buf.slice(-256);
    },
  }).catch((e: unknown) => {
    if (opts.signal?.aborted) throw new Error('the import was cancelled');
    throw e;
  });
  if (opts.signal?.aborted) throw new Error('the import was cancelled');
  if (r.code !== 0) throw new Error(`qemu-img convert failed: ${reason(r.stderr)}`);
  opts.onProgress?.(1);
}
