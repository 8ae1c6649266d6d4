/**
 * A small chaos soak for CI: 1,000 messages per wire mode through 20 connections against the mock
 * server, which kills connections and answers 4xx at random (seeded). Every message must end in
 * exactly one outcome and the inbox must agree with it (see fault-matrix.test.ts for the invariants).
 * The long version is `pnpm soak` (packages/bench/src/soak.ts).
 */
import { once } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { SluiceError } from '../../src/index.js';
import { pool, server } from '../helpers.js';
import { chaos, checkInvariants, makeMessage, type Sent, type Settled, settledError } from './chaos.js';

const MESSAGES = 1000;
const SEED = 20_251;
/** Twice `pnpm soak`'s mix, and more of the messages lost after the server queued them (unknown). */
const RATES = { drop: 0.004, rcptDrop: 0.003, lost: 0.004, transient: 0.01, shutdown: 0.004 };
const REJECT_EVERY = 97;

const MODES = [
  { name: 'PIPELINING + DATA', extensions: { chunking: false } },
  { name: 'PIPELINING + CHUNKING', extensions: {} },
] as const;

describe('chaos soak', () => {
  for (const mode of MODES) {
    it(`${MESSAGES} messages, 20 connections, random kills and 4xx (${mode.name}, seed ${SEED})`, async () => {
      const s = await server({ seed: SEED, extensions: mode.extensions, faults: chaos(RATES) });
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
        const m = makeMessage(i, { rejectEvery: REJECT_EVERY });
        sent.push({ id: m.id, to: m.to });
        p.send(m.message).then(
          (result) => {
            settled[i] = { outcome: 'delivered', result };
            done++;
          },
          (error) => {
            settled[i] = settledError(error, SluiceError);
            done++;
          },
        );
      }
      // Every promise settles (a pending one fails here, not by hanging the run).
      await vi.waitFor(() => expect(done).toBe(MESSAGES), { timeout: 15_000, interval: 50 });
      await p.close();
      await vi.waitFor(() => expect(s.openConnections).toBe(0), { timeout: 5000 });

      expect(checkInvariants(sent, settled, s.inbox.messages, SluiceError)).toEqual([]);
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
      for (let i = 0; i < MESSAGES; i += REJECT_EVERY) expect(settled[i]!.outcome).not.toBe('delivered');
    });
  }
});
