/**
 * An upstream's pool options from the relay's options (URL, preset, user, password). The relay reads
 * the limits it schedules by from each pool's own resolved options (router.ts), so presets and
 * defaults live in the core alone.
 */
import type { PoolOptions } from '@sluice/core';
import { parseUpstreamUrl, RelayConfigError } from './config.js';
import type { UpstreamOptions } from './options.js';

/**
 * Pool options for the upstream (`name`: its EHLO name, when it has its own), and a description safe to log (no password). The preset itself is
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
    ...(upstream.ehloName !== undefined ? { name: upstream.ehloName } : {}),
    ...(host ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(secure !== undefined ? { secure } : {}),
    ...(user ? { auth: { user, pass: upstream.password! } } : {}),
  };
  return { options, describe: describeUpstream(options, user) };
}

/** The name routes refer to: its own, else 'primary' for the first, 'upstream2', … */
export function upstreamName(u: UpstreamOptions, i: number): string {
  return u.name ?? (i === 0 ? 'primary' : `upstream${i + 1}`);
}

export function describeUpstream(options: PoolOptions, user: string | undefined): string {
  // Before the pool exists the preset's host is not known here; router.ts describes the resolved one.
  const host = options.host ?? `preset:${options.preset}`;
  return `${options.secure ? 'smtps' : 'smtp'}://${user ? `${encodeURIComponent(user)}@` : ''}${host.includes(':') ? `[${host}]` : host}${options.port ? `:${options.port}` : ''}`;
}
