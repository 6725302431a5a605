/**
 * How a VM's QEMU ended, as a reason and a sentence: a pure function of the facts its runtime folder
 * and logs hold when the end is noticed (possibly by another process, long after).
 *
 * Facts: the supervising shell writes QEMU's exit status (`$?`: the code, or 128+N for signal N);
 * QEMU removes its pidfile only on an orderly exit; QEMU logs "terminating on signal N" when a signal
 * (not the guest, not QMP) ends it and then exits 0; the stop ladder leaves a StopRequest before any
 * forceful rung.
 */
import { constants as osConstants } from 'node:os';
import type { ExitReason } from '../../common/models/vm-state';
import type { StopRequest } from './records';

export interface ExitFacts {
  /** The supervisor's exit status (code, or 128+signal); null when it wrote none. */
  readonly status: number | null;
  /** What the stop ladder did, when Vivarium stopped the VM; null otherwise. */
  readonly stopRequest: StopRequest | null;
  /** QEMU's pidfile is still there (QEMU removes it on an orderly exit). */
  readonly pidfileLeft: boolean;
  /** The signal QEMU's log says ended it ("SIGTERM"), or null. */
  readonly signalInLog: string | null;
  /** A start that failed: QEMU's complaint as a sentence. Overrides everything else. */
  readonly startFailure?: string | null;
}

export interface ExitVerdict {
  readonly reason: ExitReason;
  /** Exit code when QEMU exited by itself (status ≤ 128), else null. */
  readonly code: number | null;
  /** Signal name when QEMU was killed by a signal, else null. */
  readonly signal: string | null;
  /** A sentence for the person. */
  readonly message: string;
}

/** Classifies an exit: shutdown (the guest powered off), stopped (by Vivarium, with the ladder's
 *  words), crashed (killed by someone else, aborted, vanished), failed (a start QEMU refused). */
export function classifyExit(f: ExitFacts): ExitVerdict {
  const code = f.status !== null && f.status <= 128 ? f.status : null;
  const statusSignal = f.status !== null ? signalName(f.status) : null;
  if (f.startFailure) {
    return { reason: 'failed', code, signal: statusSignal, message: f.startFailure };
  }
  if (f.stopRequest?.rung === 'acpi' || f.stopRequest?.rung === 'agent') {
    // The ladder had only pressed the power button: a clean exit is the guest shutting down when
    // asked; anything else happened to QEMU on its own and is classified as if nobody had asked.
    if (f.status === 0 && f.signalInLog === null) return { reason: 'shutdown', code: 0, signal: null, message: f.stopRequest.message };
  } else if (f.stopRequest) {
    return { reason: 'stopped', code, signal: statusSignal ?? f.signalInLog, message: f.stopRequest.message };
  }
  if (f.status === 0 && f.signalInLog !== null) {
    return {
      reason: 'crashed',
      code: null,
      signal: f.signalInLog,
      message: `QEMU was stopped by ${f.signalInLog} from another program (not by the guest or Vivarium).`,
    };
  }
  if (f.status === 0 && !f.pidfileLeft) {
    return { reason: 'shutdown', code: 0, signal: null, message: 'The guest shut down.' };
  }
  if (f.status === null) {
    return {
      reason: 'crashed',
      code: null,
      signal: null,
      message: 'QEMU stopped unexpectedly and left no exit status (was the host restarted, or its supervisor killed?).',
    };
  }
  if (statusSignal !== null) {
    return {
      reason: 'crashed',
      code: null,
      signal: statusSignal,
      message: `QEMU was killed by ${statusSignal}. Start the VM again; if it keeps happening, see qemu.log in the VM folder.`,
    };
  }
  return { reason: 'crashed', code, signal: null, message: `QEMU exited with status ${f.status}. See qemu.log in the VM folder for why.` };
}

/** A shell exit status of 128+N as the signal's name ("SIGKILL"); null for a plain exit code. */
export function signalName(status: number): string | null {
  if (status <= 128) return null;
  const n = status - 128;
  const entry = Object.entries(osConstants.signals).find(([, v]) => v === n);
  return entry ? entry[0] : `signal ${n}`;
}

/** The signal QEMU names in its log's last lines ("terminating on signal 15 from pid …"), or null. */
export function signalInQemuLog(lastLines: readonly string[]): string | null {
  const m = /terminating on signal (\d+)/.exec(lastLines.join('\n'));
  return m ? signalName(128 + Number(m[1])) : null;
}
