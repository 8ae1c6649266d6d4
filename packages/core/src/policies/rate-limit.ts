/**
 * A token bucket: `messages` per `per` ms, with a burst of `burst` tokens. The pool takes a token
 * BEFORE a message is written (nodemailer counts after sending, which lets a burst through).
 */
export interface RateLimitOptions {
  messages: number;
  /** Interval in ms, or 'second' / 'minute' / 'hour'. */
  per: number | 'second' | 'minute' | 'hour';
  /** Tokens available at once. Default: `messages` (a full interval's worth). */
  burst?: number;
}

export const RATE_UNITS = { second: 1000, minute: 60_000, hour: 3_600_000 } as const;

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly ratePerMs: number;
  private readonly capacity: number;

  constructor(
    options: RateLimitOptions,
    private readonly now: () => number = Date.now,
  ) {
    const per = typeof options.per === 'number' ? options.per : RATE_UNITS[options.per];
    if (!(options.messages > 0) || !(per > 0)) throw new RangeError('rateLimit needs messages > 0 and a positive interval');
    this.ratePerMs = options.messages / per;
    this.capacity = Math.max(1, options.burst ?? options.messages);
    this.tokens = this.capacity;
    this.last = this.now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (t - this.last) * this.ratePerMs);
    this.last = t;
  }

  /** Takes a token if one is available. */
  take(): boolean {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until a token is available (0 if one is). */
  wait(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / this.ratePerMs);
  }
}
