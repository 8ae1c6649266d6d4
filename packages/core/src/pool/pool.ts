import { EventEmitter } from 'node:events';
import MailComposer from 'nodemailer/lib/mail-composer';
import { Connection, type ConnectionOwner, type TransactionResult } from '../connection/connection.js';
import { ErrorCodes, SluiceError } from '../errors.js';
import { type Message, type PreparedMessage, type RecipientResult, type SendResult, prepareMessage } from '../message.js';
import { type ConnectionLease, type PoolOptions, type ResolvedOptions, resolveOptions } from '../options.js';
import { ConcurrencyLimit } from '../policies/concurrency.js';
import { TokenBucket } from '../policies/rate-limit.js';
import { retryDelay } from '../policies/retry.js';
import type { Capabilities } from '../protocol/capabilities.js';
import type { DsnOptions } from '../protocol/commands.js';
import { Deque } from './deque.js';

export interface SendOptions {
  /** Aborts the send while it is queued. Once its envelope is on the wire a message is committed. */
  signal?: AbortSignal;
}

/** nodemailer's message options (from, to, subject, text, html, attachments, …), composed by nodemailer's MailComposer. */
export type MailOptions = ConstructorParameters<typeof MailComposer>[0] & { dsn?: DsnOptions };

export interface PoolStats {
  /** Connections open or opening. */
  connections: number;
  connecting: number;
  idle: number;
  busy: number;
  /** The connection limit in force (lowered after "too many connections" refusals). */
  maxConnections: number;
  /** Messages waiting for a connection (retries waiting for their delay, and sendMail() calls still composing, included). */
  queued: number;
  /** Messages on the wire. */
  inFlight: number;
  delivered: number;
  rejected: number;
  failed: number;
  unknown: number;
  retries: number;
}

export interface VerifyResult {
  capabilities: Capabilities;
  encrypted: boolean;
  authenticated: boolean;
}

export interface PoolEvents {
  connect: [info: { connectionId: number; capabilities: Capabilities; encrypted: boolean }];
  close: [info: { connectionId: number; error: SluiceError | null }];
  /** A connection could not be opened. */
  'connect-error': [error: SluiceError];
  sent: [result: SendResult];
  /** A message ended rejected, failed or unknown. */
  'send-error': [error: SluiceError];
  retry: [info: { attempt: number; delay: number; error: SluiceError }];
  /** The queue fell below highWaterMark after reaching it. */
  drain: [];
  /** Nothing queued and nothing in flight. */
  idle: [];
}

/**
 * A message in the pool: its wire-ready form plus its bookkeeping. A class, so that every job has the
 * same shape (one hidden class on the hot path).
 */
class Job implements PreparedMessage {
  from: string;
  to: string[];
  dsn: PreparedMessage['dsn'];
  size: number | undefined;
  eightBit: boolean | null;
  smtpUtf8: boolean;
  body: Buffer | null;
  stream: AsyncIterable<Uint8Array> | null;
  consumed = false;
  dataChunks: Buffer[] | undefined = undefined;
  bdatBody: Buffer | undefined = undefined;
  messageId: string | undefined;
  /** Every recipient, for the result. */
  readonly allTo: string[];
  /** Recipients not yet tried (beyond maxRecipientsPerTransaction, or deferred by "too many recipients"). */
  rest: string[];
  accepted: RecipientResult[] = [];
  rejected: RecipientResult[] = [];
  pending: RecipientResult[] = [];
  /** Transactions attempted. */
  attempts = 0;
  /** Retries used (transient failures). */
  retries = 0;
  readonly queuedAt = Date.now();
  startedAt = 0;
  lastReply: { code: number; enhanced: string | null; text: string } | null = null;
  connectionId = 0;
  onAbort: (() => void) | null = null;
  state: 'queued' | 'delayed' | 'active' | 'done' = 'queued';

  constructor(
    prepared: PreparedMessage,
    limit: number,
    readonly resolve: (result: SendResult) => void,
    readonly reject: (error: SluiceError) => void,
    readonly signal: AbortSignal | undefined,
  ) {
    this.from = prepared.from;
    this.allTo = prepared.to;
    this.to = prepared.to.length > limit ? prepared.to.slice(0, limit) : prepared.to;
    this.rest = prepared.to.length > limit ? prepared.to.slice(limit) : [];
    this.dsn = prepared.dsn;
    this.size = prepared.size;
    this.eightBit = prepared.eightBit;
    this.smtpUtf8 = prepared.smtpUtf8;
    this.body = prepared.body;
    this.stream = prepared.stream;
    this.bdatBody = prepared.bdatBody;
    this.messageId = prepared.messageId;
  }
}

/**
 * A pool of SMTP connections to one server.
 *
 * Scheduling: connections PULL messages when they can write one (an idle connection at once; a
 * pipelining one when it writes the previous message's content). The pool opens a new connection only
 * when the queue holds more messages than the connections already opening or about to pull can take,
 * so it keeps open connections' pipelines full instead of opening idle ones, up to `maxConnections`.
 */
export class Pool extends EventEmitter<PoolEvents> implements ConnectionOwner<Job> {
  readonly options: ResolvedOptions;
  private readonly queue = new Deque<Job>();
  private readonly delayed = new Set<Job>();
  private readonly connections = new Set<Connection<Job>>();
  private readonly idleArmed = new WeakSet<Connection<Job>>();
  private connecting = 0;
  private inFlightCount = 0;
  /** sendMail() calls still composing their message. */
  private composing = 0;
  private readonly limit: ConcurrencyLimit;
  private readonly bucket: TokenBucket | null;
  private wakeTimer: NodeJS.Timeout | null = null;
  private connectFailures = 0;
  private connectBackoffUntil = 0;
  private needDrain = false;
  private closing = false;
  private destroyed = false;
  private closePromise: Promise<void> | null = null;
  private counters = { delivered: 0, rejected: 0, failed: 0, unknown: 0, retries: 0 };
  /** connectionGate: the waits for a lease (aborted by close() and destroy()) and the lease of each connection. */
  private readonly gateWaits = new Set<AbortController>();
  private readonly leases = new Map<Connection<Job>, ConnectionLease>();

  constructor(options: PoolOptions) {
    super();
    this.options = resolveOptions(options);
    this.limit = new ConcurrencyLimit(this.options.maxConnections, this.options.concurrencyProbeInterval);
    this.bucket = this.options.rateLimit ? new TokenBucket(this.options.rateLimit) : null;
  }

  // ------------------------------------------------------------------------------------------------
  // Public API
  // ------------------------------------------------------------------------------------------------

  /**
   * Sends one message. Resolves when it is delivered (at least one recipient accepted and the content
   * acknowledged); rejects with a SluiceError whose `outcome` is 'rejected', 'failed' or 'unknown'.
   * Invalid input rejects before anything is written.
   */
  send(message: Message, options: SendOptions = {}): Promise<SendResult> {
    return this.enqueue(message, options, false);
  }

  /** `accepted`: the message was accepted before close() (sendMail composing it), so closing does not refuse it. */
  private enqueue(message: Message, options: SendOptions, accepted: boolean): Promise<SendResult> {
    return new Promise<SendResult>((resolve, reject) => {
      if (this.destroyed || (this.closing && !accepted)) {
        return reject(new SluiceError(ErrorCodes.ECLOSED, 'The pool is closed', { outcome: 'failed' }));
      }
      let prepared: PreparedMessage;
      try {
        prepared = prepareMessage(message);
      } catch (err) {
        (err as SluiceError).outcome = 'rejected';
        return reject(err);
      }
      if (this.queue.length + this.delayed.size >= this.options.maxQueued) {
        return reject(new SluiceError(ErrorCodes.EQUEUEFULL, `The queue holds ${this.options.maxQueued} messages (maxQueued)`, { outcome: 'failed' }));
      }
      const signal = options.signal;
      if (signal?.aborted) return reject(abortError(signal));
      const job = new Job(prepared, this.options.maxRecipientsPerTransaction, resolve, reject, signal);
      if (signal) {
        job.onAbort = () => {
          if (job.state !== 'queued' && job.state !== 'delayed') return;
          job.state = 'done';
          this.delayed.delete(job);
          this.counters.failed++;
          reject(abortError(signal));
          this.afterDequeue();
        };
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.checkFull();
      this.schedule();
    });
  }

  /** Composes a message with nodemailer's MailComposer (MIME is not written by hand) and sends it. */
  async sendMail(mail: MailOptions, options: SendOptions = {}): Promise<SendResult> {
    if (this.closing || this.destroyed) throw new SluiceError(ErrorCodes.ECLOSED, 'The pool is closed', { outcome: 'failed' });
    // Counted from now: a close() called while the message is being composed waits for it.
    this.composing++;
    let message: Message;
    try {
      const { dsn, ...rest } = mail;
      const node = new MailComposer(rest).compile();
      const envelope = node.getEnvelope();
      const body = await node.build();
      message = { envelope: { from: envelope.from || '', to: envelope.to, dsn }, body, messageId: node.messageId() };
    } catch (cause) {
      throw new SluiceError(ErrorCodes.EMESSAGE, `The message could not be composed: ${(cause as Error)?.message ?? cause}`, { cause, permanent: true, outcome: 'rejected' });
    } finally {
      this.composing--;
    }
    const sent = this.enqueue(message, options, true);
    this.maybeIdle();
    return sent;
  }

  /**
   * Opens a connection, runs greeting, EHLO, STARTTLS and AUTH, then QUITs. Rejects with the error that
   * stopped it. `signal` cuts it short (a health check with its own deadline): EABORT.
   */
  async verify(options: { signal?: AbortSignal } = {}): Promise<VerifyResult> {
    const conn = new Connection<Job>({ ...this.options.connection, maxMessages: 1 }, {
      next: () => null,
      settle: () => {},
      idle: () => {},
      closed: () => {},
    });
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal, 'The verification was aborted');
    const onAbort = () => conn.destroy(abortError(signal!, 'The verification was aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    let capabilities: Capabilities;
    try {
      capabilities = await conn.open();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    const result = { capabilities, encrypted: conn.encrypted, authenticated: conn.authenticated };
    conn.quit();
    return result;
  }

  /** True when the queue has reached `highWaterMark`: wait for 'drain' before sending more. */
  get full(): boolean {
    return this.queue.length + this.delayed.size >= this.options.highWaterMark;
  }

  get stats(): PoolStats {
    let idle = 0;
    let busy = 0;
    for (const c of this.connections) {
      if (c.isIdle) idle++;
      else if (c.state === 'ready') busy++;
    }
    return {
      connections: this.connections.size + this.connecting,
      connecting: this.connecting,
      idle,
      busy,
      maxConnections: this.limit.limit,
      queued: this.queue.length + this.delayed.size + this.composing,
      inFlight: this.inFlightCount,
      ...this.counters,
    };
  }

  /** Waits for everything queued and in flight to end, then QUITs every connection. Idempotent. */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve) => {
      const check = () => {
        if (
          this.queue.length === 0 &&
          this.delayed.size === 0 &&
          this.inFlightCount === 0 &&
          this.composing === 0 &&
          this.connections.size === 0 &&
          this.connecting === 0
        ) {
          this.off('close', check);
          this.off('idle', check);
          this.clearWake();
          resolve();
          return true;
        }
        return false;
      };
      this.on('close', check);
      this.on('idle', check);
      this.maybeIdle();
      if (!check()) this.schedule();
    });
    return this.closePromise;
  }

  /** Stops at once: queued messages fail with ECLOSED, connections are destroyed (in-flight messages end failed or unknown). */
  async destroy(error?: Error): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closing = true;
    this.clearWake();
    const reason = new SluiceError(ErrorCodes.ECLOSED, `The pool was destroyed${error ? `: ${error.message}` : ''}`, { cause: error, outcome: 'failed' });
    const waiting = [...this.queue.drain(), ...this.delayed];
    this.delayed.clear();
    for (const job of waiting) if (job.state !== 'done') this.fail(job, reason, 'failed');
    for (const wait of this.gateWaits) wait.abort();
    const closed = new Promise<void>((resolve) => {
      const check = () => {
        if (this.connections.size > 0) return;
        this.off('close', check);
        resolve();
      };
      this.on('close', check);
      check();
    });
    for (const c of this.connections) c.destroy(reason);
    await closed;
    this.closePromise ??= Promise.resolve();
  }

  // ------------------------------------------------------------------------------------------------
  // Scheduling
  // ------------------------------------------------------------------------------------------------

  private schedule(): void {
    if (this.destroyed) return;
    // Aborted sends stay queued until a connection skips them; at the head they need no connection
    // (a pool waiting on its connectionGate would otherwise keep waiting for them).
    while (this.queue.peek()?.state === 'done') this.queue.shift();
    if (this.queue.length === 0) {
      if (this.closing) this.retireIdle();
      return;
    }
    // Idle connections pull first.
    for (const c of this.connections) {
      if (this.queue.length === 0) break;
      if (c.isIdle && c.canAccept) c.pump();
    }
    // Then open connections for what the open ones cannot take soon.
    const now = Date.now();
    if (now < this.connectBackoffUntil) return this.wakeAt(this.connectBackoffUntil - now);
    const limit = this.limit.limit;
    while (this.queue.length > this.soonCapacity() && this.connections.size + this.connecting < limit) {
      this.openConnection();
    }
  }

  /** Messages that connections opening or already busy will pull without a new connection. */
  private soonCapacity(): number {
    let capacity = this.connecting;
    for (const c of this.connections) if (c.canAccept && c.state === 'ready') capacity++;
    return capacity;
  }

  private openConnection(): void {
    this.connecting++;
    const gate = this.options.connectionGate;
    if (!gate) return this.connect(null);
    // A shared budget (connectionGate): wait for a lease first; the wait counts as connecting.
    const wait = new AbortController();
    this.gateWaits.add(wait);
    gate.acquire(wait.signal).then(
      (lease) => {
        this.gateWaits.delete(wait);
        if (!wait.signal.aborted && !this.destroyed) return this.connect(lease);
        lease.release();
        this.connecting--;
        this.maybeIdle();
      },
      (cause: unknown) => {
        this.gateWaits.delete(wait);
        this.connecting--;
        if (wait.signal.aborted || this.destroyed) return this.maybeIdle();
        this.onConnectError(new SluiceError(ErrorCodes.ECONNECTION, `The connection gate failed: ${(cause as Error)?.message ?? cause}`, { cause, command: 'CONNECT' }));
      },
    );
  }

  private connect(lease: ConnectionLease | null): void {
    const conn = new Connection<Job>(this.options.connection, this);
    conn.open().then(
      (capabilities) => {
        this.connecting--;
        this.connectFailures = 0;
        this.connections.add(conn);
        if (lease) {
          this.leases.set(conn, lease);
          // Lease lost: finish what is in flight, start no new MAIL, QUIT.
          if (lease.lost.aborted) conn.quit();
          else lease.lost.addEventListener('abort', () => conn.quit(), { once: true });
        }
        this.emit('connect', { connectionId: conn.id, capabilities, encrypted: conn.encrypted });
        if (this.destroyed) return conn.destroy();
        conn.pump();
        this.schedule();
      },
      (error: SluiceError) => {
        this.connecting--;
        lease?.release();
        this.onConnectError(error);
      },
    );
  }

  private onConnectError(error: SluiceError): void {
    this.emit('connect-error', error);
    if (this.destroyed) return;
    this.handleConnectError(error);
    // A close() waiting for this attempt to end is woken here: a failed attempt emits no 'close'.
    this.maybeIdle();
  }

  private handleConnectError(error: SluiceError): void {
    if (ConcurrencyLimit.isTooMany(error.responseCode) && this.connections.size > 0) {
      // "Too many connections": work with what is open, probe up later. Nothing failed.
      this.limit.refused(this.connections.size);
      return this.schedule();
    }
    this.connectFailures++;
    // Back off before the next attempt, also while other connections work: a server that refuses at
    // once would otherwise be hammered in a tight loop.
    this.connectBackoffUntil = Date.now() + retryDelay(this.connectFailures, this.options.retry);
    if (this.connections.size > 0) return this.schedule();
    // No connection works. A permanent error (credentials refused with 5xx, TLS required and missing,
    // a certificate refused: each says so where it is made) fails everything queued now; a transient
    // one (a 4xx, even to AUTH or STARTTLS: "454 4.7.0 Temporary authentication failure") charges the
    // oldest message an attempt.
    if (error.permanent) {
      for (const job of this.queue.drain()) this.fail(job, error, 'failed');
      this.afterDequeue();
      return;
    }
    const head = this.queue.peek();
    if (head) {
      head.retries++;
      if (head.retries > this.options.retry.retries) {
        this.queue.shift();
        this.fail(head, error, 'failed');
        this.afterDequeue();
      }
    }
    this.schedule();
  }

  // ConnectionOwner ----------------------------------------------------------------------------------

  next(conn: Connection<Job>): Job | null {
    if (this.destroyed) return null;
    for (;;) {
      const job = this.queue.peek();
      if (!job) return null;
      if (job.state === 'done') {
        this.queue.shift();
        continue;
      }
      if (this.bucket && !this.bucket.take()) {
        this.wakeAt(this.bucket.wait());
        return null;
      }
      this.queue.shift();
      job.state = 'active';
      if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
      job.attempts++;
      job.startedAt = Date.now();
      job.connectionId = conn.id;
      this.inFlightCount++;
      this.afterDequeue();
      return job;
    }
  }

  settle(conn: Connection<Job>, job: Job, result: TransactionResult): void {
    this.inFlightCount--;
    job.connectionId = conn.id;
    switch (result.type) {
      case 'delivered': {
        job.accepted.push(...result.accepted);
        job.rejected.push(...result.rejected);
        job.pending.push(...result.pending);
        job.lastReply = { code: result.reply.code, enhanced: result.reply.enhanced, text: result.reply.lines.join('\n') };
        const remaining = [...result.deferred, ...job.rest];
        if (remaining.length > 0 && !job.consumed) {
          // "Too many recipients" or maxRecipientsPerTransaction: the rest go in another transaction.
          this.split(job, remaining);
          this.requeue(job, 0, true);
        } else {
          for (const address of remaining) job.pending.push({ address, code: 452, enhancedCode: '4.5.3', response: 'Not tried: the body stream cannot be sent twice' });
          this.deliver(job);
        }
        break;
      }
      case 'rejected':
        job.rejected.push(...result.rejected);
        if (job.accepted.length > 0) this.deliver(job);
        else this.fail(job, result.error, 'rejected');
        break;
      case 'transient': {
        job.rejected.push(...result.rejected);
        // An immediate retry (a stale connection, a pipelining race) is not a server verdict and does not
        // use the budget, but it is bounded too; `retry: false` turns both off.
        const budget = this.options.retry.retries;
        const canRetry = !job.consumed && budget > 0 && (result.immediate ? job.attempts <= budget + 3 : job.retries < budget);
        if (!canRetry) {
          if (job.accepted.length > 0) {
            for (const address of result.retry) job.pending.push(this.pendingFrom(address, result.error));
            this.deliver(job);
          } else this.fail(job, result.error, 'failed');
          break;
        }
        if (!result.immediate) job.retries++;
        job.to = result.retry.slice(0, this.options.maxRecipientsPerTransaction);
        job.rest = [...result.retry.slice(this.options.maxRecipientsPerTransaction), ...job.rest];
        const delay = result.immediate ? 0 : retryDelay(job.retries, this.options.retry);
        this.counters.retries++;
        this.emit('retry', { attempt: job.retries, delay, error: result.error });
        this.requeue(job, delay, result.immediate);
        break;
      }
      case 'unknown':
        job.rejected.push(...result.rejected);
        if (this.options.retryUnknown && !job.consumed && job.retries < this.options.retry.retries) {
          // The user accepted duplicates over loss.
          job.retries++;
          this.counters.retries++;
          const delay = retryDelay(job.retries, this.options.retry);
          this.emit('retry', { attempt: job.retries, delay, error: result.error });
          this.requeue(job, delay, false);
        } else this.fail(job, result.error, 'unknown');
        break;
    }
    this.maybeIdle();
  }

  idle(conn: Connection<Job>): void {
    conn.lastActive = Date.now();
    this.armIdle(conn);
    this.maybeIdle();
    if (this.closing && this.queue.length === 0 && this.delayed.size === 0) conn.quit();
  }

  closed(conn: Connection<Job>, error: SluiceError | null): void {
    this.connections.delete(conn);
    const lease = this.leases.get(conn);
    if (lease) {
      this.leases.delete(conn);
      lease.release();
    }
    this.emit('close', { connectionId: conn.id, error });
    this.schedule();
    this.maybeIdle();
  }

  // ------------------------------------------------------------------------------------------------
  // Internals
  // ------------------------------------------------------------------------------------------------

  private split(job: Job, remaining: string[]): void {
    const limit = this.options.maxRecipientsPerTransaction;
    job.to = remaining.slice(0, limit);
    job.rest = remaining.slice(limit);
  }

  private requeue(job: Job, delay: number, front: boolean): void {
    if (this.destroyed) return this.fail(job, new SluiceError(ErrorCodes.ECLOSED, 'The pool was destroyed', {}), 'failed');
    if (delay <= 0) {
      job.state = 'queued';
      if (front) this.queue.unshift(job);
      else this.queue.push(job);
      return this.schedule();
    }
    job.state = 'delayed';
    this.delayed.add(job);
    this.checkFull();
    setTimeout(() => {
      if (job.state !== 'delayed') return;
      this.delayed.delete(job);
      job.state = 'queued';
      this.queue.unshift(job);
      this.schedule();
    }, delay).unref();
  }

  private deliver(job: Job): void {
    if (job.state === 'done') return;
    job.state = 'done';
    this.counters.delivered++;
    const now = Date.now();
    const reply = job.lastReply!;
    const result: SendResult = {
      outcome: 'delivered',
      envelope: { from: job.from, to: job.allTo },
      messageId: job.messageId,
      accepted: job.accepted,
      rejected: job.rejected,
      pending: job.pending,
      response: reply.text,
      responseCode: reply.code,
      enhancedCode: reply.enhanced,
      connectionId: job.connectionId,
      attempts: job.attempts,
      timings: { queued: job.queuedAt, started: job.startedAt, settled: now, total: now - job.queuedAt },
    };
    this.emit('sent', result);
    job.resolve(result);
    this.release(job);
  }

  private fail(job: Job, error: SluiceError, outcome: 'rejected' | 'failed' | 'unknown'): void {
    if (job.state === 'done') return;
    job.state = 'done';
    this.counters[outcome]++;
    // One error object per message: the same error may end several (a connection lost under a window).
    const err = used.has(error) ? error.copy() : error;
    used.add(err);
    err.outcome = outcome;
    err.rejected = job.rejected;
    err.messageId = job.messageId;
    err.attempts = job.attempts;
    this.emit('send-error', err);
    job.reject(err);
    this.release(job);
  }

  private release(job: Job): void {
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
    job.onAbort = null;
    // Drop references to the content as soon as the message is done.
    job.body = null;
    job.stream = null;
    job.dataChunks = undefined;
    job.bdatBody = undefined;
  }

  private pendingFrom(address: string, error: SluiceError): RecipientResult {
    return { address, code: error.responseCode ?? 451, enhancedCode: error.enhancedCode ?? null, response: error.response ?? error.message };
  }

  /** `full` and 'drain' count the same things: queued messages and retries waiting for their delay. */
  private checkFull(): void {
    if (this.full) this.needDrain = true;
  }

  private afterDequeue(): void {
    if (this.needDrain && this.queue.length + this.delayed.size < this.options.highWaterMark) {
      this.needDrain = false;
      queueMicrotask(() => this.emit('drain'));
    }
  }

  private maybeIdle(): void {
    if (this.queue.length === 0 && this.delayed.size === 0 && this.inFlightCount === 0 && this.composing === 0) {
      this.emit('idle');
      if (this.closing) this.retireIdle();
    }
  }

  private retireIdle(): void {
    if (this.queue.length > 0 || this.delayed.size > 0) return;
    // Closing with nothing left to send: no connection is needed any more.
    for (const wait of this.gateWaits) wait.abort();
    for (const c of this.connections) if (c.isIdle) c.quit();
  }

  /** One idle timer per connection at most; it re-checks instead of being reset on every message. */
  private armIdle(conn: Connection<Job>): void {
    if (this.idleArmed.has(conn)) return;
    this.idleArmed.add(conn);
    const timeout = this.options.connection.timeouts.idle;
    const check = () => {
      if (conn.state !== 'ready') return this.idleArmed.delete(conn);
      const left = conn.lastActive + timeout - Date.now();
      if (!conn.isIdle) {
        this.idleArmed.delete(conn);
        return;
      }
      if (left > 0) setTimeout(check, left).unref();
      else {
        this.idleArmed.delete(conn);
        conn.quit();
      }
    };
    setTimeout(check, timeout).unref();
  }

  private wakeAt(ms: number): void {
    if (this.wakeTimer) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.schedule();
    }, Math.max(1, ms));
  }

  private clearWake(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
  }

}

const used = new WeakSet<SluiceError>();

function abortError(signal: AbortSignal, message = 'The send was aborted before it reached the wire'): SluiceError {
  return new SluiceError(ErrorCodes.EABORT, message, { cause: signal.reason, outcome: 'failed' });
}

/** Creates a pool. See PoolOptions for the defaults and why they are what they are. */
export function createPool(options: PoolOptions): Pool {
  return new Pool(options);
}
