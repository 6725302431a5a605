import { describe, expect, it } from 'vitest';
import type { VmConfig } from '../../main/common/models/vm-config';
import { VM_STATES, type LastExit, type VmState } from '../../main/common/models/vm-state';
import { STATE_LABELS, STATE_TONES, enabledActions, isActionEnabled, problemText, wantsThumbnail } from './vm-actions';

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
  it('offers only Start, Settings and Delete when stopped', () => {
    expect([...enabledActions(vm('stopped'))].sort()).toEqual(['delete', 'settings', 'start']);
  });
  it('offers the power and input actions when running', () => {
    expect([...enabledActions(vm('running'))].sort()).toEqual(
      ['ctrlAltDel', 'forceOff', 'pause', 'reset', 'screenshot', 'shutdown'].sort(),
    );
  });
  it('offers Resume, Force Off and Screenshot when paused', () => {
    expect([...enabledActions(vm('paused'))].sort()).toEqual(['forceOff', 'resume', 'screenshot']);
  });
  it('lets a hanging start or stop be forced off, nothing else', () => {
    expect([...enabledActions(vm('starting'))]).toEqual(['forceOff']);
    expect([...enabledActions(vm('stopping'))]).toEqual(['forceOff']);
  });
  it('only deletes a broken bundle', () => {
    expect([...enabledActions(vm('broken', null))]).toEqual(['delete']);
  });
  it('needs a display for screenshots', () => {
    expect(isActionEnabled('screenshot', vm('running', headless))).toBe(false);
    expect(isActionEnabled('ctrlAltDel', vm('running', headless))).toBe(true);
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
