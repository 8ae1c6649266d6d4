/**
 * What the chaos soak and the load run share: the CI versions (soak.test.ts, load.test.ts) and the long
 * ones of `pnpm soak` (packages/bench/src/soak.ts, which imports this file by its relative path and
 * bundles it). So it has no runtime dependency on sluice, only types: the bench's sluice is
 * `@sluice/core`'s dist, the tests' is src/, and an `instanceof` needs the caller's own `SluiceError`,
 * which is passed in.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FaultRule, ReceivedMessage } from '@sluice/mock-server';
import type { Message, SendResult } from '../../src/index.js';

// ---------------------------------------------------------------------------------------------------
// The chaos
// ---------------------------------------------------------------------------------------------------

/** How often each kind of fault strikes (a probability per command it applies to). */
export interface ChaosRates {
  /** The connection killed at MAIL, DOT or BDAT LAST. */
  drop: number;
  /** The connection killed at RCPT. */
  rcptDrop: number;
  /** The connection killed after the content, the server having queued the message (unknown, received once). */
  lost: number;
  /** 451 to MAIL, DOT or BDAT LAST; 452 "Mailbox full" to RCPT. */
  transient: number;
  /** 421 to MAIL. */
  shutdown: number;
  /** 452 "too many recipients" from the second recipient on. */
  tooMany: number;
}

/** The mix of `pnpm soak`. */
export const SOAK_RATES: ChaosRates = { drop: 0.002, rcptDrop: 0.002, lost: 0.001, transient: 0.005, shutdown: 0.002, tooMany: 0.3 };

/**
 * The chaos: connection kills at MAIL, RCPT and after the content (with and without the server having
 * queued the message first), 451/452/421 at random, "too many recipients" splits, and a few
 * recipients (`reject…`) refused for good. The first matching rule applies, so the order is the mix.
 */
export function chaos(rates: Partial<ChaosRates> = {}): FaultRule[] {
  const { drop, rcptDrop, lost, transient, shutdown, tooMany } = { ...SOAK_RATES, ...rates };
  return [
    { command: 'RCPT', recipient: /^reject/, reply: '550 5.1.1 No such user' },
    { command: 'MAIL', action: 'drop', probability: drop },
    { command: 'RCPT', action: 'drop', probability: rcptDrop },
    { command: 'DOT', action: 'drop', probability: drop },
    { command: 'BDAT_LAST', action: 'drop', probability: drop },
    { command: 'DOT', action: 'drop', deliver: true, probability: lost },
    { command: 'BDAT_LAST', action: 'drop', deliver: true, probability: lost },
    { command: 'MAIL', reply: '451 4.3.0 Temporary failure, try again', probability: transient },
    { command: 'MAIL', reply: '421 4.3.2 Service shutting down', probability: shutdown },
    { command: 'RCPT', afterRecipients: 1, reply: '452 4.5.3 Too many recipients', probability: tooMany },
    { command: 'RCPT', reply: '452 4.2.2 Mailbox full', probability: transient },
    { command: 'DOT', reply: '451 4.3.0 Error in processing', probability: transient },
    { command: 'BDAT_LAST', reply: '451 4.3.0 Error in processing', probability: transient },
  ];
}

// ---------------------------------------------------------------------------------------------------
// The messages and their outcomes
// ---------------------------------------------------------------------------------------------------

export interface Sent {
  id: string;
  to: string[];
}

export type Settled = { outcome: 'delivered'; result: SendResult } | { outcome: string; error: unknown };

/** The caller's `SluiceError` class (see the top of this file). */
export type SluiceErrorClass = abstract new (...args: never[]) => { code: string; outcome?: string | undefined };

/**
 * Message `i`: every 10th has three recipients ("too many recipients" splits it); every
 * `rejectEvery`th has one recipient the chaos refuses for good.
 */
export function makeMessage(i: number, options: { rejectEvery: number }): Sent & { message: Message } {
  const to =
    i % options.rejectEvery === 0
      ? [`reject${i}@example.com`]
      : i % 10 === 0
        ? [`s${i}.a@example.com`, `s${i}.b@example.com`, `s${i}.c@example.com`]
        : [`s${i}@example.com`];
  const id = `<soak-${i}@sluice.test>`;
  const body = `From: soak@example.com\r\nTo: ${to.join(', ')}\r\nSubject: soak ${i}\r\nMessage-ID: ${id}\r\nDate: Sun, 29 Nov 2026 12:00:00 +0000\r\n\r\nMessage ${i}.\r\n`;
  return { id, to, message: { envelope: { from: 'soak@example.com', to }, body } };
}

/** How a send that failed settled: its error's outcome, or 'no-outcome' (a violation). */
export function settledError(error: unknown, SluiceError: SluiceErrorClass): Settled {
  return { outcome: error instanceof SluiceError ? (error.outcome ?? 'no-outcome') : 'no-outcome', error };
}

const MESSAGE_ID = /^message-id:[ \t]*(<[^>\r\n]+>)/im;

/**
 * The invariants of the README (for retryUnknown off) against the inbox: each message settled with an
 * outcome (a SluiceError when not delivered, EUNKNOWN when unknown); delivered ⇒ its accepted, rejected
 * and pending recipients are its recipients, each accepted one received once and the others not at all;
 * rejected or failed ⇒ nothing received; unknown ⇒ received at most once; each copy carries its own
 * message's body. Returns the violations.
 */
export function checkInvariants(
  sent: readonly Sent[],
  settled: ReadonlyArray<Settled | undefined>,
  inbox: readonly ReceivedMessage[],
  SluiceError: SluiceErrorClass,
): string[] {
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

// ---------------------------------------------------------------------------------------------------
// Load: event loop and heap
// ---------------------------------------------------------------------------------------------------

const FILLER = 'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.\r\n'.repeat(48);

/** Message `i` of a load run: one recipient, ~4.5 KB. */
export function loadMessage(i: number): Message {
  const body = `From: load@example.com\r\nTo: l${i}@example.com\r\nSubject: load ${i}\r\nMessage-ID: <load-${i}@sluice.test>\r\n\r\n${FILLER}`;
  return { envelope: { from: 'load@example.com', to: [`l${i}@example.com`] }, body };
}

/**
 * Watches a load run from now until `stop()`: the heap and RSS (peaks sampled every `sampleEvery` ms),
 * the event-loop delay, and the stalls over `stallThreshold` ms (see stallMonitor). `before` is the
 * heap now: collect garbage first (gc()) for a figure that means something.
 */
export function loadMonitor(options: { sampleEvery: number; stallThreshold?: number }) {
  const before = heapMb();
  let peak = before;
  let peakRss = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, heapMb());
    peakRss = Math.max(peakRss, process.memoryUsage.rss() / 1024 / 1024);
  }, options.sampleEvery);
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const stalls = stallMonitor(options.stallThreshold);
  return {
    before,
    /** Stops watching; the delays are in ms, the memory figures in MB. */
    stop() {
      eld.disable();
      stalls.stop();
      clearInterval(sampler);
      return { before, peak, peakRss, maxDelay: eld.max / 1e6, p99: eld.percentile(99) / 1e6, stalls: { own: stalls.own, descheduled: stalls.descheduled } };
    },
  };
}

/**
 * Gaps in a 10 ms timer longer than `threshold`, split by cause. A gap during which this process
 * used (nearly) as much CPU as wall time is a stall of its own event loop: synchronous work (the
 * client and an in-process server both count). A gap with little CPU is the OS running other
 * processes (a loaded machine), which no code of ours can cause or prevent.
 */
export function stallMonitor(threshold = 100) {
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

/** The heap in use, in MB. */
export function heapMb(): number {
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

let collect: (() => void) | undefined;

/**
 * A forced collection, for heap figures that mean something (a no-op if the flag cannot be set). The
 * flag is set on the first call, not on import: the bench, which never calls it, is left alone.
 */
export function gc(): void {
  collect ??= (() => {
    try {
      v8.setFlagsFromString('--expose-gc');
      return runInNewContext('gc') as () => void;
    } catch {
      return () => {};
    }
  })();
  collect();
}
