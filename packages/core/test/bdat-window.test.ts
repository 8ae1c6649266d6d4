import { describe, expect, it } from 'vitest';
import type { SendResult, SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

type Outcome = { i: number; result?: SendResult; error?: SluiceError };
const sendAll = (p: ReturnType<typeof pool>, from: number, n: number): Promise<Outcome[]> =>
  Promise.all(
    Array.from({ length: n }, (_, k) =>
      p.send(message(from + k)).then(
        (result) => ({ i: from + k, result }),
        (error: SluiceError) => ({ i: from + k, error }),
      ),
    ),
  );
/** Copies of message i the server accepted (by its Message-ID). */
const copies = (s: Awaited<ReturnType<typeof server>>, i: number) =>
  s.inbox.messages.filter((m) => m.raw!.toString().includes(`Message-ID: <m${i}@sluice.test>`)).length;

describe('the BDAT window by default (PIPELINING and CHUNKING offered)', () => {
  it('pipelines BDAT transactions, the window growing while replies stay clean, with nothing the strict server objects to', async () => {
    const s = await server({ strictBdat: true });
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 100 });
    const n = 40;
    const outcomes = await sendAll(p, 0, n);
    await p.close();
    expect(outcomes.every((o) => o.result?.outcome === 'delivered')).toBe(true);
    expect(s.inbox.messages).toHaveLength(n);
    expect(s.inbox.messages.every((m) => m.via === 'BDAT')).toBe(true);
    // Fewer round trips (reads) than messages: transactions were in flight together.
    expect(s.connections[0]!.reads).toBeLessThan(n / 2);
    expect(s.transactions.map((t) => t.outcome)).toEqual(Array(n).fill('accepted'));
    expect(s.violations).toEqual([]);
  });

  it('a 5xx to a BDAT in the middle of a window: that message rejected, every other delivered once, nothing resent after its LAST, then one transaction in flight', async () => {
    const s = await server({ strictBdat: { refuse: 6 } });
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 100 });
    const first = await sendAll(p, 0, 12);
    const refused = first.find((o) => o.error)!;
    expect(first.filter((o) => o.error)).toHaveLength(1);
    expect(refused.error!.outcome).toBe('rejected');
    expect([refused.error!.code, refused.error!.responseCode, refused.error!.enhancedCode]).toEqual(['EMESSAGE', 554, '5.6.0']);
    expect(copies(s, refused.i)).toBe(0);
    for (const o of first.filter((x) => x.result)) expect(copies(s, o.i)).toBe(1);
    expect(s.transactions.filter((t) => t.outcome === 'refused')).toHaveLength(1);
    expect(s.transactions).toHaveLength(12);
    expect(s.violations).toEqual([]);

    // From now on one BDAT transaction in flight: a round trip (a read) per message.
    const before = s.connections[0]!.reads;
    const second = await sendAll(p, 100, 10);
    expect(second.every((o) => o.result?.outcome === 'delivered')).toBe(true);
    expect(s.connections[0]!.reads - before).toBeGreaterThanOrEqual(10);
    expect(s.inbox.messages.every((m) => m.via === 'BDAT')).toBe(true);
    expect(s.violations).toEqual([]);
  });

  it('a connection lost in the middle of a window: each message delivered once or reported unknown, none resent after its LAST', async () => {
    const s = await server({ strictBdat: true, faults: [{ command: 'BDAT_LAST', message: 9, action: 'drop', times: 1 }] });
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 100 });
    const n = 20;
    const outcomes = await sendAll(p, 0, n);
    await p.close();
    const unknown = outcomes.filter((o) => o.error);
    expect(unknown.length).toBeGreaterThan(0);
    for (const o of unknown) {
      expect(o.error!.outcome).toBe('unknown');
      expect(o.error!.code).toBe('EUNKNOWN');
      expect(copies(s, o.i)).toBe(0);
    }
    for (const o of outcomes.filter((x) => x.result)) expect(copies(s, o.i)).toBe(1);
    // A transaction whose LAST was written is never written again: one MAIL per unknown message.
    const aborted = s.transactions.filter((t) => t.outcome === 'aborted' && t.last);
    expect(aborted.length).toBe(unknown.length);
    expect(s.transactions.filter((t) => t.outcome === 'accepted')).toHaveLength(n - unknown.length);
    expect(s.violations).toEqual([]);
  });

  it('a second anomaly with one transaction in flight turns BDAT off: DATA from then on, on every later connection too', async () => {
    // Transaction 1 is refused in the starting window (-> one in flight); 5 is refused alone (-> DATA).
    const s = await server({ strictBdat: { refuse: [1, 5] } });
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 8 });
    const outcomes = await sendAll(p, 0, 20);
    await p.close();
    expect(outcomes.filter((o) => o.error).map((o) => o.error!.responseCode)).toEqual([554, 554]);
    const via = s.transactions.map((t) => t.via);
    expect(via.slice(0, 5)).toEqual(Array(5).fill('BDAT'));
    expect(via.slice(5)).toEqual(Array(15).fill('DATA'));
    // The pool remembered it: the later connections never used BDAT.
    expect(s.connections.length).toBeGreaterThan(1);
    for (const c of s.connections.slice(1)) expect(c.byCommand.BDAT ?? 0).toBe(0);
    expect(s.violations).toEqual([]);
  });

  it('chunking: { window: 1 } pins it: refusals never change BDAT nor the window', async () => {
    const s = await server({ strictBdat: { refuse: [1, 2, 3] } });
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 100, chunking: { window: 1 } });
    const outcomes = await sendAll(p, 0, 10);
    await p.close();
    expect(outcomes.filter((o) => o.error)).toHaveLength(3);
    expect(s.transactions.every((t) => t.via === 'BDAT')).toBe(true);
    // One transaction in flight throughout: a read per message at least.
    expect(s.connections[0]!.reads).toBeGreaterThanOrEqual(10);
    expect(s.violations).toEqual([]);
  });
});
