import { type SluiceMiddleware, sluice } from '@sluice/express';
import { type MockServer, type MockServerOptions, startMockServer } from '@sluice/mock-server';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';

let mock: MockServer;
let mailer: SluiceMiddleware;

async function setup(options: MockServerOptions = {}) {
  mock = await startMockServer({ ...options, extensions: { starttls: false, ...options.extensions } });
  // No retries: a transient refusal ends the message as 'failed' at once.
  mailer = sluice({ host: mock.host, port: mock.port, name: 'app.example.test', retry: false });
  return createApp({ mailer, from: 'Example <hello@example.com>', maxBulk: 2000 });
}

afterEach(async () => {
  await mailer.close();
  await mock.close();
});

describe('POST /signup', () => {
  it('sends a welcome mail with text and HTML, and answers 202 with its message id', async () => {
    const app = await setup();
    const res = await request(app).post('/signup').send({ email: 'ada@example.com', name: 'Ada Lovelace' }).expect(202);
    expect(res.body.messageId).toMatch(/^<.+>$/);

    const [received] = await mock.inbox.waitFor(1);
    expect(received.from).toBe('hello@example.com');
    expect(received.to).toEqual(['ada@example.com']);
    const raw = received.raw!.toString();
    expect(raw).toContain(`Message-ID: ${res.body.messageId}`);
    expect(raw).toContain('To: Ada Lovelace <ada@example.com>');
    expect(raw).toContain('Subject: Welcome, Ada Lovelace!');
    expect(raw).toMatch(/Content-Type: multipart\/alternative/);
    expect(raw).toContain('Content-Type: text/plain');
    expect(raw).toContain('Content-Type: text/html');
    expect(raw).toContain('Hello Ada Lovelace,');
    expect(raw).toContain('<p>Hello Ada Lovelace,</p>');
  });

  it('escapes the name in the HTML part', async () => {
    const app = await setup();
    await request(app).post('/signup').send({ email: 'eve@example.com', name: '<script>x</script>' }).expect(202);
    const [received] = await mock.inbox.waitFor(1);
    const raw = received.raw!.toString();
    expect(raw).not.toContain('<p>Hello <script>');
    expect(raw).toContain('&#60;script&#62;');
  });

  it('refuses bad input with 400 and sends nothing', async () => {
    const app = await setup();
    await request(app).post('/signup').send({ name: 'Ada' }).expect(400);
    await request(app).post('/signup').send({ email: 'not an address', name: 'Ada' }).expect(400);
    await request(app).post('/signup').send({ email: 'ada@example.com', name: 'Ada\r\nBcc: everyone@example.com' }).expect(400);
    await request(app).post('/signup').set('Content-Type', 'application/json').send('{"email":').expect(400);
    expect(mock.connections).toHaveLength(0);
  });

  it('answers 422 with the reply when the server refuses the address', async () => {
    const app = await setup({ faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] });
    const res = await request(app).post('/signup').send({ email: 'gone@example.com', name: 'Gone' }).expect(422);
    expect(res.body).toMatchObject({ error: { code: 'EENVELOPE', kind: 'refused', outcome: 'rejected', responseCode: 550, enhancedCode: '5.1.1' } });
  });

  it('answers 503 with Retry-After when the server is busy', async () => {
    const app = await setup({ faults: [{ command: 'MAIL', reply: '451 4.3.0 Busy' }] });
    const res = await request(app).post('/signup').send({ email: 'ada@example.com', name: 'Ada' }).expect(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.body).toMatchObject({ error: { code: 'EENVELOPE', kind: 'transient', outcome: 'failed', responseCode: 451 } });
  });
});

describe('POST /bulk', () => {
  it('sends 1000 messages by default, all delivered and all in the inbox', async () => {
    const app = await setup();
    const res = await request(app).post('/bulk').send({}).expect(200);
    expect(res.body).toMatchObject({ count: 1000, delivered: 1000, rejected: 0, failed: 0, unknown: 0 });
    expect(mock.inbox.messages).toHaveLength(1000);
    const recipients = new Set(mock.inbox.messages.flatMap((m) => m.to));
    expect(recipients.size).toBe(1000);
    expect(recipients.has('reader1@example.com') && recipients.has('reader1000@example.com')).toBe(true);
  });

  it('counts each outcome: rejected recipients and a transient failure', async () => {
    const app = await setup({
      faults: [
        { command: 'RCPT', recipient: ['reader3@example.com', 'reader11@example.com'], reply: '550 5.1.1 No such user' },
        { command: 'MAIL', message: 5, reply: '451 4.3.0 Busy' },
      ],
    });
    const res = await request(app).post('/bulk').send({ count: 20 }).expect(200);
    expect(res.body).toMatchObject({ count: 20, delivered: 17, rejected: 2, failed: 1, unknown: 0 });
    expect(mock.inbox.messages).toHaveLength(17);
    expect(mock.inbox.messages.flatMap((m) => m.to)).not.toContain('reader3@example.com');
  });

  it('counts a message whose connection died after its content as unknown (and the server has it)', async () => {
    const app = await setup({
      faults: [
        { command: 'DOT', message: 3, action: 'drop', deliver: true },
        { command: 'BDAT_LAST', message: 3, action: 'drop', deliver: true },
      ],
    });
    const res = await request(app).post('/bulk').send({ count: 3 }).expect(200);
    expect(res.body).toMatchObject({ count: 3, delivered: 2, unknown: 1, rejected: 0, failed: 0 });
    expect(mock.inbox.messages).toHaveLength(3);
  });

  it('refuses a count out of range', async () => {
    const app = await setup();
    await request(app).post('/bulk').send({ count: 0 }).expect(400);
    await request(app).post('/bulk').send({ count: 2001 }).expect(400);
    await request(app).post('/bulk').send({ count: '5' }).expect(400);
    expect(mock.connections).toHaveLength(0);
  });
});

describe('GET /health', () => {
  it('is up while the SMTP server answers', async () => {
    const app = await setup();
    const res = await request(app).get('/health').expect(200);
    expect(res.body).toMatchObject({ status: 'up' });
  });

  it('is down once it does not', async () => {
    const app = await setup();
    await mock.close();
    const res = await request(app).get('/health').expect(503);
    expect(res.body).toMatchObject({ status: 'down', error: 'ECONNECTION' });
  });
});
