import { once } from 'node:events';
import http from 'node:http';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { simpleParser } from 'mailparser';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import nodemailer from 'nodemailer';
import SMTPTransport from 'nodemailer/lib/smtp-transport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SluiceTransport, sluiceTransport } from '../src/index.js';
import { dkim, dkimKey } from './helpers.js';

let server: MockServer;
beforeAll(async () => {
  server = await startMockServer({ users: { alice: 'secret' }, tokens: { 'oauth@example.com': 'token-1' } });
});
afterAll(() => server.close());
afterEach(() => server.clear());

const toClose: SluiceTransport[] = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((t) => t.close()));
});
function keep(t: SluiceTransport): SluiceTransport {
  toClose.push(t);
  return t;
}

/** The DNS a verifier would ask: the selector's TXT record with the public key (RFC 6376 §3.6.2). */
const publicKey = dkimKey.publicKey.replace(/-----[^-]+-----|\s/g, '');
const resolver = async (name: string, type: string) => {
  if (type === 'TXT' && name === 'sluice._domainkey.example.com') return [[`v=DKIM1; k=rsa; p=${publicKey}`]];
  throw Object.assign(new Error(`no ${type} record for ${name}`), { code: 'ENOTFOUND' });
};

describe("a configuration from nodemailer's documentation, unchanged but for the transport", () => {
  it('a connection URL, pool options and transport-wide DKIM: delivered, and the signature verifies', async () => {
    // https://nodemailer.com/smtp/ and https://nodemailer.com/dkim/: the same object nodemailer would take.
    const config = {
      url: `smtp://alice:secret@${server.host}:${server.port}`,
      tls: { ca: server.ca },
      pool: true,
      maxConnections: 3,
      maxMessages: 2,
      rateDelta: 1000,
      rateLimit: 50,
      dkim,
    };
    const transporter = nodemailer.createTransport(keep(sluiceTransport(config)));
    const mails = Array.from({ length: 5 }, (_, i) => ({ from: 'news@example.com', to: `r${i}@example.com`, subject: `Issue ${i}`, text: `Hello ${i}` }));
    await Promise.all(mails.map((mail) => transporter.sendMail(mail)));
    const received = await server.inbox.waitFor(5);
    for (const message of received) {
      expect(message.user).toBe('alice');
      expect(message.secure).toBe(true);
      const verified = await dkimVerify(message.raw!, { resolver });
      expect(verified.results.map((r) => [r.signingDomain, r.selector, r.status.result])).toEqual([['example.com', 'sluice', 'pass']]);
    }
    // maxMessages: nodemailer's name for messages per connection.
    expect(Math.max(...server.connections.map((c) => c.transactions))).toBeLessThanOrEqual(2);
    expect(server.connections.length).toBeGreaterThanOrEqual(3);
  });

  it("a message's own dkim wins over the transport's (signed once, with the message's key)", async () => {
    const transporter = nodemailer.createTransport(keep(sluiceTransport({ url: `smtp://alice:secret@${server.host}:${server.port}`, tls: { ca: server.ca }, dkim })));
    await transporter.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x', dkim: { ...dkim, keySelector: 'other' } });
    const [message] = await server.inbox.waitFor(1);
    const parsed = await simpleParser(message!.raw!);
    const signatures = parsed.headerLines.filter((h) => h.key === 'dkim-signature');
    expect(signatures).toHaveLength(1);
    expect(signatures[0]!.line).toMatch(/\bs=other;/);
  });

  it('a URL string alone is a whole configuration', async () => {
    const t = keep(sluiceTransport(`smtp://alice:secret@${server.host}:${server.port}?tls.rejectUnauthorized=false`));
    expect(t.pool.options.connection).toMatchObject({ host: server.host, port: server.port, secure: false, auth: { user: 'alice', pass: 'secret' } });
    expect(t.pool.options.connection.tls).toMatchObject({ rejectUnauthorized: false });
    await nodemailer.createTransport(t).sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' });
    expect((await server.inbox.waitFor(1))[0]!.user).toBe('alice');
  });

  it.each(['Gmail', 'Google Mail', 'user@googlemail.com', 'SES-US-EAST-1', 'Outlook365', 'SendGrid'])(
    'service %j resolves to the host, port and TLS mode nodemailer itself would use',
    (service) => {
      // nodemailer's own transport is the oracle: it fills the same fields from the same list.
      const theirs = new SMTPTransport({ service, auth: { user: 'u', pass: 'p' } }).options as { host: string; port: number; secure?: boolean };
      const ours = keep(sluiceTransport({ service, auth: { user: 'u', pass: 'p' } })).pool.options.connection;
      expect({ host: ours.host, port: ours.port }).toEqual({ host: theirs.host, port: Number(theirs.port) });
      expect(ours.secure).toBe(theirs.secure ?? Number(theirs.port) === 465);
    },
  );

  it('nodemailer names translate: maxMessages, rateLimit with rateDelta, the timeouts', () => {
    const t = keep(
      sluiceTransport({ host: 'localhost', maxMessages: 7, rateLimit: 5, rateDelta: 2000, connectionTimeout: 1500, greetingTimeout: 2500, socketTimeout: 3500 }),
    );
    expect(t.pool.options.connection.maxMessages).toBe(7);
    expect(t.pool.options.rateLimit).toEqual({ messages: 5, per: 2000 });
    expect(t.pool.options.connection.timeouts).toMatchObject({ connect: 1500, greeting: 2500, command: 3500, mail: 3500, rcpt: 3500, dataEnd: 3500 });
  });

  it.each([
    [{ host: 'localhost', proxy: 'https://localhost:3128' }, /proxy protocol "https:" is not supported/],
    [{ host: 'localhost', lmtp: 'yes' }, /lmtp must be true or false/],
    [{ host: 'localhost', opportunisticTLS: 'yes' }, /opportunisticTLS must be true or false/],
    [{ host: 'localhost', rateDelta: 1000 }, /rateDelta needs rateLimit/],
    [{ service: 'No Such Provider' }, /Unknown service "No Such Provider"/],
    [{ host: 'localhost', auth: { type: 'custom', user: 'u' } }, /custom AUTH handlers/],
  ])('refuses what it cannot honour, by name (%j)', (options, message) => {
    expect(() => sluiceTransport(options as never)).toThrow(expect.objectContaining({ code: 'EOPTIONS', message: expect.stringMatching(message) }));
  });
});

describe('proxy, customAuth and opportunisticTLS as nodemailer takes them', () => {
  it('auth.type "custom" with auth.method runs the customAuth handler against the server', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const t = keep(
      sluiceTransport({
        host: server.host,
        port: server.port,
        tls: { ca: server.ca },
        auth: { type: 'custom', method: 'MY-LOGIN', user: 'alice', pass: 'secret' },
        customAuth: {
          'my-login': async (ctx) => {
            const { user, pass } = ctx.auth.credentials;
            for (const [line, want] of [
              ['AUTH LOGIN', 334],
              [b64(user ?? ''), 334],
              [b64(pass ?? ''), 235],
            ] as const) {
              const reply = await ctx.sendCommand(line);
              if (reply.status !== want) throw new Error(reply.response);
            }
          },
        },
      }),
    );
    const info = await nodemailer.createTransport(t).sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'custom', text: 'x' });
    expect(info.accepted).toEqual(['b@example.com']);
    expect(server.inbox.messages.map((m) => m.user)).toEqual(['alice']);
  });

  it('passes opportunisticTLS, lmtp and proxy to the core', () => {
    const t = keep(sluiceTransport({ host: 'localhost', opportunisticTLS: true, lmtp: true, proxy: 'socks5://user:pw@127.0.0.1:1080' }));
    expect(t.pool.options.connection).toMatchObject({
      opportunisticTLS: true,
      lmtp: true,
      proxy: { protocol: 'socks5', host: '127.0.0.1', port: 1080, user: 'user' },
    });
  });
});

describe('OAuth2 with a refresh token (nodemailer auth.type "OAuth2")', () => {
  /** A real token endpoint on loopback (RFC 6749 §6), handing out the tokens the SMTP server accepts. */
  async function tokenEndpoint(tokens: string[]) {
    const requests: URLSearchParams[] = [];
    const endpoint = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        requests.push(form);
        const ok = form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === 'refresh-me' && form.get('client_secret') === 'shh';
        res.writeHead(ok ? 200 : 400, { 'content-type': 'application/json' });
        res.end(JSON.stringify(ok ? { access_token: tokens.shift() ?? 'none-left', expires_in: 3600, token_type: 'Bearer' } : { error: 'invalid_grant' }));
      });
    });
    endpoint.listen(0, '127.0.0.1');
    await once(endpoint, 'listening');
    const { port } = endpoint.address() as { port: number };
    return { url: `http://127.0.0.1:${port}/token`, requests, close: () => new Promise((resolve) => endpoint.close(resolve)) };
  }

  const auth = (accessUrl: string) => ({ type: 'OAuth2', user: 'oauth@example.com', clientId: 'client', clientSecret: 'shh', refreshToken: 'refresh-me', accessUrl });

  it('gets an access token once for many connections, and authenticates with it', async () => {
    const endpoint = await tokenEndpoint(['token-1']);
    try {
      const t = keep(sluiceTransport({ host: server.host, port: server.port, tls: { ca: server.ca }, maxConnections: 4, auth: auth(endpoint.url) }));
      const transporter = nodemailer.createTransport(t);
      await Promise.all(Array.from({ length: 8 }, (_, i) => transporter.sendMail({ from: 'oauth@example.com', to: `r${i}@example.com`, text: 'x' })));
      expect((await server.inbox.waitFor(8)).every((m) => m.user === 'oauth@example.com')).toBe(true);
      expect(endpoint.requests).toHaveLength(1);
    } finally {
      await endpoint.close();
    }
  });

  it('asks for a new token when the server refuses the one it has', async () => {
    // The server takes only token-2; the endpoint hands out token-0 first.
    server.configure({ tokens: { 'oauth@example.com': 'token-2' } });
    const endpoint = await tokenEndpoint(['token-0', 'token-2']);
    try {
      const t = keep(sluiceTransport({ host: server.host, port: server.port, tls: { ca: server.ca }, auth: auth(endpoint.url) }));
      await nodemailer.createTransport(t).sendMail({ from: 'oauth@example.com', to: 'r@example.com', text: 'x' });
      expect(endpoint.requests).toHaveLength(2);
      expect((await server.inbox.waitFor(1))[0]!.user).toBe('oauth@example.com');
    } finally {
      server.configure({ tokens: { 'oauth@example.com': 'token-1' } });
      await endpoint.close();
    }
  });
});
