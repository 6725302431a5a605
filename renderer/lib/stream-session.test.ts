import { afterEach, describe, expect, it, vi } from 'vitest';
import { startStreamSession, type StreamStatus } from './stream-session';

afterEach(() => {
  vi.useRealTimers();
});

describe('startStreamSession', () => {
  it('fetches a fresh URL per attempt, backs off after failures and reconnects after a close', async () => {
    vi.useFakeTimers();
    const statuses: StreamStatus[] = [];
    const errors: (string | null)[] = [];
    let n = 0;
    const attached: { url: string; events: { connected(): void; closed(): void }; closed: boolean }[] = [];
    const stop = startStreamSession({
      openUrl: async () => {
        n++;
        if (n === 1) throw new Error('engine not ready');
        return `ws://x/streams/${n}`;
      },
      attach: (url, events) => {
        const a = { url, events, closed: false };
        attached.push(a);
        return () => void (a.closed = true);
      },
      onStatus: (s) => statuses.push(s),
      onError: (e) => errors.push(e),
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toEqual(['engine not ready']);
    expect(statuses).toEqual(['connecting', 'reconnecting']);
    await vi.advanceTimersByTimeAsync(500); // first retry after 500 ms
    expect(attached.map((a) => a.url)).toEqual(['ws://x/streams/2']);
    attached[0]!.events.connected();
    expect(statuses.at(-1)).toBe('connected');
    expect(errors.at(-1)).toBeNull();
    attached[0]!.events.closed(); // e.g. the VM restarted
    await vi.advanceTimersByTimeAsync(500); // backoff was reset by the successful connection
    expect(attached.map((a) => a.url)).toEqual(['ws://x/streams/2', 'ws://x/streams/3']);
    stop();
    expect(attached[1]!.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(attached).toHaveLength(2); // nothing after stop
  });
});
