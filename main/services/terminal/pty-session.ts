/**
 * An interactive SSH session on a pseudo-terminal (node-pty): what the VM window's Terminal tab
 * shows through xterm.js. The session runs the system OpenSSH client built by `buildSshCommand`;
 * bytes flow both ways unchanged, and a resize becomes the pty's TIOCSWINSZ, which ssh forwards to
 * the guest as a window-change request (the guest's `stty size` follows).
 *
 * Wire format for a stream carrying it (see `handleTerminalMessage`): binary frames are keystrokes;
 * a text frame is a JSON control message, `{"type":"resize","cols":N,"rows":N}`. Output goes out
 * as binary frames.
 */
import * as pty from 'node-pty';
import type { SshCommand } from './ssh-command';

/** How a session ended: ssh's exit status (255 = ssh itself failed), or the signal that ended it. */
export interface PtyExit {
  readonly exitCode: number;
  readonly signal: number | null;
}

export interface PtySessionOptions {
  /** Initial size in character cells; default 80×24. */
  readonly cols?: number;
  readonly rows?: number;
  /** Environment for ssh; default this process's, with TERM set. Never passed to the guest beyond TERM. */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory of ssh; default the user's home or /. */
  readonly cwd?: string;
}

/** Bounds for a resize (xterm.js never asks for more; a hostile client might). */
export const MAX_COLS = 1000;
export const MAX_ROWS = 500;

/** A running terminal. `onData` gets raw bytes (UTF-8 from the guest, split anywhere). */
export interface PtySession {
  readonly pid: number;
  readonly cols: number;
  readonly rows: number;
  readonly exited: PtyExit | null;
  write(data: string | Buffer): void;
  /** Resizes the pty. @throws RangeError for sizes outside 1…MAX_COLS × 1…MAX_ROWS. */
  resize(cols: number, rows: number): void;
  onData(listener: (data: Buffer) => void): { dispose(): void };
  onExit(listener: (exit: PtyExit) => void): { dispose(): void };
  /** Ends ssh (SIGHUP, as a closed terminal window does). Idempotent. */
  kill(): void;
  /** Resolves when the session has ended. */
  readonly done: Promise<PtyExit>;
}

function checkSize(cols: number, rows: number): void {
  if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1 || cols > MAX_COLS || rows > MAX_ROWS) {
    throw new RangeError(`Terminal size ${cols}×${rows} is outside 1–${MAX_COLS} columns × 1–${MAX_ROWS} rows.`);
  }
}

/** Spawns `cmd` (an ssh command) on a new pty. @throws RangeError for a bad initial size; node-pty's error when the binary cannot be started. */
export function startPtySession(cmd: SshCommand, options: PtySessionOptions = {}): PtySession {
  let cols = options.cols ?? 80;
  let rows = options.rows ?? 24;
  checkSize(cols, rows);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.env ?? process.env)) if (v !== undefined) env[k] = v;
  env.TERM = 'xterm-256color';
  const child = pty.spawn(cmd.file, [...cmd.args], {
    name: 'xterm-256color',
    cols,
    rows,
    cwd: options.cwd ?? process.env.HOME ?? '/',
    env,
    encoding: null, // raw bytes: a multi-byte character split across reads stays intact for xterm.js
  });
  let exited: PtyExit | null = null;
  const done = new Promise<PtyExit>((resolve) => {
    child.onExit(({ exitCode, signal }) => {
      exited = { exitCode, signal: signal ? signal : null };
      resolve(exited);
    });
  });
  return {
    pid: child.pid,
    get cols() {
      return cols;
    },
    get rows() {
      return rows;
    },
    get exited() {
      return exited;
    },
    write(data) {
      if (exited) return;
      child.write(data);
    },
    resize(c, r) {
      checkSize(c, r);
      if (exited) return;
      cols = c;
      rows = r;
      child.resize(c, r);
    },
    onData(listener) {
      // With `encoding: null` node-pty hands out Buffers (its typings say string).
      return child.onData((d: string | Buffer) => listener(typeof d === 'string' ? Buffer.from(d, 'utf8') : d));
    },
    onExit(listener) {
      if (exited) {
        const e = exited;
        queueMicrotask(() => listener(e));
        return { dispose() {} };
      }
      return child.onExit(() => listener(exited!));
    },
    kill() {
      if (exited) return;
      try {
        child.kill('SIGHUP');
      } catch {
        // already gone
      }
    },
    done,
  };
}

/**
 * Applies one message from a terminal stream: binary → keystrokes; text → a JSON control message
 * (`{"type":"resize","cols":N,"rows":N}`). Untrusted input: anything else is ignored and reported.
 * @returns null when applied, or a sentence saying why the message was ignored.
 */
export function handleTerminalMessage(session: PtySession, data: Buffer, isBinary: boolean): string | null {
  if (isBinary) {
    session.write(data);
    return null;
  }
  if (data.length > 256) return 'Terminal control message too long.';
  let msg: unknown;
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch {
    return 'Terminal control message is not JSON.';
  }
  if (typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === 'resize') {
    const { cols, rows } = msg as { cols?: unknown; rows?: unknown };
    if (typeof cols !== 'number' || typeof rows !== 'number') return 'A resize needs numeric cols and rows.';
    try {
      session.resize(cols, rows);
    } catch (e) {
      return (e as Error).message;
    }
    return null;
  }
  return 'Unknown terminal control message.';
}
