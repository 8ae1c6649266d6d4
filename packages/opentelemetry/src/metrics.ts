/**
 * Metrics from sluice's channels. Names follow MailKit's SMTP client metrics (OpenTelemetry has no SMTP
 * conventions yet) without MailKit's `mailkit.net.` prefix; durations in seconds, as OpenTelemetry asks.
 *
 * | instrument | type | unit |
 * | --- | --- | --- |
 * | `smtp.client.operation.duration` | histogram | s: one send, from send() to its outcome |
 * | `smtp.client.operation.count` | counter | {operation}: sends by `sluice.outcome` (and `error.type`) |
 * | `smtp.client.connection.duration` | histogram | s: an open connection's life, `error.type` when it was lost |
 * | `sluice.pool.connections` | up-down counter | {connection}: open connections |
 * | `sluice.pool.connection.limit` | gauge | {connection}: the connection limit in force (lowered after 421/432) |
 * | `sluice.pool.queued` | gauge | {message}: messages waiting |
 * | `sluice.connection.errors` | counter | {error}: connections that failed, by `sluice.connection.phase` and `error.type` |
 * | `sluice.pool.waits` | counter | {wait}: the scheduler waited, by `sluice.wait.reason` |
 * | `sluice.pool.throttles` | counter | {event}: the limit lowered after "too many connections" |
 *
 * No attribute is personal data: server, outcome, codes, reasons.
 */
import type { Attributes, BatchObservableCallback, Meter } from '@opentelemetry/api';
import { type Pool, type SendContext, subscribeDiagnostics } from '@sluice/core';
import { ATTR, failure, serverAttributes } from './attributes.js';

/** Buckets for SMTP operations: a warm pipelined send takes milliseconds, a slow server's DATA minutes. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function measure(meter: Meter): () => void {
  const duration = meter.createHistogram('smtp.client.operation.duration', {
    unit: 's',
    description: 'The time a send takes, from send() to its outcome',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const operations = meter.createCounter('smtp.client.operation.count', { unit: '{operation}', description: 'Sends, by outcome' });
  const connectionDuration = meter.createHistogram('smtp.client.connection.duration', {
    unit: 's',
    description: 'The life of an open connection to the SMTP server',
    advice: { explicitBucketBoundaries: [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] },
  });
  const open = meter.createUpDownCounter('sluice.pool.connections', { unit: '{connection}', description: 'Open connections' });
  const errors = meter.createCounter('sluice.connection.errors', { unit: '{error}', description: 'Connections that failed' });
  const waits = meter.createCounter('sluice.pool.waits', { unit: '{wait}', description: 'Times the scheduler left messages waiting' });
  const throttles = meter.createCounter('sluice.pool.throttles', {
    unit: '{event}',
    description: 'Times the connection limit was lowered after "too many connections"',
  });
  const limit = meter.createObservableGauge('sluice.pool.connection.limit', { unit: '{connection}', description: 'The connection limit in force' });
  const queued = meter.createObservableGauge('sluice.pool.queued', { unit: '{message}', description: 'Messages waiting to be sent' });

  // Pools seen on any channel, for the gauges; weakly held, so that a pool dropped by its owner goes.
  const pools = new Map<object, { ref: WeakRef<Pool>; attrs: Attributes }>();
  const seen = (pool: object, attrs: Attributes) => {
    if (!pools.has(pool)) pools.set(pool, { ref: new WeakRef(pool as Pool), attrs });
  };
  const observe: BatchObservableCallback = (result) => {
    for (const [key, { ref, attrs }] of pools) {
      const pool = ref.deref();
      if (!pool) {
        pools.delete(key);
        continue;
      }
      const stats = pool.stats;
      result.observe(limit, stats.maxConnections, attrs);
      result.observe(queued, stats.queued, attrs);
    }
  };
  meter.addBatchObservableCallback(observe, [limit, queued]);

  const started = new WeakMap<SendContext, number>();
  const opened = new Map<string, number>();
  const key = (m: { server: object; connectionId: number | null }) => `${serverKey(m.server)}#${m.connectionId}`;

  const stop = subscribeDiagnostics({
    send: {
      start(ctx) {
        started.set(ctx, performance.now());
        seen(ctx.pool, serverAttributes(ctx.server));
      },
      asyncEnd(ctx) {
        const t0 = started.get(ctx);
        if (t0 === undefined) return;
        started.delete(ctx);
        const base = { ...serverAttributes(ctx.server), [ATTR.networkOperation]: 'send' };
        const f = ctx.result ? null : failure(ctx.error);
        const attrs: Attributes = f ? { ...base, [ATTR.outcome]: f.outcome, [ATTR.errorType]: f.code } : { ...base, [ATTR.outcome]: 'delivered' };
        duration.record((performance.now() - t0) / 1000, attrs);
        operations.add(1, attrs);
      },
    },
    connect(c) {
      seen(c.pool, serverAttributes(c.server));
      opened.set(key(c), performance.now());
      open.add(1, serverAttributes(c.server));
    },
    close(c) {
      const base = serverAttributes(c.server);
      open.add(-1, base);
      const t0 = opened.get(key(c));
      opened.delete(key(c));
      if (t0 !== undefined) connectionDuration.record((performance.now() - t0) / 1000, c.error ? { ...base, [ATTR.errorType]: c.error.code } : base);
    },
    connectionError(e) {
      errors.add(1, { ...serverAttributes(e.server), [ATTR.phase]: e.phase, [ATTR.errorType]: e.error.code });
    },
    wait(w) {
      waits.add(1, { ...serverAttributes(w.server), [ATTR.waitReason]: w.reason });
    },
    throttle(t) {
      seen(t.pool, serverAttributes(t.server));
      throttles.add(1, serverAttributes(t.server));
    },
  });
  return () => {
    stop();
    meter.removeBatchObservableCallback(observe, [limit, queued]);
  };
}

const ids = new WeakMap<object, number>();
let nextId = 0;
/** One id per server object (one per pool): connection ids are per process, servers may repeat. */
function serverKey(server: object): number {
  let id = ids.get(server);
  if (id === undefined) {
    id = nextId++;
    ids.set(server, id);
  }
  return id;
}
