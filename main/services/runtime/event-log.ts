/**
 * A VM's own log of what Vivarium did to it (`vivarium.log` in its bundle: starts, each rung of the
 * stop ladder, exits, adoptions). Appending never fails an operation; a failure is reported to the
 * engine's log instead.
 */
import { appendFileNoFollowAsync, type Layout } from '../paths';

export type LogSink = (line: string) => void;

export class EventLog {
  constructor(
    private readonly layout: Layout,
    private readonly log?: LogSink,
  ) {}

  /** Appends one timestamped line to the VM's vivarium.log (in the background) and to the engine's log. */
  append(id: string, line: string): void {
    const file = this.layout.bundle(id).eventLog;
    const text = `${new Date().toISOString()} ${line}\n`;
    this.chain = this.chain.then(() =>
      appendNoFollow(file, text).catch((e: unknown) => {
        // The bundle may be gone (deleted meanwhile); never fail the operation for a log line.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log?.(`[${id.slice(0, 8)}] could not write vivarium.log: ${(e as Error).message}`);
      }),
    );
    this.log?.(`[${id.slice(0, 8)}] ${line}`);
  }

  /** Resolves once every line appended so far is written. */
  flushed(): Promise<void> {
    return this.chain;
  }

  private chain: Promise<void> = Promise.resolve();
}

/** Appends without following a symlink planted in place of the log (paths.ts: O_NOFOLLOW, no FIFO,
 *  0600, a full disk said as such). */
const appendNoFollow = appendFileNoFollowAsync;
