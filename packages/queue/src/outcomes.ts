/**
 * How a send's outcome is recorded on its BullMQ job, and which replies lower the shared budget.
 *
 * - delivered: the sent marker (with the SendResult) replaces the in-flight one, then the job completes;
 * - rejected (5xx, invalid message) or a permanent failure: UnrecoverableError, no retry;
 * - transient (nothing committed): the in-flight marker is cleared, BullMQ retries with its backoff;
 * - unknown (the content may have been committed): held, never retried unless released.
 */
import type { SendResult, SluiceError } from '@sluice/core';
import { type Job, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Budget } from './budget.js';
import { type HeldEntry, recordHeld } from './held.js';
import type { MailJobData } from './message.js';

export type Outcome = 'delivered' | 'rejected' | 'retry' | 'held';

/** "Too many connections" (RFC 5321 §3.8 421; Microsoft 365's 432 4.3.2) at connect or MAIL. */
export function isTooManyConnections(error: SluiceError): boolean {
  return error.responseCode === 421 || error.responseCode === 432;
}

/** A throttling reply: 454 (SES "Throttling failure"), 451 4.7.x, 450 4.2.1 (Gmail-style rate limits). */
export function isThrottling(error: SluiceError): boolean {
  const { responseCode: code, enhancedCode: enhanced } = error;
  if (code === 454) return true;
  if (code === 451 && enhanced?.startsWith('4.7.')) return true;
  if (code === 450 && enhanced === '4.2.1') return true;
  return isTooManyConnections(error) && error.command === 'MAIL';
}

/** The failure text kept on the job: the stable code, the reply and the command. */
export function describe(error: SluiceError): string {
  const reply = error.responseCode ? ` ${error.responseCode}${error.enhancedCode ? ` ${error.enhancedCode}` : ''}` : '';
  return `${error.code}${reply}${error.command ? ` (${error.command})` : ''}: ${error.message}`;
}

export class OutcomeRecorder {
  constructor(
    private readonly redis: Redis,
    private readonly budget: Budget,
    private readonly heldKey: string,
  ) {}

  async delivered(job: Job<MailJobData>, token: string, result: SendResult): Promise<Outcome> {
    await this.budget.markSent(job.data.key, JSON.stringify(result));
    await job.moveToCompleted(result, token, false);
    return 'delivered';
  }

  /** A re-run found the sent marker: complete with the stored result, send nothing. */
  async alreadySent(job: Job<MailJobData>, token: string, stored: string): Promise<Outcome> {
    await job.moveToCompleted(JSON.parse(stored) as SendResult, token, false);
    return 'delivered';
  }

  async failed(job: Job<MailJobData>, token: string, error: SluiceError): Promise<Outcome> {
    if (error.outcome === 'unknown') return this.hold(job, token, describe(error));
    // Nothing was committed: the message may go again (now or on a retry).
    await this.budget.clearInflight(job.data.key);
    if (error.outcome === 'rejected' || error.permanent) {
      await job.moveToFailed(new UnrecoverableError(describe(error)), token, false);
      return 'rejected';
    }
    await job.moveToFailed(new Error(describe(error)), token, false);
    return 'retry';
  }

  async hold(job: Job<MailJobData>, token: string, reason: string): Promise<Outcome> {
    const entry: HeldEntry = {
      jobId: job.id!,
      account: this.budget.account,
      key: job.data.key,
      marker: this.budget.keys.inflight(job.data.key),
      reason,
      heldAt: Date.now(),
    };
    await recordHeld(this.redis, this.heldKey, entry);
    await job.moveToFailed(new UnrecoverableError(`held: ${reason}`), token, false);
    return 'held';
  }
}
