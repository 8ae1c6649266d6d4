/**
 * Several upstreams and routes from flags, environment and config file: `--upstream [name=]URL`
 * (repeatable; SLUICE_RELAY_UPSTREAM and the config file take several, separated by spaces or ";",
 * or a JSON array), `--route domain=name[,name…]` (repeatable; a JSON object in the config file),
 * `--ehlo-name [name=]NAME` (repeatable, likewise).
 * One upstream keeps the single-upstream rules of cli-options.ts (preset, --user, the password file).
 */
import { parseUpstreamUrl, RelayConfigError, readCredentialsFor } from './config.js';
import type { UpstreamOptions } from './options.js';
import { upstreamName } from './upstream.js';

export interface UpstreamSpec {
  name?: string;
  url: string;
}

/** `name=value` or `value`, for the flags that may name an upstream. A name is letters, digits, "_", "-", ".". */
function splitNamed(spec: string): { name?: string; value: string } {
  const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(spec.trim());
  return m ? { name: m[1], value: m[2] } : { value: spec.trim() };
}

/** `b=smtp://user@host:587` or `smtp://…`. */
export function parseUpstreamSpec(spec: string): UpstreamSpec {
  const { name, value } = splitNamed(spec);
  return name ? { name, url: value } : { url: value };
}

/**
 * `--ehlo-name NAME` for every upstream, `--ehlo-name b=NAME` for upstream b (which wins over the
 * former): Postfix's smtp_helo_name, in main.cf and in one transport's `-o smtp_helo_name=…`.
 */
export function applyEhloNames(upstreams: UpstreamOptions[], specs: string[]): UpstreamOptions[] {
  const names = upstreams.map(upstreamName);
  let every: string | undefined;
  const own = new Map<string, string>();
  for (const spec of specs) {
    const { name, value } = splitNamed(spec);
    if (name === undefined) every = value;
    else if (names.includes(name)) own.set(name, value);
    else throw new RelayConfigError(`--ehlo-name ${spec}: no upstream named ${JSON.stringify(name)} (upstreams: ${names.join(', ')})`);
  }
  return upstreams.map((u, i) => {
    const ehloName = own.get(names[i]) ?? every;
    return ehloName === undefined ? u : { ...u, ehloName };
  });
}

/** `example.com=b` or `.example.com=b,c` (failover in order) or `*=a,b`. */
export function parseRoutes(specs: string[]): Record<string, string[]> {
  const routes: Record<string, string[]> = {};
  for (const spec of specs) {
    const m = /^([^=\s]+)=([^=\s]+)$/.exec(spec.trim());
    if (!m) throw new RelayConfigError(`--route: expected domain=upstream[,upstream…] (e.g. example.com=backup), got ${JSON.stringify(spec)}`);
    routes[m[1].toLowerCase()] = m[2].split(',').filter(Boolean);
  }
  return routes;
}

/**
 * The upstreams of a multi-upstream configuration. Credentials: the password file's relay_auth line
 * for each upstream ([host]:port), or its single credential for all; else SLUICE_RELAY_PASSWORD for
 * the upstreams whose URL names a user.
 */
export async function resolveUpstreams(
  specs: UpstreamSpec[],
  o: { passwordFile?: string; envPassword?: string; pool: NonNullable<UpstreamOptions['pool']> },
): Promise<UpstreamOptions[]> {
  const out: UpstreamOptions[] = [];
  for (const spec of specs) {
    const parsed = parseUpstreamUrl(spec.url);
    let user = parsed.user;
    let password: string | undefined;
    if (o.passwordFile) {
      const creds = await readCredentialsFor(o.passwordFile, { host: parsed.host, port: parsed.port });
      if (creds) {
        if (creds.user && user && creds.user !== user)
          throw new RelayConfigError(`The password file is for user ${creds.user} at ${parsed.host}, but that upstream's user is ${user}`);
        user ??= creds.user;
        password = creds.password;
      }
    } else if (user && o.envPassword) password = o.envPassword;
    if (user && !password)
      throw new RelayConfigError(
        `The upstream ${spec.name ?? spec.url} names user ${user} but has no password: a relay_auth line for [${parsed.host}]:${parsed.port} in --password-file, or SLUICE_RELAY_PASSWORD`,
      );
    out.push({ ...(spec.name ? { name: spec.name } : {}), url: spec.url, ...(user ? { user } : {}), ...(password ? { password } : {}), pool: o.pool });
  }
  return out;
}
