/** Flags, environment variables (SLUICE_RELAY_*) and a JSON config file, resolved into RelayOptions. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PRESET_NAMES, type PresetName, preset } from '@sluice/core';
import { applyEhloNames, parseRoutes, parseUpstreamSpec, resolveUpstreams } from './cli-upstreams.js';
import { checkSecretFileModeSync, parseUpstreamUrl, RelayConfigError, readCredentialsFile, readTokenFile, readUsersFile } from './config.js';
import type { LogLevel } from './log.js';
import type { PermanentFailureAction, RelayOptions, UpstreamOptions } from './options.js';
import { parseDuration, parseSize } from './units.js';

type Kind = 'string' | 'boolean';

/** Every option: flag name, kind, description. The environment variable is SLUICE_RELAY_<NAME_IN_CAPS>. */
export const OPTIONS: Array<{ name: string; kind: Kind; help: string; default?: string; multiple?: boolean }> = [
  {
    name: 'upstream',
    kind: 'string',
    multiple: true,
    help: 'smarthost URL: smtp://user@host:port (STARTTLS) or smtps://user@host:port; no password. Repeat for failover, in order: [name=]URL',
  },
  {
    name: 'route',
    kind: 'string',
    multiple: true,
    help: "domain=upstream[,upstream…]: that domain's recipients go through the named upstream(s); .domain for subdomains, * for the rest",
  },
  { name: 'preset', kind: 'string', help: `provider preset (host, port, limits): ${PRESET_NAMES.join(', ')}` },
  { name: 'user', kind: 'string', help: 'upstream user (or in the URL, or in the password file)' },
  { name: 'password-file', kind: 'string', help: 'file with the upstream password (mode 0600): "user:password", a password, JSON or relay_auth lines' },
  { name: 'upstream-ca', kind: 'string', help: 'PEM file of extra CA certificates for the upstream' },
  { name: 'upstream-require-tls', kind: 'boolean', help: 'refuse to send to the upstream without TLS' },
  { name: 'max-connections', kind: 'string', help: 'upstream connections', default: '20' },
  {
    name: 'upstream-max-recipients',
    kind: 'string',
    help: 'recipients per upstream transaction; more are split into several (Postfix smtp_destination_recipient_limit)',
    default: '100',
  },
  { name: 'max-messages-per-connection', kind: 'string', help: 'messages per upstream connection', default: '50' },
  { name: 'listen', kind: 'string', help: 'address:port to accept mail on (beyond loopback: TLS and AUTH required)', default: '127.0.0.1:2525' },
  { name: 'port', kind: 'string', help: 'port to accept mail on (shorthand)' },
  { name: 'spool', kind: 'string', help: 'spool directory', default: '/var/spool/sluice-relay (root) or ~/.local/state/sluice-relay' },
  { name: 'http', kind: 'string', help: 'address:port of /metrics, /health, /status, /release, /flush; "off" to disable', default: '127.0.0.1:2526' },
  {
    name: 'http-token-file',
    kind: 'string',
    help: 'file (mode 0600) with the token POST /release and /flush need (or SLUICE_RELAY_HTTP_TOKEN); required beyond loopback',
    default: 'generated into <spool>/http-token',
  },
  { name: 'http-allowed-hosts', kind: 'string', help: 'comma-separated host names the HTTP port answers to, besides IP addresses and localhost' },
  { name: 'max-age', kind: 'string', help: 'give up (bounce) after this long in the queue', default: '5d' },
  { name: 'retry-min', kind: 'string', help: 'first retry delay after a transient failure', default: '1m' },
  { name: 'retry-max', kind: 'string', help: 'longest retry delay', default: '1h' },
  { name: 'on-permanent-failure', kind: 'string', help: 'bounce | dead-letter | both', default: 'bounce' },
  { name: 'dead-letter', kind: 'boolean', help: 'same as --on-permanent-failure dead-letter' },
  { name: 'max-size', kind: 'string', help: 'largest message accepted', default: '25M' },
  { name: 'max-recipients', kind: 'string', help: 'recipients per message', default: '1000' },
  { name: 'max-clients', kind: 'string', help: 'simultaneous local clients', default: '200' },
  { name: 'max-clients-per-address', kind: 'string', help: 'simultaneous clients from one address', default: 'a quarter of --max-clients (50)' },
  { name: 'session-timeout', kind: 'string', help: 'close a client session (421) this long after it connected', default: '10m' },
  { name: 'command-timeout', kind: 'string', help: 'a command line (or a line of a message) must arrive within this time of its first byte', default: '30s' },
  { name: 'idle-timeout', kind: 'string', help: 'disconnect a client that sends nothing for this long', default: '60s' },
  { name: 'tls-key', kind: 'string', help: 'PEM key for STARTTLS to local clients' },
  { name: 'tls-cert', kind: 'string', help: 'PEM certificate for STARTTLS to local clients' },
  { name: 'users-file', kind: 'string', help: 'local AUTH users, "user:password" lines (mode 0600)' },
  { name: 'require-auth', kind: 'boolean', help: 'require AUTH from loopback clients too' },
  {
    name: 'trusted-networks',
    kind: 'string',
    help: 'CIDR ranges that may relay without AUTH (Postfix mynetworks), comma- or space-separated, IPv4 and IPv6',
    default: '127.0.0.0/8, ::1/128',
  },
  {
    name: 'delay-warning',
    kind: 'string',
    help: 'warn the sender (DSN, Action: delayed) when a message is still queued after this long; several: 4h,1d',
    default: 'off',
  },
  { name: 'hostname', kind: 'string', help: 'name in the greeting, in the upstream EHLO and in bounces', default: 'os.hostname()' },
  {
    name: 'ehlo-name',
    kind: 'string',
    multiple: true,
    help: 'name in the upstream EHLO instead of --hostname (Postfix smtp_helo_name); upstream=NAME for one upstream',
  },
  { name: 'shutdown-timeout', kind: 'string', help: 'on SIGTERM, wait this long for messages on the wire', default: '30s' },
  { name: 'log-level', kind: 'string', help: 'debug | info | warn | error', default: 'info' },
  { name: 'config', kind: 'string', help: 'JSON file with any of these options (keys as the flags, e.g. "max-age")' },
];

export function envName(flag: string): string {
  return `SLUICE_RELAY_${flag.toUpperCase().replace(/-/g, '_')}`;
}

export interface CliCommand {
  command: 'run' | 'status' | 'release' | 'queue' | 'flush' | 'help' | 'version';
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseCommandLine(argv: string[]): CliCommand {
  for (const arg of argv) {
    if (arg === '--http-token' || arg.startsWith('--http-token=')) {
      throw new RelayConfigError(
        'There is no --http-token flag: a token on the command line is visible to every user through `ps`. ' +
          'Put it in a file (chmod 600) and pass --http-token-file <file>, or set SLUICE_RELAY_HTTP_TOKEN in the environment.',
      );
    }
    if (arg === '--password' || arg.startsWith('--password=') || arg === '-p') {
      throw new RelayConfigError(
        'There is no --password flag: a password on the command line is visible to every user through `ps` and stays in shell history. ' +
          'Put it in a file (chmod 600) and pass --password-file <file>, or set SLUICE_RELAY_PASSWORD in the environment.',
      );
    }
  }
  const commands = ['run', 'start', 'status', 'release', 'queue', 'flush', 'help', 'version'];
  let command: CliCommand['command'] = 'run';
  const args = [...argv];
  if (args[0] && commands.includes(args[0])) {
    const c = args.shift()!;
    command = (c === 'start' ? 'run' : c) as CliCommand['command'];
  }
  const options: Record<string, { type: Kind; short?: string; multiple?: boolean }> = {};
  for (const o of OPTIONS) options[o.name] = { type: o.kind, ...(o.multiple ? { multiple: true } : {}) };
  options.json = { type: 'boolean' };
  options.all = { type: 'boolean' };
  options.help = { type: 'boolean', short: 'h' };
  options.version = { type: 'boolean', short: 'v' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new RelayConfigError(`${(err as Error).message}. See sluice-relay --help`);
  }
  if (parsed.values.help) command = 'help';
  if (parsed.values.version) command = 'version';
  if (command === 'run' && parsed.positionals.length > 0)
    throw new RelayConfigError(`Unexpected argument ${JSON.stringify(parsed.positionals[0])}. See sluice-relay --help`);
  return { command, values: parsed.values as CliCommand['values'], positionals: parsed.positionals };
}

/** Flag > environment > config file. */
export function layered(
  values: CliCommand['values'],
  env: NodeJS.ProcessEnv,
): { get(name: string): string | undefined; all(name: string): string[]; bool(name: string): boolean; configPassword?: string } {
  const configFile = (values.config as string | undefined) ?? env[envName('config')];
  let config: Record<string, unknown> = {};
  if (configFile) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (err) {
      throw new RelayConfigError(`Cannot read the config file ${configFile}: ${(err as Error).message}`);
    }
    try {
      config = JSON.parse(text);
    } catch (err) {
      throw new RelayConfigError(`The config file ${configFile} is not valid JSON: ${(err as Error).message}`);
    }
    if (!config || typeof config !== 'object' || Array.isArray(config)) throw new RelayConfigError(`The config file ${configFile} must hold a JSON object`);
    const known = new Set([...OPTIONS.map((o) => o.name), 'password']);
    const normalised: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(config)) {
      const kebab = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      if (!known.has(kebab)) throw new RelayConfigError(`Unknown option ${JSON.stringify(k)} in ${configFile}`);
      normalised[kebab] = v;
    }
    config = normalised;
    if ('password' in config) checkSecretFileModeSync(configFile, 'config file (it holds a password)');
  }
  const get = (name: string): string | undefined => {
    const v = values[name] ?? env[envName(name)] ?? config[name];
    if (v === undefined || v === null || v === '') return undefined;
    return String(v);
  };
  /** A repeatable option: every flag given, else the environment's or the file's list (spaces or ";" between; a JSON array; for an object, key=value). */
  const all = (name: string): string[] => {
    const flag = values[name];
    if (Array.isArray(flag) && flag.length) return flag;
    const v = env[envName(name)] || config[name];
    if (v === undefined || v === null || v === '') return [];
    if (Array.isArray(v)) return v.map(String);
    if (typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k}=${Array.isArray(x) ? x.join(',') : String(x)}`);
    return String(v)
      .split(/[\s;]+/)
      .filter(Boolean);
  };
  const bool = (name: string): boolean => {
    const v = values[name] ?? env[envName(name)] ?? config[name];
    if (v === undefined || v === '') return false;
    if (typeof v === 'boolean') return v;
    const s = String(v).toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off'].includes(s)) return false;
    throw new RelayConfigError(`${name}: expected true or false, got ${JSON.stringify(v)}`);
  };
  return { get, all, bool, configPassword: typeof config.password === 'string' && config.password ? config.password : undefined };
}

export function defaultSpoolDir(env: NodeJS.ProcessEnv = process.env): string {
  if (typeof process.getuid === 'function' && process.getuid() === 0) return '/var/spool/sluice-relay';
  const state = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(state, 'sluice-relay');
}

export function parseHostPort(value: string, name: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)|(.*:.*))?:(\d+)$/.exec(value) ?? /^()()()(\d+)$/.exec(value);
  if (!m) throw new RelayConfigError(`${name}: expected address:port (e.g. 127.0.0.1:2525), got ${JSON.stringify(value)}`);
  const port = Number(m[4]);
  if (!(port >= 0 && port < 65536)) throw new RelayConfigError(`${name}: bad port ${m[4]}`);
  return { host: m[1] ?? m[2] ?? m[3] ?? '127.0.0.1', port };
}

function int(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(Number.isInteger(n) && n > 0)) throw new RelayConfigError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function wrap<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof RelayConfigError) throw err;
    throw new RelayConfigError(`--${name}: ${(err as Error).message}`);
  }
}

/** The HTTP token given by the operator: --http-token-file (mode 0600) or SLUICE_RELAY_HTTP_TOKEN. */
export async function httpToken(cfg: ReturnType<typeof layered>, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const file = cfg.get('http-token-file');
  if (file) return readTokenFile(file);
  const value = env.SLUICE_RELAY_HTTP_TOKEN?.trim();
  if (value !== undefined && value.length < 16) throw new RelayConfigError('SLUICE_RELAY_HTTP_TOKEN must be at least 16 characters');
  return value || undefined;
}

/** Builds the relay's options. Reads the secret files (and checks their modes). */
export async function resolveRelayOptions(values: CliCommand['values'], env: NodeJS.ProcessEnv): Promise<RelayOptions & { logLevel: LogLevel }> {
  const cfg = layered(values, env);
  const { get, bool } = cfg;
  const presetName = get('preset') as PresetName | undefined;
  if (presetName && !PRESET_NAMES.includes(presetName))
    throw new RelayConfigError(`Unknown preset ${JSON.stringify(presetName)}: one of ${PRESET_NAMES.join(', ')}`);
  const specs = cfg.all('upstream').map(parseUpstreamSpec);
  const several = specs.length > 1;
  if (several && presetName) throw new RelayConfigError('--preset goes with one upstream: with several, give each as --upstream [name=]smtp://user@host:port');
  const url = several ? undefined : specs[0]?.url;
  const parsed = url ? parseUpstreamUrl(url) : undefined;
  let user = get('user');
  let password: string | undefined;
  const passwordFile = get('password-file');
  if (several) {
    if (user) throw new RelayConfigError('--user goes with one upstream: with several, put each user in its URL (smtp://user@host) or in relay_auth lines');
  } else if (passwordFile) {
    const presetOptions = presetName ? preset(presetName).options : undefined;
    const target = parsed ?? (presetOptions?.host ? { host: presetOptions.host, port: presetOptions.port ?? 587 } : undefined);
    const creds = await readCredentialsFile(passwordFile, target ? { host: target.host, port: target.port } : undefined);
    password = creds.password;
    const urlUser = parsed?.user ?? user;
    if (creds.user && urlUser && creds.user !== urlUser)
      throw new RelayConfigError(`The password file is for user ${creds.user}, but the upstream user is ${urlUser}`);
    if (creds.user && !urlUser) user = creds.user;
  } else if (env.SLUICE_RELAY_PASSWORD) {
    password = env.SLUICE_RELAY_PASSWORD;
  } else if (cfg.configPassword) {
    password = cfg.configPassword;
  }
  if (user && parsed?.user && user !== parsed.user) throw new RelayConfigError(`--user ${user} and the user in the URL (${parsed.user}) differ`);

  const listen = get('listen') ? parseHostPort(get('listen')!, 'listen') : { host: '127.0.0.1', port: 2525 };
  if (get('port') !== undefined) {
    const p = Number(get('port'));
    if (!(Number.isInteger(p) && p >= 0 && p < 65536)) throw new RelayConfigError(`--port: bad port ${get('port')}`);
    listen.port = p;
  }
  const httpValue = get('http');
  const httpAddress =
    httpValue === 'off' || httpValue === 'false' ? (false as const) : httpValue ? parseHostPort(httpValue, 'http') : { host: '127.0.0.1', port: 2526 };
  const token = await httpToken(cfg, env);
  const allowedHosts = get('http-allowed-hosts')
    ?.split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const httpOpt = httpAddress && { ...httpAddress, ...(token ? { token } : {}), ...(allowedHosts ? { allowedHosts } : {}) };

  const tlsKey = get('tls-key');
  const tlsCert = get('tls-cert');
  if (!!tlsKey !== !!tlsCert) throw new RelayConfigError('--tls-key and --tls-cert go together');
  let tls: RelayOptions['tls'];
  if (tlsKey && tlsCert) {
    checkSecretFileModeSync(tlsKey, 'TLS key file');
    tls = { key: readFileSync(tlsKey), cert: readFileSync(tlsCert) };
  }
  const usersFile = get('users-file');
  const users = usersFile ? await readUsersFile(usersFile) : undefined;

  let onPermanentFailure = (get('on-permanent-failure') ?? 'bounce') as PermanentFailureAction;
  if (bool('dead-letter')) onPermanentFailure = 'dead-letter';
  if (!['bounce', 'dead-letter', 'both'].includes(onPermanentFailure)) throw new RelayConfigError('--on-permanent-failure must be bounce, dead-letter or both');

  const ca = get('upstream-ca');
  const pool: NonNullable<UpstreamOptions['pool']> = {};
  if (ca) pool.tls = { ca: readFileSync(ca, 'utf8') };
  if (bool('upstream-require-tls')) pool.requireTLS = true;
  const mc = int(get('max-connections'), 'max-connections');
  if (mc) pool.maxConnections = mc;
  const mr = int(get('upstream-max-recipients'), 'upstream-max-recipients');
  if (mr) pool.maxRecipientsPerTransaction = mr;
  const mm = int(get('max-messages-per-connection'), 'max-messages-per-connection');
  if (mm) pool.maxMessagesPerConnection = mm;

  const upstreams = applyEhloNames(
    several
      ? await resolveUpstreams(specs, { passwordFile, envPassword: env.SLUICE_RELAY_PASSWORD ?? cfg.configPassword, pool })
      : [{ ...(specs[0]?.name ? { name: specs[0].name } : {}), url, preset: presetName, user, password, pool }],
    cfg.all('ehlo-name'),
  );

  const duration = (name: string, fallback: string) => wrap(name, () => parseDuration(get(name) ?? fallback, name));
  const logLevel = (get('log-level') ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new RelayConfigError('--log-level must be debug, info, warn or error');

  return {
    host: listen.host,
    port: listen.port,
    hostname: get('hostname'),
    spoolDir: path.resolve(get('spool') ?? defaultSpoolDir(env)),
    ...(several ? { upstreams } : { upstream: upstreams[0] }),
    routes: parseRoutes(cfg.all('route')),
    trustedNetworks: get('trusted-networks')
      ?.split(/[\s,]+/)
      .filter(Boolean),
    delayWarning:
      get('delay-warning') === 'off'
        ? undefined
        : get('delay-warning')
            ?.split(',')
            .map((d) => wrap('delay-warning', () => parseDuration(d.trim(), 'delay-warning'))),
    maxAge: wrap('max-age', () => parseDuration(get('max-age') ?? '5d', 'max-age')),
    retryMin: wrap('retry-min', () => parseDuration(get('retry-min') ?? '1m', 'retry-min')),
    retryMax: wrap('retry-max', () => parseDuration(get('retry-max') ?? '1h', 'retry-max')),
    onPermanentFailure,
    maxSize: wrap('max-size', () => parseSize(get('max-size') ?? '25M', 'max-size')),
    maxRecipients: int(get('max-recipients'), 'max-recipients'),
    maxClients: int(get('max-clients'), 'max-clients'),
    maxClientsPerAddress: int(get('max-clients-per-address'), 'max-clients-per-address'),
    sessionTimeout: duration('session-timeout', '10m'),
    commandTimeout: duration('command-timeout', '30s'),
    idleTimeout: duration('idle-timeout', '60s'),
    tls,
    users,
    requireAuth: bool('require-auth'),
    http: httpOpt,
    shutdownTimeout: wrap('shutdown-timeout', () => parseDuration(get('shutdown-timeout') ?? '30s', 'shutdown-timeout')),
    logLevel,
  };
}

export function helpText(): string {
  const rows = OPTIONS.map(
    (o) => `${`  --${o.name}${o.kind === 'string' ? ' <value>' : ''}`.padEnd(42)}${o.help}${o.default ? ` (default ${o.default})` : ''}`,
  );
  return `sluice-relay: a local smarthost. Accepts mail on 127.0.0.1:2525, spools it durably (fsync before 250),
forwards it pooled and pipelined through @sluice/core.

Usage:
  sluice-relay [run] --upstream smtp://user@smtp.example.com:2525 --password-file /etc/sluice/relay_auth
  sluice-relay [run] --preset socketlabs --user USER --password-file FILE
  sluice-relay status [--spool DIR] [--http ADDR:PORT] [--json]
  sluice-relay release <id>... | --all [--spool DIR] [--http ADDR:PORT]
  sluice-relay queue [--json] [--spool DIR] [--http ADDR:PORT]   list the queue (like mailq)
  sluice-relay flush [--http ADDR:PORT]                          retry every deferred message now

Options (each also as an environment variable SLUICE_RELAY_<NAME>, e.g. SLUICE_RELAY_UPSTREAM, or in --config):
${rows.join('\n')}
  --json                                    status, queue: print JSON
  --all                                     release: every held message

The upstream password: --password-file FILE (mode 0600) or SLUICE_RELAY_PASSWORD. Never on the command line.
The HTTP token (POST /release, /flush): --http-token-file FILE (mode 0600) or SLUICE_RELAY_HTTP_TOKEN; by default
a random one in <spool>/http-token, which \`status\` and \`release\` read.
Signals: SIGTERM/SIGINT stop accepting, finish what is on the wire, keep the rest spooled.
`;
}
