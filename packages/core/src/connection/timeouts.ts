/**
 * Timeouts in milliseconds. The SMTP ones default to the minimums of RFC 5321 §4.5.3.2, which a client
 * "SHOULD" allow; lower them for latency-sensitive sends, never raise the risk of cutting a slow server
 * off after the final "." (an unknown outcome).
 */
export interface Timeouts {
  /** TCP (and implicit TLS) connect. Not in the RFC. Default 30 s. */
  connect: number;
  /** The 220 greeting: 5 min (RFC 5321 §4.5.3.2.1). */
  greeting: number;
  /** EHLO/HELO, STARTTLS, AUTH and RSET replies. Default 5 min. */
  command: number;
  /** MAIL: 5 min (§4.5.3.2.2). */
  mail: number;
  /** RCPT: 5 min (§4.5.3.2.3). */
  rcpt: number;
  /** DATA initiation (the 354): 2 min (§4.5.3.2.4). */
  data: number;
  /** Each block of content written (waiting for the socket to drain): 3 min (§4.5.3.2.5). */
  dataBlock: number;
  /** The reply to the final "." or to BDAT: 10 min (§4.5.3.2.6). */
  dataEnd: number;
  /** QUIT's reply before the socket is closed anyway. Default 5 s. */
  quit: number;
  /** An idle pooled connection is closed (with QUIT) after this long. Default 30 s. */
  idle: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connect: 30_000,
  greeting: 300_000,
  command: 300_000,
  mail: 300_000,
  rcpt: 300_000,
  data: 120_000,
  dataBlock: 180_000,
  dataEnd: 600_000,
  quit: 5_000,
  idle: 30_000,
};
