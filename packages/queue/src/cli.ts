#!/usr/bin/env node
/**
 * sluice-worker: one MailWorker process, from a JSON config file or the environment.
 *
 *   sluice-worker --config worker.json
 *   SLUICE_QUEUE=mail SLUICE_REDIS_URL=redis://127.0.0.1:6380 SLUICE_SMTP_HOST=smtp.example.com \
 *     SLUICE_ACCOUNT=acme SLUICE_MAX_CONNECTIONS=20 sluice-worker
 *
 * Prints one JSON line when ready; SIGTERM/SIGINT drain (close()) and exit 0. Secrets (SMTP password)
 * are never printed.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { QueueError, QueueErrorCodes } from './errors.js';
import { MailWorker, type MailWorkerOptions } from './worker.js';

interface Config extends Omit<MailWorkerOptions, 'connection'> {
  queue: string;
  redis: MailWorkerOptions['connection'];
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
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
  const config: Config = values.config ? JSON.parse(readFileSync(values.config, 'utf8')) : fromEnv(process.env);
  const { queue, redis, ...options } = config;
  const worker = new MailWorker(queue, { ...options, connection: redis });
  worker.on('error', (err) => process.stderr.write(`sluice-worker: ${err.message}\n`));
  worker.on('throttled', (t) => process.stdout.write(`${JSON.stringify({ event: 'throttled', ...t })}\n`));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    worker.close().then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`sluice-worker: ${err.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid, queue, account: options.budget.account })}\n`);
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(`sluice-worker: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
  process.exit(2);
});
