/**
 * Prometheus metrics for one sluice pool, with prom-client: what an operator asks of a mail sender
 * (how long delivery takes, what the server answers, how sends end, how many connections). Measured
 * from @sluice/core's diagnostics channels, filtered to this pool; gauges read `pool.stats` at scrape.
 * No label is personal data: outcomes, codes, commands, reasons.
 */
import { type Pool, type SendContext, type SendResult, subscribeDiagnostics } from '@sluice/core';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface PrometheusOptions {
  /** Where the metrics are registered. Default: a new Registry (read it from the result). */
  registry?: Registry;
  /** Metric name prefix. Default `sluice_`. One pool per registry and prefix. */
  prefix?: string;
  /** Delivery latency buckets, seconds. */
  buckets?: number[];
}

export interface PrometheusMetrics {
  registry: Registry;
  /** The Prometheus text of the registry (`registry.metrics()`); serve it with `registry.contentType`. */
  metrics(): Promise<string>;
  /** Stops measuring and removes this pool's metrics from the registry. */
  dispose(): void;
}

/** From a warm pipelined send (milliseconds) to a slow server's DATA (minutes). */
export const DELIVERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Registers a pool's metrics in a prom-client registry (see the README for each metric). */
export function prometheusMetrics(pool: Pool, options: PrometheusOptions = {}): PrometheusMetrics {
  const registry = options.registry ?? new Registry();
  const p = options.prefix ?? 'sluice_';
  const registers = [registry];
  const buckets = options.buckets ?? DELIVERY_BUCKETS;

  const latency = new Histogram({
    name: `${p}send_duration_seconds`,
    help: 'Time from send() to the outcome of a message (delivery latency when outcome="delivered")',
    labelNames: ['outcome'],
    buckets,
    registers,
  });
  const queueWait = new Histogram({
    name: `${p}send_queue_wait_seconds`,
    help: 'Time a delivered message waited in the pool before its last attempt started (connections, rate limit, retries)',
    buckets,
    registers,
  });
  const sends = new Counter({
    name: `${p}sends_total`,
    help: 'Messages by outcome and error code ("" when delivered)',
    labelNames: ['outcome', 'code'],
    registers,
  });
  const replies = new Counter({
    name: `${p}smtp_replies_total`,
    help: 'Server replies by command and code: RCPT per recipient, DOT the reply to the content, or the reply that ended a send',
    labelNames: ['command', 'code'],
    registers,
  });
  const opened = new Counter({ name: `${p}connections_opened_total`, help: 'Connections opened and set up', registers });
  const closed = new Counter({
    name: `${p}connections_closed_total`,
    help: 'Connections closed, by error code ("" after QUIT)',
    labelNames: ['code'],
    registers,
  });
  const failures = new Counter({
    name: `${p}connection_errors_total`,
    help: 'Connections that failed to open (phase="connect") or were lost (phase="open")',
    labelNames: ['phase', 'code'],
    registers,
  });
  const throttles = new Counter({
    name: `${p}throttles_total`,
    help: 'Times the connection limit was lowered after "too many connections" (421/432)',
    registers,
  });
  const gauge = (name: string, help: string, read: (g: Gauge) => void, labelNames: string[] = []) =>
    new Gauge({
      name: `${p}${name}`,
      help,
      labelNames,
      registers,
      collect() {
        read(this);
      },
    });
  gauge(
    'connections',
    'Connections by state',
    (g) => {
      const s = pool.stats;
      g.set({ state: 'connecting' }, s.connecting);
      g.set({ state: 'idle' }, s.idle);
      g.set({ state: 'busy' }, s.busy);
    },
    ['state'],
  );
  gauge('connection_limit', 'The connection limit in force (lowered after 421/432, probed back up)', (g) => g.set(pool.stats.maxConnections));
  gauge('queued_messages', 'Messages waiting (queued, delayed for a retry, being composed)', (g) => g.set(pool.stats.queued));
  gauge('in_flight_messages', 'Messages in a transaction now', (g) => g.set(pool.stats.inFlight));

  const countReplies = (result: SendResult) => {
    for (const list of [result.accepted, result.rejected, result.pending]) for (const r of list) replies.inc({ command: 'RCPT', code: String(r.code) });
    replies.inc({ command: 'DOT', code: String(result.responseCode) });
  };
  const started = new WeakMap<SendContext, number>();
  const stop = subscribeDiagnostics({
    send: {
      start(ctx) {
        if (ctx.pool === pool) started.set(ctx, performance.now());
      },
      asyncEnd(ctx) {
        const t0 = started.get(ctx);
        if (t0 === undefined) return;
        started.delete(ctx);
        const seconds = (performance.now() - t0) / 1000;
        if (ctx.result) {
          latency.observe({ outcome: 'delivered' }, seconds);
          queueWait.observe(Math.max(0, ctx.result.timings.started - ctx.result.timings.queued) / 1000);
          sends.inc({ outcome: 'delivered', code: '' });
          return countReplies(ctx.result);
        }
        const e = (ctx.error ?? {}) as { outcome?: string; code?: string; command?: string; responseCode?: number; rejected?: SendResult['rejected'] };
        const outcome = e.outcome ?? 'failed';
        latency.observe({ outcome }, seconds);
        sends.inc({ outcome, code: e.code ?? 'EINTERNAL' });
        for (const r of e.rejected ?? []) replies.inc({ command: 'RCPT', code: String(r.code) });
        // The reply that ended it, unless it was a recipient's (counted above).
        const recipient = e.command === 'RCPT' && (e.rejected?.length ?? 0) > 0;
        if (e.responseCode !== undefined && !recipient) replies.inc({ command: e.command ?? '', code: String(e.responseCode) });
      },
    },
    connect: (c) => c.pool === pool && opened.inc(),
    close: (c) => c.pool === pool && closed.inc({ code: c.error?.code ?? '' }),
    connectionError: (e) => e.pool === pool && failures.inc({ phase: e.phase, code: e.error.code }),
    throttle: (t) => t.pool === pool && throttles.inc(),
  });
  const names = [
    'send_duration_seconds',
    'send_queue_wait_seconds',
    'sends_total',
    'smtp_replies_total',
    'connections_opened_total',
    'connections_closed_total',
    'connection_errors_total',
    'throttles_total',
    'connections',
    'connection_limit',
    'queued_messages',
    'in_flight_messages',
  ];
  return {
    registry,
    metrics: () => registry.metrics(),
    dispose() {
      stop();
      for (const name of names) registry.removeSingleMetric(`${p}${name}`);
    },
  };
}
