/**
 * A command group (`snapshot create|list|…`, `disk`, `cd`, `forward`, `share`, `media`) has two
 * lists that could drift apart: CommandSpec.actions (what the parser accepts and `help` shows) and
 * the group's dispatch switch (what is done). Each listed action must reach a service call of its
 * own (not fall through to another action's, e.g. `list`), and a word that is not listed must reach
 * none. Pure logic: the services are a recorder that refuses every call (no engine, no VM).
 */
import { describe, expect, it } from 'vitest';
import type { Services } from '../common/contract';
import type { Parsed } from './args';
import { COMMANDS } from './commands';
import { runHardware } from './hardware-commands';
import { runMedia } from './media-commands';
import { runSandbox } from './sandbox-commands';
import { runSnapshot } from './snapshot-commands';

type Runner = (command: string, p: Parsed, s: Services, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }) => Promise<number>;

/** Each group's dispatcher, and operands that get past its own checks to the service call. */
const GROUPS: Readonly<
  Record<string, { readonly run: Runner; readonly operands: readonly string[]; readonly byAction?: Readonly<Record<string, readonly string[]>>; readonly flags?: Parsed['flags'] }>
> = {
  snapshot: { run: runSnapshot, operands: ['vm', 'snap', 'new name'] },
  // A download id for cancel/resume/discard; a path for remove (a bare name is looked up in the list first).
  media: { run: runMedia, operands: ['0123456789abcdef'], byAction: { remove: ['/tmp/x.iso'] } },
  disk: { run: runHardware, operands: ['vm', 'disk1'], flags: { size: '1G' } },
  cd: { run: runHardware, operands: ['vm', '/tmp/x.iso'] },
  forward: { run: runSandbox, operands: ['vm', 'tcp:2222:22'] },
  share: { run: runSandbox, operands: ['vm', '/tmp/shared'] },
};

class Refused extends Error {}

/** Services whose every method records `service.method` and rejects; event subscriptions (on…)
 *  are accepted, so a command that listens before it calls still reaches its call. */
function recorder(calls: string[]): Services {
  const service = (name: string) =>
    new Proxy(
      {},
      {
        get: (_t, method) => {
          if (typeof method !== 'string') return undefined;
          if (method.startsWith('on')) return () => ({ dispose: () => undefined });
          return () => {
            calls.push(`${name}.${method}`);
            return Promise.reject(new Refused(`${name}.${method}`));
          };
        },
      },
    );
  return new Proxy({}, { get: (_t, name) => (typeof name === 'string' ? service(name) : undefined) }) as Services;
}

const io = () => {
  const sink = { write: () => true } as unknown as NodeJS.WritableStream;
  return { stdout: sink, stderr: sink };
};

/** The service calls `command action …` makes, and how it ended. */
async function dispatch(command: string, action: string): Promise<{ calls: string[]; error: unknown }> {
  const g = GROUPS[command]!;
  const calls: string[] = [];
  const p: Parsed = { positionals: [action, ...(g.byAction?.[action] ?? g.operands)], flags: g.flags ?? {} };
  const error = await g.run(command, p, recorder(calls), io()).then(
    () => null,
    (e: unknown) => e,
  );
  return { calls, error };
}

const groups = Object.entries(COMMANDS).filter(([, spec]) => spec.actions !== undefined);

describe('each command group lists exactly the actions its dispatch handles', () => {
  it('every group with actions is checked here', () => {
    expect(groups.map(([name]) => name).sort()).toEqual(Object.keys(GROUPS).sort());
  });

  for (const [command, spec] of groups) {
    it(`${command}: each listed action reaches a service call of its own; an unlisted word reaches none`, async () => {
      const first = new Map<string, string>();
      for (const action of spec.actions!) {
        const { calls, error } = await dispatch(command, action);
        expect(calls.length, `${command} ${action} called no service`).toBeGreaterThan(0);
        expect(error, `${command} ${action}`).toBeInstanceOf(Refused);
        first.set(action, calls[0]!);
      }
      // Two actions landing on the same call means one fell through to the other's handler.
      expect(new Set(first.values()).size, JSON.stringify(Object.fromEntries(first))).toBe(spec.actions!.length);

      const unlisted = await dispatch(command, 'no-such-action');
      expect(unlisted.calls).toEqual([]);
      expect(unlisted.error).toBeInstanceOf(Error);
      expect(unlisted.error).not.toBeInstanceOf(Refused);
    });
  }
});
