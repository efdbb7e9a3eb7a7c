import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Conformance runs several servers; crash tests spawn processes. Two cores: keep files serial-ish.
    maxWorkers: 2,
  },
});
