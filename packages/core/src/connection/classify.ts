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
      /**
       * Resend at once as part of the same attempt, charged to no budget: sluice's own pipelining behind
       * a "." was refused (the pool stops doing it for that server).
       */
      resend?: boolean;
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
  /** Its MAIL was written in the same group right behind another message's final "." (RFC 2920 §3.1). */
  readonly behindDot?: boolean;
  /** The pipelined RSET before its MAIL was refused: the server's state is unknown (RFC 5321 §4.1.1.5). */
  readonly resetFailed?: boolean;
}

export const CONNECTION_LOST = syntheticReply(451, '4.4.2', 'Connection lost');

export function ok(reply: Reply | null): boolean {
  return reply !== null && reply.code >= 200 && reply.code < 300;
}

const TOO_MANY = /too many (recipients|rcpts?)\b/i;

/**
 * "Too many recipients", in every wording servers use: RFC 5321 §4.5.3.1.10 says 452 (RFC 3463 gives it
 * X.5.3), and that a client must treat a 552 the same way (old servers); some say 451 4.5.3, some send no
 * enhanced code at all ("452 too many recipients", Exim).
 */
export function isTooManyRecipients(reply: Reply): boolean {
  if (reply.code !== 452 && reply.code !== 451 && reply.code !== 552) return false;
  return reply.enhanced?.endsWith('.5.3') === true || TOO_MANY.test(reply.text);
}

/**
 * A 503 to a MAIL written right behind a "." in one group: a server stricter than RFC 2920 §3.1
 * (Haraka 3.3's anti-smuggling check) refused the pipelining, not the message.
 */
export function refusedBehindDot(t: Pick<TransactionReplies, 'mail' | 'behindDot'>): boolean {
  return t.behindDot === true && t.mail !== null && t.mail.code === 503;
}

/** A 2xx or 3xx other than 354 to DATA breaks the protocol (RFC 5321 §4.1.1.4). */
export function dataNot354(reply: Reply): SluiceError {
  return new SmtpReplyError(ErrorCodes.EPROTOCOL, 'DATA', reply, `The server answered DATA with ${reply.code} instead of 354: ${reply.lines.join(' ')}`);
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
    if (refusedBehindDot(t)) return { type: 'transient', error, rejected: [], retry: to, immediate: true, resend: true };
    // The RSET before it was refused: the MAIL's reply may only say so ("503 nested MAIL").
    if (t.resetFailed) return { type: 'transient', error, rejected: [], retry: to, immediate: true };
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
      // No RCPT reply came: the connection's own cause (a timeout, a protocol violation) is the error.
      const error =
        firstFailure === null && closeError && closeError.code !== ErrorCodes.ECONNECTION
          ? closeError
          : new SmtpReplyError(
              ErrorCodes.EENVELOPE,
              'RCPT',
              firstFailure ?? CONNECTION_LOST,
              `No recipient accepted: ${(firstFailure ?? CONNECTION_LOST).lines.join(' ')}`,
            );
      return {
        type: 'transient',
        error,
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
    if (t.data.code < 400) {
      // 250 (or another 3xx) instead of 354: no content was sent, the connection is dropped (connection.ts).
      return { type: 'transient', error: dataNot354(t.data), rejected, retry: again(), immediate: false };
    }
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
  if (final.code < 400) {
    // A 354 (or any 3xx) to the final "." or BDAT LAST breaks the protocol; the content was complete,
    // so it may have been delivered: unknown, never resent unless retryUnknown.
    const message = `The server answered the end of the content with ${final.code}, not a verdict: the message may or may not have been delivered (${final.lines.join(' ')})`;
    return { type: 'unknown', error: new SmtpReplyError(ErrorCodes.EUNKNOWN, command, final, message), rejected };
  }
  const error = new SmtpReplyError(ErrorCodes.EMESSAGE, command, final, `The message was refused: ${final.lines.join(' ')}`);
  if (final.code >= 500) {
    const refused = accepted.map((a) => ({ ...a, code: final.code, enhancedCode: final.enhanced, response: final.lines.join('\n') }));
    return { type: 'rejected', error, rejected: [...rejected, ...refused] };
  }
  return { type: 'transient', error, rejected, retry: again(), immediate: false };
}
