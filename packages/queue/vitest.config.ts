import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

export default mergeConfig(
  shared,
  defineConfig({
    // The crash tests run workers as child processes (the CLI, bundled once from the sources). The
    // files share one machine's CPU with real Redis and SMTP servers: one at a time.
    test: { globalSetup: ['test/global-setup.ts'], fileParallelism: false, testTimeout: 60_000, hookTimeout: 30_000 },
  }),
);
