/**
 * Incremental reader for DATA content (RFC 5321 §4.1.1.4, §4.5.2): finds the end-of-data line
 * `CRLF . CRLF` and removes dot-stuffing, across arbitrary chunk boundaries, on Buffers.
 *
 * Only CRLF ends a line. A bare LF is content and is kept as received; "LF . CRLF" does not end the
 * message (that ambiguity is what SMTP smuggling exploits).
 */

const CR = 13;
const LF = 10;
const DOT = 46;
const CRLF_DOT = Buffer.from('\r\n.');
const CR_BUF = Buffer.from('\r');

/** Where the scanner is relative to a line start, between chunks. */
enum At {
  /** Inside a line. */
  Mid,
  /** The last byte was CR (already emitted). */
  Cr,
  /** At the start of a line. */
  Bol,
  /** A "." at the start of a line, held back: stuffing, or the end line. */
  Dot,
  /** "." CR at the start of a line, both held back. */
  DotCr,
}

export class DataReader {
  private at = At.Bol; // the CRLF of the DATA command line starts the first line
  /** Content bytes after unstuffing. */
  size = 0;
  /** Input bytes consumed (what crossed the wire), for drop-in-body. */
  wireBytes = 0;
  /** Collected content, or null when not recording (or over the limit). */
  pieces: Buffer[] | null;
  tooBig = false;

  constructor(
    record: boolean,
    private readonly limit: number,
  ) {
    this.pieces = record ? [] : null;
  }

  private emit(buf: Buffer, start: number, end: number): void {
    const len = end - start;
    if (len <= 0) return;
    this.size += len;
    if (this.size > this.limit) {
      // RFC 5321 §4.5.3.1.10: keep reading to the end, then 552; nothing more is kept.
      this.tooBig = true;
      this.pieces = null;
      return;
    }
    if (this.pieces) this.pieces.push(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
  }

  /**
   * Consume content from buf[pos..]. Returns the index just after the end-of-data line, or -1 when
   * all of buf was content (more is needed).
   */
  feed(buf: Buffer, pos: number): number {
    const len = buf.length;
    let i = pos;
    // Finish a line-start sequence left open by the previous chunk, byte by byte.
    while (i < len && this.at !== At.Mid) {
      const c = buf[i];
      switch (this.at) {
        case At.Cr:
          if (c === LF) {
            this.emit(buf, i, i + 1);
            i++;
            this.at = At.Bol;
          } else this.at = At.Mid;
          break;
        case At.Bol:
          if (c === DOT) {
            i++;
            this.at = At.Dot;
          } else this.at = At.Mid;
          break;
        case At.Dot:
          if (c === CR) {
            i++;
            this.at = At.DotCr;
          } else this.at = At.Mid; // the dot was stuffing: dropped (§4.5.2)
          break;
        case At.DotCr:
          if (c === LF) return this.done(pos, i + 1);
          // Stuffing dot dropped; the held CR is content.
          this.emit(CR_BUF, 0, 1);
          this.at = At.Mid;
          break;
      }
    }
    // Fast path: jump from one CRLF "." to the next.
    while (i < len) {
      const hit = buf.indexOf(CRLF_DOT, i);
      if (hit === -1) {
        this.emit(buf, i, len);
        if (len - i >= 2 && buf[len - 2] === CR && buf[len - 1] === LF) this.at = At.Bol;
        else if (buf[len - 1] === CR) this.at = At.Cr;
        else this.at = At.Mid;
        break;
      }
      this.emit(buf, i, hit + 2); // the CRLF belongs to the content
      const p = hit + 3; // after the dot
      if (p === len) {
        this.at = At.Dot;
        break;
      }
      if (buf[p] === CR) {
        if (p + 1 === len) {
          this.at = At.DotCr;
          break;
        }
        if (buf[p + 1] === LF) return this.done(pos, p + 2);
      }
      i = p; // stuffing dot dropped
    }
    this.wireBytes += len - pos;
    return -1;
  }

  private done(pos: number, end: number): number {
    this.wireBytes += end - pos;
    return end;
  }

  /** The message, when recorded. Copied so it does not pin the socket's read buffers. */
  content(): Buffer | null {
    return this.pieces ? Buffer.concat(this.pieces, this.size) : null;
  }
}
