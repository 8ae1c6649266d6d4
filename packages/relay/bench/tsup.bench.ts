import { defineConfig } from 'tsup';

// Bundles the benchmark, the mock server process and the relay CLI from the workspace sources.
export default defineConfig({
  entry: { 'relay-bench': 'bench/relay-bench.ts', 'server-process': 'bench/server-process.ts', cli: 'src/cli.ts' },
  outDir: '.cache/bench',
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  clean: true,
  dts: false,
  silent: true,
  // The relay from the sources; the mock server from its build (its own dependencies resolve from there).
  noExternal: [/^@sluice\/core/],
  external: ['@sluice/mock-server', 'nodemailer', 'smtp-server'],
  esbuildOptions(options) {
    options.conditions = ['@sluice/source'];
  },
});
