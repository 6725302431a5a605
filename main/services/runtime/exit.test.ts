import { describe, expect, it } from 'vitest';
import { classifyExit, signalInQemuLog, signalName, type ExitFacts } from './exit';

const base: ExitFacts = { status: 0, stopRequest: null, pidfileLeft: false, signalInLog: null };
const forced = { by: 1, rung: 'quit', message: 'The guest did not respond to the power button; forced off after 30 s.' } as const;

describe('classifyExit', () => {
  const table: [string, ExitFacts, { reason: string; code: number | null; signal: string | null; message: RegExp }][] = [
    ['the guest powered off', base, { reason: 'shutdown', code: 0, signal: null, message: /^The guest shut down\.$/ }],
    [
      'the guest shut down when the ladder pressed the power button',
      { ...base, stopRequest: { by: 1, rung: 'acpi', message: 'The guest shut down when asked (ACPI power button).' } },
      { reason: 'shutdown', code: 0, signal: null, message: /when asked/ },
    ],
    [
      'QEMU was killed by someone else while the ladder waited on the power button',
      { ...base, status: 137, pidfileLeft: true, stopRequest: { by: 1, rung: 'acpi', message: 'The guest shut down when asked (ACPI power button).' } },
      { reason: 'crashed', code: null, signal: 'SIGKILL', message: /killed by SIGKILL/ },
    ],
    ['the ladder escalated to QMP quit', { ...base, stopRequest: forced }, { reason: 'stopped', code: 0, signal: null, message: /did not respond to the power button; forced off after 30 s/ }],
    [
      'the ladder killed it',
      { ...base, status: 137, pidfileLeft: true, stopRequest: { by: 1, rung: 'SIGKILL', message: 'killed (SIGKILL)' } },
      { reason: 'stopped', code: null, signal: 'SIGKILL', message: /SIGKILL/ },
    ],
    ['SIGKILL from another program', { ...base, status: 137, pidfileLeft: true }, { reason: 'crashed', code: null, signal: 'SIGKILL', message: /QEMU was killed by SIGKILL/ }],
    [
      'SIGTERM from another program (QEMU exits 0 and says so in its log)',
      { ...base, signalInLog: 'SIGTERM', pidfileLeft: true },
      { reason: 'crashed', code: null, signal: 'SIGTERM', message: /stopped by SIGTERM from another program/ },
    ],
    ['QEMU aborted', { ...base, status: 134, pidfileLeft: true }, { reason: 'crashed', code: null, signal: 'SIGABRT', message: /SIGABRT/ }],
    ['QEMU exited with an error', { ...base, status: 1, pidfileLeft: true }, { reason: 'crashed', code: 1, signal: null, message: /status 1\. See qemu\.log/ }],
    ['no exit status at all (host restarted)', { ...base, status: null, pidfileLeft: true }, { reason: 'crashed', code: null, signal: null, message: /left no exit status/ }],
    [
      'a start QEMU refused',
      { ...base, status: 1, startFailure: 'QEMU refused to start: host port 2222 (tcp) is already in use' },
      { reason: 'failed', code: 1, signal: null, message: /host port 2222/ },
    ],
  ];
  it.each(table)('%s', (_name, facts, want) => {
    const v = classifyExit(facts);
    expect({ reason: v.reason, code: v.code, signal: v.signal }).toEqual({ reason: want.reason, code: want.code, signal: want.signal });
    expect(v.message).toMatch(want.message);
  });
});

describe('signals', () => {
  it('names shell statuses above 128 and QEMU log lines', () => {
    expect(signalName(137)).toBe('SIGKILL');
    expect(signalName(143)).toBe('SIGTERM');
    expect(signalName(1)).toBeNull();
    expect(signalInQemuLog(['2026-01-01T00:00:00Z qemu-system-x86_64: terminating on signal 15 from pid 42 (kill)'])).toBe('SIGTERM');
    expect(signalInQemuLog(['something else'])).toBeNull();
  });
});
