import { ErrorCodes, type SluiceError } from '../errors.js';

/**
 * Commands (or setup steps) whose failure means nothing of the message's content was written: the
 * connection and its setup (CONNECTION: lost during setup), MAIL and RCPT. DATA is not among them: once DATA is on the wire the content may
 * follow in the same write (RFC 2920 §3.1), so a message that failed at DATA, the final "." or BDAT stays
 * with its upstream.
 */
const BEFORE_DATA: ReadonlySet<string> = new Set(['CONNECT', 'CONNECTION', 'GREETING', 'TLS', 'STARTTLS', 'EHLO', 'HELO', 'AUTH', 'MAIL', 'RCPT']);

/**
 * Whether a message whose send ended with `error` on one upstream may be sent to another. Only a
 * `failed` outcome (never committed: the core's at-most-once rule) that happened before DATA, or a
 * message that never left the pool's queue (no attempt: the queue was full, the pool could not connect
 * to take it). `rejected` is a verdict on the message and `unknown` may have been delivered: neither moves.
 */
export function movable(error: SluiceError): boolean {
  if (error.outcome !== 'failed') return false;
  if (error.code === ErrorCodes.EABORT || error.code === ErrorCodes.ECLOSED) return false;
  if (error.attempts === 0) return true;
  return error.command !== undefined && BEFORE_DATA.has(error.command);
}
