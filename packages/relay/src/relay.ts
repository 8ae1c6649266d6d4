/** The relay: an SMTP listener that spools durably, and a scheduler that forwards through @sluice/core. */
import { timingSafeEqual } from 'node:crypto';
import { once, setMaxListeners } from 'node:events';
import { statfs } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import {
  createPool,
  isSluiceError,
  type PoolOptions,
  type PoolStats,
  type PresetName,
  type SendResult,
  type SluiceError,
  preset as presetInfo,
} from '@sluice/core';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { composeBounce, type Failure, statusOf } from './bounce.js';
import { parseUpstreamUrl, RelayConfigError } from './config.js';
import { type RelayLogger, silentLogger } from './log.js';
import { Metrics } from './metrics.js';
import { type DeadInfo, type DeliveryState, type HeldEntry, type HeldInfo, isValidId, newId, SizeExceededError, Spool, type SpoolDsn, type SpoolHeader } from './spool.js';
import { isLoopback } from './units.js';

export type PermanentFailureAction = 'bounce' | 'dead-letter' | 'both';

export interface UpstreamOptions {
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
  /** Further @sluice/core pool options (tls, requireTLS, maxConnections, maxMessagesPerConnection, rateLimit…). */
  pool?: Omit<PoolOptions, 'auth' | 'logger' | 'retryUnknown'>;
}

export interface RelayOptions {
  /** Listen address. Default 127.0.0.1. Any other interface needs `tls` and `users` (refused otherwise). */
  host?: string;
  /** Default 2525. 0 for any free port. */
  port?: number;
  /** Our name: greeting, EHLO, Reporting-MTA of bounces. Default os.hostname(). */
  hostname?: string;
  spoolDir: string;
  upstream: UpstreamOptions;
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
  /** STARTTLS for local clients: PEM key and certificate. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Local users who may AUTH (PLAIN/LOGIN, over TLS only). */
  users?: Record<string, string>;
  /** Require AUTH from every client, loopback ones too. Clients from other addresses always need it. */
  requireAuth?: boolean;
  /** HTTP port for /metrics, /health and /status. Default 127.0.0.1:2526; false for none. */
  http?: { host?: string; port?: number } | false;
  logger?: RelayLogger;
  /** On stop(): how long to wait for messages already on the wire (ms). Default 30 s. */
  shutdownTimeout?: number;
  /** How often queue/ is rescanned for messages put there by `sluice-relay release` (ms). Default 5 s. */
  scanInterval?: number;
  /** Messages handed to the pool at once. Default: maxConnections × maxMessagesPerConnection. */
  maxInFlight?: number;
  /** Refuse mail (452) when the spool's file system has less free space than this (bytes). Default 64 MiB. */
  minFreeSpace?: number;
}

export interface RelayStatus {
  running: boolean;
  listening: { host: string; port: number };
  upstream: string;
  spoolDir: string;
  queue: { depth: number; inFlight: number; deferred: number; oldestAgeSeconds: number | null };
  held: HeldEntry[];
  dead: number;
  counters: Record<string, number>;
  rates: { acceptedPerMinute: number; deliveredPerMinute: number };
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
  metrics(): string;
  /** Moves held messages back into the queue (all when no ids). Resolves with the ids released. */
  release(ids?: string[]): Promise<string[]>;
  /** Retries every deferred message now. */
  flush(): void;
  /** Resolves when the queue is empty and nothing is in flight (tests, benchmarks). */
  idle(timeoutMs?: number): Promise<void>;
  /** Stops accepting, finishes what is on the wire, keeps the rest spooled. */
  stop(): Promise<void>;
}

interface Entry {
  id: string;
  receivedAt: number;
  state: DeliveryState;
  busy: boolean;
  ready: boolean;
}

class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

const DAY = 86_400_000;

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function smtpError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

/**
 * smtp-server waits 100 ms before its greeting to catch clients that talk too early (a spam-bot
 * heuristic, like Postfix's postscreen). For a relay whose clients are local programs opening one
 * connection per message, that pause is most of the time a message takes, so the greeting is sent at
 * once. Relies on smtp-server's `connections` set and `connectionReady()`; if they change, the pause
 * simply stays.
 */
function skipGreetingDelay(server: SMTPServer, maxClients: number): void {
  const s = server as unknown as { connect?: (socket: unknown, options: unknown) => void; connections?: Set<{ connectionReady?: (next?: unknown) => void }> };
  const original = s.connect;
  if (typeof original !== 'function' || !(s.connections instanceof Set)) return;
  s.connect = function (this: unknown, socket: unknown, socketOptions: unknown) {
    const before = s.connections!.size;
    original.call(this, socket, socketOptions);
    if (s.connections!.size !== before + 1 || s.connections!.size > maxClients) return;
    let conn: { connectionReady?: (next?: unknown) => void } | undefined;
    for (const c of s.connections!) conn = c; // the newest
    const ready = conn?.connectionReady;
    if (!conn || typeof ready !== 'function') return;
    let done = false;
    conn.connectionReady = function (this: unknown, next?: unknown) {
      if (done) return;
      done = true;
      ready.call(conn, next);
    };
    conn.connectionReady();
  };
}

/** Resolves the pool options for the upstream; returns them with a description safe to log. */
export function upstreamPoolOptions(upstream: UpstreamOptions): { options: PoolOptions; describe: string } {
  const parsed = upstream.url ? parseUpstreamUrl(upstream.url) : undefined;
  const base = upstream.preset ? presetInfo(upstream.preset).options : {};
  const host = parsed?.host ?? upstream.host ?? base.host;
  if (!host) throw new RelayConfigError('No upstream: give --upstream smtp://user@host:port, or --preset <provider>');
  const secure = parsed?.secure ?? upstream.secure ?? base.secure;
  const port = parsed?.port ?? upstream.port ?? base.port ?? (secure ? 465 : 587);
  const urlUser = parsed?.user;
  if (urlUser && upstream.user && urlUser !== upstream.user) {
    throw new RelayConfigError(`The upstream user in the URL (${urlUser}) and the one given otherwise (${upstream.user}) differ`);
  }
  const user = urlUser ?? upstream.user;
  if (user && !upstream.password)
    throw new RelayConfigError(`A user (${user}) is set for the upstream but no password: use --password-file <file> or SLUICE_RELAY_PASSWORD`);
  if (upstream.password && !user)
    throw new RelayConfigError('A password is set for the upstream but no user: smtp://user@host:port, --user, or user:password in the password file');
  const options: PoolOptions = {
    ...(upstream.preset ? { preset: upstream.preset } : {}),
    ...upstream.pool,
    host,
    port,
    ...(secure !== undefined ? { secure } : {}),
    ...(user ? { auth: { user, pass: upstream.password! } } : {}),
  };
  const describe = `${secure ? 'smtps' : 'smtp'}://${user ? `${encodeURIComponent(user)}@` : ''}${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { options, describe };
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const log = options.logger ?? silentLogger;
  const host = options.host ?? '127.0.0.1';
  const hostname = options.hostname ?? (os.hostname() || 'localhost');
  const maxAge = options.maxAge ?? 5 * DAY;
  const retryMin = options.retryMin ?? 60_000;
  const retryMax = Math.max(options.retryMax ?? 3_600_000, retryMin);
  const onPermanent = options.onPermanentFailure ?? 'bounce';
  const maxSize = options.maxSize ?? 25 * 1024 * 1024;
  const minFreeSpace = options.minFreeSpace ?? 64 * 1024 * 1024;
  const shutdownTimeout = options.shutdownTimeout ?? 30_000;
  const users = options.users && Object.keys(options.users).length > 0 ? options.users : undefined;
  if (!options.spoolDir) throw new RelayConfigError('spoolDir is required');
  if (!['bounce', 'dead-letter', 'both'].includes(onPermanent)) throw new RelayConfigError('onPermanentFailure must be bounce, dead-letter or both');

  // An open relay on a network interface would let anyone send through the provider account.
  if (!isLoopback(host) && !(options.tls && users)) {
    throw new RelayConfigError(
      `Refusing to listen on ${host}: on an interface other than loopback the relay needs STARTTLS (--tls-key and --tls-cert) and AUTH (--users-file), ` +
        'or anyone who can reach it could send mail through your provider account. Listen on 127.0.0.1 (the default) for local senders.',
    );
  }
  if (options.requireAuth && !users) throw new RelayConfigError('requireAuth needs users (--users-file)');
  if (users && !options.tls) throw new RelayConfigError('AUTH for local clients needs TLS (--tls-key and --tls-cert): credentials are never accepted in clear');

  const { options: poolOptions, describe: upstreamName } = upstreamPoolOptions(options.upstream);
  const limits = { maxConnections: poolOptions.maxConnections ?? 20, perConnection: poolOptions.maxMessagesPerConnection ?? 50 };
  if (poolOptions.preset) {
    const p = presetInfo(poolOptions.preset).options;
    limits.maxConnections = poolOptions.maxConnections ?? p.maxConnections ?? 20;
    limits.perConnection = poolOptions.maxMessagesPerConnection ?? p.maxMessagesPerConnection ?? 50;
  }
  const maxInFlight = options.maxInFlight ?? Math.max(100, limits.maxConnections * limits.perConnection);
  const maxInFlightBytes = 256 * 1024 * 1024;

  const spool = new Spool(options.spoolDir);
  const { removedTmp } = await spool.init();
  if (removedTmp > 0) log.info('removed unacknowledged partial messages from tmp/', { count: removedTmp });

  const metrics = new Metrics();
  const entries = new Map<string, Entry>();
  const ready = new Fifo<Entry>();
  let inFlight = 0;
  let inFlightBytes = 0;
  let stopping = false;
  const startedAt = Date.now();
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per queued message
  const inFlightPromises = new Set<Promise<void>>();
  let idleWaiters: Array<() => void> = [];

  const pool = createPool({
    ...poolOptions,
    retryUnknown: false,
    retry: poolOptions.retry ?? { retries: 2, minDelay: Math.min(1000, retryMin), maxDelay: Math.min(30_000, retryMax) },
    highWaterMark: Math.max(maxInFlight, 1),
    logger: {
      warn: (message, meta) => log.warn(`upstream: ${message}`, meta),
      error: (message, meta) => log.error(`upstream: ${message}`, meta),
    },
  });
  pool.on('connect-error', (err: SluiceError) => log.warn('upstream connection failed', { upstream: upstreamName, code: err.code, error: err.message }));

  // --- the queue -------------------------------------------------------------------------------

  const addEntry = (id: string, receivedAt: number, state?: DeliveryState): Entry => {
    const entry: Entry = { id, receivedAt, state: state ?? { attempts: 0, nextAttemptAt: 0 }, busy: false, ready: false };
    entries.set(id, entry);
    if (entry.state.nextAttemptAt <= Date.now()) markReady(entry);
    return entry;
  };

  const markReady = (entry: Entry) => {
    if (entry.ready || entry.busy) return;
    entry.ready = true;
    ready.push(entry);
  };

  const checkIdle = () => {
    if (entries.size === 0 && inFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  };

  const pump = () => {
    while (!stopping && ready.length > 0 && inFlight < maxInFlight && inFlightBytes < maxInFlightBytes) {
      const entry = ready.shift()!;
      entry.ready = false;
      if (entries.get(entry.id) !== entry || entry.busy) continue;
      entry.busy = true;
      inFlight++;
      const p = deliver(entry)
        .catch((err) => {
          // A local failure (disk): keep the message, try again later.
          log.error('internal error while delivering; will retry', { id: entry.id, error: (err as Error).message });
          entry.state.nextAttemptAt = Date.now() + retryMin;
        })
        .finally(() => {
          entry.busy = false;
          inFlight--;
          inFlightPromises.delete(p);
          if (entries.get(entry.id) === entry && entry.state.nextAttemptAt <= Date.now() && !stopping) markReady(entry);
          pump();
          checkIdle();
        });
      inFlightPromises.add(p);
    }
  };

  // Deferred messages come back when due; released ones are found by rescanning queue/.
  const tick = setInterval(
    () => {
      const now = Date.now();
      for (const entry of entries.values()) if (!entry.busy && !entry.ready && entry.state.nextAttemptAt <= now) markReady(entry);
      pump();
    },
    Math.min(1000, retryMin),
  );
  tick.unref();
  const scan = setInterval(() => void rescan().catch(() => {}), options.scanInterval ?? 5000);
  scan.unref();

  const rescan = async () => {
    if (stopping) return;
    for (const id of await spool.list('queue')) {
      if (entries.has(id)) continue;
      await loadEntry(id);
    }
    pump();
  };

  const loadEntry = async (id: string) => {
    try {
      const header = await spool.readHeader('queue', id);
      const state = await spool.readMeta<DeliveryState>('queue', id);
      if (!entries.has(id)) addEntry(id, header.receivedAt, state);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      log.error('unreadable spool file moved to dead/', { id, error: (err as Error).message });
      await spool.move('queue', 'dead', id, { deadAt: Date.now(), reason: `unreadable: ${(err as Error).message}` } satisfies DeadInfo).catch(() => {});
    }
  };

  const backoff = (attempts: number) => {
    const base = Math.min(retryMax, retryMin * 2 ** Math.max(0, attempts - 1));
    return Math.round(base * (0.9 + Math.random() * 0.2));
  };

  const finish = async (entry: Entry) => {
    entries.delete(entry.id);
    await spool.remove('queue', entry.id);
  };

  const deliver = async (entry: Entry) => {
    let msg: { header: SpoolHeader; body: Buffer };
    try {
      msg = await spool.read('queue', entry.id);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        entries.delete(entry.id); // released elsewhere, or removed by the operator
        return;
      }
      entries.delete(entry.id);
      log.error('unreadable spool file moved to dead/', { id: entry.id, error: (err as Error).message });
      await spool.move('queue', 'dead', entry.id, { deadAt: Date.now(), reason: `unreadable: ${(err as Error).message}` } satisfies DeadInfo);
      return;
    }
    const { header, body } = msg;
    const to = entry.state.remaining ?? header.to;
    inFlightBytes += body.length;
    const started = Date.now();
    let result: SendResult | undefined;
    let error: SluiceError | undefined;
    try {
      result = await pool.send({ envelope: { from: header.from, to }, body }, { signal: abort.signal });
    } catch (err) {
      if (!isSluiceError(err)) throw err;
      error = err as SluiceError;
    } finally {
      inFlightBytes -= body.length;
    }
    if (result) {
      metrics.inc('delivered_recipients', result.accepted.length);
      const permanent: Failure[] = result.rejected.map((r) => failureOf(r.address, r.code, r.enhancedCode, r.response));
      const pending = result.pending.map((r) => r.address);
      log.info('delivered', {
        id: entry.id,
        to: result.accepted.map((r) => r.address),
        response: result.response,
        ms: Date.now() - started,
        ...(permanent.length ? { rejected: permanent.map((f) => f.address) } : {}),
        ...(pending.length ? { pending } : {}),
      });
      if (permanent.length) await permanentFailure(entry, header, body, permanent);
      if (pending.length) {
        const why = result.pending.map((r) => `${r.address}: ${r.response}`).join('; ');
        return defer(entry, header, body, pending, why);
      }
      metrics.inc('delivered');
      metrics.observeDelivered();
      return finish(entry);
    }
    const err = error!;
    if (err.code === 'EABORT' || (stopping && err.code === 'ECLOSED' && err.outcome === 'failed')) return; // never reached the wire: stays spooled
    const diag = err.response ?? err.message;
    if (err.outcome === 'unknown') {
      entries.delete(entry.id);
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
      await permanentFailure(entry, header, body, failures);
      return finish(entry);
    }
    // 'failed': transient. Recipients refused with 5xx along the way are permanent failures.
    const refused = (err.rejected ?? []).filter((r) => r.code >= 500);
    const refusedSet = new Set(refused.map((r) => r.address));
    if (refused.length)
      await permanentFailure(
        entry,
        header,
        body,
        refused.map((r) => failureOf(r.address, r.code, r.enhancedCode, r.response)),
      );
    const remaining = to.filter((a) => !refusedSet.has(a));
    if (remaining.length === 0) return finish(entry);
    return defer(entry, header, body, remaining, `${err.code}: ${diag}`);
  };

  const failureOf = (address: string, code: number | undefined, enhanced: string | null, response: string, local = false): Failure => ({
    address,
    status: statusOf(code, enhanced),
    diagnostic: response,
    diagnosticType: local ? 'x-sluice' : 'smtp',
  });

  const defer = async (entry: Entry, header: SpoolHeader, body: Buffer, remaining: string[], why: string) => {
    const attempts = entry.state.attempts + 1;
    const age = Date.now() - header.receivedAt;
    if (age >= maxAge) {
      metrics.inc('expired');
      log.warn('maximum queue lifetime reached: giving up', { id: entry.id, to: remaining, ageSeconds: Math.round(age / 1000), lastError: why });
      const failures = remaining.map((address) => ({
        address,
        status: '4.4.7',
        diagnostic: `delivery time expired after ${Math.round(age / 3_600_000)} h; last error: ${why}`,
        diagnosticType: 'x-sluice' as const,
      }));
      await permanentFailure(entry, header, body, failures);
      return finish(entry);
    }
    const delay = backoff(attempts);
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
    await spool.writeMeta('queue', entry.id, entry.state, !!entry.state.remaining);
  };

  /** Bounce and/or dead-letter the given recipients of a message. */
  const permanentFailure = async (entry: Entry, header: SpoolHeader, body: Buffer, failures: Failure[]) => {
    const isBounce = header.from === '';
    const dsn = header.dsn;
    const wantBounce = onPermanent !== 'dead-letter' && !isBounce;
    const notified = failures.filter((f) => {
      const notify = dsn?.notify?.[f.address];
      return !notify || notify.includes('FAILURE');
    });
    const whole = failures.length === (entry.state.remaining ?? header.to).length;
    const dead: DeadInfo = { deadAt: Date.now(), reason: isBounce ? 'undeliverable bounce (null sender): never bounced again' : 'permanent failure', failures };
    if (onPermanent !== 'bounce' || isBounce) {
      const deadId = whole ? entry.id : `${entry.id}.${entry.state.attempts}`;
      await spool.copy('queue', 'dead', entry.id, deadId, dead);
      metrics.inc('dead_lettered');
      log.warn('dead-lettered', { id: entry.id, deadId, to: failures.map((f) => f.address), reason: dead.reason });
    }
    if (wantBounce && notified.length > 0) {
      const bounce = composeBounce({
        reportingMta: hostname,
        remoteMta: poolOptions.host,
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
      if (!entries.has(bounceId)) addEntry(bounceId, bounceHeader.receivedAt);
    } else if (wantBounce) {
      log.info('no bounce: the sender asked not to be notified (NOTIFY)', { id: entry.id });
    }
  };

  // Replay the spool.
  const queued = await spool.list('queue');
  for (const id of queued) await loadEntry(id);
  const heldAtStart = (await spool.list('held')).length;
  metrics.setHeldGauge(heldAtStart);

  // --- the SMTP listener ---------------------------------------------------------------------

  const needsAuth = (session: SMTPServerSession) => !!options.requireAuth || !isLoopback(session.remoteAddress);

  let freeSpaceCheckedAt = 0;
  let lowOnSpace = false;
  const checkSpace = async () => {
    if (Date.now() - freeSpaceCheckedAt < 2000) return lowOnSpace;
    freeSpaceCheckedAt = Date.now();
    try {
      const s = await statfs(options.spoolDir);
      lowOnSpace = s.bavail * s.bsize < minFreeSpace;
    } catch {
      lowOnSpace = false;
    }
    return lowOnSpace;
  };

  const serverOptions: SMTPServerOptions = {
    name: hostname,
    banner: 'sluice-relay ESMTP',
    size: maxSize,
    maxClients: options.maxClients ?? 200,
    maxRecipients: options.maxRecipients ?? 1000,
    authOptional: true,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    disabledCommands: [...(options.tls ? [] : ['STARTTLS']), ...(users ? [] : ['AUTH'])],
    hideREQUIRETLS: true,
    hideDSN: false, // NOTIFY, RET, ENVID and ORCPT shape our own bounces
    disableReverseLookup: true,
    logger: false,
    closeTimeout: Math.min(shutdownTimeout, 30_000),
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : {}),
    onConnect(_session, callback) {
      if (stopping) return callback(smtpError(421, 'Service shutting down, try again later'));
      callback();
    },
    onAuth(auth, session, callback) {
      const expected = users?.[auth.username ?? ''];
      if (expected !== undefined && auth.password != null && safeEqual(auth.password, expected)) return callback(null, { user: auth.username });
      log.warn('local AUTH failed', { client: session.remoteAddress, user: auth.username });
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onMailFrom(address, session, callback) {
      if (stopping) return callback(smtpError(421, 'Service shutting down, try again later'));
      if (needsAuth(session)) {
        if (!session.secure) return callback(smtpError(530, 'Must issue a STARTTLS command first'));
        if (!session.user) {
          metrics.inc('refused_unauthenticated');
          log.warn('relay attempt without AUTH refused', { client: session.remoteAddress, from: address.address });
          return callback(smtpError(530, 'Authentication required'));
        }
      }
      checkSpace().then(
        (low) => (low ? callback(smtpError(452, 'Insufficient system storage, try again later')) : callback()),
        () => callback(),
      );
    },
    onData(stream: SMTPServerDataStream, session, callback) {
      const env = session.envelope;
      const from = env.mailFrom ? env.mailFrom.address : '';
      const dsn: SpoolDsn = {};
      if (env.dsn?.ret === 'FULL' || env.dsn?.ret === 'HDRS') dsn.ret = env.dsn.ret;
      if (env.dsn?.envid) dsn.envid = env.dsn.envid;
      for (const r of env.rcptTo) {
        if (r.dsn?.notify?.length) (dsn.notify ??= {})[r.address] = r.dsn.notify.map((n) => n.toUpperCase());
        if (r.dsn?.orcpt) (dsn.orcpt ??= {})[r.address] = r.dsn.orcpt;
      }
      const id = newId();
      const header: SpoolHeader = {
        v: 1,
        id,
        from,
        to: env.rcptTo.map((r) => r.address),
        receivedAt: Date.now(),
        ...(Object.keys(dsn).length ? { dsn } : {}),
        client: {
          address: session.remoteAddress,
          helo: session.clientHostname || session.hostNameAppearsAs,
          ...(session.user ? { user: String(session.user) } : {}),
        },
      };
      spool.accept(header, stream, maxSize).then(
        (size) => {
          // Durable now: acknowledge even while stopping (the next start delivers it).
          metrics.inc('accepted');
          metrics.observeAccepted();
          log.info('accepted', { id, from, to: header.to, size, client: session.remoteAddress, ...(session.user ? { user: String(session.user) } : {}) });
          callback(null, `Ok: queued as ${id}`);
          if (!stopping && !entries.has(id)) addEntry(id, header.receivedAt);
          pump();
        },
        (err) => {
          if (err instanceof SizeExceededError || stream.sizeExceeded) {
            metrics.inc('refused_size');
            log.warn('message too large refused', { from, client: session.remoteAddress, limit: maxSize });
            return callback(smtpError(552, `Message exceeds fixed maximum message size of ${maxSize} bytes`));
          }
          log.error('could not spool a message; the client was told to retry', { from, error: (err as Error).message });
          callback(smtpError(451, 'Local error in processing: could not write to the spool, try again later'));
        },
      );
    },
  };
  const server = new SMTPServer(serverOptions);
  skipGreetingDelay(server, serverOptions.maxClients!);
  server.on('error', (err) => log.warn('smtp listener error', { error: err.message }));
  server.listen(options.port ?? 2525, host);
  try {
    await Promise.race([once(server.server, 'listening'), once(server.server, 'error').then(([e]) => Promise.reject(e))]);
  } catch (err) {
    clearInterval(tick);
    clearInterval(scan);
    await pool.close().catch(() => {});
    throw new RelayConfigError(`Cannot listen on ${host}:${options.port ?? 2525}: ${(err as Error).message}`);
  }
  const address = server.server.address() as AddressInfo;

  // --- status, metrics, HTTP ----------------------------------------------------------------------

  const oldest = () => {
    let min = Number.POSITIVE_INFINITY;
    for (const e of entries.values()) if (e.receivedAt < min) min = e.receivedAt;
    return min === Number.POSITIVE_INFINITY ? null : Math.max(0, (Date.now() - min) / 1000);
  };

  const status = async (): Promise<RelayStatus> => {
    const heldIds = await spool.list('held');
    const held = await spool.describeHeld(heldIds.slice(0, 1000));
    metrics.setHeldGauge(heldIds.length);
    let deferred = 0;
    for (const e of entries.values()) if (e.state.attempts > 0 && !e.busy) deferred++;
    const oldestAge = oldest();
    return {
      running: !stopping,
      listening: { host, port: address.port },
      upstream: upstreamName,
      spoolDir: options.spoolDir,
      queue: { depth: entries.size, inFlight, deferred, oldestAgeSeconds: oldestAge === null ? null : Math.round(oldestAge) },
      held,
      dead: (await spool.list('dead')).length,
      counters: metrics.counters(),
      rates: metrics.rates(),
      pool: { ...pool.stats },
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    };
  };

  const renderMetrics = () => metrics.render({ depth: entries.size, inFlight, oldestAge: oldest() ?? 0, poolConnections: pool.stats.connections });

  const release = async (ids?: string[]): Promise<string[]> => {
    const list = ids && ids.length > 0 ? ids : await spool.list('held');
    const done: string[] = [];
    for (const id of list) {
      if (!isValidId(id)) throw new RelayConfigError(`Not a message id: ${JSON.stringify(id)}`);
      const info = await spool.readMeta<HeldInfo>('held', id);
      const header = await spool.readHeader('held', id).catch(() => null);
      if (!header) continue;
      const state: DeliveryState = {
        attempts: info?.attempts ?? 0,
        nextAttemptAt: 0,
        ...(info?.remaining && info.remaining.length !== header.to.length ? { remaining: info.remaining } : {}),
      };
      await spool.move('held', 'queue', id, state);
      metrics.inc('released');
      log.info('released from held/ back into the queue', { id });
      if (!stopping && !entries.has(id)) addEntry(id, header.receivedAt, state);
      done.push(id);
    }
    pump();
    metrics.setHeldGauge((await spool.list('held')).length);
    return done;
  };

  let httpServer: http.Server | null = null;
  if (options.http !== false) {
    const httpHost = options.http?.host ?? '127.0.0.1';
    if (!isLoopback(httpHost)) log.warn('the HTTP status port listens beyond loopback: /status shows addresses of held messages', { host: httpHost });
    httpServer = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const send = (code: number, type: string, body: string) => {
        res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(body);
      };
      if (req.method === 'GET' && url.pathname === '/metrics') return send(200, 'text/plain; version=0.0.4; charset=utf-8', renderMetrics());
      if (req.method === 'GET' && url.pathname === '/health') {
        return send(stopping ? 503 : 200, 'application/json', JSON.stringify({ status: stopping ? 'stopping' : 'ok', queue: entries.size, inFlight }));
      }
      if (req.method === 'GET' && url.pathname === '/status') {
        status().then(
          (s) => send(200, 'application/json', JSON.stringify(s)),
          (err) => send(500, 'application/json', JSON.stringify({ error: (err as Error).message })),
        );
        return;
      }
      if (req.method === 'POST' && url.pathname === '/release') {
        const ids = url.searchParams.getAll('id');
        release(ids).then(
          (done) => send(200, 'application/json', JSON.stringify({ released: done })),
          (err) => send(400, 'application/json', JSON.stringify({ error: (err as Error).message })),
        );
        return;
      }
      if (req.method === 'POST' && url.pathname === '/flush') {
        flush();
        return send(200, 'application/json', '{"ok":true}');
      }
      send(404, 'text/plain', 'not found\n');
    });
    httpServer.listen(options.http?.port ?? 2526, httpHost);
    try {
      await Promise.race([once(httpServer, 'listening'), once(httpServer, 'error').then(([e]) => Promise.reject(e))]);
    } catch (err) {
      clearInterval(tick);
      clearInterval(scan);
      server.close(() => {});
      await pool.close().catch(() => {});
      throw new RelayConfigError(`Cannot listen for HTTP on ${httpHost}:${options.http?.port ?? 2526}: ${(err as Error).message} (--http off to disable)`);
    }
  }
  const httpPort = httpServer ? (httpServer.address() as AddressInfo).port : null;

  const flush = () => {
    for (const e of entries.values()) {
      e.state.nextAttemptAt = 0;
      markReady(e);
    }
    pump();
  };

  log.info('sluice-relay started', {
    listen: `${host}:${address.port}`,
    upstream: upstreamName,
    spool: options.spoolDir,
    replayed: queued.length,
    held: heldAtStart,
    http: httpPort ? `${options.http ? (options.http.host ?? '127.0.0.1') : '127.0.0.1'}:${httpPort}` : null,
    maxConnections: limits.maxConnections,
    maxMessagesPerConnection: limits.perConnection,
    maxAgeSeconds: Math.round(maxAge / 1000),
    onPermanentFailure: onPermanent,
    tls: !!options.tls,
    auth: users ? (options.requireAuth ? 'required' : 'required beyond loopback') : 'off',
  });
  pump();

  let stopPromise: Promise<void> | null = null;
  const stop = () => {
    stopPromise ??= (async () => {
      stopping = true;
      log.info('stopping: no new mail accepted, finishing messages on the wire', { inFlight, queue: entries.size });
      clearInterval(tick);
      clearInterval(scan);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      abort.abort(); // messages still queued in the pool (not on the wire) stay spooled
      const settled = Promise.allSettled([...inFlightPromises]);
      const timedOut = await Promise.race([settled.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), shutdownTimeout).unref())]);
      if (timedOut) {
        log.warn('shutdown timeout: closing upstream connections now', { inFlight });
        pool.destroy();
        await Promise.race([Promise.allSettled([...inFlightPromises]), new Promise((r) => setTimeout(r, 2000).unref())]);
      } else {
        await Promise.race([pool.close(), new Promise((r) => setTimeout(r, 5000).unref())]).catch(() => {});
        pool.destroy();
      }
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      if (httpServer) {
        httpServer.closeAllConnections?.();
        await new Promise<void>((resolve) => httpServer!.close(() => resolve()));
      }
      log.info('stopped', { spooled: entries.size });
    })();
    return stopPromise;
  };

  return {
    host,
    port: address.port,
    httpPort,
    spoolDir: options.spoolDir,
    status,
    metrics: renderMetrics,
    release,
    flush,
    idle(timeoutMs = 30_000) {
      if (entries.size === 0 && inFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`relay not idle after ${timeoutMs} ms (queue ${entries.size}, in flight ${inFlight})`)), timeoutMs);
        idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
    stop,
  };
}
