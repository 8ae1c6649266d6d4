import 'reflect-metadata';
import { ConfigModule } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { MailerService } from '@nestjs-modules/mailer';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OriginalMailModule } from './original/mail.module.js';

let mock: MockServer;
beforeAll(async () => {
  mock = await startMockServer({ extensions: { starttls: false } });
});
afterAll(() => mock.close());

it("@nestjs-modules/mailer with transport: sluiceTransport() sends its templated mails through sluice's pool", async () => {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ConfigModule.forRoot({
        isGlobal: true,
        ignoreEnvFile: true,
        load: [() => ({ MAIL_HOST: mock.host, MAIL_PORT: mock.port, MAIL_FROM: 'noreply@example.com' })],
      }),
      OriginalMailModule,
    ],
  }).compile();
  await moduleRef.init();
  // The same sendMail call as src/mail/mail.service.ts, on @nestjs-modules/mailer's MailerService.
  const mailer = moduleRef.get(MailerService);
  const confirm = (i: number) =>
    mailer.sendMail({
      to: `user${i}@example.com`,
      subject: 'Welcome to Nice App! Confirm your Email',
      template: './confirmation',
      context: { name: `User ${i}`, url: `example.com/auth/confirm?token=token${i}` },
    });
  await Promise.all(Array.from({ length: 20 }, (_, i) => confirm(i)));
  await moduleRef.close();

  expect(mock.inbox.messages).toHaveLength(20);
  const parsed = await Promise.all(mock.inbox.messages.map((m) => simpleParser(m.raw!)));
  const byRecipient = new Map(parsed.map((p) => [p.to && !Array.isArray(p.to) ? p.to.value[0]!.address : '', p]));
  for (let i = 0; i < 20; i++) {
    const p = byRecipient.get(`user${i}@example.com`)!;
    expect(p.from?.value).toEqual([{ name: 'No Reply', address: 'noreply@example.com' }]);
    expect(p.subject).toBe('Welcome to Nice App! Confirm your Email');
    expect(String(p.html)).toContain(`Hey User ${i},`);
    // @nestjs-modules/mailer's adapter runs css-inline, which rewrites Handlebars' &#x3D; back to "=".
    expect(String(p.html)).toContain(`<a href="example.com/auth/confirm?token=token${i}">Confirm</a>`);
  }
  // Sent by sluice's pool (its maxConnections: 2 holds), pipelined over those connections.
  expect(mock.connections.length).toBeLessThanOrEqual(2);
});
