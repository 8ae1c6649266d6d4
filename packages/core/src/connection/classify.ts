import { ErrorCodes, SluiceError, SmtpReplyError, codeForCommand } from '../errors.js';
import { type RecipientResult, recipientResult } from '../message.js';
import { type Reply, syntheticReply } from '../protocol/reply.js';

/** How one transaction ended, as the connection saw it. The pool turns it into the message's outcome. */
export type TransactionResult =
  | {
      type: 'delivered';
      reply: Reply;
      accepted: RecipientResult[];
      rejected: RecipientResult[];
      pending: RecipientResult[];
      /** Recipients not tried because the server said "too many recipients": another transaction. */
      deferred: string[];
    }
  | { type: 'rejected'; error: SluiceError; rejected: RecipientResult[] }
  | {
      type: 'transient';
      error: SluiceError;
      rejected: RecipientResult[];
      /** The recipients to try again. */
      retry: string[];
      /** Retry at once without backoff (a stale connection or a pipelining race, not a server verdict). */
      immediate: boolean;
    }
  | { type: 'unknown'; error: SluiceError; rejected: RecipientResult[] };

/** The replies one transaction got (null: none came, the connection ended first), and what was written. */
export interface TransactionReplies {
  /** The recipients of this transaction, in RCPT order. */
  readonly to: readonly string[];
  readonly mail: Reply | null;
  readonly rcpt: ReadonlyArray<Reply | null>;
  /** The reply to DATA (354 expected). */
  readonly data: Reply | null;
  /** The reply to the final "." or BDAT LAST. */
  readonly final: Reply | null;
  /** The first refused BDAT chunk (RFC 3030 §2: no more chunks may follow it). */
  readonly bdatError: Reply | null;
  /** The final "." or BDAT LAST was written: from here a lost connection means "unknown". */
  readonly committed: boolean;
  /** A lone "." was sent after a 354 that came although every RCPT failed (RFC 2920 §3.1). */
  readonly loneDot: boolean;
  /** BDAT (CHUNKING) rather than DATA. */
  readonly chunking: boolean;
  /** Written while other transactions were in flight (a BDAT window). */
  readonly windowed: boolean;
}

export const CONNECTION_LOST = syntheticReply(451, '4.4.2', 'Connection lost');

export function ok(reply: Reply | null): boolean {
  return reply !== null && reply.code >= 200 && reply.code < 300;
}

/** RFC 5321 §4.5.3.1.10: "452 Too many recipients"; RFC 3463 gives it 4.5.3. */
export function isTooManyRecipients(reply: Reply): boolean {
  return reply.code === 452 && (reply.enhanced === '4.5.3' || /too many recipients/i.test(reply.text));
}

/** The error for a transaction cut before its content was accepted: the connection's own cause when it is more precise. */
export function lostError(command: string, cause: SluiceError | null): SluiceError {
  if (cause && cause.code !== ErrorCodes.ECONNECTION) return cause;
  return new SluiceError(ErrorCodes.ECONNECTION, `The connection was lost before the message content was accepted${cause ? `: ${cause.message}` : ''}`, {
    cause: cause ?? undefined,
    command,
    reply: CONNECTION_LOST,
    permanent: false,
  });
}

/**
 * Turns a transaction's replies into its result. Pure: the same replies give the same result.
 * `closeError` is why the connection ended, when it ended before every reply came.
 */
export function classify(t: TransactionReplies, closeError: SluiceError | null): TransactionResult {
  const rejected: RecipientResult[] = [];
  const pending: RecipientResult[] = [];
  const accepted: RecipientResult[] = [];
  const retry: string[] = [];
  const deferred: string[] = [];
  let firstFailure: Reply | null = null;
  for (let i = 0; i < t.to.length; i++) {
    const reply = t.rcpt[i] ?? null;
    const address = t.to[i]!;
    if (reply === null || isTooManyRecipients(reply)) deferred.push(address);
    else if (ok(reply)) accepted.push(recipientResult(address, reply));
    else {
      firstFailure ??= reply;
      if (reply.code >= 500) rejected.push(recipientResult(address, reply));
      else {
        pending.push(recipientResult(address, reply));
        retry.push(address);
      }
    }
  }
  const to = [...t.to];
  const mail = t.mail;
  if (mail === null) return { type: 'transient', error: lostError('MAIL', closeError), rejected: [], retry: to, immediate: true };
  if (!ok(mail)) {
    const error = new SmtpReplyError(ErrorCodes.EENVELOPE, 'MAIL', mail);
    // 503 to a MAIL written behind a failed transaction in a BDAT window: a pipelining race, not a verdict.
    if (mail.code >= 500 && !(mail.code === 503 && t.windowed)) {
      // Every recipient fails with MAIL's reply: the pipelined RCPTs' "503 need MAIL" says nothing about them.
      return { type: 'rejected', error, rejected: to.map((address) => recipientResult(address, mail)) };
    }
    return { type: 'transient', error, rejected: [], retry: to, immediate: mail.code === 503 };
  }
  if (accepted.length === 0 || t.loneDot) {
    const all = [...retry, ...deferred];
    if (all.length > 0) {
      const reply = firstFailure ?? CONNECTION_LOST;
      return {
        type: 'transient',
        error: new SmtpReplyError(ErrorCodes.EENVELOPE, 'RCPT', reply, `No recipient accepted: ${reply.lines.join(' ')}`),
        rejected,
        retry: all,
        immediate: false,
      };
    }
    const reply = firstFailure!;
    return {
      type: 'rejected',
      error: new SmtpReplyError(ErrorCodes.EENVELOPE, 'RCPT', reply, `Every recipient was rejected: ${reply.lines.join(' ')}`),
      rejected,
    };
  }
  const again = () => [...accepted.map((a) => a.address), ...retry, ...deferred];
  // The content phase.
  if (t.data && t.data.code !== 354) {
    const error = new SmtpReplyError(codeForCommand('DATA'), 'DATA', t.data);
    if (t.data.code >= 500) return { type: 'rejected', error, rejected: [...rejected, ...accepted.map((a) => ({ ...a }))] };
    return { type: 'transient', error, rejected, retry: again(), immediate: false };
  }
  // The first refused chunk is the verdict: replies to later chunks only say "discarded after an
  // earlier error" (RFC 3030 §2).
  const final = t.bdatError ?? t.final;
  const command = t.chunking ? 'BDAT' : 'DOT';
  if (final === null) {
    if (t.committed) {
      const message = 'The connection was lost after the message content was sent and before the server replied: it may or may not have been delivered';
      return {
        type: 'unknown',
        error: new SluiceError(ErrorCodes.EUNKNOWN, message, { cause: closeError ?? undefined, command, outcome: 'unknown' }),
        rejected,
      };
    }
    return { type: 'transient', error: lostError(t.chunking ? 'BDAT' : 'DATA', closeError), rejected, retry: again(), immediate: false };
  }
  if (ok(final)) return { type: 'delivered', reply: final, accepted, rejected, pending, deferred };
  const error = new SmtpReplyError(ErrorCodes.EMESSAGE, command, final, `The message was refused: ${final.lines.join(' ')}`);
  if (final.code >= 500) {
    const refused = accepted.map((a) => ({ ...a, code: final.code, enhancedCode: final.enhanced, response: final.lines.join('\n') }));
    return { type: 'rejected', error, rejected: [...rejected, ...refused] };
  }
  return { type: 'transient', error, rejected, retry: again(), immediate: false };
}
