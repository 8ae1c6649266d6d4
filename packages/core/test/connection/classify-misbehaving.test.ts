import { describe, expect, it } from 'vitest';
import { classify, isTooManyRecipients, refusedBehindDot, type TransactionReplies } from '../../src/connection/classify.js';
import { ErrorCodes, SluiceError } from '../../src/errors.js';
import { decide } from '../../src/policies/decide.js';
import { DEFAULT_RETRY } from '../../src/policies/retry.js';
import { A, B, reply, txn } from './fixtures.js';

// Issue 16: the pure halves of findings 3, 5, 8 and 9 (the wire halves: misbehaving-servers.test.ts).

const ok = reply('250 2.1.0 Ok');
/** MAIL and both RCPTs accepted, unless overridden. */
const accepted = (overrides: Partial<TransactionReplies>) => txn({ mail: ok, rcpt: [ok, ok], ...overrides });

describe('isTooManyRecipients (RFC 5321 §4.5.3.1.10)', () => {
  it.each([
    ['452 4.5.3 Too many recipients', true],
    ['451 4.5.3 Too many recipients', true],
    ['452 too many recipients', true],
    ['552 Too many recipients', true],
    ['552 5.5.3 Error: too many recipients', true],
    ['452 4.5.3 Error: limit reached', true],
    ['452 4.3.1 Insufficient system storage', false],
    ['552 5.2.2 Mailbox full', false],
    ['550 5.5.3 Too many recipients', false],
    ['451 4.3.0 Try again later', false],
  ])('%s → %s', (wire, expected) => {
    expect(isTooManyRecipients(reply(wire))).toBe(expected);
  });

  it('a 552 "too many" to the second RCPT defers it: delivered to the first, the second for another transaction', () => {
    const result = classify(accepted({ rcpt: [ok, reply('552 Too many recipients')], data: reply('354 Go'), final: reply('250 2.0.0 Ok'), committed: true }), null);
    expect(result).toMatchObject({ type: 'delivered', deferred: [B], pending: [] });
  });
});

describe('a 3xx to the end of the content', () => {
  for (const chunking of [false, true]) {
    it(`${chunking ? 'BDAT LAST' : '"."'} answered 354: unknown (the content was complete), and decide() never resends it unless retryUnknown`, () => {
      const result = classify(accepted({ chunking, data: chunking ? null : reply('354 Go'), final: reply('354 Go ahead'), committed: true }), null);
      expect(result.type).toBe('unknown');
      const error = (result as { error: SluiceError }).error;
      expect(error.code).toBe(ErrorCodes.EUNKNOWN);
      expect(error.responseCode).toBe(354);
      expect(error.command).toBe(chunking ? 'BDAT' : 'DOT');
      const attempt = { result, accepted: 0, to: [A, B], rest: [], consumed: false, attempts: 1, retries: 0 };
      expect(decide(attempt, { retry: DEFAULT_RETRY, retryUnknown: false })).toMatchObject({ action: 'fail', outcome: 'unknown' });
      expect(decide(attempt, { retry: DEFAULT_RETRY, retryUnknown: true }, () => 0.5)).toMatchObject({ action: 'retry' });
    });
  }
});

describe('protocol violations: the real cause in the error', () => {
  it('250 to DATA: transient EPROTOCOL naming DATA', () => {
    const result = classify(accepted({ data: reply('250 2.0.0 Ok') }), null);
    expect(result).toMatchObject({ type: 'transient', retry: [A, B] });
    expect((result as { error: SluiceError }).error).toMatchObject({ code: 'EPROTOCOL', command: 'DATA', responseCode: 250 });
  });

  it('RCPT replies missing after a protocol error or a timeout: that error, not "EENVELOPE … Connection lost"', () => {
    for (const cause of [
      new SluiceError(ErrorCodes.EPROTOCOL, 'Unexpected reply with no command outstanding: 250 by the way'),
      new SluiceError(ErrorCodes.ETIMEDOUT, 'Timed out waiting for the server (RCPT)', { command: 'RCPT' }),
    ]) {
      const result = classify(accepted({ rcpt: [null, null] }), cause);
      expect(result.type).toBe('transient');
      expect((result as { error: SluiceError }).error).toBe(cause);
    }
  });
});

describe('503 to a MAIL written behind the final "." (RFC 2920 §3.1, Haraka 3.3)', () => {
  const refused = reply('503 5.5.0 Error: command pipelined after end of DATA');

  it('behind a ".": resent at once as the same attempt, also with retry: false', () => {
    const t = accepted({ mail: refused, rcpt: [refused, refused], data: refused, behindDot: true });
    expect(refusedBehindDot(t)).toBe(true);
    const result = classify(t, null);
    expect(result).toMatchObject({ type: 'transient', resend: true, retry: [A, B] });
    const attempt = { result, accepted: 0, to: [A, B], rest: ['c@example.com'], consumed: false, attempts: 1, retries: 0 };
    expect(decide(attempt, { retry: { ...DEFAULT_RETRY, retries: 0 }, retryUnknown: false })).toEqual({
      action: 'resend',
      recipients: [A, B, 'c@example.com'],
    });
  });

  it('not behind a ".": a 503 to MAIL stays a refusal', () => {
    const t = accepted({ mail: refused, rcpt: [refused, refused], data: refused });
    expect(refusedBehindDot(t)).toBe(false);
    expect(classify(t, null).type).toBe('rejected');
  });

  it('a refused RSET before it: the MAIL reply ("503 nested MAIL") is not a verdict, retried at once', () => {
    const t = accepted({ mail: reply('503 5.5.1 Error: nested MAIL command'), rcpt: [null, null], resetFailed: true });
    expect(classify(t, null)).toMatchObject({ type: 'transient', immediate: true, retry: [A, B] });
  });
});

describe('a spooled stream body (decide)', () => {
  it('delivered with deferred recipients, stream read but replayable: continue, not pending', () => {
    const result = classify(accepted({ rcpt: [ok, reply('452 4.5.3 Too many recipients')], data: reply('354 Go'), final: reply('250 Ok'), committed: true }), null);
    const attempt = { result, accepted: 1, to: [A, B], rest: [], consumed: true, replayable: true, attempts: 1, retries: 0 };
    expect(decide(attempt, { retry: DEFAULT_RETRY, retryUnknown: false })).toEqual({ action: 'continue', recipients: [B] });
  });
});
