import { randomUUID } from 'node:crypto';
import { type DynamicModule, Module } from '@nestjs/common';
import {
  defineCapabilities,
  ErrorCodes,
  emptyStats,
  type MailOptions,
  type Message,
  mailEnvelope,
  type PoolStats,
  type SendOptions,
  type SendResult,
  SluiceError,
  type VerifyResult,
} from '@sluice/core';
import { composeMail, type MailDefaults, type MailerConfig, type SendMailOptions } from './compose.js';
import { DEFAULT_MAILER_NAME, getMailerToken } from './mailer.js';
import type { SluiceMailerOptions } from './options.js';
import { type MailPreview, previewMail } from './preview.js';
import { getMailerRegistryToken, NamedMailers } from './registry.js';
import type { TemplateOptions } from './template.js';

/** A message a TestMailer accepted: `mail` for sendMail() (composed: defaults merged, templates rendered), `message` for send(). */
export interface RecordedMail {
  mail?: MailOptions;
  /** What sendMail() was given, `template` and `context` included. */
  request?: SendMailOptions;
  message?: Message;
  result: SendResult;
}

/**
 * A MailerService look-alike that records messages instead of sending them. sendMail() composes the
 * mail as the real one does (the module's `defaults`, templates rendered with its template adapter,
 * `transporterName` routed through its registry), so a test sees the HTML and text a user would get.
 */
export class TestMailer {
  readonly sent: RecordedMail[] = [];
  private readonly rendering = new Set<Promise<unknown>>();

  constructor(
    readonly name: string = DEFAULT_MAILER_NAME,
    private readonly config: MailerConfig = {},
    private readonly registry?: TestMailerRegistry,
  ) {}

  async send(message: Message, _options?: SendOptions): Promise<SendResult> {
    const result = this.result(message.envelope.from, message.envelope.to, message.messageId);
    this.sent.push({ message, result });
    return result;
  }

  async sendMail(request: SendMailOptions, options?: SendOptions): Promise<SendResult> {
    const { transporterName, ...rest } = request;
    const target = this.route(transporterName);
    if (target !== this) return target.sendMail(rest, options);
    const composing = Promise.resolve(composeMail(this.config, rest));
    this.rendering.add(composing);
    const mail = await composing.finally(() => this.rendering.delete(composing));
    // The envelope the pool would send with, from nodemailer's address parser.
    const { from, to } = mailEnvelope(mail);
    const result = this.result(from, to, mail.messageId);
    this.sent.push({ mail, request, result });
    return result;
  }

  /** As MailerService.preview(): the composed mail and its HTML page, written to `file` when given. */
  async preview(request: SendMailOptions, options: { file?: string } = {}): Promise<MailPreview> {
    const { transporterName, ...rest } = request;
    const target = this.route(transporterName);
    if (target !== this) return target.preview(rest, options);
    return previewMail(await composeMail(this.config, rest), options.file);
  }

  /** Resolves once every template render in progress has been recorded. */
  async settled(): Promise<void> {
    while (this.rendering.size > 0) await Promise.allSettled([...this.rendering]);
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

  private route(transporterName: string | undefined): TestMailer {
    if (transporterName === undefined || transporterName === this.name) return this;
    if (!this.registry)
      throw new SluiceError(ErrorCodes.EOPTIONS, `No mailer named "${transporterName}": this TestMailer has no registry`, { permanent: true });
    return this.registry.get(transporterName);
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

/**
 * A MailerRegistry look-alike: `add(name, options)` creates a TestMailer (no pool, no connection; the
 * options' `defaults` and `template` are used, the pool options ignored) inheriting the registration's
 * `template` and `defaults` as the real registry does.
 */
export class TestMailerRegistry extends NamedMailers<TestMailer> {
  constructor(
    private readonly base: MailerConfig = {},
    readonly name: string = DEFAULT_MAILER_NAME,
  ) {
    super();
  }

  add(name: string, options: Partial<SluiceMailerOptions> = {}): TestMailer {
    const config: MailerConfig = { template: options.template ?? this.base.template, defaults: { ...this.base.defaults, ...options.defaults } };
    return this.put(name, () => new TestMailer(name, config, this));
  }
}

export interface SluiceTestingModuleOptions {
  /** The pool name to stand in for. Default: the default pool. */
  name?: string;
  /** Default true, so the recording mailer replaces SluiceModule everywhere. */
  isGlobal?: boolean;
  /** As SluiceModule's: merged under every mail's own options. */
  defaults?: MailDefaults;
  /** As SluiceModule's: `{ dir, adapter }`, so templates are rendered as in production. */
  template?: TemplateOptions;
}

/**
 * Registers a TestMailer under a pool's mailer token and a TestMailerRegistry under its registry token:
 * use it instead of `SluiceModule.forRoot()` in tests, then `app.get(getMailerToken(name))` and assert on `.sent`.
 */
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with a static forRoot().
export class SluiceTestingModule {
  static forRoot(options: SluiceTestingModuleOptions = {}): DynamicModule {
    const name = options.name ?? DEFAULT_MAILER_NAME;
    const config: MailerConfig = { defaults: options.defaults, template: options.template };
    const token = getMailerToken(name);
    const registryToken = getMailerRegistryToken(name);
    return {
      module: SluiceTestingModule,
      global: options.isGlobal ?? true,
      providers: [
        { provide: registryToken, useFactory: () => new TestMailerRegistry(config, name) },
        { provide: token, useFactory: (registry: TestMailerRegistry) => new TestMailer(name, config, registry), inject: [registryToken] },
      ],
      exports: [token, registryToken],
    };
  }
}
