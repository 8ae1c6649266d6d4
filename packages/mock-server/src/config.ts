import { MockServerError } from './errors.js';
import { PROFILES } from './profiles.js';
import { buildReplies, formatReply, parseReply, type Replies } from './replies.js';
import type { Extensions, MockServerOptions, ReceivedMessage } from './types.js';

export type AuthMechanism = 'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'XOAUTH2';
export const ALL_MECHANISMS: readonly AuthMechanism[] = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'];

const MiB = 1024 * 1024;
export const DEFAULT_SIZE = 50 * MiB;
export const DEFAULT_HOSTNAME = 'mock.sluice.test';

export interface ResolvedExtensions {
  pipelining: boolean;
  chunking: boolean;
  size: number | false;
  eightBitMime: boolean;
  smtpUtf8: boolean;
  dsn: boolean;
  enhancedStatusCodes: boolean;
  starttls: boolean;
  auth: readonly AuthMechanism[];
}

/** Options with every default applied; rebuilt on configure(). Sessions read it per command. */
export interface Config {
  hostname: string;
  ext: ResolvedExtensions;
  secure: boolean;
  requireTLS: boolean;
  requireAuth: boolean;
  users: ReadonlyMap<string, string>;
  tokens: ReadonlyMap<string, ReadonlySet<string>>;
  rtt: number;
  bandwidth: number;
  maxConnections: number;
  maxMessagesPerConnection: number;
  maxRecipients: number;
  maxLineLength: number;
  maxMessageSize: number;
  idleTimeout: number;
  rateLimit: number;
  seed: number;
  record: boolean;
  maxBadCommands: number;
  maxConnectionsPerUser: number;
  inboxLimit: number;
  forbidPipeliningAfterData: boolean;
  answerFirstOnly: boolean;
  echoCredentialsOnFailure: boolean;
  /** null when strict BDAT mode is off. */
  strictBdat: { refuse: ReadonlySet<number>; reply: string } | null;
  onMessage: ((message: ReceivedMessage) => void) | undefined;
  replies: Replies;
  /** Complete EHLO replies on a clear and on a TLS connection (they differ in STARTTLS and, with
   * requireTLS, in AUTH). */
  ehloClear: string;
  ehloSecure: string;
}

/** Options that can only be given to startMockServer(), not to configure(). */
export const STARTUP_ONLY = ['host', 'port', 'secure', 'tls', 'profile'] as const;

function num(name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw new MockServerError('EMOCKOPTIONS', `mock-server option ${name} must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

function flag(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new MockServerError('EMOCKOPTIONS', `mock-server option ${name} must be a boolean, got ${String(value)}`);
  return value;
}

/** A refusal reply given as an option: parsed (so a typo fails at start) and an error code. */
function limitReply(name: string, reply: unknown, enhanced: boolean): string {
  if (typeof reply !== 'string') throw new MockServerError('EMOCKOPTIONS', `mock-server option ${name} must be a reply string, got ${String(reply)}`);
  const parsed = parseReply(reply, enhanced);
  if (parsed.code < 400) throw new MockServerError('EMOCKOPTIONS', `mock-server option ${name} must be a 4xx or 5xx reply, got ${JSON.stringify(reply)}`);
  return parsed.line;
}

function resolveStrictBdat(value: MockServerOptions['strictBdat'], enhanced: boolean): Config['strictBdat'] {
  if (value === undefined || value === false) return null;
  if (value !== true && (typeof value !== 'object' || value === null)) {
    throw new MockServerError('EMOCKOPTIONS', `mock-server option strictBdat must be a boolean or an object, got ${String(value)}`);
  }
  const options = value === true ? {} : value;
  const list = options.refuse === undefined ? [] : Array.isArray(options.refuse) ? options.refuse : [options.refuse];
  for (const n of list) {
    if (!Number.isInteger(n) || n < 1) throw new MockServerError('EMOCKOPTIONS', `strictBdat.refuse must hold transaction numbers >= 1, got ${String(n)}`);
  }
  return {
    refuse: new Set(list),
    reply: limitReply('strictBdat.reply', options.reply ?? '554 5.6.0 Error: BDAT refused (strict mode)', enhanced),
  };
}

/** Profile first, then the explicit options (extensions merged key by key). */
export function mergeOptions(options: MockServerOptions): MockServerOptions {
  const profileName = options.profile ?? 'default';
  const profile = PROFILES[profileName];
  if (!profile) throw new MockServerError('EMOCKOPTIONS', `unknown mock-server profile ${JSON.stringify(profileName)}`);
  return {
    ...profile,
    ...options,
    extensions: { ...profile.extensions, ...options.extensions },
  };
}

/** Every option, so that a misspelt one (`latency` for `rtt`) is refused, not silently ignored. */
const OPTION_KEYS = {
  host: true,
  port: true,
  hostname: true,
  profile: true,
  extensions: true,
  secure: true,
  requireTLS: true,
  requireAuth: true,
  users: true,
  tokens: true,
  rtt: true,
  bandwidth: true,
  maxConnections: true,
  maxMessagesPerConnection: true,
  maxRecipients: true,
  tooManyRecipientsReply: true,
  forbidPipeliningAfterData: true,
  answerFirstOnly: true,
  echoCredentialsOnFailure: true,
  strictBdat: true,
  maxLineLength: true,
  maxMessageSize: true,
  idleTimeout: true,
  rateLimit: true,
  faults: true,
  seed: true,
  record: true,
  tls: true,
  maxBadCommands: true,
  maxConnectionsPerUser: true,
  connectionLimitReply: true,
  inboxLimit: true,
  onMessage: true,
} satisfies Record<keyof MockServerOptions, true>;

export function resolveConfig(options: MockServerOptions): Config {
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(OPTION_KEYS, key)) {
      throw new MockServerError('EMOCKOPTIONS', `unknown mock-server option ${JSON.stringify(key)} (options: ${Object.keys(OPTION_KEYS).join(', ')})`);
    }
  }
  const o = mergeOptions(options);
  const e: Extensions = o.extensions ?? {};
  const hostname = o.hostname ?? DEFAULT_HOSTNAME;

  const users = new Map(Object.entries(o.users ?? {}));
  const tokens = new Map<string, Set<string>>();
  for (const [user, t] of Object.entries(o.tokens ?? {})) tokens.set(user, new Set(Array.isArray(t) ? t : [t]));

  let auth: readonly AuthMechanism[];
  if (e.auth === false) auth = [];
  else if (e.auth) {
    for (const m of e.auth) {
      if (!ALL_MECHANISMS.includes(m)) throw new MockServerError('EMOCKOPTIONS', `unknown AUTH mechanism ${JSON.stringify(m)}`);
    }
    auth = [...e.auth];
  } else auth = users.size > 0 || tokens.size > 0 ? ALL_MECHANISMS : [];

  const size = e.size === undefined ? DEFAULT_SIZE : e.size;
  if (size !== false) num('extensions.size', size, 0, 1);

  const ext: ResolvedExtensions = {
    pipelining: e.pipelining ?? true,
    chunking: e.chunking ?? true,
    size,
    eightBitMime: e.eightBitMime ?? true,
    smtpUtf8: e.smtpUtf8 ?? true,
    dsn: e.dsn ?? true,
    enhancedStatusCodes: e.enhancedStatusCodes ?? true,
    starttls: e.starttls ?? true,
    auth,
  };

  const requireTLS = o.requireTLS ?? false;
  const replies = buildReplies(hostname, ext.enhancedStatusCodes, {
    connectionLimit: limitReply('connectionLimitReply', o.connectionLimitReply ?? '421 4.4.5 Too many connections', ext.enhancedStatusCodes),
    tooManyRecipients: limitReply('tooManyRecipientsReply', o.tooManyRecipientsReply ?? '452 4.5.3 Error: too many recipients', ext.enhancedStatusCodes),
  });

  const maxLineLength = num('maxLineLength', o.maxLineLength, 4096, 8);

  return {
    hostname,
    ext,
    secure: o.secure ?? false,
    requireTLS,
    requireAuth: o.requireAuth ?? false,
    users,
    tokens,
    rtt: num('rtt', o.rtt, 0),
    bandwidth: num('bandwidth', o.bandwidth, 0),
    maxConnections: num('maxConnections', o.maxConnections, Number.POSITIVE_INFINITY),
    maxMessagesPerConnection: num('maxMessagesPerConnection', o.maxMessagesPerConnection, Number.POSITIVE_INFINITY),
    maxRecipients: num('maxRecipients', o.maxRecipients, 1000, 1),
    maxLineLength,
    maxMessageSize: num('maxMessageSize', o.maxMessageSize, size === false ? DEFAULT_SIZE : size, 0),
    idleTimeout: num('idleTimeout', o.idleTimeout, 0),
    rateLimit: num('rateLimit', o.rateLimit, 0),
    seed: num('seed', o.seed, 1, Number.NEGATIVE_INFINITY),
    record: o.record ?? true,
    maxBadCommands: num('maxBadCommands', o.maxBadCommands, 10),
    maxConnectionsPerUser: num('maxConnectionsPerUser', o.maxConnectionsPerUser, Number.POSITIVE_INFINITY, 1),
    inboxLimit: num('inboxLimit', o.inboxLimit, Number.POSITIVE_INFINITY),
    forbidPipeliningAfterData: flag('forbidPipeliningAfterData', o.forbidPipeliningAfterData),
    answerFirstOnly: flag('answerFirstOnly', o.answerFirstOnly),
    echoCredentialsOnFailure: flag('echoCredentialsOnFailure', o.echoCredentialsOnFailure),
    strictBdat: resolveStrictBdat(o.strictBdat, ext.enhancedStatusCodes),
    onMessage: o.onMessage,
    replies,
    ehloClear: buildEhlo(hostname, ext, requireTLS, false),
    ehloSecure: buildEhlo(hostname, ext, requireTLS, true),
  };
}

function buildEhlo(hostname: string, ext: ResolvedExtensions, requireTLS: boolean, secure: boolean): string {
  const keywords: string[] = [];
  if (ext.pipelining) keywords.push('PIPELINING');
  if (ext.size !== false) keywords.push(`SIZE ${ext.size}`);
  if (ext.eightBitMime) keywords.push('8BITMIME');
  if (ext.smtpUtf8) keywords.push('SMTPUTF8');
  if (ext.dsn) keywords.push('DSN');
  if (ext.enhancedStatusCodes) keywords.push('ENHANCEDSTATUSCODES');
  // RFC 3207 §4.2: STARTTLS is not offered once TLS is active.
  if (ext.starttls && !secure) keywords.push('STARTTLS');
  // Like SES and Postfix with smtpd_tls_auth_only: no AUTH before TLS when TLS is required.
  if (ext.auth.length > 0 && (secure || !requireTLS)) keywords.push(`AUTH ${ext.auth.join(' ')}`);
  if (ext.chunking) keywords.push('CHUNKING');
  // RFC 5321 §4.1.1.1: the first line carries the server's name; no enhanced codes in EHLO replies.
  return formatReply(250, undefined, [hostname, ...keywords].join('\n'), false);
}
