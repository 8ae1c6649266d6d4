import { defineConfig } from 'tsup';

// Bundles the bench, the soak and their child processes from the workspace sources.
export default defineConfig({
  entry: {
    cluster: 'bench/cluster.ts',
    soak: 'bench/soak.ts',
    'server-process': 'bench/server-process.ts',
    'worker-process': 'bench/worker-process.ts',
    cli: 'src/cli.ts',
  },
  outDir: '.cache/bench',
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  clean: true,
  dts: false,
  silent: true,
  // The queue and the core from the sources; the mock server from its build (its own dependencies resolve from there).
  noExternal: [/^@sluice\/core/],
  external: ['@sluice/mock-server', 'bullmq', 'ioredis', 'nodemailer'],
  // The core's own CommonJS dependencies (socks, denque) are bundled too: give them require().
  banner: { js: "import { createRequire as __sluiceRequire } from 'node:module'; const require = __sluiceRequire(import.meta.url);" },
  esbuildOptions(options) {
    options.conditions = ['@sluice/source'];
  },
});
