import type tls from 'node:tls';
import { type AuthMechanism, type AuthOptions, validateAuth } from './auth.js';
import { type ProxyTarget, parseProxy } from './connection/proxy.js';
import { type CustomAuthCredentials, type CustomAuthHandler, checkCustomAuth, resolveAuthMethod } from './custom-auth.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from './connection/timeouts.js';
import type { SluiceError } from './errors.js';
import { ipVersion } from './ip.js';
import { RATE_UNITS, type RateLimitOptions } from './policies/rate-limit.js';
import { DEFAULT_RETRY, type RetryOptions } from './policies/retry.js';
import { endpointDefaults } from './endpoint.js';
import { bad, boolean, list, nonNegative, positiveInt, record, show } from './option-checks.js';
import { checkMailerOptions, type DKIMOptions, type MailerOptions, type MailOptions } from './mail-options.js';
import { PRESET_NAMES, type PresetName } from './presets.js';
import { normaliseClientName } from './protocol/client-name.js';
import { validateClientName } from './protocol/commands.js';
import { DEFAULT_REPLY_LIMITS, type ReplyParserLimits } from './protocol/reply.js';

/** Where sluice logs. Every method is optional; credentials are never passed to it. */
export interface Logger {
  debug?(message: string, meta?: Record<string, unknown>): void;
  info?(message: string, meta?: Record<string, unknown>): void;
  warn?(message: string, meta?: Record<string, unknown>): void;
  error?(message: string, meta?: Record<string, unknown>): void;
}

/** What one connection needs: the resolved options that concern a socket and its SMTP session. */
export interface ConnectionOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte (port 465, RFC 8314). */
  secure: boolean;
  /** Passed to `tls.connect` (ca, servername, rejectUnauthorized, minVersion, …). */
  tls: tls.ConnectionOptions;
  /** Fail unless the connection is encrypted before MAIL/AUTH. */
  requireTLS: boolean;
  /** Never use STARTTLS, even when offered. */
  ignoreTLS: boolean;
  /** See PoolOptions for these two. */
  opportunisticTLS: boolean;
  lmtp: boolean;
  /** The client name sent in EHLO/HELO; null: worked out once connected (see defaultClientName). */
  name: string | null;
  auth: AuthOptions | CustomAuthCredentials | undefined;
  authMethod: AuthMechanism | (string & {}) | undefined;
  customAuth: Record<string, CustomAuthHandler> | undefined;
  /** Allow credentials over an unencrypted connection. Default false. */
  allowInsecureAuth: boolean;
  proxy: ProxyTarget | undefined;
  /** Use PIPELINING when offered. */
  pipelining: boolean;
  /** Use CHUNKING (BDAT) when offered. */
  chunking: boolean;
  /** BDAT transactions in flight on one connection when pinned (`chunking: { window }`), and without a pool. */
  chunkingWindow: number;
  /** No window given: the pool adapts it (policies/bdat-window.ts) where the server offers PIPELINING and CHUNKING. */
  chunkingAdaptive: boolean;
  /** Size of BDAT chunks for stream bodies. */
  chunkSize: number;
  /** Transactions per connection before it retires. */
  maxMessages: number;
  timeouts: Timeouts;
  replyLimits: ReplyParserLimits;
  logger: Logger | undefined;
  localAddress?: string;
}

export interface PoolOptions {
  /** A provider preset: fills host, port and the provider's published limits. */
  preset?: PresetName;
  /** A service from nodemailer's list of well-known services ('Gmail', 'SES-US-EAST-1', …): fills host, port and the TLS mode. */
  service?: string;
  /** A connection URL, read by nodemailer's parser: `smtps://user:pass@smtp.example.com:465?tls.minVersion=TLSv1.2`. */
  url?: string;
  /** For the 'ses' preset. */
  region?: string;
  host?: string;
  /** Default 587, or 465 when `secure`. */
  port?: number;
  /** Implicit TLS (port 465). Default: true when port is 465. */
  secure?: boolean;
  /** Options for `tls.connect`: ca, servername, rejectUnauthorized, minVersion… Certificates are verified by default. */
  tls?: tls.ConnectionOptions;
  /**
   * Resume the pool's latest TLS session when a connection opens (RFC 8446 §2.2 / RFC 5077 tickets),
   * instead of a full handshake each time a connection retires after `maxMessagesPerConnection`.
   * Sessions stay in the pool, per host, port and servername; certificates are verified as before.
   * Default true; false when `tls.checkServerIdentity` is given (Node does not call it for a resumed
   * session, so a pinning check would be skipped).
   */
  tlsResumption?: boolean;
  /** Fail rather than send without TLS. */
  requireTLS?: boolean;
  /** Never use STARTTLS (not even when offered). */
  ignoreTLS?: boolean;
  /** A refused STARTTLS (454) goes on in clear (trade-off: anyone on the path can force that); never with credentials unless allowInsecureAuth. */
  opportunisticTLS?: boolean;
  /** Send credentials over an unencrypted connection. Default false. */
  allowInsecureAuth?: boolean;
  auth?: AuthOptions | CustomAuthCredentials;
  /** Force an AUTH mechanism instead of choosing from the server's list: a built-in one or a key of `customAuth`. */
  authMethod?: AuthMechanism | (string & {});
  /** nodemailer's custom AUTH handlers: `{ MYMECH: async (ctx) => { const r = await ctx.sendCommand('AUTH MYMECH …'); … } }`, used with `authMethod: 'MYMECH'`. */
  customAuth?: Record<string, CustomAuthHandler>;
  /** Speak LMTP (RFC 2033) to a local delivery agent (Dovecot, Cyrus): LHLO, one reply per recipient after the "." (no BDAT). */
  lmtp?: boolean;
  /** Connect through a proxy: `'socks5://user:pass@host:1080'`, `'socks4://host:1080'` or `'http://host:3128'` (HTTP CONNECT). */
  proxy?: string;
  /**
   * The name sent in EHLO/HELO. Default: this host's name when it is fully qualified, otherwise the
   * address literal of the connection's local address, e.g. `[192.0.2.1]` (RFC 5321 §4.1.1.1). A bare IP
   * address given here is sent as an address literal.
   */
  name?: string;
  localAddress?: string;
  /**
   * Simultaneous connections. Default 20: SocketLabs allows 20 per account, and 20 connections at
   * one round trip per message are enough to fill most providers' per-account rates.
   */
  maxConnections?: number;
  /** Messages (transactions) per connection before it retires with QUIT. Default 50, SocketLabs' guidance. */
  maxMessagesPerConnection?: number;
  /** Recipients per transaction; more go in further transactions. Default 100 (RFC 5321 §4.5.3.1.8 minimum for servers). */
  maxRecipientsPerTransaction?: number;
  /** Use PIPELINING when the server offers it. Default true; turn off for servers that mishandle it. */
  pipelining?: boolean;
  /**
   * Use CHUNKING/BDAT when offered. Default true: with PIPELINING too, BDAT transactions are pipelined in
   * an adaptive window (it starts at 1, grows by one per clean reply up to 16, falls back to 1 and then to DATA
   * on an anomaly, remembered by the pool). `{ window: W }` pins it to W transactions in flight (1: none pipelined).
   */
  chunking?: boolean | { window?: number; chunkSize?: number };
  /** Timeouts in ms (RFC 5321 §4.5.3.2 minimums by default). */
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryOptions> | false;
  /** Resend a message whose outcome is unknown (may deliver it twice). Default false. */
  retryUnknown?: boolean;
  /** Sending rate, enforced before a message is written. */
  rateLimit?: RateLimitOptions;
  /** Queue length at which `pool.full` becomes true (and 'drain' follows). Default 1000. */
  highWaterMark?: number;
  /** Hard limit of queued messages: send() beyond it rejects with EQUEUEFULL. Default Infinity. */
  maxQueued?: number;
  /**
   * After the server refuses a connection as one too many, wait this long before trying one more.
   * Default 1 s; each refused probe doubles the wait, up to 30 s (or this value if longer).
   */
  concurrencyProbeInterval?: number;
  /** Limits on what the server may send. */
  replyLimits?: Partial<ReplyParserLimits>;
  logger?: Logger;
  /** sendMail(): message options merged under every mail (`from`, `replyTo`, headers…), as nodemailer's `defaults`. */
  defaults?: MailOptions;
  /** sendMail(): DKIM-sign every mail with nodemailer's signer (a mail's own `dkim` wins). */
  dkim?: DKIMOptions;
  /** sendMail(): turn `data:` images in `html` into embedded attachments, as nodemailer does. */
  attachDataUrls?: boolean;
  /**
   * Asked for a lease before each connection is opened (a budget shared with other processes, e.g.
   * `@sluice/queue`'s Redis leases). The wait counts as connecting; close() and destroy() abort it.
   * The lease is released when the connection closes or fails to open; when `lost` fires, the
   * connection finishes what is in flight, starts no new MAIL and QUITs.
   */
  connectionGate?: ConnectionGate;
}

/** A permission to hold one connection open. */
export interface ConnectionLease {
  /** Called once, when the connection closed or could not be opened. */
  release(): void;
  /** Aborted when the permission is gone (expired, revoked, its store unreachable). */
  readonly lost: AbortSignal;
}

export interface ConnectionGate {
  /** Resolves when a connection may be opened. Rejects (or is left) when `signal` aborts. */
  acquire(signal: AbortSignal): Promise<ConnectionLease>;
}

/** The pool's options after defaults: `pool.options`. Read defaults from here rather than re-deriving them. */
export interface ResolvedOptions {
  connection: ConnectionOptions;
  maxConnections: number;
  maxRecipientsPerTransaction: number;
  retry: RetryOptions;
  retryUnknown: boolean;
  rateLimit: RateLimitOptions | undefined;
  highWaterMark: number;
  maxQueued: number;
  concurrencyProbeInterval: number;
  logger: Logger | undefined;
  /** What sendMail() composes with. */
  mail: MailerOptions;
  connectionGate: ConnectionGate | undefined;
  /** Offer the pool's TLS sessions for resumption (the `tlsResumption` option). */
  tlsResumption: boolean;
}

/** Every option createPool() takes. Anything else is an error, not ignored. */
export const OPTION_NAMES = [
  'preset',
  'region',
  'host',
  'port',
  'secure',
  'tls',
  'tlsResumption',
  'requireTLS',
  'ignoreTLS',
  'allowInsecureAuth',
  'auth',
  'authMethod',
  'customAuth',
  'opportunisticTLS',
  'proxy',
  'lmtp',
  'name',
  'localAddress',
  'maxConnections',
  'maxMessagesPerConnection',
  'maxRecipientsPerTransaction',
  'pipelining',
  'chunking',
  'timeouts',
  'retry',
  'retryUnknown',
  'rateLimit',
  'highWaterMark',
  'maxQueued',
  'concurrencyProbeInterval',
  'replyLimits',
  'logger',
  'service',
  'url',
  'defaults',
  'dkim',
  'attachDataUrls',
  'connectionGate',
] as const satisfies ReadonlyArray<keyof PoolOptions>;

const KNOWN = new Set<string>(OPTION_NAMES);

/** Options other mail libraries (nodemailer first) spell differently: an unknown key names its sluice spelling. */
const RENAMED: Record<string, string> = {
  maxMessages: 'maxMessagesPerConnection',
  maxRecipients: 'maxRecipientsPerTransaction',
  connectionTimeout: 'timeouts.connect',
  greetingTimeout: 'timeouts.greeting',
  socketTimeout: 'timeouts (command, mail, rcpt, data, dataBlock, dataEnd)',
  rateDelta: 'rateLimit: { messages, per }',
  pool: 'nothing: sluice always pools (remove the option)',
  user: 'auth: { user, pass }',
  pass: 'auth: { user, pass }',
  password: 'auth: { user, pass }',
  hostname: 'host (the server) or name (the EHLO name)',
  tlsOptions: 'tls',
  secured: 'secure',
};

function unknownOption(key: string): SluiceError {
  const renamed = RENAMED[key];
  return bad(renamed ? `Unknown option ${JSON.stringify(key)}: sluice calls it ${renamed}` : `Unknown option ${JSON.stringify(key)}`);
}

function checkPreset(input: PoolOptions): void {
  if (input.preset !== undefined && !PRESET_NAMES.includes(input.preset)) {
    throw bad(`Unknown preset ${show(input.preset)}: preset must be one of ${list(PRESET_NAMES)}`);
  }
  if (input.region !== undefined && typeof input.region !== 'string')
    throw bad(`region must be an AWS region name such as "eu-west-1" (got ${show(input.region)})`);
}

function checkRateLimit(value: unknown): RateLimitOptions {
  const r = record(value, 'rateLimit', ['messages', 'per', 'burst']);
  const { messages, per, burst } = r;
  if (!(typeof messages === 'number' && Number.isFinite(messages) && messages > 0))
    throw bad(`rateLimit.messages must be a positive number (got ${show(messages)})`);
  const units = Object.keys(RATE_UNITS);
  const perOk = typeof per === 'number' ? Number.isFinite(per) && per > 0 : units.includes(per as string);
  if (!perOk) throw bad(`rateLimit.per must be a positive number of ms or one of ${list(units)} (got ${show(per)})`);
  if (burst !== undefined) positiveInt(burst, 'rateLimit.burst');
  return r as unknown as RateLimitOptions;
}

function checkRetry(value: unknown): RetryOptions {
  if (value === false) return { ...DEFAULT_RETRY, retries: 0 };
  const r = stripUndefined(record(value, 'retry', Object.keys(DEFAULT_RETRY)));
  const retry = { ...DEFAULT_RETRY, ...r } as RetryOptions;
  nonNegative(retry.retries, 'retry.retries', true);
  nonNegative(retry.minDelay, 'retry.minDelay');
  nonNegative(retry.maxDelay, 'retry.maxDelay');
  if (retry.maxDelay < retry.minDelay) throw bad(`retry.maxDelay (${retry.maxDelay}) must be at least retry.minDelay (${retry.minDelay})`);
  if (!(typeof retry.factor === 'number' && Number.isFinite(retry.factor) && retry.factor >= 1))
    throw bad(`retry.factor must be a number >= 1 (got ${show(retry.factor)})`);
  if (!(typeof retry.jitter === 'number' && retry.jitter >= 0 && retry.jitter <= 1))
    throw bad(`retry.jitter must be a number from 0 to 1 (got ${show(retry.jitter)})`);
  return retry;
}

function checkChunking(value: unknown): { enabled: boolean; window: number; adaptive: boolean; chunkSize: number } {
  if (value === undefined || typeof value === 'boolean') return { enabled: value ?? true, window: 1, adaptive: value !== false, chunkSize: 65536 };
  if (typeof value !== 'object' || value === null) throw bad(`chunking must be true, false or { window, chunkSize } (got ${show(value)})`);
  const c = record(value, 'chunking', ['window', 'chunkSize']);
  return {
    enabled: true,
    window: positiveInt(c.window ?? 1, 'chunking.window'),
    adaptive: c.window === undefined,
    chunkSize: positiveInt(c.chunkSize ?? 65536, 'chunking.chunkSize'),
  };
}

function checkGate(value: unknown): ConnectionGate | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || typeof (value as ConnectionGate).acquire !== 'function') {
    throw bad(`connectionGate must be an object with an acquire(signal) method that resolves to a lease (got ${show(value)})`);
  }
  return value as ConnectionGate;
}

function checkLogger(value: unknown): void {
  if (value === undefined) return;
  const levels = ['debug', 'info', 'warn', 'error'];
  if (typeof value !== 'object' || value === null) throw bad(`logger must be an object with optional ${list(levels)} methods (got ${show(value)})`);
  for (const level of levels) {
    const fn = (value as Record<string, unknown>)[level];
    if (fn !== undefined && typeof fn !== 'function') throw bad(`logger.${level} must be a function (got ${show(fn)})`);
  }
}

function checkEndpoint(o: PoolOptions): void {
  if (!o.host || typeof o.host !== 'string' || /[\s\0]/.test(o.host))
    throw bad(`host is required (or a preset): a host name or address without spaces (got ${show(o.host)})`);
  if (o.tls !== undefined && (typeof o.tls !== 'object' || o.tls === null || Array.isArray(o.tls)))
    throw bad(`tls must be an object of tls.connect options (got ${show(o.tls)})`);
  if (o.localAddress !== undefined && !(typeof o.localAddress === 'string' && ipVersion(o.localAddress))) {
    throw bad(`localAddress must be an IP address of this host (got ${show(o.localAddress)})`);
  }
  if (o.name !== undefined && typeof o.name !== 'string') throw bad(`name must be a host name for EHLO (got ${show(o.name)})`);
  for (const key of ['secure', 'tlsResumption', 'requireTLS', 'ignoreTLS', 'opportunisticTLS', 'lmtp', 'allowInsecureAuth', 'pipelining', 'retryUnknown'] as const)
    boolean(o[key], key);
}

/** Checks options (unknown keys are an error, not ignored) and fills defaults. Every error is EOPTIONS and names the option. */
export function resolveOptions(input: PoolOptions): ResolvedOptions {
  if (!input || typeof input !== 'object') throw bad('createPool() needs an options object');
  for (const key of Object.keys(input)) if (!KNOWN.has(key)) throw unknownOption(key);
  checkPreset(input);
  const base = stripUndefined(endpointDefaults(input));
  const o: PoolOptions = { ...base, ...stripUndefined(input) };
  // A URL's `?tls.…` settings and the `tls` option add up (checkEndpoint refuses a tls that is no object).
  if (base.tls && typeof input.tls === 'object' && input.tls !== null) o.tls = { ...base.tls, ...input.tls };
  checkEndpoint(o);
  const host = o.host as string;
  const secure = o.secure ?? o.port === 465;
  const port = o.port ?? (secure ? 465 : 587);
  if (!(Number.isInteger(port) && port > 0 && port < 65536)) throw bad(`port must be an integer from 1 to 65535 (got ${show(port)})`);
  // Unset: each connection works it out once connected (this host's FQDN, else its address literal).
  const name = o.name === undefined ? null : normaliseClientName(o.name);
  if (name !== null) validateClientName(name);
  const customAuth = checkCustomAuth(o.customAuth);
  const { authMethod, custom } = resolveAuthMethod(o.authMethod, customAuth);
  if (o.auth !== undefined) {
    if (typeof o.auth !== 'object' || o.auth === null)
      throw bad(`auth must be { user, pass } or { user, accessToken?, getAccessToken? } (got ${show(typeof o.auth)})`);
    // A custom mechanism's handler reads the credentials it needs; the built-in ones are checked here.
    if (!custom) validateAuth(o.auth as AuthOptions, authMethod as AuthMechanism | undefined);
  }
  const chunking = checkChunking(o.chunking);
  const timeouts = {
    ...DEFAULT_TIMEOUTS,
    ...stripUndefined(o.timeouts === undefined ? {} : record(o.timeouts, 'timeouts', Object.keys(DEFAULT_TIMEOUTS))),
  } as Timeouts;
  for (const [k, v] of Object.entries(timeouts)) positiveInt(v, `timeouts.${k}`);
  const replyLimits = {
    ...DEFAULT_REPLY_LIMITS,
    ...stripUndefined(o.replyLimits === undefined ? {} : record(o.replyLimits, 'replyLimits', Object.keys(DEFAULT_REPLY_LIMITS))),
  } as ReplyParserLimits;
  for (const [k, v] of Object.entries(replyLimits)) positiveInt(v, `replyLimits.${k}`);
  const retry = o.retry === undefined ? { ...DEFAULT_RETRY } : checkRetry(o.retry);
  const rateLimit = o.rateLimit === undefined ? undefined : checkRateLimit(o.rateLimit);
  checkLogger(o.logger);
  return {
    connection: {
      host,
      port,
      secure,
      tls: o.tls ?? {},
      requireTLS: o.requireTLS ?? false,
      ignoreTLS: o.ignoreTLS ?? false,
      opportunisticTLS: o.opportunisticTLS ?? false,
      lmtp: o.lmtp ?? false,
      name,
      auth: o.auth,
      authMethod,
      customAuth,
      allowInsecureAuth: o.allowInsecureAuth ?? false,
      proxy: parseProxy(o.proxy),
      pipelining: o.pipelining ?? true,
      chunking: chunking.enabled && !o.lmtp,
      chunkingWindow: chunking.window,
      chunkingAdaptive: chunking.adaptive,
      chunkSize: chunking.chunkSize,
      maxMessages: positiveInt(o.maxMessagesPerConnection ?? 50, 'maxMessagesPerConnection'),
      timeouts,
      replyLimits,
      logger: o.logger,
      localAddress: o.localAddress,
    },
    maxConnections: positiveInt(o.maxConnections ?? 20, 'maxConnections'),
    maxRecipientsPerTransaction: positiveInt(o.maxRecipientsPerTransaction ?? 100, 'maxRecipientsPerTransaction'),
    retry,
    retryUnknown: o.retryUnknown ?? false,
    rateLimit,
    highWaterMark: positiveInt(o.highWaterMark ?? 1000, 'highWaterMark'),
    maxQueued: o.maxQueued === undefined ? Number.POSITIVE_INFINITY : positiveInt(o.maxQueued, 'maxQueued'),
    concurrencyProbeInterval: nonNegative(o.concurrencyProbeInterval ?? 1000, 'concurrencyProbeInterval (ms)', true),
    logger: o.logger,
    mail: checkMailerOptions({ defaults: o.defaults, dkim: o.dkim, attachDataUrls: o.attachDataUrls }),
    connectionGate: checkGate(o.connectionGate),
    // Node does not call checkServerIdentity for a resumed session: a pinning check of the user's
    // turns resumption off unless they ask for both.
    tlsResumption: o.tlsResumption ?? typeof (o.tls as { checkServerIdentity?: unknown } | undefined)?.checkServerIdentity !== 'function',
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
