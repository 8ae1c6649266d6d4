/**
 * Adaptive connection limit. Providers answer 421 (SocketLabs `421 4.4.5`) or 432 (Microsoft 365
 * `432 4.3.2`) at connect when an account has too many connections. Opening more only burns round
 * trips, so the limit drops to what is open and working, then probes back up one connection at a time.
 */
export class ConcurrencyLimit {
  private current: number;
  private lastChange: number;

  constructor(
    private readonly max: number,
    /** Time without a refusal before the limit grows by one. */
    private readonly probeInterval: number,
    private readonly now: () => number = Date.now,
  ) {
    this.current = max;
    this.lastChange = now();
  }

  get limit(): number {
    if (this.current < this.max && this.now() - this.lastChange >= this.probeInterval) {
      this.current++;
      this.lastChange = this.now();
    }
    return this.current;
  }

  /** The server refused a new connection as one too many; `open` connections are working. */
  refused(open: number): void {
    this.current = Math.max(1, Math.min(this.current - 1, open));
    this.lastChange = this.now();
  }

  /** Whether a reply to the greeting or EHLO says "too many connections". */
  static isTooMany(code: number | undefined): boolean {
    return code === 421 || code === 432;
  }
}
