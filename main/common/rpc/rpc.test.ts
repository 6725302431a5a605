import { afterEach, describe, expect, it } from 'vitest';
import type { Services } from '../contract';
import { ErrorCode, VivariumError } from '../errors';
import { CONNECTION_LOST_MESSAGE, createRpcClient } from './client';
import type { RpcClient } from './client';
import { fakeServices } from './fake-services';
import type { FakeStats, FakeVms } from './fake-services';
import { createConnectionPair } from './memory-connection';
import { parseMessage } from './protocol';
import type { Connection, RpcMessage } from './protocol';
import { RpcServer } from './server';

interface Rig {
  readonly client: RpcClient;
  readonly services: Services;
  readonly vms: FakeVms;
  readonly stats: FakeStats;
  readonly serverSide: Connection;
  readonly clientSide: Connection;
  readonly errors: unknown[];
}

let rigs: Rig[] = [];

function rig(): Rig {
  const fake = fakeServices();
  const [clientSide, serverSide] = createConnectionPair();
  new RpcServer(fake.services).serve(serverSide);
  const errors: unknown[] = [];
  const client = createRpcClient(clientSide, { onError: (e) => errors.push(e) });
  const r = { client, services: client.services, vms: fake.vms, stats: fake.stats, serverSide, clientSide, errors };
  rigs.push(r);
  return r;
}

afterEach(() => {
  for (const r of rigs) {
    r.vms.releaseHanging();
    r.client.dispose();
  }
  rigs = [];
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function rejection(p: Promise<unknown>): Promise<VivariumError> {
  const e: unknown = await p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(VivariumError);
  return e as VivariumError;
}

/** Sends a raw message as a hostile client would, and returns the server's answer to it. */
async function rawCall(r: Rig, msg: unknown): Promise<RpcMessage> {
  const answers: RpcMessage[] = [];
  const l = r.clientSide.onMessage((m) => answers.push(m as RpcMessage));
  (r.clientSide.send as (m: unknown) => void)(msg);
  await waitFor(() => answers.length > 0, 'an answer');
  l.dispose();
  return answers[0] as RpcMessage;
}

describe('calls', () => {
  it('round-trips a call and returns the service result', async () => {
    const r = rig();
    const list = await r.services.vms.list();
    expect(list.map((v) => v.name)).toEqual(['alpha', 'beta']);
    expect(await r.services.vms.get('alpha')).toMatchObject({ name: 'alpha', id: 'id-alpha' });
    expect(r.vms.calls.map((c) => c.method)).toEqual(['list', 'get']);
  });

  it('gives the service the parsed arguments (trimmed, defaults applied)', async () => {
    const r = rig();
    await r.services.vms.create({ name: '  spaced  ', cpus: 2 });
    expect(r.vms.calls[0]?.args[0]).toEqual({ name: 'spaced', cpus: 2 });
  });

  it.each([
    ['a wrong type', () => ({ name: 'x', cpus: 'two' }), /^Invalid VM settings: CPUs must be a number\.$/, 'cpus'],
    ['an extra key', () => ({ name: 'x', sneaky: true }), /^Invalid request: Has unknown setting "sneaky"\.$/, ''],
    ['a __proto__ key', () => JSON.parse('{"name":"x","__proto__":{"polluted":true}}') as unknown, /__proto__/, ''],
    ['a value out of range', () => ({ name: 'x', memoryMiB: 1 }), /^Invalid VM settings: Memory must be at least 16 MiB\.$/, 'memoryMiB'],
  ])('rejects %s with invalid-argument in words, with the field a form maps, and the service is not called', async (_what, spec, message, field) => {
    const r = rig();
    const e = await rejection(r.services.vms.create(spec() as never));
    expect(e.code).toBe(ErrorCode.InvalidArgument);
    expect(e.message).toMatch(message);
    // Internal names never reach a person.
    expect(e.message).not.toMatch(/arg\d|memoryMiB|vms\.create/);
    expect(e.fields[0]?.field).toBe(field);
    if (field) expect(e.remedy).toEqual({ kind: 'change-setting', field });
    expect(e.data).toMatchObject({ issues: [expect.objectContaining({ path: expect.any(Array) })] });
    expect(r.vms.calls).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a cross-field rule arrives on its field with the remedy the rule names', async () => {
    const r = rig();
    const e = await rejection(r.services.vms.create({ name: 'x', net: 'none', forwards: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] }));
    expect(e.message).toBe('Invalid VM settings: Port forwards need networking.');
    expect(e.field).toBe('forwards');
    expect(e.remedy).toEqual({ kind: 'change-setting', field: 'net', to: 'user' });
    expect(e.fields).toEqual([{ field: 'forwards', message: 'Port forwards need networking' }]);
    expect(r.vms.calls).toEqual([]);
  });

  it('a bad whole argument is named by its schema\'s own words', async () => {
    const r = rig();
    const e = await rejection(r.services.vms.get(''));
    expect(e.message).toBe('Invalid request: A VM name or id is required.');
  });

  it('rejects the wrong number of arguments readably', async () => {
    const r = rig();
    const tooMany = await rejection((r.services.vms.list as (...a: unknown[]) => Promise<unknown>)('extra'));
    expect(tooMany.message).toBe('vms.list takes 0 arguments, got 1.');
    const tooFew = await rejection((r.services.vms.get as (...a: unknown[]) => Promise<unknown>)());
    expect(tooFew.code).toBe(ErrorCode.InvalidArgument);
    expect(tooFew.message).toBe('vms.get expected 1 argument, got 0.');
    expect(r.vms.calls).toEqual([]);
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'record', 'releaseHanging', 'calls', 'onDidChange'])(
    'refuses method name %s without touching the service',
    async (m) => {
      const r = rig();
      const answer = await rawCall(r, { t: 'call', id: 7, s: 'vms', m, a: [] });
      expect(answer).toMatchObject({ t: 'result', id: 7, ok: false, e: { code: 'invalid-argument' } });
      expect(r.vms.calls).toEqual([]);
    },
  );

  it.each(['__proto__', 'constructor', 'nope'])('refuses service name %s', async (s) => {
    const r = rig();
    const answer = await rawCall(r, { t: 'call', id: 3, s, m: 'list', a: [] });
    expect(answer).toMatchObject({ t: 'result', id: 3, ok: false, e: { code: 'invalid-argument' } });
  });

  it('keeps the code of a VivariumError the service throws', async () => {
    const r = rig();
    const e = await rejection(r.services.vms.get('missing'));
    expect(e.code).toBe(ErrorCode.NotFound);
    expect(e.message).toContain('No VM named or with id "missing"');
    expect(e.data).toEqual({ ref: 'missing' });
  });

  it('turns a plain Error into internal, without its stack', async () => {
    const r = rig();
    const answer = await rawCall(r, { t: 'call', id: 9, s: 'vms', m: 'reset', a: ['alpha'] });
    expect(answer).toMatchObject({ ok: false, e: { code: 'internal' } });
    const wire = JSON.stringify(answer);
    expect(wire).not.toContain('stack');
    expect(wire).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
    const e = await rejection(r.services.vms.reset('alpha'));
    expect(e.code).toBe(ErrorCode.Internal);
    expect(e.message).toContain('disk exploded');
  });

  it('answers with an error when the result cannot be encoded', async () => {
    const r = rig();
    const e = await rejection(r.services.vms.screenshot('alpha'));
    expect(e.code).toBe(ErrorCode.Internal);
  });

  it('reports a method missing from the service as unsupported', async () => {
    const r = rig();
    const e = await rejection(r.services.host.doctor());
    expect(e.code).toBe(ErrorCode.Unsupported);
  });
});

describe('malformed messages', () => {
  it.each([
    ['a string', 'hello'],
    ['null', null],
    ['an array', [1, 2]],
    ['no id', { t: 'call', s: 'vms', m: 'list', a: [] }],
    ['a negative id', { t: 'call', id: -1, s: 'vms', m: 'list', a: [] }],
    ['an unknown type', { t: 'boom', id: 1 }],
    ['a client-sent result', { t: 'result', id: 1, ok: true, v: 1 }],
  ])('drops %s and keeps serving', async (_what, msg) => {
    const r = rig();
    (r.clientSide.send as (m: unknown) => void)(msg);
    expect(await r.services.vms.list()).toHaveLength(2);
  });

  it.each([
    ['args not an array', { t: 'call', id: 4, s: 'vms', m: 'get', a: 'alpha' }],
    ['too many args', { t: 'call', id: 4, s: 'vms', m: 'get', a: new Array(100).fill('x') }],
    ['a huge method name', { t: 'call', id: 4, s: 'vms', m: 'x'.repeat(10_000), a: [] }],
    ['a sub without event', { t: 'sub', id: 4, s: 'vms' }],
  ])('answers %s with invalid-argument', async (_what, msg) => {
    const r = rig();
    const answer = await rawCall(r, msg);
    expect(answer).toMatchObject({ t: 'result', id: 4, ok: false, e: { code: 'invalid-argument' } });
    expect(r.vms.calls).toEqual([]);
  });

  it('parseMessage accepts every message the protocol defines', () => {
    const good: RpcMessage[] = [
      { t: 'call', id: 0, s: 'vms', m: 'list', a: [] },
      { t: 'result', id: 1, ok: true, v: [1] },
      { t: 'result', id: 1, ok: false, e: { code: 'busy', message: 'later' } },
      { t: 'sub', id: 2, s: 'vms', ev: 'onDidChange' },
      { t: 'unsub', id: 2 },
      { t: 'event', id: 2, v: { kind: 'removed', id: 'x' } },
    ];
    for (const m of good) expect(parseMessage(JSON.parse(JSON.stringify(m)))).toEqual({ ok: true, msg: m });
  });
});

describe('events', () => {
  it('delivers events to subscribers and stops after dispose', async () => {
    const r = rig();
    const seen: unknown[] = [];
    const sub = r.services.vms.onDidChange((e) => seen.push(e));
    await waitFor(() => r.vms.changes.size === 1, 'the server-side listener');
    r.vms.changes.fire({ kind: 'removed', id: 'a' });
    r.vms.changes.fire({ kind: 'removed', id: 'b' });
    await waitFor(() => seen.length === 2, 'two events');
    expect(seen).toEqual([
      { kind: 'removed', id: 'a' },
      { kind: 'removed', id: 'b' },
    ]);
    sub.dispose();
    await waitFor(() => r.vms.changes.size === 0, 'the server-side listener to go');
    r.vms.changes.fire({ kind: 'removed', id: 'c' });
    await r.services.vms.list(); // a full round trip: anything sent before it has arrived
    expect(seen).toHaveLength(2);
  });

  it('keeps two subscriptions apart', async () => {
    const r = rig();
    const a: unknown[] = [];
    const b: unknown[] = [];
    const subA = r.services.vms.onDidChange((e) => a.push(e));
    r.services.vms.onDidChange((e) => b.push(e));
    await waitFor(() => r.vms.changes.size === 2, 'two listeners');
    subA.dispose();
    await waitFor(() => r.vms.changes.size === 1, 'one listener');
    r.vms.changes.fire({ kind: 'removed', id: 'x' });
    await waitFor(() => b.length === 1, 'the event');
    expect(a).toEqual([]);
  });

  it('refuses to subscribe to an event that is not in the contract', async () => {
    const r = rig();
    const answer = await rawCall(r, { t: 'sub', id: 5, s: 'vms', ev: 'constructor' });
    expect(answer).toMatchObject({ ok: false, e: { code: 'invalid-argument' } });
    const onCall = await rawCall(r, { t: 'sub', id: 6, s: 'vms', ev: 'list' });
    expect(onCall).toMatchObject({ ok: false, e: { code: 'invalid-argument' } });
    expect(r.vms.calls).toEqual([]);
  });

  it('refuses a reused subscription id', async () => {
    const r = rig();
    await rawCall(r, { t: 'sub', id: 50, s: 'stats', ev: 'onDidSample' });
    const again = await rawCall(r, { t: 'sub', id: 50, s: 'stats', ev: 'onDidSample' });
    expect(again).toMatchObject({ ok: false, e: { code: 'invalid-argument' } });
    expect(r.stats.samples.size).toBe(1);
  });

  it('disposes server-side subscriptions when the connection closes', async () => {
    const r = rig();
    r.services.vms.onDidChange(() => {});
    r.services.vms.onDidChange(() => {});
    r.services.stats.onDidSample(() => {});
    await waitFor(() => r.vms.changes.size === 2 && r.stats.samples.size === 1, 'three listeners');
    r.clientSide.close();
    await waitFor(() => r.vms.changes.size === 0 && r.stats.samples.size === 0, 'listeners to be disposed');
  });
});

describe('the client', () => {
  it('rejects pending calls when the connection drops, and later calls at once', async () => {
    const r = rig();
    const pending = r.services.vms.pause('alpha');
    await waitFor(() => r.vms.calls.length === 1, 'the call to arrive');
    let disconnected = false;
    r.client.onDidDisconnect(() => (disconnected = true));
    r.serverSide.close();
    const e = await rejection(pending);
    expect(e.code).toBe(ErrorCode.Internal);
    expect(e.message).toBe(CONNECTION_LOST_MESSAGE);
    expect(disconnected).toBe(true);
    expect((await rejection(r.services.vms.list())).message).toBe(CONNECTION_LOST_MESSAGE);
  });

  it('exposes exactly the contract: unknown names are undefined and it is not a thenable', async () => {
    const r = rig();
    const loose = r.services as unknown as Record<string, Record<string, unknown> | undefined>;
    expect(loose.nope).toBeUndefined();
    expect(loose.then).toBeUndefined();
    expect(loose.vms?.then).toBeUndefined();
    expect(loose.vms?.record).toBeUndefined();
    expect(loose.vms?.constructor).toBeUndefined();
    expect(typeof r.services.vms.list).toBe('function');
    expect(r.services.vms).toBe(r.services.vms);
    expect(await Promise.resolve(r.services.vms)).toBe(r.services.vms);
  });

  it('reports a listener that throws without losing later events', async () => {
    const r = rig();
    const seen: unknown[] = [];
    r.services.vms.onDidChange(() => {
      throw new Error('listener bug');
    });
    r.services.vms.onDidChange((e) => seen.push(e));
    await waitFor(() => r.vms.changes.size === 2, 'two listeners');
    r.vms.changes.fire({ kind: 'removed', id: 'a' });
    r.vms.changes.fire({ kind: 'removed', id: 'b' });
    await waitFor(() => seen.length === 2, 'both events');
    expect(r.errors).toHaveLength(2);
  });
});
