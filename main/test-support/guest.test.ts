import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { directBootArgs, testGuest, testGuestDir } from './guest';

describe('testGuest', () => {
  it('reads what globalSetup built', () => {
    const g = testGuest();
    expect(fs.existsSync(g.kernel)).toBe(true);
    expect(fs.existsSync(g.initrd)).toBe(true);
    expect(g.readyMarker).toBe('VIVARIUM-GUEST-READY');
    expect(directBootArgs(g)).toEqual(['-kernel', g.kernel, '-initrd', g.initrd, '-append', g.append]);
  });

  it('says how to build the guest when it is missing', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'viv-noguest-'));
    try {
      const env = { VIVARIUM_TEST_CACHE: empty };
      expect(testGuestDir(env)).toBe(empty);
      expect(() => testGuest(env)).toThrow(/not built[\s\S]*build-test-guest\.mjs/);
      fs.writeFileSync(path.join(empty, 'guest.json'), '{"version":1,"kernel":3}');
      expect(() => testGuest(env)).toThrow(/not what this code expects/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
