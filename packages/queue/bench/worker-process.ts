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
  /** Pinned BDAT window (chunking: { window }); default adaptive. */
  window?: number;
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
  chunking: config.window ? { window: config.window } : undefined,
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
  // Where a connection's time goes: pool.stats sampled every 5 ms from 'go' (averages in 'stats').
  const sums = { idle: 0, busy: 0, connecting: 0, queued: 0, leases: 0, n: 0 };
  const sample = () => {
    const s = worker.pool.stats;
    sums.idle += s.idle;
    sums.busy += s.busy;
    sums.connecting += s.connecting;
    sums.queued += s.queued;
    sums.leases += worker.budget.localLeases;
    sums.n++;
  };
  let sampler: NodeJS.Timeout | undefined;
  let cpu0 = process.cpuUsage();
  const averages = () => Object.fromEntries((['idle', 'busy', 'connecting', 'queued', 'leases'] as const).map((k) => [k, sums[k] / Math.max(1, sums.n)]));

  process.on('message', async (msg: { type: string }) => {
    if (msg.type === 'go') {
      sampler = setInterval(sample, 5);
      cpu0 = process.cpuUsage();
      void worker.run();
    }
    if (msg.type === 'stats') {
      clearInterval(sampler);
      const cpu = process.cpuUsage(cpu0);
      send({ type: 'stats', refused, averages: averages(), cpuMicros: cpu.user + cpu.system, ...(await worker.metrics()) });
    }
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
