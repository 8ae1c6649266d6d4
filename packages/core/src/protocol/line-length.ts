/**
 * The line-length rule of RFC 5321 §4.5.3.1.6 (and RFC 5322 §2.1.1): at most 998 octets on a line, the
 * line end excluded. BodyEncoder applies it while it encodes (its own loop, for speed); LineLengthCheck
 * applies the same rule, with the same reading of line ends, to content that is not being encoded here —
 * for a server in front of sluice (the relay) that must refuse at DATA time what sluice would refuse to
 * send, rather than accept it and bounce it later.
 */
import { ErrorCodes, SluiceError } from '../errors.js';

const CR = 0x0d;
const LF = 0x0a;

/** RFC 5321 §4.5.3.1.6 and RFC 5322 §2.1.1: at most 998 octets on a line, CRLF excluded. */
export const MAX_LINE_LENGTH = 998;

/** The error for line `line` (counted from 1) being too long: EMESSAGE, permanent, for DATA. */
export function lineTooLongError(line: number): SluiceError {
  return new SluiceError(
    ErrorCodes.EMESSAGE,
    `Line ${line} of the message is longer than ${MAX_LINE_LENGTH} octets (RFC 5321 §4.5.3.1.6): encode it (quoted-printable or base64) or wrap it`,
    { permanent: true, command: 'DATA' },
  );
}

/**
 * Checks content, chunk by chunk, against the 998-octet line rule. Line ends are read as the encoder
 * reads them: a CRLF, a bare LF and a bare CR each end one line, and a CRLF split over two chunks is
 * one line end. The check reads; it never changes or copies the content.
 *
 * ```ts
 * const check = new LineLengthCheck();
 * for await (const chunk of stream) if (check.push(chunk)) forward(chunk);
 * check.end(); // throws the encoder's EMESSAGE error when a line was too long
 * ```
 */
export class LineLengthCheck {
  private column = 0;
  private line = 1;
  /** The last byte seen was a CR: an LF first in the next chunk is its line end's second half. */
  private pendingCr = false;
  private first = 0;

  /** The number (from 1) of the first line longer than MAX_LINE_LENGTH octets, or 0 while there is none. */
  get longLine(): number {
    return this.first;
  }

  /** Reads the next chunk. False when this chunk holds (or ends) a line that is too long, and for every chunk after it. */
  push(chunk: Uint8Array): boolean {
    if (this.first !== 0) return false;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const len = buf.length;
    if (len === 0) return true;
    let i = 0; // start of the current line's content in this chunk
    if (this.pendingCr) {
      this.pendingCr = false;
      if (buf[0] === LF) i = 1;
    }
    let nextCr = buf.indexOf(CR, i);
    let nextLf = buf.indexOf(LF, i);
    for (;;) {
      const end = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
      if (this.column + ((end === -1 ? len : end) - i) > MAX_LINE_LENGTH) {
        this.first = this.line;
        return false;
      }
      if (end === -1) {
        this.column += len - i;
        return true;
      }
      this.column = 0;
      this.line++;
      i = end + 1;
      if (buf[end] === LF) {
        nextLf = buf.indexOf(LF, i);
        continue;
      }
      if (i === len) {
        this.pendingCr = true;
        return true;
      }
      if (buf[i] === LF) nextLf = buf.indexOf(LF, ++i);
      nextCr = buf.indexOf(CR, i);
    }
  }

  /** Throws lineTooLongError() for the first line that was too long, if any. */
  end(): void {
    if (this.first !== 0) throw lineTooLongError(this.first);
  }
}
