import type { SluiceError } from '../errors.js';
import type { SendResult } from '../message.js';
import type { PoolOptions } from '../options.js';
import type { RetryOptions } from '../policies/retry.js';
import type { PoolEvents, PoolStats, SendOptions, VerifyResult } from '../pool/types.js';

/**
 * One upstream of a group: a name, an optional weight, and the options of its own pool. What
 * `sendMail()` composes with (`defaults`, `dkim`, `attachDataUrls`) is the group's: a message is
 * composed once, whichever upstream sends it.
 */
export interface UpstreamOptions extends Omit<PoolOptions, MailerKey> {
  /** Unique in the group; it names the upstream in stats, events, results and errors. */
  name: string;
  /**
   * The EHLO name this upstream's connections give (RFC 5321 §4.1.1.1): what `name` is in a pool's
   * options, which here names the upstream. Default: the group's `name`, else the pool's default.
   */
  ehloName?: string;
  /**
   * Share of the messages while it is healthy. With no weight anywhere the upstreams are tried in the
   * order listed (the first healthy one takes everything). With weights, messages are spread over the
   * healthy upstreams by weight (an upstream without one counts 1); weight 0 is a standby, used only
   * when no weighted upstream is healthy.
   */
  weight?: number;
}

/** How an upstream is judged down and probed back up. */
export interface HealthOptions {
  /**
   * Backoff between recovery probes, as the core's `retryDelay()` computes it (the n-th consecutive
   * failure waits `retryDelay(n)`). Default `{ minDelay: 1000, maxDelay: 60000, factor: 2, jitter: 0.2 }`.
   */
  backoff?: Partial<Omit<RetryOptions, 'retries'>>;
  /** A recovery probe (`pool.verify()`: greeting, EHLO, STARTTLS, AUTH, QUIT) gives up after this many ms. Default 10000. */
  probeTimeout?: number;
}

/** Pool options every upstream gets unless it sets its own (`retry`, `timeouts`, `logger`, `auth`…); where an upstream is stays with it. */
export type SharedOptions = Omit<PoolOptions, EndpointKey>;

/** What sendMail() composes with: given for the whole group only. */
export type MailerKey = 'defaults' | 'dkim' | 'attachDataUrls';

/** Where an upstream is: given per upstream only. */
export type EndpointKey = 'host' | 'port' | 'preset' | 'region' | 'service' | 'url';

export interface PoolGroupOptions extends SharedOptions {
  upstreams: UpstreamOptions[];
  health?: HealthOptions;
}

export type UpstreamHealth = 'healthy' | 'down';

/** One upstream's stats: its pool's, its health, and what the group moved away from it. */
export interface UpstreamStats extends PoolStats {
  name: string;
  weight: number | null;
  health: UpstreamHealth;
  /** Consecutive failures (connects, probes) since it last worked; 0 while healthy. */
  failures: number;
  /** When the next recovery probe runs (ms since the epoch), while down. */
  nextProbeAt: number | null;
  /** Messages the group handed to this upstream (each move counts again). */
  routed: number;
  /** Messages moved from this upstream to another before anything of them was written here. */
  movedAway: number;
}

/**
 * The group's stats: connections, queued and in flight summed over the upstreams; the outcome counts
 * are messages' final outcomes (a message moved is counted once, where it ended).
 */
export interface PoolGroupStats extends PoolStats {
  /** Moves from one upstream to another. */
  moved: number;
  upstreams: Record<string, UpstreamStats>;
}

export interface GroupSendOptions extends SendOptions {
  /**
   * Only these upstreams (names) may take the message, e.g. a route by recipient domain; it fails over
   * among them only. Weights and order apply as for the whole group. Default: every upstream.
   */
  upstreams?: readonly string[];
}

/** A delivered message, with the upstream that delivered it. */
export interface GroupSendResult extends SendResult {
  upstream: string;
}

/** Where the group moved a message, and why. */
export interface FailoverInfo {
  from: string;
  to: string;
  /** `withdrawn`: it was still queued on an upstream that went down; `failed`: its send there failed before DATA. */
  reason: 'withdrawn' | 'failed';
  error: SluiceError | null;
}

export type GroupVerifyResult = Record<string, { ok: true; result: VerifyResult } | { ok: false; error: SluiceError }>;

export interface PoolGroupEvents {
  connect: [info: PoolEvents['connect'][0] & { upstream: string }];
  close: [info: PoolEvents['close'][0] & { upstream: string }];
  'connect-error': [error: SluiceError, upstream: string];
  sent: [result: GroupSendResult];
  /** A message ended rejected, failed or unknown (after any failover). */
  'send-error': [error: SluiceError, upstream: string];
  retry: [info: PoolEvents['retry'][0] & { upstream: string }];
  failover: [info: FailoverInfo];
  /** An upstream was judged down; its next probe runs in `retryIn` ms. */
  'upstream-down': [info: { upstream: string; error: SluiceError; retryIn: number }];
  /** An upstream works again (a probe, a connection or a delivery succeeded). */
  'upstream-up': [info: { upstream: string }];
  /** Fewer than `highWaterMark` messages are pending again, after `full` was true. */
  drain: [];
  /** Nothing is pending in the group. */
  idle: [];
}
