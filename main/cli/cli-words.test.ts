/**
 * What the real `vivarium` process (bin/vivarium.js, built by `npm run build`) says when a new user
 * gets a name or an operand wrong (tester-s5 findings 7, 8, 9, 11): each command names its own
 * operand or flag, a suspended VM's refusal gives the CLI's command (not the UI's button), and a
 * snapshot name follows the VM name rule on invisible characters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../test-support/cli';
import { testGuest } from '../test-support/guest';
import { makeTestHome, type TestHome } from '../test-support/home';
import { qemuProcessesUnder } from '../test-support/qemu-procs';

let t: TestHome;
beforeAll(() => {
  t = makeTestHome();
});
afterAll(async () => {
  await t.cleanup();
  expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
});

const cli = (...args: string[]): Promise<CliResult> => runCli(args, { env: t.env, timeoutMs: 150_000 });

async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  if (r.code !== 0) throw new Error(`vivarium ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function createArgs(name: string): string[] {
  const g = testGuest();
  return ['create', name, '--accel', 'tcg', '--cpus', '1', '--memory', '128M', '--disk-size', '16M', '--kernel', g.kernel, '--initrd', g.initrd, '--append', g.append, '--net', 'none', '--display', 'none'];
}

const ZWSP = 'a\u200bb';

describe('the CLI names what the command being run takes', () => {
  beforeAll(async () => {
    await ok(...createArgs('g'));
  }, 60_000);

  it('a bad new VM name points at that command\'s own operand or flag (#7)', async () => {
    const cases: [string[], string][] = [
      [['clone', 'g', ''], 'Choose another NEWNAME.'],
      [['clone', 'g', ZWSP], 'Choose another NEWNAME.'],
      [['create', ''], 'Choose another NAME.'],
      [['create', ZWSP, '--disk-size', '0'], 'Choose another NAME.'],
      [['edit', 'g', '--name', ''], 'Use --name NEWNAME.'],
    ];
    for (const [args, remedy] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().endsWith(remedy), `${args.join(' ')}: ${r.stderr}`).toBe(true);
      // The person typed a name, not "VM settings".
      expect(r.stderr, args.join(' ')).toMatch(args[0] === 'edit' ? /^vivarium: The new name / : /^vivarium: The new VM's name /);
    }
    const file = `${t.home}/g.vivarium`;
    await ok('export', 'g', file);
    const imp = await cli('import', file, '--name', ZWSP);
    expect(imp.code).toBe(2);
    expect(imp.stderr).toMatch(/U\+200B.* Use --name NEWNAME\.\n$/);
    // clone takes no --name: no command but edit and import may suggest it.
    for (const args of [['clone', 'g', ''], ['clone', 'g', ZWSP]]) expect((await cli(...args)).stderr).not.toMatch(/--name/);
  }, 120_000);

  it('snapshot operands: a "-" word is named as the operand it would be; a bare group asks for its ACTION (#11)', async () => {
    const dash = await cli('snapshot', 'create', 'g', '-dash');
    expect(dash.code).toBe(2);
    expect(dash.stderr).toContain('unknown option -dash (a SNAPSHOT that starts with "-" goes after "--", at the end)');
    const bare = await cli('snapshot');
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('missing ACTION (one of create, list, revert, delete, rename)');
    expect(bare.stderr).not.toMatch(/NEWNAME/);
    expect((await cli('disk')).stderr).toContain('missing ACTION (one of list, add, resize, remove)');
    expect((await cli('clone', 'g')).stderr).toContain('missing NEWNAME.');
    // What the hint says works.
    expect(await ok('snapshot', 'create', 'g', '--', '-dash')).toMatch(/^-dash \(snap-/);
  }, 60_000);

  it('snapshot names refuse invisible characters, on create and rename alike, as VM names do (#8)', async () => {
    const made = await cli('snapshot', 'create', 'g', ZWSP);
    expect(made.code).toBe(2);
    expect(made.stderr).toMatch(/invisible or text-direction characters \(it contains U\+200B\)/);
    await ok('snapshot', 'create', 'g', 'ab');
    const renamed = await cli('snapshot', 'rename', 'g', 'ab', 'c\u202ed');
    expect(renamed.code).toBe(2);
    expect(renamed.stderr).toMatch(/U\+202E/);
    const list = JSON.parse(await ok('snapshot', 'list', 'g', '--json')) as { name: string }[];
    expect(list.map((s) => s.name)).not.toContain(ZWSP);
    // Visible Unicode (accents, an emoji with its variation selector) stays allowed.
    expect(await ok('snapshot', 'rename', 'g', 'ab', 'café ☃️')).toMatch(/Renamed to café ☃️/);
  }, 60_000);
});

describe('a suspended VM (#9)', () => {
  it('snapshot, clone and export refusals give the CLI command to force it off, never the UI\'s "Force Off"', async () => {
    const g = testGuest();
    await ok(...createArgs('s'));
    await ok('start', 's', '--wait-serial', g.readyMarker, '--timeout', '120');
    await ok('suspend', 's');
    for (const args of [['snapshot', 'create', 's', 'x'], ['clone', 's', 's2'], ['export', 's', `${t.home}/s.vivarium`]]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(/"s" is suspended: .*`vivarium stop s --force`\.\n$/);
      expect(r.stderr).not.toMatch(/Force Off/);
    }
    // The command it names works: the saved state is discarded and a snapshot can be taken.
    await ok('stop', 's', '--force');
    expect(await ok('snapshot', 'create', 's', 'x')).toMatch(/^x \(snap-/);
  }, 240_000);
});
