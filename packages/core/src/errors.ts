import type { Reply } from './protocol/reply.js';

/**
 * Stable error codes. They are part of the public API: never rename one, only add.
 */
export const ErrorCodes = {
  /** The connection could not be opened, or was lost. */
  ECONNECTION: 'ECONNECTION',
  /** A step did not complete within its timeout. */
  ETIMEDOUT: 'ETIMEDOUT',
  /** TLS negotiation or certificate verification failed, or TLS was required and not available. */
  ETLS: 'ETLS',
  /** Authentication failed or could not be attempted safely. */
  EAUTH: 'EAUTH',
  /** The envelope (sender, recipients, parameters) is invalid or was refused. */
  EENVELOPE: 'EENVELOPE',
  /** The message content is invalid, too large, or was refused. */
  EMESSAGE: 'EMESSAGE',
  /** The server broke the protocol (malformed or oversized reply, unexpected reply). */
  EPROTOCOL: 'EPROTOCOL',
  /** The message needs an extension the server does not offer (SMTPUTF8, 8BITMIME, DSN). */
  ECAPABILITY: 'ECAPABILITY',
  /** The connection was lost after the content was committed and before its reply: it may have been delivered. */
  EUNKNOWN: 'EUNKNOWN',
  /** The send was aborted through its AbortSignal before it reached the wire. */
  EABORT: 'EABORT',
  /** The pool is closed or destroyed. */
  ECLOSED: 'ECLOSED',
  /** The pool's queue is at its hard limit. */
  EQUEUEFULL: 'EQUEUEFULL',
  /** Invalid options. */
  EOPTIONS: 'EOPTIONS',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** How a message ended. Exactly one per message. */
export type Outcome = 'delivered' | 'rejected' | 'failed' | 'unknown';

/**
 * What kind of failure an error is, for code that maps errors to answers (HTTP, job queues):
 * - `input`: the input was refused before the wire (invalid address or body, a message the server's
 *   extensions cannot carry, an aborted send, a message that could not be composed);
 * - `refused`: a 5xx verdict from the server on this message;
 * - `transient`: a 4xx, a connection problem, a timeout, a closed pool, a full queue: try again later;
 * - `unknown`: the message may have been delivered (EUNKNOWN): never resend it blindly;
 * - `config`: the sender's own setup is wrong (invalid options, credentials or TLS refused for good).
 */
export type ErrorKind = 'input' | 'refused' | 'transient' | 'unknown' | 'config';

/** The classification rules, in order; see ErrorKind. */
export function kindOf(code: ErrorCode, permanent: boolean, responseCode: number | undefined): ErrorKind {
  switch (code) {
    case ErrorCodes.EOPTIONS:
      return 'config';
    case ErrorCodes.EUNKNOWN:
      return 'unknown';
    case ErrorCodes.ECAPABILITY:
    case ErrorCodes.EABORT:
      return 'input';
    case ErrorCodes.ECLOSED:
    case ErrorCodes.EQUEUEFULL:
      return 'transient';
    case ErrorCodes.EAUTH:
    case ErrorCodes.ETLS:
      if (permanent) return 'config';
  }
  if (responseCode !== undefined && responseCode >= 500) return 'refused';
  if (responseCode !== undefined && responseCode >= 400) return 'transient';
  // EENVELOPE/EMESSAGE without a reply: refused by sluice itself before the wire (or while composing).
  if ((code === ErrorCodes.EENVELOPE || code === ErrorCodes.EMESSAGE) && permanent) return 'input';
  return 'transient';
}

const kSluiceError = Symbol.for('sluice.error');

export interface SluiceErrorOptions {
  cause?: unknown;
  /** The SMTP reply that caused the error, if any. */
  reply?: Reply;
  /** The command the reply answered (e.g. 'RCPT'), or the step that failed (e.g. 'CONNECT'). */
  command?: string;
  permanent?: boolean;
  outcome?: Outcome;
}

/**
 * Base class of every error sluice raises. `instanceof` works across two copies of the package
 * (the brand is a `Symbol.for` symbol), as undici does it.
 */
export class SluiceError extends Error {
  declare name: string;
  readonly code: ErrorCode;
  /** The classification of this failure (see ErrorKind). */
  readonly kind: ErrorKind;
  /** The SMTP reply code (e.g. 550), when a reply caused the error. */
  readonly responseCode: number | undefined;
  /** The enhanced status code (e.g. '5.1.1', RFC 3463), when the server sent one. */
  readonly enhancedCode: string | undefined;
  /** The full reply text, when a reply caused the error. */
  readonly response: string | undefined;
  /** The SMTP command that failed, or the step (CONNECT, GREETING, TLS). */
  readonly command: string | undefined;
  /** True when retrying the same thing cannot succeed (a 5xx reply, invalid input). */
  readonly permanent: boolean;
  /** For errors that end a send: how the message ended. */
  outcome: Outcome | undefined;
  /** For errors that end a send: recipients refused along the way. */
  rejected?: Array<{ address: string; code: number; enhancedCode: string | null; response: string }>;
  /** For errors that end a send: the message's id, when known. */
  messageId?: string;
  /** For errors that end a send: transactions attempted. */
  attempts?: number;

  constructor(code: ErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.command = options.command;
    const reply = options.reply;
    this.responseCode = reply?.code;
    this.enhancedCode = reply?.enhanced ?? undefined;
    this.response = reply ? reply.lines.join('\n') : undefined;
    this.permanent = options.permanent ?? (reply ? reply.code >= 500 : false);
    this.outcome = options.outcome;
    this.kind = kindOf(code, this.permanent, this.responseCode);
  }

  /** A copy with the same fields, for a second message ended by the same cause. */
  copy(): SluiceError {
    const err = new SluiceError(this.code, this.message, { cause: this.cause, command: this.command, permanent: this.permanent });
    Object.assign(err, { responseCode: this.responseCode, enhancedCode: this.enhancedCode, response: this.response, kind: this.kind });
    // Keep the subclass (SmtpReplyError) so that `instanceof` answers the same for every copy.
    Object.setPrototypeOf(err, Object.getPrototypeOf(this));
    return err;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses use the ordinary prototype check; the base class checks the brand, so that two
    // copies of the package (a dependency of a dependency) still agree on `instanceof SluiceError`.
    if (this !== SluiceError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kSluiceError] === true;
  }

  get [kSluiceError](): true {
    return true;
  }
}

/** An error caused by an SMTP reply. */
export class SmtpReplyError extends SluiceError {
  constructor(code: ErrorCode, command: string, reply: Reply, message?: string) {
    super(code, message ?? `${command} failed: ${reply.lines.join(' ')}`, { reply, command });
  }
}

// The names live on the prototypes, not on each instance, and are set explicitly: a bundler that
// renames classes (esbuild's `_SluiceError`) must not change what `util.inspect` and stacks print.
for (const [cls, name] of [
  [SluiceError, 'SluiceError'],
  [SmtpReplyError, 'SmtpReplyError'],
] as const) {
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(cls, 'name', { value: name, configurable: true });
}

/** The error of a send (or a verification) stopped by its AbortSignal. */
export function abortError(signal: AbortSignal, message = 'The send was aborted before it reached the wire'): SluiceError {
  return new SluiceError(ErrorCodes.EABORT, message, { cause: signal.reason, outcome: 'failed' });
}

export function isSluiceError(value: unknown): value is SluiceError {
  return value instanceof SluiceError;
}

/** Maps the command that got a failing reply to the error code users match on. */
export function codeForCommand(command: string): ErrorCode {
  switch (command) {
    case 'MAIL':
    case 'RCPT':
      return ErrorCodes.EENVELOPE;
    case 'DATA':
    case 'DOT':
    case 'BDAT':
      return ErrorCodes.EMESSAGE;
    case 'AUTH':
      return ErrorCodes.EAUTH;
    case 'STARTTLS':
      return ErrorCodes.ETLS;
    default:
      return ErrorCodes.EPROTOCOL;
  }
}
