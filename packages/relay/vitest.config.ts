import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

export default mergeConfig(
  shared,
  defineConfig({
    // The CLI tests spawn the relay as a child process: bundled once from the sources.
    test: { globalSetup: ['test/global-setup.ts'] },
  }),
);
