/**
 * CLI words for what arrives from outside (tester findings 12 and 21), through the real `vivarium`
 * process: --wait-serial's length limit in the flag's words, and `serial --log` printing all of the
 * kept log (serial.log.0 then serial.log), not a silent 1 MiB tail.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../test-support/cli';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';

let t: TestHome;
beforeEach(() => {
  t = makeTestHome();
});
afterEach(async () => {
  await t.cleanup();
});

describe('vivarium start --wait-serial', () => {
  it('a pattern over the limit is refused in the flag\'s words (exit 2), not as an "Invalid request"', async () => {
    const r = await runCli(['start', 'nothing', '--wait-serial', 'a'.repeat(20_000)], { env: t.env });
    expect(r.stderr).toMatch(/--wait-serial must be at most 1000 characters \(this one has 20000\)/);
    expect(r.stderr).not.toMatch(/Invalid request/);
    expect(r.code).toBe(2);
  });
  it('a pattern that does not compile is quoted as typed, without (?m)', async () => {
    const g = testGuest();
    const created = await runCli(['create', 'w1', '--kernel', g.kernel, '--initrd', g.initrd, '--memory', '64M', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg'], { env: t.env });
    expect(created.code, created.stderr).toBe(0);
    const r = await runCli(['start', 'w1', '--wait-serial', '('], { env: t.env });
    expect(r.stderr).toMatch(/--wait-serial is not a valid pattern: missing closing \): `\(`/);
    expect(r.stderr).not.toContain('(?m)');
  });
});

describe('vivarium serial --log', () => {
  it('prints all that is kept (both files, here 5 MiB), older part first', async () => {
    const g = testGuest();
    const created = await runCli(['create', 'chatty', '--kernel', g.kernel, '--initrd', g.initrd, '--memory', '64M', '--disk-size', '0', '--display', 'none', '--net', 'none', '--accel', 'tcg'], { env: t.env });
    expect(created.code, created.stderr).toBe(0);
    const bundle = path.join(t.home, 'vms', created.stdout.trim());
    const older = `OLDEST-LINE\n${'o'.repeat(2 * 1024 * 1024)}\n`;
    const newest = `${'n'.repeat(3 * 1024 * 1024)}\nNEWEST-LINE\n`;
    fs.writeFileSync(path.join(bundle, 'serial.log.0'), older, { mode: 0o600 });
    fs.writeFileSync(path.join(bundle, 'serial.log'), newest, { mode: 0o600 });
    const r = await runCli(['serial', 'chatty', '--log'], { env: t.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.length).toBe(older.length + newest.length);
    expect(r.stdout.startsWith('OLDEST-LINE\n')).toBe(true);
    expect(r.stdout.endsWith('NEWEST-LINE\n')).toBe(true);
  });
});
