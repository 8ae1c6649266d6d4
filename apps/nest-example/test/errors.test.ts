import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { MockServer } from '@sluice/mock-server';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppModule } from '../src/app.module.js';
import { SmtpTarget } from '../src/smtp-target.js';

let app: INestApplication;
let mock: MockServer;

beforeAll(async () => {
  const saved = { ...process.env };
  delete process.env.SMTP_HOST;
  process.env.MOCK_RTT = '0';
  try {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  } finally {
    process.env = saved;
  }
  mock = app.get(SmtpTarget).mock!;
});
afterAll(() => app.close());

// The shape every example app answers errors with: the body of @sluice/core's httpErrorFor.
describe('error answers', () => {
  it('bad input and a body that is not JSON: 400 { error: { code: EINVALID, kind: input, message } }', async () => {
    const server = app.getHttpServer();
    const missing = await request(server).post('/signup').send({ name: 'Ada' }).expect(400);
    expect(missing.body).toEqual({ error: { code: 'EINVALID', kind: 'input', message: 'email must be a non-empty string' } });
    const malformed = await request(server).post('/signup').set('content-type', 'application/json').send('{"email":').expect(400);
    expect(malformed.body).toEqual({ error: { code: 'EINVALID', kind: 'input', message: expect.any(String) } });
    expect(mock.inbox.messages).toHaveLength(0);
  });

  it('a transient failure: 503 with retry-after, in the same shape', async () => {
    mock.setFaults([{ command: 'MAIL', reply: '451 4.3.0 Try later' }]);
    try {
      const res = await request(app.getHttpServer()).post('/signup').send({ email: 'ada@example.com', name: 'Ada' }).expect(503);
      expect(res.headers['retry-after']).toBe('30');
      expect(res.body).toEqual({
        error: {
          code: 'EENVELOPE',
          kind: 'transient',
          outcome: 'failed',
          responseCode: 451,
          enhancedCode: '4.3.0',
          command: 'MAIL',
          message: expect.any(String),
        },
      });
    } finally {
      mock.setFaults([]);
    }
  });
});
