import { describe, expect, it } from 'vitest';
import { parseRoute, routeHash, routeUrl } from './router';

describe('parseRoute', () => {
  it('maps the empty and root hashes to the library', () => {
    expect(parseRoute('')).toEqual({ kind: 'library' });
    expect(parseRoute('#')).toEqual({ kind: 'library' });
    expect(parseRoute('#/')).toEqual({ kind: 'library' });
  });
  it('maps #/host to the host view', () => {
    expect(parseRoute('#/host')).toEqual({ kind: 'host' });
    expect(parseRoute('#/host/')).toEqual({ kind: 'host' });
    expect(parseRoute('#/hosts')).toEqual({ kind: 'not-found', path: '/hosts' });
  });
  it('reads a VM id, decoding it', () => {
    expect(parseRoute('#/vm/0b7c1f1e-1')).toEqual({ kind: 'vm', id: '0b7c1f1e-1' });
    expect(parseRoute('#/vm/a%20b/')).toEqual({ kind: 'vm', id: 'a b' });
  });
  it('rejects unknown paths and malformed ids', () => {
    expect(parseRoute('#/vm/')).toEqual({ kind: 'not-found', path: '/vm/' });
    expect(parseRoute('#/vm/a/b')).toEqual({ kind: 'not-found', path: '/vm/a/b' });
    expect(parseRoute('#/vm/%E0%A4%A')).toEqual({ kind: 'not-found', path: '/vm/%E0%A4%A' });
    expect(parseRoute('#/settings')).toEqual({ kind: 'not-found', path: '/settings' });
  });
});

describe('routeHash / routeUrl', () => {
  it('round-trips through parseRoute', () => {
    for (const r of [{ kind: 'library' }, { kind: 'host' }, { kind: 'vm', id: 'x/y z' }] as const) {
      expect(parseRoute(routeHash(r))).toEqual(r);
    }
  });
  it('keeps the query string (the browser token) and replaces the hash', () => {
    expect(routeUrl('http://127.0.0.1:7000/?token=abc#/', { kind: 'vm', id: 'id1' })).toBe(
      'http://127.0.0.1:7000/?token=abc#/vm/id1',
    );
  });
});
