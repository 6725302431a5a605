/**
 * What each VM state looks like and which actions apply in it. The toolbar, the library and the
 * tests read these tables, so "can I press Start now?" has one answer.
 */
import type { VmInfo, VmState } from '../../main/common/models/vm-state';

export const STATE_LABELS: Readonly<Record<VmState, string>> = {
  stopped: 'Stopped',
  starting: 'Starting',
  running: 'Running',
  paused: 'Paused',
  stopping: 'Stopping',
  broken: 'Broken',
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
] as const;
export type VmAction = (typeof VM_ACTIONS)[number];

const ACTION_STATES: Readonly<Record<VmAction, readonly VmState[]>> = {
  start: ['stopped'],
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
  settings: ['stopped'],
  delete: ['stopped', 'broken'],
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
  return true;
}

export function enabledActions(vm: VmFacts): ReadonlySet<VmAction> {
  return new Set(VM_ACTIONS.filter((a) => isActionEnabled(a, vm)));
}

/** The engine is running QEMU for this VM (its display and serial streams can exist). */
export function isLive(state: VmState): boolean {
  return state === 'running' || state === 'paused';
}

/** Whether a running VM should get a live library thumbnail. */
export function wantsThumbnail(vm: VmFacts): boolean {
  return isLive(vm.state) && hasDisplay(vm);
}

/** A sentence for the library card and the VM window when something went wrong, or null. */
export function problemText(vm: Pick<VmInfo, 'state' | 'error' | 'lastExit'>): string | null {
  if (vm.error) return vm.error;
  if (vm.state === 'stopped' && vm.lastExit && (vm.lastExit.reason === 'crashed' || vm.lastExit.reason === 'failed')) {
    return vm.lastExit.message;
  }
  return null;
}
