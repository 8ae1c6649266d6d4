import { defineConfig } from 'vitest/config';

// Like vitest.shared.ts but WITHOUT the '@sluice/source' condition: @sluice/nestjs must load from its
// injected dist, whose peer dependencies resolve to NestJS 11 (its src would see packages/nestjs's Nest 12).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
