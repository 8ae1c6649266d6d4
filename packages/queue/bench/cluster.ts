/**
 * pnpm bench:cluster — 4 worker processes, each with `pool.maxConnections: 20`, share ONE account
 * budget of 20 against the mock server at 50 ms RTT, which refuses a 21st connection with 421. Side by
 * side, in the same run: 4 plain @sluice/core pools (20 each, no shared budget) against the same server.
 *
 * The floor: 20 connections × one message per round trip (pipelined) = 20 / 0.05 s = 400 messages/s.
 * BENCH_MESSAGES (default 8000) sets the message count; results also go to bench-results/cluster.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Redis } from 'ioredis';
import { MailQueue } from '../src/index.js';
import { startRedis } from '../src/testing.js';
import { benchMessage } from './messages.js';
import { type Proc, start } from './processes.js';

const N = Number(process.env.BENCH_MESSAGES ?? 8000);
const RTT = 50;
const BUDGET = 20;
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const POOL = 20;
const floor = BUDGET / (RTT / 1000);
/** Messages per connection before it retires (core's default 50: SocketLabs' guidance); each retirement costs a setup of ~3.5 RTT. */
const PER_CONNECTION = process.env.BENCH_MAX_MESSAGES ? Number(process.env.BENCH_MAX_MESSAGES) : undefined;
/** BENCH_WINDOW pins BDAT transactions in flight per connection (1: the floor's one message per round trip); default the core's adaptive window. */
const WINDOW = process.env.BENCH_WINDOW ? Number(process.env.BENCH_WINDOW) : undefined;

interface ServerStats {
  received: number;
  distinct: number;
  peak: number;
  connections: number;
  refused: number;
  cpuMicros: number;
}

/** Until the server has `n` messages (queue workers), or until every sender is done (plain pools, which may fail some). */
async function measure(server: Proc, senders: Proc[], n: number, until: 'reached' | 'done', redis?: Redis) {
  const redisCpu0 = redis ? await redisCpu(redis) : 0;
  const reached = server.next<{ at: number }>('reached');
  const done = Promise.all(senders.map((s) => s.next<{ failed: number }>('done')));
  server.send({ type: 'target', target: n });
  const t0 = performance.timeOrigin + performance.now();
  for (const s of senders) s.send({ type: 'go' });
  if (until === 'done') await done;
  const end = until === 'reached' ? (await reached).at : performance.timeOrigin + performance.now();
  const seconds = (end - t0) / 1000;
  const stats = await server.ask<ServerStats>('stats');
  const redisMicros = redis ? (await redisCpu(redis)) - redisCpu0 : 0;
  const clients = await Promise.all(
    senders.map((s) => s.ask<{ refused: number; failed?: number; averages?: Record<string, number>; cpuMicros: number }>('stats')),
  );
  const failed = clients.reduce((a, c) => a + (c.failed ?? 0), 0);
  // Connections by state, averaged over the run and summed over the senders (queue workers only).
  const connections: Record<string, number> = {};
  for (const c of clients) for (const [k, v] of Object.entries(c.averages ?? {})) connections[k] = (connections[k] ?? 0) + v;
  return {
    seconds,
    rate: stats.received / seconds,
    failed,
    server: stats,
    clientRefusals: clients.reduce((a, c) => a + c.refused, 0),
    connections,
    // CPU per message received (µs): the senders together, the server, Redis (the machine is shared: time is noisy, CPU less so).
    cpu: {
      senders: clients.reduce((a, c) => a + c.cpuMicros, 0) / stats.received,
      server: stats.cpuMicros / stats.received,
      redis: redisMicros / stats.received,
    },
  };
}

/** Redis's own CPU time so far (µs), from INFO cpu. */
async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}

const row = (name: string, r: Awaited<ReturnType<typeof measure>>) =>
  `${name.padEnd(34)} ${r.rate.toFixed(0).padStart(6)} msg/s  ${((100 * r.rate) / floor).toFixed(1).padStart(5)} % of floor  peak ${String(r.server.peak).padStart(3)}  421s ${String(r.clientRefusals).padStart(5)}  failed ${r.failed}  ${r.seconds.toFixed(2)} s`;

const usage = ({ connections: c, cpu }: Awaited<ReturnType<typeof measure>>) =>
  `  on average: leases held ${(c.leases ?? 0).toFixed(1)}; connections busy ${(c.busy ?? 0).toFixed(1)}, idle ${(c.idle ?? 0).toFixed(1)}, opening or waiting for a lease ${(c.connecting ?? 0).toFixed(1)}; messages waiting in the pools ${(c.queued ?? 0).toFixed(1)}\n` +
  `  CPU per message: workers ${cpu.senders.toFixed(0)} µs, SMTP server ${cpu.server.toFixed(0)} µs, Redis ${cpu.redis.toFixed(0)} µs`;

async function main() {
  const redis = await startRedis();
  // Clear text: TLS costs the same in both runs and is not what this measures.
  const serverOptions = { rtt: RTT, maxConnections: BUDGET, extensions: { starttls: false } };
  try {
    // 1. The shared budget.
    const server = await start('server-process.js', serverOptions);
    const { host, port } = server.ready as { host: string; port: number };
    const queue = new MailQueue('bench', { connection: redis.url, defaultJobOptions: { removeOnComplete: true } });
    for (let i = 0; i < N; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ message: benchMessage(i + j) })));
    }
    const workers = await Promise.all(
      Array.from({ length: WORKERS }, () =>
        start('worker-process.js', {
          mode: 'queue',
          host,
          port,
          poolMax: POOL,
          window: WINDOW,
          redis: redis.url,
          queue: 'bench',
          budget: { account: 'bench', maxConnections: BUDGET },
        }),
      ),
    );
    const probe = new Redis(redis.url);
    const shared = await measure(server, workers, N, 'reached', probe);
    probe.disconnect();
    console.error(`shared budget: ${shared.rate.toFixed(0)} msg/s`);
    await Promise.all(workers.map((w) => w.close()));
    await queue.close();
    await server.close();

    // 2. Four plain pools, no shared budget, same server settings (BENCH_PLAIN=0 skips them).
    if (process.env.BENCH_PLAIN === '0') {
      console.log(row(`shared budget of ${BUDGET} (@sluice/queue)`, shared));
      console.log(usage(shared));
      return;
    }
    const server2 = await start('server-process.js', serverOptions);
    const s2 = server2.ready as { host: string; port: number };
    const per = Math.ceil(N / WORKERS);
    const plain = await Promise.all(
      Array.from({ length: WORKERS }, (_, k) =>
        start('worker-process.js', {
          mode: 'plain',
          host: s2.host,
          port: s2.port,
          poolMax: POOL,
          window: WINDOW,
          perConnection: PER_CONNECTION,
          count: per,
          offset: k * per,
        }),
      ),
    );
    const alone = await measure(server2, plain, per * WORKERS, 'done');
    await Promise.all(plain.map((p) => p.close()));
    await server2.close();

    console.log(
      `bench:cluster — ${N} messages, ${WORKERS} processes × pool.maxConnections ${POOL}, mock server at ${RTT} ms RTT refusing beyond ${BUDGET} (421)`,
    );
    console.log(
      `floor: ${BUDGET} connections × 1 message / RTT = ${floor} msg/s; maxMessagesPerConnection ${PER_CONNECTION ?? '50 (default)'}; BDAT window ${WINDOW ?? 'adaptive (default)'}; load average ${os.loadavg()[0].toFixed(1)}`,
    );
    console.log(row(`shared budget of ${BUDGET} (@sluice/queue)`, shared));
    console.log(usage(shared));
    console.log(row('4 plain pools, no shared budget', alone));
    mkdirSync('bench-results', { recursive: true });
    writeFileSync(
      'bench-results/cluster.json',
      JSON.stringify({ N, RTT, BUDGET, WORKERS, POOL, PER_CONNECTION, WINDOW, floor, load: os.loadavg(), shared, plain: alone }, null, 2),
    );
    const ok = shared.server.peak <= BUDGET && shared.clientRefusals === 0 && shared.rate >= 0.9 * floor;
    console.log(
      ok
        ? 'PASS: peak ≤ budget, no 421, ≥ 90 % of the floor'
        : `FAIL: peak ≤ ${BUDGET}, no 421 and ≥ 90 % of the floor are required (load average now ${os.loadavg()[0].toFixed(1)})`,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    await redis.stop();
  }
}

await main();
process.exit(process.exitCode ?? 0);
