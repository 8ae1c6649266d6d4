import type { SluiceError } from '../errors.js';
import type { SendResult } from '../message.js';
import type { Capabilities } from '../protocol/capabilities.js';

export interface SendOptions {
  /** Aborts the send while it is queued. Once its envelope is on the wire a message is committed. */
  signal?: AbortSignal;
  /**
   * For a stream body: read a stream of up to this many bytes into memory before queueing it, so that
   * it can be split across transactions ("too many recipients") and retried like a Buffer. A longer
   * stream is sent as a stream (what was read first, then the rest): sent once, never retried after
   * it started. Default 0 (streams are never buffered).
   */
  bufferUpTo?: number;
}

export interface VerifyOptions {
  /** Give up after this many ms: rejects with ETIMEDOUT and cuts the connection. */
  timeout?: number;
  /** Cuts the verification short: EABORT. */
  signal?: AbortSignal;
}

export interface VerifyResult {
  capabilities: Capabilities;
  encrypted: boolean;
  authenticated: boolean;
}

export interface PoolStats {
  /** Connections open or opening. */
  connections: number;
  connecting: number;
  idle: number;
  busy: number;
  /** The connection limit in force (lowered after "too many connections" refusals). */
  maxConnections: number;
  /** Messages waiting for a connection (retries waiting for their delay, and sendMail() calls still composing, included). */
  queued: number;
  /** Messages on the wire. */
  inFlight: number;
  delivered: number;
  rejected: number;
  failed: number;
  unknown: number;
  retries: number;
  /** Connections whose TLS handshake resumed an earlier session (see the `tlsResumption` option). */
  tlsResumed: number;
}

/** A PoolStats with every count at zero (for a pool that does not exist yet, or a test double). */
export function emptyStats(maxConnections = 0): PoolStats {
  return {
    connections: 0,
    connecting: 0,
    idle: 0,
    busy: 0,
    maxConnections,
    queued: 0,
    inFlight: 0,
    delivered: 0,
    rejected: 0,
    failed: 0,
    unknown: 0,
    retries: 0,
    tlsResumed: 0,
  };
}

export interface PoolEvents {
  /** `tlsResumed`: the TLS handshake resumed an earlier connection's session. */
  connect: [info: { connectionId: number; capabilities: Capabilities; encrypted: boolean; tlsResumed: boolean }];
  close: [info: { connectionId: number; error: SluiceError | null }];
  /** A connection could not be opened. */
  'connect-error': [error: SluiceError];
  sent: [result: SendResult];
  /** A message ended rejected, failed or unknown. */
  'send-error': [error: SluiceError];
  retry: [info: { attempt: number; delay: number; error: SluiceError }];
  /** The queue fell below highWaterMark after reaching it. */
  drain: [];
  /** Nothing queued and nothing in flight. */
  idle: [];
}
