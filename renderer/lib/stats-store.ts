/**
 * One subscription to `stats.onDidSample` per page, shared by every graph on it. Components
 * `retain()` the store while they need figures; the first one subscribes, and a short while after
 * the last one lets go the subscription is dropped (the pause rides over route changes, where one
 * view unmounts just before the next one mounts). Samples go into a StatsHistory (10 minutes of
 * ring buffers) and graphs are told through `onDidUpdate`: no React state changes per sample.
 *
 * Support is asked once per subscription with a one-off `stats.sample()`: an engine without
 * statistics answers `unsupported`, and an event that never fires could not say so.
 */
import type { Disposable, Event, StatsService } from '../../main/common/contract';
import { ErrorCode, isVivariumError } from '../../main/common/errors';
import type { StatsSample } from '../../main/common/models/stats';
import { errorMessage } from './errors';
import { StatsHistory } from './stats-series';

export type StatsStatus =
  /** Nobody needs figures. */
  | { readonly kind: 'idle' }
  /** Subscribed; no sample yet. */
  | { readonly kind: 'waiting' }
  | { readonly kind: 'live' }
  /** The engine cannot measure here (code `unsupported`): show the sentence, not graphs. */
  | { readonly kind: 'unavailable'; readonly message: string }
  /** The support check failed for another reason; still listening, a sample turns this to live. */
  | { readonly kind: 'failed'; readonly message: string };

class Listeners<T> {
  readonly #set = new Set<(e: T) => void>();
  readonly event: Event<T> = (listener) => {
    const wrapper = (e: T): void => listener(e);
    this.#set.add(wrapper);
    return { dispose: () => void this.#set.delete(wrapper) };
  };
  get size(): number {
    return this.#set.size;
  }
  fire(e: T): void {
    for (const l of [...this.#set]) {
      try {
        l(e);
      } catch (err) {
        // One broken graph must not stop the others from drawing.
        console.error(err);
      }
    }
  }
}

export interface StatsStoreOptions {
  /** How long the subscription outlives its last holder. */
  readonly lingerMs?: number;
  readonly capacity?: number;
  /** Window of the support check; short, it only has to answer. */
  readonly probeWindowMs?: number;
}

export class StatsStore {
  readonly history: StatsHistory;
  readonly #lingerMs: number;
  readonly #probeWindowMs: number;
  readonly #updates = new Listeners<StatsSample>();
  readonly #statusChanges = new Listeners<void>();
  #status: StatsStatus = { kind: 'idle' };
  #holders = 0;
  #source: StatsService | null = null;
  #subscription: Disposable | null = null;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped per subscription, so a late probe answer for an old one is ignored. */
  #generation = 0;

  constructor(options: StatsStoreOptions = {}) {
    this.#lingerMs = options.lingerMs ?? 2000;
    this.#probeWindowMs = options.probeWindowMs ?? 100;
    this.history = new StatsHistory(options.capacity);
  }

  /** Fired after each sample is folded into `history`. */
  readonly onDidUpdate: Event<StatsSample> = this.#updates.event;
  /** Fired when `status` changes (for useSyncExternalStore). */
  readonly onDidChangeStatus: Event<void> = this.#statusChanges.event;

  get status(): StatsStatus {
    return this.#status;
  }

  /** Whether the engine subscription is open (for tests and diagnostics). */
  get subscribed(): boolean {
    return this.#subscription !== null;
  }

  /**
   * Needs figures from `source` until the returned Disposable is disposed. A different source
   * (the engine reconnected) takes over the subscription; the history is kept.
   */
  retain(source: StatsService): Disposable {
    this.#holders++;
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    if (source !== this.#source || !this.#subscription) this.#subscribe(source);
    let released = false;
    return {
      dispose: () => {
        if (released) return;
        released = true;
        this.#holders--;
        if (this.#holders > 0) return;
        if (this.#lingerMs <= 0) this.#unsubscribe();
        else this.#lingerTimer = setTimeout(() => this.#unsubscribe(), this.#lingerMs);
      },
    };
  }

  #subscribe(source: StatsService): void {
    this.#subscription?.dispose();
    this.#source = source;
    const generation = ++this.#generation;
    this.#setStatus({ kind: 'waiting' });
    this.#subscription = source.onDidSample((sample) => {
      if (generation !== this.#generation) return;
      this.history.add(sample);
      if (this.#status.kind !== 'live') this.#setStatus({ kind: 'live' });
      this.#updates.fire(sample);
    });
    source.sample({ windowMs: this.#probeWindowMs }).then(
      () => undefined,
      (e: unknown) => {
        if (generation !== this.#generation) return;
        if (errorCode(e) === ErrorCode.Unsupported) this.#setStatus({ kind: 'unavailable', message: errorMessage(e) });
        else if (this.#status.kind !== 'live') this.#setStatus({ kind: 'failed', message: errorMessage(e) });
      },
    );
  }

  #unsubscribe(): void {
    this.#lingerTimer = undefined;
    this.#generation++;
    this.#subscription?.dispose();
    this.#subscription = null;
    this.#source = null;
    this.#setStatus({ kind: 'idle' });
  }

  #setStatus(status: StatsStatus): void {
    if (status.kind === this.#status.kind && JSON.stringify(status) === JSON.stringify(this.#status)) return;
    this.#status = status;
    this.#statusChanges.fire();
  }
}

function errorCode(e: unknown): string | undefined {
  if (isVivariumError(e)) return e.code;
  // A plain `{code, message}` from a transport that did not rebuild the error.
  const code = e && typeof e === 'object' ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** The page's store: one subscription however many graphs are showing. */
export const statsStore = new StatsStore();
