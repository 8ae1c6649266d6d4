import { describe, expect, it } from 'vitest';
import { message, pool, server } from './helpers.js';

// The mock server counts the socket reads it makes per connection. A client that writes each group
// in one write and waits only at synchronisation points makes exactly one read per round trip, so
// the read count is the round-trip count.
describe('round trips on the wire', () => {
  it('uses one write and one round trip per message on a warm pipelined connection (DATA)', async () => {
    const s = await server({ extensions: { chunking: false } });
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 100 });
    const n = 20;
    await Promise.all(Array.from({ length: n }, (_, i) => p.send(message(i))));
    await p.close();
    expect(s.inbox.messages).toHaveLength(n);
    const [c] = s.connections;
    // EHLO, then the first envelope, then one read per message (content + next envelope, the last
    // one carrying QUIT or followed by it).
    expect(c!.reads).toBeGreaterThanOrEqual(n + 1);
    expect(c!.reads).toBeLessThanOrEqual(n + 3);
    expect(c!.byCommand.MAIL).toBe(n);
    expect(c!.byCommand.RSET ?? 0).toBe(0);
  });

  it('uses one round trip per message with CHUNKING (MAIL, RCPT, BDAT LAST and the bytes in one write)', async () => {
    const s = await server();
    // Pinned to one transaction in flight: the default window pipelines them (see bdat-window.test.ts).
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 100, chunking: { window: 1 } });
    const n = 20;
    await Promise.all(Array.from({ length: n }, (_, i) => p.send(message(i))));
    await p.close();
    const [c] = s.connections;
    expect(s.inbox.messages.every((m) => m.via === 'BDAT')).toBe(true);
    expect(c!.reads).toBeGreaterThanOrEqual(n + 1);
    expect(c!.reads).toBeLessThanOrEqual(n + 3);
  });

  it('a retiring connection writes QUIT in its last BDAT group (RFC 2920 §3.1): EHLO and one round trip per connection', async () => {
    const s = await server();
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 1 });
    for (let i = 0; i < 3; i++) await p.send(message(i));
    await p.close();
    expect(s.inbox.messages.map((m) => m.via)).toEqual(['BDAT', 'BDAT', 'BDAT']);
    expect(s.connections).toHaveLength(3);
    // EHLO, then MAIL, RCPT, BDAT LAST, the bytes and QUIT in one read.
    for (const c of s.connections) {
      expect(c.byCommand.QUIT).toBe(1);
      expect(c.reads).toBe(2);
    }
  });

  it('the adaptive window is not cut by what one read writes (4 KiB messages: 16 in flight, not the 3 or 4 a 16 KiB send buffer holds)', async () => {
    const s = await server({ rtt: 20 });
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 1000 });
    const body = (i: number) => `Subject: ${i}\r\nMessage-ID: <w${i}@sluice.test>\r\n\r\n${`${'y'.repeat(78)}\r\n`.repeat(51)}`;
    const n = 80;
    await Promise.all(Array.from({ length: n }, (_, i) => p.send(message(i, {}, body(i)))));
    await p.close();
    expect(s.inbox.messages).toHaveLength(n);
    // EHLO, the round trips while the window grows (by one per clean reply), then 16 a round trip:
    // 15 here; with the window cut to what a 16 KiB send buffer holds, 24.
    expect(s.connections[0]!.reads).toBeLessThanOrEqual(18);
  });

  it('keeps W transactions in flight with a BDAT window (fewer round trips than messages)', async () => {
    const s = await server();
    const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 100, chunking: { window: 4 } });
    const n = 40;
    await Promise.all(Array.from({ length: n }, (_, i) => p.send(message(i))));
    await p.close();
    expect(s.inbox.messages).toHaveLength(n);
    expect(s.connections[0]!.reads).toBeLessThan(n / 2);
  });

  it('falls back to lock-step, one command per round trip, when PIPELINING is not offered', async () => {
    const s = await server({ extensions: { pipelining: false, chunking: false } });
    const p = pool(s, { maxConnections: 1 });
    const n = 5;
    const to = ['a@example.com', 'b@example.com'];
    await Promise.all(Array.from({ length: n }, (_, i) => p.send(message(i, { to }))));
    await p.close();
    expect(s.inbox.messages).toHaveLength(n);
    // MAIL, RCPT×2, DATA, content: 3 + k round trips per message, plus EHLO and QUIT.
    expect(s.connections[0]!.reads).toBe(n * (3 + to.length) + 2);
  });

  it('runs lock-step when pipelining is turned off although the server offers it', async () => {
    const s = await server({ extensions: { chunking: false } });
    const p = pool(s, { maxConnections: 1, pipelining: false });
    await Promise.all([p.send(message(1)), p.send(message(2))]);
    await p.close();
    expect(s.connections[0]!.reads).toBe(2 * 4 + 2);
  });
});
