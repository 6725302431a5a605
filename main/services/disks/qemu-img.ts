/** qemu-img, run without a shell. Every failure becomes a sentence with qemu-img's own reason. */
import { execFile } from 'node:child_process';
import { errors, VivariumError, ErrorCode } from '../../common/errors';
import type { DiskFormat } from '../../common/models/vm-config';
import { expectedFsError } from '../paths';

/** What `qemu-img info --output=json` says about one image (its header only: no backing file is
 *  opened). Sizes in bytes. */
export interface ImageInfo {
  /** The format qemu-img opened it as: the one given, or the probed one when none was given. */
  readonly format: string;
  readonly virtualSize: number;
  readonly actualSize: number | null;
  /** The backing file named in the header, as written there (may be relative), or null. */
  readonly backingFilename: string | null;
  /** The same resolved against the image's folder (qemu-img's `full-backing-filename`), or null. */
  readonly fullBackingFilename: string | null;
  /** The backing format named in the header, or null. */
  readonly backingFormat: string | null;
  /** qcow2 only: QEMU marked the image corrupt after a failed consistency check (it then refuses
   *  to open it writable). null for formats without the flag. */
  readonly corrupt: boolean | null;
  /** qcow2 only: the external data file its header names (`data_file`), or null. QEMU opens it from
   *  the header whatever the command line says of backing files. */
  readonly dataFile: string | null;
}

/** The outcome of a qemu-img run that is allowed to fail: its stderr's last line, without the
 *  `qemu-img: ` prefix, says why. */
export type RunResult = { readonly ok: true; readonly stdout: string } | { readonly ok: false; readonly reason: string };

function runResult(qemuImg: string, args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(qemuImg, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const why = (stderr || err.message).trim().split('\n').pop() ?? err.message;
        resolve({ ok: false, reason: why.replace(/^qemu-img: /, '') });
        return;
      }
      resolve({ ok: true, stdout });
    });
  });
}

async function run(qemuImg: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const r = await runResult(qemuImg, args, timeoutMs);
  if (!r.ok) {
    // A full disk is an expected error (issue 8), said like every other writer says it; the file
    // qemu-img writes is its last path argument (create FILE SIZE, convert IN OUT).
    const full = /No space left on device|Disk quota exceeded/i.exec(r.reason);
    const target = [...args].reverse().find((a) => a.startsWith('/')) ?? '';
    if (full) throw expectedFsError(Object.assign(new Error(r.reason), { code: /quota/i.test(full[0]) ? 'EDQUOT' : 'ENOSPC' }), target);
    throw errors.qemu(`qemu-img ${args[0]} failed: ${r.reason}`);
  }
  return r.stdout;
}

/** Turns qemu-img's JSON into ImageInfo. Throws (a bug, not a user error) on a shape qemu-img never
 *  prints. */
export function parseImageInfo(json: string): ImageInfo {
  const j = JSON.parse(json) as Record<string, unknown>;
  if (typeof j.format !== 'string' || typeof j['virtual-size'] !== 'number') throw new Error(`unexpected qemu-img info output: ${json.slice(0, 200)}`);
  const specific = j['format-specific'] as { type?: unknown; data?: { corrupt?: unknown; 'data-file'?: unknown } } | undefined;
  const str = (k: string) => (typeof j[k] === 'string' ? (j[k] as string) : null);
  return {
    format: j.format,
    virtualSize: j['virtual-size'],
    actualSize: typeof j['actual-size'] === 'number' ? j['actual-size'] : null,
    backingFilename: str('backing-filename'),
    fullBackingFilename: str('full-backing-filename'),
    backingFormat: str('backing-filename-format'),
    corrupt: specific?.type === 'qcow2' ? specific.data?.corrupt === true : null,
    dataFile: specific?.type === 'qcow2' && typeof specific.data?.['data-file'] === 'string' ? specific.data['data-file'] : null,
  };
}

export interface InfoOptions {
  /** Open the image as this format (`-f`). Without it qemu-img probes the header, which is only safe
   *  for images the guest cannot write (a guest can write any header into a raw disk). */
  readonly format?: DiskFormat;
  /** Take no lock (`-U`), so it works while a VM holds the image. Default true. With false, an
   *  image another process holds for writing makes the call fail (`Failed to get shared "write"
   *  lock`). */
  readonly shareLock?: boolean;
}

export class QemuImg {
  constructor(private readonly binary: string | null) {}

  private bin(): string {
    if (!this.binary) {
      throw new VivariumError(
        ErrorCode.QemuMissing,
        'qemu-img was not found. Install QEMU and check what this host can run (the doctor) before trying again.',
        undefined,
        { remedy: { kind: 'check-host' } },
      );
    }
    return this.binary;
  }

  async createQcow2(file: string, sizeBytes: number): Promise<void> {
    await run(this.bin(), ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', file, String(sizeBytes)]);
  }

  async convert(from: string, fromFormat: string, to: string, toFormat: string): Promise<void> {
    await run(this.bin(), ['convert', '-q', '-f', fromFormat, '-O', toFormat, from, to]);
  }

  /** `qemu-img info --output=json` of one image; throws a qemu-failed error with qemu-img's reason. */
  async info(file: string, options: InfoOptions = {}): Promise<ImageInfo> {
    const r = await this.tryInfo(file, options);
    if (!r.ok) throw errors.qemu(`qemu-img info failed: ${r.reason}`);
    return r.info;
  }

  /** Like info(), but a failure is returned with qemu-img's reason so the caller can word it. */
  async tryInfo(file: string, options: InfoOptions = {}): Promise<{ readonly ok: true; readonly info: ImageInfo } | { readonly ok: false; readonly reason: string }> {
    const args = ['info', ...(options.shareLock === false ? [] : ['-U']), ...(options.format ? ['-f', options.format] : []), '--output=json', file];
    const r = await runResult(this.bin(), args, 30_000);
    return r.ok ? { ok: true, info: parseImageInfo(r.stdout) } : r;
  }
}
