import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { MailerService } from '@sluice/nestjs';
import { TestMailer } from '@sluice/nestjs/testing';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AppModule } from '../src/app.module.js';
import { SmtpTarget } from '../src/smtp-target.js';

async function startApp(env: Record<string, string | undefined>) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete process.env[key];
  try {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    return app;
  } finally {
    process.env = saved;
  }
}

describe('with the embedded mock server', () => {
  let app: INestApplication;
  let mock: MockServer;

  beforeAll(async () => {
    app = await startApp({ SMTP_HOST: undefined, MOCK_RTT: '2' });
    mock = app.get(SmtpTarget).mock!;
  });
  afterAll(() => app.close());
  afterEach(() => mock.clear());

  it('POST /signup sends a welcome mail and answers 202 with its messageId', async () => {
    const res = await request(app.getHttpServer()).post('/signup').send({ email: 'ada@example.com', name: 'Ada' }).expect(202);
    expect(res.body.messageId).toMatch(/^<.+>$/);
    const [received] = await mock.inbox.waitFor(1);
    expect(received!.from).toBe('hello@example.com');
    expect(received!.to).toEqual(['ada@example.com']);
    const raw = received!.raw!.toString();
    expect(raw).toContain('Subject: Welcome, Ada!');
    expect(raw).toContain(`Message-ID: ${res.body.messageId}`);
    expect(raw).toContain('Hello Ada,');
  });

  it('POST /signup refuses bad input before any mail', async () => {
    const server = app.getHttpServer();
    await request(server).post('/signup').send({ name: 'Ada' }).expect(400);
    await request(server).post('/signup').send({ email: 'not an address', name: 'Ada' }).expect(400);
    await request(server).post('/signup').send({ email: 'ada@example.com', name: '' }).expect(400);
    expect(mock.inbox.messages).toHaveLength(0);
  });

  it('POST /signup maps a permanent refusal to 422', async () => {
    mock.setFaults([{ command: 'RCPT', recipient: 'nobody@example.com', reply: '550 5.1.1 No such user' }]);
    try {
      const res = await request(app.getHttpServer()).post('/signup').send({ email: 'nobody@example.com', name: 'Nobody' }).expect(422);
      expect(res.body).toMatchObject({ error: { outcome: 'rejected', code: 'EENVELOPE', kind: 'refused', responseCode: 550 } });
    } finally {
      mock.setFaults([]);
    }
  });

  it('POST /bulk sends 1000 messages by default and counts outcomes', async () => {
    const res = await request(app.getHttpServer()).post('/bulk').send({}).expect(200);
    expect(res.body).toEqual({ delivered: 1000, rejected: 0, failed: 0, unknown: 0 });
    expect(mock.inbox.messages).toHaveLength(1000);
    expect(new Set(mock.inbox.messages.map((m) => m.to[0])).size).toBe(1000);
  });

  it('POST /bulk reports rejected messages', async () => {
    mock.setFaults([{ command: 'RCPT', recipient: /^bulk[0-9]*7@/, reply: '550 5.1.1 No such user' }]);
    try {
      const res = await request(app.getHttpServer()).post('/bulk').send({ count: 100 }).expect(200);
      expect(res.body).toEqual({ delivered: 90, rejected: 10, failed: 0, unknown: 0 });
      expect(mock.inbox.messages).toHaveLength(90);
    } finally {
      mock.setFaults([]);
    }
  });

  it('POST /bulk validates count', async () => {
    await request(app.getHttpServer()).post('/bulk').send({ count: 0 }).expect(400);
    await request(app.getHttpServer()).post('/bulk').send({ count: 'many' }).expect(400);
  });

  it('GET /health is up', async () => {
    const res = await request(app.getHttpServer()).get('/health').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', info: { smtp: { status: 'up' } } });
  });
});

describe('shutdown', () => {
  it('delivers every queued message before the mock server stops', async () => {
    const app = await startApp({ SMTP_HOST: undefined, MOCK_RTT: '20' });
    const mock = app.get(SmtpTarget).mock!;
    const mailer = app.get(MailerService);
    const sends = Array.from({ length: 80 }, (_, i) => mailer.sendMail({ from: 'a@example.com', to: `late${i}@example.com`, subject: `${i}`, text: 'x' }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(mock.inbox.messages.length).toBeLessThan(80);
    await app.close();
    expect(mock.inbox.messages).toHaveLength(80);
    expect((await Promise.allSettled(sends)).every((r) => r.status === 'fulfilled')).toBe(true);
  });
});

describe('with SMTP_HOST', () => {
  it('uses the server from the environment; GET /health is down when it is unreachable', async () => {
    // Unreachable: the mock server drops every connection before its greeting. (A port closed after
    // listening could be taken again by a server of a test running in parallel.)
    const down = await startMockServer({ extensions: { starttls: false }, faults: [{ command: 'CONNECT', action: 'drop' }] });
    const { port } = down;

    // verifyOnStart is 'warn': the app starts although the server is down.
    const app = await startApp({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(port), SMTP_USER: 'me', SMTP_PASS: 'secret' });
    try {
      expect(app.get(SmtpTarget).mock).toBeNull();
      expect(app.get(MailerService).pool.options.connection).toMatchObject({ host: '127.0.0.1', port, auth: { user: 'me', pass: 'secret' } });
      const res = await request(app.getHttpServer()).get('/health').expect(503);
      expect(res.body).toMatchObject({ status: 'error', error: { smtp: { status: 'down', code: 'ECONNECTION' } } });
    } finally {
      await app.close();
      await down.close();
    }
  });
});

describe('without a server (SluiceTestingModule look-alike)', () => {
  it('records the welcome mail', async () => {
    const recorder = new TestMailer();
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(SmtpTarget)
      .useValue(new SmtpTarget({ host: '127.0.0.1', port: 1 }, null))
      .overrideProvider(MailerService)
      .useValue(recorder)
      .compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    await request(app.getHttpServer()).post('/signup').send({ email: 'grace@example.com', name: 'Grace' }).expect(202);
    expect(recorder.sent.map((s) => s.mail?.subject)).toEqual(['Welcome, Grace!']);
    expect(recorder.sent[0]!.result.envelope.to).toEqual(['grace@example.com']);
    await app.close();
  });
});
