import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { message, pool, server } from './helpers.js';

function lines(count: number): string[] {
  return Array.from({ length: count }, (_, i) => (i % 7 === 0 ? `.line ${i}\n` : `line ${i} ${'x'.repeat(60)}\n`));
}

describe('stream bodies', () => {
  for (const chunking of [false, true]) {
    const via = chunking ? 'BDAT' : 'DATA';
    it(`sends a Readable body over ${via} without buffering it whole`, async () => {
      const s = await server({ extensions: { chunking } });
      const p = pool(s, { chunking: chunking ? { chunkSize: 4096 } : false });
      const parts = ['Subject: stream\n\n', ...lines(2000)];
      const result = await p.send(message(0, {}, Readable.from(parts.map((x) => Buffer.from(x)))));
      expect(result.outcome).toBe('delivered');
      const expected = parts.join('').replace(/\n/g, '\r\n');
      expect(s.inbox.messages[0]!.raw!.toString()).toBe(expected);
      expect(s.inbox.messages[0]!.via).toBe(via);
      if (chunking) expect(s.connections[0]!.byCommand.BDAT).toBeGreaterThan(10);
    });

    it(`sends an async-generator body over ${via} and then keeps pipelining`, async () => {
      const s = await server({ extensions: { chunking } });
      const p = pool(s, { maxConnections: 1 });
      async function* body() {
        yield Buffer.from('Subject: gen\r\n\r\n');
        for (const l of lines(50)) yield Buffer.from(l);
      }
      await Promise.all([p.send(message(0)), p.send(message(1, {}, body())), p.send(message(2))]);
      expect(s.inbox.messages).toHaveLength(3);
    });
  }

  it('cuts a large piece of a stream into BDAT chunks of chunkSize', async () => {
    const s = await server();
    const p = pool(s, { chunking: { chunkSize: 4096 } });
    const big = Buffer.from(`Subject: big\r\n\r\n${'y'.repeat(100 * 1024)}\r\n`);
    await p.send(message(0, {}, Readable.from([big])));
    expect(s.inbox.messages[0]!.raw!.equals(big)).toBe(true);
    // ceil(size / 4096) chunks, the last one with LAST (possibly empty).
    expect(s.connections[0]!.byCommand.BDAT).toBeGreaterThanOrEqual(Math.ceil(big.length / 4096));
    expect(s.connections[0]!.byCommand.BDAT).toBeLessThanOrEqual(Math.ceil(big.length / 4096) + 1);
  });

  it('fails the message (not the pool) when its body stream errors, and sends no final "."', async () => {
    const s = await server({ extensions: { chunking: false } });
    const p = pool(s, { maxConnections: 1 });
    async function* broken() {
      yield Buffer.from('Subject: x\r\n\r\npart');
      throw new Error('disk on fire');
    }
    await expect(p.send(message(0, {}, broken()))).rejects.toMatchObject({ code: 'EMESSAGE', outcome: 'rejected' });
    await p.send(message(1));
    expect(s.inbox.messages.map((m) => m.to[0])).toEqual(['rcpt1@example.com']);
  });
});
