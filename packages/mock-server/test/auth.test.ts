import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MockServer, startMockServer } from '../src/index.js';
import { ehloClient } from './helpers.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const longToken = `ya29.${'a'.repeat(6000)}`;

let server: MockServer;
beforeAll(async () => {
  server = await startMockServer({
    users: { alice: 'secret', élise: 'mot de passe' },
    tokens: { 'carol@example.com': ['good', longToken] },
  });
});
afterAll(() => server.close());
beforeEach(() => {
  server.setFaults([]);
  server.clear();
});

describe('AUTH (RFC 4954)', () => {
  it('PLAIN with an initial response, and without one (334 with an empty challenge)', async () => {
    const c = await ehloClient(server.port);
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).toMatchObject({ code: 235, enhanced: '2.7.0' });
    c.close();
    const d = await ehloClient(server.port);
    const challenge = await d.command('AUTH PLAIN');
    expect(challenge).toMatchObject({ code: 334, text: '' });
    expect((await d.command(b64('alice\0alice\0secret'))).code).toBe(235);
    // UTF-8 user names and passwords.
    const e = await ehloClient(server.port);
    expect((await e.command(`AUTH PLAIN ${b64('\0élise\0mot de passe')}`)).code).toBe(235);
    d.close();
    e.close();
  });

  it('PLAIN failures: wrong password, acting for someone else, malformed', async () => {
    const c = await ehloClient(server.port);
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0nope')}`)).toMatchObject({ code: 535, enhanced: '5.7.8' });
    expect((await c.command(`AUTH PLAIN ${b64('bob\0alice\0secret')}`)).code).toBe(535);
    expect(await c.command('AUTH PLAIN not*base64')).toMatchObject({ code: 501, enhanced: '5.5.2' });
    expect((await c.command('AUTH PLAIN =')).code).toBe(501);
    c.close();
  });

  it('LOGIN, with and without the user name on the AUTH line', async () => {
    const c = await ehloClient(server.port);
    expect(unb64((await c.command('AUTH LOGIN')).text)).toBe('Username:');
    expect(unb64((await c.command(b64('alice'))).text)).toBe('Password:');
    expect((await c.command(b64('secret'))).code).toBe(235);
    c.close();
    const d = await ehloClient(server.port);
    expect(unb64((await d.command(`AUTH LOGIN ${b64('alice')}`)).text)).toBe('Password:');
    expect((await d.command(b64('wrong'))).code).toBe(535);
    d.close();
  });

  it('CRAM-MD5 with a fresh challenge each time', async () => {
    const c = await ehloClient(server.port);
    const first = await c.command('AUTH CRAM-MD5');
    expect(first.code).toBe(334);
    const challenge = unb64(first.text);
    expect(challenge).toMatch(/^<[0-9a-f]+\.\d+@mock\.sluice\.test>$/);
    const digest = createHmac('md5', 'secret').update(challenge).digest('hex');
    expect((await c.command(b64(`alice ${digest}`))).code).toBe(235);
    c.close();
    const d = await ehloClient(server.port);
    const second = unb64((await d.command('AUTH CRAM-MD5')).text);
    expect(second).not.toBe(challenge);
    expect((await d.command(b64(`alice ${digest}`))).code).toBe(535);
    d.close();
  });

  it('XOAUTH2: good token, and the bad-token 334 JSON then 535 exchange', async () => {
    const c = await ehloClient(server.port);
    expect((await c.command(`AUTH XOAUTH2 ${b64('user=carol@example.com\x01auth=Bearer good\x01\x01')}`)).code).toBe(235);
    c.close();

    const d = await ehloClient(server.port);
    const challenge = await d.command(`AUTH XOAUTH2 ${b64('user=carol@example.com\x01auth=Bearer stale\x01\x01')}`);
    expect(challenge.code).toBe(334);
    expect(JSON.parse(unb64(challenge.text))).toEqual({ status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' });
    expect(await d.command('')).toMatchObject({ code: 535, enhanced: '5.7.8' });
    d.close();
  });

  it('XOAUTH2 without an initial response, and with a token longer than a command line', async () => {
    const c = await ehloClient(server.port);
    expect((await c.command('AUTH XOAUTH2')).code).toBe(334);
    // RFC 4954 §4: responses may be up to 12288 octets, more than maxLineLength.
    expect((await c.command(b64(`user=carol@example.com\x01auth=Bearer ${longToken}\x01\x01`))).code).toBe(235);
    c.close();
  });

  it('"*" cancels the exchange with 501', async () => {
    const c = await ehloClient(server.port);
    await c.command('AUTH LOGIN');
    expect(await c.command('*')).toMatchObject({ code: 501, enhanced: '5.0.0' });
    expect((await c.command('NOOP')).code).toBe(250);
    c.close();
  });

  it('refuses AUTH twice, during a transaction, before EHLO, and unknown mechanisms', async () => {
    const c = await ehloClient(server.port);
    expect((await c.command('AUTH GSSAPI')).code).toBe(504);
    expect((await c.command('AUTH')).code).toBe(501);
    await c.command('MAIL FROM:<a@example.com>');
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).code).toBe(503);
    await c.command('RSET');
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).code).toBe(235);
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).code).toBe(503);
    c.close();
  });

  it('records the user on the message and offers nothing without users', async () => {
    const c = await ehloClient(server.port);
    await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`);
    c.write('MAIL FROM:<a@example.com> AUTH=<>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await c.read(3);
    c.write('x\r\n.\r\n');
    await c.reply();
    const [m] = await server.inbox.waitFor(1);
    expect(m.user).toBe('alice');
    expect(m.mailParams).toEqual({ AUTH: '<>' });
    c.close();

    const bare = await startMockServer();
    try {
      const d = await ehloClient(bare.port);
      expect((await d.command('EHLO x')).lines.some((l) => l.startsWith('AUTH'))).toBe(false);
      expect((await d.command('AUTH PLAIN')).code).toBe(503);
      d.close();
    } finally {
      await bare.close();
    }
  });

  it('offers only the configured mechanisms', async () => {
    const s = await startMockServer({ users: { alice: 'secret' }, extensions: { auth: ['LOGIN'] } });
    try {
      const c = await ehloClient(s.port);
      expect((await c.command('EHLO x')).lines).toContain('AUTH LOGIN');
      expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).code).toBe(504);
      c.close();
    } finally {
      await s.close();
    }
  });
});

describe('STARTTLS (RFC 3207)', () => {
  it('resets the session: EHLO again, AUTH forgotten, STARTTLS not offered twice', async () => {
    const c = await ehloClient(server.port);
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).code).toBe(235);
    expect(await c.command('STARTTLS')).toMatchObject({ code: 220, enhanced: '2.0.0' });
    await c.upgrade(server.ca);
    expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(503);
    const ehlo = await c.command('EHLO x');
    expect(ehlo.lines).not.toContain('STARTTLS');
    expect((await c.command('STARTTLS')).code).toBe(503);
    // Authenticated state was dropped with the clear-text session.
    expect((await c.command(`AUTH PLAIN ${b64('\0alice\0secret')}`)).code).toBe(235);
    expect(server.connections[0].secure).toBe(true);
    c.close();
  });

  it('discards clear-text commands pipelined after STARTTLS (CVE-2011-0411)', async () => {
    const c = await ehloClient(server.port);
    c.write('STARTTLS\r\nNOOP injected\r\n');
    expect((await c.reply()).code).toBe(220);
    await c.upgrade(server.ca);
    expect((await c.command('EHLO x')).code).toBe(250);
    expect(c.pending).toBe(0);
    expect(server.connections[0].byCommand.NOOP).toBeUndefined();
    c.close();
  });

  it('rejects STARTTLS with an argument', async () => {
    const c = await ehloClient(server.port);
    expect((await c.command('STARTTLS now')).code).toBe(501);
    c.close();
  });
});
