import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end suites start real processes; two cores are shared by everything.
    fileParallelism: true,
    maxWorkers: 2,
    typecheck: { enabled: false },
  },
});
