import { describe, expect, it } from 'vitest';
import { base64ToBytes, formatBytes, formatCpus, formatMemoryMiB, formatOsArch, formatResources, screenshotFileName } from './format';

describe('formatMemoryMiB', () => {
  it('uses MiB below a GiB and GiB/TiB above, with one decimal at most', () => {
    expect(formatMemoryMiB(16)).toBe('16 MiB');
    expect(formatMemoryMiB(512)).toBe('512 MiB');
    expect(formatMemoryMiB(1024)).toBe('1 GiB');
    expect(formatMemoryMiB(1536)).toBe('1.5 GiB');
    expect(formatMemoryMiB(3000)).toBe('2.9 GiB');
    expect(formatMemoryMiB(1024 * 1024)).toBe('1 TiB');
  });
  it('shows a dash for nonsense', () => {
    expect(formatMemoryMiB(-1)).toBe('—');
    expect(formatMemoryMiB(Number.NaN)).toBe('—');
  });
});

describe('formatBytes', () => {
  it('picks the largest binary unit', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(20 * 1024 ** 3)).toBe('20 GiB');
    expect(formatBytes(2.25 * 1024 ** 4)).toBe('2.3 TiB');
  });
});

describe('VM facts', () => {
  it('pluralises CPUs', () => {
    expect(formatCpus(1)).toBe('1 CPU');
    expect(formatCpus(4)).toBe('4 CPUs');
  });
  it('joins OS and arch, defaulting a blank OS to Other', () => {
    expect(formatOsArch({ os: 'Debian 12', arch: 'x86_64' })).toBe('Debian 12 · x86_64');
    expect(formatOsArch({ os: '  ', arch: 'aarch64' })).toBe('Other · aarch64');
  });
  it('summarises resources', () => {
    expect(formatResources({ cpus: 2, memoryMiB: 2048 })).toBe('2 CPUs · 2 GiB');
  });
});

describe('screenshotFileName', () => {
  it('makes the name safe and appends a timestamp', () => {
    const at = new Date(2025, 0, 2, 3, 4, 5);
    expect(screenshotFileName('My VM/1', at)).toBe('My-VM-1-20250102-030405.png');
    expect(screenshotFileName('../..', at)).toBe('vm-20250102-030405.png');
  });
});

describe('base64ToBytes', () => {
  it('decodes the PNG signature', () => {
    expect(Array.from(base64ToBytes('iVBORw0KGgo='))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });
});
