import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/demo.ts', 'src/bench.ts', 'src/server-process.ts', 'src/client-process.ts'],
  format: ['esm'],
  dts: false,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
