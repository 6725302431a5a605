/**
 * What `vivarium help COMMAND` shows: a usage line that names every option of the command (unless
 * it says "[options]" and the list follows), so the line a person copies from does not hide one
 * (tester-s5 #17: a help text that left out an option). Pure: the command table only.
 */
import { describe, expect, it } from 'vitest';
import { COMMANDS } from './commands';

describe('help', () => {
  it('each usage line names every option of its command, or says [options]', () => {
    const omitted = Object.entries(COMMANDS).flatMap(([name, spec]) =>
      spec.usage.includes('[options]') ? [] : Object.keys(spec.flags).filter((f) => !spec.usage.includes(`--${f}`)).map((f) => `${name} --${f}`),
    );
    expect(omitted).toEqual([]);
  });
});
