import { defineConfig } from 'vitest/config';

// Interoperability tests against a real Postfix (scripts/postfix/start.sh). Run with `pnpm test:interop`.
// The test files start the instance in beforeAll and stop it in afterAll; SLUICE_POSTFIX_INTEROP tells
// them they run under this config (under the default config they are skipped).
// SLUICE_POSTFIX_PORT=NNNN uses an instance that is already running instead of starting one.
export default defineConfig({
  // Workspace packages resolve to their TypeScript sources in tests (never a stale dist/).
  resolve: { conditions: ['@sluice/source'] },
  ssr: { resolve: { conditions: ['@sluice/source'] } },
  test: {
    include: ['test/interop/**/*.test.ts'],
    // SLUICE_EXIM_INTEROP: the Exim files (exim*.test.ts) run too; they need scripts/exim/install.sh.
    env: { SLUICE_POSTFIX_INTEROP: '1', SLUICE_EXIM_INTEROP: '1' },
    // One Postfix instance directory: files must not start and stop it under each other.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
