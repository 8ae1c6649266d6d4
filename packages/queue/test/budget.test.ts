import { expect, it } from 'vitest';
import { Budget } from '../src/index.js';
import { describeRedis, message, outcomes, useRedis } from './helpers.js';

const ctx = useRedis();

function budget(opts: ConstructorParameters<typeof Budget>[2]) {
  const b = new Budget(ctx.client(), ctx.client(), opts, 'sluice');
  ctx.defer(() => b.close());
  return b;
}

describeRedis('the shared budget', () => {
  it('never grants more than maxConnections leases across processes; a waiter wakes on release (BLPOP)', async () => {
    const opts = { account: `sem-${ctx.name()}`, maxConnections: 2 };
    const a = budget(opts);
    const b = budget(opts);
    const never = new AbortController().signal;
    const l1 = await a.acquire(never);
    const l2 = await b.acquire(never);
    let third = false;
    const waiting = b.acquire(never).then((l) => {
      third = true;
      return l;
    });
    expect((await a.state()).leasesHeld).toBe(2);
    expect(third).toBe(false);
    l1.release();
    const l3 = await waiting;
    expect((await a.state()).leasesHeld).toBe(2);
    l2.release();
    l3.release();
    await expect.poll(async () => (await a.state()).leasesHeld).toBe(0);
  });

  it('an aborted wait rejects with the reason and takes no lease', async () => {
    const opts = { account: `abort-${ctx.name()}`, maxConnections: 1 };
    const a = budget(opts);
    const held = await a.acquire(new AbortController().signal);
    const ac = new AbortController();
    const waiting = a.acquire(ac.signal);
    ac.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    held.release();
    await expect.poll(async () => (await a.state()).leasesHeld).toBe(0);
  });

  it('a 421 "too many connections" seen by one worker lowers K for every worker, and the others honour it', async () => {
    const name = ctx.name();
    // The provider allows 3; the budget was set to 6. The server refuses a 4th connection with 421.
    const smtp = await ctx.smtp({ rtt: 20, maxConnections: 3 });
    const queue = ctx.queue(name, { defaultJobOptions: { attempts: 5, backoff: { type: 'fixed', delay: 50 } } });
    const shared = { account: `k-${name}`, maxConnections: 6, cooldown: 60_000 };
    const first = ctx.worker(name, smtp, { budget: shared, pool: { maxConnections: 6, maxMessagesPerConnection: 5 } });
    const refusedFirst: number[] = [];
    first.pool.on('connect-error', (e) => refusedFirst.push(e.responseCode ?? 0));
    const throttled = new Promise<{ limit: number }>((resolve) => first.once('throttled', resolve));
    await Promise.all(Array.from({ length: 30 }, (_, i) => queue.add(message(i))));
    expect((await throttled).limit).toBe(3);
    await outcomes(first, 30);
    expect(refusedFirst.length).toBeGreaterThan(0);
    expect(refusedFirst.every((c) => c === 421)).toBe(true);

    // A second worker (its own budget handle and Redis connections) joins: K is 3 for it too.
    const second = ctx.worker(name, smtp, { budget: shared, pool: { maxConnections: 6, maxMessagesPerConnection: 5 } });
    expect((await second.metrics()).budget).toMatchObject({ limit: 3, maxConnections: 6 });
    const refused: number[] = [];
    for (const w of [first, second]) w.pool.on('connect-error', (e) => refused.push(e.responseCode ?? 0));
    const seen: string[] = [];
    const all = new Promise<void>((resolve) => {
      const on = (o: { outcome: string }) => {
        seen.push(o.outcome);
        if (seen.length === 60) resolve();
      };
      first.on('outcome', on);
      second.on('outcome', on);
    });
    await Promise.all(Array.from({ length: 60 }, (_, i) => queue.add(message(100 + i))));
    await all;
    expect(seen.every((o) => o === 'delivered')).toBe(true);
    // Connections retire after 5 messages, so leases pass between the workers. Both worked, and no connection was refused any more: together they stayed within 3.
    expect((await second.metrics()).outcomes.delivered).toBeGreaterThan(0);
    expect(refused).toEqual([]);
    expect((await first.metrics()).budget.limit).toBe(3);
  });
});
