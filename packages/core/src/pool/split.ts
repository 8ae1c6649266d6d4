import type { SluiceError } from '../errors.js';
import type { PreparedMessage, RecipientResult, SendResult } from '../message.js';

/**
 * One message whose recipients are more than one transaction may carry (maxRecipientsPerTransaction):
 * its transactions run at once, as parts, on whichever connections the pool hands them to, and their
 * results merge here into the message's one SendResult or error. Every part shares the message's one
 * PreparedContent (its encodings are made once; the body is never copied). A stream body cannot be
 * read twice, so it is never split in parallel (see `splittable`).
 */
export class Split {
  private readonly results: Array<SendResult | SluiceError | undefined>;
  private left: number;

  /** The parts' recipient lists: `limit` each, in order. */
  readonly chunks: string[][] = [];

  constructor(
    private readonly message: PreparedMessage,
    limit: number,
    private readonly queuedAt: number,
    /** The merged outcome, once every part has ended. */
    private readonly done: (result: SendResult | null, error: SluiceError | null) => void,
  ) {
    for (let i = 0; i < message.to.length; i += limit) this.chunks.push(message.to.slice(i, i + limit));
    this.results = new Array(this.chunks.length);
    this.left = this.chunks.length;
  }

  /** Whether a message's transactions can run at once: more than one, and content that can be read more than once. */
  static splittable(message: PreparedMessage, limit: number): boolean {
    return message.to.length > limit && message.content.body !== null;
  }

  /** The message as part `i` sends it: its recipients, the same content object. */
  part(i: number): PreparedMessage {
    return { ...this.message, to: this.chunks[i]! };
  }

  /** Called once every part has ended, before the merged outcome (the pool drops its abort listener). */
  onDone: (() => void) | null = null;

  /** Part `i` ended (its own SendResult or error). The last one to end merges. */
  settle(i: number, outcome: SendResult | SluiceError): void {
    if (this.results[i] !== undefined) return;
    this.results[i] = outcome;
    if (--this.left > 0) return;
    this.onDone?.();
    this.merge();
  }

  /**
   * Delivered when any part was: the accepted, refused and pending recipients of every part, with the
   * reply of the part that ended last among the delivered ones. A part that failed or whose outcome is
   * unknown puts its recipients (those not refused) in `pending` with its error: they were not resent.
   * Not delivered at all: the most cautious part's error (unknown before failed before rejected), with
   * every part's refused recipients; `attempts` counts the transactions of every part.
   */
  private merge(): void {
    const accepted: RecipientResult[] = [];
    const rejected: RecipientResult[] = [];
    const pending: RecipientResult[] = [];
    let attempts = 0;
    let last: SendResult | null = null;
    let started = Number.POSITIVE_INFINITY;
    const errors: SluiceError[] = [];
    const results = this.results as Array<SendResult | SluiceError>;
    const failedTo = new Map<SluiceError, string[]>();
    for (const [i, r] of results.entries()) {
      attempts += r.attempts ?? 0;
      if (!(r instanceof Error)) {
        accepted.push(...r.accepted);
        rejected.push(...r.rejected);
        pending.push(...r.pending);
        started = Math.min(started, r.timings.started);
        if (!last || r.timings.settled >= last.timings.settled) last = r;
      } else {
        const err = r as SluiceError;
        errors.push(err);
        failedTo.set(err, this.chunks[i]!);
        rejected.push(...(err.rejected ?? []));
      }
    }
    if (last) {
      for (const err of errors) pending.push(...notDelivered(err, failedTo.get(err)!));
      const now = Date.now();
      this.done(
        {
          ...last,
          envelope: { from: this.message.from, to: this.message.to },
          accepted,
          rejected,
          pending,
          attempts,
          timings: { queued: this.queuedAt, started, settled: now, total: now - this.queuedAt },
        },
        null,
      );
      return;
    }
    const rank = { unknown: 0, failed: 1, rejected: 2, delivered: 3 } as const;
    const worst = errors.slice().sort((a, b) => rank[a.outcome ?? 'failed'] - rank[b.outcome ?? 'failed'])[0]!;
    worst.rejected = rejected;
    worst.attempts = attempts;
    this.done(null, worst);
  }
}

/** The recipients of a part that did not deliver, other than those it reports refused, as pending with its error. */
function notDelivered(err: SluiceError, to: string[]): RecipientResult[] {
  const refused = new Set((err.rejected ?? []).map((r) => r.address));
  const response = err.outcome === 'unknown' ? `Outcome unknown, not resent: ${err.response ?? err.message}` : (err.response ?? err.message);
  return to.filter((a) => !refused.has(a)).map((address) => ({ address, code: err.responseCode ?? 451, enhancedCode: err.enhancedCode ?? null, response }));
}
