import { type Pool, createPool } from '@sluice/core';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { prometheusMetrics } from '../src/index.js';

let server: MockServer;
const pools: Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  await server?.close();
});

function newPool(options: Record<string, unknown> = {}): Pool {
  const p = createPool({ host: server.host, port: server.port, name: 'client.sluice.test', maxConnections: 2, retry: { minDelay: 5, maxDelay: 20 }, ...options });
  pools.push(p);
  return p;
}

const message = (i: number, to = [`rcpt${i}@example.com`]) => ({
  envelope: { from: 'sender@example.com', to },
  body: `From: sender@example.com\r\nSubject: ${i}\r\n\r\nHello\r\n`,
});

/** Parses the Prometheus text format into samples, checking each metric's TYPE line. */
function parse(text: string): { types: Map<string, string>; value: (name: string, labels?: Record<string, string>) => number | undefined } {
  const types = new Map<string, string>();
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m![2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m![1]!, labels, value: Number(m![3]) });
  }
  const value = (name: string, labels: Record<string, string> = {}) => {
    const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length);
    expect(hits.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
    return hits[0]?.value;
  };
  return { types, value };
}

describe('prometheusMetrics(pool)', () => {
  it('delivery latency, replies by code, outcomes and connections, for this pool only', async () => {
    server = await startMockServer({ extensions: { starttls: false } });
    server.setFaults([{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }]);
    const pool = newPool();
    const registry = new Registry();
    const metrics = prometheusMetrics(pool, { registry });
    const settled = await Promise.allSettled([
      pool.send(message(1)),
      pool.send(message(2, ['gone@example.com'])),
      pool.send(message(3, ['a@example.com', 'gone@example.com'])),
      pool.send(message(4)),
    ]);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const rejectedCode = ((settled[1] as PromiseRejectedResult).reason as { code: string }).code;
    // Another pool's sends are not this pool's.
    await newPool().send(message(5));

    let m = parse(await metrics.metrics());
    expect(m.types.get('sluice_send_duration_seconds')).toBe('histogram');
    expect(m.types.get('sluice_smtp_replies_total')).toBe('counter');
    expect(m.value('sluice_sends_total', { outcome: 'delivered', code: '' })).toBe(3);
    expect(m.value('sluice_sends_total', { outcome: 'rejected', code: rejectedCode })).toBe(1);
    expect(m.value('sluice_smtp_replies_total', { command: 'RCPT', code: '250' })).toBe(3);
    expect(m.value('sluice_smtp_replies_total', { command: 'RCPT', code: '550' })).toBe(2);
    expect(m.value('sluice_smtp_replies_total', { command: 'DOT', code: '250' })).toBe(3);
    expect(m.value('sluice_send_duration_seconds_count', { outcome: 'delivered' })).toBe(3);
    expect(m.value('sluice_send_duration_seconds_bucket', { outcome: 'delivered', le: '+Inf' })).toBe(3);
    expect(m.value('sluice_send_duration_seconds_bucket', { outcome: 'delivered', le: '60' })).toBe(3);
    expect(m.value('sluice_send_duration_seconds_sum', { outcome: 'delivered' })).toBeGreaterThan(0);
    expect(m.value('sluice_send_duration_seconds_count', { outcome: 'rejected' })).toBe(1);
    expect(m.value('sluice_send_queue_wait_seconds_count')).toBe(3);
    expect(m.value('sluice_connection_limit')).toBe(2);
    expect(m.value('sluice_queued_messages')).toBe(0);
    expect(m.value('sluice_in_flight_messages')).toBe(0);
    const opened = m.value('sluice_connections_opened_total')!;
    expect(opened).toBe(pool.stats.connections);
    expect(m.value('sluice_connections', { state: 'idle' })).toBe(opened);

    await pool.close();
    m = parse(await metrics.metrics());
    expect(m.value('sluice_connections_closed_total', { code: '' })).toBe(opened);
    expect(m.value('sluice_connections', { state: 'idle' })).toBe(0);

    metrics.dispose();
    expect(await registry.metrics()).not.toMatch(/sluice_/);
  });

  it('counts refused connections and the limit lowered after 421', async () => {
    server = await startMockServer({ extensions: { starttls: false }, maxConnections: 1 });
    const pool = newPool({ maxConnections: 4, maxMessagesPerConnection: 100 });
    const metrics = prometheusMetrics(pool, { prefix: 'upstream_' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => pool.send(message(i))));
    const m = parse(await metrics.metrics());
    expect(m.value('upstream_connection_limit')).toBe(1);
    expect(m.value('upstream_throttles_total')).toBeGreaterThan(0);
    expect(m.value('upstream_connection_errors_total', { phase: 'connect', code: 'ECONNECTION' })).toBeGreaterThan(0);
    expect(m.value('upstream_sends_total', { outcome: 'delivered', code: '' })).toBe(20);
  });
});
