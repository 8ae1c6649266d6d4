import { describe, expect, it } from 'vitest';
import { startMockServer } from '../src/index.js';
import { ehloClient, until, withServer } from './helpers.js';

/** One BDAT transaction, ready to pipeline: MAIL, RCPT, then the body in chunks (the last one LAST). */
function bdatTransaction(to: string, chunks: string[]): string {
  let out = `MAIL FROM:<a@example.com>\r\nRCPT TO:<${to}>\r\n`;
  chunks.forEach((chunk, i) => {
    out += `BDAT ${Buffer.byteLength(chunk)}${i === chunks.length - 1 ? ' LAST' : ''}\r\n${chunk}`;
  });
  return out;
}

describe('strictBdat', () => {
  it('refuses the BDAT of the Nth transaction of a pipelined window and records how each one ended', () =>
    withServer({ strictBdat: { refuse: 2, reply: '554 5.6.0 Window test refusal' } }, async (server) => {
      const c = await ehloClient(server.port);
      // Three transactions in one write: a window of three messages in flight.
      c.write(
        bdatTransaction('one@example.com', ['Subject: 1\r\n', '\r\nbody 1\r\n']) +
          bdatTransaction('two@example.com', ['Subject: 2\r\n', '\r\nbody 2\r\n']) +
          bdatTransaction('three@example.com', ['Subject: 3\r\n\r\nbody 3\r\n']),
      );
      const replies = await c.read(11);
      expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 250, 250, 250, 554, 503, 250, 250, 250]);
      expect(replies[6].text).toBe('5.6.0 Window test refusal');
      expect(server.inbox.messages.map((m) => [m.to, m.raw?.toString()])).toEqual([
        [['one@example.com'], 'Subject: 1\r\n\r\nbody 1\r\n'],
        [['three@example.com'], 'Subject: 3\r\n\r\nbody 3\r\n'],
      ]);
      expect(server.transactions.map(({ sequence, via, chunks, last, outcome }) => ({ sequence, via, chunks, last, outcome }))).toEqual([
        { sequence: 1, via: 'BDAT', chunks: [12, 10], last: true, outcome: 'accepted' },
        // Its LAST chunk came after the refusal and got 503 outside any transaction (RFC 3030 §2).
        { sequence: 2, via: 'BDAT', chunks: [12], last: false, outcome: 'refused' },
        { sequence: 3, via: 'BDAT', chunks: [22], last: true, outcome: 'accepted' },
      ]);
      expect(server.transactions[1].reply).toBe('554 5.6.0 Window test refusal');
      expect(server.transactions[0].reply).toBe(`250 2.0.0 Ok: queued as ${server.inbox.messages[0].id}`);
      expect(server.violations).toEqual([]);
      c.close();
    }));

  it('records a BDAT sent again after its LAST chunk was answered', () =>
    withServer({ strictBdat: true }, async (server) => {
      const c = await ehloClient(server.port);
      c.write(bdatTransaction('one@example.com', ['hello\r\n']));
      expect((await c.read(3)).map((r) => r.code)).toEqual([250, 250, 250]);
      c.write('BDAT 7 LAST\r\nhello\r\n');
      expect(await c.reply()).toMatchObject({ code: 503 });
      expect(server.violations).toEqual([{ connection: 1, kind: 'bdat-after-last', line: 'BDAT 7 LAST' }]);
      expect(server.inbox.messages).toHaveLength(1);
      c.close();
    }));

  it('records a chunk followed by more octets than it declared', () =>
    withServer({ strictBdat: true }, async (server) => {
      const c = await ehloClient(server.port);
      c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 3 LAST\r\nabcdef\r\n');
      expect((await c.read(4)).map((r) => r.code)).toEqual([250, 250, 250, 500]);
      expect(server.inbox.messages[0].raw?.toString()).toBe('abc');
      expect(server.violations).toEqual([{ connection: 1, kind: 'size-mismatch', line: 'def' }]);
      c.close();
    }));

  it('records reset and aborted transactions; clear() empties the record', () =>
    withServer({ strictBdat: true }, async (server) => {
      const c = await ehloClient(server.port);
      c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRSET\r\nMAIL FROM:<a@example.com>\r\n');
      await c.read(4);
      c.close();
      await until(() => server.transactions[1]?.outcome === 'aborted');
      expect(server.transactions.map((t) => [t.sequence, t.outcome, t.via])).toEqual([
        [1, 'reset', null],
        [2, 'aborted', null],
      ]);
      server.clear();
      expect(server.transactions).toEqual([]);
    }));

  it('records nothing when off', () =>
    withServer({}, async (server) => {
      const c = await ehloClient(server.port);
      c.write(bdatTransaction('one@example.com', ['hello\r\n']));
      await c.read(3);
      c.write('BDAT 7 LAST\r\nhello\r\n');
      await c.reply();
      expect([server.transactions, server.violations]).toEqual([[], []]);
      c.close();
    }));

  it('validates its options', async () => {
    await expect(startMockServer({ strictBdat: { refuse: 0 } })).rejects.toMatchObject({ code: 'EMOCKOPTIONS' });
    await expect(startMockServer({ strictBdat: { reply: '250 fine' } })).rejects.toMatchObject({ code: 'EMOCKOPTIONS' });
  });
});
