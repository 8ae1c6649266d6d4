import { EventEmitter } from 'node:events';
import { type Compose, createComposer, type MailOptions } from '../compose.js';
import { ErrorCodes, SluiceError } from '../errors.js';
import { checkMailerOptions } from '../mail-options.js';
import { isAsyncIterable, type Message, readUpTo } from '../message.js';
import type { Pool } from '../pool/pool.js';
import { emptyStats, type VerifyOptions } from '../pool/types.js';
import { movable } from './movable.js';
import { Selector } from './select.js';
import type { GroupSendOptions, GroupSendResult, GroupVerifyResult, PoolGroupEvents, PoolGroupOptions, PoolGroupStats, UpstreamStats } from './types.js';
import { checkGroupOptions, createUpstreams, type Upstream } from './upstream.js';

/** A message in the group: where it is now, where it failed, and its caller's promise. */
interface Pending {
  readonly message: Message;
  readonly userSignal: AbortSignal | undefined;
  /** The upstreams it may use (`upstreams` in its send options), in list order. */
  readonly allowed: Upstream<Pending>[];
  upstream: Upstream<Pending> | null;
  controller: AbortController | null;
  /** Upstreams where its send failed before DATA: it is not moved back to them. */
  readonly tried: Set<Upstream<Pending>>;
  /** The group aborted its signal to move it (the pool ignores that once it is on the wire). */
  withdrawing: boolean;
  userAborted: boolean;
  /** Its listener on the caller's signal, removed when it ends. */
  onAbort: (() => void) | null;
  readonly resolve: (result: GroupSendResult) => void;
  readonly reject: (error: SluiceError) => void;
}

/**
 * Several upstreams, one pool each, behind one Pool-like face. A message moves to another upstream only
 * before anything of it was written: withdrawn (its signal aborted) while it still waits in the queue of
 * an upstream that went down, or after its send there ended `failed` before DATA (movable.ts). Once
 * DATA is on the wire it stays: a `rejected` message is the server's verdict, an `unknown` one may have
 * been delivered (at most once, as in the pool).
 */
export class PoolGroup extends EventEmitter<PoolGroupEvents> {
  private readonly upstreams: Upstream<Pending>[];
  private readonly selector: Selector;
  private readonly pending = new Set<Pending>();
  private composing = 0;
  private moved = 0;
  private readonly counters = { delivered: 0, rejected: 0, failed: 0, unknown: 0 };
  private closing = false;
  private destroyed = false;
  private closePromise: Promise<void> | null = null;
  private readonly highWaterMark: number;
  private needDrain = false;
  private readonly compose: Compose;

  constructor(options: PoolGroupOptions) {
    super();
    const { upstreams, health = {}, ...shared } = checkGroupOptions(options);
    this.upstreams = createUpstreams<Pending>(upstreams, shared, health);
    this.highWaterMark = shared.highWaterMark ?? 1000;
    // The pools would check these too, each for itself; the group composes, so it checks them once.
    this.compose = createComposer(checkMailerOptions({ defaults: shared.defaults, dkim: shared.dkim, attachDataUrls: shared.attachDataUrls }));
    for (const u of this.upstreams) this.wire(u);
    this.selector = new Selector(this.upstreams.map((u) => u.weight));
  }

  /**
   * True when `highWaterMark` messages (the shared option, default 1000) are in the group and not
   * settled yet, in flight included: wait for 'drain' before sending more.
   */
  get full(): boolean {
    return this.pending.size + this.composing >= this.highWaterMark;
  }

  /** The upstreams' names, in the order given. */
  get names(): string[] {
    return this.upstreams.map((u) => u.name);
  }

  /** The pool of one upstream (its options, its own events), for inspection. */
  pool(name: string): Pool | undefined {
    return this.upstreams.find((u) => u.name === name)?.pool;
  }

  /**
   * Sends one message through the group. Resolves with the result and the upstream that delivered it;
   * rejects with a SluiceError (`outcome`, and `upstream`: where it ended). `signal` aborts it while it
   * is queued; `bufferUpTo` reads a stream body into memory here, so that it can still move.
   */
  send(message: Message, options: GroupSendOptions = {}): Promise<GroupSendResult> {
    const limit = options.bufferUpTo;
    if (limit === undefined || limit === 0 || !isAsyncIterable(message?.body)) return this.enqueue(message, options);
    if (!(typeof limit === 'number' && limit >= 0)) {
      const text = `bufferUpTo must be a non-negative number of bytes, got ${JSON.stringify(limit)}`;
      return Promise.reject(new SluiceError(ErrorCodes.EOPTIONS, text, { permanent: true, outcome: 'rejected' }));
    }
    const body = message.body as AsyncIterable<Uint8Array>;
    return this.accept(async () => ({ ...message, body: await readUpTo(body, limit, options.signal) }), options);
  }

  /** Composes through nodemailer with the group's `defaults`, `dkim` and `attachDataUrls` (once, whatever upstream sends it) and sends. */
  sendMail(mail: MailOptions, options: GroupSendOptions = {}): Promise<GroupSendResult> {
    return this.accept(() => this.compose(mail), options);
  }

  /**
   * Verifies every upstream (pool.verify) and records the outcome in its health. Resolves with each
   * upstream's result when at least one works; rejects with the first upstream's error when none does.
   */
  async verify(options: VerifyOptions = {}): Promise<GroupVerifyResult> {
    const settled = await Promise.allSettled(this.upstreams.map((u) => u.pool.verify(options)));
    const out: GroupVerifyResult = {};
    settled.forEach((s, i) => {
      const u = this.upstreams[i]!;
      if (s.status === 'fulfilled') {
        u.health.worked();
        out[u.name] = { ok: true, result: s.value };
      } else {
        const error = s.reason as SluiceError;
        if (error.code !== ErrorCodes.EABORT) u.health.failed(error);
        out[u.name] = { ok: false, error };
      }
    });
    const ok = Object.values(out).some((r) => r.ok);
    if (!ok) throw (settled[0] as PromiseRejectedResult).reason;
    return out;
  }

  get stats(): PoolGroupStats {
    const total = emptyStats();
    const upstreams: Record<string, UpstreamStats> = {};
    for (const u of this.upstreams) {
      const s = u.pool.stats;
      for (const key of ['connections', 'connecting', 'idle', 'busy', 'maxConnections', 'inFlight', 'retries', 'tlsResumed'] as const) total[key] += s[key];
      upstreams[u.name] = {
        ...s,
        // What the group sent there and is not on the wire (the pool's own count keeps a withdrawn
        // message until a connection next reads its queue).
        queued: u.pending.size - s.inFlight,
        // The pool counts a message the group withdrew as failed (EABORT): it did not fail there.
        failed: s.failed - u.withdrawn,
        name: u.name,
        weight: u.weight,
        health: u.health.state,
        failures: u.health.failures,
        nextProbeAt: u.health.nextProbeAt,
        routed: u.routed,
        movedAway: u.movedAway,
      };
    }
    total.queued = this.pending.size - total.inFlight + this.composing;
    return { ...total, ...this.counters, moved: this.moved, upstreams };
  }

  /** Waits for every message to end (moves included), then closes every upstream's pool. Idempotent. */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closing = true;
    this.closePromise = (async () => {
      if (!this.isIdle()) await new Promise<void>((resolve) => this.once('idle', resolve));
      for (const u of this.upstreams) u.health.stop();
      await Promise.all(this.upstreams.map((u) => u.pool.close()));
    })();
    return this.closePromise;
  }

  /** Stops at once: every pool is destroyed; queued messages fail with ECLOSED, in-flight ones end failed or unknown. */
  async destroy(error?: Error): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closing = true;
    for (const u of this.upstreams) u.health.stop();
    await Promise.all(this.upstreams.map((u) => u.pool.destroy(error)));
    this.closePromise ??= Promise.resolve();
  }

  // ------------------------------------------------------------------------------------------------

  /** A message that needs work first (composing, buffering): counted, so that close() waits for it. */
  private async accept(make: () => Promise<Message>, options: GroupSendOptions): Promise<GroupSendResult> {
    if (this.closing) throw closedError();
    this.composing++;
    const message = await make().catch((error: unknown) => {
      // Nothing to send: a close() waiting for this one may go on.
      this.composing--;
      this.maybeIdle();
      throw error;
    });
    this.composing--;
    return this.enqueue(message, options, true);
  }

  private enqueue(message: Message, options: GroupSendOptions, accepted = false): Promise<GroupSendResult> {
    return new Promise<GroupSendResult>((resolve, reject) => {
      if (this.destroyed || (this.closing && !accepted)) return reject(closedError());
      const userSignal = options.signal;
      let allowed: Upstream<Pending>[];
      try {
        allowed = this.allowed(options.upstreams);
      } catch (err) {
        return reject(err);
      }
      const p: Pending = {
        message,
        userSignal,
        upstream: null,
        controller: null,
        allowed,
        tried: new Set(),
        withdrawing: false,
        userAborted: userSignal?.aborted === true,
        onAbort: null,
        resolve,
        reject,
      };
      if (userSignal && !p.userAborted) {
        p.onAbort = () => {
          p.userAborted = true;
          p.controller?.abort(userSignal.reason);
        };
        userSignal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.add(p);
      if (this.pending.size + this.composing >= this.highWaterMark) this.needDrain = true;
      this.sendTo(p, this.choose(p) ?? this.leastDown(allowed));
    });
  }

  /** The upstreams a send may use: `names` (checked), or all. */
  private allowed(names: readonly string[] | undefined): Upstream<Pending>[] {
    if (names === undefined) return this.upstreams;
    const list = Array.isArray(names) ? this.upstreams.filter((u) => names.includes(u.name)) : [];
    const unknown = Array.isArray(names) ? names.filter((n) => !this.upstreams.some((u) => u.name === n)) : [];
    if (list.length === 0 || unknown.length > 0) {
      const known = this.names.join(', ');
      throw new SluiceError(ErrorCodes.EOPTIONS, `upstreams must name upstreams of this group (${known}), got ${JSON.stringify(names)}`, {
        permanent: true,
        outcome: 'rejected',
      });
    }
    return list;
  }

  /** A healthy upstream for `p` (one it may use, not one where it failed, not the one it is leaving), by weight or order. */
  private choose(p: Pending): Upstream<Pending> | null {
    const healthy = p.allowed.filter((u) => u.health.healthy && !p.tried.has(u) && u !== p.upstream);
    const index = this.selector.pick(healthy);
    return index === null ? null : this.upstreams[index]!;
  }

  /** Every upstream it may use is down: the one probed soonest (its pool waits and retries on its own). */
  private leastDown(among: Upstream<Pending>[]): Upstream<Pending> {
    let best = among[0]!;
    for (const u of among) if ((u.health.nextProbeAt ?? 0) < (best.health.nextProbeAt ?? 0)) best = u;
    return best;
  }

  private sendTo(p: Pending, u: Upstream<Pending>): void {
    p.upstream = u;
    p.withdrawing = false;
    u.routed++;
    u.pending.add(p);
    const controller = new AbortController();
    p.controller = controller;
    if (p.userAborted) controller.abort(p.userSignal?.reason);
    u.pool.send(p.message, { signal: controller.signal }).then(
      (result) => {
        u.pending.delete(p);
        u.health.worked();
        this.counters.delivered++;
        const out: GroupSendResult = { ...result, upstream: u.name };
        this.done(p);
        this.emit('sent', out);
        p.resolve(out);
      },
      (error: SluiceError) => {
        u.pending.delete(p);
        this.failedOn(p, u, error);
      },
    );
  }

  private failedOn(p: Pending, u: Upstream<Pending>, error: SluiceError): void {
    if (!this.destroyed && !p.userAborted) {
      if (error.code === ErrorCodes.EABORT && p.withdrawing) {
        u.withdrawn++;
        return this.move(p, u, 'withdrawn', null, this.choose(p) ?? u);
      }
      // "421 Service not available" to a command: the server is closing its side (RFC 5321 §3.8).
      if (error.responseCode === 421) u.health.failed(error);
      if (movable(error)) {
        p.tried.add(u);
        const next = this.choose(p);
        if (next) return this.move(p, u, 'failed', error, next);
      }
    }
    const outcome = error.outcome ?? 'failed';
    this.counters[outcome === 'delivered' ? 'failed' : outcome]++;
    (error as SluiceError & { upstream?: string }).upstream = u.name;
    this.done(p);
    this.emit('send-error', error, u.name);
    p.reject(error);
  }

  private move(p: Pending, from: Upstream<Pending>, reason: 'withdrawn' | 'failed', error: SluiceError | null, to: Upstream<Pending>): void {
    if (to !== from) {
      from.movedAway++;
      this.moved++;
      this.emit('failover', { from: from.name, to: to.name, reason, error });
    }
    this.sendTo(p, to);
  }

  /** Withdraws what still waits in the queues of `from` (every down upstream when omitted), when a healthy upstream can take it. */
  private withdraw(from?: Upstream<Pending>): void {
    for (const u of from ? [from] : this.upstreams.filter((x) => !x.health.healthy)) {
      for (const p of u.pending) {
        if (p.withdrawing || p.userAborted) continue;
        // Not choose(): that would move the weights' scores without sending anything.
        if (!p.allowed.some((x) => x !== u && x.health.healthy && !p.tried.has(x))) continue;
        p.withdrawing = true;
        // Ignored by the pool for a message already on the wire: that one stays and ends there.
        p.controller?.abort(new SluiceError(ErrorCodes.EABORT, `Withdrawn from upstream ${u.name}`, {}));
      }
    }
  }

  private wire(u: Upstream<Pending>): void {
    const pool = u.pool;
    pool.on('connect', (info) => {
      u.health.worked();
      this.emit('connect', { ...info, upstream: u.name });
    });
    pool.on('connect-error', (error) => {
      // Down only when none of its connections works: with one up, a refusal is the pool's business
      // ("too many connections": it lowers its limit). A 421/432 while other attempts are still
      // opening waits for the last of them: a burst against a server capped at one connection sees
      // the refusals before the one it admitted is ready.
      const s = pool.stats;
      const tooMany = error.responseCode === 421 || error.responseCode === 432;
      if (s.idle + s.busy === 0 && !(tooMany && s.connecting > 0)) u.health.failed(error);
      this.emit('connect-error', error, u.name);
    });
    pool.on('close', (info) => this.emit('close', { ...info, upstream: u.name }));
    pool.on('retry', (info) => this.emit('retry', { ...info, upstream: u.name }));
    u.onDown = (error, retryIn) => {
      this.emit('upstream-down', { upstream: u.name, error, retryIn });
      this.withdraw(u);
    };
    u.onUp = () => {
      this.emit('upstream-up', { upstream: u.name });
      this.withdraw();
    };
  }

  private done(p: Pending): void {
    this.pending.delete(p);
    if (p.onAbort) p.userSignal?.removeEventListener('abort', p.onAbort);
    p.onAbort = null;
    if (this.needDrain && !this.full) {
      this.needDrain = false;
      queueMicrotask(() => this.emit('drain'));
    }
    this.maybeIdle();
  }

  private isIdle(): boolean {
    return this.pending.size === 0 && this.composing === 0;
  }

  private maybeIdle(): void {
    if (this.isIdle()) queueMicrotask(() => this.isIdle() && this.emit('idle'));
  }
}

function closedError(): SluiceError {
  return new SluiceError(ErrorCodes.ECLOSED, 'The pool group is closed', { outcome: 'failed' });
}

/** Creates a group of pools, one per upstream, with failover before DATA, health and weights. */
export function createPoolGroup(options: PoolGroupOptions): PoolGroup {
  return new PoolGroup(options);
}
