import { Inject } from '@nestjs/common';
import {
  ErrorCodes,
  type MailOptions,
  type Message,
  type Pool,
  type PoolStats,
  type SendOptions,
  type SendResult,
  SluiceError,
  type VerifyResult,
} from '@sluice/core';

/** What `enqueue()` needs of a queue: `@sluice/queue`'s MailQueue has it. */
export interface MailQueueLike {
  addMail(mail: MailOptions, options?: Record<string, unknown>): Promise<{ id?: string | undefined }>;
  close?(): Promise<void>;
}

/** The name of the pool registered without a `name`. */
export const DEFAULT_MAILER_NAME = 'default';

/**
 * Sends through one sluice pool. Inject the default pool's mailer by class (`MailerService`) or with
 * `@InjectMailer()`; a named pool's with `@InjectMailer('billing')`.
 */
export class MailerService {
  constructor(
    /** The underlying pool (events, backpressure with `pool.full` and 'drain'). */
    readonly pool: Pool,
    readonly name: string = DEFAULT_MAILER_NAME,
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

  /** Sends a prepared message (envelope + RFC 5322 body). Resolves when delivered, rejects with a SluiceError otherwise. */
  send(message: Message, options?: SendOptions): Promise<SendResult> {
    return this.pool.send(message, options);
  }

  /** Composes nodemailer-style message options (from, to, subject, text, html, attachments…) and sends. */
  sendMail(mail: MailOptions, options?: SendOptions): Promise<SendResult> {
    return this.pool.sendMail(mail, options);
  }

  /** Connects, runs EHLO, STARTTLS and AUTH, then QUITs. */
  verify(options?: { signal?: AbortSignal }): Promise<VerifyResult> {
    return this.pool.verify(options);
  }

  get stats(): PoolStats {
    return this.pool.stats;
  }
}

/** The injection token of a pool's mailer: the `MailerService` class for the default pool, a string for a named one. */
export function getMailerToken(name?: string): string | typeof MailerService {
  return name === undefined || name === DEFAULT_MAILER_NAME ? MailerService : `SluiceMailer:${name}`;
}

/** Injects the mailer of the pool registered with `name` (the default pool without one). */
export const InjectMailer = (name?: string): PropertyDecorator & ParameterDecorator => Inject(getMailerToken(name));
