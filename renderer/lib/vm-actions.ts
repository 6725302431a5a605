/**
 * What each VM state looks like and which actions apply in it. The toolbar, the library and the
 * tests read these tables, so "can I press Start now?" has one answer.
 */
import type { LastExit, StopProgress, VmInfo, VmState } from '../../main/common/models/vm-state';

export const STATE_LABELS: Readonly<Record<VmState, string>> = {
  stopped: 'Stopped',
  starting: 'Starting',
  running: 'Running',
  paused: 'Paused',
  stopping: 'Stopping',
  broken: 'Broken',
  suspended: 'Suspended',
};

/** A colour family; styles.css maps each to a light and a dark colour. */
export type StateTone = 'neutral' | 'busy' | 'ok' | 'info' | 'danger';

export const STATE_TONES: Readonly<Record<VmState, StateTone>> = {
  stopped: 'neutral',
  starting: 'busy',
  running: 'ok',
  paused: 'info',
  stopping: 'busy',
  broken: 'danger',
  suspended: 'info',
};

/** Every toolbar action. `pause` and `resume` share one button whose label follows the state. */
export const VM_ACTIONS = [
  'start',
  'pause',
  'resume',
  'reset',
  'shutdown',
  'forceOff',
  'ctrlAltDel',
  'screenshot',
  'settings',
  'delete',
  // Issue 10: from the VM window's toolbar and the library's context menu.
  'suspend',
  'clone',
  'export',
  /** A suspended VM's Force Off: drops its saved state (the next start boots afresh). */
  'discard',
] as const;
export type VmAction = (typeof VM_ACTIONS)[number];

const ACTION_STATES: Readonly<Record<VmAction, readonly VmState[]>> = {
  start: ['stopped', 'suspended'],
  pause: ['running'],
  resume: ['paused'],
  // A hard reset of a paused guest would leave it paused at the firmware: confusing; resume first.
  reset: ['running'],
  // The ACPI request needs a running guest to act on it.
  shutdown: ['running'],
  // The escape hatch: also for a start or a shutdown that hangs.
  forceOff: ['starting', 'running', 'paused', 'stopping'],
  ctrlAltDel: ['running'],
  screenshot: ['running', 'paused'],
  // A suspended VM's name and OS label may change (the engine refuses hardware its state needs).
  settings: ['stopped', 'suspended'],
  delete: ['stopped', 'broken', 'suspended'],
  suspend: ['running', 'paused'],
  // The engine clones and exports a VM at rest only (its disks must not change under the copy).
  clone: ['stopped'],
  export: ['stopped'],
  discard: ['suspended'],
};

/** Actions that need the VM's graphical display. */
const NEEDS_DISPLAY: ReadonlySet<VmAction> = new Set<VmAction>(['screenshot']);

export type VmFacts = Pick<VmInfo, 'state' | 'config'>;

export function hasDisplay(vm: Pick<VmInfo, 'config'>): boolean {
  return vm.config !== null && vm.config.display !== 'none';
}

/** Whether an action applies to the VM as it is now. A broken bundle (no config) can only be deleted. */
export function isActionEnabled(action: VmAction, vm: VmFacts): boolean {
  if (!ACTION_STATES[action].includes(vm.state)) return false;
  if (vm.config === null && action !== 'delete') return false;
  if (NEEDS_DISPLAY.has(action) && !hasDisplay(vm)) return false;
  if (action === 'suspend' && sharesOf(vm).length > 0) return false;
  return true;
}

function sharesOf(vm: VmFacts): readonly string[] {
  return (vm.config?.shares ?? []).map((s) => s.tag);
}

/** What the Start button says: a suspended VM's start resumes it where it was (the same action). */
export function startLabel(vm: Pick<VmInfo, 'state'>): 'Start' | 'Resume' {
  return vm.state === 'suspended' ? 'Resume' : 'Start';
}

/** Verbs for the reasons below ("Shut the VM down to clone it"). */
const ACTION_WORDS: Readonly<Record<VmAction, string>> = {
  start: 'start it',
  pause: 'pause it',
  resume: 'resume it',
  reset: 'reset it',
  shutdown: 'shut it down',
  forceOff: 'force it off',
  ctrlAltDel: 'send keys to it',
  screenshot: 'take a screenshot',
  settings: 'change its settings',
  delete: 'delete it',
  suspend: 'suspend it',
  clone: 'clone it',
  export: 'export it',
  discard: 'discard its saved state',
};

/**
 * Why `action` is not possible for the VM as it is now, as one sentence for the disabled button's
 * tooltip and description (the way Take Snapshot explains itself); null when it is possible.
 */
export function actionBlockedReason(action: VmAction, vm: VmFacts): string | null {
  if (isActionEnabled(action, vm)) return null;
  const what = ACTION_WORDS[action];
  if (vm.config === null) return 'Its folder cannot be read: it can only be deleted.';
  if (NEEDS_DISPLAY.has(action) && !hasDisplay(vm)) return 'It has no graphical display.';
  if (action === 'suspend' && ACTION_STATES.suspend.includes(vm.state)) {
    return `Its shared folders (${sharesOf(vm).join(', ')}) keep QEMU from saving its memory: remove them (Settings) to suspend it.`;
  }
  switch (vm.state) {
    case 'running':
    case 'paused':
      return action === 'start' ? 'It is running.' : `Shut the VM down to ${what}.`;
    case 'starting':
      return `It is starting: wait, then ${what}.`;
    case 'stopping':
      return `It is shutting down: wait, then ${what}.`;
    case 'suspended':
      return action === 'suspend'
        ? 'It is suspended already.'
        : `It is suspended: resume it (Resume) and shut it down, or discard its saved state, to ${what}.`;
    case 'stopped':
      return action === 'resume' ? 'It is not paused.' : action === 'shutdown' || action === 'forceOff' ? 'It is not running.' : `Start the VM to ${what}.`;
    case 'broken':
      return 'Its settings cannot be read: it can only be deleted.';
  }
}

export function enabledActions(vm: VmFacts): ReadonlySet<VmAction> {
  return new Set(VM_ACTIONS.filter((a) => isActionEnabled(a, vm)));
}

/** The engine is running QEMU for this VM (its display and serial streams can exist). A VM that is
 *  stopping still runs while the guest shuts down: its consoles stay live, so the person sees the
 *  guest's shutdown (or why it does not). */
export function isLive(state: VmState): boolean {
  return state === 'running' || state === 'paused' || state === 'stopping';
}

/** Whether a running VM should get a live library thumbnail. */
export function wantsThumbnail(vm: VmFacts): boolean {
  // Not while stopping: screenshots need a guest that is running or paused.
  return (vm.state === 'running' || vm.state === 'paused') && hasDisplay(vm);
}

/**
 * What a Shut Down is doing, for the VM window: while the guest has the ACPI request, "Waiting for
 * the guest to shut down… (Ns)" with the seconds left before Vivarium stops waiting (or, without a
 * deadline, the seconds since the request); once the ladder has escalated, that it is forcing the VM
 * off. null when no stop is in progress. `now` in ms since the epoch.
 */
export function stopProgressText(vm: Pick<VmInfo, 'state' | 'stopping'>, now: number): string | null {
  if (vm.state !== 'stopping') return null;
  const p: StopProgress | null | undefined = vm.stopping;
  if (!p) return 'Shutting down…';
  if (p.rung === 'acpi') {
    const deadline = p.deadline ? Date.parse(p.deadline) : NaN;
    const seconds = Number.isFinite(deadline) ? Math.max(0, Math.ceil((deadline - now) / 1000)) : Math.max(0, Math.floor((now - Date.parse(p.startedAt)) / 1000));
    return `Waiting for the guest to shut down… (${Number.isFinite(seconds) ? seconds : 0} s)`;
  }
  return p.rung === 'quit'
    ? 'The guest did not shut down in time; turning the VM off…'
    : 'The VM did not stop when asked; ending its process…';
}

/** How a shutdown ended, for the notice the VM window shows after it: the guest shut down by itself,
 *  or (when the ladder escalated) the engine's sentence saying what it had to do. */
export function stopOutcomeText(exit: LastExit | null): { readonly text: string; readonly escalated: boolean } | null {
  if (!exit) return null;
  switch (exit.reason) {
    case 'shutdown':
      return { text: 'The guest shut down.', escalated: false };
    case 'stopped':
      return { text: exit.message, escalated: true };
    case 'crashed':
    case 'failed':
      return { text: exit.message, escalated: true };
  }
}

/** Why a VM is paused, from QEMU's run state (query-status), as a sentence; null when not paused. */
export function pausedText(vm: Pick<VmInfo, 'state' | 'pausedReason'>): string | null {
  if (vm.state !== 'paused') return null;
  switch (vm.pausedReason ?? 'paused') {
    case 'paused':
      return null; // paused on purpose (by Vivarium or another client): the badge says it
    case 'io-error':
      return 'Paused because a disk reported an error (the disk holding it may be full). Free some space, then Resume.';
    case 'guest-panicked':
      return 'Paused because the guest crashed (its kernel panicked). Reset it or shut it down.';
    case 'internal-error':
      return 'Paused because QEMU hit an internal error. Force it off and start it again.';
    case 'suspended':
      return 'The guest is asleep (suspended). Resume wakes it.';
    case 'watchdog':
      return "Paused by the guest's watchdog. Resume or reset it.";
    default:
      return `Paused (QEMU says "${vm.pausedReason}").`;
  }
}

/** A sentence for the library card and the VM window when something went wrong, or null. */
export function problemText(vm: Pick<VmInfo, 'state' | 'error' | 'lastExit'>): string | null {
  if (vm.error) return vm.error;
  if (vm.state === 'stopped' && vm.lastExit && (vm.lastExit.reason === 'crashed' || vm.lastExit.reason === 'failed')) {
    return vm.lastExit.message;
  }
  return null;
}

/**
 * The suffix of a failed start's banner, so each try visibly changes it even when the engine
 * refuses again with the same sentence in a few milliseconds: "(1:02:03 PM)" for the first try,
 * "(try 2, 1:02:04 PM)" after that. `clock` is the viewer's time of the try, already formatted.
 */
export function startTryText(attempt: number, clock: string): string {
  return attempt > 1 ? `(try ${attempt}, ${clock})` : `(${clock})`;
}

/**
 * What a console's status says when its link is up but the VM cannot send anything: a running VM
 * whose QEMU is not responding (its process stopped, or its monitor wedged; `vm.error` set by the
 * engine) — the same fact the library card shows. Null when the link status tells the truth.
 */
export function consoleSilentText(vm: Pick<VmInfo, 'state' | 'error'>): string | null {
  if (!vm.error || (vm.state !== 'running' && vm.state !== 'paused')) return null;
  return 'Connected, but receiving nothing: QEMU is not responding';
}

/** What a confirmation dialog says before an action that loses the guest's unsaved work. */
export interface ActionConfirmation {
  readonly title: string;
  /** What is lost, and the gentler way to get there. */
  readonly text: string;
  /** The confirming button's label (the action's own name). */
  readonly confirmLabel: string;
}

/**
 * Whether `action` needs confirming for the VM as it is now, and what the dialog says: Force Off and
 * Reset of a guest that is running (or paused: its memory is just as live) throw away whatever the
 * guest has not written to its disks, like pulling the plug or pressing the reset button. A VM that
 * is starting or already shutting down has nothing of the person's yet, and a Force Off there is the
 * escape hatch for a start or shutdown that hangs: no question asked. Null when no confirmation is
 * needed.
 */
export function confirmationFor(action: VmAction, vm: Pick<VmInfo, 'name' | 'state'>): ActionConfirmation | null {
  if (vm.state !== 'running' && vm.state !== 'paused') return null;
  switch (action) {
    case 'forceOff':
      return {
        title: `Force off “${vm.name}”?`,
        text:
          'This cuts its power at once, like pulling the plug: the guest does not shut down, so anything it has not saved is lost, and its disks may need checking at the next start. Shut Down asks the guest to shut down cleanly.',
        confirmLabel: 'Force Off',
      };
    case 'reset':
      return {
        title: `Reset “${vm.name}”?`,
        text:
          'This presses its reset button: the guest restarts at once without shutting down, so anything it has not saved is lost. To restart cleanly, restart from inside the guest.',
        confirmLabel: 'Reset',
      };
    default:
      return null;
  }
}

/**
 * What the Serial tab says while the guest runs and has written nothing to its serial port: why that
 * may be, and what makes a Linux guest use it (its console on the first serial port: ttyS0 on
 * x86_64, ttyAMA0 on aarch64's PL011 — Linux's Documentation/admin-guide/serial-console.rst).
 */
export function serialSilentText(arch: 'x86_64' | 'aarch64' | undefined): string {
  const port = arch === 'aarch64' ? 'ttyAMA0' : 'ttyS0';
  return `The guest has not written to its serial port yet — a Linux guest writes its boot messages and a login prompt here when its kernel command line has console=${port}; firmware, installers and desktops often use only the display.`;
}
