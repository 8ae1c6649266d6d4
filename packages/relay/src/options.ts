/** The relay's options, their defaults, and the checks that make a relay safe to start. */
import os from 'node:os';
import type { PoolOptions, PoolStats, PresetName } from '@sluice/core';
import { RelayConfigError } from './config.js';
import type { RelayLogger } from './log.js';
import { resolvesToLoopback } from './loopback.js';
import type { HeldEntry } from './spool.js';
import { DEFAULT_TRUSTED, parseRanges } from './trusted.js';

export type PermanentFailureAction = 'bounce' | 'dead-letter' | 'both';

export interface UpstreamOptions {
  /** With several upstreams: the name routes refer to. Default 'primary' for the first, 'upstream2', … */
  name?: string;
  /** `smtp://user@host:port` or `smtps://user@host:port`; no password. */
  url?: string;
  /** A core provider preset: host, port and the provider's limits. */
  preset?: PresetName;
  host?: string;
  port?: number;
  secure?: boolean;
  user?: string;
  /** Never logged. */
  password?: string;
  /**
   * The EHLO name given to this upstream (RFC 5321 §4.1.1.1; Postfix's smtp_helo_name). Default
   * `pool.name`, else the first upstream's `pool.name`, else `hostname`.
   */
  ehloName?: string;
  /** Further @sluice/core pool options (tls, requireTLS, maxConnections, maxMessagesPerConnection, rateLimit…). */
  pool?: Omit<PoolOptions, 'auth' | 'logger' | 'retryUnknown'>;
}

export interface HttpOptions {
  /** Default 127.0.0.1. Beyond loopback only with `token`. */
  host?: string;
  /** Default 2526. 0 for any free port. */
  port?: number;
  /**
   * The token every state-changing route (POST /release, POST /flush) requires, as
   * `Authorization: Bearer <token>`; beyond loopback /status requires it too. At least 16 characters.
   * Default: a random one written to `<spoolDir>/http-token` (mode 0600), where `sluice-relay release` finds it.
   */
  token?: string;
  /** Host names (besides IP addresses and localhost) the HTTP port answers to; others are refused (DNS rebinding). */
  allowedHosts?: string[];
}

export interface RelayOptions {
  /** Listen address. Default 127.0.0.1. Anything that is not loopback (a name: any address it resolves to) needs `tls` and `users`. */
  host?: string;
  /** Default 2525. 0 for any free port. */
  port?: number;
  /** Our name: greeting, upstream EHLO (unless the upstream's `ehloName` or `pool.name`), Reporting-MTA of bounces. Default os.hostname(). */
  hostname?: string;
  spoolDir: string;
  /** The upstream (smarthost). Give `upstream` or `upstreams`. */
  upstream?: UpstreamOptions;
  /**
   * Several upstreams, in failover order, through @sluice/core's pool group: a message goes to the first
   * healthy one, and to the next when it fails before DATA (refused connection, 421, timeout, TLS or
   * AUTH failure, 4xx to MAIL). The EHLO name is each upstream's `ehloName` (or `pool.name`), else the
   * first upstream's `pool.name`, else `hostname`.
   */
  upstreams?: UpstreamOptions[];
  /**
   * Routing by recipient domain (Postfix's transport maps): `{ 'example.com': 'b' }` sends example.com's
   * recipients through upstream `b` only; `'.example.com'` matches its subdomains; a list (or "b,c") lets
   * them use several, tried in the order of `upstreams`; `'*'` is the rest (default: every upstream).
   */
  routes?: Record<string, string | string[]>;
  /**
   * Clients that may relay without AUTH (Postfix's mynetworks): CIDR ranges, IPv4 or IPv6
   * (`['127.0.0.1/32', '172.17.0.0/16', 'fd00::/8']`). Default loopback (127.0.0.0/8, ::1).
   * Every other client must AUTH; clients beyond loopback must use STARTTLS as well.
   */
  trustedNetworks?: string[];
  /**
   * Ages (ms) at which the sender gets a delay warning (RFC 3464 `Action: delayed`) for a message
   * still being retried, once per age (Postfix delay_warning_time). Default none.
   */
  delayWarning?: number | number[];
  /** Give up on a message deferred for this long (ms). Default 5 days (Postfix maximal_queue_lifetime). */
  maxAge?: number;
  /** First retry delay after a transient failure (ms). Default 60 s; doubles up to `retryMax`. */
  retryMin?: number;
  /** Longest retry delay (ms). Default 1 h. */
  retryMax?: number;
  /** What a permanent failure produces. Default 'bounce'. */
  onPermanentFailure?: PermanentFailureAction;
  /** Largest message accepted, bytes. Default 25 MiB. */
  maxSize?: number;
  /** Recipients per message. Default 1000. */
  maxRecipients?: number;
  /** Simultaneous local clients. Default 200. */
  maxClients?: number;
  /**
   * Simultaneous clients from one address outside the trusted networks. Default 50 (a quarter of
   * maxClients): one client cannot lock the others out. Trusted networks are exempt, as in Postfix.
   */
  maxClientsPerAddress?: number;
  /** A client session ends (421) this long after it connected, whatever it is doing (ms). Default 10 min. */
  sessionTimeout?: number;
  /** A command line, and each line of a message, must arrive within this time of its first byte (ms). Default 30 s. */
  commandTimeout?: number;
  /** A client that sends nothing for this long is disconnected (ms). Default 60 s. */
  idleTimeout?: number;
  /** STARTTLS for local clients: PEM key and certificate. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Local users who may AUTH (PLAIN/LOGIN, over TLS only). */
  users?: Record<string, string>;
  /** Require AUTH from every client, loopback ones too. Clients from other addresses always need it. */
  requireAuth?: boolean;
  /** HTTP port for /metrics, /health, /status, /release, /flush. Default 127.0.0.1:2526; false for none. */
  http?: HttpOptions | false;
  logger?: RelayLogger;
  /** On stop(): how long to wait for messages already on the wire (ms). Default 30 s. */
  shutdownTimeout?: number;
  /** How often queue/ is rescanned for messages put there by `sluice-relay release` (ms). Default 5 s. */
  scanInterval?: number;
  /** Messages handed to the pool at once. Default: maxConnections × maxMessagesPerConnection (at least 100). */
  maxInFlight?: number;
  /** Refuse mail (452) when the spool's file system has less free space than this (bytes). Default 64 MiB. */
  minFreeSpace?: number;
}

export interface UpstreamStatus {
  name: string;
  upstream: string;
  healthy: boolean;
  /** Consecutive failures while down (0 when healthy). */
  failures: number;
  /** While down: when the core probes it again (ISO time). */
  nextProbeAt?: string;
  /** Messages handed to it (a message moved counts again), and moved away before anything was written. */
  routed: number;
  movedAway: number;
  pool: PoolStats;
}

export interface RelayStatus {
  running: boolean;
  listening: { host: string; port: number };
  /** The first upstream. */
  upstream: string;
  upstreams: UpstreamStatus[];
  spoolDir: string;
  queue: { depth: number; inFlight: number; deferred: number; oldestAgeSeconds: number | null };
  held: HeldEntry[];
  dead: number;
  counters: Record<string, number>;
  rates: { acceptedPerMinute: number; deliveredPerMinute: number };
  /** The first upstream's pool. */
  pool: PoolStats;
  uptimeSeconds: number;
}

export interface Relay {
  readonly host: string;
  readonly port: number;
  /** The HTTP port, or null when disabled. */
  readonly httpPort: number | null;
  readonly spoolDir: string;
  status(): Promise<RelayStatus>;
  /** The Prometheus text of /metrics (prom-client: the relay's counters and gauges, each upstream pool's histograms). */
  metrics(): Promise<string>;
  /** Moves held messages back into the queue (all when no ids). Resolves with the ids released. */
  release(ids?: string[]): Promise<string[]>;
  /** Retries every deferred message now. */
  flush(): void;
  /** Resolves when the queue is empty and nothing is in flight (tests, benchmarks). */
  idle(timeoutMs?: number): Promise<void>;
  /** Stops accepting, finishes what is on the wire, keeps the rest spooled. */
  stop(): Promise<void>;
}

const DAY = 86_400_000;

/**
 * The options with every default filled in. `listenAddress` and `http.address` are what the host
 * names resolved to when they were checked: binding to those, not resolving the name again, keeps a
 * changed DNS answer from moving a listener off loopback after the check.
 */
export type Settings = ReturnType<typeof withDefaults>;

function withDefaults(options: RelayOptions) {
  const maxClients = options.maxClients ?? 200;
  const retryMin = options.retryMin ?? 60_000;
  const users = options.users && Object.keys(options.users).length > 0 ? options.users : undefined;
  const host = options.host ?? '127.0.0.1';
  const http = options.http === false ? (false as const) : { host: '127.0.0.1', port: 2526, ...options.http };
  return {
    ...options,
    host,
    listenAddress: host,
    port: options.port ?? 2525,
    hostname: options.hostname ?? (os.hostname() || 'localhost'),
    maxAge: options.maxAge ?? 5 * DAY,
    retryMin,
    retryMax: Math.max(options.retryMax ?? 3_600_000, retryMin),
    onPermanentFailure: options.onPermanentFailure ?? 'bounce',
    maxSize: options.maxSize ?? 25 * 1024 * 1024,
    maxRecipients: options.maxRecipients ?? 1000,
    maxClients,
    maxClientsPerAddress: options.maxClientsPerAddress ?? Math.max(1, Math.floor(maxClients / 4)),
    sessionTimeout: options.sessionTimeout ?? 600_000,
    commandTimeout: options.commandTimeout ?? 30_000,
    idleTimeout: options.idleTimeout ?? 60_000,
    minFreeSpace: options.minFreeSpace ?? 64 * 1024 * 1024,
    shutdownTimeout: options.shutdownTimeout ?? 30_000,
    scanInterval: options.scanInterval ?? 5000,
    users,
    upstreams: options.upstreams?.length ? options.upstreams : options.upstream ? [options.upstream] : [],
    trusted: parseRanges(options.trustedNetworks?.length ? options.trustedNetworks : DEFAULT_TRUSTED),
    delayWarnings: [options.delayWarning ?? []]
      .flat()
      .filter((a) => a > 0)
      .sort((a, b) => a - b),
    http: http && { ...http, address: http.host },
  };
}

/** Fills the defaults and refuses what would make the relay unsafe: an open relay, a control port beyond loopback without a token. */
export async function resolveSettings(options: RelayOptions): Promise<Settings> {
  const s = withDefaults(options);
  if (!s.spoolDir) throw new RelayConfigError('spoolDir is required');
  if (options.upstream && options.upstreams?.length) throw new RelayConfigError('Give upstream or upstreams, not both');
  for (const a of s.delayWarnings) if (!Number.isFinite(a)) throw new RelayConfigError('delayWarning must be ages in ms');
  if (!['bounce', 'dead-letter', 'both'].includes(s.onPermanentFailure)) throw new RelayConfigError('onPermanentFailure must be bounce, dead-letter or both');
  for (const k of ['maxClients', 'maxClientsPerAddress', 'sessionTimeout', 'commandTimeout', 'idleTimeout'] as const) {
    if (!(Number.isInteger(s[k]) && s[k] > 0)) throw new RelayConfigError(`${k} must be a positive integer`);
  }
  // An open relay on a network interface would let anyone send through the provider account.
  const listen = await resolvesToLoopback(s.host);
  // Trusted networks stand in for AUTH (only their clients relay); TLS is needed beyond loopback all the same.
  if (!listen.loopback && !(s.tls && (s.users || options.trustedNetworks?.length))) {
    throw new RelayConfigError(
      `Refusing to listen on ${s.host}${resolvedAs(s.host, listen)}: on an interface other than loopback the relay needs STARTTLS (--tls-key and --tls-cert) and AUTH (--users-file) or --trusted-networks, ` +
        'or anyone who can reach it could send mail through your provider account. Listen on 127.0.0.1 (the default) for local senders.',
    );
  }
  s.listenAddress = listen.loopback ? listen.addresses[0] : s.host;
  if (s.requireAuth && !s.users) throw new RelayConfigError('requireAuth needs users (--users-file)');
  if (s.users && !s.tls) throw new RelayConfigError('AUTH for local clients needs TLS (--tls-key and --tls-cert): credentials are never accepted in clear');
  if (s.http) {
    if (s.http.token !== undefined && s.http.token.length < 16) throw new RelayConfigError('The HTTP token must be at least 16 characters');
    const check = await resolvesToLoopback(s.http.host);
    if (!check.loopback && s.http.token === undefined) {
      throw new RelayConfigError(
        `Refusing to serve HTTP on ${s.http.host}${resolvedAs(s.http.host, check)}: beyond loopback the control port needs a token ` +
          '(--http-token-file FILE, mode 0600, or SLUICE_RELAY_HTTP_TOKEN), or anyone who can reach it could release held messages. ' +
          'Use --http 127.0.0.1:2526 (the default) or --http off.',
      );
    }
    s.http.address = check.loopback ? check.addresses[0] : s.http.host;
  }
  return s;
}

function resolvedAs(host: string, check: { addresses: string[]; error?: string }): string {
  if (check.error) return ` (it does not resolve: ${check.error})`;
  return check.addresses.length === 1 && check.addresses[0] === host ? '' : ` (it resolves to ${check.addresses.join(', ')})`;
}
