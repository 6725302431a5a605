/**
 * Line framing for QEMU's newline-delimited JSON sockets (QMP and the guest agent).
 *
 * Chunks from a socket split lines anywhere (even inside a multi-byte UTF-8 character) and may hold
 * many lines, so bytes are kept until a newline arrives and only whole lines are decoded. A peer that
 * never sends a newline must not grow memory without bound: past `maxLineBytes` the framer throws
 * and the caller drops the connection.
 */

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

const NEWLINE = 0x0a;

export class LineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`A line longer than ${limit} bytes arrived without a newline`);
  }
}

export class LineFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** When set, input is dropped up to and including this byte (the guest agent's sync marker). */
  private skipUntil: number | null = null;

  constructor(private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {}

  /**
   * Drops everything buffered and all further input up to and including the next `byte`. The guest
   * agent answers `guest-sync-delimited` with 0xFF first, so whatever stale output came before it
   * (replies to commands that timed out) never reaches the caller.
   */
  discardUntilByte(byte: number): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.skipUntil = byte;
  }

  /** Feeds one chunk; returns the complete, non-blank lines it finished (without line endings). */
  push(chunk: Buffer): string[] {
    let rest = this.skipMarker(chunk);
    const lines: string[] = [];
    let nl = rest.indexOf(NEWLINE);
    while (nl !== -1) {
      const line = this.take(rest.subarray(0, nl));
      if (line.trim() !== '') lines.push(line);
      rest = rest.subarray(nl + 1);
      nl = rest.indexOf(NEWLINE);
    }
    if (rest.length > 0) {
      if (this.pendingBytes + rest.length > this.maxLineBytes) {
        this.pending = [];
        this.pendingBytes = 0;
        throw new LineTooLongError(this.maxLineBytes);
      }
      // Copy: the socket may reuse the chunk's memory, and a small tail should not pin a big chunk.
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  /** Bytes buffered toward the next line (for tests and diagnostics). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  private skipMarker(chunk: Buffer): Buffer {
    if (this.skipUntil === null) return chunk;
    const at = chunk.indexOf(this.skipUntil);
    if (at === -1) return chunk.subarray(chunk.length);
    this.skipUntil = null;
    return chunk.subarray(at + 1);
  }

  private take(tail: Buffer): string {
    if (this.pendingBytes + tail.length > this.maxLineBytes) {
      this.pending = [];
      this.pendingBytes = 0;
      throw new LineTooLongError(this.maxLineBytes);
    }
    const whole = this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail]);
    this.pending = [];
    this.pendingBytes = 0;
    return whole.toString('utf8').replace(/\r$/, '');
  }
}
