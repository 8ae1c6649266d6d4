// Over 400 lines on purpose: this file is the scheduler, one state machine whose invariants (every
// message is in exactly one of queue, delayed, in flight or done; inFlightCount matches the connections'
// transactions; close() resolves only when all of them are empty) are easier to check in one place.
// Everything that is not scheduling lives elsewhere: job.ts, types.ts, verify.ts, idle.ts, compose.ts,
// policies/decide.ts (the retry table), connection/ (the wire).
import assert from 'node:assert';
import { EventEmitter } from 'node:events';
import Denque from 'denque';
import { type Compose, type MailOptions, createComposer, mailEnvelope } from '../compose.js';
import type { TransactionResult } from '../connection/classify.js';
import { Connection, type ConnectionOwner, type PeerMemory } from '../connection/connection.js';
import { TlsSessions } from '../connection/tls-session.js';
import { envelopeOf, publishClose, publishConnect, publishConnectError, publishThrottle, publishWait, traceSend, tracingSends } from '../diagnostics.js';
import { ErrorCodes, SluiceError, abortError } from '../errors.js';
import { type Message, type PreparedMessage, type SendResult, isAsyncIterable, prepareMessage, readUpTo } from '../message.js';
import { type ConnectionLease, type PoolOptions, type ResolvedOptions, resolveOptions } from '../options.js';
import { ConcurrencyLimit } from '../policies/concurrency.js';
import { BdatWindow, windowAnomaly } from '../policies/bdat-window.js';
import { decide } from '../policies/decide.js';
import { TokenBucket } from '../policies/rate-limit.js';
import { retryDelay } from '../policies/retry.js';
import { armIdle } from './idle.js';
import { Job } from './job.js';
import { Split } from './split.js';
import type { PoolEvents, PoolStats, SendOptions, VerifyOptions, VerifyResult } from './types.js';
import { verify } from './verify.js';

export type { MailOptions } from '../compose.js';
export { emptyStats } from './types.js';
export type { PoolEvents, PoolStats, SendOptions, VerifyOptions, VerifyResult } from './types.js';

/**
 * A pool of SMTP connections to one server: the scheduler. Composing (compose.ts), the retry table
 * (policies/decide.ts) and the wire (connection/) live elsewhere.
 *
 * Scheduling: a connection REPORTS when it can write a message (`free`: an idle connection at once; a
 * pipelining one while it writes the previous message's content) and the pool decides which message,
 * if any, it writes. The pool opens a new connection only when the queue holds more messages than the
 * connections already opening or about to be free can take, so it keeps open connections' pipelines
 * full instead of opening idle ones, up to `maxConnections`.
 */
export class Pool extends EventEmitter<PoolEvents> implements ConnectionOwner<Job> {
  readonly options: ResolvedOptions;
  /** What a connection learnt about the server, for every later one (read when a connection opens). */
  readonly peer: PeerMemory;
  /** The adaptive BDAT window (policies/bdat-window.ts), shared by every connection; null when pinned or off. */
  private readonly window: BdatWindow | null;
  private readonly queue = new Denque<Job>();
  private readonly delayed = new Set<Job>();
  private readonly connections = new Set<Connection<Job>>();
  private readonly idleArmed = new WeakSet<Connection<Job>>();
  /** Connections in setup: close() cuts them when nothing is left for them to do. */
  private readonly opening = new Set<Connection<Job>>();
  private connecting = 0;
  private inFlightCount = 0;
  /** sendMail() calls still composing their message. */
  private composing = 0;
  private readonly limit: ConcurrencyLimit;
  private readonly bucket: TokenBucket | null;
  private readonly compose: Compose;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeTimerAt = 0;
  /** Failed rounds of connection attempts since the last connection was set up. */
  private connectFailures = 0;
  /** Of those, the rounds that failed with no connection open: the connect budget (see handleConnectError). */
  private deadRounds = 0;
  /** Identifies the current round: attempts started before the last counted failure belong to an older one. */
  private connectRound = 0;
  private connectBackoffUntil = 0;
  private needDrain = false;
  private closing = false;
  private destroyed = false;
  private closePromise: Promise<void> | null = null;
  /** connectionGate: the waits for a lease (aborted by close() and destroy()) and each connection's lease. */
  private readonly gateWaits = new Set<AbortController>();
  private readonly leases = new Map<Connection<Job>, ConnectionLease>();
  /** Inside free() or schedule(): see enter(). */
  private dispatching = false;
  private rescheduled = false;
  private counters = { delivered: 0, rejected: 0, failed: 0, unknown: 0, retries: 0, tlsResumed: 0 };

  constructor(options: PoolOptions) {
    super();
    this.options = resolveOptions(options);
    const c = this.options.connection;
    this.window = c.chunking && c.pipelining && c.chunkingAdaptive ? new BdatWindow() : null;
    this.peer = { noPipeliningAfterDot: false, bdat: this.window, tls: this.options.tlsResumption ? new TlsSessions() : null };
    this.limit = new ConcurrencyLimit(this.options.maxConnections, this.options.concurrencyProbeInterval);
    this.bucket = this.options.rateLimit ? new TokenBucket(this.options.rateLimit) : null;
    this.compose = createComposer(this.options.mail);
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
    // No closure, no context when nobody subscribes to sluice:send (the hot path).
    if (!tracingSends()) return this.sendUntraced(message, options);
    return traceSend(this, 'send', () => envelopeOf(message), () => this.sendUntraced(message, options));
  }

  private sendUntraced(message: Message, options: SendOptions): Promise<SendResult> {
    const limit = options.bufferUpTo;
    if (limit === undefined || limit === 0 || !isAsyncIterable(message?.body)) return this.enqueue(message, options, false);
    if (!(typeof limit === 'number' && limit >= 0)) {
      const message = `bufferUpTo must be a non-negative number of bytes, got ${JSON.stringify(limit)}`;
      return Promise.reject(new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true, outcome: 'rejected' }));
    }
    return this.accept(async () => ({ ...message, body: await readUpTo(message.body as AsyncIterable<Uint8Array>, limit, options.signal) }), options);
  }

  /**
   * Counts a message that needs asynchronous work (composing, buffering) before it can be queued: a
   * close() called meanwhile waits for it, and it is not refused as one sent after close().
   */
  private async accept(make: () => Promise<Message>, options: SendOptions): Promise<SendResult> {
    if (this.closing || this.destroyed) throw new SluiceError(ErrorCodes.ECLOSED, 'The pool is closed', { outcome: 'failed' });
    this.composing++;
    let message: Message;
    try {
      message = await make();
    } finally {
      this.composing--;
    }
    const sent = this.enqueue(message, options, true);
    this.maybeIdle();
    return sent;
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
      const limit = this.options.maxRecipientsPerTransaction;
      if (Split.splittable(prepared, limit)) return this.enqueueSplit(prepared, limit, resolve, reject, signal);
      this.queueJob(new Job(prepared, limit, resolve, reject, signal));
      this.checkFull();
      this.schedule();
    });
  }

  private withdraw(job: Job): void {
    for (let i = 0; i < this.queue.length; i++) {
      if (this.queue.peekAt(i) === job) {
        this.queue.removeOne(i);
        return;
      }
    }
  }

  /**
   * More recipients than one transaction may carry: one part per transaction, queued together so that
   * idle connections take them at once (within maxConnections); the results merge in split.ts.
   */
  private enqueueSplit(
    prepared: PreparedMessage,
    limit: number,
    resolve: (r: SendResult) => void,
    reject: (e: SluiceError) => void,
    signal: AbortSignal | undefined,
  ): void {
    const split = new Split(prepared, limit, Date.now(), (result, error) => {
      if (result) {
        this.counters.delivered++;
        this.emit('sent', result);
        resolve(result);
      } else {
        this.counters[error!.outcome as 'rejected' | 'failed' | 'unknown']++;
        this.emit('send-error', error!);
        reject(error!);
      }
    });
    const parts: Job[] = [];
    for (let i = 0; i < split.chunks.length; i++) {
      const job = new Job(
        split.part(i),
        limit,
        (r) => split.settle(i, r),
        (e) => split.settle(i, e),
        signal,
      );
      job.isPart = true;
      parts.push(job);
      this.queueJob(job, false);
    }
    if (signal) {
      // One listener for the message, not one per part (a signal warns past 10 listeners).
      const abort = () => {
        for (const job of parts) job.onAbort?.();
      };
      signal.addEventListener('abort', abort, { once: true });
      split.onDone = () => signal.removeEventListener('abort', abort);
    }
    this.checkFull();
    this.schedule();
  }

  /** Puts a new job at the back of the queue, cancelled by its signal while it waits (`listen`: this job's own listener). */
  private queueJob(job: Job, listen = true): void {
    const signal = job.signal;
    if (signal) {
      job.onAbort = () => {
        if (job.state !== 'queued' && job.state !== 'delayed') return;
        const wasQueued = job.state === 'queued';
        job.state = 'done';
        this.delayed.delete(job);
        // Out of the queue at once (a linear search: aborts are rare), so that stats and the
        // scheduler never count a withdrawn message nor open a connection for it.
        if (wasQueued) this.withdraw(job);
        if (!job.isPart) this.counters.failed++;
        job.reject(abortError(signal));
        job.release();
        this.afterDequeue();
      };
      if (listen) signal.addEventListener('abort', job.onAbort, { once: true });
    }
    this.queue.push(job);
  }

  /**
   * Composes a message through nodemailer (MIME is not written by hand), with the pool's `defaults`,
   * `dkim` and `attachDataUrls` and the mail's own `dkim`, and sends it.
   */
  sendMail(mail: MailOptions, options: SendOptions = {}): Promise<SendResult> {
    if (!tracingSends()) return this.accept(() => this.compose(mail), options);
    const envelope = () => mailEnvelope({ ...this.options.mail.defaults, ...mail });
    return traceSend(this, 'sendMail', envelope, () => this.accept(() => this.compose(mail), options));
  }

  /**
   * Opens a connection, runs greeting, EHLO, STARTTLS and AUTH, then QUITs. Rejects with the error that
   * stopped it. `signal` cuts it short (a health check with its own deadline): EABORT.
   */
  verify(options: VerifyOptions = {}): Promise<VerifyResult> {
    return verify(this.options.connection, options);
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
      maxConnections: this.limit.value,
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
          this.peer.tls?.close();
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
    const waiting = [...this.queue.toArray(), ...this.delayed];
    this.queue.clear();
    this.delayed.clear();
    for (const job of waiting) if (job.state !== 'done') this.fail(job, reason, 'failed');
    const closed = new Promise<void>((resolve) => {
      const check = () => {
        if (this.connections.size > 0) return;
        this.off('close', check);
        resolve();
      };
      this.on('close', check);
      check();
    });
    this.cutOpening(reason);
    for (const wait of this.gateWaits) wait.abort();
    for (const c of this.connections) c.destroy(reason);
    this.peer.tls?.close();
    await closed;
    this.closePromise ??= Promise.resolve();
  }

  // ------------------------------------------------------------------------------------------------
  // Scheduling
  // ------------------------------------------------------------------------------------------------

  private schedule(): void {
    if (!this.enter()) {
      this.rescheduled = true;
      return;
    }
    try {
      this.scheduleNow();
    } finally {
      this.exit();
    }
  }

  private scheduleNow(): void {
    if (this.destroyed) return;
    if (this.queue.length === 0) {
      if (this.closing) this.retireIdle();
      return;
    }
    // Idle connections pull first.
    for (const c of this.connections) {
      if (this.queue.length === 0) break;
      if (c.isIdle && c.canAccept) {
        c.ref(true);
        c.resume();
      }
    }
    // Then open connections for what the open ones cannot take soon.
    const now = Date.now();
    if (now < this.connectBackoffUntil) {
      publishWait(this, 'connect-backoff', this.connectBackoffUntil - now, this.queue.length);
      return this.wakeAt(this.connectBackoffUntil - now);
    }
    // The limit is read (and may grow by a probe) only when more connections are wanted.
    while (this.queue.length > this.soonCapacity() && this.connections.size + this.connecting < this.limit.limit) {
      this.openConnection();
    }
    // Still wanting more under a lowered limit: come back when the next probe is due.
    if (this.queue.length > this.soonCapacity()) {
      const probe = this.limit.nextProbeIn();
      if (probe < Number.POSITIVE_INFINITY) this.wakeAt(probe);
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
    // A shared budget (connectionGate, e.g. @sluice/queue's Redis leases): wait for a lease first;
    // the wait counts as connecting, and close()/destroy() abort it.
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
        const error = new SluiceError(ErrorCodes.ECONNECTION, `The connection gate failed: ${(cause as Error)?.message ?? cause}`, { cause, command: 'CONNECT' });
        this.onConnectError(error, this.connectRound);
      },
    );
  }

  private connect(lease: ConnectionLease | null): void {
    const conn = new Connection<Job>(this.options.connection, this);
    const round = this.connectRound;
    this.opening.add(conn);
    conn.open().then(
      (capabilities) => {
        this.connecting--;
        this.opening.delete(conn);
        this.connectFailures = 0;
        this.deadRounds = 0;
        this.connections.add(conn);
        if (lease) {
          this.leases.set(conn, lease);
          // Lease lost: finish what is in flight, start no new MAIL, QUIT.
          if (lease.lost.aborted) conn.quit();
          else lease.lost.addEventListener('abort', () => conn.quit(), { once: true });
        }
        // A connection set up is evidence of capacity (see ConcurrencyLimit.connected).
        this.limit.connected(this.connections.size);
        if (conn.tlsResumed) this.counters.tlsResumed++;
        this.emit('connect', { connectionId: conn.id, capabilities, encrypted: conn.encrypted, tlsResumed: conn.tlsResumed });
        publishConnect(this, conn.id, conn.encrypted, conn.tlsResumed, Object.keys(capabilities.raw));
        if (this.destroyed) return conn.destroy();
        conn.resume();
        this.schedule();
      },
      (error: SluiceError) => {
        this.connecting--;
        lease?.release();
        // Not in `opening` any more: the pool cut it (nothing was left for it). Not a failure; what
        // was queued since counted on it, so schedule again.
        if (!this.opening.delete(conn)) {
          this.schedule();
          return this.maybeIdle();
        }
        this.onConnectError(error, round);
      },
    );
  }

  private onConnectError(error: SluiceError, round: number): void {
    this.emit('connect-error', error);
    publishConnectError(this, error);
    if (this.destroyed) return;
    this.handleConnectError(error, round);
    // A close() waiting for this attempt to end is woken here: a failed attempt emits no 'close'.
    this.maybeIdle();
  }

  /**
   * A connection attempt failed. Connect failures are never charged to a message: they are charged to
   * the pool's connect budget, one per ROUND of attempts (the attempts started since the last counted
   * failure; parallel attempts to a dead server are one piece of evidence, not twenty). When no
   * connection is open and `retry.retries + 1` rounds in a row failed, every waiting message fails with
   * the last error: the bound documented in the README ("When the server cannot be reached").
   */
  private handleConnectError(error: SluiceError, round: number): void {
    if (ConcurrencyLimit.isTooMany(error.responseCode)) {
      // "Too many connections" (421/432 at the greeting or EHLO). Ours that are open or still in
      // setup may be what the server is serving: lower the limit to them, never charge a message.
      const serving = this.connections.size + this.connecting;
      const pause = this.limit.refused(serving);
      publishThrottle(this, this.limit.value, this.options.maxConnections, error.responseCode, pause);
      if (pause > 0) this.connectBackoffUntil = Math.max(this.connectBackoffUntil, Date.now() + pause);
      if (serving > 0 || pause > 0) return this.schedule();
      // Nothing of ours is open, opening or just closed: as good as any other failed attempt.
    }
    // No connection works. A permanent error (credentials refused with 5xx, TLS required and missing,
    // a certificate refused: each says so where it is made) fails everything queued now.
    if (error.permanent && this.connections.size === 0) return this.failWaiting(error);
    // Another attempt of a round already counted: that round's backoff is running.
    if (round !== this.connectRound) return this.schedule();
    this.connectRound++;
    this.connectFailures++;
    // Back off before the next attempt, also while other connections work: a server that refuses at
    // once would otherwise be hammered in a tight loop. With none open, the backoff follows the budget's
    // rounds, so that the README's bound holds however the spell began.
    const open = this.connections.size > 0;
    if (!open) this.deadRounds++;
    this.connectBackoffUntil = Date.now() + retryDelay(open ? this.connectFailures : this.deadRounds, this.options.retry);
    if (open) return this.schedule();
    if (this.deadRounds > this.options.retry.retries) return this.failWaiting(error);
    this.schedule();
  }

  /**
   * Every message waiting for a connection (queued, or delayed for a retry) fails with `error`, and the
   * rest of the round is cut: those attempts go to the same server, and nothing is left for them.
   */
  private failWaiting(error: SluiceError): void {
    const waiting = [...this.queue.toArray(), ...this.delayed];
    this.queue.clear();
    this.delayed.clear();
    for (const job of waiting) this.fail(job, error, 'failed');
    this.afterDequeue();
    this.cutOpening(error);
  }

  // ConnectionOwner: the connections report, the pool decides -------------------------------------

  /** Hands `conn` messages while it can write one now (decided here: queue order and the rate limit). */
  free(conn: Connection<Job>): void {
    const outer = this.enter();
    try {
      while (!this.destroyed && !conn.busy) {
        const job = this.take(conn);
        if (!job) break;
        job.viaBdat = conn.usesBdat;
        job.windowed = conn.inFlight > 0;
        conn.write(job);
      }
    } finally {
      if (outer) this.exit();
    }
  }

  /** The next message for `conn`, or null (nothing queued, or the rate limit says wait). */
  private take(conn: Connection<Job>): Job | null {
    for (;;) {
      const job = this.queue.peekFront();
      if (!job) return null;
      if (job.state === 'done') {
        this.queue.shift();
        continue;
      }
      assert(job.state === 'queued', 'a job in the queue is queued');
      if (this.bucket && !this.bucket.take()) {
        // One reading of the bucket: the wake-up and the published wait are the same time (at least the
        // timer's 1 ms, even when the token came due in between).
        const delay = Math.max(1, this.bucket.wait());
        this.wakeAt(delay);
        publishWait(this, 'rate-limit', delay, this.queue.length);
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

  /** A transaction ended: book its replies on the message, then apply the retry table's verdict (policies/decide.ts). */
  settle(conn: Connection<Job>, job: Job, result: TransactionResult, streamed: boolean): void {
    assert(this.inFlightCount > 0 && job.state === 'active', 'settle() for a message in flight');
    this.inFlightCount--;
    job.connectionId = conn.id;
    if (streamed) job.consumed = true;
    if (this.window && job.viaBdat) {
      if (result.type === 'delivered') this.window.clean();
      else if (windowAnomaly(result, job.windowed)) this.window.anomaly(job.windowed);
    }
    if (result.type === 'delivered') {
      job.addResults(result);
      job.lastReply = { code: result.reply.code, enhanced: result.reply.enhanced, text: result.reply.lines.join('\n') };
    } else {
      job.addResults({ rejected: result.rejected });
    }
    const { accepted, to, rest, consumed, attempts, retries } = job;
    const attempt = { result, accepted: accepted.length, to, rest, consumed, replayable: job.content.replayable, attempts, retries };
    const verdict = decide(attempt, this.options);
    switch (verdict.action) {
      case 'deliver':
        job.addResults({ pending: verdict.pending });
        this.deliver(job);
        break;
      case 'continue':
        job.recipients(verdict.recipients);
        this.requeue(job, 0, true);
        break;
      case 'resend':
        // Not a retry: the same attempt, written again now that the connection waits for the "."'s reply.
        job.attempts--;
        job.recipients(verdict.recipients);
        this.requeue(job, 0, true);
        break;
      case 'retry':
        if (!verdict.immediate) job.retries++;
        job.recipients(verdict.recipients);
        this.counters.retries++;
        this.emit('retry', { attempt: job.retries, delay: verdict.delay, error: (result as { error: SluiceError }).error });
        // An unknown outcome resent (retryUnknown) waits at the back; a transient failure goes first.
        this.requeue(job, verdict.delay, verdict.immediate);
        break;
      case 'fail':
        this.fail(job, verdict.error, verdict.outcome);
        break;
    }
    this.maybeIdle();
  }

  idle(conn: Connection<Job>): void {
    conn.lastActive = Date.now();
    // An idle connection does not keep the process alive; scheduleNow() holds it again when it hands it work.
    conn.ref(false);
    armIdle(conn, this.options.connection.timeouts.idle, this.idleArmed);
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
    publishClose(this, conn.id, error);
    this.schedule();
    this.maybeIdle();
  }

  // ------------------------------------------------------------------------------------------------
  // Internals
  // ------------------------------------------------------------------------------------------------

  /**
   * Re-entrancy guard: handing out messages can settle one at once (a message the server cannot take),
   * and settling schedules again. A schedule() asked for meanwhile runs once the outer call is done,
   * so the queue and the connection set are never walked by two loops at once. (Flags, not a closure:
   * free() runs once per message.) Returns true for the outermost call, which must call exit().
   */
  private enter(): boolean {
    if (this.dispatching) return false;
    this.dispatching = true;
    return true;
  }

  private exit(): void {
    try {
      while (this.rescheduled) {
        this.rescheduled = false;
        this.scheduleNow();
      }
    } finally {
      this.dispatching = false;
    }
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
    // Not unref()'d: a retry waiting for its delay is pending work and keeps the process alive (a
    // script must not exit with its message still queued). job.release() clears it if the job ends first.
    job.delayTimer = setTimeout(() => {
      job.delayTimer = null;
      if (job.state !== 'delayed') return;
      this.delayed.delete(job);
      job.state = 'queued';
      this.queue.unshift(job);
      this.schedule();
    }, delay);
  }

  private deliver(job: Job): void {
    if (job.state === 'done') return;
    job.state = 'done';
    const result = job.result();
    if (!job.isPart) {
      this.counters.delivered++;
      this.emit('sent', result);
    }
    job.resolve(result);
    job.release();
  }

  private fail(job: Job, error: SluiceError, outcome: 'rejected' | 'failed' | 'unknown'): void {
    if (job.state === 'done') return;
    job.state = 'done';
    const err = job.error(error, outcome);
    if (!job.isPart) {
      this.counters[outcome]++;
      this.emit('send-error', err);
    }
    job.reject(err);
    job.release();
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
      // Nothing left to wake up for (a backoff, a rate-limit wait, a probe): the timer must not hold the process.
      this.clearWake();
      this.emit('idle');
      if (this.closing) this.retireIdle();
    }
  }

  private retireIdle(): void {
    if (this.queue.length > 0 || this.delayed.size > 0) return;
    // Closing with nothing left to send: no lease is needed any more.
    for (const wait of this.gateWaits) wait.abort();
    for (const c of this.connections) if (c.isIdle) c.quit();
    // Attempts opened for a burst that is over: close() does not wait for their handshakes.
    this.cutOpening(new SluiceError(ErrorCodes.ECLOSED, 'The pool is closing and this connection is not needed', { outcome: 'failed' }));
  }

  /** Ends the attempts in setup; openConnection() then sees them as cut, not failed (no 'connect-error'). */
  private cutOpening(reason: SluiceError): void {
    const cut = [...this.opening];
    this.opening.clear();
    for (const c of cut) c.destroy(reason);
  }

  /** One wake-up timer, at the earliest time asked for (a backoff, a rate-limit wait, a concurrency probe). */
  private wakeAt(ms: number): void {
    const at = Date.now() + Math.max(1, ms);
    if (this.wakeTimer && this.wakeTimerAt <= at) return;
    this.clearWake();
    this.wakeTimerAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = null;
        this.schedule();
      },
      Math.max(1, ms),
    );
  }

  private clearWake(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
  }
}

/** Creates a pool. See PoolOptions for the defaults and why they are what they are. */
export function createPool(options: PoolOptions): Pool {
  return new Pool(options);
}
