import { isAscii } from 'node:buffer';
import { lineTooLongError, MAX_LINE_LENGTH } from './line-length.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const LF_BUF = Buffer.from('\n');
const CRLF_BUF = Buffer.from('\r\n');
const DOT_BUF = Buffer.from('.');
/** RFC 5321 §4.1.1.4: the content ends with CRLF "." CRLF. */
export const DATA_TERMINATOR = Buffer.from('.\r\n');
const CRLF_TERMINATOR = Buffer.from('\r\n.\r\n');
/** A bare CR at the very end of the content: its LF, then the terminator. */
const LF_TERMINATOR = Buffer.from('\n.\r\n');
const EMPTY = Buffer.alloc(0);

export { MAX_LINE_LENGTH } from './line-length.js';

/**
 * Streaming content encoder for DATA and BDAT.
 *
 * - Every line ends in CRLF. A bare LF or a bare CR becomes CRLF: RFC 5321 §2.3.8 forbids both, and
 *   bare line ends are the raw material of "SMTP smuggling" (a "\n.\n" or "\r.\r" that one server
 *   reads as the end of DATA and the next does not), so none ever leaves sluice. Servers that enforce
 *   it (Postfix's `smtpd_forbid_bare_newline`) would reject or rewrite them anyway.
 * - A line longer than 998 octets is refused with EMESSAGE before any byte of it is returned: it is
 *   never written (RFC 5321 §4.5.3.1.6). The count is of the message's own line, before dot-stuffing.
 * - With `dotStuff` (DATA only), a line that starts with "." gets one more "." (RFC 5321 §4.5.2). BDAT
 *   content is sent as is otherwise (RFC 3030 §2): no stuffing, no terminator.
 *
 * A CR at the end of a chunk is written at once; whether it was bare is known from the next chunk's
 * first byte (an LF is then inserted before that chunk's bytes), or at the end: `terminator()` for
 * DATA, `end()` for BDAT. So a CRLF or a "\n." split over two chunks is seen, and chunks that need no
 * change are returned as they are (no copy).
 */
export class BodyEncoder {
  private atLineStart = true; // content starts at the beginning of a line
  /** The last byte returned was a CR whose LF is not known yet. */
  private pendingCr = false;
  /** Octets of the current line so far. */
  private column = 0;
  private line = 1;
  private bytes = 0;

  constructor(private readonly dotStuff: boolean) {}

  /** Bytes returned so far by encode() and end() (the DATA terminator is not counted). */
  get size(): number {
    return this.bytes;
  }

  encode(chunk: Uint8Array): Buffer {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const len = buf.length;
    if (len === 0) return buf;
    let parts: Buffer[] | null = null;
    let from = 0; // input before `from` is already in `parts`
    let i = 0; // start of the current line's content
    if (this.pendingCr) {
      this.pendingCr = false;
      if (buf[0] === LF) i = 1; // the CRLF was split across chunks
      else parts = [LF_BUF]; // a bare CR: complete it
    }
    let nextCr = buf.indexOf(CR, i);
    let nextLf = buf.indexOf(LF, i);
    for (;;) {
      if (this.dotStuff && this.atLineStart && i < len && buf[i] === DOT) {
        parts ??= [];
        parts.push(buf.subarray(from, i), DOT_BUF);
        from = i;
      }
      const end = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
      const lineEnd = end === -1 ? len : end;
      if (this.column + (lineEnd - i) > MAX_LINE_LENGTH) this.tooLong();
      if (end === -1) {
        this.column += len - i;
        if (len > i) this.atLineStart = false;
        break;
      }
      this.column = 0;
      this.line++;
      this.atLineStart = true;
      if (buf[end] === LF) {
        // A bare LF.
        parts ??= [];
        parts.push(buf.subarray(from, end), CRLF_BUF);
        from = end + 1;
        i = end + 1;
        nextLf = buf.indexOf(LF, i);
        continue;
      }
      // A CR: a CRLF, a bare CR, or a CR whose next byte is in the next chunk.
      if (end + 1 === len) {
        this.pendingCr = true;
        i = len;
        break;
      }
      if (buf[end + 1] === LF) {
        i = end + 2;
        nextLf = buf.indexOf(LF, i);
      } else {
        parts ??= [];
        parts.push(buf.subarray(from, end + 1), LF_BUF);
        from = end + 1;
        i = end + 1;
      }
      nextCr = buf.indexOf(CR, i);
    }
    if (parts === null) {
      this.bytes += len;
      return buf;
    }
    parts.push(buf.subarray(from));
    const out = Buffer.concat(parts);
    this.bytes += out.length;
    return out;
  }

  /** BDAT: the bytes that complete the content (an LF after a final bare CR), or none. */
  end(): Buffer {
    if (!this.pendingCr) return EMPTY;
    this.pendingCr = false;
    this.bytes++;
    return LF_BUF;
  }

  /** DATA: the bytes that end the content: CRLF (when the content did not end with one) and ".\r\n". */
  terminator(): Buffer {
    if (this.pendingCr) return LF_TERMINATOR;
    return this.atLineStart ? DATA_TERMINATOR : CRLF_TERMINATOR;
  }

  private tooLong(): never {
    throw lineTooLongError(this.line);
  }
}

/** Encodes a whole body at once. Returns the input itself when nothing needs to change. */
export function encodeBody(body: Buffer, dotStuff: boolean): Buffer {
  const encoder = new BodyEncoder(dotStuff);
  const out = encoder.encode(body);
  const tail = encoder.end();
  return tail.length === 0 ? out : Buffer.concat([out, tail]);
}

/** True when the content has a byte above 0x7F (needs BODY=8BITMIME, RFC 6152). */
export function has8bit(body: Buffer): boolean {
  return !isAscii(body); // native, SIMD in recent Node versions
}
