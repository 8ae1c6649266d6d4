import os from 'node:os';
import type tls from 'node:tls';
import { type AuthMechanism, type AuthOptions, validateAuth } from './auth.js';
import type { ConnectionOptions, Logger } from './connection/connection.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from './connection/timeouts.js';
import { ErrorCodes, SluiceError } from './errors.js';
import { DEFAULT_RETRY, type RetryOptions } from './policies/retry.js';
import type { RateLimitOptions } from './policies/rate-limit.js';
import { type PresetName, preset } from './presets.js';
import { validateClientName } from './protocol/commands.js';
import { DEFAULT_REPLY_LIMITS, type ReplyParserLimits } from './protocol/reply.js';

export interface PoolOptions {
  /** A provider preset: fills host, port and the provider's published limits. */
  preset?: PresetName;
  /** For the 'ses' preset. */
  region?: string;
  host?: string;
  /** Default 587, or 465 when `secure`. */
  port?: number;
  /** Implicit TLS (port 465). Default: true when port is 465. */
  secure?: boolean;
  /** Options for `tls.connect`: ca, servername, rejectUnauthorized, minVersion… Certificates are verified by default. */
  tls?: tls.ConnectionOptions;
  /** Fail rather than send without TLS. */
  requireTLS?: boolean;
  /** Never use STARTTLS (not even when offered). */
  ignoreTLS?: boolean;
  /** Send credentials over an unencrypted connection. Default false. */
  allowInsecureAuth?: boolean;
  auth?: AuthOptions;
  /** Force an AUTH mechanism instead of choosing from the server's list. */
  authMethod?: AuthMechanism;
  /** The name sent in EHLO. Default: this host's name. */
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
  /** Use CHUNKING/BDAT when offered. Default true. `{ window: W }` keeps up to W transactions in flight (opt-in). */
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
  /** After the server refuses a connection as one too many, wait this long before growing again. Default 30 s. */
  concurrencyProbeInterval?: number;
  /** Limits on what the server may send. */
  replyLimits?: Partial<ReplyParserLimits>;
  logger?: Logger;
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
  connectionGate: ConnectionGate | undefined;
}

const KNOWN = new Set<string>([
  'preset',
  'region',
  'host',
  'port',
  'secure',
  'tls',
  'requireTLS',
  'ignoreTLS',
  'allowInsecureAuth',
  'auth',
  'authMethod',
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
  'connectionGate',
]);

function bad(message: string): SluiceError {
  return new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });
}

function positiveInt(value: unknown, name: string): number {
  if (!(typeof value === 'number' && Number.isInteger(value) && value > 0)) throw bad(`${name} must be a positive integer`);
  return value;
}

/** Checks options (unknown keys are an error, not ignored) and fills defaults. */
export function resolveOptions(input: PoolOptions): ResolvedOptions {
  if (!input || typeof input !== 'object') throw bad('createPool() needs an options object');
  for (const key of Object.keys(input)) if (!KNOWN.has(key)) throw bad(`Unknown option ${JSON.stringify(key)}`);
  const base = input.preset ? preset(input.preset, { region: input.region }).options : {};
  const o: PoolOptions = { ...base, ...stripUndefined(input) };
  if (!o.host || typeof o.host !== 'string') throw bad('host is required (or a preset)');
  const secure = o.secure ?? o.port === 465;
  const port = o.port ?? (secure ? 465 : 587);
  if (!(Number.isInteger(port) && port > 0 && port < 65536)) throw bad('port must be an integer from 1 to 65535');
  const name = o.name ?? os.hostname() ?? 'localhost';
  validateClientName(name);
  if (o.auth) validateAuth(o.auth, o.authMethod);
  const chunking = o.chunking ?? true;
  const window = typeof chunking === 'object' ? (chunking.window ?? 1) : 1;
  const chunkSize = typeof chunking === 'object' ? (chunking.chunkSize ?? 65536) : 65536;
  positiveInt(window, 'chunking.window');
  positiveInt(chunkSize, 'chunking.chunkSize');
  const timeouts = { ...DEFAULT_TIMEOUTS, ...stripUndefined(o.timeouts ?? {}) };
  for (const [k, v] of Object.entries(timeouts)) positiveInt(v, `timeouts.${k}`);
  const retry = o.retry === false ? { ...DEFAULT_RETRY, retries: 0 } : { ...DEFAULT_RETRY, ...stripUndefined(o.retry ?? {}) };
  if (!(Number.isInteger(retry.retries) && retry.retries >= 0)) throw bad('retry.retries must be a non-negative integer');
  if (o.connectionGate !== undefined && typeof o.connectionGate?.acquire !== 'function') throw bad('connectionGate must have an acquire(signal) method');
  const maxMessages = positiveInt(o.maxMessagesPerConnection ?? 50, 'maxMessagesPerConnection');
  return {
    connection: {
      host: o.host,
      port,
      secure,
      tls: o.tls ?? {},
      requireTLS: o.requireTLS ?? false,
      ignoreTLS: o.ignoreTLS ?? false,
      name,
      auth: o.auth,
      authMethod: o.authMethod,
      allowInsecureAuth: o.allowInsecureAuth ?? false,
      pipelining: o.pipelining ?? true,
      chunking: chunking !== false,
      chunkingWindow: window,
      chunkSize,
      maxMessages,
      timeouts,
      replyLimits: { ...DEFAULT_REPLY_LIMITS, ...stripUndefined(o.replyLimits ?? {}) },
      logger: o.logger,
      localAddress: o.localAddress,
    },
    maxConnections: positiveInt(o.maxConnections ?? 20, 'maxConnections'),
    maxRecipientsPerTransaction: positiveInt(o.maxRecipientsPerTransaction ?? 100, 'maxRecipientsPerTransaction'),
    retry,
    retryUnknown: o.retryUnknown ?? false,
    rateLimit: o.rateLimit,
    highWaterMark: positiveInt(o.highWaterMark ?? 1000, 'highWaterMark'),
    maxQueued: o.maxQueued === undefined ? Number.POSITIVE_INFINITY : positiveInt(o.maxQueued, 'maxQueued'),
    concurrencyProbeInterval: o.concurrencyProbeInterval ?? 30_000,
    logger: o.logger,
    connectionGate: o.connectionGate,
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
