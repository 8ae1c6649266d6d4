/** The chaos soak, CI-sized: 600 messages, 3 workers, 2 SIGKILLed and restarted (bench/soak.ts runs 20 000). */
import path from 'node:path';
import { expect, it } from 'vitest';
import { runSoak } from '../bench/soak-run.js';
import { CLI_DIR } from './global-setup.js';
import { describeRedis, useRedis } from './helpers.js';

const ctx = useRedis();

describeRedis('chaos soak (CI size)', () => {
  it('workers SIGKILLed at random moments: nothing lost, duplicates only among held jobs', async () => {
    const result = await runSoak({
      redisUrl: ctx.url,
      cli: path.join(CLI_DIR, 'cli.js'),
      messages: 600,
      workers: 3,
      kills: 2,

      seed: 7,
      timeout: 100_000,
    });
    console.log(result.summary);
    expect(result.kills).toBe(2);
    expect(result.lost).toBe(0);
    expect(result.duplicatesOutsideHeld).toBe(0);
    expect(result.completed + result.rejected + result.held).toBe(600);
    expect(result.rejected).toBe(0);
  }, 120_000);
});
