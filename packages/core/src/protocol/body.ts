import { isAscii } from 'node:buffer';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CR_BUF = Buffer.from('\r');
const DOT_BUF = Buffer.from('.');
/** RFC 5321 §4.1.1.4: the content ends with CRLF "." CRLF. */
export const DATA_TERMINATOR = Buffer.from('.\r\n');
const CRLF_TERMINATOR = Buffer.from('\r\n.\r\n');

/**
 * Streaming content encoder for DATA and BDAT.
 *
 * - Bare LF becomes CRLF: RFC 5321 §2.3.8 forbids a bare LF, and servers that enforce it (Postfix's
 *   `smtpd_forbid_bare_newline`, since the 2023 "SMTP smuggling" reports) reject or rewrite it.
 * - With `dotStuff` (DATA only), a line that starts with "." gets one more "." (RFC 5321 §4.5.2). BDAT
 *   content is sent as is (RFC 3030 §2): no stuffing, no terminator.
 *
 * The encoder keeps one byte of state across chunks, so a CRLF or a "\n." split over two chunks is seen.
 * Chunks that need no change are returned as they are (no copy).
 */
export class BodyEncoder {
  private prev = LF; // content starts at the beginning of a line
  private bytes = 0;

  constructor(private readonly dotStuff: boolean) {}

  /** Bytes written so far (after encoding). */
  get size(): number {
    return this.bytes;
  }

  encode(chunk: Uint8Array): Buffer {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const len = buf.length;
    if (len === 0) return buf;
    let parts: Buffer[] | null = null;
    let from = 0;
    // A dot at the very start of this chunk when the previous chunk ended a line.
    if (this.dotStuff && this.prev === LF && buf[0] === DOT) {
      parts = [DOT_BUF];
    }
    let i = buf.indexOf(LF);
    while (i !== -1) {
      const before = i > 0 ? buf[i - 1] : this.prev;
      if (before !== CR) {
        parts ??= [];
        parts.push(buf.subarray(from, i), CR_BUF);
        from = i;
      }
      if (this.dotStuff && i + 1 < len && buf[i + 1] === DOT) {
        parts ??= [];
        parts.push(buf.subarray(from, i + 1), DOT_BUF);
        from = i + 1;
      }
      i = buf.indexOf(LF, i + 1);
    }
    this.prev = buf[len - 1]!;
    if (parts === null) {
      this.bytes += len;
      return buf;
    }
    parts.push(buf.subarray(from));
    const out = Buffer.concat(parts);
    this.bytes += out.length;
    return out;
  }

  /** The bytes that end DATA content: CRLF (when the content did not end with one) and ".\r\n". */
  terminator(): Buffer {
    // A final LF always went out as CRLF (a bare one got its CR), so the last input byte decides.
    return this.bytes === 0 || this.prev === LF ? DATA_TERMINATOR : CRLF_TERMINATOR;
  }
}

/** Encodes a whole body at once. Returns the input itself when nothing needs to change. */
export function encodeBody(body: Buffer, dotStuff: boolean): Buffer {
  return new BodyEncoder(dotStuff).encode(body);
}

/** True when the content has a byte above 0x7F (needs BODY=8BITMIME, RFC 6152). */
export function has8bit(body: Buffer): boolean {
  return !isAscii(body); // native, SIMD in recent Node versions
}

