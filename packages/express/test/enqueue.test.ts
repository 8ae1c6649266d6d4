import { MailQueue, MailWorker } from '@sluice/queue';
import { type RedisServer, redisAvailable, startRedis } from '@sluice/queue/testing';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sluice } from '../src/index.js';
import { poolOptions, server } from './helpers.js';

let redis: RedisServer;
// A real redis-server: skipped only where none is installed and CI does not require it (SLUICE_REQUIRE_REDIS).
const describeRedis = redisAvailable() ? describe : describe.skip;
beforeAll(async () => {
  if (redisAvailable()) redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

function headers(raw: Buffer): Record<string, string> {
  const text = raw.toString('latin1');
  const out: Record<string, string> = {};
  for (const line of text
    .slice(0, text.indexOf('\r\n\r\n'))
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')) {
    const i = line.indexOf(':');
    out[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

describeRedis('req.mailer.enqueue()', () => {
  it('puts the composed message on the queue (not on the wire); a worker sends it later', async () => {
    const s = await server();
    const queue = new MailQueue('express-enqueue', { connection: redis.url });
    const m = sluice({ ...poolOptions(s), queue });
    const app = express();
    app.use(m);
    app.post('/signup', async (req, res) => {
      const job = await req.mailer.enqueue({ from: 'app@example.com', to: 'new@example.com', subject: 'Welcome', text: 'Hi' });
      res.status(202).json({ jobId: job.id });
    });
    const res = await request(app).post('/signup').expect(202);
    const job = await queue.queue.getJob(res.body.jobId);
    expect(await job!.getState()).toBe('waiting');
    expect(headers(Buffer.from(job!.data.body, 'latin1'))).toMatchObject({ subject: 'Welcome', to: 'new@example.com', from: 'app@example.com' });
    expect(s.connections).toHaveLength(0); // nothing sent by the web process

    const worker = new MailWorker('express-enqueue', {
      connection: redis.url,
      pool: { ...poolOptions(s), retry: false },
      budget: { account: 'express', maxConnections: 2 },
      drainDelay: 1000,
    });
    const [received] = await s.inbox.waitFor(1);
    expect(received!.to).toEqual(['new@example.com']);
    await worker.close();
    await m.pool.close();
    await queue.close();
  });

  it('without a queue, enqueue() rejects with EOPTIONS', async () => {
    const s = await server();
    const m = sluice(poolOptions(s));
    await expect(m.enqueue({ from: 'a@example.com', to: 'b@example.com', text: 'x' })).rejects.toMatchObject({ code: 'EOPTIONS' });
    expect(() => sluice({ ...poolOptions(s), queue: {} as never })).toThrow(expect.objectContaining({ code: 'EOPTIONS' }));
    await m.pool.close();
  });
});
