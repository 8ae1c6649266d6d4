/**
 * Errors of @sluice/queue, with stable codes in the style of @sluice/core's SluiceError. The codes are
 * part of the public API: never rename one, only add.
 */
export const QueueErrorCodes = {
  /** The message is over the queue's maxMessageSize (default 10 MiB): refused at enqueue. */
  EQUEUESIZE: 'EQUEUESIZE',
  /** The message is not one the queue can store (a stream body, a missing envelope, an empty body). */
  EQUEUEMESSAGE: 'EQUEUEMESSAGE',
  /** Invalid options for MailQueue, MailWorker or the budget. */
  EQUEUEOPTIONS: 'EQUEUEOPTIONS',
  /** release() of a job that is not held. */
  ENOTHELD: 'ENOTHELD',
  /** The queue or worker is closed. */
  EQUEUECLOSED: 'EQUEUECLOSED',
} as const;

export type QueueErrorCode = (typeof QueueErrorCodes)[keyof typeof QueueErrorCodes];

export class QueueError extends Error {
  override name = 'QueueError';
  readonly code: QueueErrorCode;
  /** Retrying the same call cannot succeed. */
  readonly permanent: boolean;

  constructor(code: QueueErrorCode, message: string, options: { cause?: unknown; permanent?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.permanent = options.permanent ?? true;
  }
}
