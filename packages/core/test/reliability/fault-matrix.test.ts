/**
 * The fault matrix: every fault the mock server can inject, at every step of a transaction, in each
 * of the four wire modes (PIPELINING on/off × CHUNKING on/off). Each case sends a small batch and
 * checks the invariants that hold whatever the fault:
 *
 * - every message ends in exactly one outcome (delivered, rejected, failed or unknown): no promise is
 *   left pending (a guard fails the test instead of letting it hang), and the pool's events and stats
 *   agree with the promises;
 * - the inbox agrees: delivered ⇒ each accepted recipient received exactly once (and no other);
 *   rejected or failed ⇒ nothing received; unknown ⇒ received at most once; with `retryUnknown` a
 *   second copy is allowed only for a message whose first attempt was unknown; every received copy
 *   carries the body of the message its envelope belongs to;
 * - no socket is left open after `pool.close()`: every client socket is destroyed and the server sees
 *   its sessions end (a session the server itself stalled stays open on the server's side: a stalled
 *   mock session stops reading, so it never sees the client's FIN; that is the mock's doing, and the
 *   client side is checked instead);
 * - the pool keeps working after the fault: one more message is delivered.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { FaultRule, MockServer, MockServerOptions, ReceivedMessage } from '@sluice/mock-server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Message, type Pool, type PoolOptions, type SendResult, SluiceError } from '../../src/index.js';
import { pool, server } from '../helpers.js';

// ---------------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------------

interface Mode {
  pipelining: boolean;
  chunking: boolean;
}

const MODES: Mode[] = [
  { pipelining: true, chunking: false },
  { pipelining: true, chunking: true },
  { pipelining: false, chunking: false },
  { pipelining: false, chunking: true },
];

const modeName = (m: Mode) => `PIPELINING ${m.pipelining ? 'on' : 'off'}, CHUNKING ${m.chunking ? 'on' : 'off'}`;

/**
 * The reply that commits a message. With CHUNKING on there is no final "." (DOT): BDAT LAST carries the
 * content, so every DOT fault becomes a BDAT_LAST fault in those modes.
 */
const end = (m: Mode): FaultRule['command'] => (m.chunking ? 'BDAT_LAST' : 'DOT');

/**
 * Short timeouts for the cases where the server stalls: a stall must cost a fraction of a second. The
 * reply to the content keeps its long default (a spurious timeout there would be an unknown outcome),
 * except in the case that stalls it.
 */
const SHORT = { greeting: 300, command: 300, mail: 300, rcpt: 300, data: 300, connect: 1000 };

const BATCH = 6;
/** Longest a batch may take before the test fails instead of hanging. */
const GUARD_MS = 10_000;

interface Sent {
  id: string;
  to: string[];
  message: Message;
}

function makeMessage(tag: string, i: number, recipients = 1, stream = false): Sent {
  const to = recipients === 1 ? [`${tag}${i}@example.com`] : Array.from({ length: recipients }, (_, j) => `${tag}${i}.${j}@example.com`);
  const id = `<${tag}-${i}@sluice.test>`;
  const text = `From: sender@example.com\r\nTo: ${to.join(', ')}\r\nSubject: ${tag} ${i}\r\nMessage-ID: ${id}\r\n\r\nHello ${i}\r\n`;
  const body = stream ? trickle(text) : text;
  // A stream's Message-ID is not read from its content: give it explicitly.
  return { id, to, message: { envelope: { from: 'sender@example.com', to }, body, messageId: stream ? id : undefined } };
}

/** A streamed body: the headers, then the rest in pieces, a few milliseconds apart. */
async function* trickle(text: string): AsyncGenerator<Buffer> {
  const cut = text.indexOf('\r\n\r\n') + 4;
  yield Buffer.from(text.slice(0, cut));
  for (const piece of [text.slice(cut), 'Second line\r\n', 'Third line\r\n']) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    yield Buffer.from(piece);
  }
}

type Settled = { outcome: 'delivered'; result: SendResult } | { outcome: 'rejected' | 'failed' | 'unknown' | 'no-outcome'; error: unknown };

/** Settles every send, or fails naming the sends still pending after `ms`. */
async function settleAll(promises: Array<Promise<SendResult>>, ms = GUARD_MS): Promise<Settled[]> {
  const out: Array<Settled | undefined> = new Array(promises.length);
  const all = Promise.all(
    promises.map((p, i) =>
      p.then(
        (result) => {
          out[i] = { outcome: 'delivered', result };
        },
        (error) => {
          const outcome = error instanceof SluiceError && error.outcome ? error.outcome : 'no-outcome';
          out[i] = { outcome, error } as Settled;
        },
      ),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  const winner = await Promise.race([all.then(() => 'done' as const), guard]);
  clearTimeout(timer);
  if (winner === 'timeout') {
    const pending = out.flatMap((s, i) => (s ? [] : [i]));
    throw new Error(`sends still pending after ${ms} ms: #${pending.join(', #')}`);
  }
  return out as Settled[];
}

function countOutcomes(settled: Settled[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of settled) counts[s.outcome] = (counts[s.outcome] ?? 0) + 1;
  return counts;
}

const MESSAGE_ID = /^message-id:[ \t]*(<[^>\r\n]+>)/im;

interface InvariantOptions {
  retryUnknown?: boolean;
  /** Server-wide transaction numbers recorded by a `deliver: true` drop: their message's outcome was
   * unknown to the client, so with retryUnknown a second copy of it is expected. */
  unknownDeliveredSequences?: ReadonlySet<number>;
}

/** Checks the inbox against the outcomes; returns the violations (empty when all hold). */
function violations(sent: Sent[], settled: Settled[], inbox: readonly ReceivedMessage[], options: InvariantOptions = {}): string[] {
  const problems: string[] = [];
  const owner = new Map<string, number>();
  sent.forEach((s, i) => {
    for (const r of s.to) owner.set(r.toLowerCase(), i);
  });
  const copies = new Map<string, ReceivedMessage[]>();
  for (const m of inbox) {
    const id = m.raw ? MESSAGE_ID.exec(m.raw.toString('latin1'))?.[1] : undefined;
    for (const r of m.to) {
      const i = owner.get(r.toLowerCase());
      if (i === undefined) {
        problems.push(`received for ${r}, which no message was sent to`);
        continue;
      }
      if (m.raw && id !== sent[i]!.id) problems.push(`${r} received the body of ${id}, not of ${sent[i]!.id}`);
      const list = copies.get(r.toLowerCase()) ?? [];
      list.push(m);
      copies.set(r.toLowerCase(), list);
    }
  }
  sent.forEach((s, i) => {
    const st = settled[i]!;
    const label = `${s.id} (${st.outcome})`;
    if (!['delivered', 'rejected', 'failed', 'unknown'].includes(st.outcome)) {
      problems.push(`${label}: settled without an outcome: ${String((st as { error?: unknown }).error)}`);
      return;
    }
    if (st.outcome !== 'delivered') {
      const err = (st as { error: unknown }).error;
      if (!(err instanceof SluiceError)) problems.push(`${label}: rejected with something that is not a SluiceError`);
      else if (st.outcome === 'unknown' && err.code !== 'EUNKNOWN') problems.push(`${label}: unknown outcome with code ${err.code}`);
    }
    const accepted = st.outcome === 'delivered' ? new Set(st.result.accepted.map((a) => a.address.toLowerCase())) : null;
    if (st.outcome === 'delivered') {
      const { accepted: a, rejected: rj, pending: pd } = st.result;
      const accounted = [...a, ...rj, ...pd].map((r) => r.address.toLowerCase()).sort();
      const expected = s.to.map((r) => r.toLowerCase()).sort();
      if (accounted.join() !== expected.join()) problems.push(`${label}: accepted+rejected+pending is [${accounted}], not the recipients [${expected}]`);
      if (a.length === 0) problems.push(`${label}: delivered with no accepted recipient`);
    }
    for (const r of s.to) {
      const got = copies.get(r.toLowerCase()) ?? [];
      const n = got.length;
      let max: number;
      let min = 0;
      if (st.outcome === 'delivered') {
        min = accepted!.has(r.toLowerCase()) ? 1 : 0;
        max = min;
      } else if (st.outcome === 'unknown') max = 1;
      else max = 0;
      // With retryUnknown, one more copy is allowed when an earlier attempt's outcome was unknown
      // (the server had queued it before the connection died).
      if (options.retryUnknown && got.some((m) => options.unknownDeliveredSequences?.has(m.sequence))) max += 1;
      if (n < min || n > max) problems.push(`${label}: ${r} received ${n} time(s), expected ${min === max ? min : `${min}..${max}`}`);
    }
  });
  return problems;
}

/** Every client socket sluice opens (TCP and TLS), to check that none is left open. */
function trackSockets(): { sockets: net.Socket[]; restore(): void } {
  const sockets: net.Socket[] = [];
  const netConnect = net.connect;
  const tlsConnect = tls.connect;
  const a = vi.spyOn(net, 'connect').mockImplementation(((...args: Parameters<typeof net.connect>) => {
    const socket = (netConnect as (...a: unknown[]) => net.Socket)(...args);
    sockets.push(socket);
    return socket;
  }) as typeof net.connect);
  const b = vi.spyOn(tls, 'connect').mockImplementation(((...args: Parameters<typeof tls.connect>) => {
    const socket = (tlsConnect as (...a: unknown[]) => tls.TLSSocket)(...args);
    sockets.push(socket);
    return socket;
  }) as typeof tls.connect);
  return {
    sockets,
    restore() {
      a.mockRestore();
      b.mockRestore();
    },
  };
}

/** Outcomes reported through events, per Message-ID: each message must be reported exactly once. */
function recordEvents(p: Pool): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const add = (id: string | undefined, what: string) => {
    const key = id ?? '(none)';
    seen.set(key, [...(seen.get(key) ?? []), what]);
  };
  p.on('sent', (r) => add(r.messageId, 'delivered'));
  p.on('send-error', (e) => add(e.messageId, e.outcome ?? 'no-outcome'));
  return seen;
}

interface Case {
  name: string;
  /** Why the case does not apply in this mode (the test is skipped with this reason). */
  skip?: (m: Mode) => string | false;
  faults?: (m: Mode) => FaultRule[];
  server?: MockServerOptions;
  client?: Partial<PoolOptions>;
  /** Recipients per message. */
  recipients?: number;
  /** Bodies are streams (async generators) instead of strings. */
  stream?: boolean;
  /** Server sessions a fault leaves open on the server's side (see the header). */
  leftOpen?: (s: MockServer) => number;
  /** See InvariantOptions. */
  unknownDeliveredSequences?: number[];
  /** Outcomes expected for the batch. Default: every message delivered. */
  expect?: (counts: Record<string, number>, settled: Settled[], s: MockServer, m: Mode) => void;
  /** Before the recovery message: wait this long (ms). */
  pause?: number;
  /** Before the recovery message: the fault is lifted (it was persistent). */
  clearFaults?: boolean;
  /** The recovery message goes through a new pool with these options (the first pool's options are
   * the fault itself: a missing CA, a wrong password). */
  recoverWith?: (s: MockServer) => Partial<PoolOptions>;
}

const allDelivered = (counts: Record<string, number>) => expect(counts).toEqual({ delivered: BATCH });

/** One message unknown (the transaction the fault hit), the rest delivered. */
const oneUnknown = (counts: Record<string, number>, settled: Settled[]) => {
  expect(counts).toEqual({ delivered: BATCH - 1, unknown: 1 });
  const unknown = settled.find((s) => s.outcome === 'unknown') as { error: SluiceError };
  expect(unknown.error.code).toBe('EUNKNOWN');
  expect(['DOT', 'BDAT']).toContain(unknown.error.command);
};

/** At most one unknown (the transaction the fault hit); nothing failed or rejected. */
const atMostOneUnknown = (counts: Record<string, number>) => {
  expect((counts.delivered ?? 0) + (counts.unknown ?? 0)).toBe(BATCH);
  expect(counts.unknown ?? 0).toBeLessThanOrEqual(1);
};

const noDataStep = (m: Mode) => m.chunking && 'no DATA command with CHUNKING (BDAT carries the content); the MAIL, RCPT and BDAT_LAST cases cover it';

/** A stalled mock session stops reading, so it never sees the client close (see the header). */
const ONE_STALLED = () => 1;

const AUTH_USERS = { alice: 'correct horse battery staple' };
const AUTH_CLIENT = (s: MockServer): Partial<PoolOptions> => ({ auth: { user: 'alice', pass: AUTH_USERS.alice }, tls: { ca: s.ca } });

// ---------------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------------

const CASES: Case[] = [
  // 421 at each step. A 421 reply also closes the connection (RFC 5321 §3.8).
  { name: '421 at the greeting (once)', faults: () => [{ command: 'CONNECT', reply: '421 4.3.2 Not now', times: 1 }] },
  { name: '421 to EHLO (once)', faults: () => [{ command: 'EHLO', reply: '421 4.3.2 Not now', times: 1 }] },
  // RFC 5321 §4.1.4 says a server that does not know EHLO answers 500/502 and the client falls back to
  // HELO; sluice falls back on any error but 421, so a 4xx to EHLO is followed by HELO (no extensions).
  { name: '4xx to EHLO (once)', faults: () => [{ command: 'EHLO', reply: '451 4.3.0 Try again later', times: 1 }] },
  { name: '421 to MAIL', faults: () => [{ command: 'MAIL', message: 2, reply: '421 4.3.2 Shutting down' }] },
  { name: '421 to RCPT', faults: () => [{ command: 'RCPT', recipient: 'fm2@example.com', times: 1, reply: '421 4.3.2 Shutting down' }] },
  { name: '421 to DATA', skip: noDataStep, faults: () => [{ command: 'DATA', message: 2, reply: '421 4.3.2 Shutting down' }] },
  // A 421 to the content is a refusal, not a lost reply: the message was not queued and is retried.
  { name: '421 after the final "." / BDAT LAST', faults: (m) => [{ command: end(m), message: 2, reply: '421 4.3.2 Shutting down' }] },
  {
    name: 'persistent 421 at the greeting, then cleared',
    faults: () => [{ command: 'CONNECT', reply: '421 4.3.2 Not now' }],
    client: { retry: { retries: 2, minDelay: 2, maxDelay: 5 } },
    clearFaults: true,
    expect: (counts, settled) => {
      expect(counts).toEqual({ failed: BATCH });
      for (const s of settled) expect((s as { error: SluiceError }).error.responseCode).toBe(421);
    },
  },

  // Per-recipient refusals.
  { name: '4xx to one recipient (once)', faults: () => [{ command: 'RCPT', recipient: 'fm2@example.com', times: 1, reply: '450 4.2.1 Mailbox busy' }] },
  {
    name: '5xx to one recipient',
    faults: () => [{ command: 'RCPT', recipient: 'fm2@example.com', reply: '550 5.1.1 No such user' }],
    expect: (counts, settled) => {
      expect(counts).toEqual({ delivered: BATCH - 1, rejected: 1 });
      const err = (settled[2] as { error: SluiceError }).error;
      expect([err.outcome, err.code, err.command, err.responseCode, err.enhancedCode]).toEqual(['rejected', 'EENVELOPE', 'RCPT', 550, '5.1.1']);
    },
  },
  {
    name: '4xx and 5xx to some recipients of a message',
    recipients: 3,
    faults: () => [
      { command: 'RCPT', recipient: /\.1@/, reply: '550 5.1.1 No such user' },
      { command: 'RCPT', recipient: /^fm2\.2@/, reply: '451 4.3.0 Try later' },
    ],
    expect: (counts, settled) => {
      expect(counts).toEqual({ delivered: BATCH });
      const r = (settled[2] as { result: SendResult }).result;
      expect(r.accepted.map((a) => a.address)).toEqual(['fm2.0@example.com']);
      expect(r.rejected.map((a) => a.address)).toEqual(['fm2.1@example.com']);
      expect(r.pending.map((a) => a.address)).toEqual(['fm2.2@example.com']);
    },
  },
  {
    name: '452 too many recipients',
    recipients: 3,
    faults: () => [{ command: 'RCPT', afterRecipients: 1, reply: '452 4.5.3 Too many recipients' }],
    expect: (counts, settled) => {
      expect(counts).toEqual({ delivered: BATCH });
      for (const s of settled) expect((s as { result: SendResult }).result.attempts).toBe(3);
    },
  },
  { name: '454 rate limited (MAIL)', faults: () => [{ command: 'MAIL', message: 2, reply: '454 4.7.0 Throttling failure: Maximum sending rate exceeded.' }] },
  // The server's own rate limit: 454 to MAIL beyond 4 messages per second; the retry budget outlasts it.
  { name: '454 rate limited (server rateLimit)', server: { rateLimit: 4 }, client: { retry: { retries: 10, minDelay: 50, maxDelay: 300 } } },

  // The connection dropped before, inside and after the content.
  { name: 'connection dropped at MAIL', faults: () => [{ command: 'MAIL', message: 2, action: 'drop' }] },
  { name: 'connection dropped at RCPT', faults: () => [{ command: 'RCPT', recipient: 'fm2@example.com', times: 1, action: 'drop' }] },
  { name: 'connection dropped at DATA', skip: noDataStep, faults: () => [{ command: 'DATA', message: 2, action: 'drop' }] },
  // A Buffer body and its final "." (or BDAT LAST and its bytes) leave in one write, so a drop inside
  // the body comes after the commit point: unknown, never resent.
  {
    name: 'connection dropped inside the body',
    faults: (m) => [{ command: m.chunking ? 'BDAT_LAST' : 'DATA', message: 2, action: 'drop-in-body', afterBytes: 10 }],
    expect: atMostOneUnknown,
  },
  // A streamed body is written as it is read: the drop comes before the final "." (or the last BDAT
  // chunk). The stream cannot be read twice, so that message fails (or is unknown if the final "."
  // had left already); it is never received.
  {
    name: 'connection dropped inside a streamed body',
    stream: true,
    faults: (m) => [{ command: m.chunking ? 'BDAT' : 'DATA', message: 2, action: 'drop-in-body', afterBytes: 10 }],
    expect: (counts) => {
      expect(counts.delivered).toBe(BATCH - 1);
      expect((counts.failed ?? 0) + (counts.unknown ?? 0)).toBe(1);
    },
  },
  { name: 'connection dropped after the final "." / BDAT LAST', faults: (m) => [{ command: end(m), message: 2, action: 'drop' }], expect: oneUnknown },
  {
    name: 'connection dropped after the final "." / BDAT LAST, the server had queued it',
    faults: (m) => [{ command: end(m), message: 2, action: 'drop', deliver: true }],
    expect: oneUnknown,
  },
  {
    name: 'connection dropped after the final "." / BDAT LAST, retryUnknown',
    faults: (m) => [{ command: end(m), message: 2, action: 'drop' }],
    client: { retryUnknown: true },
    expect: (counts, settled, s) => {
      allDelivered(counts);
      // The message whose reply was lost went again (so did any message pipelined behind it on that
      // connection, refused or not yet answered: transient, retried at once).
      expect(settled.filter((s) => s.outcome === 'delivered' && s.result.attempts >= 2).length).toBeGreaterThanOrEqual(1);
      expect(s.inbox.messages).toHaveLength(BATCH);
    },
  },
  {
    name: 'connection dropped after the final "." / BDAT LAST, the server had queued it, retryUnknown',
    faults: (m) => [{ command: end(m), message: 2, action: 'drop', deliver: true }],
    client: { retryUnknown: true },
    unknownDeliveredSequences: [2],
    expect: (counts, _settled, s) => {
      allDelivered(counts);
      // The duplicate retryUnknown accepts: the copy the server queued, and the resent one.
      expect(s.inbox.messages).toHaveLength(BATCH + 1);
    },
  },

  // A stall at each step: the server stops answering and reading; the client's timeout ends it.
  // The stalled connection attempt is still timing out when the batch is done: close() must not hang (BUG-1).
  {
    name: 'stall at the greeting (once)',
    faults: () => [{ command: 'CONNECT', action: 'stall', times: 1 }],
    client: { timeouts: SHORT },
    leftOpen: ONE_STALLED,
  },
  {
    name: 'stall at EHLO (once)',
    faults: () => [{ command: 'EHLO', action: 'stall', times: 1 }],
    client: { timeouts: SHORT },
    leftOpen: ONE_STALLED,
  },
  { name: 'stall at MAIL', faults: () => [{ command: 'MAIL', message: 2, action: 'stall' }], client: { timeouts: SHORT }, leftOpen: ONE_STALLED },
  {
    name: 'stall at RCPT',
    faults: () => [{ command: 'RCPT', recipient: 'fm2@example.com', times: 1, action: 'stall' }],
    client: { timeouts: SHORT },
    leftOpen: ONE_STALLED,
  },
  {
    name: 'stall at DATA',
    skip: noDataStep,
    faults: () => [{ command: 'DATA', message: 2, action: 'stall' }],
    client: { timeouts: SHORT },
    leftOpen: ONE_STALLED,
  },
  {
    name: 'stall after the final "." / BDAT LAST',
    faults: (m) => [{ command: end(m), message: 2, action: 'stall' }],
    client: { timeouts: { ...SHORT, dataEnd: 500 } },
    leftOpen: ONE_STALLED,
    expect: oneUnknown,
  },

  // TLS.
  {
    name: 'STARTTLS refused once (454)',
    server: { extensions: { starttls: true } },
    faults: () => [{ command: 'STARTTLS', reply: '454 4.7.0 TLS not available due to temporary reason', times: 1 }],
    // A refused STARTTLS fails what is queued when no other connection is open (the pool treats ETLS as
    // permanent); whether another connection is already up is a race. Either way: no loss, no duplicate.
    expect: (counts, settled) => {
      expect((counts.delivered ?? 0) + (counts.failed ?? 0)).toBe(BATCH);
      for (const s of settled) if (s.outcome === 'failed') expect((s as { error: SluiceError }).error.code).toBe('ETLS');
    },
  },
  {
    name: 'connection dropped at STARTTLS (once)',
    server: { extensions: { starttls: true } },
    faults: () => [{ command: 'STARTTLS', action: 'drop', times: 1 }],
  },
  {
    name: 'TLS handshake fails: STARTTLS with a certificate the client cannot verify',
    server: { extensions: { starttls: true } },
    client: { tls: {} },
    recoverWith: (s) => ({ tls: { ca: s.ca } }),
    expect: (counts, settled, s) => {
      expect(counts).toEqual({ failed: BATCH });
      for (const x of settled) expect((x as { error: SluiceError }).error.code).toBe('ETLS');
      expect(s.connections.every((c) => !c.byCommand.MAIL && !c.byCommand.AUTH)).toBe(true);
    },
  },
  {
    name: 'TLS handshake fails: implicit TLS with a certificate the client cannot verify',
    server: { secure: true },
    client: { secure: true, tls: {} },
    recoverWith: (s) => ({ secure: true, tls: { ca: s.ca } }),
    // The mock server does not notice a client closing an implicit-TLS connection (its TLS layer over
    // the simulated link never sees the EOF): the refused handshakes stay open on its side. The
    // client's sockets are all checked closed.
    leftOpen: (s) => s.connections.filter((c) => c.commands === 0).length,
    expect: (counts, settled, s) => {
      expect(counts).toEqual({ failed: BATCH });
      for (const x of settled) expect((x as { error: SluiceError }).error.code).toBe('ETLS');
      expect(s.connections.every((c) => c.commands === 0)).toBe(true);
    },
  },

  // AUTH.
  {
    name: 'AUTH refused (wrong password)',
    server: { extensions: { starttls: true }, users: AUTH_USERS },
    client: { auth: { user: 'alice', pass: 'wrong' } },
    recoverWith: AUTH_CLIENT,
    expect: (counts, settled) => {
      expect(counts).toEqual({ failed: BATCH });
      for (const x of settled) expect((x as { error: SluiceError }).error).toMatchObject({ code: 'EAUTH', command: 'AUTH', responseCode: 535 });
    },
  },
  {
    name: 'AUTH refused once (535), right password',
    server: { extensions: { starttls: true }, users: AUTH_USERS },
    faults: () => [{ command: 'AUTH', reply: '535 5.7.8 Authentication credentials invalid', times: 1 }],
    client: { auth: { user: 'alice', pass: AUTH_USERS.alice } },
    // Like the STARTTLS refusal: EAUTH fails what is queued when no other connection is open yet.
    expect: (counts, settled) => {
      expect((counts.delivered ?? 0) + (counts.failed ?? 0)).toBe(BATCH);
      for (const s of settled) if (s.outcome === 'failed') expect((s as { error: SluiceError }).error.code).toBe('EAUTH');
    },
  },

  {
    name: 'AUTH refused once (454 temporary failure), right password',
    server: { extensions: { starttls: true }, users: AUTH_USERS },
    faults: () => [{ command: 'AUTH', reply: '454 4.7.0 Temporary authentication failure', times: 1 }],
    client: { auth: { user: 'alice', pass: AUTH_USERS.alice } },
    // A 4xx to AUTH is transient (BUG-2, fixed): the pool retries on a new connection.
    expect: allDelivered,
  },

  // The server's limits.
  { name: 'the server closes idle connections (idleTimeout)', server: { idleTimeout: 150 }, pause: 400 },
  {
    name: 'the connection cap (maxConnections → 421 at the greeting)',
    server: { maxConnections: 2 },
    client: { maxConnections: 6 },
    expect: (counts, _settled, s) => {
      allDelivered(counts);
      expect(s.connections.length).toBeGreaterThan(2);
    },
  },
];

// ---------------------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------------------

let tracked: ReturnType<typeof trackSockets>;
beforeEach(() => {
  tracked = trackSockets();
});
afterEach(() => tracked.restore());

for (const c of CASES) {
  describe(c.name, () => {
    for (const mode of MODES) {
      const skip = c.skip?.(mode);
      (skip ? it.skip : it)(`${modeName(mode)}${skip ? ` (skipped: ${skip})` : ''}`, async () => {
        const s = await server({
          ...c.server,
          extensions: { ...c.server?.extensions, pipelining: mode.pipelining, chunking: mode.chunking },
          faults: c.faults?.(mode),
        });
        const p = pool(s, c.client);
        const events = recordEvents(p);
        const batch = Array.from({ length: BATCH }, (_, i) => makeMessage('fm', i, c.recipients, c.stream));
        const settled = await settleAll(batch.map((m) => p.send(m.message)));
        const options: InvariantOptions = { retryUnknown: c.client?.retryUnknown, unknownDeliveredSequences: new Set(c.unknownDeliveredSequences) };
        expect(violations(batch, settled, s.inbox.messages, options)).toEqual([]);
        // Events and stats agree with the promises: one report per message.
        for (let i = 0; i < BATCH; i++) expect(events.get(batch[i]!.id), batch[i]!.id).toEqual([settled[i]!.outcome]);
        const counts = countOutcomes(settled);
        const { delivered, rejected, failed, unknown } = p.stats;
        expect({ delivered, rejected, failed, unknown }).toEqual({ delivered: 0, rejected: 0, failed: 0, unknown: 0, ...counts });
        (c.expect ?? allDelivered)(counts, settled, s, mode);

        // The pool keeps working (or, when the pool's own options are the fault, a corrected one does).
        if (c.pause) await new Promise((r) => setTimeout(r, c.pause));
        if (c.clearFaults) s.setFaults([]);
        const q = c.recoverWith ? pool(s, { ...c.client, ...c.recoverWith(s) }) : p;
        const extra = makeMessage('fm', 99);
        const [last] = await settleAll([q.send(extra.message)]);
        expect(last!.outcome, String((last as { error?: unknown }).error)).toBe('delivered');
        expect(violations([...batch, extra], [...settled, last!], s.inbox.messages, options)).toEqual([]);

        // No socket left open.
        await Promise.all([p.close(), q.close()]);
        expect(tracked.sockets.length).toBeGreaterThan(0);
        await vi.waitFor(() => expect(tracked.sockets.filter((x) => !x.destroyed)).toHaveLength(0), { timeout: 5000 });
        await vi.waitFor(() => expect(s.openConnections).toBeLessThanOrEqual(c.leftOpen?.(s) ?? 0), { timeout: 5000 });
      });
    }
  });
}

describe('the invariant checker itself', () => {
  // The matrix is only as good as its checker: it must see each kind of violation.
  const sent = [makeMessage('chk', 0), makeMessage('chk', 1)];
  const delivered = (m: Sent, attempts = 1): Settled => ({
    outcome: 'delivered',
    result: {
      outcome: 'delivered',
      envelope: { from: 'sender@example.com', to: m.to },
      messageId: m.id,
      accepted: m.to.map((address) => ({ address, code: 250, enhancedCode: '2.1.5', response: '250 OK' })),
      rejected: [],
      pending: [],
      response: '250 OK',
      responseCode: 250,
      enhancedCode: '2.0.0',
      connectionId: 1,
      attempts,
      timings: { queued: 0, started: 0, settled: 0, total: 0 },
    },
  });
  const failedWith = (outcome: 'failed' | 'unknown'): Settled => ({
    outcome,
    error: Object.assign(new SluiceError(outcome === 'unknown' ? 'EUNKNOWN' : 'ECONNECTION', 'x'), { outcome }),
  });
  const copy = (m: Sent, sequence: number, id = m.id) =>
    ({ to: m.to, sequence, raw: Buffer.from(`Message-ID: ${id}\r\n\r\nx\r\n`) }) as unknown as ReceivedMessage;

  it('accepts a consistent run', () => {
    expect(violations(sent, [delivered(sent[0]!), failedWith('unknown')], [copy(sent[0]!, 1), copy(sent[1]!, 2)])).toEqual([]);
  });
  it('sees a delivered message that was not received, or received twice', () => {
    expect(violations(sent, [delivered(sent[0]!), failedWith('failed')], [])).toHaveLength(1);
    expect(violations(sent, [delivered(sent[0]!), failedWith('failed')], [copy(sent[0]!, 1), copy(sent[0]!, 2)])).toHaveLength(1);
  });
  it('sees a failed message that was received, and an unknown one received twice', () => {
    expect(violations(sent, [delivered(sent[0]!), failedWith('failed')], [copy(sent[0]!, 1), copy(sent[1]!, 2)])).toHaveLength(1);
    expect(violations(sent, [delivered(sent[0]!), failedWith('unknown')], [copy(sent[0]!, 1), copy(sent[1]!, 2), copy(sent[1]!, 3)])).toHaveLength(1);
  });
  it('allows a duplicate with retryUnknown only after an unknown attempt the server had queued', () => {
    const inbox = [copy(sent[0]!, 1), copy(sent[0]!, 2), copy(sent[1]!, 3)];
    const settled = [delivered(sent[0]!, 2), delivered(sent[1]!)];
    expect(violations(sent, settled, inbox, { retryUnknown: true, unknownDeliveredSequences: new Set([1]) })).toEqual([]);
    expect(violations(sent, settled, inbox, { retryUnknown: true, unknownDeliveredSequences: new Set([3]) })).toHaveLength(1);
    expect(violations(sent, settled, inbox)).toHaveLength(1);
  });
  it("sees a body delivered to another message's recipients, and a stray delivery", () => {
    expect(violations(sent, [delivered(sent[0]!), delivered(sent[1]!)], [copy(sent[0]!, 1, sent[1]!.id), copy(sent[1]!, 2)])).toHaveLength(1);
    const stray = { to: ['nobody@example.com'], sequence: 3, raw: null } as unknown as ReceivedMessage;
    expect(violations(sent, [delivered(sent[0]!), delivered(sent[1]!)], [copy(sent[0]!, 1), copy(sent[1]!, 2), stray])).toHaveLength(1);
  });
  it('sees a send that settled without an outcome', () => {
    expect(violations(sent, [delivered(sent[0]!), { outcome: 'no-outcome', error: new Error('x') }], [copy(sent[0]!, 1)])).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------------
// Bugs found by the matrix
// ---------------------------------------------------------------------------------------------------

describe('pool.close()', () => {
  // BUG-1: close() never resolves when the last thing that happens after it is called is a failed
  // connection attempt. close() re-checks its condition only on 'close' and 'idle' events, and a
  // connection that fails to open emits neither (only 'connect-error'): pool.stats shows nothing
  // queued, in flight, open or connecting, and close() stays pending forever. Found with "stall at
  // the greeting" / "stall at EHLO" above (the stalled attempt times out after the batch is done).
  it('resolves when a connection attempt fails after close() was called (BUG-1, fixed)', async () => {
    const s = await server({ faults: [{ command: 'CONNECT', action: 'stall' }] });
    const p = pool(s, { timeouts: { greeting: 100 }, retry: false });
    const sent = p.send(makeMessage('bug', 1).message);
    const closed = p.close().then(() => 'closed');
    await expect(sent).rejects.toMatchObject({ code: 'ETIMEDOUT', outcome: 'failed' });
    const timeout = new Promise((resolve) => setTimeout(() => resolve('still pending'), 1000));
    expect(p.stats).toMatchObject({ connections: 0, connecting: 0, queued: 0, inFlight: 0 });
    expect(await Promise.race([closed, timeout])).toBe('closed');
  });

  it('resolves when close() is called after the failed attempt (the case BUG-1 does not hit)', async () => {
    const s = await server({ faults: [{ command: 'CONNECT', action: 'stall' }] });
    const p = pool(s, { timeouts: { greeting: 100 }, retry: false });
    await expect(p.send(makeMessage('bug', 2).message)).rejects.toMatchObject({ code: 'ETIMEDOUT', outcome: 'failed' });
    await p.close();
  });
});

describe('transient refusals during connection setup', () => {
  // BUG-2: a transient (4xx) reply to STARTTLS or AUTH fails every queued message at once, with no
  // retry. The error itself says `permanent: false` (454 is "temporary" in RFC 3207 §4 and RFC 4954
  // §6), but Pool.onConnectError treats every ETLS and EAUTH error as permanent when no other
  // connection is open. The README promises that transient failures end `failed` only "after the
  // retry budget", and a 421/451 at the greeting is indeed retried (the third test below); one
  // temporary AUTH hiccup instead fails a whole queue (attempts: 0).
  const setups = [
    { command: 'AUTH', reply: '454 4.7.0 Temporary authentication failure', code: 'EAUTH' },
    { command: 'STARTTLS', reply: '454 4.7.0 TLS not available due to temporary reason', code: 'ETLS' },
  ] as const;
  for (const { command, reply, code } of setups) {
    it(`retries a message after a transient ${reply.slice(0, 3)} to ${command}, within the retry budget (BUG-2)`, async () => {
      const s = await server({ extensions: { starttls: true }, users: AUTH_USERS, faults: [{ command, reply, times: 1 }] });
      const p = pool(s, { maxConnections: 1, auth: { user: 'alice', pass: AUTH_USERS.alice } });
      const settled = await settleAll([0, 1, 2].map((i) => p.send(makeMessage('bug2', i).message)));
      // Actual: three times { code: '${code}', responseCode: 454, permanent: false, outcome: 'failed', attempts: 0 }.
      for (const x of settled) if (x.outcome !== 'delivered') expect((x as { error: SluiceError }).error).toMatchObject({ code, permanent: false });
      expect(countOutcomes(settled)).toEqual({ delivered: 3 });
    });
  }

  it('retries a message after a transient 451 at the greeting (what BUG-2 expects for AUTH and STARTTLS)', async () => {
    const s = await server({
      extensions: { starttls: true },
      users: AUTH_USERS,
      faults: [{ command: 'CONNECT', reply: '451 4.3.0 Try again later', times: 1 }],
    });
    const p = pool(s, { maxConnections: 1, auth: { user: 'alice', pass: AUTH_USERS.alice } });
    const settled = await settleAll([0, 1, 2].map((i) => p.send(makeMessage('bug2', i).message)));
    expect(countOutcomes(settled)).toEqual({ delivered: 3 });
  });
});
