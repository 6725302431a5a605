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

describe('exit status by kind (#15): 2 when what was typed must change, 1 when the operation failed', () => {
  it('a taken, too long, empty or unknown name or file exits 2, like every other invalid argument', async () => {
    await ok(...createArgs('k'));
    await ok('snapshot', 'create', 'k', 'one');
    const file = `${t.home}/k.vivarium`;
    await ok('export', 'k', file);
    const cases: [string[], RegExp][] = [
      [['snapshot', 'create', 'k', 'one'], /"k" already has a snapshot named "one"/],
      [['snapshot', 'create', 'k', 'x'.repeat(101)], /at most 100 characters/],
      [['clone', 'k', 'k'], /A VM named "k" already exists/],
      [['clone', 'k', 'x'.repeat(101)], /at most 100 characters\. Choose another NEWNAME\./],
      [['import', file], /A VM named "k" already exists\. Import it under another name/],
      [['export', 'k', ''], /is a folder/],
      [['export', 'k', file], /already exists/],
      [['show', 'nosuch'], /No VM named or with id "nosuch"/],
      [['snapshot', 'revert', 'k', 'nope'], /"k" has no snapshot named or with id "nope"/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      const what = args.map((a) => (a.length > 20 ? `${a.slice(0, 8)}…` : a)).join(' ');
      expect(r.code, `${what}: ${r.stderr}`).toBe(2);
      expect(r.stderr, what).toMatch(message);
      expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
    }
  }, 120_000);

  it('a refusal by the state of things exits 1, and a delete refused over linked clones names every one (#17)', async () => {
    await ok(...createArgs('base'));
    for (const c of ['c1', 'c2', 'c3']) await ok('clone', 'base', c, '--linked');
    const r = await cli('delete', 'base');
    expect(r.code).toBe(1);
    const named = /Delete ("c\d"), ("c\d") and ("c\d") first/.exec(r.stderr);
    expect(named, r.stderr).not.toBeNull();
    expect(named!.slice(1).sort()).toEqual(['"c1"', '"c2"', '"c3"']);
    expect(r.stderr).toMatch(/`vivarium delete base --flatten-clones`\.\n$/);
    // What it says works.
    expect(await ok('delete', 'base', '--flatten-clones')).toMatch(/Deleted base\./);
  }, 120_000);
});

describe('snapshot and clone words (#16, #17)', () => {
  it('snapshot list: local dates to the minute in text, ISO in --json; an empty list names the VM', async () => {
    await ok(...createArgs('my box'));
    expect(await ok('snapshot', 'list', 'my box')).toBe("No snapshots. Take one with `vivarium snapshot create 'my box'`.\n");
    await ok('snapshot', 'create', 'my box', 'first', '--description', 'before the upgrade');
    const [snap] = JSON.parse(await ok('snapshot', 'list', 'my box', '--json')) as { id: string; createdAt: string }[];
    expect(snap!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // In UTC+05:30 (no daylight saving), the text shows that local time, to the minute.
    const r = await runCli(['snapshot', 'list', 'my box'], { env: { ...t.env, TZ: 'Asia/Kolkata' }, timeoutMs: 60_000 });
    const local = new Date(Date.parse(snap!.createdAt) + 330 * 60_000).toISOString().slice(0, 16).replace('T', ' ');
    expect(r.stdout).toBe(`* first  (${snap!.id}, ${local}, disks only)  <- you are here\n    before the upgrade\n`);
    expect(r.stdout).not.toMatch(/\d\d:\d\d:\d\d|\.\d{3}|Z\b/);
  }, 120_000);

  it('help says what an omitted SNAPSHOT becomes, and how a linked clone\'s source can be deleted', async () => {
    expect(await ok('snapshot', '--help')).toMatch(/snapshot create NAME \[SNAPSHOT\].*"Snapshot N"/);
    const clone = await ok('clone', '--help');
    expect(clone).not.toMatch(/cannot be deleted while the clone exists/);
    expect(clone).toMatch(/`vivarium delete NAME --flatten-clones`/);
  }, 60_000);
});
