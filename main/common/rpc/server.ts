/**
 * Serves the contract's services over any Connection.
 *
 * The contract table is the allow-list: a name that is not an own key of the table (or a listed
 * event) never reaches the service object, so `__proto__`, `constructor`, `toString` and private
 * helpers are unreachable. Arguments are parsed with the method's zod tuple and the service gets the
 * parsed values (unknown keys rejected or stripped, defaults applied), never the raw ones.
 */
import type { z } from 'zod';
import { contract as defaultContract } from '../contract';
import type { Contract, Disposable, ServiceName, Services } from '../contract';
import { issueRemedy } from '../contract/vms';
import { ErrorCode, SettingField, VivariumError, errors, serializeError, type Remedy } from '../errors';
import { describeIssues } from './issue-words';
import { parseMessage } from './protocol';
import type { CallMessage, Connection, RpcId, RpcMessage, SubMessage } from './protocol';

export interface RpcServerOptions {
  /** Calls in flight per connection before new ones are refused with `busy`. */
  readonly maxPendingCalls?: number;
  /** Live subscriptions per connection before new ones are refused with `busy`. */
  readonly maxSubscriptions?: number;
  /** Told about messages that were dropped or refused as malformed (for the engine's log). */
  readonly onProtocolError?: (reason: string) => void;
}

type ServiceSchemaEntry = {
  readonly methods: Readonly<Record<string, z.ZodTuple>>;
  readonly events: readonly string[];
};

export class RpcServer {
  private readonly maxPendingCalls: number;
  private readonly maxSubscriptions: number;

  constructor(
    private readonly services: Services,
    private readonly contract: Contract = defaultContract,
    private readonly options: RpcServerOptions = {},
  ) {
    this.maxPendingCalls = options.maxPendingCalls ?? 256;
    this.maxSubscriptions = options.maxSubscriptions ?? 256;
  }

  /** Answers everything that arrives on `conn` until it closes (or the returned Disposable is
   *  disposed). Closing the connection disposes all its subscriptions. */
  serve(conn: Connection): Disposable {
    const subscriptions = new Map<RpcId, Disposable>();
    let pendingCalls = 0;
    let active = true;

    const reply = (msg: RpcMessage): void => {
      if (!active) return;
      try {
        conn.send(msg);
      } catch (e) {
        // The value could not be encoded (a bigint, a cycle): that is a bug in the service, and the
        // caller must still get an answer.
        if (msg.t === 'result' && msg.ok) conn.send({ t: 'result', id: msg.id, ok: false, e: serializeError(e) });
        else this.options.onProtocolError?.(`could not send a ${msg.t} message: ${String(e)}`);
      }
    };
    const replyError = (id: RpcId, e: unknown): void => reply({ t: 'result', id, ok: false, e: serializeError(e) });

    const handleCall = async (msg: CallMessage): Promise<void> => {
      if (pendingCalls >= this.maxPendingCalls) {
        replyError(msg.id, errors.busy(`Too many calls in flight (${this.maxPendingCalls}). Wait for some to finish and try again.`));
        return;
      }
      pendingCalls++;
      try {
        const v: unknown = await this.invoke(msg);
        reply({ t: 'result', id: msg.id, ok: true, v });
      } catch (e) {
        replyError(msg.id, e);
      } finally {
        pendingCalls--;
      }
    };

    const handleSub = (msg: SubMessage): void => {
      if (subscriptions.has(msg.id)) {
        replyError(msg.id, errors.invalid(`Subscription id ${msg.id} is already in use.`));
        return;
      }
      if (subscriptions.size >= this.maxSubscriptions) {
        replyError(msg.id, errors.busy(`Too many subscriptions (${this.maxSubscriptions}) on this connection. Dispose some and try again.`));
        return;
      }
      try {
        const subscription = this.subscribe(msg, (v) => reply({ t: 'event', id: msg.id, v }));
        if (!active) {
          subscription.dispose();
          return;
        }
        subscriptions.set(msg.id, subscription);
        reply({ t: 'result', id: msg.id, ok: true, v: null });
      } catch (e) {
        replyError(msg.id, e);
      }
    };

    const onMessage = (raw: unknown): void => {
      const parsed = parseMessage(raw);
      if (!parsed.ok) {
        this.options.onProtocolError?.(`malformed message: ${parsed.reason}`);
        // Answer when the sender is waiting on an id; anything else is dropped.
        if (parsed.id !== null && (parsed.t === 'call' || parsed.t === 'sub')) {
          replyError(parsed.id, errors.invalid(`Malformed RPC message: ${parsed.reason}.`));
        }
        return;
      }
      const msg = parsed.msg;
      switch (msg.t) {
        case 'call':
          void handleCall(msg);
          return;
        case 'sub':
          handleSub(msg);
          return;
        case 'unsub':
          subscriptions.get(msg.id)?.dispose();
          subscriptions.delete(msg.id);
          return;
        case 'result':
        case 'event':
          this.options.onProtocolError?.(`a client sent a ${msg.t} message`);
          return;
      }
    };

    const stop = (): void => {
      if (!active) return;
      active = false;
      messageListener.dispose();
      closeListener.dispose();
      for (const s of subscriptions.values()) disposeQuietly(s, this.options.onProtocolError);
      subscriptions.clear();
    };

    const messageListener = conn.onMessage(onMessage);
    const closeListener = conn.onClose(stop);
    return { dispose: stop };
  }

  private lookup(serviceName: string): { readonly name: ServiceName; readonly schema: ServiceSchemaEntry } {
    if (!Object.hasOwn(this.contract, serviceName)) {
      throw errors.invalid(`There is no service "${serviceName}". Known services: ${Object.keys(this.contract).join(', ')}.`);
    }
    const name = serviceName as ServiceName;
    return { name, schema: this.contract[name] as ServiceSchemaEntry };
  }

  private async invoke(msg: CallMessage): Promise<unknown> {
    const { name, schema } = this.lookup(msg.s);
    const where = `${msg.s}.${msg.m}`;
    if (!Object.hasOwn(schema.methods, msg.m)) {
      if (schema.events.includes(msg.m)) throw errors.invalid(`${where} is an event: subscribe to it instead of calling it.`);
      throw errors.invalid(`There is no method ${where}. Check the name and your Vivarium version.`);
    }
    const tuple = schema.methods[msg.m] as z.ZodTuple;
    const args = parseArgs(tuple, msg.a, where);
    const service = this.services[name];
    const fn: unknown = Reflect.get(service, msg.m);
    if (typeof fn !== 'function') {
      throw new VivariumError(ErrorCode.Unsupported, `${where} is not available in this engine.`);
    }
    return await (fn as (...a: unknown[]) => unknown).apply(service, args);
  }

  private subscribe(msg: SubMessage, emit: (v: unknown) => void): Disposable {
    const { name, schema } = this.lookup(msg.s);
    const where = `${msg.s}.${msg.ev}`;
    if (!schema.events.includes(msg.ev)) throw errors.invalid(`There is no event ${where}. Check the name and your Vivarium version.`);
    const service = this.services[name];
    const event: unknown = Reflect.get(service, msg.ev);
    if (typeof event !== 'function') {
      throw new VivariumError(ErrorCode.Unsupported, `${where} is not available in this engine.`);
    }
    const subscription: unknown = (event as (l: (v: unknown) => void) => unknown).call(service, emit);
    if (!isDisposable(subscription)) throw new Error(`${where} did not return a Disposable`);
    return subscription;
  }
}

function isDisposable(x: unknown): x is Disposable {
  return typeof x === 'object' && x !== null && typeof (x as { dispose?: unknown }).dispose === 'function';
}

function disposeQuietly(d: Disposable, report: ((reason: string) => void) | undefined): void {
  try {
    d.dispose();
  } catch (e) {
    // One broken subscription must not keep the others alive.
    report?.(`disposing a subscription failed: ${String(e)}`);
  }
}

/** The remedy for an argument issue: the one its schema rule names, else "change this setting". */
function remedyOf(issue: z.core.$ZodIssue | undefined): { readonly remedy?: Remedy } {
  if (!issue) return {};
  const rule = issueRemedy(issue);
  if (rule) return { remedy: rule };
  const field = SettingField.safeParse(issue.path[1]);
  return field.success ? { remedy: { kind: 'change-setting', field: field.data } } : {};
}

/** Validates a call's arguments; the count first, because zod's tuple message for it is cryptic. */
export function parseArgs(tuple: z.ZodTuple, args: readonly unknown[], where: string): unknown[] {
  const expected = tuple.def.items.length;
  if (args.length > expected) {
    throw errors.invalid(`${where} takes ${expected} argument${expected === 1 ? '' : 's'}, got ${args.length}.`);
  }
  const parsed = tuple.safeParse(args);
  if (parsed.success) return parsed.data as unknown[];
  // A missing argument: a client bug, said plainly.
  const arity = parsed.error.issues.find((i) => i.path.length === 0 && (i.code === 'too_small' || i.code === 'too_big'));
  if (arity) throw errors.invalid(`${where} expected ${expected} argument${expected === 1 ? '' : 's'}, got ${args.length}.`);
  // Issues per argument, in words: the field path inside the argument (which a form maps to its
  // control), never "arg2.memoryMiB".
  const described = describeIssues(parsed.error.issues.map((i) => ({ ...i, path: i.path.slice(1) })));
  const settings = parsed.error.issues.some((i) => SettingField.safeParse(i.path[1]).success);
  const first = described.fields[0];
  throw errors.invalid(
    `${settings ? 'Invalid VM settings' : 'Invalid request'}: ${described.sentence}.`,
    { issues: parsed.error.issues.map((i) => ({ arg: typeof i.path[0] === 'number' ? i.path[0] : 0, path: i.path.slice(1).map(String), message: i.message })) },
    {
      fields: described.fields,
      ...(first && first.field !== '' ? { field: first.field } : {}),
      ...remedyOf(parsed.error.issues[0]),
    },
  );
}
