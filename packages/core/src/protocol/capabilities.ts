import type { Reply } from './reply.js';

/** What the server said it supports in its EHLO reply (RFC 5321 §4.1.1.1). */
export interface Capabilities {
  /** False when the server only answered HELO. */
  esmtp: boolean;
  pipelining: boolean;
  chunking: boolean;
  /** BINARYMIME (RFC 3030 §3). */
  binaryMime: boolean;
  /** The SIZE limit in bytes (RFC 1870); 0 means "no fixed limit"; null when SIZE is not offered. */
  size: number | null;
  eightBitMime: boolean;
  smtpUtf8: boolean;
  dsn: boolean;
  enhancedStatusCodes: boolean;
  starttls: boolean;
  /** AUTH mechanisms, upper case. */
  auth: string[];
  /** Every keyword and its parameters, upper-case keys. */
  raw: Record<string, string[]>;
}

/** A Capabilities with what `offered` says and every other extension off (a test double's server, a HELO-only one). */
export function defineCapabilities(offered: Partial<Capabilities> = {}): Capabilities {
  return { ...parseCapabilities(null), ...offered };
}

export function parseCapabilities(reply: Reply | null): Capabilities {
  const raw: Record<string, string[]> = {};
  if (reply) {
    // The first line is the greeting-like domain line; the rest are keywords (RFC 5321 §4.1.1.1).
    for (let i = 1; i < reply.lines.length; i++) {
      const parts = reply.lines[i]!.slice(4).trim().split(/[ =]+/);
      const keyword = parts.shift()?.toUpperCase();
      if (keyword) raw[keyword] = [...(raw[keyword] ?? []), ...parts];
    }
  }
  const sizeParam = raw.SIZE?.[0];
  const size = raw.SIZE ? (sizeParam && /^\d+$/.test(sizeParam) ? Number(sizeParam) : 0) : null;
  return {
    esmtp: reply !== null,
    pipelining: 'PIPELINING' in raw,
    chunking: 'CHUNKING' in raw,
    binaryMime: 'BINARYMIME' in raw,
    size,
    eightBitMime: '8BITMIME' in raw,
    smtpUtf8: 'SMTPUTF8' in raw,
    dsn: 'DSN' in raw,
    enhancedStatusCodes: 'ENHANCEDSTATUSCODES' in raw,
    starttls: 'STARTTLS' in raw,
    auth: [...new Set((raw.AUTH ?? []).map((m) => m.toUpperCase()))],
    raw,
  };
}
