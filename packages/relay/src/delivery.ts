/**
 * One delivery attempt and what its outcome does to the spooled message: delivered (removed),
 * deferred (retried with backoff until the maximum age), refused (bounced or dead-lettered), or
 * unknown (held for the operator, never resent on our own: at most once).
 */
import { isSluiceError, type Pool, retryDelay, type SendResult, type SluiceError } from '@sluice/core';
import { composeBounce, type Failure, statusOf } from './bounce.js';
import type { RelayLogger } from './log.js';
import type { Metrics } from './metrics.js';
import type { PermanentFailureAction } from './options.js';
import { type Entry, type Queue, quarantine } from './queue.js';
import type { DeadInfo, HeldInfo, Spool, SpoolHeader } from './spool.js';

export interface DeliveryOptions {
  spool: Spool;
  queue: Queue;
  pool: Pool;
  metrics: Metrics;
  log: RelayLogger;
  /** Our name: Reporting-MTA of bounces. */
  hostname: string;
  /** The upstream host: Remote-MTA of bounces. */
  upstreamHost: string;
  maxAge: number;
  retryMin: number;
  retryMax: number;
  onPermanentFailure: PermanentFailureAction;
}

/** The relay's retry schedule, with the core's backoff: doubling from retryMin up to retryMax, ±10 % jitter. */
function backoff(attempts: number, retryMin: number, retryMax: number): number {
  return retryDelay(attempts, { retries: Number.POSITIVE_INFINITY, minDelay: retryMin, maxDelay: retryMax, factor: 2, jitter: 0.1 });
}

function failureOf(address: string, code: number | undefined, enhanced: string | null, response: string, local = false): Failure {
  return { address, status: statusOf(code, enhanced), diagnostic: response, diagnosticType: local ? 'x-sluice' : 'smtp' };
}

export class Delivery {
  constructor(private readonly o: DeliveryOptions) {}

  /** One attempt for a queued message. */
  async deliver(entry: Entry): Promise<void> {
    const { spool, queue, log } = this.o;
    let msg: { header: SpoolHeader; body: Buffer };
    try {
      msg = await spool.read('queue', entry.id);
    } catch (err) {
      queue.forget(entry.id);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // released elsewhere, or removed by the operator
      return quarantine(spool, log, entry.id, err);
    }
    const { header, body } = msg;
    const to = entry.state.remaining ?? header.to;
    queue.inFlightBytes += body.length;
    const started = Date.now();
    let result: SendResult | undefined;
    let error: SluiceError | undefined;
    try {
      result = await this.o.pool.send({ envelope: { from: header.from, to }, body }, { signal: queue.abort.signal });
    } catch (err) {
      if (!isSluiceError(err)) throw err;
      error = err;
    } finally {
      queue.inFlightBytes -= body.length;
    }
    if (result) return this.delivered(entry, header, body, result, Date.now() - started);
    return this.failed(entry, header, body, to, error!);
  }

  private async delivered(entry: Entry, header: SpoolHeader, body: Buffer, result: SendResult, ms: number): Promise<void> {
    const { metrics, log } = this.o;
    metrics.inc('delivered_recipients', result.accepted.length);
    const permanent: Failure[] = result.rejected.map((r) => failureOf(r.address, r.code, r.enhancedCode, r.response));
    const pending = result.pending.map((r) => r.address);
    log.info('delivered', {
      id: entry.id,
      to: result.accepted.map((r) => r.address),
      response: result.response,
      ms,
      ...(permanent.length ? { rejected: permanent.map((f) => f.address) } : {}),
      ...(pending.length ? { pending } : {}),
    });
    if (permanent.length) await this.permanentFailure(entry, header, body, permanent);
    if (pending.length) {
      const why = result.pending.map((r) => `${r.address}: ${r.response}`).join('; ');
      return this.defer(entry, header, body, pending, why);
    }
    metrics.inc('delivered');
    metrics.observeDelivered();
    return this.finish(entry);
  }

  private async failed(entry: Entry, header: SpoolHeader, body: Buffer, to: string[], err: SluiceError): Promise<void> {
    const { spool, queue, metrics, log } = this.o;
    if (err.code === 'EABORT' || (queue.stopping && err.code === 'ECLOSED' && err.outcome === 'failed')) return; // never reached the wire: stays spooled
    const diag = err.response ?? err.message;
    if (err.outcome === 'unknown') {
      queue.forget(entry.id);
      metrics.inc('held');
      log.warn('unknown outcome upstream: message held for the operator (it may have been delivered)', { id: entry.id, error: diag });
      const info: HeldInfo = {
        heldAt: Date.now(),
        reason: 'unknown outcome: the connection was lost after the message was sent',
        error: diag,
        remaining: to,
        attempts: entry.state.attempts + 1,
      };
      await spool.move('queue', 'held', entry.id, info);
      return;
    }
    if (err.outcome === 'rejected') {
      // Per-recipient replies count only when RCPT was the refusal; after a refused MAIL, the pipelined
      // RCPTs get "503 need MAIL" replies that say nothing about the recipients.
      const byAddress = new Map(err.command === 'RCPT' ? (err.rejected ?? []).map((r) => [r.address, r]) : []);
      const failures = to.map((address) => {
        const r = byAddress.get(address);
        return r
          ? failureOf(address, r.code, r.enhancedCode, r.response)
          : failureOf(address, err.responseCode, err.enhancedCode ?? null, diag, err.responseCode === undefined);
      });
      log.warn('rejected upstream (permanent)', { id: entry.id, to, code: err.code, error: diag });
      await this.permanentFailure(entry, header, body, failures);
      return this.finish(entry);
    }
    // 'failed': transient. Recipients refused with 5xx along the way are permanent failures.
    const refused = (err.rejected ?? []).filter((r) => r.code >= 500);
    const refusedSet = new Set(refused.map((r) => r.address));
    if (refused.length) {
      const failures = refused.map((r) => failureOf(r.address, r.code, r.enhancedCode, r.response));
      await this.permanentFailure(entry, header, body, failures);
    }
    const remaining = to.filter((a) => !refusedSet.has(a));
    if (remaining.length === 0) return this.finish(entry);
    return this.defer(entry, header, body, remaining, `${err.code}: ${diag}`);
  }

  private async finish(entry: Entry): Promise<void> {
    this.o.queue.forget(entry.id);
    await this.o.spool.remove('queue', entry.id);
  }

  private async defer(entry: Entry, header: SpoolHeader, body: Buffer, remaining: string[], why: string): Promise<void> {
    const { metrics, log } = this.o;
    const attempts = entry.state.attempts + 1;
    const age = Date.now() - header.receivedAt;
    if (age >= this.o.maxAge) {
      metrics.inc('expired');
      log.warn('maximum queue lifetime reached: giving up', { id: entry.id, to: remaining, ageSeconds: Math.round(age / 1000), lastError: why });
      const failures = remaining.map((address) => ({
        address,
        status: '4.4.7',
        diagnostic: `delivery time expired after ${Math.round(age / 3_600_000)} h; last error: ${why}`,
        diagnosticType: 'x-sluice' as const,
      }));
      await this.permanentFailure(entry, header, body, failures);
      return this.finish(entry);
    }
    const delay = backoff(attempts, this.o.retryMin, this.o.retryMax);
    entry.state = {
      attempts,
      nextAttemptAt: Date.now() + delay,
      lastError: why.slice(0, 1000),
      ...(remaining.length !== header.to.length || entry.state.remaining ? { remaining } : {}),
    };
    metrics.inc('deferred');
    log.warn('deferred (transient failure); will retry', {
      id: entry.id,
      to: remaining,
      attempt: attempts,
      retryInSeconds: Math.round(delay / 1000),
      error: why,
    });
    await this.o.spool.writeMeta('queue', entry.id, entry.state, !!entry.state.remaining);
  }

  /** Bounce and/or dead-letter the given recipients of a message. */
  private async permanentFailure(entry: Entry, header: SpoolHeader, body: Buffer, failures: Failure[]): Promise<void> {
    const { spool, queue, metrics, log, onPermanentFailure } = this.o;
    const isBounce = header.from === '';
    const dsn = header.dsn;
    const wantBounce = onPermanentFailure !== 'dead-letter' && !isBounce;
    const notified = failures.filter((f) => {
      const notify = dsn?.notify?.[f.address];
      return !notify || notify.includes('FAILURE');
    });
    const whole = failures.length === (entry.state.remaining ?? header.to).length;
    const dead: DeadInfo = { deadAt: Date.now(), reason: isBounce ? 'undeliverable bounce (null sender): never bounced again' : 'permanent failure', failures };
    if (onPermanentFailure !== 'bounce' || isBounce) {
      const deadId = whole ? entry.id : `${entry.id}.${entry.state.attempts}`;
      await spool.copy('queue', 'dead', entry.id, deadId, dead);
      metrics.inc('dead_lettered');
      log.warn('dead-lettered', { id: entry.id, deadId, to: failures.map((f) => f.address), reason: dead.reason });
    }
    if (!wantBounce) return;
    if (notified.length === 0) {
      log.info('no bounce: the sender asked not to be notified (NOTIFY)', { id: entry.id });
      return;
    }
    const bounce = composeBounce({
      reportingMta: this.o.hostname,
      remoteMta: this.o.upstreamHost,
      originalFrom: header.from,
      originalId: header.id,
      envid: dsn?.envid,
      arrivalDate: new Date(header.receivedAt),
      failures: notified.map((f) => ({ ...f, orcpt: dsn?.orcpt?.[f.address] })),
      original: body,
      full: dsn?.ret === 'FULL',
    });
    // A deterministic id: writing the same bounce twice after a crash replaces it.
    const bounceId = `${header.id}.B${entry.state.attempts}`;
    const bounceHeader: SpoolHeader = { v: 1, id: bounceId, from: '', to: [header.from], receivedAt: Date.now(), bounceOf: header.id };
    await spool.enqueue(bounceHeader, bounce);
    metrics.inc('bounced');
    log.warn('bounced to the sender', { id: entry.id, bounceId, sender: header.from, to: notified.map((f) => f.address) });
    if (!queue.has(bounceId)) queue.add(bounceId, bounceHeader.receivedAt);
  }
}
