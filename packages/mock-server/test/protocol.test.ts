import { describe, expect, it } from 'vitest';
import { startMockServer } from '../src/index.js';
import { useMockServer } from '../src/vitest.js';
import { ehloClient, RawClient, until } from './helpers.js';

// One server per file, reset before each test (the package's own vitest helper).
const smtp = useMockServer();

describe('RFC 5321 session', () => {
  it('greets, lists extensions and runs a DATA transaction', async () => {
    const c = await RawClient.connect(smtp.server.port);
    const greeting = await c.reply();
    expect(greeting.code).toBe(220);
    expect(greeting.text).toMatch(/^mock\.sluice\.test ESMTP/);
    const ehlo = await c.command('EHLO client.test');
    expect(ehlo.code).toBe(250);
    expect(ehlo.lines).toEqual([
      'mock.sluice.test',
      'PIPELINING',
      'SIZE 52428800',
      '8BITMIME',
      'SMTPUTF8',
      'DSN',
      'ENHANCEDSTATUSCODES',
      'STARTTLS',
      'CHUNKING',
    ]);
    expect(await c.command('MAIL FROM:<a@example.com>')).toMatchObject({ code: 250, enhanced: '2.1.0' });
    expect(await c.command('RCPT TO:<b@example.com>')).toMatchObject({ code: 250, enhanced: '2.1.5' });
    expect(await c.command('RCPT TO:<c@example.com>')).toMatchObject({ code: 250 });
    expect((await c.command('DATA')).code).toBe(354);
    c.write('Subject: hi\r\n\r\nHello\r\n.\r\n');
    const queued = await c.reply();
    expect(queued.code).toBe(250);
    expect(queued.text).toMatch(/^2\.0\.0 Ok: queued as [0-9A-F]{10}$/);
    expect((await c.command('QUIT')).code).toBe(221);
    await c.waitClose();

    const [m] = await smtp.server.inbox.waitFor(1);
    expect(m).toMatchObject({
      from: 'a@example.com',
      to: ['b@example.com', 'c@example.com'],
      via: 'DATA',
      connection: 1,
      transaction: 1,
      sequence: 1,
      secure: false,
      user: null,
      size: 22,
      mailParams: {},
      rcptParams: [{}, {}],
    });
    expect(m.raw?.toString()).toBe('Subject: hi\r\n\r\nHello\r\n');
    expect(m.helo).toBe('client.test');
    expect(queued.text.endsWith(m.id)).toBe(true);
    await until(() => smtp.server.connections[0].closed);
    expect(smtp.server.connections[0]).toMatchObject({ closed: true, transactions: 1, byCommand: { EHLO: 1, MAIL: 1, RCPT: 2, DATA: 1, QUIT: 1 } });
  });

  it('removes dot-stuffing and keeps bare LF as received', async () => {
    const c = await ehloClient(smtp.server.port);
    await c.command('MAIL FROM:<a@example.com>');
    await c.command('RCPT TO:<b@example.com>');
    await c.command('DATA');
    // Dot-stuffed lines, a bare LF followed by a dot (not a line start), an empty message end.
    c.write('..leading dot\r\n...two\r\n.\r\nno\n.end\r\nlast\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    const [m] = await smtp.server.inbox.waitFor(1);
    expect(m.raw?.toString()).toBe('.leading dot\r\n..two\r\n');
    // The rest of that write were commands: ".\r\n" ended the message first.
    c.close();
  });

  it('finds the end of data across every possible chunk boundary', async () => {
    // Content lines "a", ".b", ".", ".\rx", "c", dot-stuffed on the wire.
    const wire = 'a\r\n..b\r\n..\r\n..\rx\r\nc\r\n.\r\n';
    const expected = 'a\r\n.b\r\n.\r\n.\rx\r\nc\r\n';
    for (let split = 1; split < wire.length; split++) {
      const c = await ehloClient(smtp.server.port);
      const stats = smtp.server.connections[smtp.server.connections.length - 1];
      c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
      await c.read(3);
      const before = stats.reads;
      c.write(wire.slice(0, split));
      await until(() => stats.reads > before);
      c.write(wire.slice(split));
      expect((await c.reply()).code).toBe(250);
      c.close();
    }
    const messages = await smtp.server.inbox.waitFor(wire.length - 1);
    for (const m of messages) expect(m.raw?.toString()).toBe(expected);
  });

  it('accepts an empty message', async () => {
    const c = await ehloClient(smtp.server.port);
    c.write('MAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await c.read(3);
    c.write('.\r\n');
    expect((await c.reply()).code).toBe(250);
    const [m] = await smtp.server.inbox.waitFor(1);
    expect(m.from).toBe('');
    expect(m.size).toBe(0);
    expect(m.raw?.length).toBe(0);
    c.close();
  });

  it('answers RSET, NOOP, HELP and VRFY', async () => {
    const c = await ehloClient(smtp.server.port);
    await c.command('MAIL FROM:<a@example.com>');
    expect(await c.command('RSET')).toMatchObject({ code: 250, enhanced: '2.0.0' });
    // RSET cleared the transaction: RCPT is out of sequence, MAIL is not nested.
    expect((await c.command('RCPT TO:<b@example.com>')).code).toBe(503);
    expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(250);
    expect(await c.command('NOOP')).toMatchObject({ code: 250, enhanced: '2.0.0' });
    expect((await c.command('NOOP whatever')).code).toBe(250);
    expect((await c.command('HELP')).code).toBe(214);
    expect((await c.command('VRFY someone')).code).toBe(252);
    expect((await c.command('QUIT')).text).toBe('2.0.0 Bye');
    c.close();
  });

  it('rejects commands out of sequence with the RFC codes', async () => {
    const c = await RawClient.connect(smtp.server.port);
    await c.reply();
    expect(await c.command('MAIL FROM:<a@example.com>')).toMatchObject({ code: 503, enhanced: '5.5.1' });
    expect((await c.command('EHLO')).code).toBe(501);
    expect((await c.command('HELO client.test')).text).toBe('mock.sluice.test');
    expect((await c.command('RCPT TO:<b@example.com>')).code).toBe(503);
    expect((await c.command('DATA')).code).toBe(503);
    expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(250);
    expect(await c.command('MAIL FROM:<a@example.com>')).toMatchObject({ code: 503, enhanced: '5.5.1' });
    expect(await c.command('DATA')).toMatchObject({ code: 554, enhanced: '5.5.1', text: '5.5.1 Error: No valid recipients' });
    expect((await c.command('DATA extra')).code).toBe(501);
    expect((await c.command('FOO bar')).code).toBe(500);
    expect((await c.command('')).code).toBe(500);
    expect((await c.command('EXPN list')).code).toBe(502);
    c.close();
  });

  it('validates addresses and parameters', async () => {
    const c = await ehloClient(smtp.server.port);
    expect((await c.command('MAIL FROM:a@example.com')).code).toBe(501);
    expect((await c.command('MAIL FROM:<a b@example.com>')).code).toBe(501);
    expect((await c.command('MAIL FROM:<a@example.com> SIZE=abc')).code).toBe(501);
    expect((await c.command('MAIL FROM:<a@example.com> FOO=1')).code).toBe(555);
    expect((await c.command('MAIL FROM:<a@example.com> SIZE=999999999')).code).toBe(552);
    expect((await c.command('MAIL FROM:<josé@example.com>')).code).toBe(553);
    expect((await c.command('MAIL FROM:<a@example.com> BODY=BINARYMIME')).code).toBe(501);
    expect((await c.command('MAIL FROM: <@relay.example:a@example.com> SIZE=10 BODY=8BITMIME')).code).toBe(250);
    expect((await c.command('RCPT TO:<"john doe"@example.com>')).code).toBe(250);
    expect((await c.command('RCPT TO:<Postmaster>')).code).toBe(250);
    expect((await c.command('RCPT TO:<nobody>')).code).toBe(501);
    expect((await c.command('RCPT TO:<b@example.com> FOO')).code).toBe(555);
    c.close();
  });

  it('closes after QUIT and keeps serving others', async () => {
    const a = await ehloClient(smtp.server.port);
    const b = await ehloClient(smtp.server.port);
    expect(smtp.server.openConnections).toBe(2);
    expect((await a.command('QUIT')).code).toBe(221);
    await a.waitClose();
    expect((await b.command('NOOP')).code).toBe(250);
    b.close();
  });
});

describe('HELO and extensions switched off', () => {
  it('refuses ESMTP parameters after HELO', async () => {
    const c = await RawClient.connect(smtp.server.port);
    await c.reply();
    await c.command('HELO client.test');
    expect((await c.command('MAIL FROM:<a@example.com> SIZE=10')).code).toBe(555);
    expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(250);
    c.close();
  });

  it('drops enhanced status codes and unadvertised extensions', async () => {
    const s = await startMockServer({
      extensions: {
        pipelining: false,
        chunking: false,
        size: false,
        eightBitMime: false,
        smtpUtf8: false,
        dsn: false,
        enhancedStatusCodes: false,
        starttls: false,
      },
    });
    try {
      const c = await RawClient.connect(s.port);
      await c.reply();
      const ehlo = await c.command('EHLO client.test');
      expect(ehlo.lines).toEqual(['mock.sluice.test']);
      const mail = await c.command('MAIL FROM:<a@example.com>');
      expect(mail).toMatchObject({ code: 250, text: 'Ok', enhanced: null });
      expect((await c.command('RCPT TO:<b@example.com> NOTIFY=NEVER')).code).toBe(555);
      expect((await c.command('RSET')).text).toBe('Ok');
      expect((await c.command('MAIL FROM:<a@example.com> SIZE=10')).code).toBe(555);
      expect((await c.command('MAIL FROM:<a@example.com> BODY=8BITMIME')).code).toBe(555);
      expect((await c.command('MAIL FROM:<a@example.com> SMTPUTF8')).code).toBe(555);
      expect((await c.command('MAIL FROM:<a@example.com> RET=FULL')).code).toBe(555);
      expect((await c.command('STARTTLS')).code).toBe(502);
      expect((await c.command('BDAT 10 LAST')).code).toBe(500);
      const bad = await c.command('FOO');
      expect(bad).toMatchObject({ code: 500, enhanced: null, text: 'Error: command not recognized' });
      c.close();
    } finally {
      await s.close();
    }
  });
});

describe('SMTPUTF8 and DSN', () => {
  it('accepts UTF-8 addresses in an SMTPUTF8 transaction', async () => {
    const c = await ehloClient(smtp.server.port);
    expect((await c.command('MAIL FROM:<josé@exämple.com> SMTPUTF8 BODY=8BITMIME')).code).toBe(250);
    expect((await c.command('RCPT TO:<日本@例え.jp>')).code).toBe(250);
    await c.command('DATA');
    c.write('Subject: é\r\n\r\nü\r\n.\r\n');
    expect((await c.reply()).code).toBe(250);
    const [m] = await smtp.server.inbox.waitFor(1);
    expect(m.from).toBe('josé@exämple.com');
    expect(m.to).toEqual(['日本@例え.jp']);
    expect(m.mailParams).toEqual({ SMTPUTF8: true, BODY: '8BITMIME' });
    expect(m.raw?.toString('utf8')).toBe('Subject: é\r\n\r\nü\r\n');
    c.close();
  });

  it('records and validates DSN parameters', async () => {
    const c = await ehloClient(smtp.server.port);
    expect((await c.command('MAIL FROM:<a@example.com> RET=HDRS ENVID=abc+2Bdef')).code).toBe(250);
    expect((await c.command('RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com')).code).toBe(250);
    expect((await c.command('RCPT TO:<c@example.com> NOTIFY=NEVER')).code).toBe(250);
    expect((await c.command('RCPT TO:<d@example.com> NOTIFY=NEVER,SUCCESS')).code).toBe(501);
    expect((await c.command('RCPT TO:<d@example.com> NOTIFY=SOMETIMES')).code).toBe(501);
    expect((await c.command('RCPT TO:<d@example.com> ORCPT=b@example.com')).code).toBe(501);
    await c.command('DATA');
    c.write('x\r\n.\r\n');
    await c.reply();
    const [m] = await smtp.server.inbox.waitFor(1);
    expect(m.mailParams).toEqual({ RET: 'HDRS', ENVID: 'abc+2Bdef' });
    expect(m.rcptParams).toEqual([{ NOTIFY: 'SUCCESS,FAILURE', ORCPT: 'rfc822;b@example.com' }, { NOTIFY: 'NEVER' }]);
    expect((await c.command('MAIL FROM:<a@example.com> RET=SOME')).code).toBe(501);
    expect((await c.command('MAIL FROM:<a@example.com> ENVID=a=b')).code).toBe(501);
    expect((await c.command('MAIL FROM:<a@example.com> RET=FULL RET=FULL')).code).toBe(501);
    c.close();
  });
});
