/**
 * Guest clocks after the host sleeps (issue 11): a suspended host freezes its guests, whose clocks
 * then lag by the time the lid was shut. The engine notices the wall-clock jump and sets each running
 * guest's clock through its guest agent (`guest-set-time`, QEMU's qga/qapi-schema.json), as libvirt's
 * `virsh domtime --now` does.
 *
 * Detecting the jump: a timer compares how far the wall clock (Date.now) and the monotonic clock
 * (performance.now) moved since its last tick. On Linux CLOCK_MONOTONIC and on macOS
 * mach_absolute_time (what Node's performance.now reads, via libuv's uv_hrtime) do not advance while
 * the machine sleeps, so after a resume the wall clock is ahead of the monotonic one by the sleep.
 * A wall-clock step (NTP, the user setting the time) shows the same way, in either direction, and
 * a guest needs the new time then too. An event loop that was merely busy moves both clocks alike
 * and is no jump.
 */
import { GuestAgentClient } from '../qemu/guest-agent';

/** The two clocks, in milliseconds. */
export interface Clocks {
  /** Wall-clock time (Date.now()). */
  wallMs(): number;
  /** A monotonic clock that stops while the host sleeps (performance.now()). */
  monoMs(): number;
}

export const systemClocks: Clocks = { wallMs: () => Date.now(), monoMs: () => performance.now() };

/** How far the wall clock must move beyond the monotonic one to count as a jump (default). */
export const JUMP_THRESHOLD_MS = 3_000;

/**
 * Compares the clocks at each `check()`. Pure apart from the clocks it is given.
 * @returns from check(): null, or the jump in milliseconds (positive: the wall clock moved ahead of
 *   the monotonic one, as after a sleep; negative: it was set back).
 */
export class WallClockJumpDetector {
  private lastWall: number;
  private lastMono: number;

  constructor(
    private readonly clocks: Clocks,
    private readonly thresholdMs = JUMP_THRESHOLD_MS,
  ) {
    this.lastWall = clocks.wallMs();
    this.lastMono = clocks.monoMs();
  }

  check(): number | null {
    const wall = this.clocks.wallMs();
    const mono = this.clocks.monoMs();
    const jump = wall - this.lastWall - (mono - this.lastMono);
    this.lastWall = wall;
    this.lastMono = mono;
    return Math.abs(jump) >= this.thresholdMs ? jump : null;
  }
}

/**
 * Sets a guest's clock to the host's wall-clock time through its agent (`guest-set-time` with
 * `time` in nanoseconds since the Unix epoch, UTC). qemu-ga then also writes the guest's hardware
 * clock with `hwclock -w`; a guest without hwclock reports that as an error after its system clock
 * was set, so that error is not a failure here.
 * @throws VivariumError when no agent answers within `timeoutMs`, or the agent refuses the time.
 */
export async function setGuestTime(qgaSocket: string, nowMs: number = Date.now(), timeoutMs = 3_000): Promise<void> {
  const agent = await GuestAgentClient.connect(qgaSocket, { timeoutMs });
  try {
    // Whole milliseconds × 10^6 is an integer below 2^63 that JSON carries exactly enough (±256 ns).
    await agent.execute('guest-set-time', { time: Math.round(nowMs) * 1_000_000 }, { timeoutMs });
  } catch (e) {
    if (/hwclock/i.test((e as Error).message)) return;
    throw e;
  } finally {
    agent.close();
  }
}

/** A running VM whose guest clock may be set. */
export interface ClockSyncTarget {
  readonly name: string;
  readonly qgaSocket: string;
}

export interface GuestClockSyncOptions {
  /** The running VMs right now. */
  readonly targets: () => readonly ClockSyncTarget[];
  readonly clocks?: Clocks;
  /** How often the clocks are compared (default 5 s). */
  readonly intervalMs?: number;
  readonly thresholdMs?: number;
  /** Sets one guest's clock (default setGuestTime). */
  readonly setTime?: (qgaSocket: string, nowMs: number) => Promise<void>;
  readonly log?: (line: string) => void;
}

/** What one re-sync did, per VM: 'set', or why not. */
export type ClockSyncResult = ReadonlyMap<string, 'set' | string>;

/**
 * Watches for wall-clock jumps on a timer (unref'd: it never keeps a process alive) and re-syncs
 * every running guest that has an agent. `resync()` does the same at once (the desktop app calls it
 * on the OS's resume notification).
 */
export class GuestClockSync {
  private readonly detector: WallClockJumpDetector;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: GuestClockSyncOptions) {
    this.detector = new WallClockJumpDetector(options.clocks ?? systemClocks, options.thresholdMs);
  }

  start(): this {
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), this.options.intervalMs ?? 5_000);
      this.timer.unref();
    }
    return this;
  }

  /** One comparison of the clocks; re-syncs the guests when they jumped. @returns the re-sync's results, or null without a jump. */
  async tick(): Promise<ClockSyncResult | null> {
    const jump = this.detector.check();
    if (jump === null) return null;
    this.options.log?.(`clock: the host's wall clock moved ${(jump / 1000).toFixed(1)} s beyond its monotonic clock (sleep or a time change); setting the guests' clocks`);
    return this.resync();
  }

  /** Sets the clock of every running guest whose agent answers; never throws. */
  async resync(): Promise<ClockSyncResult> {
    const setTime = this.options.setTime ?? ((sock: string, now: number) => setGuestTime(sock, now));
    const clocks = this.options.clocks ?? systemClocks;
    const results = new Map<string, string>();
    await Promise.all(
      this.options.targets().map(async (t) => {
        try {
          await setTime(t.qgaSocket, clocks.wallMs());
          results.set(t.name, 'set');
        } catch (e) {
          results.set(t.name, (e as Error).message);
        }
      }),
    );
    for (const [name, r] of results) this.options.log?.(`clock: ${name}: ${r === 'set' ? "guest clock set through the agent" : `not set (${r})`}`);
    return results;
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
