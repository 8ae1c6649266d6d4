/**
 * Crash safety against real processes: a sluice-worker child is SIGKILLed at chosen moments, and a
 * new worker picks up what BullMQ's stalled check hands out again. The three branches of the check:
 * sent → complete without sending; in-flight marker without sent → held; neither → send.
 */
import { createPool } from '@sluice/core';
import { QueueEvents, Worker } from 'bullmq';
import { expect, it } from 'vitest';
import { Budget } from '../src/index.js';
import { fromJobData } from '../src/message.js';
import { spawnWorker } from './child-worker.js';
import { describeRedis, message, outcomes, useRedis } from './helpers.js';

const ctx = useRedis();

function childConfig(name: string, smtp: { host: string; port: number }, budget: Record<string, unknown>) {
  return {
    queue: name,
    redis: ctx.url,
    pool: { host: smtp.host, port: smtp.port, name: 'child.sluice.test' },
    budget,
    lockDuration: 2000,
    stalledInterval: 1000,
    drainDelay: 1000,
  };
}

function probe(budget: { account: string; maxConnections: number }) {
  const b = new Budget(ctx.client(), ctx.client(), budget, 'sluice');
  ctx.defer(() => b.close());
  return b;
}

describeRedis('a worker SIGKILLed', () => {
  it('waiting for the reply to the final dot: its lease expires within the TTL and the job is held, not resent', async () => {
    const name = ctx.name();
    const budget = { account: `crash-${name}`, maxConnections: 1, leaseTtl: 2000 };
    // The server queues the message and never answers the dot (nor BDAT LAST): the child waits.
    const stall = { times: 1, action: 'stall' as const, deliver: true };
    const smtp = await ctx.smtp({
      faults: [
        { command: 'DOT', ...stall },
        { command: 'BDAT_LAST', ...stall },
      ],
    });
    const queue = ctx.queue(name);
    const job = await queue.add(message(1));
    const child = spawnWorker(childConfig(name, smtp, budget));
    ctx.defer(() => child.kill());
    await child.ready;
    await smtp.inbox.waitFor(1);
    const shared = probe(budget);
    expect((await shared.state()).leasesHeld).toBe(1);
    expect(await ctx.client().exists(shared.keys.inflight(job.data.key))).toBe(1);

    await child.kill();
    const killedAt = Date.now();
    expect((await shared.state()).leasesHeld).toBe(1); // nobody released it: only the TTL frees it

    const worker = ctx.worker(name, smtp, { budget, stalledInterval: 500, lockDuration: 2000 });
    const seen = outcomes(worker, 2);
    const second = await queue.add(message(2));
    const got = Object.fromEntries((await seen).map((o) => [o.jobId, o.outcome]));
    // Message 2 needed the only lease: the dead worker's had expired (TTL 2 s; plus BullMQ's stall check).
    expect(got).toEqual({ [job.id!]: 'held', [second.id!]: 'delivered' });
    expect(Date.now() - killedAt).toBeLessThan(2000 + 3000);
    expect(smtp.inbox.messages.map((m) => m.to[0])).toEqual(['rcpt1@example.com', 'rcpt2@example.com']);
    expect(await queue.held()).toMatchObject([{ jobId: job.id, reason: expect.stringMatching(/in-flight marker/) }]);
  });

  it('waiting for a lease (nothing written yet): the job is sent normally by the next worker', async () => {
    const name = ctx.name();
    const budget = { account: `wait-${name}`, maxConnections: 1, leaseTtl: 2000 };
    const smtp = await ctx.smtp();
    const queue = ctx.queue(name);
    // Someone else holds the account's only connection.
    const holder = probe(budget);
    const lease = await holder.acquire(new AbortController().signal);
    const events = new QueueEvents(name, { connection: { host: '127.0.0.1', port: ctx.redis.port } });
    ctx.defer(() => events.close());
    await events.waitUntilReady();
    const child = spawnWorker(childConfig(name, smtp, budget));
    ctx.defer(() => child.kill());
    await child.ready;
    const job = await queue.add(message(1));
    await new Promise<void>((resolve) => events.on('active', ({ jobId }) => jobId === job.id && resolve()));
    expect(await ctx.client().exists(holder.keys.inflight(job.data.key))).toBe(0);

    await child.kill();
    lease.release();
    const worker = ctx.worker(name, smtp, { budget, stalledInterval: 500 });
    expect((await outcomes(worker, 1))[0]).toMatchObject({ jobId: job.id, outcome: 'delivered' });
    expect(smtp.inbox.messages).toHaveLength(1);
    expect(await queue.held()).toEqual([]);
  });

  it('holding a job fetched ahead (nothing written for it): the next worker sends it once', async () => {
    const name = ctx.name();
    const budget = { account: `ahead-${name}`, maxConnections: 1, leaseTtl: 2000 };
    // Message 1 is stalled at its dot on the one connection; message 2 waits in the pool for it.
    const stall = { times: 1, action: 'stall' as const, deliver: true };
    const smtp = await ctx.smtp({
      faults: [
        { command: 'DOT', ...stall },
        { command: 'BDAT_LAST', ...stall },
      ],
    });
    const queue = ctx.queue(name);
    const events = new QueueEvents(name, { connection: { host: '127.0.0.1', port: ctx.redis.port } });
    ctx.defer(() => events.close());
    await events.waitUntilReady();
    const config = childConfig(name, smtp, budget);
    const child = spawnWorker({ ...config, pool: { ...config.pool, maxConnections: 1 } });
    ctx.defer(() => child.kill());
    await child.ready;
    const first = await queue.add(message(1));
    await smtp.inbox.waitFor(1);
    const third = { id: '' };
    const fetched = new Promise<void>((resolve) => events.on('active', ({ jobId }) => jobId === third.id && resolve()));
    const [second, ahead] = await queue.addBulk([{ message: message(2) }, { message: message(3) }]);
    third.id = ahead!.id!;
    // Job 3 is the one fetched ahead: active in BullMQ, no connection free for it, no marker.
    await fetched;
    const markers = probe(budget);
    expect(await ctx.client().exists(markers.keys.inflight(second!.data.key))).toBe(1);
    expect(await ctx.client().exists(markers.keys.inflight(ahead!.data.key))).toBe(0);

    await child.kill();
    const worker = ctx.worker(name, smtp, { budget, stalledInterval: 500, lockDuration: 2000 });
    const got = Object.fromEntries((await outcomes(worker, 3)).map((o) => [o.jobId, o.outcome]));
    // 1 may have been delivered (it was), 2 was handed over (its marker written, never sent): both held. 3 goes once.
    expect(got).toEqual({ [first.id!]: 'held', [second!.id!]: 'held', [ahead!.id!]: 'delivered' });
    expect(smtp.inbox.messages.map((m) => m.to[0])).toEqual(['rcpt1@example.com', 'rcpt3@example.com']);
  });

  it('after its sent marker, before completing: the next worker completes the job without sending', async () => {
    // The dead worker's steps replayed with the real pieces (BullMQ manual fetch, the budget's
    // markers, a real send), up to the crash point: no sleep can land a SIGKILL between two Redis calls.
    const name = ctx.name();
    const budget = { account: `sent-${name}`, maxConnections: 1 };
    const smtp = await ctx.smtp();
    const queue = ctx.queue(name);
    const job = await queue.add(message(1));
    const dead = new Worker(name, null, { connection: { host: '127.0.0.1', port: ctx.redis.port }, lockDuration: 1000, autorun: false });
    const taken = await dead.getNextJob('dead-worker-token');
    expect(taken!.id).toBe(job.id);
    const markers = probe(budget);
    expect(await markers.beforeSend(taken!.data.key, `${taken!.id}@dead-worker-token`)).toEqual({ type: 'ok' });
    const pool = createPool({ host: smtp.host, port: smtp.port, name: 'dead.sluice.test', retry: false });
    const result = await pool.send(fromJobData(taken!.data));
    await pool.close();
    await markers.markSent(taken!.data.key, JSON.stringify(result));
    await dead.close(true); // gone without moveToCompleted; its lock lapses after 1 s

    const worker = ctx.worker(name, smtp, { budget, stalledInterval: 500 });
    expect((await outcomes(worker, 1))[0]).toMatchObject({ jobId: job.id, outcome: 'delivered' });
    expect(smtp.inbox.messages).toHaveLength(1);
    const done = await queue.queue.getJob(job.id!);
    expect(await done!.getState()).toBe('completed');
    // The stored result of the first (only) send, not a new one.
    expect(done!.returnvalue).toEqual(JSON.parse(JSON.stringify(result)));
  });
});
