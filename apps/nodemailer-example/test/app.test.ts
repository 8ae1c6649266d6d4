import { createPool } from '@sluice/core';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { sluiceTransport } from '@sluice/nodemailer';
import nodemailer, { type Transporter } from 'nodemailer';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';

let server: MockServer;
let transporter: Transporter;
beforeAll(async () => {
  server = await startMockServer({ rtt: 5 });
  transporter = nodemailer.createTransport(sluiceTransport({ host: server.host, port: server.port, tls: { ca: server.ca }, retry: false }));
});
afterAll(async () => {
  await transporter.close();
  await server.close();
});
afterEach(() => {
  server.reset?.();
  server.clear();
});

const app = () => createApp({ transporter, from: 'Example <welcome@example.com>' });

describe('POST /signup', () => {
  it('sends a welcome mail (text and html) and answers 202 with its messageId', async () => {
    const res = await request(app()).post('/signup').send({ email: 'ada@example.com', name: 'Ada <Lovelace>' }).expect(202);
    expect(res.body).toEqual({ messageId: expect.stringMatching(/^<.+@example\.com>$/), accepted: ['ada@example.com'] });

    const [m] = server.inbox.messages;
    expect(server.inbox.messages).toHaveLength(1);
    expect(m!.from).toBe('welcome@example.com');
    expect(m!.to).toEqual(['ada@example.com']);
    expect(m!.secure).toBe(true); // STARTTLS with the mock server's CA
    const raw = m!.raw!.toString();
    expect(raw).toContain(`Message-ID: ${res.body.messageId}\r\n`);
    expect(raw).toMatch(/^To: "Ada <Lovelace>" <ada@example\.com>\r$/m);
    expect(raw).toMatch(/^Subject: Welcome, Ada <Lovelace>!\r$/m);
    expect(raw).toMatch(/^Content-Type: multipart\/alternative;/m);
    expect(raw).toContain('Content-Type: text/plain; charset=utf-8');
    expect(raw).toContain('Content-Type: text/html; charset=utf-8');
    expect(raw).toContain('Hi Ada &#60;Lovelace&#62;,'); // escaped in the html part
  });

  it.each([
    [{ email: 'not-an-address', name: 'Ada' }, /email/],
    [{ email: 'ada@example.com' }, /name/],
    [{ email: 'ada@example.com', name: 'Ada\r\nBcc: victim@example.com' }, /name/],
    [{ email: 'ada@example.com\r\nRCPT TO:<x@example.com>', name: 'Ada' }, /email/],
  ])('refuses bad input with 400 (%o) and sends nothing', async (body, error) => {
    const res = await request(app()).post('/signup').send(body).expect(400);
    expect(res.body.error).toMatchObject({ code: 'EINVALID', kind: 'input', message: expect.stringMatching(error) });
    expect(server.connections).toHaveLength(0);
  });

  it('answers 400 to malformed JSON', async () => {
    await request(app()).post('/signup').set('content-type', 'application/json').send('{"email":').expect(400);
  });

  it('answers 422 when the server refuses the address, with the SMTP code', async () => {
    server.setFaults([{ command: 'RCPT', recipient: 'ghost@example.com', reply: '550 5.1.1 No such user' }]);
    const res = await request(app()).post('/signup').send({ email: 'ghost@example.com', name: 'Ghost' }).expect(422);
    expect(res.body).toMatchObject({ error: { code: 'EENVELOPE', kind: 'refused', outcome: 'rejected', responseCode: 550 } });
    expect(server.inbox.messages).toHaveLength(0);
  });

  it('answers 503 with retry-after when the mail system fails transiently', async () => {
    server.setFaults([{ command: 'MAIL', reply: '451 4.3.0 Try again later' }]);
    const res = await request(app()).post('/signup').send({ email: 'ada@example.com', name: 'Ada' }).expect(503);
    expect(res.headers['retry-after']).toBe('30');
    expect(res.body).toMatchObject({ error: { kind: 'transient', outcome: 'failed', responseCode: 451 } });
  });
});

describe('POST /bulk', () => {
  it('sends 1000 messages by default and counts outcomes', async () => {
    const res = await request(app()).post('/bulk').send({}).expect(200);
    expect(res.body).toMatchObject({ delivered: 1000, rejected: 0, failed: 0, unknown: 0 });
    expect(server.inbox.messages).toHaveLength(1000);
    expect(new Set(server.inbox.messages.map((m) => m.to[0])).size).toBe(1000);
    expect(server.inbox.messages.find((m) => m.to[0] === 'reader999@example.com')!.raw!.toString()).toContain('Subject: Bulk message 1000 of 1000');
    // Pipelined across messages: about one client round trip per message on each connection (plus
    // the greeting, EHLO, STARTTLS and TLS), where a client that pipelines within a message needs two.
    for (const c of server.connections) expect(c.reads).toBeLessThanOrEqual(c.transactions + 6);
  });

  it('counts rejected, failed and unknown outcomes', async () => {
    // One connection, so that transactions are numbered in message order; a clear connection (the mock
    // server's 'drop' does not close a TLS connection whose last reply is still buffered).
    const plain = await startMockServer({ extensions: { starttls: false } });
    // One BDAT in flight (window 1): with the default adaptive window, the messages written behind the
    // 8th would lose the connection with it and, with retry: false, fail too; this test counts one
    // outcome per fault.
    const t = nodemailer.createTransport(sluiceTransport({ host: plain.host, port: plain.port, retry: false, maxConnections: 1, chunking: { window: 1 } }));
    plain.setFaults([
      { command: 'RCPT', recipient: ['reader1@example.com', 'reader3@example.com'], reply: '550 5.1.1 No such user' },
      { command: 'MAIL', sender: 'welcome@example.com', reply: '451 4.3.0 Try again', message: 5 },
      { command: 'BDAT_LAST', action: 'drop', message: 8, deliver: true },
    ]);
    const res = await request(createApp({ transporter: t, from: 'welcome@example.com' }))
      .post('/bulk')
      .send({ count: 10 })
      .expect(200);
    await t.close();
    await plain.close();
    // reader1 and reader3 refused (550); the 5th transaction refused with 451 and not retried (retry:
    // false) fails; the connection dies after the 8th message's content: unknown (the server has it).
    expect(res.body).toMatchObject({ delivered: 6, rejected: 2, failed: 1, unknown: 1 });
    expect(plain.inbox.messages).toHaveLength(7);
  });

  it.each([{ count: 0 }, { count: 1.5 }, { count: '10' }, { count: 100_001 }])('refuses %o with 400', async (body) => {
    await request(app()).post('/bulk').send(body).expect(400);
    expect(server.connections).toHaveLength(0);
  });
});

describe('with a pool shared with other front-ends', () => {
  it('sends through { pool } and leaves the pool open', async () => {
    const pool = createPool({ host: server.host, port: server.port, tls: { ca: server.ca } });
    const shared = nodemailer.createTransport(sluiceTransport({ pool }));
    await request(createApp({ transporter: shared }))
      .post('/signup')
      .send({ email: 'grace@example.com', name: 'Grace' })
      .expect(202);
    await shared.close();
    await pool.send({ envelope: { from: 'ops@example.com', to: ['ops@example.com'] }, body: 'Subject: still open\r\n\r\nyes\r\n' });
    await pool.close();
    expect(server.inbox.messages.map((m) => m.to[0])).toEqual(['grace@example.com', 'ops@example.com']);
  });
});
