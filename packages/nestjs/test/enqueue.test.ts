import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import type { MockServer } from '@sluice/mock-server';
import { MailQueue } from '@sluice/queue';
import { type RedisServer, redisAvailable, startRedis } from '@sluice/queue/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailerService, SluiceModule } from '../src/index.js';
import { mail, startServer } from './helpers.js';

let redis: RedisServer;
let server: MockServer;
// A real redis-server: skipped only where none is installed and CI does not require it (SLUICE_REQUIRE_REDIS).
const describeRedis = redisAvailable() ? describe : describe.skip;
beforeAll(async () => {
  if (redisAvailable()) [redis, server] = await Promise.all([startRedis(), startServer()]);
});
afterAll(async () => {
  await Promise.all([redis?.stop(), server?.close()]);
});

describeRedis('MailerService.enqueue()', () => {
  it('forRoot({ queue: { name, connection } }) enqueues the composed message; nothing goes on the wire', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRoot({ host: server.host, port: server.port, queue: { name: 'nest-enqueue', connection: redis.url } })],
    }).compile();
    await moduleRef.init();
    const mailer = moduleRef.get(MailerService);
    const job = await mailer.enqueue(mail(1));
    const queue = new MailQueue('nest-enqueue', { connection: redis.url });
    const stored = await queue.queue.getJob(job.id!);
    expect(await stored!.getState()).toBe('waiting');
    expect(stored!.data.envelope).toMatchObject({ from: 'app@example.com', to: ['reader1@example.com'] });
    expect(server.connections).toHaveLength(0);
    await queue.close();
    await moduleRef.close(); // closes the queue it created
    await expect(mailer.enqueue(mail(2))).rejects.toMatchObject({ code: 'EQUEUECLOSED' });
  });

  it('without a queue, enqueue() rejects with EOPTIONS', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [SluiceModule.forRoot({ host: server.host, port: server.port })] }).compile();
    await expect(moduleRef.get(MailerService).enqueue(mail(1))).rejects.toMatchObject({ code: 'EOPTIONS' });
    await moduleRef.close();
  });
});
