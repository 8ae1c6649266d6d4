import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/main.ts'],
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  // One copy of terminus for the app and @sluice/nestjs/terminus (its classes are DI tokens).
  external: ['@nestjs/terminus'],
});
