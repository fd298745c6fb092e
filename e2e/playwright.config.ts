import { defineConfig } from '@playwright/test';

// Real Chromium from Debian (never a downloaded browser), the real server
// started by global-setup.ts on 127.0.0.1 with a fresh data directory.
export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  timeout: 90_000,
  expect: { timeout: 15_000 },
  workers: 2,
  reporter: [['list']],
  use: {
    baseURL: process.env.CHARTKEY_URL,
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    trace: 'off',
  },
  projects: [
    { name: 'browser', testIgnore: /responsiveness\.spec\.ts/ },
    // Timing in wall-clock time (long tasks): alone, after everything else.
    { name: 'responsiveness', testMatch: /responsiveness\.spec\.ts/, dependencies: ['browser'] },
  ],
});
