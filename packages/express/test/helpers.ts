import { createPool, type Pool, type PoolOptions } from '@sluice/core';
import { type MockServer, type MockServerOptions, startMockServer } from '@sluice/mock-server';
import { afterEach } from 'vitest';
import { type SluiceMiddleware, sluice } from '../src/index.js';

const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A mock server on port 0 without STARTTLS, closed after the test. */
export async function server(options: MockServerOptions = {}): Promise<MockServer> {
  const s = await startMockServer({ ...options, extensions: { starttls: false, ...options.extensions } });
  cleanups.push(() => s.close());
  return s;
}

export function poolOptions(s: { host: string; port: number }, options: Partial<PoolOptions> = {}): PoolOptions {
  return { host: s.host, port: s.port, name: 'client.sluice.test', retry: false, ...options };
}

/** A pool the test owns, destroyed after the test. */
export function pool(s: { host: string; port: number }, options: Partial<PoolOptions> = {}): Pool {
  const p = createPool(poolOptions(s, options));
  cleanups.push(() => p.destroy());
  return p;
}

/** sluice() with a pool it creates; the pool is destroyed after the test. */
export function mailer(s: { host: string; port: number }, options: Partial<PoolOptions> = {}): SluiceMiddleware {
  const m = sluice(poolOptions(s, options));
  cleanups.push(() => m.pool.destroy());
  return m;
}

/**
 * An SMTP server that cannot be reached: the mock server drops every connection before its greeting.
 * (A port closed after listening could be taken again by a server of a test running in parallel.)
 */
export async function unreachable(): Promise<{ host: string; port: number }> {
  const s = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
  return { host: s.host, port: s.port };
}

/** The reply to the end of the content, whether the client used DATA or BDAT. */
export function contentFault(rule: Omit<import('@sluice/mock-server').FaultRule, 'command'>): import('@sluice/mock-server').FaultRule[] {
  return [
    { command: 'DOT', ...rule },
    { command: 'BDAT_LAST', ...rule },
  ];
}
