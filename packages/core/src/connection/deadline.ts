/**
 * The one timer of a connection, re-armed lazily: arming only moves the deadline, and the timer, when it
 * fires early, sleeps again until the current deadline. The timer is replaced only when a deadline
 * moves earlier, so a busy connection does not create a timer per reply. Timers never drive a
 * transaction: this one only ends a connection whose server stopped answering.
 */
export class Deadline {
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private deadline = 0;
  private what = '';

  /** `expired(what)` runs when the deadline passes while armed. */
  constructor(private readonly expired: (what: string) => void) {}

  /** The current step (what is awaited) must end within `timeout` ms. */
  arm(timeout: number, what: string): void {
    const deadline = Date.now() + timeout;
    this.deadline = deadline;
    this.what = what;
    if (this.timer && this.timerAt > deadline) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.timer) {
      this.timerAt = deadline;
      this.timer = setTimeout(this.onTimer, timeout);
    }
  }

  /** Nothing is awaited: a pending timer finds no deadline and does nothing. */
  disarm(): void {
    this.deadline = 0;
  }

  /** Whether a pending timer keeps the process alive (not while its connection is idle). */
  ref(hold: boolean): void {
    if (hold) this.timer?.ref();
    else this.timer?.unref();
  }

  /** For good (the connection closed). */
  clear(): void {
    this.deadline = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly onTimer = () => {
    this.timer = null;
    if (this.deadline === 0) return;
    const left = this.deadline - Date.now();
    if (left > 0) {
      this.timerAt = this.deadline;
      this.timer = setTimeout(this.onTimer, left);
      return;
    }
    this.expired(this.what);
  };
}
