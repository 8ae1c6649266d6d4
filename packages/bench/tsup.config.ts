import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/demo.ts'],
  format: ['esm'],
  dts: false,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
