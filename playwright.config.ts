import { defineConfig } from '@playwright/test';
import type { AppKind } from './e2e/fixtures';

// End-to-end: the real renderer in Debian's chromium against `vivarium serve` with real QEMU under
// TCG. Each spec file gets its own engine and private library (e2e/fixtures.ts). The "electron"
// project runs the same app through `_electron.launch` where the Electron binary exists, and reports
// plainly that it did not run where it does not.
const browserUse = {
  browserName: 'chromium' as const,
  viewport: { width: 1280, height: 800 },
  launchOptions: {
    executablePath: process.env.VIVARIUM_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-quic',
    ],
  },
};

export default defineConfig<{ appKind: AppKind }>({
  testDir: 'e2e',
  outputDir: 'test-results',
  timeout: 180_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  globalSetup: './e2e/global-setup.ts',
  use: {
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      testIgnore: /electron\.spec\.ts/,
      use: { ...browserUse, appKind: 'browser' },
    },
    {
      // The same app specs through `_electron.launch`; skipped, with the reason, where the Electron
      // binary does not exist. (The browser-host security spec does not apply to the app.)
      name: 'electron',
      testIgnore: /security\.spec\.ts/,
      use: { ...browserUse, appKind: 'electron' },
    },
  ],
});
