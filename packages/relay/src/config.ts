/** Upstream URLs, credential files and the checks that make a relay safe to start. */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Every error of the relay a user sees: a stable `code` and the HTTP status the control port answers
 * it with. ERELAYCONFIG (400): a configuration or argument the relay refuses. ENOTHELD (404): no such
 * held message. EUNAUTHORIZED (401): a state-changing HTTP route without the right token. EFORBIDDEN
 * (403): a browser's cross-origin request, or a Host header that is not this relay's (DNS rebinding).
 */
export class RelayError extends Error {
  override name = 'RelayError';
  /** As @sluice/core's error kinds: 'input' for what the caller sent, 'refused' for what it may not do. */
  readonly kind: 'input' | 'refused';
  constructor(
    readonly code: 'ERELAYCONFIG' | 'ENOTHELD' | 'EUNAUTHORIZED' | 'EFORBIDDEN',
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.kind = code === 'EUNAUTHORIZED' || code === 'EFORBIDDEN' ? 'refused' : 'input';
  }
}

/** A configuration the relay refuses to start with. `code` is stable: 'ERELAYCONFIG'. */
export class RelayConfigError extends RelayError {
  override name = 'RelayConfigError';
  declare readonly code: 'ERELAYCONFIG';
  constructor(message: string) {
    super('ERELAYCONFIG', message, 400);
  }
}

export interface ParsedUpstream {
  host: string;
  port: number;
  secure: boolean;
  user?: string;
}

/**
 * `smtp://user@host:port` (STARTTLS when offered; port 587 by default) or `smtps://user@host:port`
 * (implicit TLS; 465 by default). A password in the URL is refused: URLs end up in shell history,
 * `ps` output and logs.
 */
export function parseUpstreamUrl(value: string): ParsedUpstream {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RelayConfigError(`The upstream ${JSON.stringify(redactUrl(value))} is not a URL: write it as smtp://user@host:port or smtps://user@host:port`);
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    throw new RelayConfigError(`The upstream URL must start with smtp:// (STARTTLS) or smtps:// (implicit TLS), not ${url.protocol}//`);
  }
  if (url.password) {
    throw new RelayConfigError(
      'The upstream URL contains a password. Passwords on the command line or in URLs leak through shell history, `ps` and logs: ' +
        'put it in a file readable only by you (chmod 600) and pass --password-file <file>, or set SLUICE_RELAY_PASSWORD in the environment.',
    );
  }
  if (!url.hostname) throw new RelayConfigError('The upstream URL has no host');
  if (url.pathname && url.pathname !== '/' && url.pathname !== '') throw new RelayConfigError('The upstream URL must not have a path');
  const secure = url.protocol === 'smtps:';
  const port = url.port ? Number(url.port) : secure ? 465 : 587;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port, secure, user: url.username ? decodeURIComponent(url.username) : undefined };
}

/** The URL without any password, for logs. */
export function redactUrl(value: string): string {
  return value.replace(/^([a-z]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

/**
 * Refuses a secrets file that others can read (like Postfix's relay_auth: chmod 600). Windows has no
 * such mode bits; there the check is skipped.
 */
export async function checkSecretFileMode(file: string, what: string): Promise<void> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(file);
  } catch (err) {
    throw new RelayConfigError(`Cannot read the ${what} ${file}: ${(err as Error).message}`);
  }
  if (!st.isFile()) throw new RelayConfigError(`The ${what} ${file} is not a regular file`);
  if (process.platform === 'win32') return;
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
    throw new RelayConfigError(
      `The ${what} ${file} has mode ${mode}: other users can read it. Run: chmod 600 ${file} (refusing to start, as Postfix does for relay_auth)`,
    );
  }
}

export function checkSecretFileModeSync(file: string, what: string): void {
  const st = statSync(file);
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
    throw new RelayConfigError(`The ${what} ${file} has mode ${mode}: other users can read it. Run: chmod 600 ${file}`);
  }
}

export interface Credentials {
  user?: string;
  password: string;
}

/**
 * Reads the upstream credentials. Accepted formats:
 * - JSON: `{ "user": "...", "password": "..." }`
 * - `user:password` on one line (the user cannot contain ":"; the password may)
 * - Postfix's relay_auth lines: `[smtp.host]:2525 user:password` (the line for the upstream host is used)
 * - a lone password on one line (the user then comes from the URL or --user)
 */
export async function readCredentialsFile(file: string, upstream?: { host: string; port: number }): Promise<Credentials> {
  return (await readCredentials(file, upstream, false))!;
}

/**
 * With several upstreams: relay_auth lines are matched per upstream exactly (no line: no credentials,
 * a lone line is not lent to another host); a single credential (user:password, a password, JSON) is
 * every upstream's.
 */
export async function readCredentialsFor(file: string, upstream: { host: string; port: number }): Promise<Credentials | undefined> {
  return readCredentials(file, upstream, true);
}

async function readCredentials(file: string, upstream: { host: string; port: number } | undefined, exact: boolean): Promise<Credentials | undefined> {
  await checkSecretFileMode(file, 'password file');
  const text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let json: { user?: unknown; username?: unknown; password?: unknown; pass?: unknown };
    try {
      json = JSON.parse(trimmed);
    } catch {
      throw new RelayConfigError(`The password file ${file} looks like JSON but does not parse`);
    }
    const password = json.password ?? json.pass;
    const user = json.user ?? json.username;
    if (typeof password !== 'string' || password === '') throw new RelayConfigError(`The password file ${file} has no "password"`);
    if (user !== undefined && typeof user !== 'string') throw new RelayConfigError(`"user" in ${file} must be a string`);
    return { user: user as string | undefined, password };
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (lines.length === 0) throw new RelayConfigError(`The password file ${file} is empty`);
  // Postfix relay_auth style: "<destination> user:password".
  const mapped = lines.map((l) => /^\s*(\S+)\s+(\S.*?)\s*$/.exec(l)).filter((m): m is RegExpExecArray => Boolean(m?.[2]?.includes(':')));
  if (mapped.length > 0 && mapped.length === lines.length) {
    const wanted = upstream ? [`[${upstream.host}]:${upstream.port}`, upstream.host, `[${upstream.host}]`] : [];
    const found = mapped.find((m) => wanted.includes(m[1])) ?? (mapped.length === 1 && !exact ? mapped[0] : undefined);
    if (!found && exact) return undefined;
    if (!found) throw new RelayConfigError(`The password file ${file} has no line for ${upstream ? `[${upstream.host}]:${upstream.port}` : 'the upstream'}`);
    return splitUserPassword(found[2]);
  }
  if (lines.length > 1) throw new RelayConfigError(`The password file ${file} must hold one line (user:password, or a password), JSON, or relay_auth lines`);
  const line = lines[0].replace(/\s+$/, '');
  return line.includes(':') ? splitUserPassword(line) : { password: line };
}

function splitUserPassword(value: string): Credentials {
  const i = value.indexOf(':');
  const user = value.slice(0, i);
  const password = value.slice(i + 1);
  if (!password) throw new RelayConfigError('The password file has an empty password');
  return { user: user || undefined, password };
}

/** Local users allowed to AUTH to the relay: `user:password` lines (or JSON `{ "user": "password" }`), mode 0600. */
export async function readUsersFile(file: string): Promise<Record<string, string>> {
  await checkSecretFileMode(file, 'users file');
  const text = (await readFile(file, 'utf8')).trim();
  if (text.startsWith('{')) {
    const json = JSON.parse(text) as Record<string, unknown>;
    for (const [u, p] of Object.entries(json)) if (typeof p !== 'string' || !u) throw new RelayConfigError(`The users file ${file}: bad entry for ${u}`);
    return json as Record<string, string>;
  }
  const users: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i <= 0 || i === line.length - 1) throw new RelayConfigError(`The users file ${file} has a line that is not user:password`);
    users[line.slice(0, i).trim()] = line.slice(i + 1).replace(/\s+$/, '');
  }
  if (Object.keys(users).length === 0) throw new RelayConfigError(`The users file ${file} has no user`);
  return users;
}

/** Where a relay keeps the HTTP token it generated: in its spool (mode 0700), where `sluice-relay release` finds it. */
export function spoolTokenFile(spoolDir: string): string {
  return path.join(spoolDir, 'http-token');
}

/** Reads an HTTP token file (mode 0600, one line, at least 16 characters). */
export async function readTokenFile(file: string): Promise<string> {
  await checkSecretFileMode(file, 'HTTP token file');
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length < 16 || /\s/.test(token)) throw new RelayConfigError(`The HTTP token file ${file} must hold one token of at least 16 characters`);
  return token;
}

/** The token in the spool, created (random, mode 0600) when there is none or it is unusable. */
export async function ensureSpoolToken(spoolDir: string): Promise<string> {
  const file = spoolTokenFile(spoolDir);
  try {
    return await readTokenFile(file);
  } catch (err) {
    if (!(err instanceof RelayConfigError)) throw err;
  }
  const token = randomBytes(24).toString('base64url');
  await rm(file, { force: true }); // a file others could read is replaced, not reused
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}
