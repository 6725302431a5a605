/**
 * zod issues in a person's words. The RPC server checks every argument with zod; what it refuses
 * must reach a person as "Memory must be at least 16 MiB", never as `arg2.memoryMiB: Too small:
 * expected number to be >=16`. Each issue keeps a machine-readable `field` (its path inside the
 * argument, "memoryMiB", "forwards.0.hostPort") that a form maps to its own control.
 */
import type { z } from 'zod';
import { SettingField, type FieldIssue } from '../errors';
import { FIELD_WORDS } from '../models/vm-settings';

/** Words for argument keys that are not VM settings. Anything else is split at its capitals. */
const OTHER_WORDS: Readonly<Record<string, string>> = {
  timeoutSec: 'timeout',
  waitSerial: 'serial pattern',
  keepDisks: 'keep disks',
  maxBytes: 'size',
  windowMs: 'sample window',
  vm: 'VM',
  hostPort: 'host port',
  guestPort: 'guest port',
  protocol: 'protocol',
};

/** "memoryMiB" → "memory", "forwards.0.hostPort" → "port forward 1: host port". */
export function pathWords(path: readonly PropertyKey[]): string {
  const parts: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const key = path[i];
    if (typeof key === 'number') continue;
    const name = String(key);
    const setting = SettingField.safeParse(name);
    let word = setting.success ? FIELD_WORDS[setting.data] : (OTHER_WORDS[name] ?? name.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase());
    const next = path[i + 1];
    if (typeof next === 'number') word = `${singular(word)} ${next + 1}`;
    parts.push(word);
  }
  return parts.join(': ');
}

function singular(w: string): string {
  return w.endsWith('s') ? w.slice(0, -1) : w;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** One issue as a sentence fragment without the field's name ("must be at least 16 MiB"). */
export function issueText(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      // zod leaves the input out of issues; its message says "received undefined" for a missing one.
      return /received undefined/.test(issue.message) ? 'is required' : `must be ${article(String(issue.expected))}`;
    case 'too_small': {
      const n = Number(issue.minimum);
      if (issue.origin === 'string') return n <= 1 ? 'is required' : `must be at least ${n} characters`;
      if (issue.origin === 'array') return `needs at least ${n}`;
      return issue.message.startsWith('Too small') ? `must be at least ${n}` : issue.message;
    }
    case 'too_big': {
      const n = Number(issue.maximum);
      if (issue.origin === 'string') return `must be at most ${n} characters`;
      if (issue.origin === 'array') return `may have at most ${n}`;
      return issue.message.startsWith('Too big') ? `must be at most ${n}` : issue.message;
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'unrecognized_keys':
      return `has unknown setting${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_format':
      return issue.message.startsWith('Invalid') ? `is not a valid ${issue.format}` : issue.message;
    default:
      return issue.message;
  }
}

function article(type: string): string {
  const word = type === 'int' ? 'whole number' : type;
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

/**
 * Issues of one argument (paths relative to it) → a sentence and one FieldIssue per field. A custom
 * message that starts with its field's word ("memory must be…") is not prefixed again.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): { readonly sentence: string; readonly fields: readonly FieldIssue[] } {
  const fields: FieldIssue[] = [];
  const parts: string[] = [];
  for (const issue of issues.slice(0, 10)) {
    const words = pathWords(issue.path);
    // A whole argument has no field name to lead with: its schema's own message says what it is
    // ("a VM name or id is required"); zod's generic ones start "Too small", "Invalid input"…
    const custom = !/^(Too (small|big)|Invalid|Unrecognized)/.test(issue.message);
    const text = words === '' && custom ? issue.message : issueText(issue);
    const part = words === '' ? capitalize(text) : text.toLowerCase().startsWith(words.toLowerCase()) ? capitalize(text) : `${capitalize(words)}${joinVerb(text)}`;
    parts.push(part);
    fields.push({ field: issue.path.map(String).join('.'), message: part });
  }
  return { sentence: parts.join('; '), fields };
}

/** "must be…", "is required" read on after the field name; anything else after a colon. */
function joinVerb(text: string): string {
  return /^(must|is|has|needs|may)\b/.test(text) ? ` ${text}` : `: ${text}`;
}
