/** --wait-serial's error sentence (tester finding 12): only what the user typed, never the flag prefix. */
import { describe, expect, it } from 'vitest';
import { compileSerialPattern } from './serial-wait';

describe('compileSerialPattern errors', () => {
  it('quote the pattern as typed, without the (?m) that multi-line mode adds', () => {
    for (const bad of ['(', 'a)b']) {
      let message = '';
      try {
        compileSerialPattern(bad);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, bad).toMatch(/^--wait-serial is not a valid pattern: /);
      expect(message, bad).toContain(`\`${bad}\``);
      expect(message, bad).not.toContain('(?m)');
    }
  });
  it('still matches at each line start (the multi-line mode itself is kept)', () => {
    expect(compileSerialPattern('^READY$').test('boot\nREADY\nmore')).toBe(true);
  });
});
