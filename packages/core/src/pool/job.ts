import type { SluiceError } from '../errors.js';
import { NO_CONTENT, type PreparedContent, type PreparedMessage, type RecipientResult, type SendResult } from '../message.js';

const used = new WeakSet<SluiceError>();
/**
 * The one empty list a queued job holds until it has results (a burst of queued jobs each holding three
 * empty arrays is garbage the collector copies for nothing). Never written to: `add()` replaces it.
 */
const NONE: readonly never[] = Object.freeze([]);

/** `list` with `items` appended: a copy of `items` when `list` is still the shared empty one. */
function add<T>(list: T[], items: readonly T[]): T[] {
  if (items.length === 0) return list;
  if ((list as unknown) === NONE) return items.slice();
  list.push(...items);
  return list;
}

/** A list for the user: never the shared empty one (a caller may push to what it got). */
function own<T>(list: T[]): T[] {
  return (list as unknown) === NONE ? [] : list;
}

/**
 * A message in the pool: its wire-ready form plus the pool's bookkeeping. Only the pool writes to it;
 * a connection reads it. A class, so that every job has the same shape (one hidden class on the hot path).
 */
export class Job implements PreparedMessage {
  from: string;
  to: string[];
  dsn: PreparedMessage['dsn'];
  size: number | undefined;
  eightBit: boolean | null;
  smtpUtf8: boolean;
  content: PreparedContent;
  messageId: string | undefined;
  /** Its stream body was read by a transaction: it cannot be sent again. */
  consumed = false;
  /** Every recipient, for the result. */
  readonly allTo: string[];
  /** Recipients not yet tried (beyond maxRecipientsPerTransaction, or deferred by "too many recipients"). */
  rest: string[];
  /** Results so far: append with `addResults()`, never push (they start as the shared empty list). */
  accepted: RecipientResult[] = NONE as never[];
  rejected: RecipientResult[] = NONE as never[];
  pending: RecipientResult[] = NONE as never[];
  /** Transactions attempted. */
  attempts = 0;
  /** Retries used (transient failures). */
  retries = 0;
  readonly queuedAt = Date.now();
  startedAt = 0;
  lastReply: { code: number; enhanced: string | null; text: string } | null = null;
  connectionId = 0;
  onAbort: (() => void) | null = null;
  /** A retry waiting for its delay: the timer keeps the process alive (pool.ts requeue), and ends with the job. */
  delayTimer: NodeJS.Timeout | null = null;
  state: 'queued' | 'delayed' | 'active' | 'done' = 'queued';
  /** How the pool wrote its current transaction: by BDAT, and behind others in flight (policies/bdat-window.ts). */
  viaBdat = false;
  windowed = false;
  /** One transaction of a message split in parallel (split.ts): counted and reported once, by its Split. */
  isPart = false;

  constructor(
    prepared: PreparedMessage,
    private readonly limit: number,
    readonly resolve: (result: SendResult) => void,
    readonly reject: (error: SluiceError) => void,
    readonly signal: AbortSignal | undefined,
  ) {
    this.from = prepared.from;
    this.allTo = prepared.to;
    this.dsn = prepared.dsn;
    this.size = prepared.size;
    this.eightBit = prepared.eightBit;
    this.smtpUtf8 = prepared.smtpUtf8;
    this.content = prepared.content;
    this.messageId = prepared.messageId;
    this.to = NONE as never[];
    this.rest = NONE as never[];
    this.recipients(prepared.to);
  }

  /** The next transactions' recipients: up to maxRecipientsPerTransaction now, the rest later. */
  recipients(list: string[]): void {
    this.to = list.length > this.limit ? list.slice(0, this.limit) : list;
    this.rest = list.length > this.limit ? list.slice(this.limit) : (NONE as never[]);
  }

  /** Books one transaction's recipient results. */
  addResults(results: { accepted?: readonly RecipientResult[]; rejected?: readonly RecipientResult[]; pending?: readonly RecipientResult[] }): void {
    if (results.accepted) this.accepted = add(this.accepted, results.accepted);
    if (results.rejected) this.rejected = add(this.rejected, results.rejected);
    if (results.pending) this.pending = add(this.pending, results.pending);
  }

  /** The result of a delivered message. */
  result(): SendResult {
    const now = Date.now();
    const reply = this.lastReply!;
    return {
      outcome: 'delivered',
      envelope: { from: this.from, to: this.allTo },
      messageId: this.messageId,
      accepted: own(this.accepted),
      rejected: own(this.rejected),
      pending: own(this.pending),
      response: reply.text,
      responseCode: reply.code,
      enhancedCode: reply.enhanced,
      connectionId: this.connectionId,
      attempts: this.attempts,
      timings: { queued: this.queuedAt, started: this.startedAt, settled: now, total: now - this.queuedAt },
    };
  }

  /** The error that ends this message, with its outcome and what happened to its recipients. */
  error(cause: SluiceError, outcome: 'rejected' | 'failed' | 'unknown'): SluiceError {
    // One error object per message: the same error may end several (a connection lost under a window).
    const err = used.has(cause) ? cause.copy() : cause;
    used.add(err);
    err.outcome = outcome;
    err.rejected = own(this.rejected);
    err.messageId = this.messageId;
    err.attempts = this.attempts;
    return err;
  }

  /** Drops what the message holds once it ended: its content and its abort listener. */
  release(): void {
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
    this.onAbort = null;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimer = null;
    this.content.dispose(); // a spooled stream's temporary file
    this.content = NO_CONTENT;
  }
}
