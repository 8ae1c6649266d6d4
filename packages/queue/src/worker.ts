/**
 * MailWorker: pulls jobs from BullMQ (manual fetching) only when one of its connections can write
 * one now, and sends them through a @sluice/core pool whose connections are gated by the account's
 * shared budget in Redis.
 *
 * Flow control: the pool's own queue is kept near empty, one message waiting per open connection
 * (so that a pipelining connection finds its next message when it writes the previous one's content:
 * one round trip per message). When every open connection has its next message, the worker opens
 * another only with a lease: it waits for one (or for a connection to free up, whichever comes
 * first) while holding the job it fetched, then hands the lease to the pool's connectionGate.
 *
 * Crash safety (at most once): the in-flight marker is written just before the message is handed to
 * the pool, not just before the final dot (the core has no hook there, and one on the pipelined hot
 * path would cost a round trip). That is stricter: a crash between the two holds a message that was
 * never committed (never a duplicate). The window is short because the worker only hands a message
 * over when a connection takes it at once, or when a new connection is opening for it (a few round
 * trips of connection setup).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type ConnectionLease, type Pool, type PoolOptions, type SendResult, type SluiceError, createPool } from '@sluice/core';
import { type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Budget, type BudgetOptions, type BudgetState } from './budget.js';
import { type QueueCounts, jobCounts } from './counts.js';
import { QueueError, QueueErrorCodes } from './errors.js';
import { DEFAULT_PREFIX, heldKey } from './keys.js';
import { type MailJobData, fromJobData } from './message.js';
import { type Outcome, OutcomeRecorder, isThrottling, isTooManyConnections } from './outcomes.js';
import { type RedisConnection, createClient } from './redis.js';

export interface MailWorkerOptions {
  connection: RedisConnection;
  /** The SMTP pool (retries are BullMQ's: the pool's own retry is turned off; connectionGate is the budget's). */
  pool: Omit<PoolOptions, 'connectionGate' | 'retry'> & { retry?: false };
  budget: BudgetOptions;
  /** BullMQ's key prefix. Default 'bull'. */
  prefix?: string;
  /** Prefix of sluice's keys. Default 'sluice'. */
  keyPrefix?: string;
  /** BullMQ job lock, renewed every third of it while the job lives. Default 60 000 ms. */
  lockDuration?: number;
  /** BullMQ's stalled-job check interval. Default 30 000 ms. */
  stalledInterval?: number;
  /** A job stalled more often is failed by BullMQ. Default 10 (the markers make re-runs safe). */
  maxStalledCount?: number;
  /** How long one blocking fetch waits for a job. Default 5000 ms. */
  drainDelay?: number;
  /** Start pulling at once. Default true; else call run(). */
  autorun?: boolean;
}

export interface WorkerMetrics {
  budget: BudgetState;
  /** Jobs this worker holds (fetched, not yet recorded). */
  active: number;
  pool: Pool['stats'];
  outcomes: Record<Outcome, number>;
}

interface Settled {
  outcome: Outcome;
  result?: SendResult;
  error?: SluiceError;
}

interface WorkerEvents {
  /** A job's outcome was recorded on it. */
  outcome: [{ jobId: string; outcome: Outcome; result?: SendResult; error?: SluiceError }];
  /** The account's limit K was lowered (by this worker: another's lowering is seen in metrics().budget.limit). */
  throttled: [{ limit: number; reason: string }];
  /** A "too many connections" (421/432) or throttling reply seen by this worker's pool, whether or not K went down. */
  'throttle-reply': [{ responseCode: number; enhancedCode?: string; command: string }];
  /** A message waited for the account's rate (the Redis GCRA bucket) before it was handed to the pool. */
  'rate-wait': [{ jobId: string; ms: number }];
  error: [Error];
}

export class MailWorker extends EventEmitter<WorkerEvents> {
  readonly worker: Worker<MailJobData>;
  readonly pool: Pool;
  readonly budget: Budget;
  private readonly redis: Redis;
  private readonly blocking: Redis;
  private readonly recorder: OutcomeRecorder;
  private readonly id = randomUUID();
  private seq = 0;
  private readonly jobs = new Map<string, { job: Job<MailJobData>; token: string }>();
  private readonly settling = new Set<Promise<unknown>>();
  /** A lease acquired for the connection pool.send() is about to open (only during that call). */
  private readonly stash: ConnectionLease[] = [];
  private dispatching = 0;
  private leaseWaits = 0;
  /** Lease waits the pool started on its own (no stashed lease): they count as connecting, not as slots. */
  private poolGateWaits = 0;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private readonly stop = new AbortController();
  private readonly lockDuration: number;
  private readonly lockTimer: NodeJS.Timeout;
  private readonly outcomes: Record<Outcome, number> = { delivered: 0, rejected: 0, retry: 0, held: 0 };
  private readonly heldKey: string;
  private readonly prefix: string | undefined;
  /** For counts(), made on first use: a BullMQ Queue on the worker's own Redis client. */
  private queue: Queue | null = null;

  constructor(
    readonly name: string,
    options: MailWorkerOptions,
  ) {
    super();
    if (!options || typeof options !== 'object' || !options.connection || !options.pool) {
      throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, 'MailWorker needs { connection, pool, budget }');
    }
    const pool = options.pool as PoolOptions;
    if (pool.connectionGate !== undefined || (pool.retry !== undefined && pool.retry !== false)) {
      throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, "pool.connectionGate and pool.retry are the worker's own (the budget and BullMQ's retries)");
    }
    const onError = (err: Error) => this.emit('error', err);
    this.redis = createClient(options.connection, `sluice-worker:${name}`, onError);
    this.blocking = createClient(options.connection, `sluice-worker-wait:${name}`, onError);
    this.budget = new Budget(this.redis, this.blocking, options.budget, options.keyPrefix ?? DEFAULT_PREFIX);
    this.budget.on('throttled', (info) => this.emit('throttled', info));
    this.budget.on('error', (err) => this.emit('error', err));
    this.heldKey = heldKey(options.keyPrefix ?? DEFAULT_PREFIX, name);
    this.prefix = options.prefix;
    this.recorder = new OutcomeRecorder(this.redis, this.budget, this.heldKey);
    this.lockDuration = options.lockDuration ?? 60_000;
    this.worker = new Worker<MailJobData>(name, null, {
      connection: createClient(options.connection, `sluice-bullmq:${name}`, onError),
      prefix: options.prefix,
      autorun: false,
      lockDuration: this.lockDuration,
      stalledInterval: options.stalledInterval ?? 30_000,
      maxStalledCount: options.maxStalledCount ?? 10,
      drainDelay: Math.max(1, Math.round((options.drainDelay ?? 5000) / 1000)),
    });
    this.worker.on('error', (err) => this.emit('error', err));
    const connectionGate = {
      acquire: (signal: AbortSignal) => {
        const stashed = this.stash.pop();
        if (stashed) return Promise.resolve(stashed);
        this.poolGateWaits++;
        return this.budget.acquire(signal).finally(() => {
          this.poolGateWaits--;
          this.poke();
        });
      },
    };
    this.pool = createPool({ ...options.pool, retry: false, connectionGate });
    this.pool.on('connect-error', (err) => {
      if (isTooManyConnections(err)) this.throttle(err, `${err.responseCode} at ${err.command ?? 'CONNECT'}`);
    });
    this.pool.on('send-error', (err) => {
      if (isThrottling(err)) this.throttle(err, `${err.responseCode} ${err.enhancedCode ?? ''} at ${err.command}`);
    });
    for (const event of ['connect', 'close', 'connect-error', 'sent', 'send-error', 'idle'] as const) this.pool.on(event, () => this.poke());
    this.lockTimer = setInterval(() => this.extendLocks(), Math.floor(this.lockDuration / 3));
    this.lockTimer.unref();
    if (options.autorun ?? true) this.run();
  }

  /** Starts pulling (autorun does it). Resolves when the worker stops. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  async metrics(): Promise<WorkerMetrics> {
    return { budget: await this.budget.state(), active: this.jobs.size, pool: this.pool.stats, outcomes: { ...this.outcomes } };
  }

  /** The queue's job counts by state, as MailQueue.counts() gives them. */
  counts(): Promise<QueueCounts> {
    this.queue ??= new Queue(this.name, { connection: this.redis, prefix: this.prefix });
    return jobCounts(this.queue, this.redis, this.heldKey);
  }

  /**
   * Stops pulling, sends what it holds, records every outcome, QUITs, then closes BullMQ's and its
   * own Redis connections. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      this.poke();
      await this.running?.catch(() => {});
      await this.pool.close();
      while (this.settling.size > 0) await Promise.allSettled([...this.settling]);
      clearInterval(this.lockTimer);
      await this.budget.close();
      await this.worker.close();
      await this.queue?.close();
      this.redis.disconnect();
      this.blocking.disconnect();
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------------------------------------

  /**
   * Open connections (and those opening) that have no next message yet. A lease the pool waits for
   * on its own (it saw a queued message with no connection to take it soon) is no slot: counting it
   * as one fetched another message for it, whose queueing started another wait, up to
   * pool.maxConnections messages parked in the pool with their in-flight markers written.
   */
  private freeSlots(): number {
    const s = this.pool.stats;
    return s.idle + s.busy + s.connecting - this.poolGateWaits - s.queued - this.dispatching;
  }

  private canOpen(): boolean {
    const s = this.pool.stats;
    return s.connections + this.leaseWaits < s.maxConnections;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private until(condition: () => boolean): Promise<void> {
    if (condition() || this.stop.signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const check = () => {
        if (condition() || this.stop.signal.aborted) resolve();
        else this.wake = check;
      };
      this.wake = check;
    });
  }

  /**
   * Fetch, then wait for a slot: the worker holds one job fetched ahead (BullMQ's moveToActive off the
   * path from a slot freeing up to the message handed over). Nothing is written for it until it is
   * handed over; if the worker dies holding it, BullMQ's stalled check puts it back, and it is sent
   * once (no marker, nothing written to SMTP).
   */
  private async loop(): Promise<void> {
    this.worker.startStalledCheckTimer().catch((err: Error) => this.emit('error', err));
    while (!this.stop.signal.aborted) {
      const token = `${this.id}:${++this.seq}`;
      let job: Job<MailJobData> | undefined;
      try {
        job = await this.worker.getNextJob(token, { block: true });
      } catch (err) {
        if (this.stop.signal.aborted) break;
        this.emit('error', err as Error);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!job) continue;
      this.jobs.set(job.id!, { job, token });
      // A free slot on an open connection, or room for one more connection (and no message already
      // waiting for one: a pool backing off after connection failures gets no more).
      await this.until(() => this.freeSlots() > 0 || (this.freeSlots() === 0 && this.canOpen()));
      const lease = this.freeSlots() <= 0 && !this.stop.signal.aborted ? await this.leaseOrSlot() : null;
      if (this.stop.signal.aborted) {
        lease?.release();
        this.jobs.delete(job.id!);
        await job.moveToWait(token).catch(() => {}); // not ours to send any more
        break;
      }
      this.dispatching++;
      this.settle(job, this.dispatch(job, token, lease));
    }
  }

  /**
   * Waits for a lease for a new connection, or for an open one to free up, whichever comes first.
   * Resolves with the lease, or null when a connection freed up (or the worker is closing).
   */
  private async leaseOrSlot(): Promise<ConnectionLease | null> {
    const wait = new AbortController();
    const onStop = () => wait.abort();
    this.stop.signal.addEventListener('abort', onStop, { once: true });
    this.leaseWaits++;
    let granted: ConnectionLease | null = null;
    const lease = this.budget.acquire(wait.signal).then(
      (l) => {
        if (wait.signal.aborted) l.release();
        else granted = l;
      },
      () => {},
    );
    await Promise.race([lease, this.until(() => this.freeSlots() > 0)]);
    this.leaseWaits--;
    wait.abort();
    this.stop.signal.removeEventListener('abort', onStop);
    return granted;
  }

  private async dispatch(job: Job<MailJobData>, token: string, lease: ConnectionLease | null): Promise<Settled> {
    let handed = false;
    try {
      for (;;) {
        const check = await this.budget.beforeSend(job.data.key, `${job.id}@${token}`);
        if (check.type === 'sent') return { outcome: await this.recorder.alreadySent(job, token, check.stored) };
        if (check.type === 'held')
          return { outcome: await this.recorder.hold(job, token, 'a previous run wrote its in-flight marker and no sent marker: it may have been delivered') };
        if (check.type === 'ok') break;
        this.emit('rate-wait', { jobId: job.id!, ms: check.ms });
        await new Promise((r) => setTimeout(r, check.ms)); // the account's rate, as Redis computed it
      }
      // The gate takes this lease if pool.send() opens a connection (it does so synchronously); else it is freed.
      if (lease) this.stash.push(lease);
      const sending = this.pool.send(fromJobData(job.data));
      if (lease && this.stash.includes(lease)) {
        this.stash.splice(this.stash.indexOf(lease), 1);
        lease.release();
      }
      lease = null;
      handed = true;
      this.dispatching--;
      this.poke();
      let result: SendResult;
      try {
        result = await sending;
      } catch (err) {
        return { outcome: await this.recorder.failed(job, token, err as SluiceError), error: err as SluiceError };
      }
      return { outcome: await this.recorder.delivered(job, token, result), result };
    } finally {
      lease?.release();
      if (!handed) this.dispatching--;
    }
  }

  private settle(job: Job<MailJobData>, work: Promise<Settled>): void {
    const p = work
      .then(({ outcome, result, error }) => {
        this.outcomes[outcome]++;
        this.emit('outcome', { jobId: job.id!, outcome, result, error });
      })
      .catch((err: Error) => {
        // A Redis write failed (not an outage: commands wait through those). The job's lock will
        // lapse and the stalled check hands it out again, where the markers decide.
        this.emit('error', err);
      })
      .finally(() => {
        this.jobs.delete(job.id!);
        this.settling.delete(p);
        this.poke();
      });
    this.settling.add(p);
  }

  private throttle(err: SluiceError, reason: string): void {
    this.emit('throttle-reply', { responseCode: err.responseCode!, enhancedCode: err.enhancedCode, command: err.command ?? 'CONNECT' });
    this.budget.throttle(reason).catch((err: Error) => this.emit('error', err));
  }

  /** RFC 5321 §4.5.3.2.6 gives the server 10 minutes to answer the final dot: the lock lives as long as the job. */
  private extendLocks(): void {
    for (const { job, token } of this.jobs.values()) {
      job.extendLock(token, this.lockDuration).catch((err: Error) => this.emit('error', err));
    }
  }
}
