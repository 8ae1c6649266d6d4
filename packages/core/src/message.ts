import { Readable } from 'node:stream';
import { ErrorCodes, SluiceError, abortError } from './errors.js';
import { BodyEncoder, encodeBody, has8bit } from './protocol/body.js';
import { type DsnOptions, type Envelope, needsSmtpUtf8, validateEnvelope } from './protocol/commands.js';
import type { Reply } from './protocol/reply.js';
import { Spool, replay } from './spool.js';
import { utf8Bytes } from './utf8.js';

/** Message content: bytes, a string (sent as UTF-8), or a stream of bytes (never buffered whole). */
export type Body = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

export interface Message {
  envelope: Envelope;
  /** The complete RFC 5322 message: headers, blank line, body. */
  body: Body;
  /** Reported back in the result; taken from the Message-ID header of a Buffer/string body when absent. */
  messageId?: string;
}

/** What happened to one recipient. */
export interface RecipientResult {
  address: string;
  code: number;
  enhancedCode: string | null;
  response: string;
}

export interface Timings {
  /** When send() was called (ms since epoch). */
  queued: number;
  /** When the last attempt's first command was written. */
  started: number;
  /** When the outcome was known. */
  settled: number;
  /** settled - queued. */
  total: number;
}

/** The result of a delivered message: at least one recipient accepted and the content acknowledged. */
export interface SendResult {
  outcome: 'delivered';
  envelope: { from: string; to: string[] };
  messageId: string | undefined;
  /** Recipients the server accepted. */
  accepted: RecipientResult[];
  /** Recipients refused permanently (5xx). */
  rejected: RecipientResult[];
  /** Recipients refused transiently (4xx other than "too many recipients"); not retried. */
  pending: RecipientResult[];
  /** The reply to the final "." or BDAT LAST of the last transaction. */
  response: string;
  responseCode: number;
  enhancedCode: string | null;
  /** The id of the connection that delivered it (the last one, when it took several transactions). */
  connectionId: number;
  /** Transactions attempted for this message (retries and "too many recipients" splits included). */
  attempts: number;
  timings: Timings;
}

/**
 * A message's content in its wire forms, owned by the message: the encodings are made once, on first
 * use, and shared by every attempt. Nothing outside this class writes to it. A stream body is spooled
 * as it is read (spool.ts); once read to its end it becomes a Buffer body (in memory) or a file
 * replayed for each later transaction.
 */
export class PreparedContent {
  private data: Buffer[] | undefined;
  private whole: Buffer | null;
  private source: AsyncIterable<Uint8Array> | null;
  private copy: Spool | null = null;
  private file: string | null = null;

  constructor(
    /** Whole content, or null for a stream. */
    body: Buffer | null,
    /** A stream body (null for a Buffer body). It can be read once. */
    stream: AsyncIterable<Uint8Array> | null,
    /** CRLF-normalised content, not stuffed: what BDAT sends (RFC 3030 §2) and what SIZE counts. */
    private bdat: Buffer | undefined,
  ) {
    this.whole = body;
    this.source = stream;
  }

  /** Whole content, or null for a stream (a stream spooled to memory becomes a Buffer). */
  get body(): Buffer | null {
    return this.whole;
  }

  /** The stream to read for this transaction: the user's the first time, the spooled file after. */
  get stream(): AsyncIterable<Uint8Array> | null {
    return this.file ? replay(this.file) : this.source;
  }

  /** It can be sent again: a Buffer body, or a stream read to its end and spooled. */
  get replayable(): boolean {
    return this.whole !== null || this.file !== null;
  }

  /** Keeps a copy of a piece of the user's stream, as it is read (not when a spooled file is replayed). */
  async spool(chunk: Uint8Array): Promise<void> {
    if (this.file || !this.source) return;
    this.copy ??= new Spool();
    await this.copy.write(chunk);
  }

  /** The user's stream was read to its end: the copy becomes the content. */
  async spoolEnd(): Promise<void> {
    if (this.file || !this.source) return;
    const copy = this.copy ?? new Spool();
    this.copy = copy;
    const kept = await copy.end();
    this.source = null;
    if (typeof kept === 'string') this.file = kept;
    else this.whole = kept;
  }

  /** Drops the spooled copy (its temporary file). */
  dispose(): void {
    this.copy?.dispose();
    this.copy = null;
  }

  /** DATA content, dot-stuffed, plus its terminator (RFC 5321 §4.5.2). */
  dataChunks(): Buffer[] {
    if (!this.data) {
      const enc = new BodyEncoder(true);
      const encoded = enc.encode(this.body!);
      this.data = [encoded, enc.terminator()];
    }
    return this.data;
  }

  /** BDAT content: CRLF-normalised, not stuffed (RFC 3030 §2). */
  bdatBody(): Buffer {
    this.bdat ??= encodeBody(this.body!, false);
    return this.bdat;
  }
}

/** What a finished message still holds: nothing (its content is dropped as soon as it ends). */
export const NO_CONTENT = new PreparedContent(null, null, undefined);

/** A message ready for the wire: checked, its content prepared. Internal. */
export interface PreparedMessage {
  from: string;
  /** The recipients of the next transaction. */
  to: string[];
  /** Recipients for later transactions (beyond maxRecipientsPerTransaction); the pool's Job keeps them. */
  readonly rest?: readonly string[];
  dsn: DsnOptions | undefined;
  /** SIZE= value, when known. */
  size: number | undefined;
  /** true: has 8-bit bytes; false: 7-bit; null: unknown (a stream). */
  eightBit: boolean | null;
  smtpUtf8: boolean;
  content: PreparedContent;
  messageId: string | undefined;
}

/** A stream body: a Readable or any AsyncIterable of bytes. */
export function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

const MESSAGE_ID = /^message-id:[ \t]*(<[^>\r\n]+>)/im;

function findMessageId(body: Buffer): string | undefined {
  // Only the header section, and only its first 16 KiB: a cheap best effort.
  let end = body.indexOf('\r\n\r\n');
  if (end === -1) end = body.indexOf('\n\n');
  const head = body.toString('latin1', 0, Math.min(end === -1 ? body.length : end, 16384));
  const match = MESSAGE_ID.exec(head);
  if (!match) return undefined;
  // Cut from the bytes, not from `head`: a slice of `head` would keep the whole header section alive
  // for as long as the message is queued (latin1: one character per byte, so the offsets agree).
  const id = match[1]!;
  const at = match.index + match[0].length - id.length;
  return body.toString('latin1', at, at + id.length);
}

/** Checks a message and turns it into its wire-ready form. Throws EENVELOPE/EMESSAGE before anything is sent. */
export function prepareMessage(message: Message): PreparedMessage {
  if (!message || typeof message !== 'object') {
    throw new SluiceError(ErrorCodes.EMESSAGE, 'send() needs a message { envelope, body }', { permanent: true });
  }
  validateEnvelope(message.envelope);
  const { envelope } = message;
  let body: Buffer | null = null;
  let stream: AsyncIterable<Uint8Array> | null = null;
  const raw = message.body;
  if (typeof raw === 'string') body = utf8Bytes(raw);
  else if (Buffer.isBuffer(raw)) body = raw;
  else if (raw instanceof Uint8Array) body = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  else if (raw instanceof Readable || isAsyncIterable(raw)) stream = raw as AsyncIterable<Uint8Array>;
  else throw new SluiceError(ErrorCodes.EMESSAGE, 'message.body must be a Buffer, Uint8Array, string, Readable or AsyncIterable', { permanent: true });
  if (body && body.length === 0) throw new SluiceError(ErrorCodes.EMESSAGE, 'message.body is empty', { permanent: true });
  if (message.messageId !== undefined && (typeof message.messageId !== 'string' || /[\r\n]/.test(message.messageId))) {
    throw new SluiceError(ErrorCodes.EMESSAGE, 'message.messageId must be a string without CR or LF', { permanent: true });
  }
  // CRLF-normalised once, here: RFC 1870's SIZE counts the message as sent, with CRLF line ends, and
  // BDAT sends exactly these bytes. (Usually no copy: a body with CRLF ends comes back as is.)
  const normalised = body ? encodeBody(body, false) : undefined;
  return {
    from: envelope.from,
    to: [...envelope.to],
    dsn: envelope.dsn,
    size: envelope.size ?? normalised?.length,
    eightBit: body ? has8bit(body) : null,
    smtpUtf8: needsSmtpUtf8(envelope),
    content: new PreparedContent(body, stream, normalised),
    messageId: message.messageId ?? (body ? findMessageId(body) : undefined),
  };
}

export function recipientResult(address: string, reply: Reply): RecipientResult {
  return { address, code: reply.code, enhancedCode: reply.enhanced, response: reply.lines.join('\n') };
}

/**
 * Reads a stream into one Buffer; past `max` bytes, returns the bytes read so far followed by the rest
 * of the stream (sent as a stream). An abort while reading stops it (EABORT): a Readable is destroyed
 * at once, even while it waits for data.
 */
export async function readUpTo(stream: AsyncIterable<Uint8Array>, max: number, signal: AbortSignal | undefined): Promise<Buffer | AsyncIterable<Uint8Array>> {
  const destroy = (stream as { destroy?: (error: Error) => void }).destroy;
  const onAbort = () => (typeof destroy === 'function' ? destroy.call(stream, abortError(signal!)) : undefined);
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const it = stream[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let size = 0;
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      if (signal?.aborted) {
        await it.return?.();
        throw abortError(signal);
      }
      head.push(r.value);
      size += r.value.length;
      if (size > max) return concat(head, it);
    }
  } catch (cause) {
    if (cause instanceof SluiceError) throw cause;
    throw new SluiceError(ErrorCodes.EMESSAGE, `The message body stream failed: ${(cause as Error)?.message ?? cause}`, {
      cause,
      permanent: true,
      outcome: 'rejected',
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return Buffer.concat(head, size);
}

async function* concat(head: Uint8Array[], it: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* head;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  } finally {
    await it.return?.(); // ends the source when the writer stops early
  }
}
