/**
 * The command line's usage rules, through the real `vivarium` process (bin/vivarium.js, built by
 * `npm run build`): usage errors exit 2 in every command, a name that starts with "-" works after
 * `--` in every command that takes one, and nothing Vivarium says suggests a command or an option
 * that does not exist.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runCliJson, type CliResult } from '../test-support/cli';
import { makeTestHome, type TestHome } from '../test-support/home';
import { qemuProcessesUnder } from '../test-support/qemu-procs';
import { COMMANDS } from './commands';

let t: TestHome;
beforeAll(() => {
  t = makeTestHome();
});
afterAll(() => t.cleanup());

/** Each case runs real processes: generous on a loaded 2-core machine. */
const SLOW_MS = 300_000;

const cli = (...args: string[]) => runCli(args, { env: t.env, timeoutMs: 30_000 });

/**
 * Every command a text tells a person to type names a command of the table, and every `--option`
 * after it (up to the end of that command, or `--`) is one of that command's options. A command is
 * `vivarium WORD …` in a code span (backticks), or outside one when WORD is a command; "vivarium
 * WORD:" is the prefix of the CLI's own messages, not a suggestion. Returns the offending mentions.
 */
function badMentions(text: string): string[] {
  const bad: string[] = [];
  for (const m of text.matchAll(/(`?)\bvivarium ([a-z][a-z-]*)(:?)([^`'"\n)]*)/g)) {
    const [whole, tick, command, colon, tail] = m;
    if (colon) continue;
    const known = Object.hasOwn(COMMANDS, command!);
    if (command === 'help') {
      // `vivarium help CMD` names a command too.
      const topic = /^ ([a-z][a-z-]*)/.exec(tail!)?.[1];
      if (topic && !Object.hasOwn(COMMANDS, topic)) bad.push(whole!);
      continue;
    }
    if (!known) {
      if (tick) bad.push(whole!);
      continue;
    }
    const words = tail!.split(/\s+/);
    const end = words.indexOf('--');
    for (const w of end >= 0 ? words.slice(0, end) : words) {
      const flag = /^--([a-z][a-z-]*)/.exec(w)?.[1];
      if (flag && !Object.hasOwn(COMMANDS[command!]!.flags, flag) && flag !== 'help') bad.push(whole!);
    }
  }
  return bad;
}

function expectUsage(r: CliResult, message: RegExp, what: string): void {
  expect(r.code, `${what}: ${r.stderr}`).toBe(2);
  expect(r.stdout, what).toBe('');
  expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
  expect(r.stderr, what).toMatch(message);
  expect(badMentions(r.stderr), what).toEqual([]);
}

describe('usage errors exit 2, in every command', () => {
  const names = Object.keys(COMMANDS);

  it('an unknown option', { timeout: SLOW_MS }, async () => {
    for (const name of names) expectUsage(await cli(name, '--no-such-option'), /unknown option --no-such-option/, name);
  });

  it('a missing or extra positional', { timeout: SLOW_MS }, async () => {
    for (const name of names) {
      const spec = COMMANDS[name]!;
      const required = spec.positionals.length - (spec.optionalPositionals ?? 0);
      if (required > 0) expectUsage(await cli(name), /missing /, `${name} without arguments`);
      const extra = [...spec.positionals.map((_, i) => `arg${i}`), 'one-too-many'];
      expectUsage(await cli(name, ...extra), /unexpected argument "one-too-many"/, `${name} ${extra.join(' ')}`);
    }
  });

  it('a bad number, size, choice or port', { timeout: SLOW_MS }, async () => {
    const cases: [string[], RegExp][] = [
      [['serve', '--port', '70000'], /--port must be a whole number from 0 to 65535/],
      [['serve', '--port', '-1'], /--port must be a whole number/],
      [['serve', '--port', '80.5'], /--port must be a whole number/],
      [['serve', '--port', '0x50'], /--port must be a number/],
      [['serve', '--port'], /--port needs a value/],
      [['serve', '--host='], /--host needs an address/],
      [['serve', '--host', ' '], /--host needs an address/],
      [['create', 'x', '--cpus', '1.5'], /--cpus/],
      [['create', 'x', '--cpus', '1e1'], /--cpus must be a number/],
      [['create', 'x', '--memory', '-1G'], /--memory must be a size/],
      [['create', 'x', '--memory', ''], /--memory must be a size/],
      [['create', 'x', '--disk-size', '8Q'], /--disk-size must be a size/],
      [['create', 'x', '--firmware', 'coreboot'], /--firmware must be one of bios, uefi/],
      [['create', 'x', '--memory', '1G', '--memory', '2G'], /--memory was given twice/],
      [['edit', 'x', '--cpus', 'many'], /--cpus must be a number/],
      [['edit', 'x', '--iso', '/a.iso', '--no-iso'], /either --iso or --no-iso/],
      [['start', 'x', '--timeout', '0'], /--timeout must be a number of seconds, above 0/],
      [['start', 'x', '--timeout', '1e9'], /--timeout must be a number/],
      [['start', 'x', '--timeout', '99999999'], /at most 86400/],
      [['stop', 'x', '--timeout', '-1'], /--timeout must be a number of seconds, 0 or more/],
      [['list', '--json=yes'], /--json takes no value/],
    ];
    for (const [args, message] of cases) expectUsage(await cli(...args), message, args.join(' '));
    // Nothing was written by any of it.
    const vms = path.join(t.home, 'vms');
    expect(fs.existsSync(vms) ? fs.readdirSync(vms) : []).toEqual([]);
  });

  it('an unknown command or help topic', { timeout: SLOW_MS }, async () => {
    expectUsage(await cli('frobnicate'), /unknown command "frobnicate"/, 'frobnicate');
    expectUsage(await cli('constructor'), /unknown command "constructor"/, 'constructor');
    expectUsage(await cli('--frobnicate'), /unknown option --frobnicate/, '--frobnicate');
    expectUsage(await cli('help', 'frobnicate'), /there is no command "frobnicate"/, 'help frobnicate');
    const help = await cli('help', 'create');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: vivarium create NAME/);
  });
});

describe('a name that starts with "-"', () => {
  it('is refused before -- with a pointer to --, and works after it in every command that takes a name', { timeout: SLOW_MS }, async () => {
    expectUsage(await cli('create', '-dash'), /unknown option -dash .*after "--"/, 'create -dash');
    const created = await cli('create', '--disk-size', '0', '--display', 'none', '--net', 'none', '--memory', '128M', '--accel', 'tcg', '--', '-dash');
    expect(created.code, created.stderr).toBe(0);
    const helpNamed = await cli('create', '--disk-size', '0', '--display', 'none', '--accel', 'tcg', '--', '--help');
    expect(helpNamed.code, helpNamed.stderr).toBe(0);

    const names = (await runCliJson<{ name: string }[]>(['list', '--json'], { env: t.env })).map((v) => v.name).sort();
    expect(names).toEqual(['--help', '-dash']);
    const shown = await runCliJson<{ name: string }>(['show', '--json', '--', '--help'], { env: t.env });
    expect(shown.name).toBe('--help');

    // Every command that takes a VM, with the name after --, against a real QEMU where the command
    // needs one running: none may read the name as an option or fail to find the VM.
    const steps: (readonly string[])[] = [
      ['start', '--', '-dash'],
      ['serial', '--log', '--', '-dash'],
      ['serial', '--', '-dash'],
      ['pause', '--', '-dash'],
      ['resume', '--', '-dash'],
      ['reset', '--', '-dash'],
      ['stats', '--json', '--', '-dash'],
      ['screenshot', '--', '-dash', path.join(t.home, 'shot.png')],
      ['stop', '--force', '--', '-dash'],
      ['edit', '--cpus', '2', '--', '-dash'],
    ];
    try {
      for (const args of steps) {
        const r = await cli(...args);
        expect(r.stderr, args.join(' ')).not.toMatch(/No VM named|unknown option|Run `vivarium help/);
        expect(badMentions(r.stderr), args.join(' ')).toEqual([]);
        // A VM without a display has no screen to save: the one expected failure, said plainly.
        if (args[0] === 'screenshot') expect(r.code === 0 || /display/i.test(r.stderr), r.stderr).toBe(true);
        else expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      }
    } finally {
      await cli('stop', '--force', '--', '-dash');
    }
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);

    // Every other command that takes a VM first (added since: ssh, clone, …), on the stopped VM with
    // placeholders for its other arguments: whatever it says, it must have found "-dash".
    const covered = new Set([...steps.map((s) => s[0]!), 'show', 'create', 'delete']);
    for (const [command, spec] of Object.entries(COMMANDS)) {
      if (spec.positionals[0] !== 'NAME' || covered.has(command)) continue;
      const needed = spec.positionals.length - (spec.optionalPositionals ?? 0);
      // Placeholders are paths inside the test's library, so a command that writes its argument
      // (export NAME FILE) leaves nothing in the working folder.
      const rest = Array.from({ length: Math.max(0, needed - 1) }, (_, i) => path.join(t.home, `dash-arg-${i}`));
      const r = await cli(command, '--', '-dash', ...rest);
      expect(r.stderr, `${command} -- -dash ${rest.join(' ')}`).not.toMatch(/No VM named|unknown option/);
      expect(badMentions(r.stderr), command).toEqual([]);
    }
    expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
    const edited = await runCliJson<{ config: { cpus: number } }>(['show', '--json', '--', '-dash'], { env: t.env });
    expect(edited.config.cpus).toBe(2);
    // A command above (clone) may have made more VMs from it; they go first.
    for (const vm of await runCliJson<{ name: string }[]>(['list', '--json'], { env: t.env })) {
      if (vm.name !== '-dash') expect((await cli('delete', '--', vm.name)).code).toBe(0);
    }
    const deleted = await cli('delete', '--', '-dash');
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/Deleted -dash\./);
  });
});

describe('suggestions', () => {
  it('badMentions finds commands and options that do not exist', () => {
    expect(badMentions('Run `vivarium edit x --disk PATH`.')).toHaveLength(1);
    expect(badMentions('see `vivarium frob`')).toHaveLength(1);
    expect(badMentions('Run `vivarium help frob` for usage.')).toHaveLength(1);
    expect(badMentions('Run `vivarium edit x --cpus 2` or `vivarium stop x --force`.')).toEqual([]);
    expect(badMentions('`vivarium edit --cpus 2 -- -x`')).toEqual([]);
    expect(badMentions('Shut it down first (vivarium stop x --now)')).toHaveLength(1);
    expect(badMentions('vivarium start: unknown option --x. the vivarium command')).toEqual([]);
  });

  it('no message in the sources names a command or an option the CLI does not have', () => {
    const root = path.resolve(__dirname, '..');
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name) && !p.includes(`${path.sep}test-support${path.sep}`)) files.push(p);
      }
    };
    walk(root);
    walk(path.resolve(root, '..', 'renderer'));
    const bad: string[] = [];
    for (const file of files) {
      fs.readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          // Comments describe, they do not tell a person what to type.
          if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
          for (const m of badMentions(line.replace(/\\`/g, '`'))) bad.push(`${path.relative(root, file)}:${i + 1}: ${m}`);
        });
    }
    expect(bad).toEqual([]);
  });
});
