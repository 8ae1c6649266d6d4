import nodemailer from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MockServer, startMockServer } from '../src/index.js';

const users = { alice: 'secret', bob: 'hunter2' };
const tokens = { 'carol@example.com': ['ya29.good-token', 'second'] };

let server: MockServer;
beforeAll(async () => {
  server = await startMockServer({ users, tokens });
});
afterAll(() => server.close());
beforeEach(() => {
  server.setFaults([]);
  server.clear();
});

const message = (n = 0) => ({
  from: 'Sender <sender@example.com>',
  to: ['one@example.com', 'two@example.com'],
  cc: 'three@example.com',
  subject: `Hello ${n}`,
  text: `Body ${n}\n.leading dot line\nlast line`,
});

describe('nodemailer SMTP transport', () => {
  it('delivers over the plain DATA path (PIPELINING envelope)', async () => {
    const transport = nodemailer.createTransport({ host: server.host, port: server.port, ignoreTLS: true });
    const info = await transport.sendMail(message(1));
    expect(info.accepted).toEqual(['one@example.com', 'two@example.com', 'three@example.com']);
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
    const [m] = await server.inbox.waitFor(1);
    expect(m.from).toBe('sender@example.com');
    expect(m.to).toEqual(['one@example.com', 'two@example.com', 'three@example.com']);
    expect(m.via).toBe('DATA');
    const raw = m.raw?.toString() ?? '';
    expect(raw).toContain('Subject: Hello 1\r\n');
    // nodemailer stuffed the dot; we removed it.
    expect(raw).toContain('\r\n.leading dot line\r\n');
    expect(m.size).toBe(m.raw?.length);
    transport.close();
  });

  it('upgrades with STARTTLS, trusting the generated CA', async () => {
    const transport = nodemailer.createTransport({
      host: 'localhost',
      port: server.port,
      requireTLS: true,
      tls: { ca: server.ca },
    });
    await transport.sendMail(message(2));
    const [m] = await server.inbox.waitFor(1);
    expect(m.secure).toBe(true);
    expect(server.connections[0].secure).toBe(true);
    // EHLO twice: RFC 3207 §4.2, the client starts over after TLS.
    expect(server.connections[0].byCommand.EHLO).toBe(2);
    transport.close();
  });

  it('rejects STARTTLS clients that do not trust the certificate', async () => {
    const transport = nodemailer.createTransport({ host: 'localhost', port: server.port, requireTLS: true });
    await expect(transport.sendMail(message())).rejects.toThrow(/certificate/i);
    transport.close();
  });

  it.each(['PLAIN', 'LOGIN', 'CRAM-MD5'] as const)('authenticates with AUTH %s', async (authMethod) => {
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      ignoreTLS: true,
      authMethod,
      auth: { user: 'alice', pass: 'secret' },
    });
    await transport.sendMail(message());
    const [m] = await server.inbox.waitFor(1);
    expect(m.user).toBe('alice');
    transport.close();

    const wrong = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      ignoreTLS: true,
      authMethod,
      auth: { user: 'alice', pass: 'wrong' },
    });
    await expect(wrong.sendMail(message())).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
    wrong.close();
  });

  it('authenticates with XOAUTH2 and handles the bad-token 334 exchange', async () => {
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      ignoreTLS: true,
      auth: { type: 'OAuth2', user: 'carol@example.com', accessToken: 'ya29.good-token' },
    });
    await transport.sendMail(message());
    const [m] = await server.inbox.waitFor(1);
    expect(m.user).toBe('carol@example.com');
    transport.close();

    const bad = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      ignoreTLS: true,
      auth: { type: 'OAuth2', user: 'carol@example.com', accessToken: 'expired' },
    });
    await expect(bad.sendMail(message())).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
    bad.close();
  });

  it('delivers many messages in pool mode over few connections', async () => {
    const transport = nodemailer.createTransport({
      pool: true,
      maxConnections: 3,
      maxMessages: 100,
      host: server.host,
      port: server.port,
      ignoreTLS: true,
    });
    const infos = await Promise.all(Array.from({ length: 30 }, (_, i) => transport.sendMail(message(i))));
    expect(infos).toHaveLength(30);
    const messages = await server.inbox.waitFor(30);
    expect(new Set(messages.map((m) => m.connection)).size).toBeLessThanOrEqual(3);
    expect(new Set(messages.map((m) => m.id)).size).toBe(30);
    expect(server.connections.length).toBeLessThanOrEqual(3);
    transport.close();
  });
});

describe('nodemailer with implicit TLS', () => {
  let secure: MockServer;
  beforeAll(async () => {
    secure = await startMockServer({ secure: true, users });
  });
  afterAll(() => secure.close());

  it('delivers over TLS from the first byte', async () => {
    expect(secure.url).toBe(`smtps://127.0.0.1:${secure.port}`);
    const transport = nodemailer.createTransport({
      host: 'localhost',
      port: secure.port,
      secure: true,
      tls: { ca: secure.ca },
      auth: { user: 'bob', pass: 'hunter2' },
    });
    await transport.sendMail(message());
    const [m] = await secure.inbox.waitFor(1);
    expect(m).toMatchObject({ secure: true, user: 'bob' });
    expect(secure.connections[0].byCommand.STARTTLS).toBeUndefined();
    transport.close();
  });
});
