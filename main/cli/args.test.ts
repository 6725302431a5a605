import { describe, expect, it } from 'vitest';
import { asksForHelp, parseArgs, UsageError, type CommandSpec } from './args';

const spec: CommandSpec = {
  usage: 'thing NAME [options]',
  summary: 'A test command.',
  positionals: ['NAME'],
  flags: {
    count: { type: 'number', value: 'N', help: 'a number' },
    label: { type: 'string', help: 'a string' },
    tag: { type: 'string', multiple: true, help: 'repeatable' },
    quiet: { type: 'boolean', help: 'a switch' },
  },
};

const parse = (...argv: string[]) => parseArgs('thing', spec, argv);
const usageError = (...argv: string[]): string => {
  try {
    parse(...argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
};

describe('parseArgs', () => {
  it('reads options before and after positionals, with a space or "="', () => {
    expect(parse('--count', '3', 'vm', '--label=x', '--quiet', '--tag', 'a', '--tag=b')).toEqual({
      positionals: ['vm'],
      flags: { count: 3, label: 'x', quiet: true, tag: ['a', 'b'] },
    });
  });

  it('takes everything after -- as positionals, so a name may start with "-"', () => {
    expect(parse('--quiet', '--', '-dash').positionals).toEqual(['-dash']);
    expect(parse('--', '--help').positionals).toEqual(['--help']);
    expect(parse('--', '--').positionals).toEqual(['--']);
  });

  it('refuses a word that starts with "-" before --, and says where a name like that goes', () => {
    expect(usageError('-dash')).toMatch(/unknown option -dash .*after "--"/);
    expect(usageError('-5')).toMatch(/unknown option -5/);
    expect(usageError('-x', 'vm')).toMatch(/unknown option -x/);
  });

  it('refuses unknown options, including Object.prototype keys', () => {
    expect(usageError('vm', '--bogus')).toBe('unknown option --bogus');
    expect(usageError('vm', '--constructor')).toBe('unknown option --constructor');
    expect(usageError('vm', '--__proto__=1')).toBe('unknown option --__proto__');
  });

  it('refuses numbers that are not plain decimals', () => {
    for (const bad of ['abc', '', ' ', '0x10', '1e3', 'Infinity', 'NaN', '1,5', '--']) {
      expect(usageError('vm', '--count', bad), bad).toMatch(/--count (must be a number|needs a value)/);
    }
    expect(parse('vm', '--count', '2.5').flags.count).toBe(2.5);
    expect(parse('vm', '--count=-1').flags.count).toBe(-1);
  });

  it('refuses missing values, values for switches, and an option given twice', () => {
    expect(usageError('vm', '--label')).toMatch(/--label needs a value/);
    expect(usageError('vm', '--quiet=yes')).toBe('--quiet takes no value');
    expect(usageError('vm', '--label', 'a', '--label', 'b')).toBe('--label was given twice');
    expect(usageError('vm', '--quiet', '--quiet')).toBe('--quiet was given twice');
  });

  it('refuses missing and extra positionals', () => {
    expect(usageError()).toBe('missing NAME');
    expect(usageError('a', 'b')).toBe('unexpected argument "b"');
  });
});

describe('parseArgs: operands of a subcommand group (tester-s5 #11)', () => {
  const group: CommandSpec = {
    usage: 'snap create|rename NAME [SNAPSHOT] [NEWNAME]',
    summary: 'A group.',
    positionals: ['ACTION', 'NAME', 'SNAPSHOT', 'NEWNAME'],
    optionalPositionals: 2,
    actions: ['create', 'rename'],
    flags: {},
  };
  const err = (...argv: string[]): string => {
    try {
      parseArgs('snap', group, argv);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('no usage error');
  };

  it('names the operand a "-" word stands in for, never the ACTION', () => {
    expect(err('create', 'vm', '-dash')).toBe('unknown option -dash (a SNAPSHOT that starts with "-" goes after "--", at the end)');
    expect(err('rename', 'vm', 's', '-x')).toMatch(/\(a NEWNAME that/);
    expect(err('create', '-x')).toMatch(/\(a NAME that/);
    expect(err('-x')).toBe('unknown option -x');
  });

  it('a missing ACTION lists the actions; a missing operand names only the required ones', () => {
    expect(err()).toBe('missing ACTION (one of create, rename)');
    expect(err('grow', 'vm')).toBe('unknown action "grow"; use one of create, rename');
    expect(err('create')).toBe('missing NAME');
  });
});

describe('asksForHelp', () => {
  it('sees --help and -h only before --', () => {
    expect(asksForHelp(['vm', '--help'])).toBe(true);
    expect(asksForHelp(['-h'])).toBe(true);
    expect(asksForHelp(['--', '--help'])).toBe(false);
    expect(asksForHelp(['--', '-h'])).toBe(false);
    expect(asksForHelp(['vm'])).toBe(false);
  });
});
