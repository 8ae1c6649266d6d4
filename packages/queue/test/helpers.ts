import { randomUUID } from 'node:crypto';
import { type MockServer, type MockServerOptions, startMockServer } from '@sluice/mock-server';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { MailQueue, type MailQueueOptions, MailWorker, type MailWorkerOptions } from '../src/index.js';
import { type RedisServer, redisAvailable, startRedis } from '../src/testing.js';

/** `describe` for suites that need a real redis-server: skipped (with a warning) only where none is installed and CI does not require it. */
export const describeRedis = (redisAvailable() ? describe : describe.skip) as typeof describe.skip;

/** One real redis-server per test file; queues, workers, mock servers and clients closed after each test. */
export function useRedis(options: { persist?: boolean } = {}) {
  let server: RedisServer | null = null;
  const closers: Array<() => Promise<unknown> | unknown> = [];
  beforeAll(async () => {
    if (redisAvailable()) server = await startRedis(options);
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const ctx = {
    get redis(): RedisServer {
      return server!;
    },
    get url(): string {
      return server!.url;
    },
    /** A fresh queue name: tests never share keys. */
    name: () => `q-${randomUUID().slice(0, 8)}`,
    async smtp(opts: MockServerOptions = {}): Promise<MockServer> {
      const s = await startMockServer({ ...opts, extensions: { starttls: false, ...opts.extensions } });
      closers.push(() => s.close());
      return s;
    },
    queue(name: string, opts: Partial<MailQueueOptions> = {}): MailQueue {
      const q = new MailQueue(name, { connection: server!.url, ...opts });
      closers.push(() => q.close());
      return q;
    },
    worker(name: string, smtp: MockServer, opts: Partial<MailWorkerOptions> & { budget?: MailWorkerOptions['budget'] } = {}): MailWorker {
      const w = new MailWorker(name, {
        connection: server!.url,
        drainDelay: 1000,
        ...opts,
        pool: { host: smtp.host, port: smtp.port, name: 'worker.sluice.test', ...opts.pool },
        budget: opts.budget ?? { account: `acct-${name}`, maxConnections: 5 },
      });
      closers.push(() => w.close());
      return w;
    },
    client(): Redis {
      const c = new Redis(server!.url, { maxRetriesPerRequest: null });
      closers.push(() => c.disconnect());
      return c;
    },
    defer(close: () => Promise<unknown> | unknown) {
      closers.push(close);
    },
  };
  return ctx;
}

export function message(i: number, extra = '') {
  return {
    envelope: { from: 'sender@example.com', to: [`rcpt${i}@example.com`] },
    body: `From: sender@example.com\r\nTo: rcpt${i}@example.com\r\nSubject: Message ${i}\r\nMessage-ID: <m${i}.${randomUUID()}@sluice.test>\r\n\r\nHello ${i}${extra}\r\n`,
  };
}

/** Resolves once `count` outcomes were recorded by `worker` (an event, not a sleep). */
export function outcomes(worker: MailWorker, count: number): Promise<Array<{ jobId: string; outcome: string }>> {
  const seen: Array<{ jobId: string; outcome: string }> = [];
  return new Promise((resolve) => {
    const on = (o: { jobId: string; outcome: string }) => {
      seen.push(o);
      if (seen.length >= count) {
        worker.off('outcome', on);
        resolve(seen);
      }
    };
    worker.on('outcome', on);
  });
}

/** A header of a received message, parsed (not a substring match). */
export function header(raw: Buffer | null, name: string): string | undefined {
  const text = raw!.toString('latin1');
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const unfolded = head.replace(/\r\n[ \t]+/g, ' ');
  for (const line of unfolded.split('\r\n')) {
    const i = line.indexOf(':');
    if (line.slice(0, i).toLowerCase() === name.toLowerCase()) return line.slice(i + 1).trim();
  }
  return undefined;
}
