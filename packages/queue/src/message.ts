/**
 * What a job holds: the exact bytes to send and the envelope, fixed at enqueue. Bodies are stored as
 * latin1 strings (one char per byte, so 7-bit mail costs nothing extra in JSON and 8-bit bytes round-trip
 * exactly). The idempotency key of the crash markers is `message.messageId` (addMail() sets it to the
 * Message-ID it composed), else the job id: either is fixed at enqueue.
 */
import { randomUUID } from 'node:crypto';
import type { Envelope, Message } from '@sluice/core';
import { QueueError, QueueErrorCodes } from './errors.js';

export interface MailJobData {
  v: 1;
  envelope: Envelope;
  /** The RFC 5322 message, latin1-encoded. */
  body: string;
  messageId: string | undefined;
  /** The crash markers' key: `message.messageId`, else `job:<jobId>`. */
  key: string;
  size: number;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024;

/** Checks a message (before anything reaches Redis) and turns it into job data. */
export function toJobData(message: Message, jobId: string, maxSize: number): MailJobData {
  const bad = (m: string) => new QueueError(QueueErrorCodes.EQUEUEMESSAGE, m);
  if (!message || typeof message !== 'object' || !message.envelope || typeof message.envelope !== 'object')
    throw bad('add() needs a message { envelope, body }');
  const { envelope } = message;
  if (typeof envelope.from !== 'string') throw bad('envelope.from must be a string (empty for a null reverse-path)');
  if (!Array.isArray(envelope.to) || envelope.to.length === 0 || !envelope.to.every((a) => typeof a === 'string' && a.length > 0)) {
    throw bad('envelope.to must be a non-empty array of addresses');
  }
  const raw = message.body;
  let body: Buffer;
  if (typeof raw === 'string') body = Buffer.from(raw, 'utf8');
  else if (raw instanceof Uint8Array) body = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  else throw bad('A queued body must be a Buffer, Uint8Array or string: a stream cannot be stored in Redis (see "Redis is not a blob store" in the README)');
  if (body.length === 0) throw bad('message.body is empty');
  if (body.length > maxSize) {
    throw new QueueError(QueueErrorCodes.EQUEUESIZE, `The message is ${body.length} bytes, over the queue's maxMessageSize of ${maxSize} bytes`);
  }
  const messageId = message.messageId;
  return {
    v: 1,
    envelope: { ...envelope, to: [...envelope.to] },
    body: body.toString('latin1'),
    messageId,
    key: messageId ?? `job:${jobId}`,
    size: body.length,
  };
}

export function fromJobData(data: MailJobData): Message {
  return { envelope: data.envelope, body: Buffer.from(data.body, 'latin1'), messageId: data.messageId };
}

export function newJobId(): string {
  return randomUUID();
}
