import { expect, it } from 'vitest';
import { describeRedis, message, outcomes, useRedis } from './helpers.js';

const ctx = useRedis();
const fast = { defaultJobOptions: { attempts: 3, backoff: { type: 'fixed' as const, delay: 50 } } };

describeRedis('outcomes recorded on the job', () => {
  it('rejected (5xx): the job fails at once, no retry, with the reply code, enhanced code and command', async () => {
    const name = ctx.name();
    const smtp = await ctx.smtp({ faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] });
    const queue = ctx.queue(name, fast);
    const job = await queue.add(message(1));
    const worker = ctx.worker(name, smtp);
    expect((await outcomes(worker, 1))[0]!.outcome).toBe('rejected');
    const failed = await queue.queue.getJob(job.id!);
    expect(await failed!.getState()).toBe('failed');
    expect(failed!.attemptsMade).toBe(1);
    expect(failed!.failedReason).toMatch(/^EENVELOPE 550 5\.1\.1 \(RCPT\): /);
    expect(smtp.inbox.messages).toHaveLength(0);
  });

  it('transient (4xx before the content): BullMQ retries with its backoff, then it is delivered once', async () => {
    const name = ctx.name();
    const smtp = await ctx.smtp({ faults: [{ command: 'MAIL', times: 2, reply: '451 4.3.0 Try later' }] });
    const queue = ctx.queue(name, fast);
    const job = await queue.add(message(1));
    const worker = ctx.worker(name, smtp);
    const seen = await outcomes(worker, 3);
    expect(seen.map((o) => o.outcome)).toEqual(['retry', 'retry', 'delivered']);
    const done = await queue.queue.getJob(job.id!);
    expect(await done!.getState()).toBe('completed');
    expect(done!.attemptsMade).toBe(3);
    expect(smtp.inbox.messages).toHaveLength(1);
  });

  it('unknown (connection lost after the dot): held, listed, never retried; release() sends it again', async () => {
    const name = ctx.name();
    // The server queues the message and dies before answering the final dot (or BDAT LAST).
    const lost = { times: 1, action: 'drop' as const, deliver: true };
    const smtp = await ctx.smtp({
      faults: [
        { command: 'DOT', ...lost },
        { command: 'BDAT_LAST', ...lost },
      ],
    });
    const queue = ctx.queue(name, fast);
    const job = await queue.add(message(1));
    const worker = ctx.worker(name, smtp);
    expect((await outcomes(worker, 1))[0]!.outcome).toBe('held');
    const failed = await queue.queue.getJob(job.id!);
    expect(await failed!.getState()).toBe('failed');
    expect(failed!.failedReason).toMatch(/^held: EUNKNOWN/);
    const held = await queue.held();
    expect(held).toMatchObject([{ jobId: job.id, key: job.data.key, account: `acct-${name}` }]);
    expect(await queue.counts()).toMatchObject({ failed: 1, held: 1 });
    expect(smtp.inbox.messages).toHaveLength(1); // the server did queue it

    // The user accepts a possible duplicate: it goes again, and is delivered.
    const again = outcomes(worker, 1);
    await queue.release(job.id!);
    expect((await again)[0]!.outcome).toBe('delivered');
    expect(await queue.held()).toEqual([]);
    expect(smtp.inbox.messages).toHaveLength(2);
    await expect(queue.release(job.id!)).rejects.toMatchObject({ code: 'ENOTHELD' });
  });

  it('the same Message-ID enqueued twice is sent once: the second job completes from the sent marker', async () => {
    const name = ctx.name();
    const smtp = await ctx.smtp();
    const queue = ctx.queue(name);
    const m = { ...message(1), messageId: '<same@sluice.test>' };
    const worker = ctx.worker(name, smtp);
    await queue.add(m);
    await outcomes(worker, 1);
    const second = await queue.add(m);
    expect((await outcomes(worker, 1))[0]!.outcome).toBe('delivered');
    expect(smtp.inbox.messages).toHaveLength(1);
    const done = await queue.queue.getJob(second.id!);
    expect(done!.returnvalue).toMatchObject({ outcome: 'delivered', messageId: '<same@sluice.test>' });
  });

  it('rateLimit: messages never leave faster than the budget allows (GCRA in Redis)', async () => {
    const name = ctx.name();
    const times: number[] = [];
    const smtp = await ctx.smtp({ onMessage: () => times.push(Date.now()) });
    const queue = ctx.queue(name);
    const n = 8;
    await Promise.all(Array.from({ length: n }, (_, i) => queue.add(message(i))));
    const worker = ctx.worker(name, smtp, { budget: { account: `rate-${name}`, maxConnections: 4, rateLimit: { messages: 5, per: 1000 } } });
    await outcomes(worker, n);
    expect(times).toHaveLength(n);
    // No burst by default: one every 200 ms, so 8 messages span at least 7 intervals.
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(1400 - 50);
    // No window of (about) 1 s holds more than 5 (50 ms of slack for delivery jitter).
    for (const start of times) expect(times.filter((t) => t >= start && t < start + 950).length).toBeLessThanOrEqual(5);
  });
});
