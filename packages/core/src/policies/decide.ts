import type { TransactionResult } from '../connection/classify.js';
import type { SluiceError } from '../errors.js';
import type { RecipientResult } from '../message.js';
import { type RetryOptions, retryDelay } from './retry.js';

/** Where a message stands when one of its transactions ends. */
export interface Attempt {
  result: TransactionResult;
  /** Recipients accepted so far, this transaction's included. */
  accepted: number;
  /** The recipients of the transaction that ended. */
  to: readonly string[];
  /** Recipients not tried yet (beyond maxRecipientsPerTransaction). */
  rest: readonly string[];
  /** Its stream body was read: it cannot be sent again. */
  consumed: boolean;
  /**
   * A stream body read to its end and spooled (message.ts): it can go to the recipients of another
   * transaction. Not retried for the same recipients: that is `bufferUpTo`'s job.
   */
  replayable?: boolean;
  /** Transactions attempted, this one included. */
  attempts: number;
  /** Retries used so far (transient failures). */
  retries: number;
}

export interface DecidePolicy {
  retry: RetryOptions;
  /** Resend a message whose outcome is unknown (may deliver it twice). */
  retryUnknown: boolean;
}

/** What the pool does next with the message. */
export type Verdict =
  /** Done, delivered: `pending` are recipients that end pending (not tried, or refused for now). */
  | { action: 'deliver'; pending: RecipientResult[] }
  /** Another transaction, at once and first in line, for `recipients` ("too many recipients", or beyond the per-transaction limit). */
  | { action: 'continue'; recipients: string[] }
  /**
   * Send `recipients` again at once, first in line, as part of the same attempt: sluice's own pipelining
   * behind a "." was refused (classify.ts `refusedBehindDot`). No budget, no retry counted.
   */
  | { action: 'resend'; recipients: string[] }
  /** Try `recipients` again after `delay` ms; `immediate` retries do not use the budget (not a server verdict). */
  | { action: 'retry'; recipients: string[]; delay: number; immediate: boolean }
  /** Done, not delivered. */
  | { action: 'fail'; outcome: 'rejected' | 'failed' | 'unknown'; error: SluiceError };

/** Immediate retries (a stale connection, a pipelining race) are bounded too: this many beyond the budget. */
const IMMEDIATE_EXTRA = 3;

const notTried = (address: string): RecipientResult => ({
  address,
  code: 452,
  enhancedCode: '4.5.3',
  response: 'Not tried: the body stream cannot be sent twice',
});

function pendingFrom(address: string, error: SluiceError): RecipientResult {
  return { address, code: error.responseCode ?? 451, enhancedCode: error.enhancedCode ?? null, response: error.response ?? error.message };
}

/**
 * The retry decision table, pure: the same attempt gives the same verdict (`random` only jitters a delay).
 * At most once by default: a message whose content may have been accepted (unknown) is never resent
 * unless `retryUnknown`, and a stream body that was read is never sent again.
 */
export function decide(attempt: Attempt, policy: DecidePolicy, random: () => number = Math.random): Verdict {
  const { result, consumed, retries } = attempt;
  const budget = policy.retry.retries;
  switch (result.type) {
    case 'delivered': {
      const remaining = [...result.deferred, ...attempt.rest];
      if (remaining.length > 0 && (!consumed || attempt.replayable)) return { action: 'continue', recipients: remaining };
      return { action: 'deliver', pending: remaining.map(notTried) };
    }
    case 'rejected':
      if (attempt.accepted > 0) return { action: 'deliver', pending: [] };
      return { action: 'fail', outcome: 'rejected', error: result.error };
    case 'transient': {
      // Bounded by the connection: once refused, it stops pipelining behind the "." for good.
      if (result.resend && (!consumed || attempt.replayable)) return { action: 'resend', recipients: [...result.retry, ...attempt.rest] };
      const canRetry = !consumed && budget > 0 && (result.immediate ? attempt.attempts <= budget + IMMEDIATE_EXTRA : retries < budget);
      if (!canRetry) {
        if (attempt.accepted > 0) return { action: 'deliver', pending: result.retry.map((address) => pendingFrom(address, result.error)) };
        return { action: 'fail', outcome: 'failed', error: result.error };
      }
      const delay = result.immediate ? 0 : retryDelay(retries + 1, policy.retry, random);
      return { action: 'retry', recipients: [...result.retry, ...attempt.rest], delay, immediate: result.immediate };
    }
    case 'unknown':
      if (policy.retryUnknown && !consumed && retries < budget) {
        // The user accepted duplicates over loss.
        return { action: 'retry', recipients: [...attempt.to, ...attempt.rest], delay: retryDelay(retries + 1, policy.retry, random), immediate: false };
      }
      return { action: 'fail', outcome: 'unknown', error: result.error };
  }
}
