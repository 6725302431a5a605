/**
 * lazySchema and lazyTuples (contract/shared.ts): schemas built on first use behave as the schema
 * itself wherever the contract, the engine and the forms use one, and are built once.
 */
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { lazySchema, lazyTuples } from './shared';
import { CreateVmSpec, vmsSchema } from './vms';
import { contract, SERVICE_NAMES } from './index';

const build = () =>
  z
    .object({ name: z.string().min(1, 'a name is required'), cpus: z.number().int().optional() })
    .strict()
    .superRefine((v, ctx) => {
      if (v.name === 'bad') ctx.addIssue({ code: 'custom', path: ['name'], message: 'not that name' });
    });

describe('lazySchema', () => {
  it('builds nothing until used, then once', () => {
    const spy = vi.fn(build);
    const s = lazySchema(spy);
    expect(spy).not.toHaveBeenCalled();
    expect(s.safeParse({ name: 'a' }).success).toBe(true);
    expect(s.parse({ name: 'b', cpus: 2 })).toEqual({ name: 'b', cpus: 2 });
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('refuses what the schema refuses, with the same issues and paths', () => {
    const lazy = lazySchema(build);
    const eager = build();
    for (const input of [{ name: '' }, { name: 'bad' }, { name: 'x', extra: 1 }, { name: 'x', cpus: 1.5 }, 'not an object']) {
      const a = lazy.safeParse(input);
      const b = eager.safeParse(input);
      expect(a.success).toBe(false);
      expect(a.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual(b.error?.issues.map((i) => [i.path.join('.'), i.message]));
    }
  });

  it('works inside other schemas, through .shape, .optional() and instanceof', () => {
    const s = lazySchema(build);
    expect(s instanceof z.ZodObject).toBe(true);
    expect(s.shape.name.safeParse('').success).toBe(false);
    expect(z.tuple([z.string(), s]).safeParse(['x', { name: 'ok' }]).success).toBe(true);
    expect(z.tuple([z.string(), s]).safeParse(['x', { name: 'bad' }]).error?.issues[0]?.path).toEqual([1, 'name']);
    expect(z.object({ inner: s.optional() }).safeParse({}).success).toBe(true);
    expect(z.object({ inner: s.optional() }).safeParse({ inner: { name: '' } }).success).toBe(false);
  });
});

describe('lazyTuples', () => {
  it('lists every method without building any, and builds each once on use', () => {
    const a = vi.fn(() => z.tuple([z.string()]));
    const b = vi.fn(() => z.tuple([]));
    const t = lazyTuples({ a, b });
    expect(Object.keys(t)).toEqual(['a', 'b']);
    expect(Object.hasOwn(t, 'a') && !Object.hasOwn(t, 'c')).toBe(true);
    expect(a).not.toHaveBeenCalled();
    expect(t.a.safeParse(['x']).success).toBe(true);
    expect(t.a.safeParse([1]).success).toBe(false);
    expect(t.a).toBe(t.a);
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).not.toHaveBeenCalled();
  });
});

describe('the contract, built lazily', () => {
  it('still validates every method of every service with a tuple', () => {
    for (const name of SERVICE_NAMES) {
      for (const [method, tuple] of Object.entries(contract[name].methods as Record<string, z.ZodTuple>)) {
        expect(tuple instanceof z.ZodTuple, `${name}.${method}`).toBe(true);
      }
    }
  });

  it('applies the create rules through the lazy spec and the vms.create tuple alike', () => {
    const bad = { name: 'x', net: 'none', forwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] };
    expect(CreateVmSpec.safeParse(bad).error?.issues[0]?.path).toEqual(['forwards']);
    expect(vmsSchema.methods.create.safeParse([bad]).error?.issues[0]?.path).toEqual([0, 'forwards']);
    expect(CreateVmSpec.shape.name.safeParse('a\u200bb').success).toBe(false);
    expect(vmsSchema.methods.start.safeParse(['vm', { waitSerial: 'login:', timeoutSec: 5 }]).success).toBe(true);
    expect(vmsSchema.methods.start.safeParse(['vm', { nope: true }]).success).toBe(false);
  });
});
