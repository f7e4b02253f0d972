import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One test file at a time: the integration and chaos tests start worker processes and Redis servers of their
    // own, and on two cores running files side by side starves the timing-sensitive ones (Redis restarts, crashes).
    maxWorkers: 1,
  },
});
