/** What `vivarium doctor` shows and the UI's host facts panel reads. */
import type { AccelStatus, HostOs, UefiFirmware } from './host';
import type { Arch } from './vm-config';

export interface HostReport {
  readonly os: HostOs;
  readonly hostArch: Arch;
  readonly qemuImg: { readonly path: string | null; readonly ok: boolean };
  readonly binaries: readonly {
    readonly arch: Arch;
    readonly path: string | null;
    readonly version: string | null;
    readonly accels: readonly AccelStatus[];
  }[];
  readonly firmware: readonly ({ readonly arch: Arch } & UefiFirmware)[];
  /** Sentences: what is missing and how to install it. Empty when all is well. */
  readonly problems: readonly string[];
  readonly home: string;
  readonly runtimeDir: string;
}
