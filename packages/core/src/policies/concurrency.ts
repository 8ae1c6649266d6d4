/**
 * Adaptive connection limit. Servers answer 421 or 432 at the greeting or EHLO beyond N connections:
 * Exim's smtp_accept_max, smtp-server's maxClients, SocketLabs `421 4.4.5`, Microsoft 365 `432 4.3.2`,
 * each with its own text. Opening more only burns round trips, so the limit converges to what the
 * server accepts, then probes up one connection at a time.
 *
 * The rule:
 * - A refusal lowers the limit by one, and to no fewer than what the pool was serving at that instant:
 *   connections open AND attempts still in setup (some of those the server has accepted; counting only
 *   the open ones would drop the limit to 1 when a burst is refused while its first greetings are due).
 *   Over a burst of M attempts against a cap of N this ends at exactly N: each of the M - N refusals
 *   takes one off.
 * - A connection set up is evidence: the limit never stays below the number open at once.
 * - A refusal below what the server has already accepted from us is not believed at first: one of
 *   ours just closed and the server has not freed its slot yet. The pool pauses new attempts for one
 *   probe interval instead, and refusals within that pause have the same cause. A refusal after the
 *   pause, with no connection set up since, is believed.
 * - Growth: one more connection per probe interval without a refusal. A refused probe doubles the
 *   interval (up to 30 s, or the configured interval if longer), a successful one resets it, so a
 *   capped server sees one refused attempt per interval at most, and the limit converges within seconds.
 */
export class ConcurrencyLimit {
  private current: number;
  private lastChange: number;
  /** Wait before the next probe. */
  private wait: number;
  private readonly maxWait: number;
  /** The last change was a probe (growth) that no connection or refusal has answered yet. */
  private probing = false;
  /** Most connections open at once since the last believed refusal. */
  private confirmed = 0;
  /** A refusal below `confirmed` was put down to the server's lag (until `doubtUntil`) since the last connection set up. */
  private doubted = false;
  private doubtUntil = 0;

  constructor(
    private readonly max: number,
    /** Time without a refusal before the limit grows by one. */
    private readonly probeInterval: number,
    private readonly now: () => number = Date.now,
  ) {
    this.current = max;
    this.lastChange = now();
    this.wait = probeInterval;
    this.maxWait = Math.max(probeInterval, 30_000);
  }

  /** The limit in force. Reading it when a probe is due grows it by one (read it when a connection is wanted). */
  get limit(): number {
    if (this.current < this.max && this.now() - this.lastChange >= this.wait) {
      this.current++;
      this.lastChange = this.now();
      this.probing = true;
    }
    return this.current;
  }

  /** The limit the server has not refuted, not counting a probe still unanswered. Reading it does not probe (for stats). */
  get value(): number {
    return this.probing ? this.current - 1 : this.current;
  }

  /** Milliseconds until the next probe is due; Infinity at max. */
  nextProbeIn(): number {
    if (this.current >= this.max) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.lastChange + this.wait - this.now());
  }

  /**
   * The server refused a new connection as one too many while `serving` of ours were open or in setup.
   * Returns how long to pause new attempts (0: none; the limit says how many).
   */
  refused(serving: number): number {
    const now = this.now();
    if (serving < this.confirmed) {
      if (!this.doubted) {
        this.doubted = true;
        this.doubtUntil = now + this.probeInterval;
      }
      if (now < this.doubtUntil) return this.doubtUntil - now;
      this.confirmed = serving;
    }
    // Doubled from at least 1 ms: an interval of 0 must not probe a refusing server in a tight loop.
    if (this.probing) this.wait = Math.min(this.maxWait, Math.max(1, this.wait) * 2);
    this.probing = false;
    this.current = Math.max(1, Math.min(this.current - 1, serving));
    this.lastChange = now;
    return 0;
  }

  /** A connection was set up; `open` are open now. */
  connected(open: number): void {
    this.doubted = false;
    this.confirmed = Math.max(this.confirmed, open);
    if (open >= this.current) {
      // The limit is reached and holds: a probe that got here succeeded.
      this.probing = false;
      this.wait = this.probeInterval;
    }
    this.current = Math.max(this.current, Math.min(this.max, open));
  }

  /** Whether a reply to the greeting or EHLO says "too many connections". */
  static isTooMany(code: number | undefined): boolean {
    return code === 421 || code === 432;
  }
}
