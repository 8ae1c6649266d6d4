import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

const to = Array.from({ length: 1000 }, (_, i) => `r${i}@example.com`);
const addresses = (list: Array<{ address: string }>) => list.map((r) => r.address).sort();
const range = (from: number, until: number) => to.slice(from, until);

describe('a message with more recipients than one transaction carries (maxRecipientsPerTransaction 100)', () => {
  it('sends its transactions at once over several connections and merges every recipient into the one SendResult', async () => {
    const s = await server({
      faults: [
        { command: 'RCPT', recipient: 'r7@example.com', reply: '550 5.1.1 No such user' },
        { command: 'RCPT', recipient: 'r555@example.com', reply: '450 4.2.1 Mailbox busy' },
        // The whole transaction of r300..r399 is refused at its content.
        { command: 'BDAT_LAST', recipient: 'r350@example.com', reply: '554 5.6.0 Content refused' },
      ],
    });
    const p = pool(s, { maxConnections: 5 });
    const result = await p.send(message(0, { to }));

    expect(result.outcome).toBe('delivered');
    expect(result.envelope.to).toEqual(to);
    expect(result.attempts).toBe(10);
    const refused = ['r7@example.com', ...range(300, 400)].sort();
    expect(addresses(result.rejected)).toEqual(refused);
    expect(result.rejected.find((r) => r.address === 'r7@example.com')).toMatchObject({ code: 550, enhancedCode: '5.1.1' });
    expect(result.rejected.find((r) => r.address === 'r399@example.com')).toMatchObject({ code: 554, enhancedCode: '5.6.0' });
    expect(result.pending).toEqual([{ address: 'r555@example.com', code: 450, enhancedCode: '4.2.1', response: '450 4.2.1 Mailbox busy' }]);
    expect(addresses(result.accepted)).toEqual(to.filter((a) => !refused.includes(a) && a !== 'r555@example.com').sort());

    // The server's records: ten transactions of at most 100 recipients, spread over more than one of
    // the pool's connections, open at the same time, never more than maxConnections.
    const used = s.connections.filter((c) => (c.byCommand.MAIL ?? 0) > 0);
    expect(used.length).toBeGreaterThan(1);
    expect(used.length).toBeLessThanOrEqual(5);
    expect(used.reduce((n, c) => n + (c.byCommand.MAIL ?? 0), 0)).toBe(10);
    expect(used.reduce((n, c) => n + (c.byCommand.RCPT ?? 0), 0)).toBe(1000);
    expect(s.stats.peakConnections).toBeGreaterThan(1);
    expect(s.stats.peakConnections).toBeLessThanOrEqual(5);
    expect(s.inbox.messages).toHaveLength(9);
    expect(s.inbox.messages.every((m) => m.to.length <= 100)).toBe(true);
    expect(p.stats.delivered).toBe(1);
  });

  it('keeps the other transactions’ results when one fails after its retries, and counts every transaction', async () => {
    const s = await server({ faults: [{ command: 'BDAT_LAST', recipient: 'r820@example.com', reply: '451 4.3.0 Try again' }] });
    const p = pool(s, { maxConnections: 4, retry: { retries: 1, minDelay: 1, maxDelay: 2 } });
    const result = await p.send(message(0, { to }));

    expect(result.outcome).toBe('delivered');
    // Nine transactions delivered at once, and the tenth tried twice (its retry budget is one).
    expect(result.attempts).toBe(11);
    expect(addresses(result.accepted)).toEqual([...range(0, 800), ...range(900, 1000)].sort());
    expect(addresses(result.pending)).toEqual(range(800, 900).sort());
    expect(result.pending[0]).toMatchObject({ code: 451, enhancedCode: '4.3.0' });
    expect(result.rejected).toEqual([]);
    expect(s.inbox.messages).toHaveLength(9);
  });

  it('rejects with every part’s refused recipients when no part is delivered', async () => {
    // DOT too: refusals at BDAT turn BDAT off for the server (the adaptive window's fallback to DATA).
    const s = await server({
      faults: [
        { command: 'BDAT_LAST', reply: '554 5.6.0 Content refused' },
        { command: 'DOT', reply: '554 5.6.0 Content refused' },
      ],
    });
    const p = pool(s, { maxConnections: 3 });
    const err = (await p.send(message(0, { to })).catch((e) => e)) as SluiceError;

    expect(err.outcome).toBe('rejected');
    expect([err.code, err.responseCode, err.enhancedCode]).toEqual(['EMESSAGE', 554, '5.6.0']);
    expect(err.attempts).toBe(10);
    expect(addresses(err.rejected ?? [])).toEqual([...to].sort());
    expect(p.stats.rejected).toBe(1);
    expect(s.inbox.messages).toHaveLength(0);
  });

  it('withdraws every queued part when its signal aborts: one EABORT, nothing sent, one abort listener for the message', async () => {
    // One connection, held by a first message whose MAIL reply is slow: the parts wait in the queue.
    const s = await server({ faults: [{ command: 'MAIL', action: 'delay', delayMs: 300, message: 1 }] });
    const p = pool(s, { maxConnections: 1 });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const first = p.send(message(0));
      await once(p, 'connect');
      // The first message is handed to the connection in the same turn as 'connect'.
      await new Promise((resolve) => setImmediate(resolve));
      expect(p.stats.inFlight).toBe(1);
      const controller = new AbortController();
      const many = Array.from({ length: 2000 }, (_, i) => `r${i}@example.com`);
      const big = p.send(message(1, { to: many }), { signal: controller.signal }).catch((e: SluiceError) => e);
      expect(p.stats.queued).toBe(20);
      controller.abort(new Error('user gave up'));
      const err = (await big) as SluiceError;
      expect([err.code, err.outcome]).toEqual(['EABORT', 'failed']);
      expect(p.stats.queued).toBe(0);
      await first;
      await p.close();
      expect(s.inbox.messages.map((m) => m.to)).toEqual([['rcpt0@example.com']]);
      expect(p.stats.failed).toBe(1);
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
