import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', terminus: 'src/terminus.ts', testing: 'src/testing.ts' },
  format: ['esm', 'cjs'],
  // Shared code (MailerService, the DI token of the default pool) must be ONE class across the entry
  // points, in CommonJS too: without splitting each .cjs entry would carry its own copy.
  splitting: true,
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
