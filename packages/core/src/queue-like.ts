import type { MailOptions } from './mail-options.js';

/**
 * What an adapter's `enqueue()` needs of a durable queue: `@sluice/queue`'s `MailQueue` has it. Declared
 * here, as a type only, so that the adapters (`@sluice/express`, `@sluice/nestjs`) take a queue without
 * depending on `@sluice/queue` (BullMQ, Redis) at runtime or in their published types.
 */
export interface MailQueueLike {
  /** Composes the message now and stores it as a job; resolves with the job (its `id`). */
  addMail(mail: MailOptions, options?: Record<string, unknown>): Promise<{ id?: string | undefined }>;
  /** Called only by an adapter that created the queue itself (e.g. from `SluiceModule.forRoot({ queue: { name, connection } })`). */
  close?(): Promise<void>;
}
