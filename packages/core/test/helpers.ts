import { type MockServer, type MockServerOptions, startMockServer } from '@sluice/mock-server';
import { afterEach } from 'vitest';
import { type Message, type Pool, type PoolOptions, createPool } from '../src/index.js';

const servers: MockServer[] = [];
const pools: Pool[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A mock server on port 0, closed after the test. STARTTLS is off unless asked for, so that tests see clear text. */
export async function server(options: MockServerOptions = {}): Promise<MockServer> {
  const s = await startMockServer({ ...options, extensions: { starttls: false, ...options.extensions } });
  servers.push(s);
  return s;
}

/** A pool pointed at `s`, destroyed after the test. Retries are fast so that tests stay short. */
export function pool(s: MockServer, options: Partial<PoolOptions> = {}): Pool {
  const p = createPool({
    host: s.host,
    port: s.port,
    name: 'client.sluice.test',
    tls: { ca: s.ca },
    retry: { minDelay: 5, maxDelay: 20 },
    ...options,
  });
  pools.push(p);
  return p;
}

export function message(i = 0, overrides: Partial<Message['envelope']> = {}, body?: Message['body']): Message {
  return {
    envelope: { from: 'sender@example.com', to: [`rcpt${i}@example.com`], ...overrides },
    body: body ?? `From: sender@example.com\r\nTo: rcpt${i}@example.com\r\nSubject: Message ${i}\r\nMessage-ID: <m${i}@sluice.test>\r\n\r\nHello ${i}\r\n`,
  };
}

/** Settles every promise and counts outcomes. */
export async function outcomes(promises: Array<Promise<unknown>>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const r of await Promise.allSettled(promises)) {
    const key = r.status === 'fulfilled' ? 'delivered' : ((r.reason as { outcome?: string }).outcome ?? 'no-outcome');
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
