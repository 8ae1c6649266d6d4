import { ErrorCodes, type PoolOptions, SluiceError } from '@sluice/core';
import type { DKIMOptions } from 'nodemailer/lib/dkim';
import { oauth2TokenSource, type NodemailerOAuth2 } from './oauth2.js';

/**
 * nodemailer's SMTP transport options, as its documentation gives them (https://nodemailer.com/smtp/),
 * for the part that means the same in sluice. What differs is translated here, so that a configuration
 * copied from nodemailer runs unchanged: only the transport changes.
 */
export interface NodemailerSmtpOptions {
  /** A connection URL, e.g. `smtps://user:pass@smtp.example.com:465` (nodemailer's own parser reads it). */
  url?: string;
  /** A well-known service name, alias or e-mail domain from nodemailer's list (`'Gmail'`, `'SES-US-EAST-1'`, …). */
  service?: string;
  host?: string;
  port?: number;
  secure?: boolean;
  ignoreTLS?: boolean;
  requireTLS?: boolean;
  name?: string;
  localAddress?: string;
  authMethod?: string;
  tls?: PoolOptions['tls'];
  /** `type: 'custom'` with `method` picks a `customAuth` handler; `options` reaches it as `ctx.auth.credentials.options`. */
  auth?: { type?: string; user?: string; pass?: string; method?: string; options?: unknown } & NodemailerOAuth2;
  /** Custom AUTH handlers by mechanism name: `{ MYMECH: async (ctx) => { await ctx.sendCommand('AUTH MYMECH …') } }`. */
  customAuth?: PoolOptions['customAuth'];
  /** Go on in clear when the server refuses STARTTLS (never with credentials, unless allowInsecureAuth). */
  opportunisticTLS?: boolean;
  allowInsecureAuth?: boolean;
  /** `'socks5://host:1080'`, `'socks4://host:1080'` or `'http://host:3128'` (HTTP CONNECT). */
  proxy?: string;
  /** Speak LMTP (RFC 2033) instead of SMTP. */
  lmtp?: boolean;
  /** nodemailer's pooling switch: sluice always pools, so `true` and `false` both mean "a sluice pool". */
  pool?: boolean;
  maxConnections?: number;
  /** Messages per connection (sluice: `maxMessagesPerConnection`). `Infinity` keeps a connection for as long as it lives. */
  maxMessages?: number;
  /** With `rateDelta`: at most `rateLimit` messages per `rateDelta` ms (default 1000). */
  rateLimit?: number;
  rateDelta?: number;
  connectionTimeout?: number;
  greetingTimeout?: number;
  /** Inactivity allowed while waiting for a reply (sluice: the command, envelope and data timeouts). */
  socketTimeout?: number;
  /** DKIM-sign every message sent through this transport (a message's own `dkim` takes precedence). */
  dkim?: DKIMOptions;
}

/** nodemailer options that have no sluice equivalent yet: refused by name, never ignored. */
const NOT_YET: Record<string, string> = {
  connection: 'an already connected socket',
  direct: 'direct delivery to the recipients’ MX hosts',
  sendmail: 'the sendmail binary',
  SES: 'the SES API (use the `ses` preset: SES over SMTP)',
  streamTransport: 'the stream transport',
  jsonTransport: 'the JSON transport',
  transactionLog: 'nodemailer’s transaction log (use `logger`)',
  dnsTimeout: 'a separate DNS timeout (it is part of `connectionTimeout`)',
};

/**
 * nodemailer's names for sluice's options, and how each value translates. (`service` and `url` mean the
 * same in both: the core reads them with nodemailer's own list and parser.)
 */
const NODEMAILER_ONLY = new Set(['pool', 'maxMessages', 'rateDelta', 'connectionTimeout', 'greetingTimeout', 'socketTimeout', 'dkim']);

function bad(message: string): SluiceError {
  return new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });
}

/** True when `options` are written in nodemailer's terms (a URL, a service, or one of its own option names). */
export function isNodemailerOptions(options: object): boolean {
  for (const key of Object.keys(options)) if (NODEMAILER_ONLY.has(key) || key in NOT_YET) return true;
  const o = options as Record<string, unknown>;
  if (typeof o.rateLimit === 'number' || typeof o.pool === 'boolean') return true;
  const auth = o.auth as Record<string, unknown> | undefined;
  return typeof auth?.type === 'string' || typeof auth?.clientId === 'string' || typeof auth?.refreshToken === 'string';
}

/** Translates nodemailer's SMTP options (or a connection URL) into the core's pool options, plus the transport-wide DKIM options. */
export function fromNodemailer(input: string | NodemailerSmtpOptions): { pool: PoolOptions; dkim: DKIMOptions | undefined } {
  const options: NodemailerSmtpOptions & Record<string, unknown> = typeof input === 'string' ? { url: input } : { ...input };
  for (const key of Object.keys(options)) {
    if (key in NOT_YET) throw bad(`The sluice transport does not support ${NOT_YET[key]} yet (nodemailer option "${key}")`);
  }
  const { pool: _pooled, maxMessages, rateLimit, rateDelta, connectionTimeout, greetingTimeout, socketTimeout, dkim, auth, authMethod, ...rest } = options;
  const out: PoolOptions & Record<string, unknown> = { ...(rest as PoolOptions) };
  if (authMethod !== undefined) out.authMethod = String(authMethod).toUpperCase() as PoolOptions['authMethod'];
  if (auth !== undefined) out.auth = translateAuth(auth);
  // nodemailer's custom AUTH: `auth: { type: 'custom', method: 'MYMECH', user, pass, options }` picks its customAuth handler.
  if (auth && String(auth.type).toLowerCase() === 'custom') {
    const method = String(auth.method ?? authMethod ?? '').toUpperCase();
    const handlers = Object.keys(options.customAuth ?? {}).map((key) => key.trim().toUpperCase());
    if (!handlers.includes(method))
      throw bad('auth.type "custom" needs auth.method naming one of the customAuth handlers (nodemailer\'s custom AUTH handlers)');
    out.authMethod = method;
  }
  if (maxMessages !== undefined) {
    // nodemailer's default is 100 and Infinity is allowed; sluice needs a whole number.
    out.maxMessagesPerConnection = maxMessages === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : maxMessages;
  }
  if (rateLimit !== undefined) out.rateLimit = { messages: rateLimit, per: rateDelta ?? 1000 };
  else if (rateDelta !== undefined) throw bad('rateDelta needs rateLimit (messages per rateDelta ms)');
  const timeouts: NonNullable<PoolOptions['timeouts']> = { ...(out.timeouts ?? {}) };
  if (connectionTimeout !== undefined) timeouts.connect = connectionTimeout;
  if (greetingTimeout !== undefined) timeouts.greeting = greetingTimeout;
  if (socketTimeout !== undefined) {
    for (const step of ['command', 'mail', 'rcpt', 'data', 'dataBlock', 'dataEnd'] as const) timeouts[step] = socketTimeout;
  }
  if (Object.keys(timeouts).length > 0) out.timeouts = timeouts;
  return { pool: out, dkim };
}

function translateAuth(auth: NonNullable<NodemailerSmtpOptions['auth']>): PoolOptions['auth'] {
  if (!auth || typeof auth !== 'object') throw bad('auth must be an object');
  const type = String(auth.type ?? (auth.pass !== undefined ? 'login' : 'oauth2')).toLowerCase();
  if (type === 'login') return { user: auth.user ?? '', pass: auth.pass ?? '' };
  if (type === 'oauth2') return oauth2TokenSource(auth);
  if (type === 'custom') return { user: auth.user, pass: auth.pass, options: auth.options };
  throw bad(`Unknown auth.type ${JSON.stringify(auth.type)}: use "login" or "OAuth2"`);
}
