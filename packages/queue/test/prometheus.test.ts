/**
 * @sluice/queue/prometheus against a real redis-server and the mock SMTP server: the registry is
 * scraped and its text parsed (name, labels, value), and sluice-worker's --metrics-port is read over
 * HTTP from a real child process.
 */
import http from 'node:http';
import { QueueEvents } from 'bullmq';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { serveMetrics } from '../src/metrics-server.js';
import { queueMetrics } from '../src/prometheus.js';
import { spawnWorker } from './child-worker.js';
import { describeRedis, message, outcomes, useRedis } from './helpers.js';

const ctx = useRedis();

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, line by line: `# TYPE name type` and `name{k="v",…} value`. */
function parseExposition(text: string) {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n').filter(Boolean)) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `a sample line: ${line}`).not.toBeNull();
    const labels = Object.fromEntries([...(m![2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k!, v!]));
    samples.push({ name: m![1]!, labels, value: Number(m![3]) });
  }
  /** The one sample with exactly these labels (undefined if none). */
  const value = (name: string, labels: Record<string, string> = {}) => {
    const exact = samples.filter(
      (s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    expect(exact.length, `${name}${JSON.stringify(labels)} at most once`).toBeLessThanOrEqual(1);
    return exact[0]?.value;
  };
  return { types, samples, value };
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describeRedis('queueMetrics()', () => {
  it('a MailQueue: jobs by state, read from counts() at each scrape', async () => {
    const name = ctx.name();
    const queue = ctx.queue(name);
    const registry = new Registry();
    const metrics = queueMetrics(queue, { registry });
    await queue.addBulk([1, 2, 3].map((i) => ({ message: message(i) })));
    await queue.add(message(4), { delay: 60_000 });

    let m = parseExposition(await metrics.metrics());
    expect(m.types.get('sluice_queue_jobs')).toBe('gauge');
    expect(m.value('sluice_queue_jobs', { queue: name, state: 'waiting' })).toBe(3);
    expect(m.value('sluice_queue_jobs', { queue: name, state: 'delayed' })).toBe(1);
    for (const state of ['active', 'held', 'completed', 'failed']) expect(m.value('sluice_queue_jobs', { queue: name, state })).toBe(0);
    // A queue has no worker, budget or pool metrics.
    expect(m.samples.filter((s) => !s.name.startsWith('sluice_queue_jobs'))).toEqual([]);

    await queue.add(message(5));
    m = parseExposition(await registry.metrics());
    expect(m.value('sluice_queue_jobs', { queue: name, state: 'waiting' })).toBe(4);
    metrics.dispose();
    expect(parseExposition(await registry.metrics()).samples).toEqual([]);
  });

  it('a MailWorker: deliveries by outcome, the budget, rate waits, and its pool', async () => {
    const name = ctx.name();
    const smtp = await ctx.smtp({ faults: [{ command: 'RCPT', recipient: 'rcpt2@example.com', reply: '550 5.1.1 No such user' }] });
    const queue = ctx.queue(name);
    // Two messages a second, no burst: the 2nd, 3rd and 4th each wait for the rate.
    const worker = ctx.worker(name, smtp, { budget: { account: `acct-${name}`, maxConnections: 3, rateLimit: { messages: 2, per: 'second' } } });
    const metrics = queueMetrics(worker);
    const done = outcomes(worker, 4);
    await queue.addBulk([1, 2, 3, 4].map((i) => ({ message: message(i) })));
    await done;

    const m = parseExposition(await metrics.metrics());
    const account = `acct-${name}`;
    expect(m.types.get('sluice_queue_deliveries_total')).toBe('counter');
    expect(m.value('sluice_queue_deliveries_total', { queue: name, outcome: 'delivered' })).toBe(3);
    expect(m.value('sluice_queue_deliveries_total', { queue: name, outcome: 'rejected' })).toBe(1);
    expect(m.value('sluice_queue_deliveries_total', { queue: name, outcome: 'held' })).toBe(0);
    expect(m.value('sluice_queue_jobs', { queue: name, state: 'completed' })).toBe(3);
    expect(m.value('sluice_queue_jobs', { queue: name, state: 'failed' })).toBe(1);
    expect(m.value('sluice_queue_jobs', { queue: name, state: 'waiting' })).toBe(0);
    expect(m.value('sluice_queue_worker_jobs', { queue: name })).toBe(0);
    expect(m.value('sluice_queue_budget_limit', { account })).toBe(3);
    expect(m.value('sluice_queue_budget_max_connections', { account })).toBe(3);
    // The open connections hold their leases; Redis (cluster) also counts a lease released in the last
    // releaseDelay (20 ms) until its release lands.
    const local = m.value('sluice_queue_budget_leases', { account, scope: 'worker' });
    expect(local).toBe(worker.pool.stats.connections);
    expect(local).toBeGreaterThan(0);
    expect(m.value('sluice_queue_budget_leases', { account, scope: 'cluster' })).toBeGreaterThanOrEqual(local!);
    expect(m.value('sluice_queue_budget_leases', { account, scope: 'cluster' })).toBeLessThanOrEqual(3);
    expect(m.value('sluice_queue_rate_waits_total', { account })).toBeGreaterThanOrEqual(3);
    expect(m.value('sluice_queue_rate_wait_seconds_total', { account })).toBeGreaterThan(0);
    expect(m.value('sluice_queue_budget_decreases_total', { account })).toBe(0);
    // The pool's own metrics (@sluice/prometheus), in the same registry.
    expect(m.value('sluice_sends_total', { outcome: 'delivered', code: '' })).toBe(3);
    expect(m.value('sluice_smtp_replies_total', { command: 'RCPT', code: '550' })).toBe(1);

    metrics.dispose();
    expect(parseExposition(await metrics.registry.metrics()).samples).toEqual([]);
  });

  it('421 "too many connections": the replies by code, K lowered, and the limit in force', async () => {
    const name = ctx.name();
    // The provider allows 1; the budget was set to 3.
    const smtp = await ctx.smtp({ rtt: 20, maxConnections: 1 });
    const queue = ctx.queue(name, { defaultJobOptions: { attempts: 5, backoff: { type: 'fixed', delay: 50 } } });
    const account = `acct-${name}`;
    const worker = ctx.worker(name, smtp, { budget: { account, maxConnections: 3, cooldown: 60_000 }, pool: { maxConnections: 3 } });
    const metrics = queueMetrics(worker, { prefix: 'mail_', poolPrefix: false });
    const done = outcomes(worker, 6);
    await queue.addBulk([1, 2, 3, 4, 5, 6].map((i) => ({ message: message(i) })));
    await done;

    const m = parseExposition(await metrics.metrics());
    expect(m.value('mail_deliveries_total', { queue: name, outcome: 'delivered' })).toBe(6);
    expect(m.value('mail_throttle_replies_total', { account, code: '421' })).toBeGreaterThan(0);
    expect(m.value('mail_budget_decreases_total', { account })).toBeGreaterThan(0);
    expect(m.value('mail_budget_limit', { account })).toBe(1);
    expect(m.value('mail_budget_max_connections', { account })).toBe(3);
    expect(m.samples.filter((s) => s.name.startsWith('sluice_'))).toEqual([]);
  });

  it('sluice-worker --metrics-port: GET /metrics on 127.0.0.1, other hosts, origins and methods refused', async () => {
    const name = ctx.name();
    const smtp = await ctx.smtp();
    const queue = ctx.queue(name);
    const account = `cli-${name}`;
    const child = spawnWorker({
      queue: name,
      redis: ctx.url,
      pool: { host: smtp.host, port: smtp.port, name: 'child.sluice.test' },
      budget: { account, maxConnections: 2 },
      drainDelay: 1000,
      metricsPort: 0,
    });
    ctx.defer(() => child.kill());
    const ready = await child.ready;
    const url = new URL(ready.metrics!);
    expect(url.hostname).toBe('127.0.0.1');
    expect(url.pathname).toBe('/metrics');

    const events = new QueueEvents(name, { connection: { host: '127.0.0.1', port: ctx.redis.port } });
    ctx.defer(() => events.close());
    await events.waitUntilReady();
    const job = await queue.add(message(1));
    // Completed in Redis by the child, which counts the outcome in the same turn of its event loop as the reply.
    await job.waitUntilFinished(events, 20_000);
    const res = await get(ready.metrics!);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseExposition(res.body);
    expect(m.value('sluice_queue_deliveries_total', { queue: name, outcome: 'delivered' })).toBe(1);
    expect(m.value('sluice_queue_jobs', { queue: name, state: 'completed' })).toBe(1);
    expect(m.value('sluice_queue_budget_max_connections', { account })).toBe(2);
    expect(m.value('sluice_sends_total', { outcome: 'delivered', code: '' })).toBe(1);

    const refused = async (headers: Record<string, string>, method = 'GET') => {
      const r = await get(ready.metrics!, headers, method);
      return { status: r.status, code: (JSON.parse(r.body) as { error: { code: string } }).error.code };
    };
    expect(await refused({ host: 'rebound.example' })).toEqual({ status: 403, code: 'EFORBIDDEN' });
    expect(await refused({ origin: 'http://evil.example' })).toEqual({ status: 403, code: 'EFORBIDDEN' });
    expect(await refused({ 'sec-fetch-site': 'cross-site' })).toEqual({ status: 403, code: 'EFORBIDDEN' });
    expect(await refused({}, 'POST')).toEqual({ status: 405, code: 'EMETHOD' });
    expect((await get(`${url.origin}/status`)).status).toBe(404);
  });
});

describe('serveMetrics()', () => {
  it('a port in use: EQUEUEOPTIONS naming the address, before anything is served', async () => {
    const first = await serveMetrics(0, 'text/plain', async () => '');
    try {
      await expect(serveMetrics(first.port, 'text/plain', async () => '')).rejects.toMatchObject({
        code: 'EQUEUEOPTIONS',
        message: expect.stringMatching(new RegExp(`^Cannot serve metrics on 127\\.0\\.0\\.1:${first.port}: .*EADDRINUSE`)),
      });
    } finally {
      await first.close();
    }
  });
});
