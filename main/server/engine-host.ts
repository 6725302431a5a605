/**
 * A long-lived engine: what `vivarium serve` runs and what the Electron app reuses.
 *
 * It owns the engine (watching the library, holding QMP), the stream bridge, a loopback HTTP/WebSocket
 * server, and the runtime engine socket (layout.engineSocket) that serves the same RpcServer to the
 * CLI, so a `vivarium start/stop/serial` while this runs goes through this engine instead of fighting
 * it for QMP. Only one such engine per library: a second one is refused.
 *
 * Two shapes:
 *  - browser host (`vivarium serve`): `http: { host, port, staticDir: 'out/renderer' }` — pages, /rpc
 *    (token + Origin), /streams/<ticket>.
 *  - Electron app: `http: { port: 0, staticDir: null }` — no pages and no /rpc (the window loads from
 *    app:// and speaks RPC over IPC: attach your IPC transport to `rpcServer`); the server only carries
 *    ticket streams, which the window opens with Origin app://vivarium.
 *
 * engine.json (0600, in the 0700 runtime folder) records pid, socket and origin for other tools. The
 * access token is never written to disk.
 */
import * as fs from 'node:fs';
import { ErrorCode, VivariumError } from '../common/errors';
import { RpcServer } from '../common/rpc/server';
import type { VmService } from '../common/contract';
import { createEngine } from '../services/engine';
import type { Engine } from '../services/engine';
import { Layout, writeFileAtomic } from '../services/paths';
import { startHttpServer } from './http-server';
import type { HttpServerHandle } from './http-server';
import { StreamBridge } from './stream-bridge';
import { isSocketAlive, listenUnix } from './transports/unix-socket';
import type { UnixListener } from './transports/unix-socket';

export interface HostEngineOptions {
  readonly env: NodeJS.ProcessEnv;
  /** Default: Layout.fromEnv(env). */
  readonly layout?: Layout;
  readonly http: {
    /** Default 127.0.0.1. */
    readonly host?: string;
    /** 0 (the default) picks a free port. */
    readonly port?: number;
    /** The built renderer, or null: then neither pages nor /rpc are served (the Electron app). */
    readonly staticDir: string | null;
    /** Default: a fresh random token. */
    readonly token?: string;
  };
  /** Also serve RPC on layout.engineSocket for the CLI (default true). */
  readonly engineSocket?: boolean;
  readonly ticketTtlMs?: number;
  /** How long a VM's serial connection stays open after its last viewer left (default 2 s). */
  readonly serialLingerMs?: number;
  readonly log?: (line: string) => void;
}

export interface HostedEngine {
  readonly engine: Engine;
  readonly rpcServer: RpcServer;
  readonly bridge: StreamBridge;
  /** The address to open: `http://127.0.0.1:PORT/?token=…` when pages are served, else the origin. */
  readonly url: string;
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  readonly port: number;
  readonly token: string;
  /** Closes clients, the servers and the engine's QMP connections. VMs keep running. */
  close(): Promise<void>;
}

export interface EngineInfo {
  readonly pid: number;
  readonly startedAt: string;
  readonly socket: string | null;
  /** Without the token. */
  readonly origin: string;
  /** The address to open in a browser, with its token, when pages are served. The file is 0600 in
   *  a verified 0700 folder, so only its owner can read it; it lets a second `vivarium serve` point
   *  to the running one instead of leaving the user without a way in. */
  readonly openUrl?: string | null;
}

export async function hostEngine(o: HostEngineOptions): Promise<HostedEngine> {
  const layout = o.layout ?? Layout.fromEnv(o.env);
  const log = o.log ?? (() => {});
  const useSocket = o.engineSocket ?? true;
  layout.ensureRuntimeDir(layout.runtimeRoot);
  if (useSocket) await refuseIfRunning(layout);

  let http: HttpServerHandle | null = null;
  // The bridge needs the VM service and the engine needs the bridge: the bridge gets a forwarder.
  let engine: Engine | null = null;
  const vms: Pick<VmService, 'get'> = {
    get: (ref) => {
      if (!engine) throw new VivariumError(ErrorCode.InvalidState, 'The engine is still starting. Try again in a moment.');
      return engine.services.vms.get(ref);
    },
  };
  const bridge = new StreamBridge({
    layout,
    vms,
    baseUrl: () => {
      if (!http) throw new VivariumError(ErrorCode.InvalidState, 'The stream server is not listening yet. Try again in a moment.');
      return http.wsUrl;
    },
    ticketTtlMs: o.ticketTtlMs,
    serialLingerMs: o.serialLingerMs,
    log,
  });
  engine = createEngine({ layout, env: o.env, watch: true, console: bridge, log });
  const rpcServer = new RpcServer(engine.services, undefined, { onProtocolError: (r) => log(`rpc: ${r}`) });

  let unix: UnixListener | null = null;
  try {
    http = await startHttpServer({
      host: o.http.host,
      port: o.http.port ?? 0,
      staticDir: o.http.staticDir,
      rpcServer: o.http.staticDir === null ? null : rpcServer,
      bridge,
      token: o.http.token,
      log,
    });
    if (useSocket) {
      unix = await listenUnix(layout.engineSocket, (conn) => {
        rpcServer.serve(conn);
      }).catch((e: unknown) => {
        throw e instanceof VivariumError && e.code === ErrorCode.Busy ? busyError(layout) : e;
      });
    }
    const info: EngineInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      socket: unix ? unix.path : null,
      origin: http.url,
      openUrl: o.http.staticDir === null ? null : http.loginUrl,
    };
    if (useSocket) writeFileAtomic(layout.engineInfo, JSON.stringify(info, null, 2) + '\n', 0o600);
  } catch (e) {
    bridge.dispose();
    await http?.close();
    await unix?.close();
    engine.dispose();
    throw e;
  }

  const h = http;
  const hostedEngine = engine;
  let closing: Promise<void> | null = null;
  return {
    engine: hostedEngine,
    rpcServer,
    bridge,
    url: o.http.staticDir === null ? h.url : h.loginUrl,
    origin: h.url,
    port: h.port,
    token: h.token,
    close() {
      closing ??= (async () => {
        bridge.dispose();
        if (unix) {
          await unix.close();
          removeOwnInfo(layout.engineInfo);
        }
        await h.close();
        hostedEngine.dispose();
      })();
      return closing;
    },
  };
}

/** What engine.json says, or null when it is missing or unreadable. */
export function readEngineInfo(layout: Layout): EngineInfo | null {
  try {
    const raw = JSON.parse(fs.readFileSync(layout.engineInfo, 'utf8')) as Partial<EngineInfo>;
    return typeof raw.pid === 'number' ? (raw as EngineInfo) : null;
  } catch {
    return null;
  }
}

async function refuseIfRunning(layout: Layout): Promise<void> {
  if (!fs.existsSync(layout.engineSocket)) return;
  if (await isSocketAlive(layout.engineSocket)) throw busyError(layout);
}

function busyError(layout: Layout): VivariumError {
  const info = readEngineInfo(layout);
  const pid = info?.pid;
  const open = info?.openUrl ? ` It serves ${info.openUrl} — open that.` : '';
  return new VivariumError(
    ErrorCode.Busy,
    `Another Vivarium engine is running (pid ${pid ?? 'unknown'}).${open} Use it, or stop it first.`,
    { pid: pid ?? null, socket: layout.engineSocket },
  );
}

function removeOwnInfo(file: string): void {
  try {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: unknown };
    if (raw.pid === process.pid) fs.rmSync(file, { force: true });
  } catch {
    // Already gone, or someone else's: leave it.
  }
}
