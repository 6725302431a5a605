/**
 * `vivarium serve`: the engine served to a browser. Prints the address with its access token to
 * stdout — one line, or for a wildcard `--host` (0.0.0.0, ::) one line per address of this machine
 * that reaches it, loopback first — logs to stderr, and runs until SIGINT/SIGTERM. Stopping it closes
 * the servers and the engine's QMP connections; the VMs keep running (any later engine reattaches).
 *
 * Listening beyond loopback is said plainly on stderr: without `--tls-cert/--tls-key` the token and
 * every keystroke cross the network unencrypted, so it says to give a certificate or to use SSH
 * forwarding instead.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errors } from '../common/errors';
import { hostEngine } from './engine-host';
import type { TlsFiles } from './http-server';

export const DEFAULT_PORT = 8780;

export interface ServeOptions {
  readonly host?: string;
  /** Default 8780; 0 picks a free port. */
  readonly port?: number;
  /** PEM certificate and key files: serve https/wss (both or neither). */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Also start the VMs marked autostart (main/services/autostart.ts). */
  readonly autostart?: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Default: the built renderer next to this file (out/renderer). */
  readonly staticDir?: string;
  /** Stops the server like a signal does (tests, embedding). */
  readonly signal?: AbortSignal;
}

/**
 * Where `npm run build` puts the renderer: out/main/server/serve.js → out/renderer. When this runs
 * from the TypeScript sources (tests), main/server → <repo>/out/renderer.
 */
export function defaultStaticDir(dir: string = __dirname): string {
  const up2 = path.resolve(dir, '..', '..');
  return path.basename(up2) === 'out' ? path.join(up2, 'renderer') : path.join(up2, 'out', 'renderer');
}

export async function runServe(o: ServeOptions): Promise<number> {
  const err = (line: string): void => void o.stderr.write(`vivarium serve: ${line}\n`);
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw errors.invalid(`--port must be a whole number from 0 to 65535, not ${port}.`);
  }
  const staticDir = path.resolve(o.staticDir ?? defaultStaticDir());
  if (!(await fs.promises.access(path.join(staticDir, 'index.html')).then(() => true, () => false))) {
    err(`the browser UI is not built (no index.html in ${staticDir}). Run \`npm run build\` first.`);
    return 1;
  }

  const tls = await readTlsFiles(o.tlsCert, o.tlsKey);

  const hosted = await hostEngine({ env: o.env, http: { host: o.host, port, staticDir, tls }, log: err, autostart: o.autostart === true });
  const lines = hosted.origins.map((u) => `${u}/?token=${hosted.token}`);
  await new Promise<void>((resolve) => o.stdout.write(`${lines.join('\n')}\n`, () => resolve()));
  err(`serving ${staticDir} on ${hosted.origins.join(', ')}; the CLI reaches this engine at ${hosted.engine.layout.engineSocket}. Ctrl-C stops it (VMs keep running).`);
  if (hosted.exposed && !hosted.secure) {
    err(
      `WARNING: --host ${o.host ?? ''} makes this engine reachable from other machines over plain HTTP: the access token, ` +
        'and everything typed into a console, cross the network unencrypted, and anyone who sees the token controls your VMs. ' +
        `Give a certificate with --tls-cert FILE --tls-key FILE, or keep the default 127.0.0.1 and reach it from the other machine through SSH: ` +
        `ssh -L ${hosted.port}:127.0.0.1:${hosted.port} ${sshTarget()}, then open http://127.0.0.1:${hosted.port}/ there.`,
    );
  } else if (hosted.exposed) {
    err(`note: reachable from other machines (TLS on). The token in the URL is the only key: share it with nobody.`);
  }

  const stop = untilStopped(o.signal, () => err('still closing (downloads are writing what has arrived); Ctrl-C quits at once.'));
  const why = await stop.stopped;
  err(`${why}: closing (VMs keep running)…`);
  try {
    await hosted.close();
  } finally {
    stop.dispose();
  }
  err('stopped.');
  return 0;
}

/** Reads --tls-cert/--tls-key (both or neither) into memory, with a sentence for each problem. */
async function readTlsFiles(cert: string | undefined, key: string | undefined): Promise<TlsFiles | null> {
  if (cert === undefined && key === undefined) return null;
  if (cert === undefined || key === undefined) {
    throw errors.invalid('--tls-cert and --tls-key go together: give both (a PEM certificate and its private key), or neither.');
  }
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await fs.promises.readFile(path.resolve(file));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'there is no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
      throw errors.invalid(`Cannot read the TLS ${what} ${file}: ${why}.`);
    }
  };
  return { cert: await read(cert, 'certificate'), key: await read(key, 'key') };
}

function sshTarget(): string {
  const user = process.env.USER ?? process.env.LOGNAME;
  return `${user ? `${user}@` : ''}${os.hostname()}`;
}

/**
 * `stopped` resolves with what stopped us: a signal's name, or "aborted". The signal handlers stay
 * until `dispose()`, so a signal that comes while closing (downloads are writing what has arrived,
 * engine dispose) does not get Node's default action, which would end the process half-way: another
 * SIGTERM (a service manager or a script repeating itself) calls `again`; a second Ctrl-C quits at
 * once (exit 130), as people expect of one.
 */
function untilStopped(signal: AbortSignal | undefined, again: () => void): { readonly stopped: Promise<string>; dispose(): void } {
  let stopped = false;
  let resolveStopped: (why: string) => void = () => undefined;
  const promise = new Promise<string>((resolve) => {
    resolveStopped = resolve;
  });
  const stop = (why: string): void => {
    stopped = true;
    resolveStopped(why);
  };
  const onInt = (): void => (stopped ? process.exit(130) : stop('SIGINT'));
  const onTerm = (): void => (stopped ? again() : stop('SIGTERM'));
  const onAbort = (): void => stop('aborted');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  if (signal?.aborted) stop('aborted');
  else signal?.addEventListener('abort', onAbort, { once: true });
  return {
    stopped: promise,
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
