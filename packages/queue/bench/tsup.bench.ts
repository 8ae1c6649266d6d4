import { defineConfig } from 'tsup';
import { sourceBundle } from '../../../tsup.shared.js';

// Bundles the bench, the soak and their child processes from the workspace sources: the queue and the
// core from the sources; the mock server from its build (its own dependencies resolve from there).
export default defineConfig(
  sourceBundle(
    {
      cluster: 'bench/cluster.ts',
      soak: 'bench/soak.ts',
      'server-process': 'bench/server-process.ts',
      'worker-process': 'bench/worker-process.ts',
      cli: 'src/cli.ts',
    },
    '.cache/bench',
    { noExternal: [/^@sluice\/core/], external: ['@sluice/mock-server', 'bullmq', 'ioredis', 'nodemailer'] },
  ),
);
