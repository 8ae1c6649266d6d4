/**
 * sluice's `node:diagnostics_channel` channels, in undici's style: named channels with documented
 * message shapes, published only when someone subscribes (`hasSubscribers`), so the hot path pays
 * one property read when nobody listens. The publish points in the pool are one call each into here.
 *
 * Personal data: `sluice:send`'s context carries the envelope (sender and recipient addresses) and the
 * message id, because a subscriber that traces a send may need them (to log a bounce, to correlate);
 * treat them as personal data. Nothing else published here is: connection messages carry the server's
 * host and port, ids, codes and counts. No channel ever carries a credential or message content.
 */
import dc from 'node:diagnostics_channel';
import type { SluiceError } from './errors.js';
import type { SendResult } from './message.js';

/** The server a pool sends to. */
export interface DiagnosticsServer {
  host: string;
  port: number;
  /** Implicit TLS (smtps). */
  secure: boolean;
}

/** The context object of the `sluice:send` TracingChannel (one object per send, shared by its five events). */
export interface SendContext {
  /** The Pool that sends (compare with `===`; read `pool.stats` for gauges). */
  pool: object;
  /** `send` or `sendMail`. */
  operation: 'send' | 'sendMail';
  server: DiagnosticsServer;
  /** Personal data: the envelope as given (for sendMail, as nodemailer works it out), or undefined when it could not be read. */
  envelope: { from: string; to: string[] } | undefined;
  /** Number of recipients (0 when the envelope could not be read). */
  recipients: number;
  /** Set at asyncEnd when the message was delivered. */
  result?: SendResult;
  /** Set at error (then asyncEnd) when it was not: a SluiceError with `outcome`, `code`, `responseCode`… */
  error?: unknown;
}

/** `sluice:connection:connect`: a connection is open and set up (greeting, EHLO, STARTTLS, AUTH done). */
export interface ConnectMessage {
  pool: object;
  server: DiagnosticsServer;
  connectionId: number;
  encrypted: boolean;
  /** The TLS handshake resumed an earlier connection's session (the `tlsResumption` option). */
  tlsResumed: boolean;
  /** The server's extensions (EHLO keywords), e.g. `['PIPELINING', 'CHUNKING', 'SIZE']`. */
  extensions: string[];
}

/** `sluice:connection:close`: an open connection closed; `error` is null for an orderly close (QUIT). */
export interface CloseMessage {
  pool: object;
  server: DiagnosticsServer;
  connectionId: number;
  error: SluiceError | null;
}

/**
 * `sluice:connection:error`: a connection failed: `phase: 'connect'` when opening or setting it up failed
 * (no `connectionId` is known to the pool then: the connection never opened), `'open'` when an open one was
 * lost with an error (a `sluice:connection:close` with the same error follows).
 */
export interface ConnectionErrorMessage {
  pool: object;
  server: DiagnosticsServer;
  phase: 'connect' | 'open';
  connectionId: number | null;
  error: SluiceError;
}

/**
 * `sluice:pool:wait`: the scheduler left messages queued: `rate-limit` (the token bucket is empty;
 * `delay` ms until the next token), `connect-backoff` (connecting failed; `delay` ms until the next attempt).
 */
export interface WaitMessage {
  pool: object;
  server: DiagnosticsServer;
  reason: 'rate-limit' | 'connect-backoff';
  delay: number;
  queued: number;
}

/**
 * `sluice:pool:throttle`: the server refused a connection as one too many (421/432): the limit was
 * lowered to what the pool was serving, or (a refusal right after one of ours closed) new attempts pause.
 */
export interface ThrottleMessage {
  pool: object;
  server: DiagnosticsServer;
  /** The limit now in force (`pool.stats.maxConnections`). */
  limit: number;
  /** Milliseconds new attempts are paused (0: none, the limit says how many). */
  pause: number;
  /** The configured ceiling the pool probes back up to. */
  maxConnections: number;
  responseCode: number | undefined;
}

export const channels = {
  send: dc.tracingChannel<object, SendContext>('sluice:send'),
  connect: dc.channel('sluice:connection:connect'),
  close: dc.channel('sluice:connection:close'),
  connectionError: dc.channel('sluice:connection:error'),
  wait: dc.channel('sluice:pool:wait'),
  throttle: dc.channel('sluice:pool:throttle'),
} as const;

/** The names, for subscribers: `diagnostics_channel.subscribe(CHANNELS.connect, fn)`. */
export const CHANNELS = {
  send: 'sluice:send',
  connect: 'sluice:connection:connect',
  close: 'sluice:connection:close',
  connectionError: 'sluice:connection:error',
  wait: 'sluice:pool:wait',
  throttle: 'sluice:pool:throttle',
} as const;

/** What the pool tells about itself for its messages. */
interface PoolSource {
  readonly options: { readonly connection: { readonly host: string; readonly port: number; readonly secure: boolean } };
}

const servers = new WeakMap<object, DiagnosticsServer>();
function server(pool: PoolSource): DiagnosticsServer {
  let s = servers.get(pool);
  if (!s) {
    const { host, port, secure } = pool.options.connection;
    s = { host, port, secure };
    servers.set(pool, s);
  }
  return s;
}

/** A message's envelope as the send context carries it (a copy: `to` as given). */
export function envelopeOf(message: { envelope: { from: string; to: string[] } }): SendContext['envelope'] {
  return { from: message.envelope.from, to: [...message.envelope.to] };
}

/** Whether anything subscribes to `sluice:send` (read before building a send's context). */
export function tracingSends(): boolean {
  return channels.send.hasSubscribers;
}

/**
 * Runs `run` (one send) inside the `sluice:send` TracingChannel when it has subscribers, else calls it
 * directly. `envelope` is read only when someone listens (for sendMail it composes the envelope).
 */
export function traceSend<T>(
  pool: PoolSource,
  operation: SendContext['operation'],
  envelope: () => SendContext['envelope'],
  run: () => Promise<T>,
): Promise<T> {
  if (!channels.send.hasSubscribers) return run();
  let env: SendContext['envelope'];
  try {
    env = envelope();
  } catch {
    env = undefined; // bad input: send() itself rejects with the typed error, traced as the error event
  }
  const context: SendContext = { pool, operation, server: server(pool), envelope: env, recipients: env?.to?.length ?? 0 };
  return channels.send.tracePromise(run, context) as Promise<T>;
}

function publish<M>(channel: dc.Channel, make: () => M): void {
  if (channel.hasSubscribers) channel.publish(make());
}

export function publishConnect(pool: PoolSource, connectionId: number, encrypted: boolean, tlsResumed: boolean, extensions: Iterable<string>): void {
  publish<ConnectMessage>(channels.connect, () => ({ pool, server: server(pool), connectionId, encrypted, tlsResumed, extensions: [...extensions] }));
}

/** A connection closed: `close`, and before it `error` (phase 'open') when it was lost with an error. */
export function publishClose(pool: PoolSource, connectionId: number, error: SluiceError | null): void {
  if (error) publish<ConnectionErrorMessage>(channels.connectionError, () => ({ pool, server: server(pool), phase: 'open', connectionId, error }));
  publish<CloseMessage>(channels.close, () => ({ pool, server: server(pool), connectionId, error }));
}

export function publishConnectError(pool: PoolSource, error: SluiceError): void {
  publish<ConnectionErrorMessage>(channels.connectionError, () => ({ pool, server: server(pool), phase: 'connect', connectionId: null, error }));
}

export function publishWait(pool: PoolSource, reason: WaitMessage['reason'], delay: number, queued: number): void {
  publish<WaitMessage>(channels.wait, () => ({ pool, server: server(pool), reason, delay: Math.max(0, delay), queued }));
}

export function publishThrottle(pool: PoolSource, limit: number, maxConnections: number, responseCode: number | undefined, pause: number): void {
  publish<ThrottleMessage>(channels.throttle, () => ({ pool, server: server(pool), limit, pause, maxConnections, responseCode }));
}

/** Handlers for `subscribeDiagnostics()`: any subset of sluice's channels. */
export interface DiagnosticsSubscribers {
  /** `sluice:send`'s events (the TracingChannel's start, end, asyncStart, asyncEnd, error). */
  send?: Partial<Record<'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error', (context: SendContext) => void>>;
  connect?: (message: ConnectMessage) => void;
  close?: (message: CloseMessage) => void;
  connectionError?: (message: ConnectionErrorMessage) => void;
  wait?: (message: WaitMessage) => void;
  throttle?: (message: ThrottleMessage) => void;
}

const noop = () => {};

/** Subscribes to sluice's channels (every pool in the process) with typed handlers; returns the unsubscribe. */
export function subscribeDiagnostics(subscribers: DiagnosticsSubscribers): () => void {
  const stops: Array<() => void> = [];
  if (subscribers.send) {
    const s = subscribers.send;
    const handlers = { start: s.start ?? noop, end: s.end ?? noop, asyncStart: s.asyncStart ?? noop, asyncEnd: s.asyncEnd ?? noop, error: s.error ?? noop };
    channels.send.subscribe(handlers);
    stops.push(() => channels.send.unsubscribe(handlers));
  }
  for (const key of ['connect', 'close', 'connectionError', 'wait', 'throttle'] as const) {
    const fn = subscribers[key] as ((message: unknown) => void) | undefined;
    if (!fn) continue;
    const handler = (message: unknown) => fn(message);
    dc.subscribe(CHANNELS[key], handler);
    stops.push(() => dc.unsubscribe(CHANNELS[key], handler));
  }
  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}
