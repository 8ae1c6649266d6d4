import { ErrorCodes, SluiceError } from '../errors.js';
import type { PreparedMessage } from '../message.js';
import { DATA_TERMINATOR } from '../protocol/body.js';
import type { Capabilities } from '../protocol/capabilities.js';
import { mailCommand, rcptCommand } from '../protocol/commands.js';
import { type Reply, syntheticReply } from '../protocol/reply.js';
import { type TransactionReplies, dataNot354, isTooManyRecipients, ok } from './classify.js';
import type { Chunk } from './socket.js';
import type { Timeouts } from './timeouts.js';

/** What a reply in the connection's FIFO answers. Replies are matched to commands by position only (RFC 2920 §3.1). */
export type ExpectKind = 'SETUP' | 'RSET' | 'MAIL' | 'RCPT' | 'DATA' | 'DOT' | 'BDAT' | 'BDAT_LAST' | 'QUIT';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One transaction's state for one attempt. The pool's message is read, never written. */
export interface Transaction extends Mutable<TransactionReplies> {
  readonly job: PreparedMessage;
  rcpt: Array<Reply | null>;
  /** RCPTs accepted so far. */
  accepted: number;
  /** Replies still owed to this transaction. */
  owed: number;
  /** Lock-step after a failure: the MAIL command waiting for RSET's reply. */
  pendingMail: string | null;
  /** The stream body started being read: it cannot be sent again. */
  streamed: boolean;
  done: boolean;
  /** LMTP (RFC 2033 §4.2): the replies to the final "." so far, one owed per accepted recipient. */
  lmtp: Reply[] | null;
}

/** What the reply handlers need from their connection. */
export interface Wire {
  readonly pipelining: boolean;
  readonly timeouts: Timeouts;
  /** A stream body holds the connection: nothing else may be written. */
  readonly writing: boolean;
  /** Queues the expectation of a reply (counted as owed to `txn` when given). */
  expect(kind: ExpectKind, txn: Transaction | null, index: number, timeout: number): void;
  /** Writes one group. */
  send(chunks: Chunk[]): void;
  /** The transaction has every reply it will get: classify and report it. */
  finish(txn: Transaction): void;
  /** No new transactions on this connection. */
  retire(): void;
  /** The server broke the protocol: the connection ends at once, with `error` as its cause. */
  violation(error: SluiceError): void;
  /** The content was written into `out`: the next message's envelope (pipelined) or QUIT may join it. */
  afterContent(out: Chunk[]): void;
  /** Starts writing a stream body (holds the connection until done). */
  stream(txn: Transaction): void;
  /** Holds (or releases) the connection for a stream body. */
  hold(writing: boolean): void;
}

export function newTransaction(job: PreparedMessage, chunking: boolean, windowed: boolean, behindDot: boolean, lmtp = false): Transaction {
  return {
    job,
    to: job.to,
    mail: null,
    rcpt: new Array(job.to.length).fill(null),
    accepted: 0,
    data: null,
    final: null,
    bdatError: null,
    committed: false,
    loneDot: false,
    owed: 0,
    chunking,
    windowed,
    behindDot,
    resetFailed: false,
    pendingMail: null,
    streamed: false,
    done: false,
    lmtp: lmtp ? [] : null,
  };
}

/**
 * Queues the replies owed to the final ".": one, or under LMTP one per accepted recipient, in RCPT
 * order (RFC 2033 §4.2). Queued before anything pipelined behind the "." so the FIFO stays in step.
 */
export function expectDot(expect: (kind: ExpectKind, txn: Transaction, index: number, timeout: number) => void, txn: Transaction, timeout: number): void {
  const count = txn.lmtp && !txn.loneDot ? txn.accepted : 1;
  for (let i = 0; i < count; i++) expect('DOT', txn, i, timeout);
}

/**
 * LMTP: once every recipient's reply to the "." came, each accepted recipient's RCPT reply is replaced
 * by it, so classify() sees a refusal at the "." as it sees one at RCPT (5xx rejected, 4xx tried again:
 * RFC 2033 §4.2, that recipient did not get the message); the final reply is the first success, else
 * the first failure. Until then (a lost connection) final stays null: the message is unknown, held.
 */
function onLmtpDot(txn: Transaction, lmtp: Reply[], reply: Reply): boolean {
  lmtp.push(reply);
  if (lmtp.length < txn.accepted) return false;
  let k = 0;
  for (let i = 0; i < txn.rcpt.length; i++) if (ok(txn.rcpt[i] ?? null)) txn.rcpt[i] = lmtp[k++]!;
  txn.final = lmtp.find(ok) ?? lmtp[0]!;
  return true;
}

/** Why the server cannot take this message (checked before anything is written), or null. */
export function refusal(job: PreparedMessage, caps: Capabilities): SluiceError | null {
  const refuse = (code: typeof ErrorCodes.ECAPABILITY | typeof ErrorCodes.EMESSAGE, message: string) =>
    new SluiceError(code, message, { permanent: true, command: 'MAIL' });
  if (job.smtpUtf8 && !caps.smtpUtf8) return refuse(ErrorCodes.ECAPABILITY, 'An address is not ASCII and the server does not offer SMTPUTF8 (RFC 6531)');
  // Also with BDAT: the bytes are not line-parsed, but 8-bit content still has to be declared.
  if (job.eightBit === true && !caps.eightBitMime)
    return refuse(ErrorCodes.ECAPABILITY, 'The message has 8-bit content and the server does not offer 8BITMIME (RFC 6152)');
  if (job.dsn && !caps.dsn) return refuse(ErrorCodes.ECAPABILITY, 'DSN was requested and the server does not offer DSN (RFC 3461)');
  if (caps.size && job.size !== undefined && job.size > caps.size) {
    return refuse(ErrorCodes.EMESSAGE, `The message (${job.size} bytes) is larger than the server's SIZE limit (${caps.size} bytes, RFC 1870)`);
  }
  return null;
}

/**
 * Appends the transaction's opening to `out`: `[RSET] MAIL RCPT… DATA` or `… BDAT n LAST <bytes>` in one
 * group with PIPELINING; `[RSET]` or `MAIL` alone in lock-step. `reset`: a failed transaction left
 * state on the server (RFC 5321 §4.1.1.5).
 */
export function openTransaction(wire: Wire, txn: Transaction, caps: Capabilities, reset: boolean, out: Chunk[]): void {
  const job = txn.job;
  const t = wire.timeouts;
  // The whole group is built as one string, encoded by the socket as it writes (socket.ts Chunk).
  let group = '';
  const params = {
    size: caps.size !== null ? job.size : undefined,
    // RFC 6152: declare 8-bit content; for a stream of unknown content, declare it when offered.
    body8bit: caps.eightBitMime && job.eightBit !== false,
    smtpUtf8: job.smtpUtf8,
    dsn: job.dsn,
  };
  const mail = mailCommand(job.from, params);
  if (reset) {
    if (!wire.pipelining) {
      // Lock-step: RSET alone; MAIL follows its reply (see onReset).
      txn.pendingMail = mail;
      wire.expect('RSET', txn, 0, t.command);
      out.push('RSET\r\n');
      return;
    }
    group = 'RSET\r\n';
    wire.expect('RSET', txn, 0, t.command);
  }
  group += mail;
  wire.expect('MAIL', txn, 0, t.mail);
  if (!wire.pipelining) {
    out.push(group);
    return; // lock-step: RCPT follows MAIL's reply
  }
  for (let i = 0; i < txn.to.length; i++) {
    group += rcptCommand(txn.to[i]!, job.dsn);
    wire.expect('RCPT', txn, i, t.rcpt);
  }
  if (!txn.chunking) {
    out.push(`${group}DATA\r\n`);
    wire.expect('DATA', txn, 0, t.data);
  } else if (job.content.body) {
    pushBdatLast(wire, txn, out, group);
  } else {
    out.push(group);
  }
  // A stream body with CHUNKING waits for the envelope replies (see afterRecipients), and holds the
  // connection so that no other transaction's bytes come between its envelope and its chunks.
  if (txn.chunking && !job.content.body) wire.hold(true);
}

/** `BDAT n LAST` and the bytes (RFC 3030), after `prefix` (the envelope, when pipelined). */
function pushBdatLast(wire: Wire, txn: Transaction, out: Chunk[], prefix = ''): void {
  const body = txn.job.content.bdatBody();
  out.push(`${prefix}BDAT ${body.length} LAST\r\n`, body);
  txn.committed = true;
  wire.expect('BDAT_LAST', txn, 0, wire.timeouts.dataEnd);
}

/** Routes a transaction's reply to its handler. */
export function onTransactionReply(wire: Wire, kind: ExpectKind, txn: Transaction, index: number, reply: Reply): void {
  switch (kind) {
    case 'RSET':
      return onReset(wire, txn, reply);
    case 'MAIL':
      return onMail(wire, txn, reply);
    case 'RCPT':
      return onRcpt(wire, txn, index, reply);
    case 'DATA':
      return onData(wire, txn, reply);
    case 'DOT':
      if (txn.lmtp && !txn.loneDot) {
        if (!onLmtpDot(txn, txn.lmtp, reply)) return;
        if (txn.final!.code < 400 && !ok(txn.final)) wire.retire();
        return wire.finish(txn);
      }
      txn.final = reply;
      if (reply.code < 400 && !ok(reply)) wire.retire();
      return wire.finish(txn);
    case 'BDAT_LAST':
      txn.final = reply;
      // A 3xx to the end of the content breaks the protocol (classify: unknown); no new transactions here.
      if (reply.code < 400 && !ok(reply)) wire.retire();
      return wire.finish(txn);
    case 'BDAT':
      if (!ok(reply) && !txn.bdatError) txn.bdatError = reply;
      if (txn.bdatError && txn.owed === 0 && !wire.writing) wire.finish(txn);
      return;
  }
}

/** Lock-step: the transaction waiting behind this RSET writes its MAIL now. */
function onReset(wire: Wire, txn: Transaction, reply: Reply): void {
  if (txn.pendingMail === null) {
    // Pipelined: the MAIL behind it is already written; the server's state is unknown, so this
    // connection retires and the transaction is classified knowing it (RFC 5321 §4.1.1.5).
    if (!ok(reply)) {
      wire.retire();
      txn.resetFailed = true;
    }
    return;
  }
  const mail = txn.pendingMail;
  txn.pendingMail = null;
  // RFC 5321 §4.1.1.5: RSET must be answered 250; anything else leaves the server's state unknown.
  // Not a verdict on the message: it goes back to the queue, and this connection retires.
  if (!ok(reply)) {
    wire.retire();
    txn.mail = syntheticReply(451, '4.3.0', `RSET was refused: ${reply.lines.join(' ')}`);
    return wire.finish(txn);
  }
  wire.expect('MAIL', txn, 0, wire.timeouts.mail);
  wire.send([mail]);
}

function onMail(wire: Wire, txn: Transaction, reply: Reply): void {
  txn.mail = reply;
  if (!ok(reply)) {
    // In a pipelined group the RCPTs and DATA that follow get 503s that we still read; finish
    // when the last of them arrives. In lock-step nothing else was sent.
    if (txn.owed === 0) wire.finish(txn);
    return;
  }
  if (!wire.pipelining) lockstepRcpt(wire, txn, 0);
}

function onRcpt(wire: Wire, txn: Transaction, index: number, reply: Reply): void {
  txn.rcpt[index] = reply;
  if (ok(reply)) txn.accepted++;
  if (wire.pipelining) {
    // A CHUNKING stream waits for the last RCPT reply before its first chunk; otherwise DATA's or
    // BDAT's reply, still owed, ends the group.
    if (index === txn.to.length - 1 && txn.chunking && !txn.job.content.body) afterRecipients(wire, txn);
    return;
  }
  // Lock-step. After "too many recipients" the rest go in another transaction (RFC 5321 §4.5.3.1.10).
  if (isTooManyRecipients(reply)) return afterRecipients(wire, txn);
  if (index + 1 < txn.to.length) return lockstepRcpt(wire, txn, index + 1);
  afterRecipients(wire, txn);
}

function lockstepRcpt(wire: Wire, txn: Transaction, index: number): void {
  wire.expect('RCPT', txn, index, wire.timeouts.rcpt);
  wire.send([rcptCommand(txn.to[index]!, txn.job.dsn)]);
}

/** Every RCPT has its reply, and nothing for the content was sent yet (lock-step, or a CHUNKING stream). */
function afterRecipients(wire: Wire, txn: Transaction): void {
  if (txn.accepted === 0) {
    if (txn.chunking && wire.pipelining) wire.hold(false);
    return wire.finish(txn);
  }
  if (!txn.chunking) {
    wire.expect('DATA', txn, 0, wire.timeouts.data);
    wire.send(['DATA\r\n']);
    return;
  }
  if (txn.job.content.body) {
    const out: Chunk[] = [];
    pushBdatLast(wire, txn, out);
    wire.send(out);
    return;
  }
  wire.stream(txn);
}

function onData(wire: Wire, txn: Transaction, reply: Reply): void {
  txn.data = reply;
  if (reply.code < 400 && reply.code !== 354) {
    // 250 instead of 354: the server may read whatever comes next as content. Drop the connection at
    // once (the transaction ends transient, classify.ts); no content was sent.
    return wire.violation(dataNot354(reply));
  }
  if (reply.code !== 354) return wire.finish(txn);
  if (!ok(txn.mail)) {
    // 354 although MAIL was refused: the RCPTs were taken into a transaction that is not ours (a
    // refused RSET left the last one open). Dropped without the "." the server discards it (RFC 5321
    // §4.1.1.4); a lone "." could deliver an empty message.
    return wire.violation(
      new SluiceError(ErrorCodes.EPROTOCOL, `DATA was answered 354 although MAIL was refused (${txn.mail?.lines.join(' ')})`, { command: 'DATA', reply }),
    );
  }
  if (txn.accepted === 0) {
    // RFC 2920 §3.1: every RCPT failed but DATA got 354 anyway: send a lone "." so that no content
    // is delivered, and read its reply.
    txn.loneDot = true;
    wire.expect('DOT', txn, 0, wire.timeouts.dataEnd);
    wire.send([DATA_TERMINATOR]);
    return;
  }
  if (!txn.job.content.body) return wire.stream(txn);
  const out = txn.job.content.dataChunks().slice();
  txn.committed = true;
  expectDot(wire.expect, txn, wire.timeouts.dataEnd);
  wire.afterContent(out);
}
