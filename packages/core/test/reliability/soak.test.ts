/**
 * A small chaos soak for CI: 1,000 messages per wire mode through 20 connections against the mock
 * server, which kills connections and answers 4xx at random (seeded). Every message must end in
 * exactly one outcome and the inbox must agree with it (see fault-matrix.test.ts for the invariants).
 * The long version is `pnpm soak` (packages/bench/src/soak.ts).
 */
import { once } from 'node:events';
import type { FaultRule, ReceivedMessage } from '@sluice/mock-server';
import { describe, expect, it, vi } from 'vitest';
import { type Message, type SendResult, SluiceError } from '../../src/index.js';
import { pool, server } from '../helpers.js';

const MESSAGES = 1000;
const SEED = 20_251;

/** Connection kills at each step, 4xx replies, 421 closes, "too many recipients", and a few
 * recipients refused for good. First matching rule wins, so the order is the mix. */
function chaos(): FaultRule[] {
  return [
    { command: 'RCPT', recipient: /^reject/, reply: '550 5.1.1 No such user' },
    { command: 'MAIL', action: 'drop', probability: 0.004 },
    { command: 'RCPT', action: 'drop', probability: 0.003 },
    { command: 'DOT', action: 'drop', probability: 0.004 },
    { command: 'BDAT_LAST', action: 'drop', probability: 0.004 },
    // The server queued the message, then died before answering: unknown, received once.
    { command: 'DOT', action: 'drop', deliver: true, probability: 0.004 },
    { command: 'BDAT_LAST', action: 'drop', deliver: true, probability: 0.004 },
    { command: 'MAIL', reply: '451 4.3.0 Temporary failure', probability: 0.01 },
    { command: 'MAIL', reply: '421 4.3.2 Service shutting down', probability: 0.004 },
    { command: 'RCPT', afterRecipients: 1, reply: '452 4.5.3 Too many recipients', probability: 0.3 },
    { command: 'RCPT', reply: '452 4.2.2 Mailbox full', probability: 0.01 },
    { command: 'DOT', reply: '451 4.3.0 Error in processing', probability: 0.01 },
    { command: 'BDAT_LAST', reply: '451 4.3.0 Error in processing', probability: 0.01 },
  ];
}

interface Sent {
  id: string;
  to: string[];
}

function makeMessage(i: number): Sent & { message: Message } {
  // Every 10th message has three recipients ("too many recipients" splits it); every 97th is refused.
  const to =
    i % 97 === 0 ? [`reject${i}@example.com`] : i % 10 === 0 ? [`s${i}.a@example.com`, `s${i}.b@example.com`, `s${i}.c@example.com`] : [`s${i}@example.com`];
  const id = `<soak-${i}@sluice.test>`;
  const body = `From: soak@example.com\r\nTo: ${to.join(', ')}\r\nSubject: soak ${i}\r\nMessage-ID: ${id}\r\n\r\nMessage ${i}\r\n`;
  return { id, to, message: { envelope: { from: 'soak@example.com', to }, body } };
}

type Settled = { outcome: 'delivered'; result: SendResult } | { outcome: string; error: unknown };

const MESSAGE_ID = /^message-id:[ \t]*(<[^>\r\n]+>)/im;

/** The invariants of fault-matrix.test.ts, for retryUnknown off. Returns the violations. */
function violations(sent: Sent[], settled: Settled[], inbox: readonly ReceivedMessage[]): string[] {
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
      else if (id !== sent[i]!.id) problems.push(`${r} received the body of ${id}, not of ${sent[i]!.id}`);
      copies.set(r, (copies.get(r) ?? 0) + 1);
    }
  }
  for (const [i, s] of sent.entries()) {
    const st = settled[i];
    if (!st) {
      problems.push(`${s.id}: no outcome`);
      continue;
    }
    if (!['delivered', 'rejected', 'failed', 'unknown'].includes(st.outcome)) {
      problems.push(`${s.id}: settled without an outcome`);
      continue;
    }
    if (st.outcome !== 'delivered' && !((st as { error: unknown }).error instanceof SluiceError)) problems.push(`${s.id}: not a SluiceError`);
    const accepted = st.outcome === 'delivered' ? new Set((st as { result: SendResult }).result.accepted.map((a) => a.address)) : null;
    for (const r of s.to) {
      const n = copies.get(r) ?? 0;
      const [min, max] = st.outcome === 'delivered' ? (accepted!.has(r) ? [1, 1] : [0, 0]) : st.outcome === 'unknown' ? [0, 1] : [0, 0];
      if (n < min || n > max) problems.push(`${s.id} (${st.outcome}): ${r} received ${n} time(s)`);
    }
  }
  return problems;
}

const MODES = [
  { name: 'PIPELINING + DATA', extensions: { chunking: false } },
  { name: 'PIPELINING + CHUNKING', extensions: {} },
] as const;

describe('chaos soak', () => {
  for (const mode of MODES) {
    it(`${MESSAGES} messages, 20 connections, random kills and 4xx (${mode.name}, seed ${SEED})`, async () => {
      const s = await server({ seed: SEED, extensions: mode.extensions, faults: chaos() });
      const p = pool(s, { maxConnections: 20, highWaterMark: 200, retry: { retries: 3, minDelay: 5, maxDelay: 50 } });
      const reported = new Map<string, number>();
      const report = (id: string | undefined) => reported.set(id ?? '(none)', (reported.get(id ?? '(none)') ?? 0) + 1);
      p.on('sent', (r) => report(r.messageId));
      p.on('send-error', (e) => report(e.messageId));

      const sent: Sent[] = [];
      const settled: Settled[] = [];
      let done = 0;
      for (let i = 0; i < MESSAGES; i++) {
        if (p.full) await once(p, 'drain');
        const m = makeMessage(i);
        sent.push({ id: m.id, to: m.to });
        p.send(m.message).then(
          (result) => {
            settled[i] = { outcome: 'delivered', result };
            done++;
          },
          (error) => {
            settled[i] = { outcome: error instanceof SluiceError ? (error.outcome ?? 'no-outcome') : 'no-outcome', error };
            done++;
          },
        );
      }
      // Every promise settles (a pending one fails here, not by hanging the run).
      await vi.waitFor(() => expect(done).toBe(MESSAGES), { timeout: 15_000, interval: 50 });
      await p.close();
      await vi.waitFor(() => expect(s.openConnections).toBe(0), { timeout: 5000 });

      expect(violations(sent, settled, s.inbox.messages)).toEqual([]);
      const counts: Record<string, number> = {};
      for (const x of settled) counts[x.outcome] = (counts[x.outcome] ?? 0) + 1;
      const { delivered, rejected, failed, unknown, retries } = p.stats;
      expect({ delivered, rejected, failed, unknown }).toEqual({ delivered: 0, rejected: 0, failed: 0, unknown: 0, ...counts });
      for (const { id } of sent) expect(reported.get(id), id).toBe(1);
      // The chaos happened: retries, lost replies, refused recipients.
      expect(retries).toBeGreaterThan(10);
      expect(unknown).toBeGreaterThan(0);
      expect(counts.rejected).toBeGreaterThan(0);
      expect(counts.delivered).toBeGreaterThan(MESSAGES * 0.9);
      for (let i = 0; i < MESSAGES; i += 97) expect(settled[i]!.outcome).not.toBe('delivered');
    });
  }
});
