/**
 * pnpm --filter @sluice/queue soak: 20 000 messages, 4 workers, 3 of them SIGKILLed and restarted at
 * random moments. One summary line; exit code 1 if anything was lost or duplicated outside held jobs.
 * SOAK_MESSAGES, SOAK_SEED override the defaults.
 */
import { fileURLToPath } from 'node:url';
import { startRedis } from '../src/testing.js';
import { runSoak } from './soak-run.js';

const redis = await startRedis();
try {
  const result = await runSoak({
    redisUrl: redis.url,
    cli: fileURLToPath(new URL('./cli.js', import.meta.url)),
    messages: Number(process.env.SOAK_MESSAGES ?? 20_000),
    workers: 4,
    kills: 3,
    seed: process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : undefined,
  });
  console.log(result.summary);
  process.exitCode = result.ok ? 0 : 1;
} finally {
  await redis.stop();
}
process.exit(process.exitCode ?? 0);
