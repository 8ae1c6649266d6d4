import { defineConfig } from 'tsup';

// Bundles the benchmark (and the server sources it imports) for plain `node`; the output stays out
// of the package and of git.
export default defineConfig({
  entry: { throughput: 'bench/throughput.ts' },
  format: ['esm'],
  outDir: 'node_modules/.cache/sluice-bench',
  target: 'node20',
  dts: false,
  sourcemap: false,
  clean: true,
  silent: true,
});
