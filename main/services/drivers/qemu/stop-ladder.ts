/**
 * The stop ladder as data: ACPI power button → wait → QMP quit → SIGTERM → SIGKILL, each rung with
 * its own wait. `planStop` picks the rungs, `runStopLadder` climbs them through a port (the QEMU
 * driver's monitor, signals and clock, or fakes in tests) and says, in one sentence, what happened
 * ("The guest did not respond to the power button; forced off after 30 s.").
 */
import type { StopProgress, StopRungName } from '../../../common/models/vm-state';

export interface Rung {
  readonly name: StopRungName;
  /** How long to wait for QEMU to exit after this rung acted, in ms. */
  readonly waitMs: number;
}

/** How long each forceful rung waits before the next (QMP quit, SIGTERM, SIGKILL). */
export const FORCEFUL_RUNG_WAIT_MS = 5_000;

export interface StopPlanInput {
  /** Skip the guest: start at QMP quit (Force Off). */
  readonly force: boolean;
  /** A paused guest cannot answer the power button: start at QMP quit. */
  readonly paused: boolean;
  /** How long the guest gets to shut down after the power button, in seconds. */
  readonly timeoutSec: number;
  /** Ask the guest agent (guest-shutdown) when the power button was ignored (issue 11). */
  readonly agent?: boolean;
}

/** How long the guest gets after the guest agent accepted guest-shutdown. */
export const AGENT_RUNG_WAIT_MS = 30_000;

/** The rungs of one stop. */
export function planStop(input: StopPlanInput): readonly Rung[] {
  const forceful: Rung[] = [
    { name: 'quit', waitMs: FORCEFUL_RUNG_WAIT_MS },
    { name: 'SIGTERM', waitMs: FORCEFUL_RUNG_WAIT_MS },
    { name: 'SIGKILL', waitMs: FORCEFUL_RUNG_WAIT_MS },
  ];
  if (input.force || input.paused) return forceful;
  const agent: Rung[] = input.agent ? [{ name: 'agent', waitMs: AGENT_RUNG_WAIT_MS }] : [];
  return [{ name: 'acpi', waitMs: Math.round(input.timeoutSec * 1000) }, ...agent, ...forceful];
}

/** Why the ladder began where it did; shapes the sentence. */
export type StopCause =
  | { readonly kind: 'asked' }
  | { readonly kind: 'force' }
  | { readonly kind: 'paused' }
  /** The monitor could not be reached (QEMU not responding, its socket gone). */
  | { readonly kind: 'unreachable'; readonly why: string };

/** What the ladder needs from the world. */
export interface LadderPort {
  /** Presses the ACPI power button. Throws when it cannot. */
  powerdown(): Promise<void>;
  /** Asks the guest agent to power the guest off (guest-shutdown). Throws when no agent answers. */
  agentShutdown?(): Promise<void>;
  /** Whether the last quit() got as far as sending the command to QEMU (a quit that timed out was
   *  sent; one with no monitor connection was not). Absent: assume it was. */
  quitReachedQemu?(): boolean;
  /** Asks QEMU to quit. Throws when it cannot. */
  quit(timeoutMs: number): Promise<void>;
  /** Sends a signal to QEMU. Throws when it cannot (ESRCH: already gone). */
  signal(sig: 'SIGTERM' | 'SIGKILL'): void;
  /** Resolves true once QEMU is gone, false after `ms` without that. */
  waitForExit(ms: number): Promise<boolean>;
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Called before a rung acts, with the progress to show and — for a forceful rung — the sentence
   * that will describe the stop if this rung ends it (to record before QEMU goes).
   */
  enter(rung: Rung, progress: StopProgress, forcefulMessage: string | null): void;
  log(line: string): void;
}

export interface LadderOutcome {
  readonly exited: boolean;
  /** The rung in effect when QEMU went (or the last one tried). */
  readonly rung: StopRungName | null;
  /** One sentence for the person. */
  readonly message: string;
  /** Whether the ladder went past the power button (or never used it). */
  readonly escalated: boolean;
}

/**
 * The sentence for a stop ended by `rung`, `elapsedMs` after it began.
 * Pure; exported for tests and for front ends that want the same words.
 */
export function stopMessage(cause: StopCause, rung: StopRungName, elapsedMs: number, acpiFailure: string | null, quitAsked = true): string {
  const secs = Math.max(0, Math.round(elapsedMs / 1000));
  if (rung === 'acpi') return 'The guest shut down when asked (ACPI power button).';
  if (rung === 'agent') return 'The guest ignored the power button; it shut down when asked through its guest agent.';
  let why: string;
  switch (cause.kind) {
    case 'force':
      why = 'Forced off by Vivarium';
      break;
    case 'paused':
      why = 'The VM was paused, so the guest could not be asked to shut down';
      break;
    case 'unreachable':
      why = `QEMU ${cause.why}, so the guest could not be asked to shut down`;
      break;
    case 'asked':
      why = acpiFailure ? `The power button could not be pressed (${acpiFailure})` : 'The guest did not respond to the power button';
      break;
  }
  if (rung === 'quit') return cause.kind === 'force' ? `${why}.` : `${why}; forced off after ${secs} s.`;
  const how = rung === 'SIGTERM' ? 'terminated (SIGTERM)' : 'killed (SIGKILL)';
  // A QEMU that answers nothing was never asked to quit: say what happened, not how to revive it.
  if (cause.kind === 'unreachable') return `QEMU ${cause.why}, so it was ${how} after ${secs} s.`;
  if (!quitAsked) return `${why}; QEMU's control socket could not be reached, so it was ${how} after ${secs} s.`;
  return `${why}; QEMU did not quit when asked, so it was ${how} after ${secs} s.`;
}

/** Climbs `rungs` until QEMU is gone. Never throws for a failed rung: it logs and goes on. */
export async function runStopLadder(rungs: readonly Rung[], cause: StopCause, port: LadderPort): Promise<LadderOutcome> {
  const startedAt = port.now();
  let acpiFailure: string | null = null;
  /** Whether QMP quit reached QEMU (the sentence says "did not quit when asked" only then). */
  let quitAsked = false;
  let last: StopRungName | null = null;
  for (const rung of rungs) {
    last = rung.name;
    const now = port.now();
    const progress: StopProgress = {
      startedAt: new Date(startedAt).toISOString(),
      deadline: rung.waitMs > 0 ? new Date(now + rung.waitMs).toISOString() : null,
      rung: rung.name,
    };
    const forcefulMessage = rung.name === 'acpi' ? null : stopMessage(cause, rung.name, now - startedAt, acpiFailure, quitAsked);
    port.enter(rung, progress, forcefulMessage);
    let acted = true;
    try {
      switch (rung.name) {
        case 'acpi':
          if (cause.kind === 'unreachable') throw new Error(cause.why);
          await port.powerdown();
          port.log(`stop: ACPI power button pressed, waiting up to ${Math.round(rung.waitMs / 1000)} s`);
          break;
        case 'agent':
          if (!port.agentShutdown) throw new Error('no guest agent');
          await port.agentShutdown();
          port.log(`stop: the guest agent accepted guest-shutdown, waiting up to ${Math.round(rung.waitMs / 1000)} s`);
          break;
        case 'quit':
          if (cause.kind === 'unreachable') throw new Error(cause.why);
          try {
            await port.quit(rung.waitMs);
          } finally {
            quitAsked = quitAsked || !(port.quitReachedQemu?.() === false);
          }
          port.log('stop: QMP quit sent');
          break;
        case 'SIGTERM':
        case 'SIGKILL':
          port.log(`stop: sending ${rung.name}`);
          port.signal(rung.name);
          break;
      }
    } catch (e) {
      acted = false;
      const why = e instanceof Error ? e.message : String(e);
      if (rung.name === 'acpi') acpiFailure = why;
      port.log(`stop: ${rung.name} failed (${why})`);
    }
    // A rung that could not act has nothing to wait for, but QEMU may be gone already.
    if (await port.waitForExit(acted ? rung.waitMs : 0)) {
      return {
        exited: true,
        rung: rung.name,
        message: stopMessage(cause, rung.name, port.now() - startedAt, acpiFailure, quitAsked),
        escalated: rung.name !== 'acpi' && rung.name !== 'agent',
      };
    }
    if (acted) port.log(rung.name === 'acpi' ? 'stop: the guest did not shut down in time' : `stop: QEMU did not exit within ${Math.round(rung.waitMs / 1000)} s of ${rung.name}`);
  }
  return {
    exited: false,
    rung: last,
    message: `QEMU survived every rung of the stop ladder (last: ${last ?? 'none'}). Check the process with your system tools.`,
    escalated: true,
  };
}
