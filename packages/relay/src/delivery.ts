/**
 * One delivery attempt and what its outcome does to the spooled message: delivered (removed),
 * deferred (retried with backoff until the maximum age, with delay warnings on the way), refused
 * (bounced or dead-lettered), or unknown (held for the operator, never resent on our own: at most
 * once). A message whose recipients route to different upstreams is sent as one part per upstream,
 * and each part's outcome applies to its own recipients.
 */
import { retryDelay, type SluiceError } from '@sluice/core';
import { composeBounce, type Failure, statusOf } from './bounce.js';
import type { RelayLogger } from './log.js';
import type { Metrics } from './metrics.js';
import type { PermanentFailureAction } from './options.js';
import { type Entry, type Queue, quarantine } from './queue.js';
import type { PartOutcome, Router, UpstreamInfo } from './router.js';
import type { DeadInfo, HeldInfo, Spool, SpoolHeader } from './spool.js';

export interface DeliveryOptions {
  spool: Spool;
  queue: Queue;
  router: Router;
  metrics: Metrics;
  log: RelayLogger;
  /** Our name: Reporting-MTA of bounces. */
  hostname: string;
  maxAge: number;
  retryMin: number;
  retryMax: number;
  onPermanentFailure: PermanentFailureAction;
  /** Ages (ms, ascending) at which a delay warning goes to the sender, once each (Postfix delay_warning_time). */
  delayWarnings: number[];
}

/** The relay's retry schedule, with the core's backoff: doubling from retryMin up to retryMax, ±10 % jitter. */
function backoff(attempts: number, retryMin: number, retryMax: number): number {
  return retryDelay(attempts, { retries: Number.POSITIVE_INFINITY, minDelay: retryMin, maxDelay: retryMax, factor: 2, jitter: 0.1 });
}

function failureOf(address: string, code: number | undefined, enhanced: string | null, response: string, local = false, remoteMta?: string): Failure {
  return { address, status: statusOf(code, enhanced), diagnostic: response, diagnosticType: local ? 'x-sluice' : 'smtp', ...(remoteMta ? { remoteMta } : {}) };
}

/** What one attempt did to each recipient, over every part. */
interface Tally {
  permanent: Failure[];
  /** Still to do, with why (4.x.x status for delay warnings). */
  transient: Failure[];
  unknown: Array<{ address: string; diagnostic: string }>;
  /** Never reached the wire (aborted at stop): no attempt counted. */
  untouched: string[];
}

export class Delivery {
  constructor(private readonly o: DeliveryOptions) {}

  /** One attempt for a queued message. */
  async deliver(entry: Entry): Promise<void> {
    const { spool, queue, log, router } = this.o;
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
    let outcomes: Array<{ to: string[]; out: PartOutcome }>;
    try {
      const parts = router.split(to);
      outcomes = await Promise.all(parts.map(async (p) => ({ to: p.to, out: await router.send(p, header.from, body, queue.abort.signal) })));
    } finally {
      queue.inFlightBytes -= body.length;
    }
    const tally: Tally = { permanent: [], transient: [], unknown: [], untouched: [] };
    for (const { to: partTo, out } of outcomes) {
      if (out.result) this.delivered(entry, out, tally, Date.now() - started);
      else this.failed(entry, partTo, out.upstream, out.error, tally);
    }
    return this.settle(entry, header, body, to, tally);
  }

  private delivered(entry: Entry, out: Extract<PartOutcome, { result: object }>, tally: Tally, ms: number): void {
    const { metrics, log } = this.o;
    const { result, upstream } = out;
    metrics.inc('delivered_recipients', result.accepted.length);
    const remote = upstream.host;
    tally.permanent.push(...result.rejected.map((r) => failureOf(r.address, r.code, r.enhancedCode, r.response, false, remote)));
    tally.transient.push(
      ...result.pending.map((r) => ({
        ...failureOf(r.address, r.code, r.enhancedCode, r.response, false, remote),
        status: statusOf(r.code, r.enhancedCode, '4.0.0'),
      })),
    );
    log.info('delivered', {
      id: entry.id,
      to: result.accepted.map((r) => r.address),
      response: result.response,
      ms,
      ...(this.o.router.list.length > 1 ? { upstream: upstream.name } : {}),
      ...(result.rejected.length ? { rejected: result.rejected.map((r) => r.address) } : {}),
      ...(result.pending.length ? { pending: result.pending.map((r) => r.address) } : {}),
    });
  }

  private failed(entry: Entry, to: string[], upstream: UpstreamInfo, err: SluiceError, tally: Tally): void {
    const { queue, log } = this.o;
    if (err.code === 'EABORT' || (queue.stopping && err.code === 'ECLOSED' && err.outcome === 'failed')) {
      tally.untouched.push(...to); // never reached the wire: stays spooled
      return;
    }
    const diag = err.response ?? err.message;
    const remote = upstream.host;
    if (err.outcome === 'unknown') {
      tally.unknown.push(...to.map((address) => ({ address, diagnostic: diag })));
      return;
    }
    if (err.outcome === 'rejected') {
      // Per-recipient replies count only when RCPT was the refusal; after a refused MAIL, the pipelined
      // RCPTs get "503 need MAIL" replies that say nothing about the recipients.
      const byAddress = new Map(err.command === 'RCPT' ? (err.rejected ?? []).map((r) => [r.address, r]) : []);
      for (const address of to) {
        const r = byAddress.get(address);
        tally.permanent.push(
          r
            ? failureOf(address, r.code, r.enhancedCode, r.response, false, remote)
            : failureOf(address, err.responseCode, err.enhancedCode ?? null, diag, err.responseCode === undefined, remote),
        );
      }
      log.warn('rejected upstream (permanent)', { id: entry.id, to, code: err.code, error: diag });
      return;
    }
    // 'failed': transient. Recipients refused with 5xx along the way are permanent failures.
    const refused = new Map((err.rejected ?? []).filter((r) => r.code >= 500).map((r) => [r.address, r]));
    for (const address of to) {
      const r = refused.get(address);
      if (r) tally.permanent.push(failureOf(address, r.code, r.enhancedCode, r.response, false, remote));
      else {
        const local = err.responseCode === undefined;
        tally.transient.push({
          address,
          status: statusOf(err.responseCode, err.enhancedCode ?? null, local ? '4.4.1' : '4.0.0'),
          diagnostic: `${err.code}: ${diag}`,
          diagnosticType: local ? 'x-sluice' : 'smtp',
          remoteMta: remote,
        });
      }
    }
  }

  /** Applies the attempt's tally to the spooled message. */
  private async settle(entry: Entry, header: SpoolHeader, body: Buffer, to: string[], t: Tally): Promise<void> {
    const { spool, queue, metrics, log } = this.o;
    if (t.untouched.length === to.length) return; // aborted before the wire: nothing changes
    if (t.permanent.length) await this.permanentFailure(entry, header, body, t.permanent);
    const retry = [...t.transient.map((f) => f.address), ...t.untouched];
    if (t.unknown.length) {
      metrics.inc('held');
      const info: HeldInfo = {
        heldAt: Date.now(),
        reason: 'unknown outcome: the connection was lost after the message was sent',
        error: t.unknown[0].diagnostic,
        remaining: t.unknown.map((u) => u.address),
        attempts: entry.state.attempts + 1,
      };
      // The unknown recipients wait for the operator; the others (other upstreams' parts) go on.
      const heldId = retry.length ? `${entry.id}.H${entry.state.attempts + 1}` : entry.id;
      log.warn('unknown outcome upstream: message held for the operator (it may have been delivered)', {
        id: entry.id,
        ...(heldId !== entry.id ? { heldId } : {}),
        to: info.remaining,
        error: info.error,
      });
      if (!retry.length) {
        queue.forget(entry.id);
        await spool.move('queue', 'held', entry.id, info);
        return;
      }
      await spool.copy('queue', 'held', entry.id, heldId, info);
    }
    if (retry.length) {
      const reasons = new Set(t.transient.map((f) => f.diagnostic));
      const why =
        t.transient.length === 0
          ? 'stopped before the attempt'
          : reasons.size === 1 && t.transient.length === retry.length
            ? t.transient[0].diagnostic // one failure for every recipient (a whole transaction)
            : t.transient.map((f) => `${f.address}: ${f.diagnostic}`).join('; ');
      return this.defer(entry, header, body, retry, why, t.transient);
    }
    // Delivered: every recipient done, at least one of them accepted upstream.
    if (!t.unknown.length && t.permanent.length < to.length) {
      metrics.inc('delivered');
      metrics.observeDelivered();
    }
    return this.finish(entry);
  }

  private async finish(entry: Entry): Promise<void> {
    this.o.queue.forget(entry.id);
    await this.o.spool.remove('queue', entry.id);
  }

  private async defer(entry: Entry, header: SpoolHeader, body: Buffer, remaining: string[], why: string, transient: Failure[]): Promise<void> {
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
    const warned = await this.delayWarning(entry, header, body, transient, age);
    entry.state = {
      attempts,
      nextAttemptAt: Date.now() + delay,
      lastError: why.slice(0, 1000),
      ...(remaining.length !== header.to.length || entry.state.remaining ? { remaining } : {}),
      ...(warned ? { delayWarnings: warned } : {}),
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
    const { spool, metrics, log, onPermanentFailure } = this.o;
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
    await this.notify(header, bounceId, bounce);
    metrics.inc('bounced');
    log.warn('bounced to the sender', { id: entry.id, bounceId, sender: header.from, to: notified.map((f) => f.address) });
  }

  /** A DSN of ours, queued to the original sender from the null sender `<>` (RFC 5321 §4.5.5: never bounced again). */
  private async notify(original: SpoolHeader, id: string, message: Buffer): Promise<void> {
    const header: SpoolHeader = { v: 1, id, from: '', to: [original.from], receivedAt: Date.now(), bounceOf: original.id };
    await this.o.spool.enqueue(header, message);
    if (!this.o.queue.has(id)) this.o.queue.add(id, header.receivedAt);
  }

  /**
   * A delay warning (RFC 3464 `Action: delayed`) once the message is older than the next configured
   * age, once per age, like Postfix's delay_warning_time. Not for bounces, and not for recipients
   * whose NOTIFY leaves out DELAY (RFC 3461 §4.1). Returns the ages warned about so far.
   */
  private async delayWarning(entry: Entry, header: SpoolHeader, body: Buffer, transient: Failure[], age: number): Promise<number | undefined> {
    const ages = this.o.delayWarnings;
    const before = entry.state.delayWarnings ?? 0;
    const due = ages.filter((a) => age >= a).length;
    if (due <= before || header.from === '') return before || undefined;
    const notify = header.dsn?.notify;
    const told = transient.filter((f) => !notify?.[f.address] || notify[f.address].includes('DELAY'));
    if (told.length > 0) {
      const willRetryUntil = new Date(header.receivedAt + this.o.maxAge);
      const warning = composeBounce({
        action: 'delayed',
        willRetryUntil,
        reportingMta: this.o.hostname,
        originalFrom: header.from,
        originalId: header.id,
        envid: header.dsn?.envid,
        arrivalDate: new Date(header.receivedAt),
        failures: told.map((f) => ({ ...f, orcpt: header.dsn?.orcpt?.[f.address] })),
        original: body,
      });
      const id = `${header.id}.D${due}`;
      await this.notify(header, id, warning);
      this.o.metrics.inc('delay_warned');
      this.o.log.warn('delay warning sent to the sender', {
        id: entry.id,
        warningId: id,
        sender: header.from,
        to: told.map((f) => f.address),
        ageSeconds: Math.round(age / 1000),
      });
    }
    return due;
  }
}
