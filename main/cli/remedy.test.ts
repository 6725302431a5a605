import { describe, expect, it } from 'vitest';
import { ErrorCode, Remedy, SettingField, VivariumError, deserializeError, errors } from '../common/errors';
import { parseArgs } from './args';
import { COMMANDS } from './commands';
import { cliRemedy, formatCliError } from './remedy';

/** POSIX shell words, enough for what shellArg produces (plain words and '…' with '\'' inside). */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      cur += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (ch === '\\') {
      cur += text[++i] ?? '';
      inWord = true;
    } else if (ch === ' ') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** Every `vivarium …` command in a text must parse with the real command table. */
function assertCommandsExist(text: string): string[][] {
  const found: string[][] = [];
  for (const m of text.matchAll(/`vivarium ([^`]*)`/g)) {
    const [command, ...rest] = shellWords(m[1]!);
    const spec = COMMANDS[command!];
    expect(spec, `command "${command}" in: ${text}`).toBeDefined();
    // Placeholders (NEWNAME, SIZE, PATH) stand for values; the parse checks the flags and positionals.
    const sample = rest.map((w) => (w === 'N' ? '2' : w));
    expect(() => parseArgs(command!, spec!, sample), text).not.toThrow();
    found.push([command!, ...rest]);
  }
  // A bare flag outside a command must exist on the command being run (create or edit).
  return found;
}

function flagsOutsideCommands(text: string): string[] {
  return [...text.replace(/`[^`]*`/g, '').matchAll(/(--[a-z-]+)/g)].map((m) => m[1]!);
}

const VM_NAMES = ['web', 'my vm', "it's", '-dash', 'café'];

/** One example of every remedy kind, for names that need quoting too. */
function examples(vm: string): Remedy[] {
  const list: Remedy[] = [
    { kind: 'stop-vm', vm },
    { kind: 'force-stop', vm },
    { kind: 'start-vm', vm },
    { kind: 'lower', field: 'cpus', max: 4, vm },
    { kind: 'lower', field: 'memoryMiB', max: 1536, vm },
    { kind: 'lower', field: 'memoryMiB', max: 2048 },
    { kind: 'install', what: 'QEMU for aarch64 guests', packages: { debian: ['qemu-system-arm'], fedora: ['qemu-system-aarch64'], macos: ['qemu'] } },
    { kind: 'rename', taken: 'other', vm },
    { kind: 'rename', taken: 'other' },
    { kind: 'use-id' },
    { kind: 'list-vms' },
    { kind: 'retry-later', afterSec: 2.5 },
    { kind: 'retry-later' },
    { kind: 'start-engine' },
    { kind: 'see-log', file: '/vms/web/qemu.log' },
    { kind: 'check-host' },
  ];
  for (const field of SettingField.options) {
    list.push({ kind: 'change-setting', field, vm });
    list.push({ kind: 'change-setting', field });
    list.push({ kind: 'change-setting', field, to: null, vm });
    list.push({ kind: 'change-setting', field, to: null });
  }
  list.push({ kind: 'change-setting', field: 'net', to: 'user', vm }, { kind: 'change-setting', field: 'accel', to: 'auto' }, { kind: 'change-setting', field: 'memoryMiB', to: '3072', vm });
  return list;
}

describe('the CLI words every remedy as a command that exists', () => {
  it('covers every remedy kind', () => {
    const kinds = new Set(examples('web').map((r) => r.kind));
    expect([...kinds].sort()).toEqual(Remedy.options.map((o) => o.shape.kind.value).sort());
  });

  it.each(VM_NAMES)('every suggested command parses with the real command table (VM %j)', (vm) => {
    for (const r of examples(vm)) {
      for (const command of ['create', 'edit', 'start']) {
        const text = cliRemedy(r, { command });
        expect(text, JSON.stringify(r)).toMatch(/\.$/);
        const cmds = assertCommandsExist(text);
        // The VM's own name comes back exactly, whatever it holds.
        if ('vm' in r && r.vm !== undefined && cmds.length > 0 && command !== 'create' && !text.includes('create a new one')) {
          expect(cmds.some((c) => c.includes(vm)), text).toBe(true);
        }
        // A bare flag is one the command being run (or edit, when it says so) has.
        for (const flag of flagsOutsideCommands(text)) {
          const owner = command === 'create' ? 'create' : 'edit';
          expect(Object.keys(COMMANDS[owner]!.flags).map((f) => `--${f}`), `${flag} in: ${text}`).toContain(flag);
        }
      }
    }
  });

  it('reads naturally for the common cases', () => {
    expect(cliRemedy({ kind: 'stop-vm', vm: 'my vm' })).toBe("Shut it down first: `vivarium stop 'my vm'`.");
    expect(cliRemedy({ kind: 'stop-vm', vm: '-dash' })).toBe('Shut it down first: `vivarium stop -- -dash`.');
    expect(cliRemedy({ kind: 'lower', field: 'memoryMiB', max: 4096 }, { command: 'create' })).toBe('Use --memory 4G or less.');
    expect(cliRemedy({ kind: 'lower', field: 'memoryMiB', max: 1536, vm: 'web' }, { command: 'edit' })).toBe('Lower it: `vivarium edit web --memory 1536M` (1536 MiB or less).');
    expect(cliRemedy({ kind: 'change-setting', field: 'iso', to: null, vm: 'web' })).toBe('Change it: `vivarium edit web --no-iso`.');
    expect(cliRemedy({ kind: 'change-setting', field: 'kernel', to: null }, { command: 'create' })).toBe('Leave out --kernel.');
    expect(cliRemedy({ kind: 'change-setting', field: 'diskPath', vm: 'web' }, { command: 'start' })).toBe(
      'An existing VM cannot change this: create a new one, e.g. `vivarium create NEWNAME --disk PATH`.',
    );
  });
});

describe('a new VM name is asked for the way the command being run takes it (tester-s5 #7)', () => {
  // Every command that names a new VM: create's NAME, an operand called NEWNAME, or a --name flag.
  const naming = Object.entries(COMMANDS).filter(([c, spec]) => c === 'create' || spec.positionals.includes('NEWNAME') || Object.hasOwn(spec.flags, 'name'));

  it.each(naming.map(([c]) => c))('%s names its own operand or flag', (command) => {
    const spec = COMMANDS[command]!;
    if (command === 'snapshot') return; // its NEWNAME is a snapshot's, worded by the snapshot commands
    for (const r of [{ kind: 'change-setting', field: 'name' }, { kind: 'rename', taken: 'web' }] as Remedy[]) {
      const text = cliRemedy(r, { command });
      assertCommandsExist(text);
      const operand = /^Choose another ([A-Z]+)\.$/.exec(text)?.[1];
      if (operand) expect(spec.positionals, text).toContain(operand);
      else for (const flag of flagsOutsideCommands(text)) expect(Object.keys(spec.flags).map((f) => `--${f}`), `${command}: ${text}`).toContain(flag);
    }
  });

  it('words each one as that command takes it', () => {
    expect(naming.map(([c]) => c)).toEqual(expect.arrayContaining(['create', 'clone', 'import', 'edit']));
    const name = { kind: 'change-setting', field: 'name' } as const;
    expect(cliRemedy(name, { command: 'clone' })).toBe('Choose another NEWNAME.');
    expect(cliRemedy(name, { command: 'create' })).toBe('Choose another NAME.');
    expect(cliRemedy(name, { command: 'import' })).toBe('Use --name NEWNAME.');
    expect(cliRemedy(name, { command: 'edit' })).toBe('Use --name NEWNAME.');
  });
});

describe('formatCliError', () => {
  it('words a name refusal as about the new name for the commands that name a VM', () => {
    const e = new VivariumError(ErrorCode.InvalidArgument, 'Invalid VM settings: Name is required.', undefined, { remedy: { kind: 'change-setting', field: 'name' } });
    expect(formatCliError(e, { command: 'clone' })).toBe("The new VM's name is required. Choose another NEWNAME.");
    expect(formatCliError(e, { command: 'edit' })).toBe('The new name is required. Use --name NEWNAME.');
    const cpus = new VivariumError(ErrorCode.InvalidArgument, 'Invalid VM settings: CPUs must be a number.');
    expect(formatCliError(cpus, { command: 'create' })).toBe('Invalid VM settings: CPUs must be a number.');
  });

  it('adds the remedy to the engine sentence, also after the error crossed a transport', () => {
    const e = deserializeError(JSON.parse(JSON.stringify(errors.mustStop('web', 'running', 'change its settings'))));
    expect(formatCliError(e, { command: 'edit' })).toBe('"web" is running; it must be shut down to change its settings. Shut it down first: `vivarium stop web`.');
    expect(formatCliError(errors.notFound('nope'))).toBe('No VM named or with id "nope". Run `vivarium list` to see your VMs.');
  });
  it('keeps a message that already names a command, and one without a remedy', () => {
    const legacy = new VivariumError(ErrorCode.InvalidState, 'Stop it first (`vivarium stop web`).', undefined, { remedy: { kind: 'stop-vm', vm: 'web' } });
    expect(formatCliError(legacy)).toBe('Stop it first (`vivarium stop web`).');
    expect(formatCliError(errors.invalid('Bad.'))).toBe('Bad.');
  });
  it('drops a remedy from the wire that does not parse, keeping the message', () => {
    const e = deserializeError({ code: 'invalid-state', message: 'Hm.', remedy: { kind: 'rm-rf', vm: 'x' } });
    expect(e.remedy).toBeUndefined();
    expect(formatCliError(e)).toBe('Hm.');
  });
});
