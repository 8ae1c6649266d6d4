import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

export default mergeConfig(
  shared,
  defineConfig({
    // The Postfix tests run in `pnpm test:interop` (vitest.interop.config.ts), which starts Postfix.
    test: { exclude: ['test/interop/**', '**/node_modules/**'] },
  }),
);
