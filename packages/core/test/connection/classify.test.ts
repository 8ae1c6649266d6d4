import { describe, expect, it } from 'vitest';
import { type TransactionReplies, type TransactionResult, classify } from '../../src/connection/classify.js';
import { SluiceError } from '../../src/errors.js';
import { A, B, reply, txn } from './fixtures.js';

const R = {
  ok: reply('250 2.1.0 Ok'),
  rcptOk: reply('250 2.1.5 Ok'),
  queued: reply('250 2.0.0 Ok: queued as ABC123'),
  go: reply('354 End data with <CR><LF>.<CR><LF>'),
  noUser: reply('550 5.1.1 No such user'),
  busy: reply('451 4.3.0 Try again later'),
  tooMany: reply('452 4.5.3 Too many recipients'),
  tooManyText: reply('452 Too many recipients'),
  needMail: reply('503 5.5.1 Need MAIL command'),
  senderRefused: reply('553 5.7.1 Sender not allowed'),
  rejected: reply('554 5.6.0 Message rejected'),
  multi: reply('550-5.7.1 Refused\n550 5.7.1 by policy'),
};

/** The parts of a result the pool reads. */
function shape(result: TransactionResult) {
  const out: Record<string, unknown> = { type: result.type, rejected: result.rejected.map((r) => `${r.address} ${r.code}`) };
  if (result.type === 'delivered')
    Object.assign(out, {
      accepted: result.accepted.map((r) => r.address),
      pending: result.pending.map((r) => r.address),
      deferred: result.deferred,
      reply: result.reply.code,
    });
  else Object.assign(out, { code: result.error.code, command: result.error.command, responseCode: result.error.responseCode });
  if (result.type === 'transient') Object.assign(out, { retry: result.retry, immediate: result.immediate });
  return out;
}

const lost = new SluiceError('ECONNECTION', 'reset', { command: 'CONNECTION' });

const TABLE: Array<[name: string, replies: Partial<TransactionReplies>, closeError: SluiceError | null, expected: Record<string, unknown>]> = [
  [
    'every reply positive: delivered',
    { mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], data: R.go, final: R.queued, committed: true },
    null,
    { type: 'delivered', accepted: [A, B], pending: [], deferred: [], rejected: [], reply: 250 },
  ],
  [
    'one RCPT 550: delivered to the other, the refused one listed',
    { mail: R.ok, rcpt: [R.rcptOk, R.noUser], data: R.go, final: R.queued, committed: true },
    null,
    { type: 'delivered', accepted: [A], pending: [], deferred: [], rejected: [`${B} 550`], reply: 250 },
  ],
  [
    'one RCPT 451: delivered, the other pending',
    { mail: R.ok, rcpt: [R.rcptOk, R.busy], data: R.go, final: R.queued, committed: true },
    null,
    { type: 'delivered', accepted: [A], pending: [B], deferred: [], rejected: [], reply: 250 },
  ],
  [
    '452 too many recipients (enhanced code): deferred to another transaction',
    { mail: R.ok, rcpt: [R.rcptOk, R.tooMany], data: R.go, final: R.queued, committed: true },
    null,
    { type: 'delivered', accepted: [A], pending: [], deferred: [B], rejected: [], reply: 250 },
  ],
  [
    '452 too many recipients (text only): deferred too',
    { mail: R.ok, rcpt: [R.rcptOk, R.tooManyText], data: R.go, final: R.queued, committed: true },
    null,
    { type: 'delivered', accepted: [A], pending: [], deferred: [B], rejected: [], reply: 250 },
  ],
  [
    'BDAT: the final reply is the verdict',
    { mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], final: R.queued, committed: true, chunking: true },
    null,
    { type: 'delivered', accepted: [A, B], pending: [], deferred: [], rejected: [], reply: 250 },
  ],
  [
    'no MAIL reply (reset before it): transient, immediate, every recipient, on MAIL with the synthetic 451',
    {},
    lost,
    { type: 'transient', code: 'ECONNECTION', command: 'MAIL', responseCode: 451, retry: [A, B], immediate: true, rejected: [] },
  ],
  [
    'no MAIL reply and no cause: ECONNECTION on MAIL with the synthetic 451',
    {},
    null,
    { type: 'transient', code: 'ECONNECTION', command: 'MAIL', responseCode: 451, retry: [A, B], immediate: true, rejected: [] },
  ],
  [
    'MAIL 553: rejected, every recipient with MAIL’s reply',
    { mail: R.senderRefused, rcpt: [R.needMail, R.needMail] },
    null,
    { type: 'rejected', code: 'EENVELOPE', command: 'MAIL', responseCode: 553, rejected: [`${A} 553`, `${B} 553`] },
  ],
  [
    'MAIL 451: transient, with backoff',
    { mail: R.busy, rcpt: [R.needMail, R.needMail] },
    null,
    { type: 'transient', code: 'EENVELOPE', command: 'MAIL', responseCode: 451, retry: [A, B], immediate: false, rejected: [] },
  ],
  [
    'MAIL 503 in a BDAT window: a pipelining race, retried at once',
    { mail: R.needMail, rcpt: [R.needMail, R.needMail], chunking: true, windowed: true },
    null,
    { type: 'transient', code: 'EENVELOPE', command: 'MAIL', responseCode: 503, retry: [A, B], immediate: true, rejected: [] },
  ],
  [
    'MAIL 503 outside a window: a verdict',
    { mail: R.needMail, rcpt: [R.needMail, R.needMail] },
    null,
    { type: 'rejected', code: 'EENVELOPE', command: 'MAIL', responseCode: 503, rejected: [`${A} 503`, `${B} 503`] },
  ],
  [
    'every RCPT 550: rejected',
    { mail: R.ok, rcpt: [R.noUser, R.multi], data: R.needMail },
    null,
    { type: 'rejected', code: 'EENVELOPE', command: 'RCPT', responseCode: 550, rejected: [`${A} 550`, `${B} 550`] },
  ],
  [
    'RCPT 550 and 451: transient for the 451 one, the 550 one rejected',
    { mail: R.ok, rcpt: [R.noUser, R.busy], data: R.needMail },
    null,
    { type: 'transient', code: 'EENVELOPE', command: 'RCPT', responseCode: 550, retry: [B], immediate: false, rejected: [`${A} 550`] },
  ],
  [
    'every RCPT refused but DATA got 354: the lone "." does not make it delivered',
    { mail: R.ok, rcpt: [R.busy, R.busy], data: R.go, final: R.queued, loneDot: true },
    null,
    { type: 'transient', code: 'EENVELOPE', command: 'RCPT', responseCode: 451, retry: [A, B], immediate: false, rejected: [] },
  ],
  [
    'RCPT replies missing (lost mid-envelope): transient for all, the synthetic 451',
    { mail: R.ok },
    lost,
    { type: 'transient', code: 'EENVELOPE', command: 'RCPT', responseCode: 451, retry: [A, B], immediate: false, rejected: [] },
  ],
  [
    'DATA 554: rejected, the accepted recipients listed',
    { mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], data: R.rejected },
    null,
    { type: 'rejected', code: 'EMESSAGE', command: 'DATA', responseCode: 554, rejected: [`${A} 250`, `${B} 250`] },
  ],
  [
    'DATA 451: transient',
    { mail: R.ok, rcpt: [R.rcptOk, R.busy], data: R.busy },
    null,
    { type: 'transient', code: 'EMESSAGE', command: 'DATA', responseCode: 451, retry: [A, B], immediate: false, rejected: [] },
  ],
  [
    'lost before the content was committed: transient',
    { mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], data: R.go },
    lost,
    { type: 'transient', code: 'ECONNECTION', command: 'DATA', responseCode: 451, retry: [A, B], immediate: false, rejected: [] },
  ],
  [
    'lost after the final "." was written: unknown',
    { mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], data: R.go, committed: true },
    lost,
    { type: 'unknown', code: 'EUNKNOWN', command: 'DOT', responseCode: undefined, rejected: [] },
  ],
  [
    'lost after BDAT LAST: unknown on BDAT',
    { mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], committed: true, chunking: true },
    lost,
    { type: 'unknown', code: 'EUNKNOWN', command: 'BDAT', responseCode: undefined, rejected: [] },
  ],
  [
    'a timeout before the content: the timeout is the error',
    { mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], data: R.go },
    new SluiceError('ETIMEDOUT', 'Timed out', { command: 'DATA' }),
    { type: 'transient', code: 'ETIMEDOUT', command: 'DATA', responseCode: undefined, retry: [A, B], immediate: false, rejected: [] },
  ],
  [
    'content 554: rejected, every accepted recipient with the final reply',
    { mail: R.ok, rcpt: [R.rcptOk, R.noUser], data: R.go, final: R.rejected, committed: true },
    null,
    { type: 'rejected', code: 'EMESSAGE', command: 'DOT', responseCode: 554, rejected: [`${B} 550`, `${A} 554`] },
  ],
  [
    'content 451: transient for the accepted and the pending ones',
    { mail: R.ok, rcpt: [R.rcptOk, R.busy], data: R.go, final: R.busy, committed: true },
    null,
    { type: 'transient', code: 'EMESSAGE', command: 'DOT', responseCode: 451, retry: [A, B], immediate: false, rejected: [] },
  ],
  [
    'a refused BDAT chunk is the verdict, not the later "discarded" reply',
    { mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], bdatError: R.rejected, final: R.needMail, committed: true, chunking: true },
    null,
    { type: 'rejected', code: 'EMESSAGE', command: 'BDAT', responseCode: 554, rejected: [`${A} 554`, `${B} 554`] },
  ],
];

describe('classify(): a transaction’s replies to its result (pure, reply fixtures)', () => {
  it.each(TABLE)('%s', (_name, replies, closeError, expected) => {
    const t = txn(replies);
    const result = classify(t, closeError);
    expect(shape(result)).toEqual(expected);
    // Pure: the same replies give the same result.
    expect(shape(classify(t, closeError))).toEqual(expected);
  });

  it('keeps the whole multi-line reply in the recipient result', () => {
    const result = classify(txn({ mail: R.ok, rcpt: [R.rcptOk, R.multi], data: R.go, final: R.queued, committed: true }), null);
    expect(result.rejected).toEqual([{ address: B, code: 550, enhancedCode: '5.7.1', response: '550-5.7.1 Refused\n550 5.7.1 by policy' }]);
  });

  it('an unknown outcome carries the connection’s cause', () => {
    const result = classify(txn({ mail: R.ok, rcpt: [R.rcptOk, R.rcptOk], data: R.go, committed: true }), lost);
    expect(result.type === 'unknown' && result.error.cause).toBe(lost);
    expect(result.type === 'unknown' && result.error.outcome).toBe('unknown');
  });
});
