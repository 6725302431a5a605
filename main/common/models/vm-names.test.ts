/** Name rules (issue 8 item 5, tester finding 7): no id form, width forms compared folded. */
import { describe, expect, it } from 'vitest';
import { NewVmName, readsAsVmId } from './vm-config';
import { findNameClash, nameKey } from './vm-settings';

const ID = '6ce73a25-552e-4eec-986a-32d07f2268ea';

describe('readsAsVmId', () => {
  it('refuses every spelling of an id: whole, without dashes, 8+ character prefix, any case or width', () => {
    for (const n of [ID, ID.replace(/-/g, ''), ID.replace(/-/g, '').toUpperCase(), ID.slice(0, 8), ID.slice(0, 13), ' 6ce73a25 ', '\uff16\uff43\uff45\uff17\uff13\uff41\uff12\uff15']) {
      expect(readsAsVmId(n), n).toBe(true);
      expect(NewVmName.safeParse(n).success, n).toBe(false);
    }
  });
  it('keeps names that only resemble hex', () => {
    for (const n of ['6ce73a2', 'decade-old', '0123456789abcdef0', ID.replace(/-/g, '').slice(0, 31) + 'g', `${ID.replace(/-/g, '')}0`]) {
      expect(readsAsVmId(n), n).toBe(false);
    }
  });
  it('says what the rule is in its sentence', () => {
    const r = NewVmName.safeParse(ID.replace(/-/g, ''));
    expect(!r.success && r.error.issues[0]!.message).toMatch(/a whole id, with or without its dashes, or its first 8 or more characters/);
  });
});

describe('names compared after NFKC and case folding', () => {
  it('treats fullwidth and compatibility forms as the name they look like', () => {
    expect(nameKey('\uff47\uff11')).toBe(nameKey('g1'));
    expect(nameKey('\uff27\uff11')).toBe(nameKey('g1'));
    expect(nameKey('\ufb01le')).toBe(nameKey('file'));
    expect(nameKey('cafe\u0301')).toBe(nameKey('caf\u00e9'));
    expect(findNameClash('\uff47\uff11', [{ id: 'a', name: 'g1' }], null)).toMatchObject({ name: 'g1' });
    expect(findNameClash('g2', [{ id: 'a', name: 'g1' }], null)).toBeNull();
  });
});
