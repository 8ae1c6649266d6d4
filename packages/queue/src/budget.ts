/**
 * One process's handle on an account's shared budget in Redis: connection leases (a counting
 * semaphore with a TTL, renewed while the connection lives), the limit K that any worker lowers on a
 * "too many connections" or throttling reply, the message rate, and the per-message crash markers.
 *
 * Waiters block on the account's "freed" list with BLPOP on a dedicated connection (one per process
 * and account, shared by all local waiters), never in a polling loop; the BLPOP timeout is the time
 * until the earliest lease expires or K may grow, as computed by Redis.
 *
 * Redis cannot fence a remote SMTP server: during a partition a connection whose lease expired may
 * still be open until it notices (at most one renew interval plus its message in flight), so the
 * cluster may briefly hold K + 1.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ConnectionLease } from '@sluice/core';
import type { Redis } from 'ioredis';
import { QueueError, QueueErrorCodes } from './errors.js';
import { type AccountKeys, accountKeys } from './keys.js';
import { ACQUIRE, BEFORE_SEND, MARK_SENT, RELEASE, RENEW, STATE, THROTTLE } from './lua.js';

export interface BudgetOptions {
  /** The provider account the budget belongs to: every worker with the same account shares it. */
  account: string;
  /** At no moment are more connections to this account open (across every worker). */
  maxConnections: number;
  /**
   * Messages never leave faster than this: `messages` per `per` ms (or 'second' / 'minute' / 'hour'),
   * evenly spaced. `burst` lets that many go at once after a quiet spell; the default 1 keeps every
   * window of `per` within `messages` (a provider's "30 a minute" counted over any minute).
   */
  rateLimit?: { messages: number; per: number | 'second' | 'minute' | 'hour'; burst?: number };
  /** Lease time to live, ms; renewed every third of it. Default 10 000. A dead worker's leases free within it. */
  leaseTtl?: number;
  /** After a decrease, K stays down this long before it probes up again. Default 30 000 ms. */
  cooldown?: number;
  /** Then K grows by one per this interval. Default 5 000 ms. */
  probeInterval?: number;
  /**
   * A released lease returns to the budget this much later. The server counts a closed connection
   * only once it has processed the close; a lease reused sooner can meet a "too many connections"
   * (the cluster bench saw one 421 in 4000 messages without it). Default 20 ms.
   */
  releaseDelay?: number;
}

export interface BudgetState {
  account: string;
  /** K: the connection limit in force (lowered after refusals, probed back up). */
  limit: number;
  maxConnections: number;
  /** Leases held across the cluster. */
  leasesHeld: number;
  /** Leases held by this process. */
  localLeases: number;
}

export type BeforeSend = { type: 'sent'; stored: string } | { type: 'held'; holder: string } | { type: 'wait'; ms: number } | { type: 'ok' };

interface Held {
  id: string;
  lost: AbortController;
  /** performance.now() when Redis last confirmed it (the request's start). */
  confirmed: number;
}

const UNITS = { second: 1000, minute: 60_000, hour: 3_600_000 } as const;
const MARKER_TTL = 7 * 24 * 3600 * 1000;

type Scripts = Redis & Record<string, (...args: Array<string | number>) => Promise<unknown>>;

export class Budget extends EventEmitter<{ throttled: [{ limit: number; reason: string }]; lost: [{ leaseId: string }]; error: [Error] }> {
  readonly keys: AccountKeys;
  readonly account: string;
  readonly maxConnections: number;
  private readonly ttl: number;
  private readonly cooldown: number;
  private readonly probe: number;
  private readonly releaseDelay: number;
  private readonly interval: number;
  private readonly tolerance: number;
  private readonly redis: Scripts;
  private readonly held = new Map<string, Held>();
  /** Releases waiting out releaseDelay; close() runs them at once. */
  private readonly delayed = new Set<() => Promise<unknown>>();
  private readonly waiters: Array<{ signal: AbortSignal; resolve: (l: ConnectionLease) => void; reject: (e: unknown) => void }> = [];
  private looping = false;
  private renewing = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    redis: Redis,
    private readonly blocking: Redis,
    options: BudgetOptions,
    prefix: string,
  ) {
    super();
    validate(options);
    this.account = options.account;
    this.keys = accountKeys(prefix, options.account);
    this.maxConnections = options.maxConnections;
    this.ttl = options.leaseTtl ?? 10_000;
    this.cooldown = options.cooldown ?? 30_000;
    this.probe = options.probeInterval ?? 5_000;
    this.releaseDelay = options.releaseDelay ?? 20;
    const rate = options.rateLimit;
    const per = rate ? (typeof rate.per === 'number' ? rate.per : UNITS[rate.per]) : 0;
    this.interval = rate ? per / rate.messages : 0;
    // GCRA: a message may leave `tolerance` ms ahead of its theoretical arrival time.
    this.tolerance = rate ? ((rate.burst ?? 1) - 1) * this.interval : 0;
    this.redis = define(redis);
    this.timer = setInterval(() => this.renew(), Math.max(50, Math.floor(this.ttl / 3)));
    this.timer.unref();
  }

  /** Waits for a connection lease (the pool's connectionGate). Rejects with `signal.reason` when aborted. */
  acquire(signal: AbortSignal): Promise<ConnectionLease> {
    if (this.closed) return Promise.reject(new QueueError(QueueErrorCodes.EQUEUECLOSED, 'The budget is closed'));
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter = { signal, resolve, reject };
      this.waiters.push(waiter);
      signal.addEventListener(
        'abort',
        () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        },
        { once: true },
      );
      void this.loop();
    });
  }

  /** A "too many connections" or throttling reply was seen: lower K for every worker. */
  async throttle(reason: string): Promise<void> {
    const [decreased, limit] = (await this.redis.sluiceThrottle(
      this.keys.conns,
      this.keys.limit,
      this.maxConnections,
      this.cooldown,
      Math.min(1000, this.cooldown),
    )) as [number, number];
    if (decreased === 1) this.emit('throttled', { limit, reason });
  }

  async state(): Promise<BudgetState> {
    const [limit, leasesHeld] = (await this.redis.sluiceState(this.keys.conns, this.keys.limit, this.maxConnections)) as [number, number];
    return { account: this.account, limit, maxConnections: this.maxConnections, leasesHeld, localLeases: this.held.size };
  }

  /**
   * The crash markers, then one rate token. `key` is the message's idempotency key (its Message-ID);
   * `run` names this attempt (the job id and the fetch's token), written into the in-flight marker.
   */
  async beforeSend(key: string, run: string): Promise<BeforeSend> {
    const [type, value] = (await this.redis.sluiceBeforeSend(
      this.keys.sent(key),
      this.keys.inflight(key),
      this.keys.rate,
      MARKER_TTL,
      run,
      this.interval,
      this.tolerance,
    )) as [string, string];
    if (type === 'sent') return { type, stored: value };
    if (type === 'held') return { type, holder: value };
    if (type === 'wait') return { type, ms: Number(value) };
    return { type: 'ok' };
  }

  async markSent(key: string, stored: string): Promise<void> {
    await this.redis.sluiceMarkSent(this.keys.sent(key), this.keys.inflight(key), stored, MARKER_TTL);
  }

  /** Nothing was committed (a rejection or a transient failure before the content): the message may go again. */
  async clearInflight(key: string): Promise<void> {
    await this.redis.del(this.keys.inflight(key));
  }

  get localLeases(): number {
    return this.held.size;
  }

  /** Stops renewing. Leases still held are released (their connections are gone or going). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const w of this.waiters.splice(0)) w.reject(new QueueError(QueueErrorCodes.EQUEUECLOSED, 'The budget is closed'));
    for (const h of [...this.held.values()]) this.releaseLease(h);
    await Promise.all([...this.delayed].map((release) => release()));
  }

  // ------------------------------------------------------------------------------------------------

  private async loop(): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    try {
      while (this.waiters.length > 0 && !this.closed) {
        const id = randomUUID();
        const started = performance.now();
        const reply = (await this.redis.sluiceAcquire(this.keys.conns, this.keys.limit, id, this.ttl, this.maxConnections, this.probe)) as number[];
        if (reply[0] === 1) {
          const lease = this.track(id, started);
          const waiter = this.waiters.shift();
          if (waiter) waiter.resolve(lease);
          else lease.release();
          continue;
        }
        if (this.waiters.length === 0) break;
        // Full: block until a release pushes a token, or until Redis said something may free.
        const popped = await this.blocking.blpop(this.keys.freed, Math.max(0.01, (reply[3] ?? 1000) / 1000));
        if (popped && this.waiters.length === 0) await this.redis.lpush(this.keys.freed, '1'); // not ours to use: pass it on
      }
    } catch (err) {
      if (!this.closed) {
        this.emit('error', err as Error);
        // A Redis error (not an outage: commands wait through those) ends every wait: the pool reports it.
        for (const w of this.waiters.splice(0)) w.reject(err);
      }
    } finally {
      this.looping = false;
    }
  }

  private track(id: string, confirmed: number): ConnectionLease {
    const h: Held = { id, lost: new AbortController(), confirmed };
    this.held.set(id, h);
    return { lost: h.lost.signal, release: () => this.releaseLease(h) };
  }

  private releaseLease(h: Held): void {
    if (!this.held.delete(h.id)) return;
    h.lost.abort();
    let done = false;
    const release = async () => {
      if (done) return; // run by close() before its timer
      done = true;
      this.delayed.delete(release);
      await this.redis.sluiceRelease(this.keys.conns, this.keys.freed, h.id, this.maxConnections).catch((err: Error) => this.fail(err));
    };
    if (this.releaseDelay > 0 && !this.closed) {
      this.delayed.add(release);
      setTimeout(release, this.releaseDelay).unref();
    } else void release();
  }

  /** Errors after close() are the shutdown's, not the user's. */
  private fail(err: Error): void {
    if (!this.closed) this.emit('error', err);
  }

  private lose(h: Held): void {
    if (h.lost.signal.aborted) return;
    h.lost.abort(new QueueError(QueueErrorCodes.EQUEUECLOSED, `Lease ${h.id} lost`, { permanent: false }));
    this.emit('lost', { leaseId: h.id });
  }

  /** Every third of the TTL: renew all leases in one call; a lease Redis did not confirm within the TTL is lost. */
  private renew(): void {
    const now = performance.now();
    // Measured on this process's monotonic clock: a duration, not a comparison with Redis's clock.
    for (const h of this.held.values()) if (now - h.confirmed >= this.ttl) this.lose(h);
    if (this.renewing) return; // the previous call waits for Redis (an outage): do not pile up
    const live = [...this.held.values()].filter((h) => !h.lost.signal.aborted);
    if (live.length === 0) return;
    this.renewing = true;
    this.redis
      .sluiceRenew(this.keys.conns, this.ttl, ...live.map((h) => h.id))
      .then((flags) => {
        (flags as number[]).forEach((ok, i) => {
          const h = live[i]!;
          if (ok === 1) h.confirmed = now;
          else this.lose(h);
        });
      })
      .catch((err: Error) => this.fail(err))
      .finally(() => {
        this.renewing = false;
      });
  }
}

function define(redis: Redis): Scripts {
  const r = redis as Scripts;
  // ioredis runs them with EVALSHA and falls back to EVAL after a Redis restart (NOSCRIPT).
  if (typeof r.sluiceAcquire !== 'function') {
    redis.defineCommand('sluiceAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    redis.defineCommand('sluiceRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('sluiceRelease', { numberOfKeys: 2, lua: RELEASE });
    redis.defineCommand('sluiceThrottle', { numberOfKeys: 2, lua: THROTTLE });
    redis.defineCommand('sluiceState', { numberOfKeys: 2, lua: STATE });
    redis.defineCommand('sluiceBeforeSend', { numberOfKeys: 3, lua: BEFORE_SEND });
    redis.defineCommand('sluiceMarkSent', { numberOfKeys: 2, lua: MARK_SENT });
  }
  return r;
}

function validate(o: BudgetOptions): void {
  const bad = (m: string) => new QueueError(QueueErrorCodes.EQUEUEOPTIONS, m);
  if (!o || typeof o !== 'object') throw bad('budget is required: { account, maxConnections }');
  if (typeof o.account !== 'string' || o.account.length === 0 || /[{}\s]/.test(o.account))
    throw bad('budget.account must be a non-empty string without braces or spaces');
  if (!Number.isInteger(o.maxConnections) || o.maxConnections < 1) throw bad('budget.maxConnections must be a positive integer');
  if (o.releaseDelay !== undefined && !(Number.isInteger(o.releaseDelay) && o.releaseDelay >= 0)) throw bad('budget.releaseDelay must be an integer >= 0 (ms)');
  for (const k of ['leaseTtl', 'cooldown', 'probeInterval'] as const) {
    if (o[k] !== undefined && !(Number.isInteger(o[k]) && (o[k] as number) > 0)) throw bad(`budget.${k} must be a positive integer (ms)`);
  }
  if (o.rateLimit) {
    const { messages, per } = o.rateLimit;
    if (!(Number.isInteger(messages) && messages > 0)) throw bad('budget.rateLimit.messages must be a positive integer');
    if (!(typeof per === 'number' ? per > 0 : per in UNITS)) throw bad("budget.rateLimit.per must be ms > 0 or 'second' | 'minute' | 'hour'");
    const burst = o.rateLimit.burst;
    if (burst !== undefined && !(Number.isInteger(burst) && burst > 0)) throw bad('budget.rateLimit.burst must be a positive integer');
  }
}
