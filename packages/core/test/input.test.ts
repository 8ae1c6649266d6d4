import { describe, expect, it } from 'vitest';
import { type Message, SluiceError, createPool } from '../src/index.js';
import { message, pool, server } from './helpers.js';

describe('bad input is refused before anything is written', () => {
  const cases: Array<[string, Partial<Message['envelope']>]> = [
    ['CRLF in the sender', { from: 'a@example.com>\r\nRCPT TO:<victim@example.com' }],
    ['LF in a recipient', { to: ['b@example.com\nDATA'] }],
    ['NUL in a recipient', { to: ['b\0@example.com'] }],
    ['no @', { to: ['nobody'] }],
    ['angle brackets', { to: ['<b@example.com>'] }],
    ['no recipient', { to: [] }],
  ];
  for (const [name, envelope] of cases) {
    it(`refuses ${name} with EENVELOPE`, async () => {
      const s = await server();
      const p = pool(s);
      const err = (await p.send(message(0, envelope)).catch((e) => e)) as SluiceError;
      expect(err).toBeInstanceOf(SluiceError);
      expect(err.code).toBe('EENVELOPE');
      expect(err.outcome).toBe('rejected');
      expect(err.permanent).toBe(true);
      expect(s.connections).toHaveLength(0);
    });
  }

  it('refuses an empty or missing body with EMESSAGE', async () => {
    const s = await server();
    const p = pool(s);
    await expect(p.send({ envelope: message(0).envelope, body: '' })).rejects.toMatchObject({ code: 'EMESSAGE' });
    await expect(p.send({ envelope: message(0).envelope, body: 42 as unknown as string })).rejects.toMatchObject({ code: 'EMESSAGE' });
    expect(s.connections).toHaveLength(0);
  });

  it('refuses unknown options and bad values with EOPTIONS', () => {
    expect(() => createPool({ host: 'localhost', maxConnection: 3 } as never)).toThrow(/Unknown option "maxConnection"/);
    expect(() => createPool({ host: 'localhost', maxConnections: 0 })).toThrow(SluiceError);
    expect(() => createPool({ port: 25 })).toThrow(/host is required/);
  });
});

describe('extensions the message needs', () => {
  it('uses SMTPUTF8 for a UTF-8 address when offered', async () => {
    const s = await server();
    const p = pool(s);
    await p.send(message(0, { to: ['用户@例子.广告'] }));
    expect(s.inbox.messages[0]!.mailParams.SMTPUTF8).toBe(true);
    expect(s.inbox.messages[0]!.to).toEqual(['用户@例子.广告']);
  });

  it('fails clearly (ECAPABILITY) when SMTPUTF8 is needed and not offered', async () => {
    const s = await server({ extensions: { smtpUtf8: false } });
    const p = pool(s);
    const err = (await p.send(message(0, { to: ['josé@example.com'] })).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('ECAPABILITY');
    expect(err.outcome).toBe('rejected');
    expect(s.connections[0]!.byCommand.MAIL ?? 0).toBe(0);
  });

  it('declares BODY=8BITMIME for 8-bit content, and refuses it where 8BITMIME is not offered', async () => {
    const s = await server({ extensions: { chunking: false } });
    const p = pool(s);
    await p.send(message(0, {}, 'Subject: caf\u00e9\r\n\r\ncaf\u00e9\r\n'));
    expect(s.inbox.messages[0]!.mailParams.BODY).toBe('8BITMIME');
    await p.send(message(1));
    expect(s.inbox.messages[1]!.mailParams.BODY).toBeUndefined();

    const s2 = await server({ extensions: { chunking: false, eightBitMime: false } });
    const q = pool(s2);
    await expect(q.send(message(0, {}, 'Subject: x\r\n\r\ncaf\u00e9\r\n'))).rejects.toMatchObject({ code: 'ECAPABILITY' });
  });

  it('sends SIZE= and refuses a message larger than the SIZE the server announced', async () => {
    const s = await server({ extensions: { size: 1000 } });
    const p = pool(s);
    const body = message(0).body as string;
    await p.send(message(0));
    expect(s.inbox.messages[0]!.mailParams.SIZE).toBe(String(Buffer.byteLength(body)));
    const err = (await p.send(message(1, {}, `Subject: big\r\n\r\n${'x'.repeat(2000)}\r\n`)).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('EMESSAGE');
    expect(err.outcome).toBe('rejected');
    expect(s.inbox.messages).toHaveLength(1);
  });

  it('sends DSN parameters, and refuses DSN where it is not offered', async () => {
    const s = await server();
    const p = pool(s);
    await p.send(message(0, { dsn: { ret: 'HDRS', envid: 'id+1=x', notify: ['FAILURE', 'DELAY'], orcpt: { 'rcpt0@example.com': 'rcpt0@example.com' } } }));
    const m = s.inbox.messages[0]!;
    expect(m.mailParams).toMatchObject({ RET: 'HDRS', ENVID: 'id+2B1+3Dx' });
    expect(m.rcptParams[0]).toMatchObject({ NOTIFY: 'FAILURE,DELAY', ORCPT: 'rfc822;rcpt0@example.com' });

    const s2 = await server({ extensions: { dsn: false } });
    const q = pool(s2);
    await expect(q.send(message(0, { dsn: { notify: 'NEVER' } }))).rejects.toMatchObject({ code: 'ECAPABILITY' });
  });

  it('dot-stuffs DATA content and normalises bare LF; sends BDAT content as is', async () => {
    const body = 'Subject: dots\n\n.leading dot\n..two\nend';
    const s = await server({ extensions: { chunking: false } });
    await pool(s).send(message(0, {}, body));
    expect(s.inbox.messages[0]!.raw!.toString()).toBe('Subject: dots\r\n\r\n.leading dot\r\n..two\r\nend\r\n');

    const s2 = await server();
    await pool(s2).send(message(0, {}, body));
    expect(s2.inbox.messages[0]!.raw!.toString()).toBe('Subject: dots\r\n\r\n.leading dot\r\n..two\r\nend');
    // RFC 1870: SIZE counts the message as sent, with CRLF line ends.
    expect(s2.inbox.messages[0]!.mailParams.SIZE).toBe(String(s2.inbox.messages[0]!.raw!.length));
  });
});
