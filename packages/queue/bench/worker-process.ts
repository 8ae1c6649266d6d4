/**
 * One sender process of the cluster bench and the soak: a MailWorker (`mode: 'queue'`) or, for the
 * side-by-side run, a plain @sluice/core pool with no shared budget (`mode: 'plain'`). Config as JSON
 * in argv[2]; it waits for 'go' over IPC, answers 'stats', and closes on 'close'.
 */
import { createPool } from '@sluice/core';
import { MailWorker } from '../src/index.js';
import { benchMessage } from './messages.js';

interface Config {
  mode: 'queue' | 'plain';
  host: string;
  port: number;
  poolMax: number;
  perConnection?: number;
  redis?: string;
  queue?: string;
  budget?: { account: string; maxConnections: number; leaseTtl?: number };
  lockDuration?: number;
  stalledInterval?: number;
  /** plain: messages to send, and the index of the first. */
  count?: number;
  offset?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const pool = {
  host: config.host,
  port: config.port,
  name: 'bench.sluice.test',
  maxConnections: config.poolMax,
  maxMessagesPerConnection: config.perConnection,
};
let refused = 0;
const send = (msg: unknown) => process.send?.(msg);

if (config.mode === 'queue') {
  const worker = new MailWorker(config.queue!, {
    connection: config.redis!,
    pool,
    budget: config.budget!,
    autorun: false,
    lockDuration: config.lockDuration,
    stalledInterval: config.stalledInterval,
    drainDelay: 1000,
  });
  worker.pool.on('connect-error', (e) => {
    if (e.responseCode === 421) refused++;
  });
  worker.on('error', () => {});

  process.on('message', async (msg: { type: string }) => {
    if (msg.type === 'go') void worker.run();
    if (msg.type === 'stats') send({ type: 'stats', refused, ...(await worker.metrics()) });
    if (msg.type === 'close') {
      await worker.close();
      process.exit(0);
    }
  });
} else {
  const p = createPool({ ...pool, retry: { retries: 10, minDelay: 50, maxDelay: 1000 } });
  p.on('connect-error', (e) => {
    if (e.responseCode === 421) refused++;
  });
  let failed = 0;
  process.on('message', async (msg: { type: string }) => {
    if (msg.type === 'go') {
      const sends: Array<Promise<unknown>> = [];
      for (let i = 0; i < config.count!; i++) {
        sends.push(p.send(benchMessage(config.offset! + i)).catch(() => failed++));
        if (p.full) await new Promise<void>((r) => p.once('drain', () => r()));
      }
      await Promise.all(sends);
      send({ type: 'done', failed });
    }
    if (msg.type === 'stats') send({ type: 'stats', refused, failed, pool: p.stats });
    if (msg.type === 'close') {
      await p.close();
      process.exit(0);
    }
  });
}
send({ type: 'ready' });
process.on('disconnect', () => process.exit(0));
