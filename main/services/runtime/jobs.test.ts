import { describe, expect, it } from 'vitest';
import { VivariumError } from '../../common/errors';
import { compatible, Jobs, JOBS } from './jobs';

const ID = 'c0ffee00-0000-4000-8000-000000000001';

function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function refusal(p: Promise<unknown>): Promise<VivariumError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VivariumError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('job masks', () => {
  it('lets Force Off and queries run during every mutating or long job, and nothing else', () => {
    for (const running of ['start', 'stop', 'edit', 'delete', 'pause', 'resume', 'reset', 'snapshotSave', 'diskConvert'] as const) {
      expect(compatible(JOBS[running], JOBS.forceOff), running).toBe(true);
      expect(compatible(JOBS[running], JOBS.screenshot), running).toBe(true);
      expect(compatible(JOBS[running], JOBS.sendKeys), running).toBe(true);
      for (const other of ['start', 'stop', 'edit', 'delete', 'pause', 'snapshotSave', 'diskConvert'] as const) {
        expect(compatible(JOBS[running], JOBS[other]), `${other} during ${running}`).toBe(false);
      }
    }
    // Only queries run beside a Force Off; a second one waits for the first.
    expect(compatible(JOBS.forceOff, JOBS.screenshot)).toBe(true);
    expect(compatible(JOBS.forceOff, JOBS.forceOff)).toBe(false);
    expect(compatible(JOBS.forceOff, JOBS.start)).toBe(false);
  });
});

describe('Jobs', () => {
  it('a long job does not block Force Off; a second mutating job is refused naming the running one', async () => {
    const clock = fakeClock();
    const jobs = new Jobs({ now: clock.now });
    const save = deferred();
    const saving = jobs.run(ID, 'web', 'snapshotSave', () => save.promise);
    clock.advance(12_000);

    const stop = await refusal(jobs.run(ID, 'web', 'stop', async () => 'stopped'));
    expect(stop.code).toBe('busy');
    expect(stop.message).toBe('"web" is busy: a snapshot is being saved (started 12 s ago). Wait for it, or force it off.');
    expect(stop.remedy).toEqual({ kind: 'force-stop', vm: 'web' });
    expect(stop.data).toMatchObject({ job: 'snapshotSave' });
    const edit = await refusal(jobs.run(ID, 'web', 'edit', async () => 'edited'));
    expect(edit.message).toMatch(/a snapshot is being saved/);

    // Force Off and a screenshot run meanwhile, at once.
    await expect(jobs.run(ID, 'web', 'forceOff', async () => 'off')).resolves.toBe('off');
    await expect(jobs.run(ID, 'web', 'screenshot', async () => 'png')).resolves.toBe('png');
    expect(jobs.running(ID).map((j) => j.name)).toEqual(['snapshotSave']);

    save.resolve();
    await saving;
    expect(jobs.running(ID)).toEqual([]);
    await expect(jobs.run(ID, 'web', 'stop', async () => 'stopped')).resolves.toBe('stopped');
  });

  it('a second Force Off is told to wait, without the Force Off advice', async () => {
    const jobs = new Jobs();
    const off = deferred();
    const first = jobs.run(ID, 'web', 'forceOff', () => off.promise);
    const second = await refusal(jobs.run(ID, 'web', 'forceOff', async () => undefined));
    expect(second.message).toMatch(/^"web" is busy: it is being forced off \(started \d+ s ago\)\. Wait for it\.$/);
    expect(second.remedy).toEqual({ kind: 'retry-later' });
    off.resolve();
    await first;
  });

  it('a short job waits for another short one, then runs; jobs on other VMs never wait', async () => {
    const jobs = new Jobs();
    const order: string[] = [];
    const edit = deferred();
    const editing = jobs.run(ID, 'web', 'edit', async () => {
      order.push('edit begins');
      await edit.promise;
      order.push('edit ends');
    });
    const pausing = jobs.run(ID, 'web', 'pause', async () => {
      order.push('pause');
    });
    await jobs.run('c0ffee00-0000-4000-8000-000000000002', 'db', 'start', async () => order.push('other VM starts'));
    edit.resolve();
    await Promise.all([editing, pausing]);
    expect(order).toEqual(['edit begins', 'other VM starts', 'edit ends', 'pause']);
  });

  it('a short job that waited too long is refused', async () => {
    const jobs = new Jobs();
    const edit = deferred();
    const editing = jobs.run(ID, 'web', 'edit', () => edit.promise);
    const e = await refusal(jobs.run(ID, 'web', 'reset', async () => undefined, { waitMs: 20 }));
    expect(e.message).toMatch(/^"web" is busy: its settings are being changed/);
    edit.resolve();
    await editing;
  });

  it('a job that fails still ends', async () => {
    const jobs = new Jobs();
    await expect(jobs.run(ID, 'web', 'start', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(jobs.running(ID)).toEqual([]);
  });
});

describe('changes announced after the job (afterJobs)', () => {
  it('a listener told inside a Force Off may delete at once: the change waits for the job to end', async () => {
    const jobs = new Jobs();
    const seen: string[] = [];
    // What the UI does: on "stopped", click Delete.
    const onStopped = () => {
      seen.push('stopped announced');
      void jobs.run(ID, 'web', 'delete', async () => void seen.push('deleted')).catch((e: Error) => seen.push(`refused: ${e.message}`));
    };
    await jobs.run(ID, 'web', 'forceOff', async () => {
      jobs.afterJobs(ID, onStopped);
      seen.push('force off ends');
    });
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['force off ends', 'stopped announced', 'deleted']);
  });

  it('runs at once when nothing (or only a query) holds the VM, and waits for every mutating job', async () => {
    const jobs = new Jobs();
    const calls: string[] = [];
    jobs.afterJobs(ID, () => calls.push('idle'));
    const shot = deferred();
    const shooting = jobs.run(ID, 'web', 'screenshot', () => shot.promise);
    jobs.afterJobs(ID, () => calls.push('beside a query'));
    expect(calls).toEqual(['idle', 'beside a query']);
    const save = deferred();
    const saving = jobs.run(ID, 'web', 'snapshotSave', () => save.promise);
    const off = deferred();
    const offing = jobs.run(ID, 'web', 'forceOff', () => off.promise);
    jobs.afterJobs(ID, () => calls.push('after both'));
    expect(jobs.holds(ID)).toBe(true);
    off.resolve();
    await offing;
    expect(calls).toEqual(['idle', 'beside a query']);
    save.resolve();
    await saving;
    expect(calls).toEqual(['idle', 'beside a query', 'after both']);
    shot.resolve();
    await shooting;
  });

  it('a listener that throws does not keep the job from ending', async () => {
    const jobs = new Jobs();
    await jobs.run(ID, 'web', 'stop', async () => {
      jobs.afterJobs(ID, () => {
        throw new Error('listener failed');
      });
    });
    expect(jobs.running(ID)).toEqual([]);
  });
});

describe('which changes wait for the job (vm-service heldAtRest)', () => {
  it('a resting state waits while a job holds the VM; progress (stopping, starting) goes out at once', async () => {
    const { heldAtRest } = await import('../vm-service');
    const jobs = new Jobs();
    const off = deferred();
    const offing = jobs.run(ID, 'web', 'forceOff', () => off.promise);
    expect(heldAtRest(jobs, { id: ID, state: 'stopped' })).toBe(true);
    expect(heldAtRest(jobs, { id: ID, state: 'stopping' })).toBe(false);
    expect(heldAtRest(jobs, { id: ID, state: 'starting' })).toBe(false);
    off.resolve();
    await offing;
    expect(heldAtRest(jobs, { id: ID, state: 'stopped' })).toBe(false);
  });
});

describe('idle (a result handed back only when no other job holds the VM)', () => {
  it('a Shut Down ended by a Force Off beside it waits for the Force Off, so Delete right after is not refused', async () => {
    const jobs = new Jobs();
    const off = deferred();
    const stopping = jobs.run(ID, 'web', 'stop', async () => undefined);
    const offing = jobs.run(ID, 'web', 'forceOff', () => off.promise);
    await stopping;
    let idle = false;
    const waiting = jobs.idle(ID).then(() => (idle = true));
    await new Promise((r) => setImmediate(r));
    expect(idle).toBe(false);
    off.resolve();
    await offing;
    await waiting;
    expect(idle).toBe(true);
    await expect(jobs.run(ID, 'web', 'delete', async () => 'deleted')).resolves.toBe('deleted');
  });
});
