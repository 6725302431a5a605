/**
 * Which engine a CLI command talks to: a running one (the app or `vivarium serve`, found by its unix
 * socket in the runtime folder) or, when none answers, one hosted in this process for the length of
 * the command. Both expose the same `Services`.
 */
import * as fs from 'node:fs';
import type { Services } from '../common/contract';
import { createRpcClient } from '../common/rpc/client';
import { validatedServices } from '../common/rpc/validated';
import { createEngine, Layout } from '../services/engine';
import { connectUnix } from '../server/transports/unix-socket';

export interface EngineHandle {
  readonly services: Services;
  /** True when talking to a separate, running engine. */
  readonly remote: boolean;
  readonly layout: Layout;
  /** Resolves once an in-process engine has stopped its work (see Engine.dispose). */
  dispose(): void | Promise<void>;
}

export async function openEngine(env: NodeJS.ProcessEnv): Promise<EngineHandle> {
  const layout = Layout.fromEnv(env);
  // Verify the runtime folders are ours before trusting a socket in them (shared /tmp).
  if (env.VIVARIUM_NO_ENGINE !== '1' && layout.runtimeRootIsOurs() && fs.existsSync(layout.engineSocket)) {
    try {
      const conn = await connectUnix(layout.engineSocket, { timeoutMs: 2000 });
      const client = createRpcClient(conn);
      return { services: client.services, remote: true, layout, dispose: () => client.dispose() };
    } catch {
      // A stale socket from an engine that died: host our own.
    }
  }
  const engine = createEngine({ layout, env });
  return { services: validatedServices(engine.services), remote: false, layout, dispose: () => engine.dispose() };
}
