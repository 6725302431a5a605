/**
 * `vivarium serve`: the engine served to a browser. Prints exactly one line to stdout — the address
 * with its access token — logs to stderr, and runs until SIGINT/SIGTERM. Stopping it closes the
 * servers and the engine's QMP connections; the VMs keep running (any later engine reattaches).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from '../common/errors';
import { hostEngine } from './engine-host';

export const DEFAULT_PORT = 8780;

export interface ServeOptions {
  readonly host?: string;
  /** Default 8780; 0 picks a free port. */
  readonly port?: number;
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
  if (!fs.existsSync(path.join(staticDir, 'index.html'))) {
    err(`the browser UI is not built (no index.html in ${staticDir}). Run \`npm run build\` first.`);
    return 1;
  }

  const hosted = await hostEngine({ env: o.env, http: { host: o.host, port, staticDir }, log: err });
  await new Promise<void>((resolve) => o.stdout.write(`${hosted.url}\n`, () => resolve()));
  err(`serving ${staticDir} on ${hosted.origin}; the CLI reaches this engine at ${hosted.engine.layout.engineSocket}. Ctrl-C stops it (VMs keep running).`);

  const why = await untilStopped(o.signal);
  err(`${why}: closing (VMs keep running)…`);
  await hosted.close();
  err('stopped.');
  return 0;
}

/** Resolves with what stopped us: a signal's name, or "aborted". */
function untilStopped(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    const done = (why: string): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      signal?.removeEventListener('abort', onAbort);
      resolve(why);
    };
    const onInt = (): void => done('SIGINT');
    const onTerm = (): void => done('SIGTERM');
    const onAbort = (): void => done('aborted');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    if (signal?.aborted) return done('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
