/**
 * Retry policy: which failures are retried, and after how long. Only what is safe is retried: a
 * transaction that failed before its content was accepted (a 4xx, or a connection lost before the
 * final "."). An unknown outcome is never retried here unless the user opts in (see the pool).
 */
export interface RetryOptions {
  /** Retries after the first attempt. Default 3. */
  retries: number;
  /** Delay before the first retry, in ms. Default 1000. */
  minDelay: number;
  /** Upper bound of a delay, in ms. Default 30000. */
  maxDelay: number;
  /** Multiplier per attempt. Default 2. */
  factor: number;
  /** Randomise each delay by up to ±jitter (0..1). Default 0.2. */
  jitter: number;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 3, minDelay: 1000, maxDelay: 30_000, factor: 2, jitter: 0.2 };

/** Delay before retry number `retry` (1-based): exponential, bounded, jittered. */
export function retryDelay(retry: number, options: RetryOptions, random: () => number = Math.random): number {
  const base = Math.min(options.maxDelay, options.minDelay * options.factor ** Math.max(0, retry - 1));
  const spread = base * options.jitter * (random() * 2 - 1);
  return Math.min(options.maxDelay, Math.max(0, Math.round(base + spread)));
}
