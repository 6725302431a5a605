/**
 * How the renderer reaches the engine: the preload bridge inside the Electron window, else a
 * WebSocket to the host that served the page (`vivarium serve`; its auth cookie goes along).
 *
 * One connection per page. It is not re-opened behind the caller's back: when it drops, onDisconnect
 * fires and the UI decides what to show; a later connectEngine() opens a fresh one.
 */
import { createRpcClient } from '../../main/common/rpc/client';
import type { RpcClient } from '../../main/common/rpc/client';
import type { Disposable, Services } from '../../main/common/contract';
import type { Connection } from '../../main/common/rpc/protocol';
import { bridgeConnection } from './bridge-connection';
import { openWebSocket } from './websocket-connection';

let current: Promise<RpcClient> | null = null;
const disconnectListeners = new Set<() => void>();

/** The engine's services. Resolves to the same client until the connection drops. */
export async function connectEngine(): Promise<Services> {
  current ??= open().catch((e: unknown) => {
    current = null;
    throw e;
  });
  return (await current).services;
}

/** Fires when the engine connection drops (engine stopped, network gone). */
export function onDisconnect(listener: () => void): Disposable {
  disconnectListeners.add(listener);
  return { dispose: () => void disconnectListeners.delete(listener) };
}

/** The WebSocket address of the engine that served this page. */
export function engineWebSocketUrl(origin: string = location.origin): string {
  return `${origin.replace(/^http/, 'ws')}/rpc`;
}

async function open(): Promise<RpcClient> {
  const conn: Connection = window.vivarium ? bridgeConnection(window.vivarium) : await openWebSocket(engineWebSocketUrl());
  const client = createRpcClient(conn);
  client.onDidDisconnect(() => {
    current = null;
    for (const l of [...disconnectListeners]) l();
  });
  return client;
}
