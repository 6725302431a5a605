/**
 * A launch plan: everything a driver needs to start one VM, as plain data built by the pure argv
 * builder (buildQemuArgs in ./argv.ts). Not just `binary + args`: a VM may need helper processes
 * that must be up before QEMU connects to them (swtpm for a TPM, virtiofsd for a shared folder) and
 * files Vivarium writes before the start (a cloud-init seed, a per-start config). The driver that
 * runs the plan (main/services/drivers/qemu/) does, in order:
 *
 *   1. write every `generatedFiles` entry (atomically, mode 0600 unless said otherwise);
 *   2. start every `sideProcesses` entry (detached, in array order), and wait for each one's
 *      `readyWhen` before the next; on any failure kill those already started and fail the start;
 *   3. spawn QEMU (`binary` + `args`);
 *   4. when QEMU exits (or its start fails), end the side processes whose `lifetime` is "vm"
 *      (SIGTERM, then SIGKILL after `stopTimeoutMs`), and remove generated files marked `transient`.
 *
 * Everything here is data (no functions, no handles) so plans can be golden-tested, logged, shown to
 * the user (the wizard's summary shows the exact command line) and kept in a runtime record.
 */
import type { Accel } from '../../common/models/vm-config';

/** How the driver knows a side process is ready for QEMU to connect to it. */
export type ReadyCondition =
  /** A unix socket at this path accepts a connection (swtpm --ctrl, virtiofsd --socket-path). */
  | { readonly kind: 'socket'; readonly path: string }
  /** A file at this path exists (a pidfile the helper writes once it is up). */
  | { readonly kind: 'file'; readonly path: string }
  /** Nothing to wait for: started is ready. */
  | { readonly kind: 'started' };

/** A helper process that runs beside QEMU. */
export interface SideProcess {
  /** Short, stable, unique within the plan ("swtpm", "virtiofsd-share0"): used in logs and for
   *  the helper's own files in the runtime folder. */
  readonly name: string;
  /** Absolute path of the program (found by the host probe, never looked up through a shell). */
  readonly binary: string;
  /** Its arguments, each one whole (no shell, no quoting). */
  readonly args: readonly string[];
  readonly readyWhen: ReadyCondition;
  /** Longest wait for `readyWhen`, in milliseconds, before the start fails. */
  readonly readyTimeoutMs: number;
  /** "vm": ended with QEMU (swtpm, virtiofsd). Nothing else exists yet. */
  readonly lifetime: 'vm';
  /** Between SIGTERM and SIGKILL when it is ended, in milliseconds. */
  readonly stopTimeoutMs: number;
  /** Where its stdout/stderr go (appended), e.g. `<bundle>/swtpm.log`; null: discarded. */
  readonly logFile: string | null;
  /** Folders it keeps state in (swtpm's `--tpmstate dir=`), made owner-only (0700) before it starts. */
  readonly stateDirs?: readonly string[];
}

/** A file Vivarium writes before the start. */
export type GeneratedFile =
  /** Literal contents (UTF-8 text), e.g. a cloud-init `user-data`. */
  | {
      readonly kind: 'text';
      readonly path: string;
      readonly contents: string;
      /** File mode (default 0o600). */
      readonly mode?: number;
      /** Removed after QEMU exits (it lives in the runtime folder). */
      readonly transient: boolean;
    }
  /**
   * Made by a named generator the driver knows, from the given inputs, e.g. a cloud-init NoCloud
   * seed image built from files: `{kind: 'generator', generator: 'cloud-init-seed', inputs: {...}}`.
   * The driver refuses a generator it does not know (a bug, not a user error).
   */
  | {
      readonly kind: 'generator';
      readonly path: string;
      readonly generator: string;
      readonly inputs: Readonly<Record<string, string>>;
      readonly transient: boolean;
    };

/** Everything needed to start one VM. */
export interface LaunchPlan {
  /** The QEMU system emulator, absolute path. */
  readonly binary: string;
  /** QEMU's arguments, each one whole (no shell). */
  readonly args: readonly string[];
  /** The accelerator this plan runs with (resolved from the config's `auto`). */
  readonly accel: Accel;
  /** Helpers started before QEMU, in order (empty for most VMs today). */
  readonly sideProcesses: readonly SideProcess[];
  /** Files written before the start (empty for most VMs today). */
  readonly generatedFiles: readonly GeneratedFile[];
  /** Sentences for the person that do not stop the start (the driver logs them to the VM's event
   *  log). Settings that are merely unwise (more vCPUs than host cores) are warned about by the
   *  settings rules at create/edit (common/models/vm-settings.ts), not here. */
  readonly warnings: readonly string[];
}

/** The whole command line of a plan as one argv (binary first), as runtime records keep it. */
export function planArgv(plan: Pick<LaunchPlan, 'binary' | 'args'>): readonly string[] {
  return [plan.binary, ...plan.args];
}
