/** qemu-img, run without a shell. Every failure becomes a sentence with qemu-img's own reason. */
import { execFile } from 'node:child_process';
import { errors, VivariumError, ErrorCode } from '../../common/errors';

export interface ImageInfo {
  readonly format: string;
  readonly virtualSize: number;
  readonly actualSize: number | null;
  readonly backingFilename: string | null;
}

function run(qemuImg: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(qemuImg, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const why = (stderr || err.message).trim().split('\n').pop() ?? err.message;
        reject(errors.qemu(`qemu-img ${args[0]} failed: ${why.replace(/^qemu-img: /, '')}`));
        return;
      }
      resolve(stdout);
    });
  });
}

export class QemuImg {
  constructor(private readonly binary: string | null) {}

  private bin(): string {
    if (!this.binary) {
      throw new VivariumError(
        ErrorCode.QemuMissing,
        'qemu-img was not found. Install QEMU (see `vivarium doctor`) and try again.',
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

  /** `-U` so it also works while a VM holds the image. Explicit format probing is qemu-img's own. */
  async info(file: string): Promise<ImageInfo> {
    const out = await run(this.bin(), ['info', '-U', '--output=json', file], 30_000);
    const j = JSON.parse(out) as Record<string, unknown>;
    return {
      format: String(j.format),
      virtualSize: Number(j['virtual-size']),
      actualSize: typeof j['actual-size'] === 'number' ? j['actual-size'] : null,
      backingFilename: typeof j['backing-filename'] === 'string' ? j['backing-filename'] : null,
    };
  }
}
