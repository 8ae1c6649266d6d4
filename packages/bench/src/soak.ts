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
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createPool, type PoolOptions, type SendResult, SluiceError } from '@sluice/core';
import { type FaultRule, type MockServerOptions, type ReceivedMessage, startMockServer } from '@sluice/mock-server';
import { startServerProcess } from './harness.js';

type Mode = 'bdat' | 'data' | 'lockstep';

const MODES: Record<Mode, { label: string; extensions: MockServerOptions['extensions'] }> = {
  bdat: { label: 'PIPELINING + CHUNKING (BDAT)', extensions: { starttls: false } },
  data: { label: 'PIPELINING + DATA', extensions: { starttls: false, chunking: false } },
  lockstep: { label: 'lock-step (no PIPELINING)', extensions: { starttls: false, pipelining: false, chunking: false } },
};

/**
 * The chaos: connection kills at MAIL, RCPT and after the content (with and without the server having
 * queued the message first), 451/452/421 at random, "too many recipients" splits, and a few
 * recipients refused for good. The first matching rule applies, so the order is the mix.
 */
function chaos(): FaultRule[] {
  return [
    { command: 'RCPT', recipient: /^reject/, reply: '550 5.1.1 No such user' },
    { command: 'MAIL', action: 'drop', probability: 0.002 },
    { command: 'RCPT', action: 'drop', probability: 0.002 },
    { command: 'DOT', action: 'drop', probability: 0.002 },
    { command: 'BDAT_LAST', action: 'drop', probability: 0.002 },
    { command: 'DOT', action: 'drop', deliver: true, probability: 0.001 },
    { command: 'BDAT_LAST', action: 'drop', deliver: true, probability: 0.001 },
    { command: 'MAIL', reply: '451 4.3.0 Temporary failure, try again', probability: 0.005 },
    { command: 'MAIL', reply: '421 4.3.2 Service shutting down', probability: 0.002 },
    { command: 'RCPT', afterRecipients: 1, reply: '452 4.5.3 Too many recipients', probability: 0.3 },
    { command: 'RCPT', reply: '452 4.2.2 Mailbox full', probability: 0.005 },
    { command: 'DOT', reply: '451 4.3.0 Error in processing', probability: 0.005 },
    { command: 'BDAT_LAST', reply: '451 4.3.0 Error in processing', probability: 0.005 },
  ];
}

interface Sent {
  id: string;
  to: string[];
}

type Settled = { outcome: 'delivered'; result: SendResult } | { outcome: string; error: unknown };

function makeMessage(i: number): Sent & { body: string } {
  // Every 10th message has three recipients ("too many recipients" splits it); every 997th is refused.
  const to =
    i % 997 === 0 ? [`reject${i}@example.com`] : i % 10 === 0 ? [`s${i}.a@example.com`, `s${i}.b@example.com`, `s${i}.c@example.com`] : [`s${i}@example.com`];
  const id = `<soak-${i}@sluice.test>`;
  const body = `From: soak@example.com\r\nTo: ${to.join(', ')}\r\nSubject: soak ${i}\r\nMessage-ID: ${id}\r\nDate: Sun, 29 Nov 2026 12:00:00 +0000\r\n\r\nMessage ${i}.\r\n`;
  return { id, to, body };
}

const MESSAGE_ID = /^message-id:[ \t]*(<[^>\r\n]+>)/im;

/** The invariants against the inbox (retryUnknown off). */
function violations(sent: Sent[], settled: Array<Settled | undefined>, inbox: readonly ReceivedMessage[]): string[] {
  const problems: string[] = [];
  const owner = new Map<string, number>();
  sent.forEach((s, i) => {
    for (const r of s.to) owner.set(r, i);
  });
  const copies = new Map<string, number>();
  for (const m of inbox) {
    const id = m.raw ? MESSAGE_ID.exec(m.raw.toString('latin1'))?.[1] : undefined;
    for (const r of m.to) {
      const i = owner.get(r);
      if (i === undefined) problems.push(`received for ${r}, which no message was sent to`);
      else if (m.raw && id !== sent[i]!.id) problems.push(`${r} received the body of ${id}, not of ${sent[i]!.id}`);
      copies.set(r, (copies.get(r) ?? 0) + 1);
    }
  }
  for (const [i, s] of sent.entries()) {
    const st = settled[i];
    if (!st) {
      problems.push(`${s.id}: never settled`);
      continue;
    }
    if (!['delivered', 'rejected', 'failed', 'unknown'].includes(st.outcome)) {
      problems.push(`${s.id}: settled without an outcome`);
      continue;
    }
    if (st.outcome !== 'delivered') {
      const err = (st as { error: unknown }).error;
      if (!(err instanceof SluiceError)) problems.push(`${s.id}: rejected with something that is not a SluiceError`);
      else if (st.outcome === 'unknown' && err.code !== 'EUNKNOWN') problems.push(`${s.id}: unknown with code ${err.code}`);
    }
    let accepted: Set<string> | null = null;
    if (st.outcome === 'delivered') {
      const result = (st as { result: SendResult }).result;
      accepted = new Set(result.accepted.map((a) => a.address));
      const accounted = [...result.accepted, ...result.rejected, ...result.pending].map((r) => r.address).sort();
      if (accounted.join() !== [...s.to].sort().join()) problems.push(`${s.id}: accepted+rejected+pending [${accounted}] are not its recipients`);
    }
    for (const r of s.to) {
      const n = copies.get(r) ?? 0;
      const [min, max] = st.outcome === 'delivered' ? (accepted!.has(r) ? [1, 1] : [0, 0]) : st.outcome === 'unknown' ? [0, 1] : [0, 0];
      if (n < min || n > max) problems.push(`${s.id} (${st.outcome}): ${r} received ${n} time(s), expected ${min === max ? min : `${min}..${max}`}`);
    }
  }
  return problems;
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
      if (pool.full) await within(once(pool, 'drain').then(() => undefined), 60_000, 'waiting for the queue to drain');
      const m = makeMessage(i);
      sent.push({ id: m.id, to: m.to });
      pool.send({ envelope: { from: 'soak@example.com', to: m.to }, body: m.body }).then(
        (result) => {
          settled[i] = { outcome: 'delivered', result };
          done++;
          lastProgress = performance.now();
        },
        (error) => {
          settled[i] = { outcome: error instanceof SluiceError ? (error.outcome ?? 'no-outcome') : 'no-outcome', error };
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

  problems.push(...violations(sent, settled, server.inbox.messages));
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

/**
 * Gaps in a 10 ms timer over `threshold`, split by cause: with this process busy (its own event loop
 * blocked) or not (the OS ran something else: a loaded machine, not our doing).
 */
function stallMonitor(threshold: number) {
  const own: number[] = [];
  const descheduled: number[] = [];
  let lastWall = performance.now();
  let lastCpu = process.cpuUsage();
  const timer = setInterval(() => {
    const wall = performance.now();
    const cpu = process.cpuUsage();
    const gap = wall - lastWall;
    const used = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
    if (gap > threshold) (used >= 0.8 * gap ? own : descheduled).push(Math.round(gap));
    lastWall = wall;
    lastCpu = cpu;
  }, 10);
  return { stop: () => clearInterval(timer), own, descheduled };
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
    const filler = 'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.\r\n'.repeat(48);
    const heap = () => process.memoryUsage().heapUsed / 1024 / 1024;
    const before = heap();
    let peak = before;
    let peakRss = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, heap());
      peakRss = Math.max(peakRss, process.memoryUsage.rss() / 1024 / 1024);
    }, 50);
    const eld = monitorEventLoopDelay({ resolution: 10 });
    eld.enable();
    const stalls = stallMonitor(100);
    let delivered = 0;
    let failed = 0;
    let maxQueued = 0;
    const started = performance.now();
    const ticker = setInterval(() => progress(`  ${delivered + failed}/${messages} settled   `), 500);
    for (let i = 0; i < messages; i++) {
      if (pool.full) await within(once(pool, 'drain').then(() => undefined), 60_000, 'waiting for the queue to drain');
      maxQueued = Math.max(maxQueued, pool.stats.queued);
      const body = `From: load@example.com\r\nTo: l${i}@example.com\r\nSubject: load ${i}\r\nMessage-ID: <load-${i}@sluice.test>\r\n\r\n${filler}`;
      pool.send({ envelope: { from: 'load@example.com', to: [`l${i}@example.com`] }, body }).then(
        () => delivered++,
        () => failed++,
      );
    }
    await within(pool.close(), 120_000, 'pool.close()').catch((e: Error) => problems.push(e.message));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(ticker);
    progress('\n');
    eld.disable();
    stalls.stop();
    clearInterval(sampler);
    const { count } = await server.count();
    const maxDelay = eld.max / 1e6;
    console.log(
      `  ${seconds.toFixed(1)} s, ${Math.round(messages / seconds).toLocaleString('en')} messages/s; delivered ${delivered}, failed ${failed}, received ${count}`,
    );
    console.log(
      `  heap ${before.toFixed(0)} MB → peak ${peak.toFixed(0)} MB (peak RSS ${peakRss.toFixed(0)} MB); queue peak ${maxQueued} (highWaterMark ${highWaterMark})`,
    );
    console.log(
      `  event loop delay: max ${maxDelay.toFixed(0)} ms, p99 ${(eld.percentile(99) / 1e6).toFixed(1)} ms; gaps over 100 ms with this process busy ${JSON.stringify(stalls.own)}, while descheduled by the OS ${JSON.stringify(stalls.descheduled)}`,
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
