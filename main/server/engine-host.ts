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
 * engine.json records pid, socket and origin for other tools, and — when pages are served — the
 * address to open *with its access token*, so that a second `vivarium serve` can point the user to
 * the running one instead of leaving them without a way in. So the token IS on disk while the engine
 * runs: in a 0600 file inside the verified 0700 runtime folder (readable by its owner only, like
 * ~/.ssh keys), removed when the engine stops, and ignored when stale (its pid no longer runs).
 *
 * Every RPC connection (a browser tab, the app window, a CLI) is its own client: its console tickets
 * are charged to it (at most MAX_TICKETS_PER_CLIENT unused at once) and revoked when it goes away.
 */
import * as fs from 'node:fs';
import { ErrorCode, VivariumError } from '../common/errors';
import type { Connection } from '../common/rpc/protocol';
import { RpcServer } from '../common/rpc/server';
import type { RpcServerOptions } from '../common/rpc/server';
import type { Disposable, Services, VmService } from '../common/contract';
import { createEngine } from '../services/engine';
import type { Engine } from '../services/engine';
import { Layout, PRIVATE_FILE_MODE, readFileNoFollow, readFileNoFollowAsync, writeFileAtomicAsync } from '../services/paths';
import { startHttpServer } from './http-server';
import type { HttpServerHandle, TlsFiles } from './http-server';
import { startAutostartVms } from '../services/autostart';
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
    /** Serve https/wss with this certificate. */
    readonly tls?: TlsFiles | null;
  };
  /** Also serve RPC on layout.engineSocket for the CLI (default true). */
  readonly engineSocket?: boolean;
  readonly ticketTtlMs?: number;
  /** How long a VM's serial connection stays open after its last viewer left (default 2 s). */
  readonly serialLingerMs?: number;
  readonly log?: (line: string) => void;
  /** Start the VMs marked autostart once the engine is up (the app; `vivarium serve --autostart`). */
  readonly autostart?: boolean;
  /** The desktop app: sandbox.openTerminal may open the user's terminal application. */
  readonly systemTerminal?: boolean;
}

export interface HostedEngine {
  readonly engine: Engine;
  /** Names of the VMs this engine started because they are marked autostart (resolves once their
   *  starts returned; empty without `autostart`). */
  readonly autostarted: Promise<readonly string[]>;
  readonly rpcServer: RpcServer;
  readonly bridge: StreamBridge;
  /** The address to open: `http://127.0.0.1:PORT/?token=…` when pages are served, else the origin. */
  readonly url: string;
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** Every base URL that reaches the server (`origin` first; one per interface for a wildcard). */
  readonly origins: readonly string[];
  /** Reachable from other machines (bound beyond loopback). */
  readonly exposed: boolean;
  /** Speaks TLS. */
  readonly secure: boolean;
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
  engine = createEngine({ layout, env: o.env, watch: true, console: bridge, log, systemTerminal: o.systemTerminal === true });
  const rpcServer = new ClientScopedRpcServer(engine.services, bridge, { onProtocolError: (r) => log(`rpc: ${r}`) });

  let unix: UnixListener | null = null;
  try {
    http = await startHttpServer({
      host: o.http.host,
      port: o.http.port ?? 0,
      staticDir: o.http.staticDir,
      rpcServer: o.http.staticDir === null ? null : rpcServer,
      bridge,
      token: o.http.token,
      tls: o.http.tls ?? null,
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
    if (useSocket) await writeFileAtomicAsync(layout.engineInfo, JSON.stringify(info, null, 2) + '\n', PRIVATE_FILE_MODE);
  } catch (e) {
    bridge.dispose();
    await http?.close();
    await unix?.close();
    await engine.dispose();
    throw e;
  }

  const h = http;
  const hostedEngine = engine;
  // Only the engine holding the library's socket gets here (a second one fails with Busy above), so
  // two engines never both start a VM; the start lock and run state skip one that already runs.
  const autostarted = o.autostart ? startAutostartVms(hostedEngine.services.vms, log) : Promise.resolve([]);
  let closing: Promise<void> | null = null;
  return {
    engine: hostedEngine,
    autostarted,
    rpcServer,
    bridge,
    url: o.http.staticDir === null ? h.url : h.loginUrl,
    origin: h.url,
    origins: h.urls,
    exposed: h.exposed,
    secure: h.secure,
    port: h.port,
    token: h.token,
    close() {
      closing ??= (async () => {
        bridge.dispose();
        if (unix) {
          await unix.close();
          await removeOwnInfo(layout.engineInfo);
        }
        await h.close();
        await hostedEngine.dispose();
      })();
      return closing;
    },
  };
}

/** What engine.json says, or null when it is missing, unreadable, a link, or stale (its engine's
 *  process is gone: a crash left it behind). Synchronous (a read of a small file): the app asks it
 *  before it has an engine, and busyError when an engine fails to start. */
export function readEngineInfo(layout: Layout): EngineInfo | null {
  try {
    const raw = JSON.parse(readFileNoFollow(layout.engineInfo, 64 * 1024).toString('utf8')) as Partial<EngineInfo>;
    if (typeof raw.pid !== 'number' || !Number.isSafeInteger(raw.pid) || raw.pid <= 0) return null;
    if (!processAlive(raw.pid)) return null;
    return raw as EngineInfo;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An RpcServer that makes each connection its own client: the console service it sees charges
 * stream tickets to that connection (StreamBridge.forClient), and the connection's unused tickets
 * are revoked when it closes. Everything else is the shared engine.
 */
export class ClientScopedRpcServer extends RpcServer {
  private nextClient = 0;

  constructor(
    private readonly shared: Services,
    private readonly streams: Pick<StreamBridge, 'forClient' | 'releaseClient'>,
    private readonly rpcOptions: RpcServerOptions = {},
  ) {
    super(shared, undefined, rpcOptions);
  }

  override serve(conn: Connection): Disposable {
    const id = `client-${++this.nextClient}`;
    const server = new RpcServer({ ...this.shared, console: this.streams.forClient(id) }, undefined, this.rpcOptions);
    const serving = server.serve(conn);
    const release = (): void => this.streams.releaseClient(id);
    const onClose = conn.onClose(release);
    return {
      dispose: () => {
        serving.dispose();
        onClose.dispose();
        release();
      },
    };
  }
}

async function refuseIfRunning(layout: Layout): Promise<void> {
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

async function removeOwnInfo(file: string): Promise<void> {
  try {
    const raw = JSON.parse((await readFileNoFollowAsync(file, 64 * 1024)).toString('utf8')) as { pid?: unknown };
    if (raw.pid === process.pid) await fs.promises.rm(file, { force: true });
  } catch {
    // Already gone, or someone else's: leave it.
  }
}
