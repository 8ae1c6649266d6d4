import { randomUUID } from 'node:crypto';
import { type DynamicModule, Module } from '@nestjs/common';
import { type MailOptions, type Message, type PoolStats, type SendOptions, type SendResult, type VerifyResult, defineCapabilities, emptyStats, mailEnvelope } from '@sluice/core';
import { DEFAULT_MAILER_NAME, getMailerToken } from './mailer.js';

/** A message a TestMailer accepted: `mail` for sendMail(), `message` for send(). */
export interface RecordedMail {
  mail?: MailOptions;
  message?: Message;
  result: SendResult;
}

/** A MailerService look-alike that records messages instead of sending them. */
export class TestMailer {
  readonly sent: RecordedMail[] = [];

  constructor(readonly name: string = DEFAULT_MAILER_NAME) {}

  async send(message: Message, _options?: SendOptions): Promise<SendResult> {
    const result = this.result(message.envelope.from, message.envelope.to, message.messageId);
    this.sent.push({ message, result });
    return result;
  }

  async sendMail(mail: MailOptions, _options?: SendOptions): Promise<SendResult> {
    // The envelope the pool would send with, from nodemailer's address parser.
    const { from, to } = mailEnvelope(mail);
    const result = this.result(from, to, mail.messageId);
    this.sent.push({ mail, result });
    return result;
  }

  async verify(): Promise<VerifyResult> {
    const capabilities = defineCapabilities({
      esmtp: true,
      pipelining: true,
      chunking: true,
      eightBitMime: true,
      smtpUtf8: true,
      dsn: true,
      enhancedStatusCodes: true,
    });
    return { capabilities, encrypted: true, authenticated: false };
  }

  get stats(): PoolStats {
    return { ...emptyStats(), delivered: this.sent.length };
  }

  /** Forgets the recorded messages. */
  clear(): void {
    this.sent.length = 0;
  }

  private result(from: string, to: string[], messageId = `<${randomUUID()}@sluice.test>`): SendResult {
    const now = Date.now();
    const accepted = to.map((address) => ({ address, code: 250, enhancedCode: '2.1.5', response: '250 2.1.5 OK' }));
    return {
      outcome: 'delivered',
      envelope: { from, to },
      messageId,
      accepted,
      rejected: [],
      pending: [],
      response: '250 2.0.0 OK: recorded by TestMailer',
      responseCode: 250,
      enhancedCode: '2.0.0',
      connectionId: 0,
      attempts: 1,
      timings: { queued: now, started: now, settled: now, total: 0 },
    };
  }
}

export interface SluiceTestingModuleOptions {
  /** The pool name to stand in for. Default: the default pool. */
  name?: string;
  /** Default true, so the recording mailer replaces SluiceModule everywhere. */
  isGlobal?: boolean;
}

/**
 * Registers a TestMailer under a pool's mailer token: use it instead of `SluiceModule.forRoot()` in tests,
 * then `app.get(getMailerToken(name))` and assert on `.sent`.
 */
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with a static forRoot().
export class SluiceTestingModule {
  static forRoot(options: SluiceTestingModuleOptions = {}): DynamicModule {
    const token = getMailerToken(options.name);
    return {
      module: SluiceTestingModule,
      global: options.isGlobal ?? true,
      providers: [{ provide: token, useFactory: () => new TestMailer(options.name ?? DEFAULT_MAILER_NAME) }],
      exports: [token],
    };
  }
}
