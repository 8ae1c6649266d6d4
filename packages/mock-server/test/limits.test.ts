import { describe, expect, it } from 'vitest';
import { startMockServer } from '../src/index.js';
import { ehloClient, RawClient, sleep, until, withServer } from './helpers.js';

const plain = (user: string, pass: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}`;

describe('connection limits', () => {
  it('refuses connections beyond maxConnections with 421 4.4.5', () =>
    withServer({ maxConnections: 2 }, async (server) => {
      const a = await ehloClient(server.port);
      const b = await ehloClient(server.port);
      const c = await RawClient.connect(server.port);
      expect(await c.reply()).toMatchObject({ code: 421, enhanced: '4.4.5' });
      await c.waitClose();
      a.close();
      await until(() => server.connections[0].closed);
      const d = await RawClient.connect(server.port);
      expect((await d.reply()).code).toBe(220);
      b.close();
      d.close();
    }));

  it('ends the connection at the MAIL beyond maxMessagesPerConnection', () =>
    withServer({ maxMessagesPerConnection: 2 }, async (server) => {
      const c = await ehloClient(server.port);
      for (let i = 0; i < 2; i++) {
        c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
        await c.read(3);
        c.write('x\r\n.\r\n');
        expect((await c.reply()).code).toBe(250);
      }
      expect(await c.command('MAIL FROM:<a@example.com>')).toMatchObject({ code: 421, enhanced: '4.4.5' });
      await c.waitClose();
      expect(server.connections[0].transactions).toBe(3);
    }));

  it('answers 452 4.5.3 beyond maxRecipients', () =>
    withServer({ maxRecipients: 2 }, async (server) => {
      const c = await ehloClient(server.port);
      c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<1@x.test>\r\nRCPT TO:<2@x.test>\r\nRCPT TO:<3@x.test>\r\n');
      const replies = await c.read(4);
      expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 452]);
      expect(replies[3].enhanced).toBe('4.5.3');
      c.close();
    }));

  it('closes idle connections with 421 4.4.2', () =>
    withServer({ idleTimeout: 150 }, async (server) => {
      const c = await ehloClient(server.port);
      await sleep(60);
      expect((await c.command('NOOP')).code).toBe(250); // activity resets the timer
      const idle = await c.reply(2000);
      expect(idle).toMatchObject({ code: 421, enhanced: '4.4.2' });
      await c.waitClose();
    }));
});

describe('message size', () => {
  it('advertises SIZE, refuses a declared size over it, and 552s content over it after reading it', () =>
    withServer({ extensions: { size: 1000 } }, async (server) => {
      const c = await ehloClient(server.port);
      expect((await c.command('EHLO x')).lines).toContain('SIZE 1000');
      expect(await c.command('MAIL FROM:<a@example.com> SIZE=1001')).toMatchObject({ code: 552, enhanced: '5.3.4' });
      c.write('MAIL FROM:<a@example.com> SIZE=900\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
      await c.read(3);
      c.write(`${'y'.repeat(2000)}\r\n.\r\n`);
      expect(await c.reply()).toMatchObject({ code: 552, enhanced: '5.3.4' });
      // The content was consumed, the session goes on.
      expect((await c.command('NOOP')).code).toBe(250);
      expect(server.inbox.messages).toHaveLength(0);
      c.close();
    }));

  it('enforces maxMessageSize even when SIZE is not advertised', () =>
    withServer({ extensions: { size: false }, maxMessageSize: 10 }, async (server) => {
      const c = await ehloClient(server.port);
      expect((await c.command('EHLO x')).lines.some((l) => l.startsWith('SIZE'))).toBe(false);
      c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
      await c.read(3);
      c.write('12345678901234567890\r\n.\r\n');
      expect((await c.reply()).code).toBe(552);
      c.close();
    }));
});

describe('rate limit', () => {
  it('answers 454 4.7.0 to MAIL beyond rateLimit per second, then recovers', () =>
    withServer({ rateLimit: 5 }, async (server) => {
      const c = await ehloClient(server.port);
      c.write('MAIL FROM:<a@example.com>\r\nRSET\r\n'.repeat(8));
      const codes = (await c.read(16)).filter((_, i) => i % 2 === 0).map((r) => r.code);
      expect(codes).toEqual([250, 250, 250, 250, 250, 454, 454, 454]);
      await sleep(450);
      expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(250);
      c.close();
    }));

  it('can be changed at run time', () =>
    withServer({}, async (server) => {
      server.configure({ rateLimit: 1 });
      const c = await ehloClient(server.port);
      c.write('MAIL FROM:<a@example.com>\r\nRSET\r\nMAIL FROM:<a@example.com>\r\n');
      expect((await c.read(3)).map((r) => r.code)).toEqual([250, 250, 454]);
      c.close();
    }));
});

describe('TLS and AUTH requirements', () => {
  it('requireTLS: 530 to MAIL and AUTH until STARTTLS; AUTH only advertised over TLS', () =>
    withServer({ requireTLS: true, users: { alice: 'secret' } }, async (server) => {
      const c = await ehloClient(server.port);
      const ehlo = await c.command('EHLO x');
      expect(ehlo.lines).toContain('STARTTLS');
      expect(ehlo.lines.some((l) => l.startsWith('AUTH'))).toBe(false);
      expect(await c.command('MAIL FROM:<a@example.com>')).toMatchObject({ code: 530, enhanced: '5.7.0' });
      expect((await c.command(plain('alice', 'secret'))).code).toBe(530);
      expect((await c.command('STARTTLS')).code).toBe(220);
      await c.upgrade(server.ca);
      const secureEhlo = await c.command('EHLO x');
      expect(secureEhlo.lines).toContain('AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2');
      expect(secureEhlo.lines).not.toContain('STARTTLS');
      expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(250);
      c.close();
    }));

  it('requireAuth: 530 to MAIL until AUTH', () =>
    withServer({ requireAuth: true, users: { alice: 'secret' } }, async (server) => {
      const c = await ehloClient(server.port);
      expect(await c.command('MAIL FROM:<a@example.com>')).toMatchObject({ code: 530, enhanced: '5.7.0' });
      expect((await c.command(plain('alice', 'secret'))).code).toBe(235);
      expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(250);
      c.close();
    }));
});

describe('profiles', () => {
  it('ses: no PIPELINING or CHUNKING, STARTTLS required, throttled at 14/s', () =>
    withServer({ profile: 'ses' }, async (server) => {
      const c = await ehloClient(server.port);
      const ehlo = await c.command('EHLO x');
      expect(ehlo.lines).not.toContain('PIPELINING');
      expect(ehlo.lines).not.toContain('CHUNKING');
      expect(ehlo.lines).toContain('SIZE 10485760');
      expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(530);
      await c.command('STARTTLS');
      await c.upgrade(server.ca);
      await c.command('EHLO x');
      // One write, processed in one go: the first 14 fit the bucket.
      c.write('MAIL FROM:<a@example.com>\r\nRSET\r\n'.repeat(16));
      const codes = (await c.read(32)).filter((_, i) => i % 2 === 0).map((r) => r.code);
      expect(codes.slice(0, 14).every((code) => code === 250)).toBe(true);
      expect(codes.slice(14)).toEqual([454, 454]);
      c.close();
    }));

  it('explicit options override the profile', () =>
    withServer({ profile: 'ses', extensions: { pipelining: true }, requireTLS: false, rateLimit: 0 }, async (server) => {
      const c = await ehloClient(server.port);
      const ehlo = await c.command('EHLO x');
      expect(ehlo.lines).toContain('PIPELINING');
      expect(ehlo.lines).not.toContain('CHUNKING');
      expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(250);
      c.close();
    }));

  it('socketlabs: 20 connections, 50 messages per connection', () =>
    withServer({ profile: 'socketlabs' }, async (server) => {
      const clients = await Promise.all(Array.from({ length: 20 }, () => ehloClient(server.port)));
      const extra = await RawClient.connect(server.port);
      expect(await extra.reply()).toMatchObject({ code: 421, enhanced: '4.4.5' });
      const c = clients[0];
      c.write('MAIL FROM:<a@example.com>\r\nRSET\r\n'.repeat(50));
      await c.read(100);
      expect((await c.command('MAIL FROM:<a@example.com>')).code).toBe(421);
      for (const client of clients) client.close();
      extra.close();
    }));

  it('m365: 432 4.3.2 for a 4th concurrent connection of the same account; no CHUNKING', () =>
    withServer({ profile: 'm365', users: { alice: 'secret', bob: 'pw' } }, async (server) => {
      const login = async (user: string, pass: string) => {
        const c = await ehloClient(server.port);
        expect((await c.command(plain(user, pass))).code).toBe(235);
        return c;
      };
      const alice = [await login('alice', 'secret'), await login('alice', 'secret'), await login('alice', 'secret')];
      for (const c of alice) expect((await c.command('MAIL FROM:<alice@example.com>')).code).toBe(250);
      const fourth = await login('alice', 'secret');
      expect((await fourth.command('EHLO x')).lines).not.toContain('CHUNKING');
      expect(await fourth.command('MAIL FROM:<alice@example.com>')).toMatchObject({ code: 432, enhanced: '4.3.2' });
      await fourth.waitClose();
      // Another account is not affected; a freed slot can be taken again.
      const bob = await login('bob', 'pw');
      expect((await bob.command('MAIL FROM:<bob@example.com>')).code).toBe(250);
      alice[0].close();
      await until(() => server.connections[0].closed);
      const again = await login('alice', 'secret');
      expect((await again.command('MAIL FROM:<alice@example.com>')).code).toBe(250);
      for (const c of [...alice, bob, again]) c.close();
    }));

  it('postfix: the Postfix extension set and SIZE', () =>
    withServer({ profile: 'postfix' }, async (server) => {
      const c = await ehloClient(server.port);
      const ehlo = await c.command('EHLO x');
      expect(ehlo.lines).toEqual(expect.arrayContaining(['PIPELINING', 'SIZE 10240000', '8BITMIME', 'SMTPUTF8', 'DSN', 'ENHANCEDSTATUSCODES', 'CHUNKING']));
      c.close();
    }));

  it('rejects unknown profiles and bad option values', async () => {
    await expect(startMockServer({ profile: 'gmail' as never })).rejects.toThrow(/profile/);
    await expect(startMockServer({ rtt: -1 })).rejects.toThrow(/rtt/);
  });
});

describe('configure()', () => {
  it('changes extensions at run time and refuses startup-only options', () =>
    withServer({}, async (server) => {
      server.configure({ extensions: { pipelining: false } });
      const c = await ehloClient(server.port);
      const ehlo = await c.command('EHLO x');
      expect(ehlo.lines).not.toContain('PIPELINING');
      expect(ehlo.lines).toContain('CHUNKING');
      expect(() => server.configure({ port: 1 })).toThrow(/port/);
      expect(() => server.configure({ maxLineLength: -5 })).toThrow(/maxLineLength/);
      // A failed configure() changed nothing.
      expect((await c.command('EHLO x')).lines).toContain('CHUNKING');
      server.reset?.();
      expect((await c.command('EHLO x')).lines).toContain('PIPELINING');
      c.close();
    }));
});
