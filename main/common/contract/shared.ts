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

/** Whose rules an absolute path follows: the platform of the process checking it (the engine checks
 *  every call, with its own platform's rules); where there is no process (a browser page's form),
 *  either, since the engine checks again. */
export type PathRules = 'posix' | 'win32' | 'either';

export function hostPathRules(): PathRules {
  const platform = (globalThis as { process?: { platform?: string } }).process?.platform;
  return platform === undefined ? 'either' : platform === 'win32' ? 'win32' : 'posix';
}

/**
 * Whether `p` is absolute under `rules`, as path.posix/path.win32 would say, but stricter on Windows:
 * a drive path (`C:\…`, `C:/…`) or a UNC share (`\\server\share\…`); device namespaces
 * (`\\?\`, `\\.\`) and drive-relative forms (`\x`, `C:x`) are refused. On Linux and macOS only
 * `/…`: `c:/boot/vmlinuz` is a relative path there.
 */
export function isAbsoluteFor(p: string, rules: PathRules = hostPathRules()): boolean {
  const posix = p.startsWith('/');
  const win = /^[A-Za-z]:[\\/]/.test(p) || /^[\\/]{2}(?![?.][\\/])[^\\/]+[\\/][^\\/]+/.test(p);
  return rules === 'posix' ? posix : rules === 'win32' ? win : posix || win;
}

/** A host path from a front end: absolute by the rules of the host that will use it (a relative one
 *  would resolve against whichever process happens to serve the call), without NUL or `..` segments. */
export const AbsPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'must not contain NUL')
  .refine((p) => isAbsoluteFor(p), {
    error: () => (hostPathRules() === 'win32' ? 'must be an absolute path, such as C:\\images\\disk.qcow2' : 'must be an absolute path, starting with /'),
  })
  .refine((p) => !p.split(/[\\/]/).includes('..'), 'must not contain ".." segments');

/**
 * A schema built the first time something uses it (parses with it, reads `.shape`, wraps it in
 * another schema) rather than when its module loads. The contract declares hundreds of schemas and a
 * command uses a few: building them all cost a few ms of every `vivarium` command (issue 7). The
 * result behaves as the schema `build` returns (same type, same methods, same checks; `instanceof`
 * works through zod's own trait test): property reads, `in` and the prototype are forwarded to it.
 * `build` runs at most once.
 */
export function lazySchema<T extends z.ZodType>(build: () => T): T {
  let built: T | undefined;
  const real = (): T => (built ??= build());
  return new Proxy({} as T, {
    get: (_t, prop) => Reflect.get(real(), prop, real()) as unknown,
    set: (_t, prop, value) => Reflect.set(real(), prop, value),
    has: (_t, prop) => Reflect.has(real(), prop),
    getPrototypeOf: () => Reflect.getPrototypeOf(real()),
  });
}

/**
 * A service's method table whose argument tuples are built on first use, one by one (see
 * lazySchema): each entry is an own, enumerable property, so `Object.hasOwn` and `Object.keys` see
 * every method without building any tuple.
 */
export function lazyTuples<K extends string>(builders: { readonly [M in K]: () => z.ZodTuple }): { readonly [M in K]: z.ZodTuple } {
  const table = {} as { [M in K]: z.ZodTuple };
  for (const name of Object.keys(builders) as K[]) {
    let built: z.ZodTuple | undefined;
    Object.defineProperty(table, name, { enumerable: true, get: () => (built ??= builders[name]()) });
  }
  return table;
}

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
