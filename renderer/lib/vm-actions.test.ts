import { describe, expect, it } from 'vitest';
import type { VmConfig } from '../../main/common/models/vm-config';
import { VM_STATES, type LastExit, type VmState } from '../../main/common/models/vm-state';
import { STATE_LABELS, STATE_TONES, actionBlockedReason, confirmationFor, startLabel, consoleSilentText, enabledActions, serialSilentText, isActionEnabled, isLive, pausedText, problemText, startTryText, stopOutcomeText, stopProgressText, wantsThumbnail } from './vm-actions';

const config = { display: 'vnc' } as VmConfig;
const headless = { display: 'none' } as VmConfig;
const vm = (state: VmState, c: VmConfig | null = config) => ({ state, config: c });

describe('state tables', () => {
  it('label and colour every state', () => {
    for (const s of VM_STATES) {
      expect(STATE_LABELS[s]).toMatch(/^[A-Z]/);
      expect(STATE_TONES[s]).toBeTruthy();
    }
  });
});

describe('enabledActions', () => {
  it('offers Start, Settings, Delete, Clone and Export when stopped', () => {
    expect([...enabledActions(vm('stopped'))].sort()).toEqual(['clone', 'delete', 'export', 'settings', 'start']);
  });
  it('offers the power and input actions when running', () => {
    expect([...enabledActions(vm('running'))].sort()).toEqual(
      ['ctrlAltDel', 'forceOff', 'pause', 'reset', 'screenshot', 'shutdown', 'suspend'].sort(),
    );
  });
  it('offers Resume, Force Off and Screenshot when paused', () => {
    expect([...enabledActions(vm('paused'))].sort()).toEqual(['forceOff', 'resume', 'screenshot', 'suspend']);
  });
  it('lets a hanging start or stop be forced off, nothing else', () => {
    expect([...enabledActions(vm('starting'))]).toEqual(['forceOff']);
    expect([...enabledActions(vm('stopping'))]).toEqual(['forceOff']);
  });
  it('offers Start (Resume), Settings (its name and OS label), Delete and Discard Saved State when suspended', () => {
    expect([...enabledActions(vm('suspended'))].sort()).toEqual(['delete', 'discard', 'settings', 'start']);
    expect(startLabel(vm('suspended'))).toBe('Resume');
    expect(startLabel(vm('stopped'))).toBe('Start');
  });
  it('only deletes a broken bundle', () => {
    expect([...enabledActions(vm('broken', null))]).toEqual(['delete']);
  });
  it('needs a display for screenshots', () => {
    expect(isActionEnabled('screenshot', vm('running', headless))).toBe(false);
    expect(isActionEnabled('ctrlAltDel', vm('running', headless))).toBe(true);
  });
});

describe('actionBlockedReason', () => {
  it('is null for what is possible', () => {
    expect(actionBlockedReason('clone', vm('stopped'))).toBeNull();
    expect(actionBlockedReason('suspend', vm('running'))).toBeNull();
  });
  it('says why Clone, Settings and Export are greyed out, by state', () => {
    expect(actionBlockedReason('clone', vm('running'))).toBe('Shut the VM down to clone it.');
    expect(actionBlockedReason('settings', vm('paused'))).toBe('Shut the VM down to change its settings.');
    expect(actionBlockedReason('export', vm('suspended'))).toBe('It is suspended: resume it (Resume) and shut it down, or discard its saved state, to export it.');
    expect(actionBlockedReason('clone', vm('starting'))).toBe('It is starting: wait, then clone it.');
    expect(actionBlockedReason('suspend', vm('stopped'))).toBe('Start the VM to suspend it.');
    expect(actionBlockedReason('shutdown', vm('stopped'))).toBe('It is not running.');
    expect(actionBlockedReason('clone', vm('broken', null))).toMatch(/only be deleted/);
  });
  it('names the shared folders that keep a running VM from being suspended', () => {
    const shared = { display: 'vnc', shares: [{ tag: 'work' }, { tag: 'docs' }] } as unknown as VmConfig;
    expect(isActionEnabled('suspend', vm('running', shared))).toBe(false);
    expect(actionBlockedReason('suspend', vm('running', shared))).toBe('Its shared folders (work, docs) keep QEMU from saving its memory: remove them (Settings) to suspend it.');
  });
  it('gives every disabled action of every state a sentence', () => {
    for (const s of VM_STATES) {
      for (const a of ['start', 'pause', 'resume', 'reset', 'shutdown', 'forceOff', 'ctrlAltDel', 'screenshot', 'settings', 'delete', 'suspend', 'clone', 'export', 'discard'] as const) {
        const why = actionBlockedReason(a, vm(s));
        expect(why === null, `${a} in ${s}`).toBe(isActionEnabled(a, vm(s)));
        if (why) expect(why).toMatch(/^[A-Z].*\.$/);
      }
    }
  });
});

describe('wantsThumbnail', () => {
  it('is true only for live VMs with a display', () => {
    expect(wantsThumbnail(vm('running'))).toBe(true);
    expect(wantsThumbnail(vm('paused'))).toBe(true);
    expect(wantsThumbnail(vm('stopped'))).toBe(false);
    expect(wantsThumbnail(vm('running', headless))).toBe(false);
  });
});

describe('problemText', () => {
  const exit = (reason: LastExit['reason']): LastExit => ({
    reason,
    at: '2025-01-01T00:00:00Z',
    code: 1,
    signal: null,
    message: `QEMU ${reason}.`,
    stderrTail: [],
  });
  it('prefers the error, then a crash or failure message', () => {
    expect(problemText({ state: 'broken', error: 'config.json is invalid.', lastExit: null })).toBe('config.json is invalid.');
    expect(problemText({ state: 'stopped', error: null, lastExit: exit('crashed') })).toBe('QEMU crashed.');
    expect(problemText({ state: 'stopped', error: null, lastExit: exit('failed') })).toBe('QEMU failed.');
  });
  it('says nothing after a normal shutdown or while running again', () => {
    expect(problemText({ state: 'stopped', error: null, lastExit: exit('shutdown') })).toBeNull();
    expect(problemText({ state: 'running', error: null, lastExit: exit('crashed') })).toBeNull();
  });
});

describe('Shut Down feedback', () => {
  const t0 = Date.parse('2026-01-01T10:00:00Z');
  const stopping = (rung: 'acpi' | 'quit' | 'SIGTERM' | 'SIGKILL', deadline: string | null) =>
    ({ state: 'stopping' as const, stopping: { startedAt: '2026-01-01T10:00:00Z', deadline, rung } });

  it('counts down the seconds the guest has left while the ACPI request waits', () => {
    expect(stopProgressText(stopping('acpi', '2026-01-01T10:00:30Z'), t0)).toBe('Waiting for the guest to shut down… (30 s)');
    expect(stopProgressText(stopping('acpi', '2026-01-01T10:00:30Z'), t0 + 12_400)).toBe('Waiting for the guest to shut down… (18 s)');
    expect(stopProgressText(stopping('acpi', '2026-01-01T10:00:30Z'), t0 + 99_000)).toBe('Waiting for the guest to shut down… (0 s)');
    // Without a deadline: the seconds since the request.
    expect(stopProgressText(stopping('acpi', null), t0 + 5_000)).toBe('Waiting for the guest to shut down… (5 s)');
  });
  it('says when the ladder escalated, and nothing when no stop runs', () => {
    expect(stopProgressText(stopping('quit', null), t0)).toMatch(/did not shut down in time/);
    expect(stopProgressText(stopping('SIGKILL', null), t0)).toMatch(/ending its process/);
    expect(stopProgressText({ state: 'stopping', stopping: null }, t0)).toBe('Shutting down…');
    expect(stopProgressText({ state: 'running', stopping: null }, t0)).toBeNull();
  });
  it('the consoles stay live while the guest shuts down', () => {
    expect(isLive('stopping')).toBe(true);
    expect(isLive('stopped')).toBe(false);
  });
  it('words the outcome: a clean shutdown, or what the engine had to do', () => {
    const exit = (reason: 'shutdown' | 'stopped', message: string) => ({ reason, message, at: '', code: 0, signal: null, stderrTail: [] });
    expect(stopOutcomeText(exit('shutdown', 'The guest shut down.'))).toEqual({ text: 'The guest shut down.', escalated: false });
    const forced = 'The guest did not respond to the power button; forced off after 30 s.';
    expect(stopOutcomeText(exit('stopped', forced))).toEqual({ text: forced, escalated: true });
    expect(stopOutcomeText(null)).toBeNull();
  });
  it('says why a VM is paused when QEMU paused it', () => {
    expect(pausedText({ state: 'paused', pausedReason: 'io-error' })).toMatch(/disk reported an error/);
    expect(pausedText({ state: 'paused', pausedReason: 'paused' })).toBeNull();
    expect(pausedText({ state: 'paused', pausedReason: 'colo' })).toBe('Paused (QEMU says "colo").');
    expect(pausedText({ state: 'running', pausedReason: 'io-error' })).toBeNull();
  });
});

describe('startTryText', () => {
  it('gives the first try its time and every later one its number, so two tries in one second differ', () => {
    expect(startTryText(1, '1:02:03 PM')).toBe('(1:02:03 PM)');
    expect(startTryText(2, '1:02:03 PM')).toBe('(try 2, 1:02:03 PM)');
    expect(startTryText(3, '1:02:03 PM')).not.toBe(startTryText(2, '1:02:03 PM'));
  });
});

describe('consoleSilentText', () => {
  const stoppedQemu = 'QEMU (pid 42) is not responding: its process is stopped.';
  it('says a linked console receives nothing when the engine reports a running QEMU not responding', () => {
    expect(consoleSilentText({ state: 'running', error: stoppedQemu })).toMatch(/receiving nothing.*not responding/);
    expect(consoleSilentText({ state: 'paused', error: stoppedQemu })).not.toBeNull();
  });
  it('leaves a healthy or stopped VM to the link status', () => {
    expect(consoleSilentText({ state: 'running', error: null })).toBeNull();
    expect(consoleSilentText({ state: 'stopped', error: 'The disk image is gone.' })).toBeNull();
  });
});

describe('confirmationFor', () => {
  it('asks before Force Off and Reset of a running or paused guest, saying what is lost', () => {
    for (const state of ['running', 'paused'] as const) {
      const off = confirmationFor('forceOff', { name: 'web', state });
      expect(off).toMatchObject({ title: 'Force off “web”?', confirmLabel: 'Force Off' });
      expect(off?.text).toMatch(/not saved is lost/);
      const reset = confirmationFor('reset', { name: 'web', state });
      expect(reset).toMatchObject({ title: 'Reset “web”?', confirmLabel: 'Reset' });
      expect(reset?.text).toMatch(/not saved is lost/);
    }
  });
  it('does not ask for a start or shutdown that hangs, nor for other actions', () => {
    for (const state of ['starting', 'stopping', 'stopped', 'suspended', 'broken'] as const) {
      expect(confirmationFor('forceOff', { name: 'web', state })).toBeNull();
      expect(confirmationFor('reset', { name: 'web', state })).toBeNull();
    }
    for (const action of ['start', 'shutdown', 'pause', 'delete'] as const) expect(confirmationFor(action, { name: 'web', state: 'running' })).toBeNull();
  });
});

describe('serialSilentText', () => {
  it('says the guest wrote nothing yet and names the console for its architecture', () => {
    expect(serialSilentText('x86_64')).toMatch(/^The guest has not written to its serial port yet — .*console=ttyS0/);
    expect(serialSilentText('aarch64')).toContain('console=ttyAMA0');
    expect(serialSilentText(undefined)).toContain('console=ttyS0');
  });
});
