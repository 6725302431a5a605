/**
 * What every service file of the contract shares: events and disposables, the argument schemas
 * more than one service takes (a VM reference, a host path), and the shape of one service's entry
 * in the schema table.
 */
import { z } from 'zod';

export interface Disposable {
  dispose(): void;
}
export type Event<T> = (listener: (e: T) => void) => Disposable;

/** A VM reference: its name or its id. */
export const VmRef = z.string().min(1, 'a VM name or id is required').max(200);

/** A host path from a front end: absolute (a relative one would resolve against whichever process
 *  happens to serve the call), without NUL or `..` segments. */
export const AbsPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'must not contain NUL')
  .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'must be an absolute path')
  .refine((p) => !p.split(/[\\/]/).includes('..'), 'must not contain ".." segments');

/** The method names of a service interface: every member not named `onDidX`. */
export type MethodNames<S> = { [K in keyof S]: K extends `onDid${string}` ? never : K }[keyof S] & string;
/** The event names of a service interface: every member named `onDidX`. */
export type EventNames<S> = { [K in keyof S]: K extends `onDid${string}` ? K : never }[keyof S] & string;

/**
 * One service's row of the schema table: a zod tuple per method (the arguments, checked before the
 * service sees them) and the list of its events. The table is also the allow-list of what a client
 * may reach.
 */
export interface ServiceSchema<S> {
  readonly methods: { readonly [M in MethodNames<S>]: z.ZodTuple };
  readonly events: readonly EventNames<S>[];
}
