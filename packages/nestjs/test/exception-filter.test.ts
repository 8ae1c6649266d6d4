import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { Body, Controller, HttpCode, type INestApplication, Inject, Post } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import type { MockServer } from '@sluice/mock-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailerService, SluiceExceptionFilter, SluiceModule } from '../src/index.js';
import { expectBadAddressAnswer, expectRefusedRecipientAnswer } from '../../../test-shared/http-answers.js';
import { RecordingLogger, startServer } from './helpers.js';

let server: MockServer;
beforeAll(async () => {
  server = await startServer({ faults: [{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }] });
});
afterAll(() => server.close());

@Controller()
class MailController {
  constructor(@Inject(MailerService) private readonly mailer: MailerService) {}

  @Post('send')
  @HttpCode(202)
  async send(@Body() body: { to: string }) {
    const { messageId } = await this.mailer.sendMail({ from: 'app@example.com', to: body.to, subject: 'Hi', text: 'Hi' });
    return { messageId };
  }

  @Post('boom')
  boom() {
    throw new Error('not a mail error');
  }
}

async function start(register: 'global' | 'APP_FILTER', retry: false | undefined = false) {
  const logger = new RecordingLogger();
  const moduleRef = await Test.createTestingModule({
    imports: [SluiceModule.forRoot({ host: server.host, port: server.port, retry })],
    controllers: [MailController],
    providers: register === 'APP_FILTER' ? [{ provide: APP_FILTER, useClass: SluiceExceptionFilter }] : [],
  }).compile();
  const app: INestApplication = moduleRef.createNestApplication({ logger });
  if (register === 'global') app.useGlobalFilters(new SluiceExceptionFilter());
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, type: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error: Record<string, unknown> } & Record<string, unknown> };
  };
  return { app, post, logger };
}

describe.each(['global', 'APP_FILTER'] as const)('SluiceExceptionFilter (%s)', (register) => {
  it('answers a bad address with 400 and the JSON error shape, before anything is sent', async () => {
    const { app, post, logger } = await start(register);
    const before = server.connections.length;
    const res = await post('/send', { to: 'ada@' });
    expectBadAddressAnswer({ status: res.status, contentType: res.type, body: res.body });
    expect(server.connections.length).toBe(before);
    expect(logger.find('warn', 'Mail failed (EENVELOPE, input)')).toBeTruthy();
    await app.close();
  });

  it('answers a refused recipient with 422 and the reply codes', async () => {
    const { app, post } = await start(register);
    const res = await post('/send', { to: 'gone@example.com' });
    expectRefusedRecipientAnswer({ status: res.status, contentType: res.type, body: res.body });
    await app.close();
  });

  it('answers a transient failure with 503 and retry-after, and leaves other errors to Nest', async () => {
    const { app, post, logger } = await start(register);
    server.setFaults([{ command: 'MAIL', reply: '451 4.3.0 Try later' }]);
    try {
      const res = await post('/send', { to: 'ada@example.com' });
      expect(res.status).toBe(503);
      expect(res.retryAfter).toBe('30');
      expect(res.body.error).toMatchObject({ code: 'EENVELOPE', kind: 'transient', outcome: 'failed', responseCode: 451 });
      expect(logger.find('error', 'Mail failed (EENVELOPE, transient, 451)')).toBeTruthy();
    } finally {
      server.setFaults([{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }]);
    }
    const other = await post('/boom', {});
    expect(other).toMatchObject({ status: 500, body: { statusCode: 500, message: 'Internal server error' } });
    await app.close();
  });
});
