import { describe, expect, it } from 'vitest';
import type { TransactionResult } from '../../src/connection/classify.js';
import { SluiceError, SmtpReplyError } from '../../src/errors.js';
import { type Attempt, type Verdict, decide } from '../../src/policies/decide.js';
import { DEFAULT_RETRY } from '../../src/policies/retry.js';
import { syntheticReply } from '../../src/protocol/reply.js';

const ok = syntheticReply(250, '2.0.0', 'Ok: queued');
const busy = new SmtpReplyError('EENVELOPE', 'MAIL', syntheticReply(451, '4.3.0', 'Try again'));
const refused = new SmtpReplyError('EMESSAGE', 'DOT', syntheticReply(554, '5.6.0', 'Rejected'));
const unknown = new SluiceError('EUNKNOWN', 'lost after the "."', { outcome: 'unknown' });
const A = 'a@example.com';
const B = 'b@example.com';
const C = 'c@example.com';

const delivered = (deferred: string[] = []): TransactionResult => ({ type: 'delivered', reply: ok, accepted: [], rejected: [], pending: [], deferred });
const transient = (retry: string[], immediate = false): TransactionResult => ({ type: 'transient', error: busy, rejected: [], retry, immediate });

function attempt(result: TransactionResult, overrides: Partial<Attempt> = {}): Attempt {
  return { result, accepted: 0, to: [A, B], rest: [], consumed: false, attempts: 1, retries: 0, ...overrides };
}

const policy = { retry: { ...DEFAULT_RETRY, jitter: 0 }, retryUnknown: false };
const notTried = (address: string) => ({ address, code: 452, enhancedCode: '4.5.3', response: 'Not tried: the body stream cannot be sent twice' });

const TABLE: Array<[name: string, attempt: Attempt, verdict: Verdict, options?: Partial<typeof policy>]> = [
  ['delivered, nothing left: deliver', attempt(delivered(), { accepted: 2 }), { action: 'deliver', pending: [] }],
  ['delivered, some deferred: continue with them first', attempt(delivered([B]), { accepted: 1 }), { action: 'continue', recipients: [B] }],
  ['delivered, more beyond the per-transaction limit: continue', attempt(delivered(), { accepted: 2, rest: [C] }), { action: 'continue', recipients: [C] }],
  [
    'delivered, deferred, but the stream was read: deliver, the rest not tried',
    attempt(delivered([B]), { accepted: 1, rest: [C], consumed: true }),
    { action: 'deliver', pending: [notTried(B), notTried(C)] },
  ],
  [
    'rejected, nobody accepted before: fail rejected',
    attempt({ type: 'rejected', error: refused, rejected: [] }),
    { action: 'fail', outcome: 'rejected', error: refused },
  ],
  [
    'rejected after an earlier transaction delivered: deliver',
    attempt({ type: 'rejected', error: refused, rejected: [] }, { accepted: 1 }),
    { action: 'deliver', pending: [] },
  ],
  ['transient: retry after the first backoff', attempt(transient([A, B])), { action: 'retry', recipients: [A, B], delay: 1000, immediate: false }],
  [
    'transient, second retry: the delay doubles',
    attempt(transient([A, B]), { retries: 1, attempts: 2 }),
    { action: 'retry', recipients: [A, B], delay: 2000, immediate: false },
  ],
  [
    'transient, with recipients still to try: they follow',
    attempt(transient([A]), { rest: [C] }),
    { action: 'retry', recipients: [A, C], delay: 1000, immediate: false },
  ],
  ['transient, budget used: fail failed', attempt(transient([A, B]), { retries: 3, attempts: 4 }), { action: 'fail', outcome: 'failed', error: busy }],
  [
    'transient, budget used, some accepted before: deliver, the rest pending with the error',
    attempt(transient([B]), { retries: 3, accepted: 1 }),
    { action: 'deliver', pending: [{ address: B, code: 451, enhancedCode: '4.3.0', response: '451 4.3.0 Try again' }] },
  ],
  [
    'transient, retries off: fail failed',
    attempt(transient([A, B])),
    { action: 'fail', outcome: 'failed', error: busy },
    { retry: { ...DEFAULT_RETRY, retries: 0 } },
  ],
  ['transient, stream read: never sent again', attempt(transient([A, B]), { consumed: true }), { action: 'fail', outcome: 'failed', error: busy }],
  [
    'immediate (a stale connection): retry at once',
    attempt(transient([A, B], true), { retries: 3, attempts: 4 }),
    { action: 'retry', recipients: [A, B], delay: 0, immediate: true },
  ],
  ['immediate, beyond budget + 3 attempts: fail failed', attempt(transient([A, B], true), { attempts: 7 }), { action: 'fail', outcome: 'failed', error: busy }],
  ['unknown: fail unknown (at most once)', attempt({ type: 'unknown', error: unknown, rejected: [] }), { action: 'fail', outcome: 'unknown', error: unknown }],
  [
    'unknown with retryUnknown: resend, the same recipients',
    attempt({ type: 'unknown', error: unknown, rejected: [] }),
    { action: 'retry', recipients: [A, B], delay: 1000, immediate: false },
    { retryUnknown: true },
  ],
  [
    'unknown with retryUnknown but the stream was read: fail unknown',
    attempt({ type: 'unknown', error: unknown, rejected: [] }, { consumed: true }),
    { action: 'fail', outcome: 'unknown', error: unknown },
    { retryUnknown: true },
  ],
  [
    'unknown with retryUnknown, budget used: fail unknown',
    attempt({ type: 'unknown', error: unknown, rejected: [] }, { retries: 3 }),
    { action: 'fail', outcome: 'unknown', error: unknown },
    { retryUnknown: true },
  ],
];

describe('decide(): the retry decision table (pure)', () => {
  it.each(TABLE)('%s', (_name, a, verdict, options) => {
    expect(decide(a, { ...policy, ...options }, () => 0.5)).toEqual(verdict);
  });

  it('jitters the delay within ±jitter and never beyond maxDelay', () => {
    const jittered = { retry: { ...DEFAULT_RETRY, jitter: 0.2 }, retryUnknown: false };
    const low = decide(attempt(transient([A])), jittered, () => 0);
    const high = decide(attempt(transient([A])), jittered, () => 1);
    expect(low).toMatchObject({ action: 'retry', delay: 800 });
    expect(high).toMatchObject({ action: 'retry', delay: 1200 });
    expect(
      decide(attempt(transient([A]), { retries: 2, attempts: 3 }), { ...jittered, retry: { ...jittered.retry, retries: 10, maxDelay: 3000 } }, () => 1),
    ).toMatchObject({ delay: 3000 });
  });
});
