/**
 * The upstream: one @sluice/core pool. The relay reads the limits it schedules by from the pool's
 * own resolved options (`pool.options`), so presets and defaults live in the core alone.
 */
import { createPool, type Pool, type PoolOptions, type SluiceError } from '@sluice/core';
import { parseUpstreamUrl, RelayConfigError } from './config.js';
import type { RelayLogger } from './log.js';
import type { UpstreamOptions } from './options.js';

/**
 * Pool options for the upstream, and a description safe to log (no password). The preset itself is
 * passed on to the core, which fills its host, port and limits; only an explicit host, port or
 * `secure` here overrides them.
 */
export function upstreamPoolOptions(upstream: UpstreamOptions): { options: PoolOptions; describe: string } {
  const parsed = upstream.url ? parseUpstreamUrl(upstream.url) : undefined;
  const host = parsed?.host ?? upstream.host;
  if (!host && !upstream.preset) throw new RelayConfigError('No upstream: give --upstream smtp://user@host:port, or --preset <provider>');
  const urlUser = parsed?.user;
  if (urlUser && upstream.user && urlUser !== upstream.user) {
    throw new RelayConfigError(`The upstream user in the URL (${urlUser}) and the one given otherwise (${upstream.user}) differ`);
  }
  const user = urlUser ?? upstream.user;
  if (user && !upstream.password)
    throw new RelayConfigError(`A user (${user}) is set for the upstream but no password: use --password-file <file> or SLUICE_RELAY_PASSWORD`);
  if (upstream.password && !user)
    throw new RelayConfigError('A password is set for the upstream but no user: smtp://user@host:port, --user, or user:password in the password file');
  const secure = parsed?.secure ?? upstream.secure;
  const port = parsed?.port ?? upstream.port;
  const options: PoolOptions = {
    ...(upstream.preset ? { preset: upstream.preset } : {}),
    ...upstream.pool,
    ...(host ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(secure !== undefined ? { secure } : {}),
    ...(user ? { auth: { user, pass: upstream.password! } } : {}),
  };
  return { options, describe: describeUpstream(options, user) };
}

function describeUpstream(options: PoolOptions, user: string | undefined): string {
  // Before the pool exists the preset's host is not known here; createUpstream() describes the resolved one.
  const host = options.host ?? `preset:${options.preset}`;
  return `${options.secure ? 'smtps' : 'smtp'}://${user ? `${encodeURIComponent(user)}@` : ''}${host.includes(':') ? `[${host}]` : host}${options.port ? `:${options.port}` : ''}`;
}

export interface Upstream {
  pool: Pool;
  /** `smtp://user@host:port`, from the resolved options; never the password. */
  describe: string;
  /** The upstream host (Remote-MTA of bounces). */
  host: string;
  maxConnections: number;
  maxMessagesPerConnection: number;
}

export interface UpstreamSettings {
  upstream: UpstreamOptions;
  /** Our name, sent in EHLO unless the pool options name another. */
  hostname: string;
  retryMin: number;
  retryMax: number;
  log: RelayLogger;
}

export function createUpstream(s: UpstreamSettings): Upstream {
  const { options } = upstreamPoolOptions(s.upstream);
  const pool = createPool({
    ...options,
    name: options.name ?? s.hostname,
    // The relay holds unknown outcomes itself (held/): the pool must never resend them.
    retryUnknown: false,
    // The pool retries briefly on the same attempt; the relay's own schedule (retryMin..retryMax) does the rest.
    retry: options.retry ?? { retries: 2, minDelay: Math.min(1000, s.retryMin), maxDelay: Math.min(30_000, s.retryMax) },
    logger: {
      warn: (message, meta) => s.log.warn(`upstream: ${message}`, meta),
      error: (message, meta) => s.log.error(`upstream: ${message}`, meta),
    },
  });
  const c = pool.options.connection;
  const describe = describeUpstream({ host: c.host, port: c.port, secure: c.secure }, c.auth?.user);
  pool.on('connect-error', (err: SluiceError) => s.log.warn('upstream connection failed', { upstream: describe, code: err.code, error: err.message }));
  return {
    pool,
    describe,
    host: c.host,
    maxConnections: pool.options.maxConnections,
    maxMessagesPerConnection: c.maxMessages,
  };
}
