/** The CLI's text times: local, to the minute (or second), never ISO with milliseconds. */
import { afterEach, describe, expect, it } from 'vitest';
import { localTime } from './time-text';

const savedTz = process.env.TZ;
afterEach(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

describe('localTime', () => {
  it('says an ISO time in the host\'s local time, to the minute or the second', () => {
    process.env.TZ = 'Asia/Kolkata'; // UTC+05:30, no daylight saving: the offset is certain
    expect(localTime('2026-12-01T13:03:27.123Z')).toBe('2026-12-01 18:33');
    expect(localTime('2026-12-01T13:03:27.123Z', { seconds: true })).toBe('2026-12-01 18:33:27');
    // Across midnight the date is the local one too.
    expect(localTime('2026-12-31T20:00:00.000Z')).toBe('2027-01-01 01:30');
    process.env.TZ = 'UTC';
    expect(localTime('2026-01-02T03:04:05Z')).toBe('2026-01-02 03:04');
  });

  it('leaves text that is no time as it is', () => {
    expect(localTime('not a date')).toBe('not a date');
  });
});
