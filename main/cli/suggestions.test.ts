/**
 * Every `vivarium …` command the engine writes into a message must exist, with flags its command
 * has: a suggestion that does not run is worse than none. Scans the engine's sources (not comments)
 * and checks each suggestion against the real command table. Remedies (main/cli/remedy.ts) are the
 * better way to suggest a command; this catches the sentences that still carry one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from './commands';

const ROOT = path.join(__dirname, '..');
const SCANNED = ['services', 'common', 'server'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

interface Suggestion {
  readonly where: string;
  readonly command: string;
  readonly flags: readonly string[];
  /** Words that are not flags or flag values (NAME, PATH, an interpolated value). */
  readonly positionals: number;
  readonly text: string;
}

/** `vivarium COMMAND [words…]` in code lines (comments skipped); `${…}` stands for a value. */
function suggestions(): Suggestion[] {
  const found: Suggestion[] = [];
  for (const dir of SCANNED) {
    for (const file of sources(path.join(ROOT, dir))) {
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const code = line.trim();
        if (code.startsWith('*') || code.startsWith('//') || code.startsWith('/*')) return;
        for (const m of code.matchAll(/\bvivarium ([a-z][a-z-]*)([^`)'".;]*)/g)) {
          const command = m[1]!;
          const rest = (m[2] ?? '').replace(/\$\{[^}]*\}/g, 'VALUE');
          const words = rest.trim().split(/\s+/).filter((w) => w !== '');
          const flags: string[] = [];
          let positionals = 0;
          for (let k = 0; k < words.length; k++) {
            const w = words[k]!;
            if (w === '--') continue;
            if (w.startsWith('--')) {
              flags.push(w);
              const spec = COMMANDS[command]?.flags[w.slice(2)];
              if (spec && spec.type !== 'boolean') k++; // its value
            } else if (/^[A-Z]+$|^VALUE$|^'.*'$/.test(w)) {
              positionals++;
            } else {
              break; // prose after the command ("to see your VMs")
            }
          }
          found.push({ where: `${path.relative(ROOT, file)}:${i + 1}`, command, flags, positionals, text: m[0] });
        }
      });
    }
  }
  return found;
}

describe('commands suggested in engine messages', () => {
  const all = suggestions();
  // "vivarium rpc:" (a log prefix) and "vivarium serve:" (its own stderr prefix) are not suggestions.
  const real = all.filter((s) => !/^vivarium [a-z-]+:/.test(s.text));

  it('finds the suggestions (the scan works)', () => {
    expect(real.length).toBeGreaterThan(3);
  });

  it.each(real.map((s) => [s.where, s] as const))('%s names a command, its arguments and flags that exist', (_where, s) => {
    const spec = COMMANDS[s.command];
    expect(spec, `${s.where}: "${s.text}" names no command`).toBeDefined();
    for (const flag of s.flags) {
      expect(Object.keys(spec!.flags).map((f) => `--${f}`), `${s.where}: "${s.text}"`).toContain(flag);
    }
    // A suggestion with flags must also give the arguments the command requires ("stop NAME --force").
    if (s.flags.length > 0) {
      const required = spec!.positionals.length - (spec!.optionalPositionals ?? 0);
      expect(s.positionals, `${s.where}: "${s.text}" lacks ${spec!.positionals.join(' ')}`).toBeGreaterThanOrEqual(required);
    }
  });
});
