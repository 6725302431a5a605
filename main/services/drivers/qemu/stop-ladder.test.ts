import { describe, expect, it } from 'vitest';
import type { StopProgress } from '../../../common/models/vm-state';
import { planStop, runStopLadder, type LadderPort, type Rung, type StopCause } from './stop-ladder';

/**
 * A fake QEMU on a fake clock: the monitor and signals schedule an exit (or not), and waiting for the
 * exit moves the clock instead of sleeping.
 */
class FakeVm implements LadderPort {
  t = 1_000_000;
  exitAt: number | null = null;
  readonly calls: string[] = [];
  readonly entered: { rung: string; progress: StopProgress; message: string | null; at: number }[] = [];
  readonly lines: string[] = [];
  constructor(
    private readonly behaviour: {
      /** ms after the power button until the guest is off; null: it ignores the button. */
      readonly guestOffAfterMs?: number | null;
      readonly monitor?: 'ok' | 'unreachable' | 'hangs';
      /** Whether SIGTERM ends QEMU (a SIGSTOPped QEMU ignores it until SIGCONT). */
      readonly termWorks?: boolean;
      readonly killWorks?: boolean;
    },
  ) {}
  private exitIn(ms: number): void {
    const at = this.t + ms;
    this.exitAt = this.exitAt === null ? at : Math.min(this.exitAt, at);
  }
  async powerdown(): Promise<void> {
    this.calls.push('powerdown');
    if (this.behaviour.monitor === 'unreachable') throw new Error('not responding');
    const after = this.behaviour.guestOffAfterMs;
    if (after !== null && after !== undefined) this.exitIn(after);
  }
  quitReachedQemu(): boolean {
    return this.behaviour.monitor !== 'unreachable';
  }
  async quit(timeoutMs: number): Promise<void> {
    this.calls.push('quit');
    if (this.behaviour.monitor === 'unreachable') throw new Error('not responding');
    if (this.behaviour.monitor === 'hangs') {
      this.t += timeoutMs;
      throw new Error('QEMU did not answer "quit"');
    }
    this.exitIn(50);
  }
  signal(sig: 'SIGTERM' | 'SIGKILL'): void {
    this.calls.push(sig);
    if (sig === 'SIGTERM' && this.behaviour.termWorks !== false) this.exitIn(100);
    if (sig === 'SIGKILL' && this.behaviour.killWorks !== false) this.exitIn(10);
  }
  async waitForExit(ms: number): Promise<boolean> {
    if (this.exitAt !== null && this.exitAt <= this.t + ms) {
      this.t = Math.max(this.t, this.exitAt);
      return true;
    }
    this.t += ms;
    return false;
  }
  now(): number {
    return this.t;
  }
  enter(rung: Rung, progress: StopProgress, message: string | null): void {
    this.entered.push({ rung: rung.name, progress, message, at: this.t });
  }
  log(line: string): void {
    this.lines.push(line);
  }
}

const asked: StopCause = { kind: 'asked' };

describe('planStop', () => {
  it('asks the guest first unless forced or paused', () => {
    expect(planStop({ force: false, paused: false, timeoutSec: 30 }).map((r) => [r.name, r.waitMs])).toEqual([
      ['acpi', 30_000],
      ['quit', 5_000],
      ['SIGTERM', 5_000],
      ['SIGKILL', 5_000],
    ]);
    expect(planStop({ force: true, paused: false, timeoutSec: 30 }).map((r) => r.name)).toEqual(['quit', 'SIGTERM', 'SIGKILL']);
    expect(planStop({ force: false, paused: true, timeoutSec: 30 }).map((r) => r.name)).toEqual(['quit', 'SIGTERM', 'SIGKILL']);
  });
});

describe('runStopLadder', () => {
  it('stops at the power button when the guest shuts down in time', async () => {
    const vm = new FakeVm({ guestOffAfterMs: 3_000 });
    const out = await runStopLadder(planStop({ force: false, paused: false, timeoutSec: 30 }), asked, vm);
    expect(out).toEqual({ exited: true, rung: 'acpi', escalated: false, message: 'The guest shut down when asked (ACPI power button).' });
    expect(vm.calls).toEqual(['powerdown']);
    expect(vm.t - 1_000_000).toBe(3_000);
    // While it waits, the VM shows the rung and when it gives up.
    expect(vm.entered[0]).toMatchObject({ rung: 'acpi', message: null, progress: { rung: 'acpi', deadline: new Date(1_000_000 + 30_000).toISOString() } });
  });

  it('forces the VM off after the wait when the guest ignores the power button, and says so', async () => {
    const vm = new FakeVm({ guestOffAfterMs: null });
    const out = await runStopLadder(planStop({ force: false, paused: false, timeoutSec: 30 }), asked, vm);
    expect(out.exited).toBe(true);
    expect(out.rung).toBe('quit');
    expect(out.escalated).toBe(true);
    expect(out.message).toBe('The guest did not respond to the power button; forced off after 30 s.');
    expect(vm.calls).toEqual(['powerdown', 'quit']);
    // The sentence is recorded before QEMU goes (so the exit reads it), at the moment of the rung.
    expect(vm.entered.map((e) => [e.rung, e.at - 1_000_000])).toEqual([
      ['acpi', 0],
      ['quit', 30_000],
    ]);
    expect(vm.entered[1]!.message).toBe(out.message);
    expect(vm.lines).toContain('stop: the guest did not shut down in time');
  });

  it('Force Off skips the guest', async () => {
    const vm = new FakeVm({ guestOffAfterMs: 1 });
    const out = await runStopLadder(planStop({ force: true, paused: false, timeoutSec: 30 }), { kind: 'force' }, vm);
    expect(out).toMatchObject({ exited: true, rung: 'quit', message: 'Forced off by Vivarium.' });
    expect(vm.calls).toEqual(['quit']);
  });

  it('goes on to the signals at once when QEMU does not answer its monitor (kill -STOP)', async () => {
    const vm = new FakeVm({ monitor: 'unreachable', termWorks: false });
    const cause: StopCause = { kind: 'unreachable', why: 'is not responding: its process is stopped' };
    const out = await runStopLadder(planStop({ force: false, paused: false, timeoutSec: 30 }), cause, vm);
    expect(out.exited).toBe(true);
    expect(out.rung).toBe('SIGKILL');
    // No 30 s wait on a power button nobody could press, no wait on a quit nobody heard.
    expect(vm.calls).toEqual(['SIGTERM', 'SIGKILL']);
    expect(vm.t - 1_000_000).toBe(5_010);
    // What happened, in the past: never "did not quit when asked" (it never was), nor how to revive a
    // process that is now killed.
    expect(out.message).toBe('QEMU is not responding: its process is stopped, so it was killed (SIGKILL) after 5 s.');
  });

  it('Force Off with no monitor to send quit to does not say QEMU was asked', async () => {
    const vm = new FakeVm({ monitor: 'unreachable' });
    const out = await runStopLadder(planStop({ force: true, paused: false, timeoutSec: 30 }), { kind: 'force' }, vm);
    expect(vm.calls).toEqual(['quit', 'SIGTERM']);
    expect(out.message).toBe("Forced off by Vivarium; QEMU's control socket could not be reached, so it was terminated (SIGTERM) after 0 s.");
    expect(vm.entered.at(-1)!.message).toBe(out.message);
  });

  it('a hung monitor costs only its own time box', async () => {
    const vm = new FakeVm({ guestOffAfterMs: null, monitor: 'hangs' });
    const out = await runStopLadder(planStop({ force: false, paused: false, timeoutSec: 30 }), asked, vm);
    expect(out.rung).toBe('SIGTERM');
    expect(vm.calls).toEqual(['powerdown', 'quit', 'SIGTERM']);
    expect(out.message).toMatch(/^The guest did not respond to the power button; QEMU did not quit when asked, so it was terminated \(SIGTERM\) after 35 s\.$/);
  });

  it('a paused VM is quit, with a sentence that says why', async () => {
    const vm = new FakeVm({});
    const out = await runStopLadder(planStop({ force: false, paused: true, timeoutSec: 30 }), { kind: 'paused' }, vm);
    expect(out.message).toBe('The VM was paused, so the guest could not be asked to shut down; forced off after 0 s.');
  });

  it('reports a QEMU that survives every rung', async () => {
    const stubborn = new FakeVm({ monitor: 'unreachable', termWorks: false, killWorks: false });
    const out = await runStopLadder(planStop({ force: true, paused: false, timeoutSec: 1 }), { kind: 'force' }, stubborn);
    expect(stubborn.calls).toEqual(['quit', 'SIGTERM', 'SIGKILL']);
    expect(out.exited).toBe(false);
    expect(out.message).toMatch(/survived every rung of the stop ladder \(last: SIGKILL\)/);
  });
});
