#!/usr/bin/env node
/**
 * sluice-worker: one MailWorker process, from a JSON config file or the environment.
 *
 *   sluice-worker --config worker.json [--metrics-port 9465]
 *   SLUICE_QUEUE=mail SLUICE_REDIS_URL=redis://127.0.0.1:6380 SLUICE_SMTP_HOST=smtp.example.com \
 *     SLUICE_ACCOUNT=acme SLUICE_MAX_CONNECTIONS=20 sluice-worker
 *
 * Prints one JSON line when ready; SIGTERM/SIGINT drain (close()) and exit 0. Secrets (SMTP password)
 * are never printed. `--metrics-port` (or SLUICE_METRICS_PORT, or "metricsPort" in the file) serves
 * GET /metrics on 127.0.0.1 (see metrics-server.ts); it needs the optional peers @sluice/prometheus
 * and prom-client, loaded only then.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { QueueError, QueueErrorCodes } from './errors.js';
import { type MetricsServer, serveMetrics } from './metrics-server.js';
import { MailWorker, type MailWorkerOptions } from './worker.js';

interface Config extends Omit<MailWorkerOptions, 'connection'> {
  queue: string;
  redis: MailWorkerOptions['connection'];
  metricsPort?: number;
}

function port(value: unknown, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, `${name} must be a port number 0-65535 (0: any free port)`);
  return n;
}

function fromEnv(env: NodeJS.ProcessEnv): Config {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, `${k} is required (or --config <file>)`);
    return v;
  };
  const int = (k: string, fallback?: number) => {
    const v = env[k];
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, `${k} must be a positive integer`);
    return n;
  };
  const user = env.SLUICE_SMTP_USER;
  return {
    queue: need('SLUICE_QUEUE'),
    redis: need('SLUICE_REDIS_URL'),
    pool: {
      host: need('SLUICE_SMTP_HOST'),
      port: int('SLUICE_SMTP_PORT'),
      maxConnections: int('SLUICE_POOL_MAX_CONNECTIONS'),
      auth: user ? { user, pass: need('SLUICE_SMTP_PASS') } : undefined,
    },
    budget: { account: need('SLUICE_ACCOUNT'), maxConnections: int('SLUICE_MAX_CONNECTIONS') as number },
    metricsPort: port(env.SLUICE_METRICS_PORT, 'SLUICE_METRICS_PORT'),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' }, 'metrics-port': { type: 'string' } }, strict: true });
  const config: Config = values.config ? JSON.parse(readFileSync(values.config, 'utf8')) : fromEnv(process.env);
  const { queue, redis, metricsPort, ...options } = config;
  const metricsAt = port(values['metrics-port'], '--metrics-port') ?? port(metricsPort, 'metricsPort');
  const worker = new MailWorker(queue, { ...options, connection: redis });
  const metrics = metricsAt === undefined ? null : await serveWorkerMetrics(worker, metricsAt);
  worker.on('error', (err) => process.stderr.write(`sluice-worker: ${err.message}\n`));
  worker.on('throttled', (t) => process.stdout.write(`${JSON.stringify({ event: 'throttled', ...t })}\n`));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    Promise.all([worker.close(), metrics?.close()]).then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`sluice-worker: ${err.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const ready = {
    event: 'ready',
    pid: process.pid,
    queue,
    account: options.budget.account,
    metrics: metrics ? `http://127.0.0.1:${metrics.port}/metrics` : undefined,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

/** The worker's metrics (and its pool's) at GET /metrics; the optional peers are loaded only here. */
async function serveWorkerMetrics(worker: MailWorker, at: number): Promise<MetricsServer> {
  try {
    const prometheus = await import('./prometheus.js').catch((cause: Error) => {
      throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, `--metrics-port needs @sluice/prometheus and prom-client installed (${cause.message})`, { cause });
    });
    const { registry } = prometheus.queueMetrics(worker);
    return await serveMetrics(at, registry.contentType, () => registry.metrics());
  } catch (err) {
    await worker.close(); // it started pulling: never exit holding jobs
    throw err;
  }
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(`sluice-worker: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
  process.exit(2);
});
