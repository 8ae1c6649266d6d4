/**
 * `@sluice/queue/prometheus`: a queue's and a worker's metrics in a prom-client registry, in the style
 * of @sluice/prometheus for a pool (counters from events as they happen, gauges read at each scrape,
 * never polled). For a worker, its pool's metrics come from @sluice/prometheus in the same registry.
 *
 * It lives here rather than in @sluice/prometheus because sluice-worker serves it: the prometheus
 * package depending on the queue (for its types and tests) and the queue on it would be a cycle.
 * prom-client and @sluice/prometheus are optional peers: only this entry point imports them.
 * No label is personal data: queue names, account names, states, outcomes, reply codes.
 */
import { prometheusMetrics } from '@sluice/prometheus';
import { Counter, Gauge, Registry } from 'prom-client';
import type { QueueCounts } from './counts.js';
import type { MailQueue } from './queue.js';
import type { MailWorker, WorkerMetrics } from './worker.js';

export interface QueueMetricsOptions {
  /** Where the metrics are registered. Default: a new Registry (read it from the result). */
  registry?: Registry;
  /** Metric name prefix. Default `sluice_queue_`. One queue or worker per registry and prefix. */
  prefix?: string;
  /** A worker's pool metrics (@sluice/prometheus) with this prefix; false: none. Default `sluice_`. */
  poolPrefix?: string | false;
}

export interface QueueMetrics {
  registry: Registry;
  /** The Prometheus text of the registry; serve it with `registry.contentType`. */
  metrics(): Promise<string>;
  /** Stops listening and removes these metrics (the pool's too) from the registry. */
  dispose(): void;
}

const STATES: Array<keyof QueueCounts> = ['waiting', 'active', 'delayed', 'held', 'completed', 'failed'];
const OUTCOMES = ['delivered', 'rejected', 'retry', 'held'] as const;

/** Registers the metrics of a MailQueue (job counts) or a MailWorker (job counts, deliveries, the account's budget, its pool). */
export function queueMetrics(source: MailQueue | MailWorker, options: QueueMetricsOptions = {}): QueueMetrics {
  const registry = options.registry ?? new Registry();
  const p = options.prefix ?? 'sluice_queue_';
  const registers = [registry];
  const names: string[] = [];
  const queue = source.name;
  const gauge = (name: string, help: string, labelNames: string[], read: (g: Gauge) => Promise<void>) => {
    names.push(name);
    return new Gauge({
      name: `${p}${name}`,
      help,
      labelNames,
      registers,
      collect() {
        return read(this);
      },
    });
  };
  const counter = (name: string, help: string, labelNames: string[]) => {
    names.push(name);
    return new Counter({ name: `${p}${name}`, help, labelNames, registers });
  };

  gauge('jobs', 'Jobs of the queue by state (held: failed with an unknown outcome, see held())', ['queue', 'state'], async (g) => {
    const counts = await source.counts();
    for (const state of STATES) g.set({ queue, state }, counts[state]);
  });
  const stops: Array<() => void> = [];
  if ('budget' in source) stops.push(...workerMetrics(source, { gauge, counter }));
  const pool =
    'budget' in source && options.poolPrefix !== false ? prometheusMetrics(source.pool, { registry, prefix: options.poolPrefix ?? 'sluice_' }) : null;
  return {
    registry,
    metrics: () => registry.metrics(),
    dispose() {
      for (const stop of stops) stop();
      pool?.dispose();
      for (const name of names) registry.removeSingleMetric(`${p}${name}`);
    },
  };
}

interface Makers {
  gauge: (name: string, help: string, labelNames: string[], read: (g: Gauge) => Promise<void>) => Gauge;
  counter: (name: string, help: string, labelNames: string[]) => Counter;
}

/** A worker's own metrics; returns what stops its listeners. */
function workerMetrics(worker: MailWorker, { gauge, counter }: Makers): Array<() => void> {
  const queue = worker.name;
  const account = worker.budget.account;
  // One worker.metrics() (one Redis call) per scrape, shared by the gauges prom-client collects together.
  let pending: Promise<WorkerMetrics> | null = null;
  const snapshot = () => {
    pending ??= worker.metrics().finally(() => {
      pending = null;
    });
    return pending;
  };
  gauge('worker_jobs', 'Jobs this worker holds (fetched, outcome not yet recorded)', ['queue'], async (g) => {
    g.set({ queue }, (await snapshot()).active);
  });
  gauge(
    'budget_leases',
    'Connection leases of the account held by every worker (scope="cluster") and by this one (scope="worker")',
    ['account', 'scope'],
    async (g) => {
      const { budget } = await snapshot();
      g.set({ account, scope: 'cluster' }, budget.leasesHeld);
      g.set({ account, scope: 'worker' }, budget.localLeases);
    },
  );
  gauge('budget_limit', "K: the account's connection limit in force (lowered after refusals, probed back up)", ['account'], async (g) => {
    g.set({ account }, (await snapshot()).budget.limit);
  });
  gauge('budget_max_connections', "The account's configured connection budget (K's ceiling)", ['account'], async (g) => {
    g.set({ account }, worker.budget.maxConnections);
  });

  const deliveries = counter('deliveries_total', 'Outcomes recorded by this worker: delivered, rejected, retry (transient), held (unknown)', [
    'queue',
    'outcome',
  ]);
  for (const outcome of OUTCOMES) deliveries.inc({ queue, outcome }, 0);
  const decreases = counter('budget_decreases_total', "Times this worker lowered the account's K", ['account']);
  decreases.inc({ account }, 0);
  const replies = counter('throttle_replies_total', '"Too many connections" (421/432) and throttling replies seen by this worker, by code', [
    'account',
    'code',
  ]);
  const waits = counter('rate_waits_total', "Messages that waited for the account's rate limit", ['account']);
  const waited = counter('rate_wait_seconds_total', "Time messages waited for the account's rate limit", ['account']);
  waits.inc({ account }, 0);
  waited.inc({ account }, 0);

  const on = {
    outcome: ({ outcome }: { outcome: string }) => deliveries.inc({ queue, outcome }),
    throttled: () => decreases.inc({ account }),
    'throttle-reply': ({ responseCode }: { responseCode: number }) => replies.inc({ account, code: String(responseCode) }),
    'rate-wait': ({ ms }: { ms: number }) => {
      waits.inc({ account });
      waited.inc({ account }, ms / 1000);
    },
  };
  worker.on('outcome', on.outcome);
  worker.on('throttled', on.throttled);
  worker.on('throttle-reply', on['throttle-reply']);
  worker.on('rate-wait', on['rate-wait']);
  return [
    () => worker.off('outcome', on.outcome),
    () => worker.off('throttled', on.throttled),
    () => worker.off('throttle-reply', on['throttle-reply']),
    () => worker.off('rate-wait', on['rate-wait']),
  ];
}
