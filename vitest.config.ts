import { defineConfig } from 'vitest/config';

// Unit tests and integration tests against real QEMU (TCG). The machines have 2 cores; TCG guests
// are CPU-bound, so run at most two test files at once.
export default defineConfig({
  test: {
    include: ['main/**/*.test.ts', 'renderer/**/*.test.ts', 'renderer/**/*.test.tsx', 'scripts/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    globalSetup: ['main/test-support/global-setup.ts'],
  },
});
