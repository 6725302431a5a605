/**
 * `start --wait-serial PATTERN`: waits until the guest's serial output matches a pattern.
 *
 * The pattern comes from outside (a CLI argument, a browser page) and is run against text the guest
 * writes, on the engine's only thread. A backtracking engine (JavaScript's RegExp) can take
 * exponential time on patterns such as `(a+)+Q#` (catastrophic backtracking: 31 `a`s froze every
 * client for 20 s), so patterns run on RE2JS, a port of Go's RE2 — linear in the input, always
 * (https://github.com/google/re2/wiki/WhyRE2). RE2 syntax is Perl/JS syntax without backreferences
 * and lookaround; `^`/`$` match at line boundaries.
 *
 * Each poll scans only the new output plus the last OVERLAP_BYTES before it, so the work per byte the
 * guest writes is bounded too; a match may span at most that much old output.
 */
import * as fs from 'node:fs';
import { RE2JS } from 're2js';
import { errors } from '../../common/errors';
import type { LastExit } from '../../common/models/vm-state';
import { shellArg } from '../../common/shell-arg';
import { readFrom } from './tail';

/** Output kept from before the newest chunk, so a match may straddle two reads. */
export const OVERLAP_BYTES = 16 * 1024;
const POLL_MS = 25;
/** With a file watch, polling only catches what the watch may miss (a rotated file). */
const FALLBACK_POLL_MS = 100;

export interface SerialPattern {
  readonly source: string;
  /** Whether `text` contains a match. Linear time in `text`. */
  test(text: string): boolean;
}

/** Characters that mean something in RE2 syntax; a pattern without any of them is literal text. */
const RE2_SYNTAX = /[\\.+*?()|[\]{}^$]/;

/**
 * Compiles a pattern as RE2 (multi-line: `^` and `$` match at each line).
 * @throws VivariumError invalid-argument with RE2's reason (backreferences and lookaround are not supported).
 */
export function compileSerialPattern(source: string): SerialPattern {
  // Most patterns are plain text ("login:", "BusyBox v"): a substring search gives the same answer
  // without building RE2's automaton (its case tables alone cost ~10 ms of a CLI's start-up).
  if (!RE2_SYNTAX.test(source)) return { source, test: (text) => text.includes(source) };
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, RE2JS.MULTILINE);
  } catch (e) {
    // RE2JS quotes the pattern with the `(?m)` its MULTILINE flag adds: show only what the user typed.
    const why = (e instanceof Error ? e.message : String(e)).replace(/^error parsing regexp: /, '').replace(/`\(\?m\)/g, '`');
    throw errors.invalid(
      `--wait-serial is not a valid pattern: ${why}. Patterns use RE2 syntax (like JavaScript's, without backreferences or lookaround).`,
      { field: 'waitSerial' },
    );
  }
  return { source, test: (text) => re.matcher(text).find() };
}

export interface SerialWait {
  readonly file: string;
  readonly pattern: SerialPattern;
  readonly timeoutMs: number;
  /** Whether the VM still runs. */
  readonly alive: () => boolean;
  /** The VM's name, for messages. */
  readonly name: string;
  /** The VM's last exit, once it stopped. */
  readonly lastExit: () => LastExit | null;
}

/**
 * Resolves once the serial log matches. Reads the file asynchronously and scans each byte a bounded
 * number of times, so it never holds the engine's thread for long.
 * @throws VivariumError qemu-failed when the VM stops first, timeout when the time is up.
 */
export async function waitForSerial(w: SerialWait): Promise<void> {
  const deadline = Date.now() + w.timeoutMs;
  let offset = 0;
  let tail = '';
  // Wake as soon as QEMU writes (inotify/kqueue), polling only as a fallback: the wait ends within
  // a millisecond or so of the guest's line, not up to a poll period later.
  let wake: (() => void) | null = null;
  let watcher: fs.FSWatcher | null = null;
  try {
    watcher = fs.watch(w.file, { persistent: false }, () => wake?.());
    watcher.on('error', () => undefined);
  } catch {
    // No such file yet, or no watch support: poll.
  }
  try {
    return await scan();
  } finally {
    watcher?.close();
  }

  async function scan(): Promise<void> {
    for (;;) {
      const { data: chunk, size } = await readFrom(w.file, offset);
      // Rotated (logs/serial-log.ts truncates it, keeping the tail elsewhere): read on from its start.
      if (size >= 0 && size < offset) offset = 0;
      if (chunk.length > 0) {
        offset += chunk.length;
        const text = tail + chunk.toString('utf8');
        if (w.pattern.test(text)) return;
        tail = text.slice(-OVERLAP_BYTES);
        // More may be waiting: read on before sleeping (but never past the deadline).
        if (Date.now() <= deadline) continue;
      }
      if (chunk.length === 0 && !w.alive()) {
        const exit = w.lastExit();
        throw errors.qemu(`"${w.name}" stopped before its serial output matched /${w.pattern.source}/: ${exit?.message ?? 'QEMU exited.'}`, { lastExit: exit });
      }
      if (Date.now() > deadline) {
        throw errors.timeout(
          `The serial output of "${w.name}" did not match /${w.pattern.source}/ within ${Math.round(w.timeoutMs / 1000)} s. The VM is still running: see \`vivarium serial ${shellArg(w.name)} --log\`, or stop it.`,
        );
      }
      await new Promise<void>((r) => {
        const timer = setTimeout(done, watcher ? FALLBACK_POLL_MS : POLL_MS);
        function done(): void {
          clearTimeout(timer);
          wake = null;
          r();
        }
        wake = done;
      });
    }
  }
}
