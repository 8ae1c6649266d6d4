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
    // 100 KiB in lines of 998 octets, the longest RFC 5321 §4.5.3.1.6 allows.
    const big = Buffer.from(`Subject: big\r\n\r\n${`${'y'.repeat(998)}\r\n`.repeat(103)}`);
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

  describe('send(message, { bufferUpTo })', () => {
    const body = () => Readable.from([Buffer.from('Subject: buffered\r\n\r\n'), Buffer.from('line one\r\n'), Buffer.from('line two\r\n')]);
    const raw = 'Subject: buffered\r\n\r\nline one\r\nline two\r\n';

    it('reads a stream up to bufferUpTo into memory, so "too many recipients" can split it across transactions', async () => {
      const s = await server({ faults: [{ command: 'RCPT', afterRecipients: 1, reply: '452 4.5.3 Too many recipients' }] });
      const p = pool(s, { maxConnections: 1 });
      const to = ['a@example.com', 'b@example.com', 'c@example.com'];
      const result = await p.send({ envelope: { from: 'sender@example.com', to }, body: body() }, { bufferUpTo: 1024 });
      expect(result.accepted.map((r) => r.address)).toEqual(to);
      expect(result.pending).toEqual([]);
      expect(s.inbox.messages.map((m) => m.to)).toEqual([['a@example.com'], ['b@example.com'], ['c@example.com']]);
      for (const m of s.inbox.messages) expect(m.raw!.toString()).toBe(raw);
    });

    it('retries a buffered stream after a 4xx to its content', async () => {
      const s = await server({ extensions: { chunking: false }, faults: [{ command: 'DOT', reply: '451 4.3.0 Try again', times: 1 }] });
      const result = await pool(s).send(message(0, {}, body()), { bufferUpTo: 1024 });
      expect(result.attempts).toBe(2);
      expect(s.inbox.messages.map((m) => m.raw!.toString())).toEqual([raw]);
    });

    it('sends a stream longer than bufferUpTo as a stream: every byte, in BDAT chunks, not retried', async () => {
      const s = await server();
      const p = pool(s, { chunking: { chunkSize: 1024 } });
      const parts = Array.from({ length: 40 }, (_, i) => Buffer.from(`line ${i} ${'z'.repeat(200)}\r\n`));
      const whole = Buffer.concat([Buffer.from('Subject: long\r\n\r\n'), ...parts]);
      await p.send(message(0, {}, Readable.from([Buffer.from('Subject: long\r\n\r\n'), ...parts])), { bufferUpTo: 2048 });
      expect(s.inbox.messages[0]!.raw!.equals(whole)).toBe(true);
      expect(s.connections[0]!.byCommand.BDAT).toBeGreaterThan(1);

      s.setFaults([{ command: 'BDAT_LAST', reply: '451 4.3.0 Try again', times: 1 }]);
      const long = Readable.from([Buffer.from('Subject: long\r\n\r\n'), ...parts]);
      await expect(p.send(message(1, {}, long), { bufferUpTo: 2048 })).rejects.toMatchObject({ outcome: 'failed', attempts: 1 });
    });

    it('refuses a bufferUpTo that is not a byte count, and fails a stream that errors while it is read', async () => {
      const s = await server();
      const p = pool(s);
      await expect(p.send(message(0, {}, body()), { bufferUpTo: -1 })).rejects.toMatchObject({ code: 'EOPTIONS' });
      async function* broken() {
        yield Buffer.from('Subject: x\r\n\r\npart');
        throw new Error('disk on fire');
      }
      await expect(p.send(message(1, {}, broken()), { bufferUpTo: 1024 })).rejects.toMatchObject({ code: 'EMESSAGE', kind: 'input', outcome: 'rejected' });
      expect(s.connections).toHaveLength(0);
    });
  });
});
