/**
 * Redis restarts mid-run (the append-only file in its temp dir keeps the data): the workers' clients
 * reconnect, commands issued meanwhile wait and go through, and every job ends delivered exactly once.
 */
import { expect, it } from 'vitest';
import { describeRedis, message, useRedis } from './helpers.js';

const ctx = useRedis({ persist: true });

describeRedis('a Redis restart mid-run', () => {
  it('workers reconnect and nothing is lost or sent twice', async () => {
    const name = ctx.name();
    const smtp = await ctx.smtp({ rtt: 20 });
    const queue = ctx.queue(name);
    const n = 300;
    const jobs = await queue.addBulk(Array.from({ length: n }, (_, i) => ({ message: message(i) })));
    const budget = { account: `restart-${name}`, maxConnections: 4, leaseTtl: 5000 };
    // A moveToActive whose reply the restart cut off leaves a job active that no worker holds: BullMQ's
    // stalled check hands it out again after its lock (5 s here) lapses, and the markers decide.
    const workers = [0, 1].map(() => ctx.worker(name, smtp, { budget, pool: { maxConnections: 4 }, lockDuration: 5000, stalledInterval: 1000 }));
    const errors: string[] = [];
    for (const w of workers) w.on('error', (e) => errors.push(e.message));
    ctx.defer(() => expect(errors.length).toBeGreaterThan(0)); // they did see Redis go away
    await smtp.inbox.waitFor(50, 30_000);
    await ctx.redis.restart({ downMs: 1000 });
    const delivered = smtp.inbox.messages.length;
    expect(delivered).toBeLessThan(n); // the restart did land mid-run

    await smtp.inbox.waitFor(n, 60_000);
    // Every job reaches its final state in Redis (completed), none held, none failed.
    await expect.poll(async () => (await queue.counts()).completed, { timeout: 30_000, interval: 200 }).toBe(n);
    expect(await queue.counts()).toMatchObject({ waiting: 0, active: 0, failed: 0, held: 0 });
    // Each message exactly once.
    const ids = smtp.inbox.messages.map((m) => m.to[0]);
    expect(new Set(ids).size).toBe(n);
    expect(ids).toHaveLength(n);
    expect(jobs).toHaveLength(n);
  });
});
