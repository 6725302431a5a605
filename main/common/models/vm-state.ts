/** Runtime state of VMs as every front end sees it. */
import type { Accel, VmConfig } from './vm-config';

/** `suspended`: stopped, with its whole state saved to disk; the next start resumes it (issue 10). */
export const VM_STATES = ['stopped', 'starting', 'running', 'paused', 'stopping', 'broken', 'suspended'] as const;
export type VmState = (typeof VM_STATES)[number];

export type ExitReason =
  /** The guest powered itself off, or accepted an ACPI shutdown request. */
  | 'shutdown'
  /** Vivarium stopped it (QMP quit or a signal from the stop ladder). */
  | 'stopped'
  /** QEMU died without being asked to: killed by someone else, a crash, an abort. */
  | 'crashed'
  /** QEMU refused to start (bad option, missing file, locked image). */
  | 'failed';

/** A rung of the stop ladder (main/services/drivers/qemu/stop-ladder.ts): the ACPI power button,
 *  QMP quit, then SIGTERM and SIGKILL to QEMU. */
/** 'agent': the guest agent's guest-shutdown, tried when the guest ignored the power button. */
export type StopRungName = 'acpi' | 'agent' | 'quit' | 'SIGTERM' | 'SIGKILL';

/** Where a Shut Down is, while it runs: a UI shows "Waiting for the guest to shut down… (Ns)" from
 *  `deadline` and offers Force Off Now (stop with force). */
export interface StopProgress {
  /** ISO time the stop began. */
  readonly startedAt: string;
  /** ISO time the current rung gives up and the ladder escalates; null when it waits for nothing. */
  readonly deadline: string | null;
  readonly rung: StopRungName;
}

export interface LastExit {
  readonly reason: ExitReason;
  readonly at: string;
  /** Exit status when QEMU exited by itself, else null. */
  readonly code: number | null;
  /** Signal name when QEMU was killed by a signal ("SIGKILL"), else null. */
  readonly signal: string | null;
  /** A sentence for the user. */
  readonly message: string;
  /** The last lines QEMU wrote to stderr. */
  readonly stderrTail: readonly string[];
}

/** One entry of the library. `config` is null for a broken bundle. */
export interface VmInfo {
  readonly id: string;
  readonly name: string;
  readonly state: VmState;
  /** QEMU's pid, only while it runs. */
  readonly pid: number | null;
  /** The accelerator QEMU runs with (when running) or would run with (configured choice). */
  readonly accel: Accel | 'auto' | null;
  readonly lastExit: LastExit | null;
  /** Why a bundle is broken (state "broken"), or why the last action failed. */
  readonly error: string | null;
  readonly config: VmConfig | null;
  /** The bundle folder. */
  readonly path: string;
  readonly startedAt: string | null;
  /** State "paused": why, in QEMU's words (query-status: "paused" by a client, "io-error",
   *  "guest-panicked", "internal-error", "suspended", …); null otherwise or when unknown. */
  readonly pausedReason?: string | null;
  /** State "stopping": the stop ladder's progress; null otherwise. */
  readonly stopping?: StopProgress | null;
  /** Only on the result of an action (create, edit, start, clone, import): sentences worth telling
   *  the person who asked (settings that work but are unwise, state Vivarium rebuilt, the launch
   *  plan's warnings, what an import dropped from an untrusted file). Each
   *  front end shows them as warnings; they are not stored (vivarium.log keeps them). */
  readonly notices?: readonly string[];
}

export interface VmDetails extends VmInfo {
  /** The exact QEMU command line (argv[0] is the binary) for the VM as configured on this host, or
   *  as it was started when running. */
  readonly argv: readonly string[] | null;
}

export type VmChange =
  | { readonly kind: 'updated'; readonly vm: VmInfo }
  | { readonly kind: 'removed'; readonly id: string };
