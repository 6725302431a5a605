/**
 * RPC over a unix socket: how the CLI talks to a running engine. Framing is newline-delimited JSON
 * (JSON.stringify never emits a raw newline, so a line is exactly one message).
 *
 * The socket file is created 0600 and lives in the private runtime directory; both keep other users
 * out. A socket file left behind by a crashed engine is removed, but only after checking that nobody
 * answers on it: a live engine is never hijacked.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ErrorCode, VivariumError } from '../../common/errors';
import { MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, createConnection } from '../../common/rpc/protocol';
import type { Connection } from '../../common/rpc/protocol';

export interface UnixListener {
  readonly path: string;
  /** Stops listening, closes every open connection and removes the socket file. */
  close(): Promise<void>;
}

export interface ListenUnixOptions {
  /** Largest line accepted from a client; a bigger one closes that connection. */
  readonly maxMessageBytes?: number;
  /** Connections open at once, at most (default MAX_UNIX_CLIENTS); more are closed at once. */
  readonly maxConnections?: number;
}

/** Local clients (CLI commands, `vivarium serial`) connected at once, at most. */
export const MAX_UNIX_CLIENTS = 128;

export interface ConnectUnixOptions {
  readonly timeoutMs?: number;
  /** Largest line accepted from the engine. */
  readonly maxMessageBytes?: number;
}

const NEWLINE = 0x0a;

/** Wraps a connected socket. Oversized lines close the connection (framing can't be trusted after
 *  that); lines that aren't JSON are dropped. */
export function socketConnection(socket: net.Socket, maxMessageBytes: number = MAX_REQUEST_BYTES): Connection {
  const handle = createConnection({
    write(msg) {
      const line = JSON.stringify(msg) + '\n';
      if (socket.destroyed || !socket.writable) return;
      // A peer that stopped reading (events pile up) is cut off instead of growing our memory.
      if (socket.writableLength > MAX_RESPONSE_BYTES) {
        socket.destroy();
        return;
      }
      socket.write(line);
    },
    end() {
      socket.end();
      // Don't wait forever for a peer that won't finish its half of the close.
      setTimeout(() => socket.destroy(), 1000).unref();
    },
  });

  const decoder = createLineDecoder(maxMessageBytes, (line) => {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // garbage: nobody to answer, so drop it
    }
    handle.receive(msg);
  });

  socket.on('data', (chunk: Buffer) => {
    if (!decoder.push(chunk)) socket.destroy();
  });
  // Without an 'error' listener a reset connection would crash the process.
  socket.on('error', () => handle.closed());
  socket.on('close', () => handle.closed());
  return handle.connection;
}

export interface LineDecoder {
  /** Returns false when a line grew past the limit: the stream is unusable from then on. */
  push(chunk: Buffer): boolean;
}

/** Splits a byte stream on '\n' without decoding partial UTF-8 sequences. */
export function createLineDecoder(maxBytes: number, onLine: (line: string) => void): LineDecoder {
  let parts: Buffer[] = [];
  let size = 0;
  let broken = false;
  return {
    push(chunk) {
      if (broken) return false;
      let start = 0;
      for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
        const piece = chunk.subarray(start, nl);
        if (size + piece.length > maxBytes) {
          broken = true;
          return false;
        }
        const line = parts.length ? Buffer.concat([...parts, piece], size + piece.length) : piece;
        parts = [];
        size = 0;
        start = nl + 1;
        if (line.length > 0) onLine(line.toString('utf8'));
      }
      const rest = chunk.subarray(start);
      if (rest.length) {
        size += rest.length;
        if (size > maxBytes) {
          broken = true;
          return false;
        }
        parts.push(rest);
      }
      return true;
    },
  };
}

export async function listenUnix(
  socketPath: string,
  onConnection: (conn: Connection) => void,
  options: ListenUnixOptions = {},
): Promise<UnixListener> {
  await removeStaleSocket(socketPath);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socketConnection(socket, options.maxMessageBytes ?? MAX_REQUEST_BYTES));
  });
  server.maxConnections = options.maxConnections ?? MAX_UNIX_CLIENTS;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(socketPath, e)));
    // bind() creates the file with the umask's mode; narrow it for that instant so the socket is
    // never connectable by others, then chmod anyway (umask can't be set in worker threads).
    const oldMask = trySetUmask(0o177);
    try {
      server.listen(socketPath, () => resolve());
    } finally {
      if (oldMask !== null) process.umask(oldMask);
    }
  });
  server.on('error', () => {}); // after listening, errors belong to individual sockets
  await fs.promises.chmod(socketPath, 0o600);

  let closing: Promise<void> | null = null;
  return {
    path: socketPath,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }).then(() => fs.promises.rm(socketPath, { force: true }));
      return closing;
    },
  };
}

export async function connectUnix(socketPath: string, options: ConnectUnixOptions = {}): Promise<Connection> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new VivariumError(
          ErrorCode.Timeout,
          `The Vivarium engine at ${socketPath} did not answer within ${timeoutMs} ms. Check that it is not stuck, or restart it.`,
          { path: socketPath },
        ),
      );
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(connectError(socketPath, e));
    });
  });
  return socketConnection(socket, options.maxMessageBytes ?? MAX_RESPONSE_BYTES);
}

/** Whether something accepts connections on the socket file (a live engine). */
export function isSocketAlive(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath);
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(alive);
    };
    // A listener that accepts but never answers still counts as alive: it owns the path.
    const timer = setTimeout(() => done(true), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fs.promises.lstat(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) {
    // invalid-state, not already-exists: nothing the person typed names this path (exit 1, not 2).
    throw new VivariumError(
      ErrorCode.InvalidState,
      `${socketPath} exists and is not a socket. Move it away and start the engine again.`,
      { path: socketPath },
    );
  }
  if (await isSocketAlive(socketPath)) {
    throw new VivariumError(
      ErrorCode.Busy,
      `Another Vivarium engine is already listening on ${socketPath}. Use it, or stop it first.`,
      { path: socketPath },
    );
  }
  await fs.promises.rm(socketPath, { force: true });
}

function trySetUmask(mask: number): number | null {
  try {
    return process.umask(mask);
  } catch {
    return null;
  }
}

function listenError(socketPath: string, e: NodeJS.ErrnoException): VivariumError {
  if (e.code === 'EADDRINUSE') {
    return new VivariumError(ErrorCode.Busy, `Another process took ${socketPath} while the engine was starting. Try again.`, { path: socketPath });
  }
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    return new VivariumError(ErrorCode.Unauthorized, `No permission to create ${socketPath}. Check the runtime folder's owner and mode.`, { path: socketPath });
  }
  return new VivariumError(ErrorCode.Internal, `Could not listen on ${socketPath}: ${e.message}.`, { path: socketPath, errno: e.code });
}

function connectError(socketPath: string, e: NodeJS.ErrnoException): VivariumError {
  switch (e.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new VivariumError(ErrorCode.NotFound, `No Vivarium engine is running at ${socketPath}. Start one with \`vivarium serve\` or open the app.`, {
        path: socketPath,
        errno: e.code,
      });
    case 'EACCES':
    case 'EPERM':
      return new VivariumError(ErrorCode.Unauthorized, `No permission to connect to ${socketPath}: the engine belongs to another user.`, { path: socketPath, errno: e.code });
    default:
      return new VivariumError(ErrorCode.Internal, `Could not connect to the Vivarium engine at ${socketPath}: ${e.message}.`, { path: socketPath, errno: e.code });
  }
}
