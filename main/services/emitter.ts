import type { Disposable, Event } from '../common/contract';

/** A minimal typed event emitter exposing VS Code-style `onDidX` events. */
export class Emitter<T> {
  private readonly listeners = new Set<(e: T) => void>();

  readonly event: Event<T> = (listener) => {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  };

  get size(): number {
    return this.listeners.size;
  }

  fire(e: T): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // A listener's bug must not break the emitter or other listeners.
      }
    }
  }

  dispose(): void {
    this.listeners.clear();
  }
}

export function toDisposable(fn: () => void): Disposable {
  let done = false;
  return {
    dispose: () => {
      if (!done) {
        done = true;
        fn();
      }
    },
  };
}
