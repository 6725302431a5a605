import { describe, expect, it } from 'vitest';
import { driveSizeBytes } from './hardware';

const GIB = 1024 ** 3;

describe('driveSizeBytes', () => {
  it('reads a bare number as GiB, like the wizard', () => {
    expect(driveSizeBytes('40')).toBe(40 * GIB);
    expect(driveSizeBytes(' 1.5 ')).toBe(1.5 * GIB);
    // Rounded to whole MiB (an image size QEMU takes).
    expect(driveSizeBytes('0.1')! % (1024 * 1024)).toBe(0);
  });
  it('reads sizes with a unit', () => {
    expect(driveSizeBytes('512M')).toBe(512 * 1024 * 1024);
    expect(driveSizeBytes('2.5G')).toBe(2.5 * GIB);
  });
  it('refuses what is not a size', () => {
    expect(driveSizeBytes('')).toBeNull();
    expect(driveSizeBytes('abc')).toBeNull();
    expect(driveSizeBytes('-5')).toBeNull();
  });
});
