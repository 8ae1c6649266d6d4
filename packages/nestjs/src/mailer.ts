import { Inject } from '@nestjs/common';
import {
  ErrorCodes,
  type MailOptions,
  type MailQueueLike,
  type Message,
  type Pool,
  type PoolStats,
  type SendOptions,
  type SendResult,
  SluiceError,
  type VerifyOptions,
  type VerifyResult,
} from '@sluice/core';
import { composeMail, type MailerConfig, type SendMailOptions } from './compose.js';
import { type MailPreview, previewMail } from './preview.js';

/** What `enqueue()` needs of a queue (`@sluice/queue`'s MailQueue has it): core's type, re-exported. */
export type { MailQueueLike } from '@sluice/core';

/** The name of the pool registered without a `name`. */
export const DEFAULT_MAILER_NAME = 'default';

/** Where `sendMail({ transporterName })` finds a mailer added at runtime (a MailerRegistry). */
export interface MailerLookup {
  get(name: string): MailerService;
}

/**
 * Sends through one sluice pool. Inject the default pool's mailer by class (`MailerService`) or with
 * `@InjectMailer()`; a named pool's with `@InjectMailer('billing')`.
 */
export class MailerService {
  constructor(
    /** The underlying pool (events, backpressure with `pool.full` and 'drain'). */
    readonly pool: Pool,
    readonly name: string = DEFAULT_MAILER_NAME,
    private readonly config: MailerConfig = {},
    private readonly registry?: MailerLookup,
    /** The durable queue of `forRoot({ queue })`, for enqueue(). */
    readonly queue?: MailQueueLike,
  ) {}

  /**
   * Puts the message on the durable queue (`SluiceModule.forRoot({ queue: { name, connection } })`)
   * instead of sending it: composed now, sent by a `@sluice/queue` worker. Resolves with the job.
   * Without a queue: rejects with EOPTIONS.
   */
  enqueue(mail: MailOptions, options?: Record<string, unknown>): Promise<{ id?: string | undefined }> {
    if (!this.queue) return Promise.reject(new SluiceError(ErrorCodes.EOPTIONS, 'enqueue() needs SluiceModule.forRoot({ queue })', { permanent: true }));
    return this.queue.addMail(mail, options);
  }

  private readonly rendering = new Set<Promise<unknown>>();

  /** Sends a prepared message (envelope + RFC 5322 body). Resolves when delivered, rejects with a SluiceError otherwise. */
  send(message: Message, options?: SendOptions): Promise<SendResult> {
    return this.pool.send(message, options);
  }

  /**
   * Composes nodemailer-style message options (from, to, subject, text, html, attachments…) under the
   * module's `defaults`, renders `template` / `textTemplate` with `context`, and sends: through the
   * mailer added as `transporterName` when given. Resolves when delivered (a SendResult: `messageId`,
   * `envelope`, `accepted`, `rejected`, `pending`, `response` as nodemailer's info, plus `outcome`),
   * rejects with a SluiceError otherwise.
   */
  sendMail(mail: SendMailOptions, options?: SendOptions): Promise<SendResult> {
    try {
      const { transporterName, ...rest } = mail;
      const target = this.route(transporterName);
      if (target !== this) return target.sendMail(rest, options);
      const composed = composeMail(this.config, rest);
      if (!(composed instanceof Promise)) return this.pool.sendMail(composed, options);
      // Rendering is asynchronous: the module waits for renders in progress (settled()) before it
      // closes the pool, so a mail whose sendMail() came before shutdown is not refused as ECLOSED.
      this.rendering.add(composed);
      const sent = composed.then((m) => this.pool.sendMail(m, options));
      composed.then(
        () => this.rendering.delete(composed),
        () => this.rendering.delete(composed),
      );
      return sent;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Resolves once every template render in progress has handed its mail to the pool. Called before the pool closes. */
  async settled(): Promise<void> {
    while (this.rendering.size > 0) await Promise.allSettled([...this.rendering]);
  }

  /**
   * Renders a mail as it would be sent (defaults merged, templates rendered) without sending it, to a
   * standalone HTML page; with `file`, also writes the page there. For development.
   */
  async preview(mail: SendMailOptions, options: { file?: string } = {}): Promise<MailPreview> {
    const { transporterName, ...rest } = mail;
    const target = this.route(transporterName);
    if (target !== this) return target.preview(rest, options);
    return previewMail(await composeMail(this.config, rest), options.file);
  }

  /** Connects, runs EHLO, STARTTLS and AUTH, then QUITs. `timeout` (ms): ETIMEDOUT and the connection cut; `signal`: EABORT. */
  verify(options?: VerifyOptions): Promise<VerifyResult> {
    return this.pool.verify(options);
  }

  get stats(): PoolStats {
    return this.pool.stats;
  }

  /** This mailer, or the one added to the registry as `transporterName` (@nestjs-modules/mailer's option name). */
  private route(transporterName: string | undefined): MailerService {
    if (transporterName === undefined || transporterName === this.name) return this;
    if (!this.registry)
      throw new SluiceError(ErrorCodes.EOPTIONS, `No mailer named "${transporterName}": this MailerService has no registry`, { permanent: true });
    return this.registry.get(transporterName);
  }
}

/** The injection token of a pool's mailer: the `MailerService` class for the default pool, a string for a named one. */
export function getMailerToken(name?: string): string | typeof MailerService {
  return name === undefined || name === DEFAULT_MAILER_NAME ? MailerService : `SluiceMailer:${name}`;
}

/** Injects the mailer of the pool registered with `name` (the default pool without one). */
export const InjectMailer = (name?: string): PropertyDecorator & ParameterDecorator => Inject(getMailerToken(name));
