import { ErrorCodes, SluiceError } from '../errors.js';
import { BodyEncoder } from '../protocol/body.js';
import { isTooManyRecipients } from './classify.js';
import type { Chunk } from './socket.js';
import type { Timeouts } from './timeouts.js';
import { type ExpectKind, expectDot, type Transaction } from './transaction.js';

/** What writing a stream body needs from its connection. */
export interface StreamHost {
  /** False once the connection closed: stop reading the stream. */
  readonly open: boolean;
  readonly chunkSize: number;
  readonly timeouts: Timeouts;
  /** `stop` runs if the connection closes while the body is read (a timeout, the server, destroy()). */
  onClose(stop: (() => void) | null): void;
  /** Waiting for the next piece of the body (true) or not (false): the data-block timeout runs meanwhile. */
  waitingForBody(waiting: boolean): void;
  expect(kind: ExpectKind, txn: Transaction, index: number, timeout: number): void;
  /** Writes, and waits for 'drain' when the socket asks (RFC 5321 §4.5.3.2.5: the data-block timeout applies). */
  writeAndDrain(chunks: Chunk[]): Promise<void>;
  /** The stream failed (or could not be spooled): the message ends and the connection is dropped. */
  failed(txn: Transaction, error: SluiceError): void;
  /** DATA: the content is written, "." is next (in `out`). */
  contentWritten(out: Chunk[]): void;
  /** BDAT: every chunk is written (or a chunk was refused). */
  chunksWritten(txn: Transaction): void;
}

/** Stops a stream that will not be read to its end (a Readable waiting for data ends at once). */
function stop(stream: AsyncIterable<Uint8Array>, it: AsyncIterator<Uint8Array>): void {
  const destroy = (stream as { destroy?: () => void }).destroy;
  if (typeof destroy === 'function') destroy.call(stream);
  // An async generator suspended in an await finishes that await first; the promise is not awaited.
  it.return?.().catch(() => {});
}

/**
 * Writes a stream body as it is read: dot-stuffed after DATA's 354, or in BDAT chunks of exactly
 * `chunkSize` bytes (RFC 3030). Nothing else is written on the connection meanwhile. When the message
 * needs another transaction (recipients deferred by "too many recipients", or beyond
 * maxRecipientsPerTransaction), what is read is also spooled by the message's content (message.ts), so
 * that a stream read to its end goes to them too; one cut before its end cannot (`streamed`).
 */
export async function writeStreamBody(host: StreamHost, txn: Transaction): Promise<void> {
  const content = txn.job.content;
  const stream = content.stream!;
  txn.streamed = true;
  const encoder = new BodyEncoder(!txn.chunking);
  const { chunkSize, timeouts } = host;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flushBdat = async (last: boolean) => {
    const body = pendingBytes === 0 ? Buffer.alloc(0) : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    if (last) txn.committed = true;
    host.expect(last ? 'BDAT_LAST' : 'BDAT', txn, 0, last ? timeouts.dataEnd : timeouts.dataBlock);
    await host.writeAndDrain([`BDAT ${body.length}${last ? ' LAST' : ''}\r\n`, body]);
  };
  // Kept only when another transaction will need it: every RCPT reply is in before the content starts
  // (the 354 follows them; a BDAT stream waits for them), so it is known now.
  const keep = (txn.job.rest?.length ?? 0) > 0 || txn.rcpt.some((r) => r === null || isTooManyRecipients(r));
  const it = stream[Symbol.asyncIterator]();
  // A stream waiting for data is ended when the connection closes (no race per chunk: that would
  // leave one reaction per chunk on a promise that lives as long as the connection).
  host.onClose(() => stop(stream, it));
  try {
    for (;;) {
      host.waitingForBody(true);
      const next = await it.next();
      host.waitingForBody(false);
      if (!host.open) return stop(stream, it);
      if (next.done) {
        // Read to its end: from now on the content can be sent again (message.ts).
        if (keep) await content.spoolEnd();
        break;
      }
      const chunk = next.value;
      if (keep) await content.spool(chunk);
      if (!host.open) return stop(stream, it);
      if (txn.bdatError) {
        stop(stream, it);
        break;
      }
      const encoded = encoder.encode(chunk);
      if (!txn.chunking) {
        await host.writeAndDrain([encoded]);
        continue;
      }
      pending.push(encoded);
      pendingBytes += encoded.length;
      // Chunks of exactly chunkSize: a large piece of the stream is cut, not sent whole.
      while (pendingBytes >= chunkSize && !txn.bdatError) {
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        pending = [all.subarray(0, chunkSize)];
        const restBytes = all.subarray(chunkSize);
        pendingBytes = chunkSize;
        await flushBdat(false);
        pending = restBytes.length ? [restBytes] : [];
        pendingBytes = restBytes.length;
      }
    }
  } catch (cause) {
    stop(stream, it);
    // Stopped because the connection closed: the transaction was settled with it.
    if (!host.open || txn.done) return;
    // The user's stream failed in the middle of the content. Without the final "." the server
    // discards what it got (RFC 5321 §4.1.1.4), so dropping the connection loses nothing else:
    // no other transaction is in flight while a stream is written.
    // The encoder's own refusal (a line over 998 octets) is already the error to report.
    const message = `The message body stream failed: ${(cause as Error)?.message ?? cause}`;
    host.failed(txn, cause instanceof SluiceError ? cause : new SluiceError(ErrorCodes.EMESSAGE, message, { cause, permanent: true, command: 'DATA' }));
    return;
  } finally {
    host.onClose(null);
  }
  if (!host.open) return;
  if (txn.chunking) {
    if (!txn.bdatError) {
      // A final bare CR gets its LF here (BDAT has no terminator to carry it).
      const tail = encoder.end();
      if (tail.length) {
        pending.push(tail);
        pendingBytes += tail.length;
      }
      await flushBdat(true);
    }
    host.chunksWritten(txn);
    return;
  }
  txn.committed = true;
  expectDot(host.expect, txn, timeouts.dataEnd);
  host.contentWritten([encoder.terminator()]);
}
