/** A small, strict argument parser: unknown flags and missing values are usage errors, never ignored. */

export type FlagType = 'string' | 'boolean' | 'number';
export interface FlagSpec {
  readonly type: FlagType;
  readonly multiple?: boolean;
  readonly help: string;
  readonly value?: string;
}

export interface CommandSpec {
  readonly usage: string;
  readonly summary: string;
  readonly positionals: readonly string[];
  /** Positionals that may be omitted (from the end). */
  readonly optionalPositionals?: number;
  /** For a group of subcommands (`snapshot create|list|…`): the words its first positional, ACTION,
   *  may be. A missing or unknown ACTION is refused with this list before anything else. */
  readonly actions?: readonly string[];
  readonly flags: Readonly<Record<string, FlagSpec>>;
}

export interface Parsed {
  readonly positionals: readonly string[];
  readonly flags: Readonly<Record<string, string | boolean | number | readonly string[] | undefined>>;
}

export class UsageError extends Error {
  constructor(
    message: string,
    readonly command: string | null,
  ) {
    super(message);
  }
}

/** A decimal number as a person types it ("4", "2.5", "-1"); not "0x10", "1e3", "" or "Infinity". */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

/**
 * Parses `argv` (the words after the command) against `spec`. Options may come before, between or
 * after positionals, as `--name value` or `--name=value`; everything after `--` is a positional, so a
 * VM named "-x" is `vivarium start -- -x`. Throws UsageError (exit 2) for an unknown option, a
 * missing or malformed value, an option given twice, and a missing or extra positional.
 */
export function parseArgs(command: string, spec: CommandSpec, argv: readonly string[]): Parsed {
  const positionals: string[] = [];
  const flags: Record<string, string | boolean | number | string[] | undefined> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      const f = Object.hasOwn(spec.flags, name) ? spec.flags[name] : undefined;
      if (!f) throw new UsageError(`unknown option --${name}`, command);
      if (flags[name] !== undefined && !f.multiple) throw new UsageError(`--${name} was given twice`, command);
      let value: string | undefined = eq > 0 ? arg.slice(eq + 1) : undefined;
      if (f.type === 'boolean') {
        if (value !== undefined) throw new UsageError(`--${name} takes no value`, command);
        flags[name] = true;
        continue;
      }
      if (value === undefined) {
        value = argv[i + 1];
        if (value === undefined) throw new UsageError(`--${name} needs a value (${f.value ?? f.type})`, command);
        i++;
      }
      if (f.type === 'number') {
        if (!DECIMAL.test(value.trim())) throw new UsageError(`--${name} must be a number, not "${value}"`, command);
        flags[name] = Number(value);
      } else if (f.multiple) {
        flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
      } else {
        flags[name] = value;
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // The operand this word would be is the next one not yet given (SNAPSHOT in `snapshot create
      // vm -x`); an ACTION is never a "-" word, so nothing is said about it.
      const operand = spec.positionals[positionals.length];
      const isAction = spec.actions !== undefined && positionals.length === 0;
      const hint = operand !== undefined && !isAction ? ` (${/^[AEIOU]/.test(operand) ? 'an' : 'a'} ${operand} that starts with "-" goes after "--", at the end)` : '';
      throw new UsageError(`unknown option ${arg}${hint}`, command);
    }
    positionals.push(arg);
  }
  if (positionals.length > spec.positionals.length) {
    throw new UsageError(`unexpected argument "${positionals[spec.positionals.length]}"`, command);
  }
  if (spec.actions) {
    const list = spec.actions.join(', ');
    if (positionals.length === 0) throw new UsageError(`missing ACTION (one of ${list})`, command);
    if (!spec.actions.includes(positionals[0]!)) throw new UsageError(`unknown action "${positionals[0]}"; use one of ${list}`, command);
  }
  const min = spec.positionals.length - (spec.optionalPositionals ?? 0);
  if (positionals.length < min) {
    // Only the operands still required: the optional ones after them are not "missing".
    throw new UsageError(`missing ${spec.positionals.slice(positionals.length, min).join(' ')}`, command);
  }
  return { positionals, flags };
}

/** True when `--help` or `-h` comes before any `--` (after it, they are names). */
export function asksForHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

export function formatHelp(name: string, spec: CommandSpec): string {
  const lines = [`Usage: vivarium ${spec.usage}`, '', spec.summary];
  const entries = Object.entries(spec.flags);
  if (entries.length) {
    lines.push('', 'Options:');
    const left = entries.map(([n, f]) => `  --${n}${f.type === 'boolean' ? '' : ` ${f.value ?? f.type.toUpperCase()}`}`);
    const width = Math.max(...left.map((l) => l.length)) + 2;
    entries.forEach(([, f], i) => lines.push(`${left[i]!.padEnd(width)}${f.help}`));
  }
  void name;
  return lines.join('\n');
}
