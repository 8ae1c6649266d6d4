import { defineConfig } from 'vitest/config';

/**
 * The vitest settings every package shares. Workspace packages resolve to their TypeScript sources
 * (the `@sluice/source` export condition), so tests never run against a stale dist/.
 */
export default defineConfig({
  resolve: { conditions: ['@sluice/source'] },
  ssr: { resolve: { conditions: ['@sluice/source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
