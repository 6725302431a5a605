import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Layout, type VmRuntimePaths } from '../paths';
import { acquireStartLock, acquireStartLockAsync, startLockHeld } from './start-lock';

const ID = '5ca1ab1e-0000-4000-8000-00000000000b';
let base: string;
let rt: VmRuntimePaths;

beforeEach(() => {
  base = fs.mkdtempSync('/tmp/viv-lock-');
  const layout = new Layout(path.join(base, 'home'), path.join(base, 'lib'), base);
  rt = layout.runtime(ID);
  layout.ensureRuntimeDir(rt.dir);
});
afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

describe('the start lock', () => {
  it('admits one of two racing takers and names the holder to the other', async () => {
    const results = await Promise.allSettled([acquireStartLockAsync(rt, 'web'), acquireStartLockAsync(rt, 'web')]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(String(lost[0]!.reason)).toMatch(/"web" is already being started/);
    expect(startLockHeld(rt)).toBe(true);
    // The sync taker (run-state reconciliation) is kept out too.
    expect(() => acquireStartLock(rt, 'web')).toThrow(/already being started/);
    await (won[0] as PromiseFulfilledResult<() => Promise<void>>).value();
    expect(startLockHeld(rt)).toBe(false);
    expect(fs.readdirSync(rt.dir)).toEqual([]);
  });

  it('takes over a lock whose owner died', async () => {
    fs.writeFileSync(rt.startLock, '9999999\n');
    const release = await acquireStartLockAsync(rt, 'web');
    expect(fs.readFileSync(rt.startLock, 'utf8')).toBe(`${process.pid}\n`);
    await release();
  });
});
