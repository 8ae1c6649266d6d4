import type { TransactionResult } from '../connection/classify.js';
import { ErrorCodes, type SluiceError } from '../errors.js';

/**
 * The adaptive BDAT window for one server, shared by the pool's connections. RFC 3030 §4.2 lets BDAT
 * commands be pipelined (RFC 2920), so transactions can follow each other without waiting for the
 * previous LAST's reply; not every server copes. The window starts small and grows by one with each
 * clean reply; any anomaly (a reply out of order or unexpected, a 5xx or 503 to a BDAT, a timeout, an
 * outcome left unknown) drops it to one transaction in flight, and an anomaly with one in flight turns
 * BDAT off: DATA from then on, for the pool's life (the pool is one server).
 */
export class BdatWindow {
  static readonly START = 1;
  static readonly MAX = 16;
  /** Bytes of content in flight on one connection beyond which no further transaction is written. */
  static readonly MAX_BYTES = 1 << 20;

  readonly maxBytes = BdatWindow.MAX_BYTES;
  size = BdatWindow.START;
  mode: 'window' | 'single' | 'data' = 'window';

  /** Whether new transactions use BDAT. */
  get chunking(): boolean {
    return this.mode !== 'data';
  }

  /** A BDAT transaction was delivered with every reply as expected. */
  clean(): void {
    if (this.mode === 'window' && this.size < BdatWindow.MAX) this.size++;
  }

  /**
   * A BDAT transaction ended with an anomaly. `windowed`: it was written behind others in flight.
   * Stragglers of a window that already collapsed (windowed, in 'single') count once, with the first.
   */
  anomaly(windowed: boolean): void {
    if (this.mode === 'window') {
      this.mode = 'single';
      this.size = 1;
    } else if (this.mode === 'single' && !windowed) {
      this.mode = 'data';
    }
  }
}

/**
 * Whether a BDAT transaction's end says the server does not cope with the window: a protocol breach
 * (a reply out of order or unexpected), a timeout, a 5xx or 503 where a BDAT or a pipelined MAIL was,
 * an outcome left unknown, or a connection lost under a window. A refused recipient or sender is a
 * verdict on the message, not on the window. Pure.
 */
export function windowAnomaly(result: TransactionResult, windowed: boolean): boolean {
  if (result.type === 'delivered') return false;
  if (result.type === 'unknown') return true;
  const error = result.error;
  const codes = [error.code, (error.cause as SluiceError | undefined)?.code];
  if (codes.includes(ErrorCodes.EPROTOCOL) || codes.includes(ErrorCodes.ETIMEDOUT)) return true;
  const reply = error.responseCode ?? 0;
  if (error.command === 'BDAT' && reply >= 500) return true;
  if (reply === 503) return true;
  return windowed && codes.includes(ErrorCodes.ECONNECTION);
}
