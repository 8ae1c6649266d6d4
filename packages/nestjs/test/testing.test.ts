import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { getMailerToken, InjectMailer, MailerService, SluiceModule } from '../src/index.js';
import { SluiceTestingModule, TestMailer } from '../src/testing.js';

@Injectable()
class Signup {
  constructor(
    @InjectMailer() private readonly mailer: MailerService,
    @InjectMailer('billing') private readonly billing: MailerService,
  ) {}

  async register(email: string) {
    await this.mailer.sendMail({ from: 'Shop <hello@shop.test>', to: `New user <${email}>`, subject: 'Welcome', text: 'Hi!' });
    return this.billing.send({ envelope: { from: 'billing@shop.test', to: [email] }, body: 'Subject: Invoice\r\n\r\nDue.\r\n' });
  }
}

@Module({ providers: [Signup], exports: [Signup] })
class SignupModule {}

describe('SluiceTestingModule', () => {
  it('records messages per pool instead of sending them', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceTestingModule.forRoot(), SluiceTestingModule.forRoot({ name: 'billing' }), SignupModule],
    }).compile();
    const result = await moduleRef.get(Signup).register('ada@example.com');
    const main = moduleRef.get<TestMailer>(getMailerToken());
    const billing = moduleRef.get<TestMailer>(getMailerToken('billing'));
    expect(main).toBeInstanceOf(TestMailer);
    expect(main).not.toBe(billing);
    expect(main.sent).toHaveLength(1);
    expect(main.sent[0]!.mail).toMatchObject({ subject: 'Welcome', to: 'New user <ada@example.com>' });
    expect(main.sent[0]!.result).toMatchObject({ outcome: 'delivered', envelope: { from: 'hello@shop.test', to: ['ada@example.com'] } });
    expect(main.sent[0]!.result.messageId).toMatch(/^<.+@sluice\.test>$/);
    expect(billing.sent.map((s) => s.message?.envelope.to)).toEqual([['ada@example.com']]);
    expect(result.accepted.map((r) => r.address)).toEqual(['ada@example.com']);
    expect(main.stats.delivered).toBe(1);
    expect((await main.verify()).capabilities.pipelining).toBe(true);
    main.clear();
    expect(main.sent).toEqual([]);
    await moduleRef.close();
  });

  it('gives each application its own recorder', async () => {
    const definition = SluiceTestingModule.forRoot();
    const a = await Test.createTestingModule({ imports: [definition] }).compile();
    const b = await Test.createTestingModule({ imports: [definition] }).compile();
    await a.get(MailerService).sendMail({ from: 'a@x.test', to: ['b@x.test', { name: 'C', address: 'c@x.test' }], cc: 'd@x.test' });
    expect(a.get<TestMailer>(MailerService).sent[0]!.result.envelope.to).toEqual(['b@x.test', 'c@x.test', 'd@x.test']);
    expect(b.get<TestMailer>(MailerService).sent).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it('parses addresses as nodemailer does: a quoted display name with a comma is one address', async () => {
    const recorder = new TestMailer();
    const { result } = await recorder.sendMail({ from: '"Shop, Inc." <hello@shop.test>', to: '"Doe, John" <john@x.test>, ada@x.test', bcc: ['<b@x.test>'], text: 'x' }).then(() => recorder.sent[0]!);
    expect(result.envelope).toEqual({ from: 'hello@shop.test', to: ['john@x.test', 'ada@x.test', 'b@x.test'] });
    expect(result.accepted.map((r) => r.address)).toEqual(['john@x.test', 'ada@x.test', 'b@x.test']);
    await recorder.sendMail({ from: 'a@x.test', to: 'ignored@x.test', envelope: { from: 'bounce@x.test', to: ['"Doe, John" <john@x.test>'] } });
    expect(recorder.sent[1]!.result.envelope).toEqual({ from: 'bounce@x.test', to: ['john@x.test'] });
  });

  it('can replace a real pool with overrideProvider', async () => {
    const recorder = new TestMailer();
    const moduleRef = await Test.createTestingModule({ imports: [SluiceModule.forRoot({ host: '127.0.0.1', port: 1 })] })
      .overrideProvider(MailerService)
      .useValue(recorder)
      .compile();
    await moduleRef.get(MailerService).sendMail({ from: 'a@x.test', to: 'b@x.test', subject: 'Hi' });
    expect(recorder.sent[0]!.mail?.subject).toBe('Hi');
    await moduleRef.close();
  });
});
