import type { SluiceError } from '../errors.js';
import { type RetryOptions, retryDelay } from '../policies/retry.js';
import type { HealthOptions, UpstreamHealth } from './types.js';

const DEFAULT_BACKOFF: RetryOptions = { retries: 0, minDelay: 1000, maxDelay: 60_000, factor: 2, jitter: 0.2 };
export const DEFAULT_PROBE_TIMEOUT = 10_000;

export interface HealthHooks {
  /** Check the upstream (the group runs `pool.verify({ timeout })`); resolve when it works. */
  probe(): Promise<unknown>;
  down(error: SluiceError, retryIn: number): void;
  up(): void;
}

/**
 * One upstream's health: down after a failure, probed after a backoff that grows with each consecutive
 * failure (the core's retryDelay), up again when a probe, a connection or a delivery succeeds.
 */
export class Health {
  state: UpstreamHealth = 'healthy';
  failures = 0;
  nextProbeAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly backoff: RetryOptions;

  constructor(
    options: HealthOptions['backoff'],
    private readonly hooks: HealthHooks,
  ) {
    this.backoff = { ...DEFAULT_BACKOFF, ...options };
  }

  get healthy(): boolean {
    return this.state === 'healthy';
  }

  /**
   * Something failed in a way that says the upstream does not work now. While it is down already, more
   * failures (the other connections of the same burst) change nothing: `failures` counts the checks
   * that failed in a row (going down, then each probe), so that one burst does not stretch the backoff.
   */
  failed(error: SluiceError): void {
    if (this.stopped || this.state === 'down') return;
    this.failures = 1;
    this.state = 'down';
    const delay = retryDelay(this.failures, this.backoff);
    this.arm(delay);
    this.hooks.down(error, delay);
  }

  /** Something worked: a connection opened, a message was delivered, a probe passed. */
  worked(): void {
    if (this.stopped) return;
    this.failures = 0;
    this.clear();
    if (this.state === 'healthy') return;
    this.state = 'healthy';
    this.hooks.up();
  }

  stop(): void {
    this.stopped = true;
    this.clear();
  }

  private arm(delay: number): void {
    this.clear();
    this.nextProbeAt = Date.now() + delay;
    this.timer = setTimeout(() => this.probe(), delay);
    this.timer.unref();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextProbeAt = null;
  }

  private probe(): void {
    this.timer = null;
    if (this.stopped || this.state === 'healthy') return;
    this.hooks.probe().then(
      () => this.worked(),
      () => {
        if (this.stopped || this.state === 'healthy') return;
        this.failures++;
        this.arm(retryDelay(this.failures, this.backoff));
      },
    );
  }
}
