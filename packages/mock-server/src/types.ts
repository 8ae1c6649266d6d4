/**
 * Public types of @sluice/mock-server. This file is the contract the core's tests are written against:
 * change it only together with its users.
 */

/** Commands a fault rule can match. `CONNECT` is the greeting; `DOT` is the end of DATA content
 * (the reply to the final `.`); `BDAT` matches every chunk, `BDAT_LAST` only the last one. */
export type FaultCommand =
  | 'CONNECT'
  | 'EHLO'
  | 'HELO'
  | 'STARTTLS'
  | 'AUTH'
  | 'MAIL'
  | 'RCPT'
  | 'DATA'
  | 'DOT'
  | 'BDAT'
  | 'BDAT_LAST'
  | 'RSET'
  | 'NOOP'
  | 'QUIT';

/** What a matching rule does.
 * - `reply`: answer with `reply` instead of the normal reply (a 421 reply also closes the connection,
 *   as RFC 5321 §3.8 says the server does).
 * - `close`: reply 421 (or `reply` when given) and close the connection.
 * - `drop`: destroy the socket without replying to this command.
 * - `drop-in-body`: only for `DATA`/`BDAT`/`BDAT_LAST`: accept the command (354 for DATA), then
 *   destroy the socket after `afterBytes` bytes of content have arrived (default 1).
 * - `stall`: never reply to this command and never read further (the socket stays open).
 * - `delay`: reply normally, `delayMs` later (on top of the simulated network).
 * - `unsolicited`: reply normally, then send `reply` as well, a reply nobody asked for (a broken
 *   server; RFC 5321 §4.2 has exactly one reply per command).
 */
export type FaultAction = 'reply' | 'close' | 'drop' | 'drop-in-body' | 'stall' | 'delay' | 'unsolicited';

export interface FaultRule {
  /** The command the rule applies to. */
  command: FaultCommand;
  action?: FaultAction; // default 'reply'
  /** The reply sent, e.g. `'452 4.5.3 Too many recipients'` or `{ code: 550, enhanced: '5.1.1', text: 'No such user' }`. */
  reply?: string | { code: number; enhanced?: string; text?: string };
  /** Only for RCPT: match these recipients (case-insensitive exact address) or a pattern. */
  recipient?: string | string[] | RegExp;
  /** Only for MAIL: match this sender. */
  sender?: string | RegExp;
  /** Match only the Nth transaction (1-based) counted across the whole server since start/clear(). */
  message?: number;
  /** Match only the Nth transaction (1-based) on each connection. */
  messageOnConnection?: number;
  /** Match only on the Nth connection (1-based) since start/clear(). */
  connection?: number;
  /** Apply with this probability (0..1), drawn from the server's seeded PRNG. */
  probability?: number;
  /** Apply at most this many times in all. */
  times?: number;
  /** For RCPT only: apply once the transaction already has this many accepted recipients
   * (used to simulate "452 too many recipients" after N). */
  afterRecipients?: number;
  /** For `delay`. */
  delayMs?: number;
  /** For `drop-in-body`. */
  afterBytes?: number;
  /** Only for `DOT` / `BDAT_LAST` with `drop`, `close` or `stall`: put the message in the inbox anyway,
   * as a real server may have queued it before the connection died (the client cannot know). Default false. */
  deliver?: boolean;
}

export interface Extensions {
  pipelining?: boolean; // default true
  chunking?: boolean; // default true
  /** Advertised SIZE limit in bytes; false to not advertise (the limit below still applies). Default 50 MiB. */
  size?: number | false;
  eightBitMime?: boolean; // default true
  smtpUtf8?: boolean; // default true
  dsn?: boolean; // default true
  enhancedStatusCodes?: boolean; // default true
  /** STARTTLS offered on a clear connection. Default true. */
  starttls?: boolean;
  /** AUTH mechanisms advertised. Default ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'] when users or tokens are configured, else none. */
  auth?: Array<'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'XOAUTH2'> | false;
}

export type ProfileName =
  | 'default'
  /** Like Amazon SES: no PIPELINING, no CHUNKING, STARTTLS required before MAIL/AUTH, 454 throttling by rate. */
  | 'ses'
  /** Like SocketLabs: at most 20 connections (421 4.4.5 beyond) and 50 messages per connection (421 after). */
  | 'socketlabs'
  /** Like Microsoft 365 SMTP AUTH: 3 connections per account (432 4.3.2 beyond), no CHUNKING. */
  | 'm365'
  /** Like Postfix with defaults: PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8, DSN, ENHANCEDSTATUSCODES, SIZE 10240000. */
  | 'postfix';

export interface MockServerOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Name in the greeting and EHLO reply. Default 'mock.sluice.test'. */
  hostname?: string;
  /** Apply a provider-like profile first; explicit options override it. */
  profile?: ProfileName;
  extensions?: Extensions;
  /** Implicit TLS (like port 465): TLS from the first byte. Default false. */
  secure?: boolean;
  /** Refuse MAIL and AUTH until STARTTLS (530 5.7.0). Default false. */
  requireTLS?: boolean;
  /** Refuse MAIL until authenticated (530 5.7.0). Default false. */
  requireAuth?: boolean;
  /** Users for PLAIN, LOGIN and CRAM-MD5: { username: password }. */
  users?: Record<string, string>;
  /** Valid XOAUTH2 tokens: { username: token | token[] }. */
  tokens?: Record<string, string | string[]>;
  /** Simulated round-trip time in ms. Every byte in each direction is delayed by rtt/2, order kept;
   * accepting a connection costs one extra rtt before the greeting leaves. Default 0. */
  rtt?: number;
  /** Simulated bandwidth in bytes/s per direction per connection. Default unlimited. */
  bandwidth?: number;
  /** Concurrent connections allowed; beyond it a new connection gets `421 4.4.5 Too many connections` and is closed. */
  maxConnections?: number;
  /** Transactions allowed per connection; the next MAIL gets `421 4.4.5 ...` and the connection closes. */
  maxMessagesPerConnection?: number;
  /** Accepted recipients per transaction; beyond it RCPT gets `tooManyRecipientsReply`. Default 1000. */
  maxRecipients?: number;
  /** Reply to a RCPT beyond `maxRecipients`, a 4xx or 5xx: e.g. `'451 4.5.3 Too many recipients'`, or
   * `'552 Too many recipients'` (RFC 5321 §4.5.3.1.10: clients treat it like 452). Default
   * `'452 4.5.3 Error: too many recipients'`. */
  tooManyRecipientsReply?: string;
  /** Like Haraka's anti-smuggling check: a command that arrives in the same read as the final "." of
   * DATA is answered `503 5.5.0 Error: command pipelined after end of DATA` and not executed (the
   * "." itself is accepted normally). Default false. */
  forbidPipeliningAfterData?: boolean;
  /** A server that breaks RFC 2920: of each read, only the first command is executed and answered;
   * the other commands of the read get no reply at all (content after DATA/BDAT is still read). Default false. */
  answerFirstOnly?: boolean;
  /** A broken server whose `535` quotes the credentials it was given (for redaction tests):
   * `535 5.7.8 Authentication failed for <user> with password <password>`. Default false. */
  echoCredentialsOnFailure?: boolean;
  /** Strict BDAT checks and a per-transaction record (`server.transactions`, `server.violations`);
   * `true` or options. Default off. */
  strictBdat?: boolean | StrictBdatOptions;
  /** Longest command line accepted, in bytes including CRLF (RFC 5321 §4.5.3.1.4: at least 512). Default 4096. */
  maxLineLength?: number;
  /** Largest message accepted (552 5.3.4 beyond). Default: the advertised SIZE, or 50 MiB. */
  maxMessageSize?: number;
  /** Close a connection idle this long with `421 4.4.2 Idle timeout`. Default: never. */
  idleTimeout?: number;
  /** Messages accepted per second across the server before `454 4.7.0 Throttling failure` to MAIL. Default unlimited. */
  rateLimit?: number;
  faults?: FaultRule[];
  /** Seed for probabilistic faults. Default 1. */
  seed?: number;
  /** Keep message bytes in the inbox. Default true; turn off for benchmarks. */
  record?: boolean;
  /**
   * TLS material; default: a self-signed certificate for 'localhost' and 127.0.0.1 generated at start.
   * `ticketKeys` (48 bytes): the session ticket keys, so that a server started again with the same keys
   * resumes the sessions of the one before (default: random per server).
   */
  tls?: { key: string; cert: string; ticketKeys?: Buffer };
  /** Consecutive bad commands (500-504 replies) tolerated; the next one gets `421 4.7.0` and the
   * connection closes. Default 10. */
  maxBadCommands?: number;
  /** Concurrent connections per account (the authenticated user, or one shared anonymous account),
   * checked at MAIL; beyond it `connectionLimitReply` and the connection closes. Default unlimited. */
  maxConnectionsPerUser?: number;
  /** Reply for `maxConnections` and `maxConnectionsPerUser`. Default `'421 4.4.5 Too many connections'`. */
  connectionLimitReply?: string;
  /** Keep at most this many messages in `inbox.messages` (the oldest go first; `waitFor` still counts
   * all). Default unlimited. */
  inboxLimit?: number;
  /** Called for every accepted message, after it is in the inbox. */
  onMessage?: (message: ReceivedMessage) => void;
}

export interface StrictBdatOptions {
  /** Refuse every BDAT chunk of these transactions (server-wide sequence, 1-based, like a fault
   * rule's `message`) with `reply`; the octets are consumed (RFC 3030 §2). */
  refuse?: number | number[];
  /** Default `'554 5.6.0 Error: BDAT refused (strict mode)'`. */
  reply?: string;
}

/** One transaction as the strict BDAT mode saw it. */
export interface TransactionRecord {
  /** Server-wide transaction number (as `ReceivedMessage.sequence`). */
  sequence: number;
  connection: number;
  /** On its connection. */
  transaction: number;
  via: 'DATA' | 'BDAT' | null;
  /** Declared sizes of its BDAT chunks, in order. */
  chunks: number[];
  /** Whether its `BDAT ... LAST` (or the final "." of DATA) arrived. */
  last: boolean;
  /** `open` while it runs; `accepted` (in the inbox), `refused` (an error reply ended it), `reset`
   * (RSET/EHLO/STARTTLS), `aborted` (the connection closed). */
  outcome: 'open' | 'accepted' | 'refused' | 'reset' | 'aborted';
  /** The reply that ended it, without CRLF; null while open or when reset/aborted. */
  reply: string | null;
}

/** Something a client did that a strict server holds against it. */
export interface ProtocolViolation {
  connection: number;
  /** `bdat-after-last`: a BDAT arrived after the LAST chunk of a transaction, before a new MAIL
   * (something was resent); `size-mismatch`: what followed a BDAT chunk was not a command (the
   * declared size was shorter than what the client sent). */
  kind: 'bdat-after-last' | 'size-mismatch';
  /** The offending line (at most 80 characters). */
  line: string;
}

/** Server-wide counters since start/clear(). */
export interface ServerStats {
  /** Most connections open at once among those admitted (the refused ones are not counted). */
  peakConnections: number;
  /** Connections refused by `maxConnections` (greeted with `connectionLimitReply` and closed). */
  refusedConnections: number;
}

export interface ReceivedMessage {
  /** Reverse-path as given in MAIL FROM (without angle brackets). */
  from: string;
  /** Accepted forward-paths, in order. */
  to: string[];
  /** ESMTP parameters of MAIL FROM, upper-cased keys (SIZE, BODY, SMTPUTF8, RET, ENVID). */
  mailParams: Record<string, string | true>;
  /** ESMTP parameters of each accepted RCPT (NOTIFY, ORCPT), same order as `to`. */
  rcptParams: Array<Record<string, string | true>>;
  /** The message content as received after removing dot-stuffing (DATA) or as sent (BDAT);
   * null when recording is off. */
  raw: Buffer | null;
  size: number;
  via: 'DATA' | 'BDAT';
  /** 1-based connection number since start/clear(). */
  connection: number;
  /** 1-based transaction number on that connection. */
  transaction: number;
  /** 1-based number across the server. */
  sequence: number;
  secure: boolean;
  user: string | null;
  /** The name the client gave in EHLO or HELO (RFC 5321 §4.1.1.1). */
  helo: string;
  /** The queue id in the 250 reply. */
  id: string;
}

export interface ConnectionStats {
  id: number;
  /** Socket 'data' events seen by the server (after simulated delay): one per round trip the client used. */
  reads: number;
  /** Reply batches written (flushes). */
  writes: number;
  commands: number;
  replies: number;
  /** Commands by verb, e.g. { MAIL: 3, RCPT: 6, DATA: 3 }. */
  byCommand: Record<string, number>;
  transactions: number;
  secure: boolean;
  /** The client resumed an earlier TLS session (RFC 8446 §2.2, RFC 5077): no certificate was sent. */
  tlsResumed: boolean;
  closed: boolean;
}

export interface Inbox {
  readonly messages: ReceivedMessage[];
  /** Resolves once at least `count` messages were accepted in all (since start/clear()). Rejects after `timeoutMs` (default 10 s). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Messages for which `predicate` holds. */
  filter(predicate: (m: ReceivedMessage) => boolean): ReceivedMessage[];
}

export interface MockServer {
  readonly host: string;
  readonly port: number;
  /** e.g. `smtp://127.0.0.1:2525` (or smtps:// when secure). */
  readonly url: string;
  /** PEM of the certificate the server presents; pass as `ca` to clients. */
  readonly ca: string;
  readonly inbox: Inbox;
  /** Per-connection counters, in connection order. */
  readonly connections: ConnectionStats[];
  /** Connections open right now. */
  readonly openConnections: number;
  /** Peak and refused connections since start/clear(). */
  readonly stats: ServerStats;
  /** With `strictBdat`: every transaction since start/clear(), in order of MAIL; else empty. */
  readonly transactions: TransactionRecord[];
  /** With `strictBdat`: violations seen since start/clear(); else empty. */
  readonly violations: ProtocolViolation[];
  /** Replace the fault rules (counters of `times` reset). */
  setFaults(faults: FaultRule[]): void;
  /** Change options at run time: rtt, bandwidth, maxConnections, rateLimit, record, extensions. */
  configure(options: Partial<MockServerOptions>): void;
  /** Empty the inbox and connection stats, reset counters and the PRNG. */
  clear(): void;
  /** Restore the options and faults given at start, then clear(). Used by the vitest helper between tests. */
  reset?(): void;
  /** Stop listening, destroy every connection, resolve when done. */
  close(): Promise<void>;
}
