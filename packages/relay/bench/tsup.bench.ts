import { defineConfig } from 'tsup';
import { sourceBundle } from '../../../tsup.shared.js';

// Bundles the benchmark, the mock server process and the relay CLI from the workspace sources: the relay
// from the sources; the mock server from its build (its own dependencies resolve from there).
export default defineConfig(
  sourceBundle({ 'relay-bench': 'bench/relay-bench.ts', 'server-process': 'bench/server-process.ts', cli: 'src/cli.ts' }, '.cache/bench', {
    noExternal: [/^@sluice\/core/],
    external: ['@sluice/mock-server', 'nodemailer', 'smtp-server'],
  }),
);
