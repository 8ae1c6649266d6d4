/**
 * Several upstreams: which ones a recipient may go to (routing by domain, like Postfix's transport
 * maps), and failover among them (like Postfix's smtp_fallback_relay), through one @sluice/core
 * pool group: one pool per upstream, each with its own health, backoff and recovery probes.
 *
 * Failover happens only before DATA (the core's rule): a send that failed while connecting,
 * greeting, EHLO, STARTTLS, AUTH or MAIL moves to the next healthy upstream of its route. Once
 * content has been written the message stays with that upstream: a reply to the final "." is that
 * upstream's answer, and an unknown outcome stays unknown (held), never resent elsewhere.
 */
import { createPoolGroup, type UpstreamOptions as GroupUpstream, isSluiceError, type PoolGroup, type SendResult, type SluiceError } from '@sluice/core';
import { RelayConfigError } from './config.js';
import type { RelayLogger } from './log.js';
import type { UpstreamOptions } from './options.js';
import { describeUpstream, upstreamName, upstreamPoolOptions } from './upstream.js';

/** What the relay knows of an upstream: its name, how to show it, and the limits it schedules by. */
export interface UpstreamInfo {
  name: string;
  /** `smtp://user@host:port`, from the resolved options; never the password. */
  describe: string;
  /** The upstream host (Remote-MTA of DSNs). */
  host: string;
  maxConnections: number;
  maxMessagesPerConnection: number;
  /** The name its connections give in EHLO (null: the core's default, this host's FQDN or an address literal). */
  ehloName: string | null;
}

/** One part of a message: the recipients that share a route, and the upstreams it may use. */
export interface Part {
  upstreams: string[];
  to: string[];
}

export type PartOutcome =
  | { upstream: UpstreamInfo; result: SendResult; error?: undefined }
  | { upstream: UpstreamInfo; result?: undefined; error: SluiceError };

export interface RouterSettings {
  upstreams: UpstreamOptions[];
  /** Domain (or `.domain` for its subdomains, `*` for the rest) → upstream names. */
  routes?: Record<string, string | string[]>;
  hostname: string;
  retryMin: number;
  retryMax: number;
  log: RelayLogger;
  onFailover?(): void;
}

export class Router {
  readonly group: PoolGroup;
  readonly list: UpstreamInfo[];
  private readonly byName = new Map<string, UpstreamInfo>();
  private readonly exact = new Map<string, string[]>();
  private readonly suffix: Array<[string, string[]]> = [];
  private readonly fallback: string[];

  constructor(s: RouterSettings) {
    if (s.upstreams.length === 0) throw new RelayConfigError('No upstream: give --upstream smtp://user@host:port, or --preset <provider>');
    const members: GroupUpstream[] = s.upstreams.map((u, i) => {
      const name = upstreamName(u, i);
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new RelayConfigError(`Upstream name ${JSON.stringify(name)}: letters, digits, "_", "-" and "." only`);
      if (s.upstreams.slice(0, i).some((v, j) => upstreamName(v, j) === name)) throw new RelayConfigError(`Two upstreams are named ${name}`);
      const { options } = upstreamPoolOptions(u);
      // A group member's `name` is its upstream name; its own EHLO name (PoolOptions.name) is `ehloName`
      // there, and without one it says the group's.
      const { name: ehloName, ...own } = options;
      return { ...own, name, ...(ehloName !== undefined ? { ehloName } : {}) };
    });
    this.group = createPoolGroup({
      upstreams: members,
      name: s.upstreams[0].pool?.name ?? s.hostname,
      // The relay holds unknown outcomes itself (held/): no pool may resend them.
      retryUnknown: false,
      // Each pool retries briefly on the same attempt; the relay's own schedule (retryMin..retryMax) does the rest.
      retry: { retries: 2, minDelay: Math.min(1000, s.retryMin), maxDelay: Math.min(30_000, s.retryMax) },
      health: { backoff: { minDelay: Math.min(1000, s.retryMin), maxDelay: Math.max(Math.min(1000, s.retryMin), Math.min(60_000, s.retryMax)) } },
      logger: {
        warn: (message, meta) => s.log.warn(`upstream: ${message}`, meta),
        error: (message, meta) => s.log.error(`upstream: ${message}`, meta),
      },
    });
    this.list = this.group.names.map((name) => {
      const pool = this.group.pool(name)!;
      const c = pool.options.connection;
      const info: UpstreamInfo = {
        name,
        describe: describeUpstream({ host: c.host, port: c.port, secure: c.secure }, c.auth?.user),
        host: c.host,
        maxConnections: pool.options.maxConnections,
        maxMessagesPerConnection: c.maxMessages,
        ehloName: c.name,
      };
      this.byName.set(name, info);
      return info;
    });
    const many = this.list.length > 1;
    this.group.on('connect-error', (err, upstream) =>
      s.log.warn('upstream connection failed', {
        upstream: this.byName.get(upstream)?.describe,
        ...(many ? { name: upstream } : {}),
        code: err.code,
        error: err.message,
      }),
    );
    this.group.on('failover', (f) => {
      s.onFailover?.();
      s.log.warn('failing over to the next upstream', {
        from: f.from,
        to: f.to,
        reason: f.reason,
        ...(f.error ? { code: f.error.code, error: f.error.response ?? f.error.message } : {}),
      });
    });
    this.group.on('upstream-down', (d) =>
      s.log.warn('upstream marked down', { upstream: d.upstream, retryInMs: d.retryIn, error: d.error.response ?? d.error.message }),
    );
    this.group.on('upstream-up', (u) => s.log.info('upstream back', { upstream: u.upstream }));

    let fallback = this.group.names;
    for (const [domain, names] of Object.entries(s.routes ?? {})) {
      const list = (Array.isArray(names) ? names : names.split(',')).map((n) => n.trim()).filter(Boolean);
      for (const n of list) {
        if (!this.byName.has(n))
          throw new RelayConfigError(`Route ${domain}: no upstream named ${JSON.stringify(n)} (upstreams: ${this.group.names.join(', ')})`);
      }
      if (list.length === 0) throw new RelayConfigError(`Route ${domain}: no upstream`);
      // The group tries a route's upstreams in the order of the upstreams (--upstream), first healthy first.
      const chain = this.group.names.filter((n) => list.includes(n));
      const d = domain.trim().toLowerCase();
      if (d === '*') fallback = chain;
      else if (d.startsWith('.')) this.suffix.push([d, chain]);
      else this.exact.set(d, chain);
    }
    this.fallback = fallback;
  }

  /** The upstreams a recipient may use: its domain's route, a parent domain's `.route`, else `*` (default: every upstream). */
  routeFor(address: string): string[] {
    const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
    const exact = this.exact.get(domain);
    if (exact) return exact;
    let best: [string, string[]] | undefined;
    for (const entry of this.suffix) if (domain.endsWith(entry[0]) && (!best || entry[0].length > best[0].length)) best = entry;
    return best ? best[1] : this.fallback;
  }

  /** The recipients grouped by route: one part per distinct set of upstreams, recipients in their original order. */
  split(to: string[]): Part[] {
    const parts = new Map<string, Part>();
    for (const address of to) {
      const upstreams = this.routeFor(address);
      const key = upstreams.join(' ');
      let part = parts.get(key);
      if (!part) parts.set(key, (part = { upstreams, to: [] }));
      part.to.push(address);
    }
    return [...parts.values()];
  }

  /** Sends one part through the group, restricted to the part's upstreams. */
  async send(part: Part, from: string, body: Buffer, signal: AbortSignal): Promise<PartOutcome> {
    const all = part.upstreams.length === this.list.length;
    try {
      const result = await this.group.send({ envelope: { from, to: part.to }, body }, { signal, ...(all ? {} : { upstreams: part.upstreams }) });
      return { upstream: this.byName.get(result.upstream) ?? this.list[0], result };
    } catch (err) {
      if (!isSluiceError(err)) throw err;
      const name = (err as SluiceError & { upstream?: string }).upstream;
      return { upstream: (name && this.byName.get(name)) || this.byName.get(part.upstreams[0]) || this.list[0], error: err };
    }
  }

  /** For /status: each upstream, its health and its pool's counters. */
  describe() {
    const stats = this.group.stats.upstreams;
    return this.list.map((u) => {
      const st = stats[u.name];
      const { name: _n, weight: _w, health, failures, nextProbeAt, routed, movedAway, ...pool } = st;
      return {
        name: u.name,
        upstream: u.describe,
        healthy: health === 'healthy',
        failures,
        ...(nextProbeAt ? { nextProbeAt: new Date(nextProbeAt).toISOString() } : {}),
        routed,
        movedAway,
        pool,
      };
    });
  }

  /** The first upstream's pool counters (RelayStatus.pool). */
  primaryStats() {
    return this.group.pool(this.list[0].name)!.stats;
  }

  /** The first upstream's EHLO name. */
  get ehloName(): string | null {
    return this.list[0].ehloName;
  }

  close(): Promise<void> {
    return this.group.close();
  }

  destroy(): void {
    void this.group.destroy();
  }

  connections(): number {
    return this.group.stats.connections;
  }
}
