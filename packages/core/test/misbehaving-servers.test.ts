import { describe, expect, it } from 'vitest';
import { SluiceError } from '../src/index.js';
import { message, outcomes, pool, server } from './helpers.js';

// Issue 16: servers that say "too many recipients" in other words, break the protocol, or are stricter
// than RFC 2920. Each is a mock server configured to behave that way (packages/mock-server/README.md).

const modes = [
  { name: 'pipelined DATA', server: { extensions: { chunking: false } } },
  { name: 'CHUNKING', server: {} },
  { name: 'lock-step', server: { extensions: { pipelining: false, chunking: false } } },
] as const;

const rcpts = (n: number) => Array.from({ length: n }, (_, i) => `r${i}@example.com`);

async function rejection(p: Promise<unknown>): Promise<SluiceError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SluiceError);
  return err as SluiceError;
}

describe('"too many recipients" in every wording (RFC 5321 §4.5.3.1.10)', () => {
  const replies = ['451 4.5.3 Too many recipients', '552 Too many recipients', '452 too many recipients', '552 5.5.3 Error: too many recipients'];
  for (const mode of modes) {
    for (const reply of replies) {
      it(`${mode.name}, "${reply}": the 30 recipients are split 20 + 10, none left pending, no retry used`, async () => {
        const s = await server({ ...mode.server, maxRecipients: 20, tooManyRecipientsReply: reply });
        const p = pool(s, { retry: false });
        const to = rcpts(30);
        const result = await p.send(message(0, { to }));
        expect(result.accepted.map((r) => r.address)).toEqual(to);
        expect(result.pending).toEqual([]);
        expect(result.rejected).toEqual([]);
        expect(s.inbox.messages.map((m) => m.to)).toEqual([to.slice(0, 20), to.slice(20)]);
        expect(p.stats.retries).toBe(0);
      });
    }
  }
});

describe('a 3xx to the end of the content (a broken server)', () => {
  for (const [name, opts, command] of [
    ['354 to the final "."', { extensions: { chunking: false } }, 'DOT'],
    ['354 to BDAT LAST', {}, 'BDAT_LAST'],
  ] as const) {
    it(`${name}: outcome unknown, sent once, the connection retires; the next message goes through`, async () => {
      const s = await server({ ...opts, faults: [{ command, reply: '354 Go ahead', times: 1 }] });
      const p = pool(s);
      const err = await rejection(p.send(message(0)));
      expect(err.outcome).toBe('unknown');
      expect(err.code).toBe('EUNKNOWN');
      expect(err.responseCode).toBe(354);
      expect(err.attempts).toBe(1);
      expect(s.inbox.messages).toHaveLength(1); // the server has it: resending would duplicate it
      await p.send(message(1));
      expect(s.inbox.messages).toHaveLength(2);
      expect(s.connections).toHaveLength(2); // the broken connection took nothing else
    });
  }

  it('354 to the final ".", retryUnknown: resent (the user accepted duplicates)', async () => {
    const s = await server({ extensions: { chunking: false }, faults: [{ command: 'DOT', reply: '354 Go ahead', times: 1 }] });
    const p = pool(s, { retryUnknown: true });
    const result = await p.send(message(0));
    expect(result.attempts).toBe(2);
    expect(s.inbox.messages).toHaveLength(2);
  });
});

describe('protocol violations retire the connection at once, with the real cause', () => {
  it('250 instead of 354 to DATA: EPROTOCOL names DATA and the reply, the connection is dropped, nothing is sent twice', async () => {
    const s = await server({ extensions: { chunking: false }, faults: [{ command: 'DATA', reply: '250 2.0.0 Ok', times: 1 }] });
    const p = pool(s, { retry: false });
    const err = await rejection(p.send(message(0)));
    expect(err.outcome).toBe('failed');
    expect(err.code).toBe('EPROTOCOL');
    expect(err.command).toBe('DATA');
    expect(err.responseCode).toBe(250);
    expect(s.inbox.messages).toHaveLength(0);
    // The next message does not wait out a timeout: a new connection takes it.
    const started = Date.now();
    await p.send(message(1));
    expect(s.inbox.messages.map((m) => m.to)).toEqual([['rcpt1@example.com']]);
    expect(s.connections).toHaveLength(2);
    expect(s.connections[0]!.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(p.options.connection.timeouts.data);
  });

  it('250 instead of 354 to DATA with retries: the message is retried on a new connection and delivered once', async () => {
    const s = await server({ extensions: { chunking: false }, faults: [{ command: 'DATA', reply: '250 2.0.0 Ok', times: 1 }] });
    const p = pool(s);
    const result = await p.send(message(0));
    expect(result.attempts).toBe(2);
    expect(s.inbox.messages).toHaveLength(1);
  });

  it('an unsolicited reply: EPROTOCOL, not "Connection lost"; the connection is dropped and the next message goes through', async () => {
    // The extra reply after MAIL's is read as the RCPT's; the real RCPT reply then answers DATA with
    // 250, and the DATA reply arrives with nothing outstanding. Either is a violation.
    const s = await server({ extensions: { chunking: false }, faults: [{ command: 'MAIL', action: 'unsolicited', reply: '250 by the way', times: 1 }] });
    const p = pool(s, { retry: false });
    const err = await rejection(p.send(message(0)));
    expect(err.code).toBe('EPROTOCOL');
    expect(err.outcome).toBe('failed');
    expect(s.inbox.messages).toHaveLength(0);
    await p.send(message(1));
    expect(s.inbox.messages).toHaveLength(1);
    expect(s.connections[0]!.closed).toBe(true);
  });

  it('an unsolicited reply while idle: the connection is dropped at once (closed with EPROTOCOL)', async () => {
    const s = await server({ extensions: { chunking: false }, faults: [{ command: 'DOT', action: 'unsolicited', reply: '250 by the way', times: 1 }] });
    const p = pool(s);
    const closed = new Promise<SluiceError | null>((resolve) => p.once('close', (e) => resolve(e.error)));
    await p.send(message(0));
    const error = await closed;
    expect(error?.code).toBe('EPROTOCOL');
    await p.send(message(1));
    expect(s.inbox.messages).toHaveLength(2);
  });

  it('only the first command of a group answered: the RCPT deadline ends it, the error says ETIMEDOUT on RCPT (not EENVELOPE)', async () => {
    const s = await server({ extensions: { chunking: false }, answerFirstOnly: true });
    const p = pool(s, { retry: false, timeouts: { rcpt: 300, data: 300 } });
    const err = await rejection(p.send(message(0)));
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.command).toBe('RCPT');
    expect(err.outcome).toBe('failed');
    expect(s.inbox.messages).toHaveLength(0);
    expect(s.connections[0]!.closed).toBe(true);
  });
});

describe('a server that offers PIPELINING and answers only the first command of each read', () => {
  for (const mode of [modes[0], modes[1]]) {
    it(`${mode.name}: one timeout in all, then the pool goes lock-step: every message delivered, each once`, async () => {
      const s = await server({ ...mode.server, answerFirstOnly: true });
      const p = pool(s, { maxConnections: 2, maxMessagesPerConnection: 5, timeouts: { rcpt: 300, data: 300 }, retry: { retries: 2, minDelay: 1, maxDelay: 5 } });
      const timeouts: string[] = [];
      p.on('close', (e) => {
        if (e.error?.code === 'ETIMEDOUT') timeouts.push(e.error.command ?? '');
      });
      const sent = Array.from({ length: 20 }, (_, i) => p.send(message(i)));
      expect(await outcomes(sent)).toEqual({ delivered: 20 });
      // The first connection(s) opened before the pool knew stalled once each; none after.
      expect(timeouts.length).toBeGreaterThanOrEqual(1);
      expect(timeouts.length).toBeLessThanOrEqual(2);
      expect(timeouts.every((c) => c === 'RCPT')).toBe(true);
      // Each message arrived once (its own recipient), none lost, none twice.
      const received = s.inbox.messages.map((m) => m.to.join(',')).sort();
      expect(received).toEqual(Array.from({ length: 20 }, (_, i) => `rcpt${i}@example.com`).sort());
    });
  }
});

describe('a server stricter than RFC 2920: 503 to a command right behind the final "." (Haraka 3.3)', () => {
  it('retry: false, one connection: 500/500 delivered, one refused group in all, then the envelope waits for the "."', async () => {
    const s = await server({ extensions: { chunking: false }, forbidPipeliningAfterData: true });
    const p = pool(s, { retry: false, maxConnections: 1, maxMessagesPerConnection: 1000 });
    const sent = Array.from({ length: 500 }, (_, i) => p.send(message(i)));
    expect(await outcomes(sent)).toEqual({ delivered: 500 });
    const results = await Promise.all(sent);
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    expect(p.stats.retries).toBe(0);
    expect(s.inbox.messages).toHaveLength(500);
    // Every MAIL the server executed was one message; exactly one more MAIL arrived and was refused.
    const mails = s.connections.reduce((n, c) => n + (c.byCommand.MAIL ?? 0), 0);
    expect(mails).toBe(501);
    expect(s.connections).toHaveLength(1);
  });

  it('several connections, recycled every 10 messages: every message delivered; only the connections open at the first refusal were refused, once each', async () => {
    const s = await server({ extensions: { chunking: false }, forbidPipeliningAfterData: true });
    const p = pool(s, { retry: false, maxConnections: 4, maxMessagesPerConnection: 10 });
    expect(await outcomes(Array.from({ length: 200 }, (_, i) => p.send(message(i))))).toEqual({ delivered: 200 });
    expect(s.inbox.messages).toHaveLength(200);
    expect(s.connections.length).toBeGreaterThanOrEqual(20);
    // MAILs the server refused: at most one per connection opened before the pool knew (at most 4),
    // none on the connections opened after (the pool remembers).
    const mails = s.connections.reduce((n, c) => n + (c.byCommand.MAIL ?? 0), 0);
    expect(mails - 200).toBeGreaterThanOrEqual(1);
    expect(mails - 200).toBeLessThanOrEqual(4);
    expect(p.stats.retries).toBe(0);
  });
});

describe('RSET (RFC 5321 §4.1.1.5) and the end of a transaction (§4.1.1.4)', () => {
  for (const mode of [modes[0], modes[2]]) {
    it(`${mode.name}: a refused RSET retires the connection; the message behind it is delivered on another`, async () => {
      const s = await server({
        ...mode.server,
        faults: [
          { command: 'RCPT', reply: '550 5.1.1 No such user', times: 1 },
          { command: 'RSET', reply: '500 5.5.1 What?', times: 1 },
        ],
      });
      const p = pool(s, { maxConnections: 1 });
      const err = await rejection(p.send(message(0)));
      expect(err.outcome).toBe('rejected');
      const result = await p.send(message(1));
      expect(result.outcome).toBe('delivered');
      expect(s.inbox.messages.map((m) => m.to)).toEqual([['rcpt1@example.com']]);
      expect(s.connections[0]!.byCommand.RSET).toBe(1);
      expect(s.connections[0]!.closed).toBe(true);
      expect(s.connections).toHaveLength(2);
      expect(s.connections[1]!.byCommand.RSET ?? 0).toBe(0);
    });
  }

  for (const mode of [modes[0], modes[2]]) {
    it(`${mode.name}: no RSET after a refused final "." (the transaction is over)`, async () => {
      const s = await server({ ...mode.server, faults: [{ command: 'DOT', reply: '554 5.7.1 Spam', times: 1 }] });
      const p = pool(s);
      const err = await rejection(p.send(message(0)));
      expect(err.code).toBe('EMESSAGE');
      expect(err.responseCode).toBe(554);
      await p.send(message(1));
      expect(s.inbox.messages).toHaveLength(1);
      expect(s.connections).toHaveLength(1);
      expect(s.connections[0]!.byCommand.RSET ?? 0).toBe(0);
      expect(s.connections[0]!.byCommand.MAIL).toBe(2);
    });
  }
});
