import { expect, it } from 'vitest';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../src/index.js';
import { describeRedis, header, message, outcomes, useRedis } from './helpers.js';

const ctx = useRedis();

describeRedis('MailQueue and MailWorker', () => {
  it('delivers queued messages, the exact bytes, and completes each job with its SendResult', async () => {
    const name = ctx.name();
    const smtp = await ctx.smtp({ rtt: 5 });
    const queue = ctx.queue(name);
    const sent = [message(1), message(2), message(3)];
    const jobs = await Promise.all(sent.map((m) => queue.add(m)));
    const worker = ctx.worker(name, smtp);
    const seen = await outcomes(worker, 3);
    expect(seen.map((o) => o.outcome)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(smtp.inbox.messages.map((m) => m.raw!.toString('utf8')).sort()).toEqual(sent.map((m) => m.body).sort());
    const done = await queue.queue.getJob(jobs[0]!.id!);
    expect(await done!.getState()).toBe('completed');
    expect(done!.returnvalue).toMatchObject({ outcome: 'delivered', responseCode: 250, accepted: [{ address: 'rcpt1@example.com', code: 250 }] });
    expect(await queue.counts()).toMatchObject({ waiting: 0, active: 0, completed: 3, failed: 0, held: 0 });
  });

  it('addMail composes at enqueue (DKIM-signed with the queue key) and the worker sends those bytes', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const name = ctx.name();
    const smtp = await ctx.smtp();
    const queue = ctx.queue(name, {
      dkim: { domainName: 'example.com', keySelector: 'q1', privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString() },
    });
    const job = await queue.addMail({ from: 'a@example.com', to: 'b@example.com', subject: 'Composed', text: 'Hello' });
    const stored = Buffer.from(job.data.body, 'latin1');
    const worker = ctx.worker(name, smtp);
    await outcomes(worker, 1);
    const [got] = smtp.inbox.messages;
    expect(got!.raw!.equals(stored)).toBe(true);
    expect(header(got!.raw, 'Subject')).toBe('Composed');
    expect(header(got!.raw, 'DKIM-Signature')).toMatch(/(^|; )d=example\.com;/);
    expect(header(got!.raw, 'Message-ID')).toBe(job.data.messageId);
    expect(job.data.key).toBe(job.data.messageId);
  });

  it('refuses a message over maxMessageSize at enqueue with EQUEUESIZE, and stores nothing', async () => {
    const name = ctx.name();
    const queue = ctx.queue(name, { maxMessageSize: 1024 });
    await expect(queue.add(message(1, 'x'.repeat(2000)))).rejects.toMatchObject({ name: 'QueueError', code: 'EQUEUESIZE' });
    await expect(queue.addBulk([{ message: message(2) }, { message: message(3, 'y'.repeat(2000)) }])).rejects.toMatchObject({ code: 'EQUEUESIZE' });
    expect(await queue.counts()).toMatchObject({ waiting: 0, delayed: 0 });
    // The default is 10 MiB: one byte over is refused.
    const big = ctx.queue(ctx.name());
    const body = Buffer.alloc(DEFAULT_MAX_MESSAGE_SIZE + 1, 0x61);
    await expect(big.add({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, body })).rejects.toMatchObject({ code: 'EQUEUESIZE' });
  });

  it('refuses a stream body and a missing envelope before anything is stored', async () => {
    const { Readable } = await import('node:stream');
    const queue = ctx.queue(ctx.name());
    await expect(queue.add({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, body: Readable.from(['x']) })).rejects.toMatchObject({
      code: 'EQUEUEMESSAGE',
    });
    await expect(queue.add({ envelope: { from: 'a@example.com', to: [] }, body: 'x' })).rejects.toMatchObject({ code: 'EQUEUEMESSAGE' });
    expect(await queue.counts()).toMatchObject({ waiting: 0 });
  });

  it('a jobId makes a second add a no-op', async () => {
    const queue = ctx.queue(ctx.name());
    const m = message(1);
    const a = await queue.add(m, { jobId: 'order-42' });
    const b = await queue.add(m, { jobId: 'order-42' });
    expect(a.id).toBe('order-42');
    expect(b.id).toBe('order-42');
    expect(await queue.counts()).toMatchObject({ waiting: 1 });
  });
});
