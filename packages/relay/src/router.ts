/**
 * Several upstreams: which ones a recipient goes to (routing by domain, like Postfix's transport
 * maps), and failover along that list when an upstream is down (like Postfix's
 * smtp_fallback_relay). Each upstream is one @sluice/core pool with its own health.
 *
 * Failover happens only before DATA: an attempt that failed while connecting, greeting, EHLO,
 * STARTTLS, AUTH, MAIL or RCPT (outcome `failed`: nothing was delivered) goes on to the next upstream.
 * Once content has been written the message stays with that upstream: a reply to the final "."
 * is that upstream's answer, and an unknown outcome stays unknown (held), never resent elsewhere.
 */
import { isSluiceError, type SendResult, type SluiceError } from '@sluice/core';
import { RelayConfigError } from './config.js';
import type { RelayLogger } from './log.js';
import type { UpstreamOptions } from './options.js';
import { createUpstream, type Upstream } from './upstream.js';

export interface NamedUpstream extends Upstream {
  name: string;
  /** Down until this time (ms since epoch) after a failure; 0 when healthy. */
  downUntil: number;
  /** Consecutive failures (the backoff doubles with each). */
  failures: number;
  lastError?: string;
}

/** One part of a message: the recipients that share a route, and the upstreams to try in order. */
export interface Part {
  chain: NamedUpstream[];
  to: string[];
}

export type PartOutcome =
  | { upstream: NamedUpstream; result: SendResult; error?: undefined }
  | { upstream: NamedUpstream; result?: undefined; error: SluiceError };

export interface RouterSettings {
  upstreams: Array<UpstreamOptions & { name?: string }>;
  /** Domain (or `.domain` for its subdomains, `*` for the rest) → upstream names, tried in order. */
  routes?: Record<string, string | string[]>;
  hostname: string;
  retryMin: number;
  retryMax: number;
  log: RelayLogger;
  onFailover?(): void;
}

/** Steps of the content phase: a failure there is that upstream's, never failed over (see the top comment). */
const CONTENT = new Set(['DATA', 'BDAT', 'DOT', 'BDAT_LAST']);
const LOCAL = new Set(['EABORT', 'ECLOSED', 'EQUEUEFULL', 'EMESSAGE', 'EENVELOPE', 'EOPTIONS', 'ECAPABILITY']);

/** Whether the next upstream may take the message: nothing was delivered, and the failure was the upstream's, before DATA. */
export function mayFailOver(err: SluiceError): boolean {
  return err.outcome === 'failed' && !LOCAL.has(err.code) && !CONTENT.has(err.command ?? '');
}

function upstreamName(u: UpstreamOptions & { name?: string }, i: number): string {
  return u.name ?? (i === 0 ? 'primary' : `upstream${i + 1}`);
}

export class Router {
  readonly list: NamedUpstream[];
  private readonly byName = new Map<string, NamedUpstream>();
  private readonly exact = new Map<string, NamedUpstream[]>();
  private readonly suffix: Array<[string, NamedUpstream[]]> = [];
  private readonly fallback: NamedUpstream[];
  private readonly downMin: number;
  private readonly downMax: number;

  constructor(private readonly s: RouterSettings) {
    if (s.upstreams.length === 0) throw new RelayConfigError('No upstream: give --upstream smtp://user@host:port, or --preset <provider>');
    this.list = s.upstreams.map((u, i) => {
      const name = upstreamName(u, i);
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new RelayConfigError(`Upstream name ${JSON.stringify(name)}: letters, digits, "_", "-" and "." only`);
      if (this.byName.has(name)) throw new RelayConfigError(`Two upstreams are named ${name}`);
      const up: NamedUpstream = {
        ...createUpstream({ upstream: u, hostname: s.hostname, retryMin: s.retryMin, retryMax: s.retryMax, log: s.log }),
        name,
        downUntil: 0,
        failures: 0,
      };
      this.byName.set(name, up);
      return up;
    });
    let fallback = this.list;
    for (const [domain, names] of Object.entries(s.routes ?? {})) {
      const chain = (Array.isArray(names) ? names : names.split(',')).map((n) => {
        const up = this.byName.get(n.trim());
        if (!up)
          throw new RelayConfigError(`Route ${domain}: no upstream named ${JSON.stringify(n.trim())} (upstreams: ${[...this.byName.keys()].join(', ')})`);
        return up;
      });
      if (chain.length === 0) throw new RelayConfigError(`Route ${domain}: no upstream`);
      const d = domain.trim().toLowerCase();
      if (d === '*') fallback = chain;
      else if (d.startsWith('.')) this.suffix.push([d, chain]);
      else this.exact.set(d, chain);
    }
    this.fallback = fallback;
    this.downMin = Math.min(1000, s.retryMin);
    this.downMax = Math.max(this.downMin, Math.min(60_000, s.retryMax));
  }

  /** The upstreams for a recipient, in failover order: its domain's route, a parent domain's `.route`, else `*` (default: every upstream in order). */
  chainFor(address: string): NamedUpstream[] {
    const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
    const exact = this.exact.get(domain);
    if (exact) return exact;
    let best: [string, NamedUpstream[]] | undefined;
    for (const entry of this.suffix) if (domain.endsWith(entry[0]) && (!best || entry[0].length > best[0].length)) best = entry;
    return best ? best[1] : this.fallback;
  }

  /** The recipients grouped by route: one part per distinct chain, recipients in their original order. */
  split(to: string[]): Part[] {
    const parts = new Map<NamedUpstream[], Part>();
    for (const address of to) {
      const chain = this.chainFor(address);
      let part = parts.get(chain);
      if (!part) parts.set(chain, (part = { chain, to: [] }));
      part.to.push(address);
    }
    return [...parts.values()];
  }

  /** Sends one part, failing over along its chain (healthy upstreams first, in order). */
  async send(part: Part, envelope: { from: string }, body: Buffer, signal: AbortSignal): Promise<PartOutcome> {
    const now = Date.now();
    const healthy = part.chain.filter((u) => u.downUntil <= now);
    // All down: try them anyway, the one that comes back first first.
    const order = healthy.length > 0 ? healthy : [...part.chain].sort((a, b) => a.downUntil - b.downUntil);
    let last: PartOutcome | undefined;
    for (const [i, up] of order.entries()) {
      try {
        const result = await up.pool.send({ envelope: { from: envelope.from, to: part.to }, body }, { signal });
        this.up(up);
        return { upstream: up, result };
      } catch (err) {
        if (!isSluiceError(err)) throw err;
        last = { upstream: up, error: err };
        if (!mayFailOver(err)) return last;
        this.down(up, err);
        const next = order[i + 1];
        if (next) this.s.onFailover?.();
        if (next) this.s.log.warn('failing over to the next upstream', { from: up.name, to: next.name, code: err.code, error: err.response ?? err.message });
      }
    }
    return last!;
  }

  private up(u: NamedUpstream): void {
    if (u.failures > 0) this.s.log.info('upstream back', { upstream: u.name });
    u.failures = 0;
    u.downUntil = 0;
    u.lastError = undefined;
  }

  private down(u: NamedUpstream, err: SluiceError): void {
    u.failures++;
    const ms = Math.min(this.downMax, this.downMin * 2 ** (u.failures - 1));
    u.downUntil = Date.now() + ms;
    u.lastError = `${err.code}: ${err.response ?? err.message}`.slice(0, 500);
    this.s.log.warn('upstream marked down', { upstream: u.name, forMs: ms, failures: u.failures, error: u.lastError });
  }

  /** For /status: each upstream, its health and its pool's counters. */
  describe() {
    const now = Date.now();
    return this.list.map((u) => ({
      name: u.name,
      upstream: u.describe,
      healthy: u.downUntil <= now,
      ...(u.downUntil > now ? { downForSeconds: Math.ceil((u.downUntil - now) / 1000) } : {}),
      ...(u.lastError ? { lastError: u.lastError } : {}),
      pool: { ...u.pool.stats },
    }));
  }

  /** QUIT on every upstream's connections. */
  async close(): Promise<void> {
    await Promise.all(this.list.map((u) => u.pool.close()));
  }

  destroy(): void {
    for (const u of this.list) u.pool.destroy();
  }

  connections(): number {
    return this.list.reduce((n, u) => n + u.pool.stats.connections, 0);
  }
}
