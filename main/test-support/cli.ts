/**
 * Running the real `vivarium` command (node bin/vivarium.js) from tests, with a test home's env.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
export const CLI_BIN = path.join(REPO, 'bin', 'vivarium.js');

export interface CliOptions {
  /** Usually makeTestHome().env. */
  readonly env: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (stdin is closed at once without it). */
  readonly input?: string;
  /** Kill (SIGKILL) and reject after this long; default 60 s. */
  readonly timeoutMs?: number;
}

export interface CliResult {
  /** Exit code; null when a signal ended the process (then `signal` says which). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Runs `node <script> ...args`; exported so the plumbing can be tested without the CLI. */
export function runNodeScript(script: string, args: readonly string[], opts: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `node ${path.basename(script)} ${args.join(' ')} timed out after ${timeoutMs} ms.\n` +
            `stdout: ${text(out)}\nstderr: ${text(err)}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: text(out), stderr: text(err) });
    });
    // The child may exit without reading its input; that is its business, not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export function runCli(args: readonly string[], opts: CliOptions): Promise<CliResult> {
  return runNodeScript(CLI_BIN, args, opts);
}

/** Runs the CLI and parses stdout as JSON; throws (with stderr) unless it exits 0 with JSON. */
export async function runCliJson<T>(args: readonly string[], opts: CliOptions): Promise<T> {
  return parseCliJson<T>(`vivarium ${args.join(' ')}`, await runCli(args, opts));
}

export function parseCliJson<T>(cmd: string, r: CliResult): T {
  if (r.code !== 0) {
    throw new Error(`${cmd} exited with ${r.code ?? r.signal}.\nstderr: ${r.stderr}\nstdout: ${r.stdout}`);
  }
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`${cmd} printed no JSON.\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}
