/**
 * A test file's in-process engine on a private library, made before and disposed after each test
 * (then the home is cleaned: no QEMU, no folder left).
 *
 *   const ctx = useEngineHome();
 *   it('…', async () => { await ctx.engine.manager.create({ … }); });
 */
import { afterEach, beforeEach, expect } from 'vitest';
import { createEngine, type Engine } from '../services/engine';
import { makeTestHome, type TestHome } from './home';
import { qemuProcessesUnder } from './qemu-procs';

export interface EngineHome {
  /** The current test's home (VIVARIUM_HOME, runtime folder, env). */
  readonly t: TestHome;
  /** The current test's engine (no watch, log discarded). */
  readonly engine: Engine;
}

/** Registers the beforeEach/afterEach pair; read `t` and `engine` inside tests only. */
export function useEngineHome(): EngineHome {
  let t: TestHome | null = null;
  let engine: Engine | null = null;
  beforeEach(() => {
    t = makeTestHome();
    engine = createEngine({ env: t.env, log: () => undefined });
  });
  afterEach(async () => {
    await engine?.dispose();
    await t?.cleanup();
    engine = null;
    t = null;
  });
  const need = <T>(v: T | null, what: string): T => {
    if (v === null) throw new Error(`useEngineHome: ${what} is only there inside a test`);
    return v;
  };
  return {
    get t() {
      return need(t, 't');
    },
    get engine() {
      return need(engine, 'engine');
    },
  };
}

/**
 * A test's teardown for an engine it made itself: forces off every VM that has a QEMU (a suspended
 * VM has none; its saved state stays), disposes the engine (null: none was made), cleans the home,
 * and checks that no QEMU of the home is left. Errors of the Force Off are ignored: the home's
 * cleanup kills what survives, and the check says so.
 */
export async function endEngineTest(engine: Engine | null, t: TestHome): Promise<void> {
  if (engine) {
    for (const vm of engine.manager.listSync()) {
      if (vm.state !== 'stopped' && vm.state !== 'suspended') await engine.manager.stop(vm.id, { force: true }).catch(() => undefined);
    }
    await engine.dispose();
  }
  await t.cleanup();
  expect(qemuProcessesUnder(t.runtimeDir)).toEqual([]);
}
