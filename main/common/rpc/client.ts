/**
 * The typed client: a Proxy generated from the contract table, so every service method and every
 * `onDidX` event exists on the client the moment it exists in the contract, with no per-method code.
 *
 * Only names in the table resolve; anything else reads as `undefined` (which also keeps the proxy
 * from looking like a thenable to `await`).
 */
import { contract as defaultContract } from '../contract';
import type { Contract, Disposable, Event, Services } from '../contract';
import { ErrorCode, VivariumError, deserializeError } from '../errors';
import { parseMessage } from './protocol';
import type { Connection, RpcId, RpcMessage } from './protocol';

export const CONNECTION_LOST_MESSAGE = 'Lost the connection to the Vivarium engine. Restart it and try again.';

export interface RpcClient {
  readonly services: Services;
  /** Fires once, when the connection closes (either side). */
  readonly onDidDisconnect: Event<void>;
  /** Rejects pending calls, drops all listeners and closes the connection. */
  dispose(): void;
}

export interface RpcClientOptions {
  readonly contract?: Contract;
  /** Errors that have no caller to go to: a refused subscription, a listener that threw. */
  readonly onError?: (error: unknown) => void;
}

interface PendingCall {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: VivariumError) => void;
}

interface Subscription {
  readonly where: string;
  readonly listener: (v: unknown) => void;
}

type ServiceSchemaEntry = { readonly methods: object; readonly events: readonly string[] };

export function createRpcClient(conn: Connection, options: RpcClientOptions = {}): RpcClient {
  const table = options.contract ?? defaultContract;
  const reportError = options.onError ?? ((e: unknown) => console.error('vivarium rpc:', e));
  const pending = new Map<RpcId, PendingCall>();
  const subscriptions = new Map<RpcId, Subscription>();
  const disconnectListeners = new Set<() => void>();
  let nextId = 1;
  let connected = true;

  const lost = (): VivariumError => new VivariumError(ErrorCode.Internal, CONNECTION_LOST_MESSAGE);

  const send = (msg: RpcMessage): boolean => {
    if (!connected) return false;
    conn.send(msg);
    return true;
  };

  const call = (s: string, m: string, a: readonly unknown[]): Promise<unknown> =>
    new Promise<unknown>((resolve, reject) => {
      if (!connected) return reject(lost());
      const id = nextId++;
      pending.set(id, { resolve, reject });
      try {
        send({ t: 'call', id, s, m, a });
      } catch (e) {
        // e.g. an argument JSON can't encode: the caller's bug, reported to the caller.
        pending.delete(id);
        reject(new VivariumError(ErrorCode.InvalidArgument, `Could not send ${s}.${m}: ${String(e)}`));
      }
    });

  const subscribe = (s: string, ev: string, listener: (v: unknown) => void): Disposable => {
    if (typeof listener !== 'function') throw new TypeError(`${s}.${ev} needs a listener function`);
    if (!connected) return { dispose() {} };
    const id = nextId++;
    subscriptions.set(id, { where: `${s}.${ev}`, listener });
    send({ t: 'sub', id, s, ev });
    return {
      dispose() {
        if (subscriptions.delete(id)) send({ t: 'unsub', id });
      },
    };
  };

  const onMessage = (raw: unknown): void => {
    const parsed = parseMessage(raw);
    if (!parsed.ok) return reportError(new Error(`dropped a malformed message from the engine: ${parsed.reason}`));
    const msg = parsed.msg;
    if (msg.t === 'event') {
      const sub = subscriptions.get(msg.id);
      if (!sub) return; // an event already in flight when the subscription was disposed
      try {
        sub.listener(msg.v);
      } catch (e) {
        reportError(e);
      }
      return;
    }
    if (msg.t !== 'result') return;
    const call = pending.get(msg.id);
    if (call) {
      pending.delete(msg.id);
      if (msg.ok) call.resolve(msg.v);
      else call.reject(deserializeError(msg.e));
      return;
    }
    // Not a call: the ack of a subscription. A refusal ends it.
    const sub = subscriptions.get(msg.id);
    if (sub && !msg.ok) {
      subscriptions.delete(msg.id);
      reportError(deserializeError(msg.e));
    }
  };

  const disconnected = (): void => {
    if (!connected) return;
    connected = false;
    messageListener.dispose();
    closeListener.dispose();
    const calls = [...pending.values()];
    pending.clear();
    subscriptions.clear();
    for (const c of calls) c.reject(lost());
    const listeners = [...disconnectListeners];
    disconnectListeners.clear();
    for (const l of listeners) l();
  };

  const messageListener = conn.onMessage(onMessage);
  const closeListener = conn.onClose(disconnected);

  // One proxy per service, so `client.services.vms === client.services.vms`.
  const serviceProxies = new Map<string, object>();
  const services = new Proxy(Object.create(null) as object, {
    get(_target, prop) {
      if (typeof prop !== 'string' || !Object.hasOwn(table, prop)) return undefined;
      let proxy = serviceProxies.get(prop);
      if (!proxy) {
        proxy = serviceProxy(prop, table[prop as keyof Contract] as ServiceSchemaEntry, call, subscribe);
        serviceProxies.set(prop, proxy);
      }
      return proxy;
    },
  }) as Services;

  return {
    services,
    onDidDisconnect(listener) {
      if (!connected) {
        queueMicrotask(() => listener());
        return { dispose() {} };
      }
      disconnectListeners.add(listener);
      return { dispose: () => void disconnectListeners.delete(listener) };
    },
    dispose() {
      if (!connected) return;
      disconnected();
      conn.close();
    },
  };
}

function serviceProxy(
  s: string,
  schema: ServiceSchemaEntry,
  call: (s: string, m: string, a: readonly unknown[]) => Promise<unknown>,
  subscribe: (s: string, ev: string, listener: (v: unknown) => void) => Disposable,
): object {
  const members = new Map<string, unknown>();
  return new Proxy(Object.create(null) as object, {
    get(_target, prop) {
      if (typeof prop !== 'string') return undefined;
      const known = members.get(prop);
      if (known) return known;
      let member: unknown;
      if (Object.hasOwn(schema.methods, prop)) member = (...a: unknown[]) => call(s, prop, a);
      else if (schema.events.includes(prop)) member = (listener: (v: unknown) => void) => subscribe(s, prop, listener);
      else return undefined;
      members.set(prop, member);
      return member;
    },
  });
}
