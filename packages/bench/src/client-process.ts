/**
 * One sender, measured in its own process: messages/s, time per message, CPU, peak RSS and event-loop
 * delay are this process's alone. Config as JSON in argv[2]; the result goes back over IPC.
 */
import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createPool } from '@sluice/core';
import nodemailer from 'nodemailer';
import { body, envelope, type Workload } from './workload.js';

/**
 * `sluice-default`: no protocol options at all (what the server offers decides); `sluice-bdat`: CHUNKING
 * pinned to one transaction in flight; `sluice-no-resume`: the default with `tlsResumption: false` (a full
 * TLS handshake per connection); `smtp-source`: Postfix's C test client (native.ts), not run here.
 */
export type SenderName =
  | 'nodemailer-naive'
  | 'nodemailer-pool'
  | 'sluice-default'
  | 'sluice-no-resume'
  | 'sluice-data'
  | 'sluice-bdat'
  | 'sluice-bdat-window'
  | 'sluice-lockstep'
  | 'smtp-source';

export interface ClientConfig extends Workload {
  sender: SenderName;
  host: string;
  port: number;
  /** STARTTLS, required, trusting this certificate (sluice senders); unset: no TLS. */
  ca?: string;
  connections: number;
  perConnection: number;
  window: number;
  /** Feed sluice from an async generator with backpressure instead of queueing everything at once. */
  generator: boolean;
  progress: boolean;
}

export interface ClientResult {
  sender: SenderName;
  delivered: number;
  failed: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  cpuPer1000: number;
  peakRssMb: number;
  eventLoopP99: number;
  /** The first few errors (code, outcome, reply), to say why a message failed. */
  errors?: string[];
  /** sluice: connections whose TLS session was resumed (`pool.stats.tlsResumed`). */
  tlsResumed?: number;
  /** Set by the bench from the mock server: its CPU per 1,000 messages, and the connections it accepted, for this sender. */
  serverCpuPer1000?: number;
  serverConnections?: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function run(config: ClientConfig): Promise<ClientResult> {
  const { messages, connections, perConnection, host, port } = config;
  const latencies = new Float64Array(messages);
  let delivered = 0;
  let failed = 0;
  const errors: string[] = [];
  let settled = 0;
  // Resolved by the last outcome itself: the clock stops when it comes, not at a polling timer's next tick.
  let allSettled = () => {};
  const finished = new Promise<void>((resolve) => {
    allSettled = resolve;
  });
  // The envelopes are built before the clock starts: making the workload is not the sender's work, and
  // at 1,000 recipients a message (T8) it is 200,000 strings, tens of ms charged to whichever sender
  // ran. From a generator (T5) they are made as they go, as the bodies always are (cheap, and no memory).
  const envelopes = config.generator ? null : Array.from({ length: messages }, (_, i) => envelope(i, config));
  const envelopeOf = (i: number) => envelopes?.[i] ?? envelope(i, config);
  const report = config.progress ? setInterval(() => process.send?.({ type: 'progress', done: settled }), 100) : null;
  const eld = monitorEventLoopDelay({ resolution: 5 });
  eld.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const track = (i: number, p: Promise<unknown>) =>
    p.then(
      () => {
        delivered++;
      },
      (err: { code?: string; outcome?: string; response?: string; message?: string }) => {
        failed++;
        if (errors.length < 5) errors.push(`${err.code ?? ''} ${err.outcome ?? ''} ${err.response ?? err.message ?? ''}`.trim());
      },
    ).finally(() => {
      latencies[i] = performance.now() - start[i]!;
      if (++settled === messages) allSettled();
    });
  const start = new Float64Array(messages);
  let seconds = 0;
  let tlsResumed: number | undefined;

  if (config.sender.startsWith('sluice')) {
    const protocol =
      config.sender === 'sluice-default' || config.sender === 'sluice-no-resume'
        ? {}
        : {
            pipelining: config.sender !== 'sluice-lockstep',
            chunking: config.sender === 'sluice-data' || config.sender === 'sluice-lockstep' ? false : { window: config.sender === 'sluice-bdat-window' ? config.window : 1 },
          };
    const pool = createPool({
      host,
      port,
      name: 'bench.sluice.test',
      maxConnections: connections,
      maxMessagesPerConnection: perConnection,
      // As nodemailer's ignoreTLS below: Postfix offers STARTTLS (the mock server is started without it, unless `ca`).
      ...(config.ca ? { requireTLS: true, tls: { ca: config.ca }, tlsResumption: config.sender !== 'sluice-no-resume' } : { ignoreTLS: true }),
      ...protocol,
      // Everything at once: a queue that holds the whole batch. From a generator: the pool's default.
      highWaterMark: config.generator ? undefined : Math.max(1000, messages),
      timeouts: { idle: 5_000 },
    });
    const pending: Promise<unknown>[] = [];
    async function* source() {
      for (let i = 0; i < messages; i++) yield i;
    }
    for await (const i of source()) {
      if (config.generator && pool.full) await once(pool, 'drain');
      start[i] = performance.now();
      const p = track(i, pool.send({ envelope: envelopeOf(i), body: body(i, config) }));
      if (!config.generator) pending.push(p);
    }
    // From a generator the promises are not kept (100,000 of them): wait for the count instead.
    if (messages > 0) await finished;
    await Promise.all(pending);
    seconds = (performance.now() - t0) / 1000;
    tlsResumed = pool.stats.tlsResumed;
    await pool.close();
  } else if (config.sender === 'nodemailer-pool') {
    const transport = nodemailer.createTransport({ host, port, pool: true, maxConnections: connections, maxMessages: perConnection, ignoreTLS: true, name: 'bench.sluice.test' });
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < messages; i++) {
      start[i] = performance.now();
      all.push(track(i, transport.sendMail({ envelope: envelopeOf(i), raw: body(i, config) })));
    }
    await Promise.all(all);
    seconds = (performance.now() - t0) / 1000;
    transport.close();
  } else {
    // What a naive app does: a new connection for every message, `connections` at a time.
    const transport = nodemailer.createTransport({ host, port, ignoreTLS: true, name: 'bench.sluice.test' });
    let next = 0;
    const worker = async () => {
      while (next < messages) {
        const i = next++;
        start[i] = performance.now();
        await track(i, transport.sendMail({ envelope: envelopeOf(i), raw: body(i, config) }));
      }
    };
    await Promise.all(Array.from({ length: connections }, worker));
    seconds = (performance.now() - t0) / 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  eld.disable();
  if (report) clearInterval(report);
  process.send?.({ type: 'progress', done: settled });
  const sorted = latencies.slice().sort();
  return {
    sender: config.sender,
    delivered,
    failed,
    seconds,
    perSecond: delivered / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    cpuPer1000: ((cpu.user + cpu.system) / 1e6 / messages) * 1000,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    eventLoopP99: eld.percentile(99) / 1e6,
    errors,
    tlsResumed,
  };
}

const config = JSON.parse(process.argv[2] ?? '{}') as ClientConfig;
run(config).then(
  (result) => {
    process.send?.({ type: 'result', result });
    process.disconnect?.();
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
