import { ErrorCodes, SluiceError } from '../errors.js';

/** One SMTP reply (RFC 5321 §4.2), multi-line replies folded into one. */
export interface Reply {
  /** The three-digit reply code. */
  code: number;
  /** The enhanced status code of the first line (RFC 3463 / RFC 2034), e.g. '5.1.1', or null. */
  enhanced: string | null;
  /** The reply's lines as received, without CRLF (e.g. ['250-mx.example', '250 PIPELINING']). */
  lines: string[];
  /** The text of every line without the code and the enhanced code, joined with '\n'. */
  text: string;
}

export interface ReplyParserLimits {
  /** Longest reply line accepted, in bytes (RFC 5321 §4.5.3.1.5 sets 512; servers exceed it). */
  maxLineLength: number;
  /** Largest multi-line reply accepted, in bytes. */
  maxReplySize: number;
}

export const DEFAULT_REPLY_LIMITS: ReplyParserLimits = { maxLineLength: 8192, maxReplySize: 65536 };

const LF = 0x0a;
const CR = 0x0d;

/**
 * Incremental reply parser. Feed it whatever the socket delivers; it calls `onReply` once per complete
 * reply, in order. Replies are matched to commands by position only (RFC 2920 §3.1), which is the
 * caller's job. Malformed or oversized input throws a SluiceError with code EPROTOCOL: a server that
 * sends it cannot be trusted to keep the reply order, so the connection must be dropped.
 */
export class ReplyParser {
  private pending: Buffer | null = null;
  /** The lines of a multi-line reply so far; null between replies (most replies are one line). */
  private lines: string[] | null = null;
  private replySize = 0;
  private readonly limits: ReplyParserLimits;

  constructor(limits: Partial<ReplyParserLimits> = {}) {
    this.limits = { ...DEFAULT_REPLY_LIMITS, ...limits };
  }

  /** True while a partial reply is buffered. */
  get partial(): boolean {
    return this.pending !== null || this.lines !== null;
  }

  feed(chunk: Buffer, onReply: (reply: Reply) => void): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let start = 0;
    const len = buf.length;
    while (start < len) {
      const lf = buf.indexOf(LF, start);
      if (lf === -1) {
        // A CR waiting for its LF is not part of the line: the same bytes must pass however they are split.
        const partial = len - start - (buf[len - 1] === CR ? 1 : 0);
        if (partial > this.limits.maxLineLength) {
          throw protocolError(`reply line longer than ${this.limits.maxLineLength} bytes`);
        }
        this.pending = buf.subarray(start);
        return;
      }
      // Accept a bare LF as a line end, as robust clients do; strip the CR of CRLF.
      const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
      if (end - start > this.limits.maxLineLength) {
        throw protocolError(`reply line longer than ${this.limits.maxLineLength} bytes`);
      }
      const line = buf.toString('utf8', start, end);
      this.replySize += lf + 1 - start;
      start = lf + 1;
      if (this.replySize > this.limits.maxReplySize) {
        throw protocolError(`reply larger than ${this.limits.maxReplySize} bytes`);
      }
      const reply = this.line(line);
      if (reply) onReply(reply);
    }
  }

  private line(line: string): Reply | null {
    // RFC 5321 §4.2: Reply-code [ SP / "-" textstring ] CRLF; a lone code is allowed.
    const c0 = line.charCodeAt(0) - 48;
    const c1 = line.charCodeAt(1) - 48;
    const c2 = line.charCodeAt(2) - 48;
    if (!(c0 >= 2 && c0 <= 5 && c1 >= 0 && c1 <= 9 && c2 >= 0 && c2 <= 9)) {
      throw protocolError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    const sep = line.length > 3 ? line[3] : ' ';
    if (sep !== ' ' && sep !== '-') throw protocolError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const code = c0 * 100 + c1 * 10 + c2;
    const before = this.lines;
    if (before !== null && Number(before[0]!.slice(0, 3)) !== code) {
      throw protocolError(`reply code changed inside a multi-line reply (${before[0]!.slice(0, 3)} then ${code})`);
    }
    if (sep === '-') {
      if (before === null) this.lines = [line];
      else before.push(line);
      return null;
    }
    // A one-line reply gets a one-element array of its own: an array grown by push() from empty
    // reserves room for 17, which is most of what a reply allocates (one per RCPT).
    let lines = before;
    if (lines === null) lines = [line];
    else lines.push(line);
    this.lines = null;
    this.replySize = 0;
    return buildReply(code, lines);
  }
}

export function buildReply(code: number, lines: string[]): Reply {
  let enhanced: string | null = null;
  const cls = Math.floor(code / 100);
  let text = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    // RFC 3463 §2: the class digit of the enhanced code must agree with the reply's first digit.
    const end = enhancedEnd(line, 4, cls);
    if (end > 0) {
      if (i === 0) enhanced = enhancedCode(line, 4, end);
      text += (i ? '\n' : '') + line.slice(line.charCodeAt(end) === 32 ? end + 1 : end);
    } else text += (i ? '\n' : '') + line.slice(4);
  }
  return { code, enhanced, lines, text };
}

/** Enhanced codes seen, by their digits: a server says "2.1.5" thousands of times, one string serves. */
const CODES = new Map<number, string>();
const MAX_CODES = 512;

/** `line.slice(from, end)` (an enhanced code: digits and dots, at most 9 characters), shared when seen before. */
function enhancedCode(line: string, from: number, end: number): string {
  let key = 0;
  for (let i = from; i < end; i++) {
    const c = line.charCodeAt(i);
    key = key * 12 + (c === 46 ? 11 : c - 47); // digits 1–10, "." 11: one key per spelling
  }
  const known = CODES.get(key);
  if (known !== undefined) return known;
  const code = line.slice(from, end);
  if (CODES.size < MAX_CODES) CODES.set(key, code);
  return code;
}

/**
 * If `line` has an enhanced status code `class.subject.detail` at `from` (RFC 3463: class one digit,
 * subject and detail 1–3 digits, then a space or the end), returns where it ends; else -1. Written by
 * hand: it runs for every reply.
 */
function enhancedEnd(line: string, from: number, cls: number): number {
  if ((cls !== 2 && cls !== 4 && cls !== 5) || line.charCodeAt(from) - 48 !== cls || line.charCodeAt(from + 1) !== 46) return -1;
  let i = from + 2;
  for (let part = 0; part < 2; part++) {
    const start = i;
    while (i < line.length && i - start < 4) {
      const c = line.charCodeAt(i);
      if (c < 48 || c > 57) break;
      i++;
    }
    const digits = i - start;
    if (digits < 1 || digits > 3) return -1;
    if (part === 0) {
      if (line.charCodeAt(i) !== 46) return -1;
      i++;
    }
  }
  return i === line.length || line.charCodeAt(i) === 32 ? i : -1;
}

/** A reply sluice makes up for a lost connection: RFC 5321 §3.8 says to treat it as a 451. */
export function syntheticReply(code: number, enhanced: string, text: string): Reply {
  return { code, enhanced, lines: [`${code} ${enhanced} ${text}`], text };
}

function protocolError(message: string): SluiceError {
  return new SluiceError(ErrorCodes.EPROTOCOL, `Invalid SMTP reply: ${message}`, { command: 'REPLY' });
}
