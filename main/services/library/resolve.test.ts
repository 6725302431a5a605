import { describe, expect, it } from 'vitest';
import { VivariumError } from '../../common/errors';
import type { BundleEntry } from '../bundles/bundle-store';
import type { VmConfig } from '../../common/models/vm-config';
import { resolveRef } from './resolve';

function vm(id: string, name: string): BundleEntry {
  return { id, dir: `/lib/${id}`, ok: true, config: { id, name } as unknown as VmConfig };
}

const A = vm('aaaaaaaa-1111-4000-8000-000000000001', 'web');
const B = vm('bbbbbbbb-2222-4000-8000-000000000002', 'Build');
/** A VM named like another VM's short id. */
const C = vm('cccccccc-3333-4000-8000-000000000003', 'aaaaaaaa');
const broken: BundleEntry = { id: 'dddddddd-4444-4000-8000-000000000004', dir: '/lib/d', ok: false, error: 'bad json', name: 'old' };

function refusal(fn: () => unknown): VivariumError {
  try {
    fn();
  } catch (e) {
    if (e instanceof VivariumError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('resolveRef', () => {
  it('finds a VM by id, name, id prefix, or name without case', () => {
    expect(resolveRef([A, B], A.id)).toBe(A);
    expect(resolveRef([A, B], A.id.toUpperCase())).toBe(A);
    expect(resolveRef([A, B], 'web')).toBe(A);
    expect(resolveRef([A, B], ' web ')).toBe(A);
    expect(resolveRef([A, B], 'bbbbbbbb')).toBe(B);
    expect(resolveRef([A, B], 'build')).toBe(B);
    expect(resolveRef([A, B, broken], 'old')).toBe(broken);
  });

  it('compares names after Unicode normalisation', () => {
    const nfd = vm('eeeeeeee-5555-4000-8000-000000000005', 'cafe\u0301');
    expect(resolveRef([nfd], 'caf\u00e9')).toBe(nfd);
  });

  it('refuses a reference that could mean two VMs, naming both, and says to use the id', () => {
    // C is named like A's short id: "aaaaaaaa" means C by name and A by id prefix.
    const e = refusal(() => resolveRef([A, B, C], 'aaaaaaaa'));
    expect(e.code).toBe('invalid-argument');
    expect(e.message).toMatch(/^"aaaaaaaa" could mean more than one VM: /);
    expect(e.message).toContain(`"web" (id ${A.id}, by its id prefix)`);
    expect(e.message).toContain(`"aaaaaaaa" (id ${C.id}, by its name)`);
    expect(e.message).toMatch(/Nothing was done/);
    expect(e.remedy).toEqual({ kind: 'use-id' });
    // The full id still reaches each one.
    expect(resolveRef([A, B, C], A.id)).toBe(A);
    expect(resolveRef([A, B, C], C.id)).toBe(C);
  });

  it('refuses two VMs with the same name', () => {
    const twin = vm('ffffffff-6666-4000-8000-000000000006', 'web');
    expect(refusal(() => resolveRef([A, twin], 'web')).message).toMatch(/could mean more than one VM/);
  });

  it('prefers an exact name over names that only match without case', () => {
    const upper = vm('ffffffff-7777-4000-8000-000000000007', 'WEB');
    expect(resolveRef([A, upper], 'WEB')).toBe(upper);
    expect(refusal(() => resolveRef([A, upper], 'Web')).message).toMatch(/could mean more than one VM/);
  });

  it('says when nothing matches; a short prefix is not an id', () => {
    expect(refusal(() => resolveRef([A], 'nope')).code).toBe('not-found');
    expect(refusal(() => resolveRef([A], 'aaaa')).code).toBe('not-found');
  });
});
