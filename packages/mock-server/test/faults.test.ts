import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FaultRule, type MockServer, startMockServer } from '../src/index.js';
import { ehloClient, RawClient, sleep, until } from './helpers.js';

let server: MockServer;
beforeAll(async () => {
  server = await startMockServer({ users: { alice: 'secret' } });
});
afterAll(() => server.close());
beforeEach(() => {
  server.setFaults([]);
  server.clear();
});

const ENVELOPE = 'MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n';

/** One DATA transaction; returns the codes of MAIL, RCPT, DATA and (when 354) the final reply. */
async function transaction(c: RawClient, rcpt = 'b@example.com'): Promise<number[]> {
  c.write(`MAIL FROM:<a@example.com>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
  const codes = (await c.read(3)).map((r) => r.code);
  if (codes[2] !== 354) return codes;
  c.write('Subject: t\r\n\r\nbody\r\n.\r\n');
  return [...codes, (await c.reply()).code];
}

describe('reply rules', () => {
  it('replies to RCPT for given recipients (string, list, pattern)', async () => {
    server.setFaults([
      { command: 'RCPT', recipient: 'Gone@Example.com', reply: '550 5.1.1 No such user' },
      { command: 'RCPT', recipient: ['full@example.com', 'over@example.com'], reply: { code: 452, enhanced: '4.2.2', text: 'Mailbox full' } },
      { command: 'RCPT', recipient: /@blocked\.test$/, reply: '554 5.7.1 Relay access denied' },
    ]);
    const c = await ehloClient(server.port);
    c.write(
      'MAIL FROM:<a@example.com>\r\nRCPT TO:<gone@example.com>\r\nRCPT TO:<full@example.com>\r\nRCPT TO:<x@blocked.test>\r\nRCPT TO:<ok@example.com>\r\nDATA\r\n',
    );
    const replies = await c.read(6);
    expect(replies.map((r) => r.code)).toEqual([250, 550, 452, 554, 250, 354]);
    expect(replies[2].text).toBe('4.2.2 Mailbox full');
    c.write('x\r\n.\r\n');
    await c.reply();
    const [m] = await server.inbox.waitFor(1);
    expect(m.to).toEqual(['ok@example.com']);
    c.close();
  });

  it('matches MAIL by sender, and counts transactions per server and per connection', async () => {
    server.setFaults([
      { command: 'MAIL', sender: /^bounce@/, reply: '553 5.7.1 Sender rejected' },
      { command: 'DOT', message: 2, reply: '451 4.3.0 Try again later' },
      { command: 'RCPT', messageOnConnection: 3, reply: '450 4.2.1 Slow down' },
    ]);
    const a = await ehloClient(server.port);
    expect((await a.command('MAIL FROM:<bounce@example.com>')).code).toBe(553); // transaction 1
    expect(await transaction(a)).toEqual([250, 250, 354, 451]); // transaction 2
    expect(await transaction(a)).toEqual([250, 450, 554]); // transaction 3 on this connection
    await a.command('RSET');
    const b = await ehloClient(server.port);
    expect(await transaction(b)).toEqual([250, 250, 354, 250]);
    const messages = await server.inbox.waitFor(1);
    expect(messages.map((m) => [m.sequence, m.connection, m.transaction])).toEqual([[4, 2, 1]]);
    a.close();
    b.close();
  });

  it('applies a rule on the Nth connection only, at most `times` times', async () => {
    server.setFaults([
      { command: 'EHLO', connection: 2, reply: '554 5.7.1 Not you' },
      { command: 'NOOP', times: 2, reply: '451 4.3.0 Busy' },
    ]);
    const first = await RawClient.connect(server.port);
    await first.reply();
    expect((await first.command('EHLO x')).code).toBe(250);
    const second = await RawClient.connect(server.port);
    await second.reply();
    expect((await second.command('EHLO x')).code).toBe(554);
    // Not greeted: MAIL is out of sequence.
    expect((await second.command('MAIL FROM:<a@example.com>')).code).toBe(503);
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await first.command('NOOP')).code);
    expect(codes).toEqual([451, 451, 250, 250]);
    // setFaults resets the counters.
    server.setFaults([{ command: 'NOOP', times: 1, reply: '451 4.3.0 Busy' }]);
    expect((await first.command('NOOP')).code).toBe(451);
    first.close();
    second.close();
  });

  it('says 452 after N recipients (afterRecipients)', async () => {
    server.setFaults([{ command: 'RCPT', afterRecipients: 2, reply: '452 4.5.3 Too many recipients' }]);
    const c = await ehloClient(server.port);
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<1@x.test>\r\nRCPT TO:<2@x.test>\r\nRCPT TO:<3@x.test>\r\nRCPT TO:<4@x.test>\r\n');
    expect((await c.read(5)).map((r) => r.code)).toEqual([250, 250, 250, 452, 452]);
    c.close();
  });

  it('closes the connection after a 421 reply (RFC 5321 §3.8)', async () => {
    server.setFaults([{ command: 'RCPT', reply: '421 4.7.0 Going down' }]);
    const c = await ehloClient(server.port);
    c.write(`${ENVELOPE}`);
    const replies = await c.read(2);
    expect(replies.map((r) => r.code)).toEqual([250, 421]);
    await c.waitClose();
    // The DATA after the 421 was never answered.
    expect(c.pending).toBe(0);
  });

  it('replaces replies to CONNECT, STARTTLS, AUTH, RSET and QUIT', async () => {
    server.setFaults([
      { command: 'STARTTLS', reply: '454 4.7.0 TLS not available' },
      { command: 'AUTH', reply: '454 4.7.0 Temporary authentication failure' },
      { command: 'RSET', reply: '250 2.0.0 Flushed' },
      { command: 'QUIT', reply: '221 2.0.0 See you' },
    ]);
    const c = await ehloClient(server.port);
    expect((await c.command('STARTTLS')).code).toBe(454);
    expect((await c.command(`AUTH PLAIN ${Buffer.from('\0alice\0secret').toString('base64')}`)).code).toBe(454);
    // Not authenticated after the failure: AUTH again is allowed.
    server.setFaults([
      { command: 'QUIT', reply: '221 2.0.0 See you' },
      { command: 'RSET', reply: '250 2.0.0 Flushed' },
    ]);
    expect((await c.command(`AUTH PLAIN ${Buffer.from('\0alice\0secret').toString('base64')}`)).code).toBe(235);
    expect((await c.command('RSET')).text).toBe('2.0.0 Flushed');
    expect((await c.command('QUIT')).text).toBe('2.0.0 See you');
    await c.waitClose();

    server.setFaults([{ command: 'CONNECT', reply: '554 5.7.1 No service for you' }]);
    const d = await RawClient.connect(server.port);
    expect((await d.reply()).code).toBe(554);
    // RFC 5321 §3.1: only QUIT is served after a 554 greeting.
    expect((await d.command('EHLO x')).code).toBe(503);
    expect((await d.command('QUIT')).code).toBe(221);
    await d.waitClose();
  });

  it('turns an exception inside the session into 421 4.3.0 and a process warning, not a crash', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const explosive = /x/;
      explosive.test = () => {
        throw new Error('boom');
      };
      server.setFaults([{ command: 'RCPT', recipient: explosive, reply: '550 5.1.1 No' }]);
      const c = await ehloClient(server.port);
      c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n');
      const replies = await c.read(2);
      expect(replies.map((r) => r.code)).toEqual([250, 421]);
      expect(replies[1].enhanced).toBe('4.3.0');
      await c.waitClose();
      await until(() => warnings.length > 0);
      expect(warnings[0].name).toBe('SluiceMockServerError');
      expect(warnings[0].message).toContain('boom');
      server.setFaults([]);
      const d = await ehloClient(server.port);
      expect((await d.command('NOOP')).code).toBe(250);
      d.close();
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('rejects bad rules up front', () => {
    const bad: unknown[] = [
      { command: 'HELLO', reply: '500 x' },
      { command: 'RCPT', action: 'explode' },
      { command: 'RCPT' },
      { command: 'RCPT', reply: 'not a reply' },
      { command: 'RCPT', reply: '550 x', probability: 2 },
      { command: 'RCPT', action: 'delay' },
    ];
    for (const rule of bad)
      expect(() => server.setFaults([rule as FaultRule]), JSON.stringify(rule)).toThrow(expect.objectContaining({ code: 'EMOCKOPTIONS' }));
  });
});

describe('connection faults', () => {
  it('close: 421 and the connection ends', async () => {
    server.setFaults([{ command: 'DATA', action: 'close' }]);
    const c = await ehloClient(server.port);
    c.write(ENVELOPE);
    const replies = await c.read(3);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 421]);
    expect(replies[2].enhanced).toBe('4.7.0');
    await c.waitClose();
  });

  it('close with a custom reply, at connect', async () => {
    server.setFaults([{ command: 'CONNECT', action: 'close', reply: '421 4.3.2 System not accepting network messages' }]);
    const c = await RawClient.connect(server.port);
    expect((await c.reply()).text).toBe('4.3.2 System not accepting network messages');
    await c.waitClose();
  });

  it('drop: the socket is destroyed without a reply to the command', async () => {
    server.setFaults([{ command: 'RCPT', action: 'drop' }]);
    const c = await ehloClient(server.port);
    c.write(ENVELOPE);
    await c.waitClose();
    // What was answered before the RCPT still arrived; nothing after.
    const got = [];
    while (c.pending > 0) got.push((await c.reply()).code);
    expect(got).toEqual([250]);
    expect(server.inbox.messages).toHaveLength(0);
  });

  it('drop at DOT: the message is not recorded', async () => {
    server.setFaults([{ command: 'DOT', action: 'drop' }]);
    const c = await ehloClient(server.port);
    c.write(ENVELOPE);
    await c.read(3);
    c.write('body\r\n.\r\n');
    await c.waitClose();
    await sleep(20);
    expect(server.inbox.messages).toHaveLength(0);
    await until(() => server.connections[0].closed);
  });

  it('drop at DOT with deliver: true: recorded although the client saw no reply', async () => {
    server.setFaults([{ command: 'DOT', action: 'drop', deliver: true }]);
    const c = await ehloClient(server.port);
    c.write(ENVELOPE);
    await c.read(3);
    c.write('body\r\n.\r\n');
    await c.waitClose();
    expect(c.pending).toBe(0);
    const [m] = await server.inbox.waitFor(1);
    expect(m.raw?.toString()).toBe('body\r\n');
  });

  it('drop-in-body: 354, then the connection dies after afterBytes of content', async () => {
    server.setFaults([{ command: 'DATA', action: 'drop-in-body', afterBytes: 100 }]);
    const c = await ehloClient(server.port);
    c.write(ENVELOPE);
    expect((await c.read(3)).map((r) => r.code)).toEqual([250, 250, 354]);
    const stats = server.connections[0];
    const before = stats.reads;
    c.write('x'.repeat(50));
    await until(() => stats.reads > before);
    expect(c.closed).toBe(false);
    c.write(`${'x'.repeat(60)}\r\n.\r\n`);
    await c.waitClose();
    expect(c.pending).toBe(0);
    expect(server.inbox.messages).toHaveLength(0);
  });

  it('drop-in-body on BDAT', async () => {
    server.setFaults([{ command: 'BDAT_LAST', action: 'drop-in-body', afterBytes: 10 }]);
    const c = await ehloClient(server.port);
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 5\r\n12345BDAT 20 LAST\r\n12345678901234567890');
    await c.waitClose();
    const codes = [];
    while (c.pending > 0) codes.push((await c.reply()).code);
    expect(codes).toEqual([250, 250, 250]);
    expect(server.inbox.messages).toHaveLength(0);
  });

  it('stall: the command is never answered and the connection stays open', async () => {
    server.setFaults([{ command: 'RCPT', action: 'stall' }]);
    const c = await ehloClient(server.port);
    c.write(ENVELOPE);
    expect((await c.reply()).code).toBe(250);
    await expect(c.reply(300)).rejects.toThrow(/timeout/);
    expect(c.closed).toBe(false);
    expect(server.connections[0].closed).toBe(false);
    c.close();
  });

  it('delay: the reply comes delayMs later, and the replies after it wait too', async () => {
    server.setFaults([{ command: 'RCPT', action: 'delay', delayMs: 300 }]);
    const c = await ehloClient(server.port);
    const start = performance.now();
    c.write(ENVELOPE);
    const replies = await c.read(3);
    expect(performance.now() - start).toBeGreaterThanOrEqual(290);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354]);
    // RFC 2920 §3.2: the group's replies still went out together.
    expect(c.reads).toBe(3);
    c.write('x\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    c.close();
  });

  it('delay on the greeting', async () => {
    server.setFaults([{ command: 'CONNECT', action: 'delay', delayMs: 200 }]);
    const start = performance.now();
    const c = await RawClient.connect(server.port);
    await c.reply();
    expect(performance.now() - start).toBeGreaterThanOrEqual(190);
    c.close();
  });

  it('BDAT: a rule on one chunk fails the transaction, BDAT_LAST only hits the last one', async () => {
    server.setFaults([
      { command: 'BDAT', messageOnConnection: 1, reply: '451 4.3.0 Chunk lost' },
      { command: 'BDAT_LAST', messageOnConnection: 2, reply: '554 5.6.0 Rejected' },
    ]);
    const c = await ehloClient(server.port);
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 3\r\nabcBDAT 3 LAST\r\ndef');
    expect((await c.read(4)).map((r) => r.code)).toEqual([250, 250, 451, 503]);
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 3\r\nabcBDAT 3 LAST\r\ndef');
    expect((await c.read(4)).map((r) => r.code)).toEqual([250, 250, 250, 554]);
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 3\r\nabcBDAT 3 LAST\r\ndef');
    expect((await c.read(4)).map((r) => r.code)).toEqual([250, 250, 250, 250]);
    const messages = await server.inbox.waitFor(1);
    expect(messages.map((m) => m.transaction)).toEqual([3]);
    c.close();
  });
});

describe('probabilistic faults', () => {
  const rules: FaultRule[] = [{ command: 'RCPT', probability: 0.3, reply: '451 4.3.0 Random failure' }];

  async function pattern(s: MockServer): Promise<string> {
    const c = await ehloClient(s.port);
    c.write(`MAIL FROM:<a@example.com>\r\n${'RCPT TO:<b@example.com>\r\n'.repeat(60)}`);
    const replies = await c.read(61);
    c.close();
    return replies
      .slice(1)
      .map((r) => (r.code === 250 ? '.' : 'x'))
      .join('');
  }

  it('is reproducible from the seed', async () => {
    server.setFaults(rules);
    const first = await pattern(server);
    server.clear(); // restarts the PRNG
    const second = await pattern(server);
    expect(second).toBe(first);
    const failures = first.split('').filter((c) => c === 'x').length;
    expect(failures).toBeGreaterThan(5);
    expect(failures).toBeLessThan(35);

    const same = await startMockServer({ seed: 1, faults: rules });
    const other = await startMockServer({ seed: 99, faults: rules });
    try {
      expect(await pattern(same)).toBe(first);
      expect(await pattern(other)).not.toBe(first);
    } finally {
      await same.close();
      await other.close();
    }
  });
});
