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

describe('compileSerialPattern on plain text (substring search, no RE2 automaton)', () => {
  it('answers as RE2 would for any text without regex syntax', async () => {
    const fc = await import('fast-check');
    const { RE2JS } = await import('re2js');
    const plain = fc.string({ unit: fc.constantFrom('a', 'b', 'B', ' ', ':', '-', '\n', 'é', '#'), minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(plain, fc.string({ unit: fc.constantFrom('a', 'b', 'B', ' ', ':', '-', '\n', 'é', '#'), maxLength: 40 }), (pattern, text) => {
        const re2 = RE2JS.compile(pattern, RE2JS.MULTILINE).matcher(text).find();
        expect(compileSerialPattern(pattern).test(text)).toBe(re2);
      }),
    );
  });
  it('still treats anything with syntax as a pattern', () => {
    expect(compileSerialPattern('login.').test('login:')).toBe(true);
    expect(compileSerialPattern('a+b').test('a+b')).toBe(false);
    expect(compileSerialPattern('a\\+b').test('a+b')).toBe(true);
    expect(() => compileSerialPattern('(a')).toThrow(/not a valid pattern/);
  });
});
