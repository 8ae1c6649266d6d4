/**
 * `pnpm soak`: a chaos soak. 20,000 messages (by default) through 20 connections against the mock
 * server, which kills connections at every step and answers 4xx and 421 at random (seeded). Checks
 * every message against the inbox and exits non-zero on any violation:
 *
 * - every message ends in exactly one outcome (delivered, rejected, failed, unknown): its promise
 *   settles, the pool reports it once through its events, and the pool's counters agree;
 * - delivered ⇒ each accepted recipient received exactly once, the others not at all; rejected or
 *   failed ⇒ nothing received; unknown ⇒ received at most once (retryUnknown is off: never resent);
 * - each received copy carries the body (Message-ID) of the message its recipients belong to;
 * - nothing stays open after pool.close().
 *
 * `pnpm soak -- --load`: 100,000 messages at a 10 ms round trip, no faults, the server in its own
 * process; checks that every message is delivered, that the heap stays bounded when the pool is fed
 * with backpressure, and that the event loop never stalls for 100 ms.
 *
 *   pnpm soak -- --messages 20000 --seed 1 --rtt 0 --connections 20 --mode bdat|data|lockstep
 *   pnpm soak -- --load [--messages 100000] [--rtt 10]
 */
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createPool, type Pool, type PoolOptions, SluiceError } from '@sluice/core';
import { type MockServerOptions, startMockServer } from '@sluice/mock-server';
import { chaos, checkInvariants, loadMessage, loadMonitor, makeMessage, type Sent, type Settled, settledError } from '../../core/test/reliability/chaos.js';
import { startServerProcess } from './harness.js';

type Mode = 'bdat' | 'data' | 'lockstep';

const MODES: Record<Mode, { label: string; extensions: MockServerOptions['extensions'] }> = {
  bdat: { label: 'PIPELINING + CHUNKING (BDAT)', extensions: { starttls: false } },
  data: { label: 'PIPELINING + DATA', extensions: { starttls: false, chunking: false } },
  lockstep: { label: 'lock-step (no PIPELINING)', extensions: { starttls: false, pipelining: false, chunking: false } },
};

/** Backpressure: waits for the pool's 'drain', for at most a minute. */
function drained(pool: Pool): Promise<void> {
  return within(
    once(pool, 'drain').then(() => undefined),
    60_000,
    'waiting for the queue to drain',
  );
}

/** Rejects if `promise` is not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms / 1000} s`)), ms);
    }),
  ]);
}

function progress(line: string): void {
  if (process.stdout.isTTY) process.stdout.write(`\r${line}`);
}

async function chaosSoak(options: { messages: number; seed: number; rtt: number; connections: number; mode: Mode }): Promise<boolean> {
  const { messages, seed, rtt, connections, mode } = options;
  console.log(
    `chaos soak: ${messages.toLocaleString('en')} messages, ${connections} connections, ${MODES[mode].label}, rtt ${rtt} ms, seed ${seed}, retryUnknown off`,
  );
  const server = await startMockServer({ seed, rtt, extensions: MODES[mode].extensions, faults: chaos() });
  const poolOptions: PoolOptions = {
    host: server.host,
    port: server.port,
    name: 'soak.sluice.test',
    maxConnections: connections,
    retry: { retries: 3, minDelay: 10, maxDelay: 200 },
    retryUnknown: false,
    highWaterMark: 1000,
    timeouts: { idle: 5000 },
  };
  const pool = createPool(poolOptions);
  const reported = new Map<string, number>();
  const report = (id: string | undefined) => reported.set(id ?? '(none)', (reported.get(id ?? '(none)') ?? 0) + 1);
  pool.on('sent', (r) => report(r.messageId));
  pool.on('send-error', (e) => report(e.messageId));
  let connects = 0;
  pool.on('connect', () => connects++);

  const sent: Sent[] = [];
  const settled: Array<Settled | undefined> = new Array(messages);
  let done = 0;
  let lastProgress = performance.now();
  const started = performance.now();
  const ticker = setInterval(() => {
    const s = pool.stats;
    progress(`  ${done}/${messages} settled  delivered ${s.delivered} rejected ${s.rejected} failed ${s.failed} unknown ${s.unknown} retries ${s.retries}   `);
  }, 500);
  const problems: string[] = [];
  try {
    for (let i = 0; i < messages; i++) {
      if (pool.full) await drained(pool);
      const m = makeMessage(i, { rejectEvery: 997 });
      sent.push({ id: m.id, to: m.to });
      pool.send(m.message).then(
        (result) => {
          settled[i] = { outcome: 'delivered', result };
          done++;
          lastProgress = performance.now();
        },
        (error) => {
          settled[i] = settledError(error, SluiceError);
          done++;
          lastProgress = performance.now();
        },
      );
    }
    // Every promise settles; one that does not within 60 s of the last progress is a violation.
    while (done < messages) {
      if (performance.now() - lastProgress > 60_000) {
        problems.push(`${messages - done} message(s) still pending after 60 s without progress`);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await within(pool.close(), 30_000, 'pool.close()').catch((e: Error) => problems.push(e.message));
  } finally {
    clearInterval(ticker);
    progress('\n');
  }
  const seconds = (performance.now() - started) / 1000;
  const closedAt = performance.now();
  while (server.openConnections > 0 && performance.now() - closedAt < 5000) await new Promise((r) => setTimeout(r, 20));
  if (server.openConnections > 0) problems.push(`${server.openConnections} connection(s) still open on the server 5 s after pool.close()`);

  problems.push(...checkInvariants(sent, settled, server.inbox.messages, SluiceError));
  const counts: Record<string, number> = {};
  for (const s of settled) if (s) counts[s.outcome] = (counts[s.outcome] ?? 0) + 1;
  const stats = pool.stats;
  for (const k of ['delivered', 'rejected', 'failed', 'unknown'] as const) {
    if ((counts[k] ?? 0) !== stats[k]) problems.push(`pool.stats.${k} is ${stats[k]}, the promises say ${counts[k] ?? 0}`);
  }
  for (const { id } of sent) if (reported.get(id) !== 1) problems.push(`${id}: reported ${reported.get(id) ?? 0} time(s) through events`);
  const received = server.inbox.messages.length;
  await server.close();

  console.log(`  ${seconds.toFixed(1)} s, ${Math.round(messages / seconds).toLocaleString('en')} messages/s, ${connects} connections opened`);
  console.log(
    `  outcomes: delivered ${counts.delivered ?? 0}, rejected ${counts.rejected ?? 0}, failed ${counts.failed ?? 0}, unknown ${counts.unknown ?? 0}` +
      `${counts['no-outcome'] ? `, WITHOUT OUTCOME ${counts['no-outcome']}` : ''}; retries ${stats.retries}; transactions received by the server ${received}`,
  );
  const failedCodes: Record<string, number> = {};
  for (const s of settled) {
    if (s && s.outcome !== 'delivered') {
      const e = (s as { error: SluiceError }).error;
      const key = `${s.outcome} ${e.code}${e.responseCode ? ` ${e.responseCode}` : ''}`;
      failedCodes[key] = (failedCodes[key] ?? 0) + 1;
    }
  }
  if (Object.keys(failedCodes).length)
    console.log(
      `  not delivered: ${Object.entries(failedCodes)
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ')}`,
    );
  if (problems.length === 0) console.log('  invariants: all hold');
  else {
    console.log(`  INVARIANT VIOLATIONS: ${problems.length}`);
    for (const p of problems.slice(0, 20)) console.log(`    - ${p}`);
    if (problems.length > 20) console.log(`    … and ${problems.length - 20} more`);
  }
  return problems.length === 0;
}

async function loadRun(options: { messages: number; rtt: number; connections: number }): Promise<boolean> {
  const { messages, rtt, connections } = options;
  console.log(`load: ${messages.toLocaleString('en')} messages of ~4.5 KB, ${connections} connections, rtt ${rtt} ms, no faults, server in its own process`);
  const server = await startServerProcess({ rtt, record: false, extensions: { starttls: false } });
  const problems: string[] = [];
  try {
    const highWaterMark = 1000;
    const pool = createPool({
      host: server.host,
      port: server.port,
      name: 'soak.sluice.test',
      maxConnections: connections,
      highWaterMark,
      timeouts: { idle: 5000 },
    });
    const monitor = loadMonitor({ sampleEvery: 50, stallThreshold: 100 });
    let delivered = 0;
    let failed = 0;
    let maxQueued = 0;
    const started = performance.now();
    const ticker = setInterval(() => progress(`  ${delivered + failed}/${messages} settled   `), 500);
    for (let i = 0; i < messages; i++) {
      if (pool.full) await drained(pool);
      maxQueued = Math.max(maxQueued, pool.stats.queued);
      pool.send(loadMessage(i)).then(
        () => delivered++,
        () => failed++,
      );
    }
    await within(pool.close(), 120_000, 'pool.close()').catch((e: Error) => problems.push(e.message));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(ticker);
    progress('\n');
    const { before, peak, peakRss, maxDelay, p99, stalls } = monitor.stop();
    const { count } = await server.count();
    console.log(
      `  ${seconds.toFixed(1)} s, ${Math.round(messages / seconds).toLocaleString('en')} messages/s; delivered ${delivered}, failed ${failed}, received ${count}`,
    );
    console.log(
      `  heap ${before.toFixed(0)} MB → peak ${peak.toFixed(0)} MB (peak RSS ${peakRss.toFixed(0)} MB); queue peak ${maxQueued} (highWaterMark ${highWaterMark})`,
    );
    console.log(
      `  event loop delay: max ${maxDelay.toFixed(0)} ms, p99 ${p99.toFixed(1)} ms; gaps over 100 ms with this process busy ${JSON.stringify(stalls.own)}, while descheduled by the OS ${JSON.stringify(stalls.descheduled)}`,
    );
    if (delivered !== messages || failed !== 0) problems.push(`${delivered} delivered and ${failed} failed of ${messages}`);
    if (count !== delivered) problems.push(`${delivered} reported delivered, ${count} received`);
    if (maxQueued > highWaterMark + connections) problems.push(`the queue reached ${maxQueued} (highWaterMark ${highWaterMark})`);
    if (peak - before > 128) problems.push(`the heap grew by ${(peak - before).toFixed(0)} MB`);
    if (stalls.own.length > 0) problems.push(`event-loop stalls over 100 ms: ${stalls.own.join(', ')} ms`);
  } finally {
    await server.close();
  }
  if (problems.length === 0) console.log('  checks: all hold');
  else for (const p of problems) console.log(`  VIOLATION: ${p}`);
  return problems.length === 0;
}

async function main(): Promise<void> {
  // `pnpm soak -- --flag`: the `--` may reach us; it is not a positional separator here.
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const { values } = parseArgs({
    args,
    options: {
      messages: { type: 'string' },
      seed: { type: 'string', default: '1' },
      rtt: { type: 'string' },
      connections: { type: 'string', default: '20' },
      mode: { type: 'string', default: 'bdat' },
      load: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('pnpm soak -- [--messages 20000] [--seed 1] [--rtt 0] [--connections 20] [--mode bdat|data|lockstep[,…]]');
    console.log('pnpm soak -- --load [--messages 100000] [--rtt 10] [--connections 20]');
    return;
  }
  const int = (name: string, value: string | undefined, fallback: number) => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
    return n;
  };
  const connections = int('connections', values.connections, 20);
  let ok: boolean;
  if (values.load) {
    ok = await loadRun({ messages: int('messages', values.messages, 100_000), rtt: int('rtt', values.rtt, 10), connections });
  } else {
    ok = true;
    for (const mode of values.mode!.split(',') as Mode[]) {
      if (!MODES[mode]) throw new Error(`--mode must be bdat, data or lockstep, not ${mode}`);
      const passed = await chaosSoak({
        messages: int('messages', values.messages, 20_000),
        seed: int('seed', values.seed, 1),
        rtt: int('rtt', values.rtt, 0),
        connections,
        mode,
      });
      ok &&= passed;
    }
  }
  process.exitCode = ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
