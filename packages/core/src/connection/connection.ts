import net from 'node:net';
import tls from 'node:tls';
import { authenticate, chooseMechanism } from '../auth.js';
import { ErrorCodes, SluiceError, SmtpReplyError, codeForCommand } from '../errors.js';
import { bdatBody, dataChunks, type PreparedMessage, type RecipientResult, recipientResult } from '../message.js';
import { BodyEncoder, DATA_TERMINATOR } from '../protocol/body.js';
import { type Capabilities, parseCapabilities } from '../protocol/capabilities.js';
import { mailCommand, rcptCommand } from '../protocol/commands.js';
import { type Reply, ReplyParser, syntheticReply } from '../protocol/reply.js';
import type { ConnectionOptions, Logger } from '../options.js';

/** How one transaction ended, as the connection saw it. The pool turns it into the message's outcome. */
export type TransactionResult =
  | {
      type: 'delivered';
      reply: Reply;
      accepted: RecipientResult[];
      rejected: RecipientResult[];
      pending: RecipientResult[];
      /** Recipients not tried because the server said "too many recipients": another transaction. */
      deferred: string[];
    }
  | { type: 'rejected'; error: SluiceError; rejected: RecipientResult[] }
  | {
      type: 'transient';
      error: SluiceError;
      rejected: RecipientResult[];
      /** The recipients to try again. */
      retry: string[];
      /** Retry at once without backoff (a stale connection or a pipelining race, not a server verdict). */
      immediate: boolean;
    }
  | { type: 'unknown'; error: SluiceError; rejected: RecipientResult[] };

/** What the connection needs from its pool. */
export interface ConnectionOwner<J extends PreparedMessage> {
  /** The next message for this connection, or null. Called only when it can write one now. */
  next(conn: Connection<J>): J | null;
  /** A transaction ended. */
  settle(conn: Connection<J>, job: J, result: TransactionResult): void;
  /** Nothing in flight and nothing was available. */
  idle(conn: Connection<J>): void;
  /** The socket closed (error is null for an orderly close). */
  closed(conn: Connection<J>, error: SluiceError | null): void;
}

type ExpectKind = 'SETUP' | 'RSET' | 'MAIL' | 'RCPT' | 'DATA' | 'DOT' | 'BDAT' | 'BDAT_LAST' | 'QUIT';

interface Expectation {
  kind: ExpectKind;
  txn: Transaction | null;
  index: number;
  timeout: number;
  resolve: ((reply: Reply) => void) | null;
  /** Setup steps: the connection closed before the reply. */
  reject?: (error: SluiceError) => void;
}

interface Transaction {
  job: PreparedMessage;
  to: string[];
  mail: Reply | null;
  rcpt: Array<Reply | null>;
  accepted: number;
  data: Reply | null;
  final: Reply | null;
  /** Error reply to a BDAT chunk: no more chunks may be sent (RFC 3030 §2). */
  bdatError: Reply | null;
  /** The final "." or BDAT LAST was written: from here a lost connection means "unknown". */
  committed: boolean;
  /** A lone "." sent after a 354 that came although every RCPT failed (RFC 2920 §3.1). */
  loneDot: boolean;
  /** Replies still owed to this transaction. */
  owed: number;
  /** DATA mode, or BDAT (CHUNKING). */
  chunking: boolean;
  /** Written while other transactions were in flight after a failure (window mode). */
  windowed: boolean;
  /** Lock-step after a failure: the MAIL command waiting for RSET's reply. */
  pendingMail: string | null;
  done: boolean;
}

const CONNECTION_LOST = syntheticReply(451, '4.4.2', 'Connection lost');

let nextId = 1;

function ok(reply: Reply | null): boolean {
  return reply !== null && reply.code >= 200 && reply.code < 300;
}

/** RFC 5321 §4.5.3.1.10: "452 Too many recipients"; RFC 3463 gives it 4.5.3. */
function isTooManyRecipients(reply: Reply): boolean {
  return reply.code === 452 && (reply.enhanced === '4.5.3' || /too many recipients/i.test(reply.text));
}

/**
 * One SMTP connection: a socket, its setup state machine (greeting, EHLO, STARTTLS, AUTH), and a FIFO
 * of the replies it is owed. Replies are matched to commands by position only (RFC 2920 §3.1).
 *
 * Message transactions are driven by replies, never by timers:
 * - PIPELINING + DATA: `[RSET] MAIL RCPT… DATA` in one write; when the 354 comes, the content, the
 *   final "." and the next message's `MAIL RCPT… DATA` go out in ONE write (RFC 2920 §3.1 lets the
 *   content open a group), so a warm connection spends one round trip per message.
 * - CHUNKING: `[RSET] MAIL RCPT… BDAT n LAST <bytes>` in one write (RFC 3030); up to `chunkingWindow`
 *   transactions in flight.
 * - Lock-step (no PIPELINING): one command, one reply.
 */
export class Connection<J extends PreparedMessage = PreparedMessage> {
  readonly id = nextId++;
  capabilities: Capabilities = parseCapabilities(null);
  /** Encrypted (implicit TLS or after STARTTLS). */
  encrypted = false;
  authenticated = false;
  state: 'new' | 'connecting' | 'ready' | 'closing' | 'closed' = 'new';
  /** No new transactions: message cap reached, 421 received, or the pool is closing. */
  retiring = false;
  /** Transactions started on this connection. */
  started = 0;
  lastActive = Date.now();

  private socket: net.Socket | null = null;
  private readonly parser: ReplyParser;
  private fifo: Expectation[] = [];
  private head = 0;
  private active: Transaction[] = [];
  private needsReset = false;
  /** A stream body is being written: nothing else may be written until it is done. */
  private writing = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private deadline = 0;
  private deadlineWhat = '';
  private closeError: SluiceError | null = null;
  /** While a socket connects or a TLS handshake runs: fails that step (destroy() calls it). */
  private cancelPending: ((error: SluiceError) => void) | null = null;
  private pipelining = false;
  private chunking = false;
  private quitSent = false;
  private readonly onData = (chunk: Buffer) => this.handleData(chunk);
  private readonly onClose = () => this.handleClose();
  private readonly onError = (err: Error) => {
    this.closeError ??= new SluiceError(ErrorCodes.ECONNECTION, `Connection error: ${err.message}`, { cause: err, command: 'CONNECTION' });
  };

  constructor(
    private readonly options: ConnectionOptions,
    private readonly owner: ConnectionOwner<J>,
  ) {
    this.parser = new ReplyParser(options.replyLimits);
  }

  /** Transactions in flight. */
  get inFlight(): number {
    return this.active.length;
  }

  /** True when ready and nothing is in flight. */
  get isIdle(): boolean {
    return this.state === 'ready' && this.active.length === 0 && !this.writing;
  }

  /** Whether the pool may hand this connection another message right now (it also asks via `next`). */
  get canAccept(): boolean {
    return this.state === 'ready' && !this.retiring && !this.writing && this.started < this.options.maxMessages;
  }

  // ------------------------------------------------------------------------------------------------
  // Setup
  // ------------------------------------------------------------------------------------------------

  /** Connects and runs greeting, EHLO, STARTTLS and AUTH. Rejects with a SluiceError; the socket is then closed. */
  async open(): Promise<Capabilities> {
    this.state = 'connecting';
    try {
      await this.connectSocket();
      const greeting = await this.request(null, this.options.timeouts.greeting, 'GREETING');
      if (greeting.code !== 220)
        throw new SmtpReplyError(ErrorCodes.ECONNECTION, 'GREETING', greeting, `The server refused the connection: ${greeting.lines.join(' ')}`);
      await this.hello();
      await this.maybeStartTls();
      await this.maybeAuthenticate();
      const closed = this.setupClosed();
      if (closed) throw closed;
    } catch (err) {
      const error = err instanceof SluiceError ? err : new SluiceError(ErrorCodes.ECONNECTION, String((err as Error)?.message ?? err), { cause: err });
      this.destroy(error);
      this.handleClose(); // state 'connecting': the owner hears of it through open()'s rejection
      throw error;
    }
    const caps = this.capabilities;
    this.pipelining = this.options.pipelining && caps.pipelining;
    this.chunking = this.options.chunking && caps.chunking;
    this.state = 'ready';
    this.lastActive = Date.now();
    return caps;
  }

  private connectSocket(): Promise<void> {
    const { host, port, secure, localAddress } = this.options;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: SluiceError) => {
        if (settled) return;
        settled = true;
        this.cancelPending = null;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      this.cancelPending = fail;
      const timer = setTimeout(
        () =>
          fail(
            new SluiceError(ErrorCodes.ETIMEDOUT, `Connection to ${host}:${port} timed out after ${this.options.timeouts.connect} ms`, { command: 'CONNECT' }),
          ),
        this.options.timeouts.connect,
      );
      const socket: net.Socket = secure
        ? tls.connect({ ...this.tlsOptions(), host, port, localAddress } as tls.ConnectionOptions)
        : net.connect({ host, port, localAddress });
      socket.setNoDelay(true);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        const isTls = secure && (err.code?.startsWith('ERR_TLS') || err.code?.includes('CERT') || /certificate|ssl|tls/i.test(err.message));
        fail(
          new SluiceError(isTls ? ErrorCodes.ETLS : ErrorCodes.ECONNECTION, `${isTls ? 'TLS' : 'Connection'} error with ${host}:${port}: ${err.message}`, {
            cause: err,
            command: 'CONNECT',
            // A certificate the client refuses is refused again on the next attempt.
            permanent: Boolean(isTls),
          }),
        );
      });
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        if (settled) return;
        settled = true;
        this.cancelPending = null;
        clearTimeout(timer);
        socket.removeAllListeners('error');
        this.encrypted = secure;
        this.attach(socket);
        resolve();
      });
    });
  }

  private tlsOptions(): tls.ConnectionOptions {
    const { host, tls: tlsOptions } = this.options;
    // Certificates are verified unless the user turns it off explicitly (rejectUnauthorized: false).
    return { servername: net.isIP(host) ? undefined : host, ...tlsOptions };
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
  }

  private async hello(): Promise<void> {
    const name = this.options.name;
    const ehlo = await this.request(`EHLO ${name}\r\n`, this.options.timeouts.command, 'EHLO');
    if (ehlo.code === 250) {
      this.capabilities = parseCapabilities(ehlo);
      return;
    }
    // A 4xx (421 included) is "not now", not "I do not know EHLO": falling back to HELO would lose
    // every extension, STARTTLS first. Fail the attempt as transient instead.
    if (ehlo.code >= 400 && ehlo.code < 500) throw new SmtpReplyError(ErrorCodes.ECONNECTION, 'EHLO', ehlo);
    // RFC 5321 §3.2: a server that does not know EHLO answers 5xx (500/502); fall back to HELO.
    const helo = await this.request(`HELO ${name}\r\n`, this.options.timeouts.command, 'HELO');
    if (helo.code !== 250) throw new SmtpReplyError(ErrorCodes.EPROTOCOL, 'HELO', helo);
    this.capabilities = parseCapabilities(null);
  }

  private async maybeStartTls(): Promise<void> {
    const { requireTLS, ignoreTLS } = this.options;
    if (this.encrypted) return;
    if (!this.capabilities.starttls || ignoreTLS) {
      if (requireTLS) {
        throw new SluiceError(ErrorCodes.ETLS, ignoreTLS ? 'requireTLS and ignoreTLS are both set' : 'TLS is required but the server does not offer STARTTLS', {
          command: 'STARTTLS',
          permanent: true,
        });
      }
      return;
    }
    const reply = await this.request('STARTTLS\r\n', this.options.timeouts.command, 'STARTTLS');
    if (reply.code !== 220) throw new SmtpReplyError(ErrorCodes.ETLS, 'STARTTLS', reply);
    // RFC 3207 §4.2 / CVE-2011-0411: anything the server sent after the 220 in clear text would be
    // injected into the TLS session. The FIFO is empty now; any buffered byte is an attack.
    if (this.parser.partial) throw new SluiceError(ErrorCodes.ETLS, 'The server sent data after its STARTTLS reply', { command: 'STARTTLS', permanent: true });
    const closed = this.setupClosed();
    if (closed) throw closed;
    const plain = this.socket!;
    this.detach(plain);
    await new Promise<void>((resolve, reject) => {
      const secure = tls.connect({ ...this.tlsOptions(), socket: plain });
      const fail = (error: SluiceError) => {
        this.cancelPending = null;
        clearTimeout(timer);
        secure.destroy();
        reject(error);
      };
      this.cancelPending = fail;
      const timer = setTimeout(
        () => fail(new SluiceError(ErrorCodes.ETIMEDOUT, 'TLS handshake timed out', { command: 'STARTTLS' })),
        this.options.timeouts.connect,
      );
      secure.once('error', (err) =>
        fail(new SluiceError(ErrorCodes.ETLS, `TLS negotiation failed: ${err.message}`, { cause: err, command: 'STARTTLS', permanent: true })),
      );
      secure.once('secureConnect', () => {
        this.cancelPending = null;
        clearTimeout(timer);
        secure.removeAllListeners('error');
        this.encrypted = true;
        this.attach(secure);
        resolve();
      });
    });
    // RFC 3207 §4.2: forget everything learnt before TLS and say EHLO again.
    await this.hello();
  }

  private async maybeAuthenticate(): Promise<void> {
    const { auth, authMethod, allowInsecureAuth } = this.options;
    if (!auth) return;
    if (!this.encrypted && !allowInsecureAuth) {
      throw new SluiceError(
        ErrorCodes.EAUTH,
        'Refusing to send credentials over an unencrypted connection (the server offers no STARTTLS, or ignoreTLS is set); set allowInsecureAuth to override',
        { command: 'AUTH', permanent: true },
      );
    }
    const mechanism = chooseMechanism(auth, this.capabilities.auth, authMethod);
    await authenticate((line, secret) => this.request(line, this.options.timeouts.command, secret ? 'AUTH ***' : line.trim()), auth, mechanism);
    this.authenticated = true;
  }

  /**
   * Setup goes on after an await, and destroy() (a pool cutting attempts nobody needs) may have closed
   * the connection in between: nothing would ever answer the next step.
   */
  private setupClosed(): SluiceError | null {
    if (this.state !== 'closed') return null;
    return this.closeError ?? new SluiceError(ErrorCodes.ECONNECTION, 'The connection closed during setup', { command: 'CONNECTION', reply: CONNECTION_LOST });
  }

  /** Writes a setup line (or nothing, for the greeting) and waits for its reply. */
  private request(line: string | null, timeout: number, what: string): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const closed = this.setupClosed();
      if (closed) return reject(closed);
      this.log('debug', `C: ${what}`);
      this.expect({ kind: 'SETUP', txn: null, index: 0, timeout, resolve, reject }, what);
      if (line !== null) this.socket!.write(line);
    }).then((reply) => {
      this.log('debug', `S: ${reply.lines[reply.lines.length - 1]}`);
      return reply;
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Transactions
  // ------------------------------------------------------------------------------------------------

  /** Pulls messages from the owner while this connection can write one now. */
  pump(): void {
    if (this.state !== 'ready' || this.writing) return;
    // Lock-step and DATA-pipelined connections start a transaction only when nothing is in flight;
    // a DATA-pipelined one takes the next message when it writes the content (see onDataReply).
    const window = this.chunking && this.pipelining ? this.options.chunkingWindow : 1;
    while (this.active.length < window && this.canAccept) {
      const job = this.owner.next(this);
      if (!job) break;
      const chunks: Buffer[] = [];
      this.begin(job, chunks);
      if (chunks.length) this.write(chunks);
      if (this.writing) return;
    }
    if (this.active.length === 0) {
      if (this.retiring || this.started >= this.options.maxMessages) this.quit();
      else this.owner.idle(this);
    }
  }

  /**
   * Starts a transaction for `job`, appending what can be written now to `out`. Checks the message
   * against the server's extensions first: nothing is written for a message the server cannot take.
   */
  private begin(job: J, out: Buffer[]): void {
    this.lastActive = Date.now();
    const caps = this.capabilities;
    const refuse = (code: typeof ErrorCodes.ECAPABILITY | typeof ErrorCodes.EMESSAGE, message: string) =>
      this.owner.settle(this, job, { type: 'rejected', error: new SluiceError(code, message, { permanent: true, command: 'MAIL' }), rejected: [] });
    if (job.smtpUtf8 && !caps.smtpUtf8) return refuse(ErrorCodes.ECAPABILITY, 'An address is not ASCII and the server does not offer SMTPUTF8 (RFC 6531)');
    // Also with BDAT: the bytes are not line-parsed, but 8-bit content still has to be declared.
    if (job.eightBit === true && !caps.eightBitMime) {
      return refuse(ErrorCodes.ECAPABILITY, 'The message has 8-bit content and the server does not offer 8BITMIME (RFC 6152)');
    }
    if (job.dsn && !caps.dsn) return refuse(ErrorCodes.ECAPABILITY, 'DSN was requested and the server does not offer DSN (RFC 3461)');
    if (caps.size && job.size !== undefined && job.size > caps.size) {
      return refuse(ErrorCodes.EMESSAGE, `The message (${job.size} bytes) is larger than the server's SIZE limit (${caps.size} bytes, RFC 1870)`);
    }
    this.started++;
    if (this.started >= this.options.maxMessages) this.retiring = true;
    const chunking = this.chunking;
    const txn: Transaction = {
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
      windowed: this.active.length > 0,
      pendingMail: null,
      done: false,
    };
    this.active.push(txn);
    const t = this.options.timeouts;
    // The whole group is built as one string and encoded once: fewer allocations on the hot path.
    let group = '';
    const params = {
      size: caps.size !== null ? job.size : undefined,
      // RFC 6152: declare 8-bit content; for a stream of unknown content, declare it when offered.
      body8bit: caps.eightBitMime && job.eightBit !== false,
      smtpUtf8: job.smtpUtf8,
      dsn: job.dsn,
    };
    const mail = mailCommand(job.from, params);
    if (this.needsReset) {
      // RFC 5321 §4.1.1.5: clear the failed transaction's state before the next MAIL.
      this.needsReset = false;
      if (!this.pipelining) {
        // Lock-step: RSET alone; MAIL follows its reply (see onReset).
        txn.pendingMail = mail;
        this.expectTxn('RSET', txn, 0, t.command);
        out.push(Buffer.from('RSET\r\n'));
        return;
      }
      group = 'RSET\r\n';
      this.expect({ kind: 'RSET', txn: null, index: 0, timeout: t.command, resolve: null });
    }
    group += mail;
    this.expectTxn('MAIL', txn, 0, t.mail);
    if (!this.pipelining) {
      out.push(Buffer.from(group));
      return; // lock-step: RCPT follows MAIL's reply
    }
    for (let i = 0; i < txn.to.length; i++) {
      group += rcptCommand(txn.to[i]!, job.dsn);
      this.expectTxn('RCPT', txn, i, t.rcpt);
    }
    if (!chunking) {
      out.push(Buffer.from(`${group}DATA\r\n`));
      this.expectTxn('DATA', txn, 0, t.data);
    } else if (job.body) {
      this.pushBdatLast(txn, out, group);
    } else {
      out.push(Buffer.from(group));
    }
    // A stream body with CHUNKING waits for the envelope replies (see afterRecipients), and holds the
    // connection so that no other transaction's bytes come between its envelope and its chunks.
    if (chunking && !job.body) this.writing = true;
  }

  /** `BDAT n LAST` and the bytes (RFC 3030), after `prefix` (the envelope, when pipelined). */
  private pushBdatLast(txn: Transaction, out: Buffer[], prefix = ''): void {
    const body = bdatBody(txn.job);
    out.push(Buffer.from(`${prefix}BDAT ${body.length} LAST\r\n`), body);
    txn.committed = true;
    this.expectTxn('BDAT_LAST', txn, 0, this.options.timeouts.dataEnd);
  }

  private expectTxn(kind: ExpectKind, txn: Transaction, index: number, timeout: number): void {
    txn.owed++;
    this.expect({ kind, txn, index, timeout, resolve: null });
  }

  private expect(e: Expectation, what?: string): void {
    this.fifo.push(e);
    if (this.fifo.length - this.head === 1) this.arm(e.timeout, what ?? e.kind);
  }

  private handleReply(reply: Reply): void {
    if (this.head >= this.fifo.length) {
      // RFC 5321 §3.8: a server may send 421 at any time before closing.
      if (reply.code === 421) {
        this.retiring = true;
        this.closeError ??= new SmtpReplyError(ErrorCodes.ECONNECTION, 'CONNECTION', reply, `The server is closing the connection: ${reply.lines.join(' ')}`);
        return;
      }
      throw new SluiceError(ErrorCodes.EPROTOCOL, `Unexpected reply with no command outstanding: ${reply.lines.join(' ')}`, { reply });
    }
    const e = this.fifo[this.head]!;
    this.fifo[this.head++] = undefined as unknown as Expectation;
    if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    }
    const next = this.fifo[this.head];
    if (next) this.arm(next.timeout, next.kind);
    else this.disarm();
    if (reply.code === 421) this.retiring = true;
    if (e.resolve) return e.resolve(reply);
    const txn = e.txn;
    if (txn) txn.owed--;
    switch (e.kind) {
      case 'RSET':
        return this.onReset(txn, reply);
      case 'QUIT':
        // RFC 5321 §4.1.1.10: after its reply the server closes the channel and nothing more is said
        // either way. Waiting for the server's FIN only delays close(); a server that keeps its side
        // open would hold it forever (the quit timeout covers the reply, not the FIN).
        this.socket?.destroy();
        return;
      case 'MAIL':
        return this.onMail(txn!, reply);
      case 'RCPT':
        return this.onRcpt(txn!, e.index, reply);
      case 'DATA':
        return this.onDataReply(txn!, reply);
      case 'DOT':
      case 'BDAT_LAST':
        txn!.final = reply;
        return this.finish(txn!);
      case 'BDAT':
        if (!ok(reply) && !txn!.bdatError) txn!.bdatError = reply;
        if (txn!.bdatError && txn!.owed === 0 && !this.writing) this.finish(txn!);
        return;
    }
  }

  /** Lock-step: the transaction waiting behind this RSET writes its MAIL now. */
  private onReset(txn: Transaction | null, reply: Reply): void {
    if (!txn || txn.pendingMail === null) return;
    const mail = txn.pendingMail;
    txn.pendingMail = null;
    // RFC 5321 §4.1.1.5: RSET must be answered 250; anything else leaves the server's state unknown.
    // Not a verdict on the message: it goes back to the queue, and this connection retires.
    if (!ok(reply)) {
      this.retiring = true;
      txn.mail = syntheticReply(451, '4.3.0', `RSET was refused: ${reply.lines.join(' ')}`);
      return this.finish(txn);
    }
    this.expectTxn('MAIL', txn, 0, this.options.timeouts.mail);
    this.write([Buffer.from(mail)]);
  }

  private onMail(txn: Transaction, reply: Reply): void {
    txn.mail = reply;
    if (!ok(reply)) {
      // In a pipelined group the RCPTs and DATA that follow get 503s that we still read; finish
      // when the last of them arrives. In lock-step nothing else was sent.
      if (txn.owed === 0) this.finish(txn);
      return;
    }
    if (!this.pipelining) this.lockstepNextRcpt(txn, 0);
  }

  private onRcpt(txn: Transaction, index: number, reply: Reply): void {
    txn.rcpt[index] = reply;
    if (ok(reply)) txn.accepted++;
    if (this.pipelining) {
      // A CHUNKING stream waits for the last RCPT reply before its first chunk; otherwise DATA's or
      // BDAT's reply, still owed, ends the group.
      if (index === txn.to.length - 1 && txn.chunking && !txn.job.body) this.afterRecipients(txn);
      return;
    }
    // Lock-step. After "too many recipients" the rest go in another transaction (RFC 5321 §4.5.3.1.10).
    if (isTooManyRecipients(reply)) return this.afterRecipients(txn);
    if (index + 1 < txn.to.length) return this.lockstepNextRcpt(txn, index + 1);
    this.afterRecipients(txn);
  }

  private lockstepNextRcpt(txn: Transaction, index: number): void {
    this.expectTxn('RCPT', txn, index, this.options.timeouts.rcpt);
    this.write([Buffer.from(rcptCommand(txn.to[index]!, txn.job.dsn))]);
  }

  /** Every RCPT has its reply, and nothing for the content was sent yet (lock-step, or a CHUNKING stream). */
  private afterRecipients(txn: Transaction): void {
    if (txn.accepted === 0) {
      if (txn.chunking && this.pipelining) this.writing = false;
      return this.finish(txn);
    }
    if (!txn.chunking) {
      this.expectTxn('DATA', txn, 0, this.options.timeouts.data);
      this.write([Buffer.from('DATA\r\n')]);
      return;
    }
    if (txn.job.body) {
      const out: Buffer[] = [];
      this.pushBdatLast(txn, out);
      this.write(out);
      return;
    }
    this.writing = true;
    void this.streamBody(txn);
  }

  private onDataReply(txn: Transaction, reply: Reply): void {
    txn.data = reply;
    if (reply.code !== 354) return this.finish(txn);
    if (txn.accepted === 0) {
      // RFC 2920 §3.1: every RCPT failed but DATA got 354 anyway: send a lone "." so that no content
      // is delivered, and read its reply.
      txn.loneDot = true;
      this.expectTxn('DOT', txn, 0, this.options.timeouts.dataEnd);
      this.write([DATA_TERMINATOR]);
      return;
    }
    if (!txn.job.body) {
      this.writing = true;
      void this.streamBody(txn);
      return;
    }
    const out = dataChunks(txn.job).slice();
    txn.committed = true;
    this.expectTxn('DOT', txn, 0, this.options.timeouts.dataEnd);
    this.continueAfterContent(out);
  }

  /**
   * After a message's content: with PIPELINING, the next message's envelope goes in the same write
   * (RFC 2920 §3.1), or QUIT when this connection retires (QUIT may end a group).
   */
  private continueAfterContent(out: Buffer[]): void {
    if (this.pipelining && this.canAccept && !this.chunking) {
      const job = this.owner.next(this);
      if (job) this.begin(job, out);
    }
    if (this.pipelining && this.retiring && this.active.length === 1 && !this.quitSent && this.state === 'ready') {
      this.quitSent = true;
      out.push(Buffer.from('QUIT\r\n'));
      this.expect({ kind: 'QUIT', txn: null, index: 0, timeout: this.options.timeouts.quit, resolve: null });
    }
    this.write(out);
  }

  private async streamBody(txn: Transaction): Promise<void> {
    const job = txn.job;
    const stream = job.stream!;
    job.consumed = true;
    const encoder = new BodyEncoder(!txn.chunking);
    const chunkSize = this.options.chunkSize;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flushBdat = async (last: boolean) => {
      const body = pendingBytes === 0 ? Buffer.alloc(0) : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (last) txn.committed = true;
      this.expectTxn(last ? 'BDAT_LAST' : 'BDAT', txn, 0, last ? this.options.timeouts.dataEnd : this.options.timeouts.dataBlock);
      await this.writeAndDrain([Buffer.from(`BDAT ${body.length}${last ? ' LAST' : ''}\r\n`), body]);
    };
    try {
      for await (const chunk of stream) {
        if (this.state !== 'ready') return;
        if (txn.bdatError) break;
        const encoded = encoder.encode(chunk);
        if (!txn.chunking) {
          await this.writeAndDrain([encoded]);
          continue;
        }
        pending.push(encoded);
        pendingBytes += encoded.length;
        // Chunks of exactly chunkSize: a large piece of the stream is cut, not sent whole.
        while (pendingBytes >= chunkSize && !txn.bdatError) {
          const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
          pending = [all.subarray(0, chunkSize)];
          const restBytes = all.subarray(chunkSize);
          pendingBytes = chunkSize;
          await flushBdat(false);
          pending = restBytes.length ? [restBytes] : [];
          pendingBytes = restBytes.length;
        }
      }
    } catch (cause) {
      // The user's stream failed in the middle of the content. Without the final "." the server
      // discards what it got (RFC 5321 §4.1.1.4), so dropping the connection loses nothing else:
      // no other transaction is in flight while a stream is written.
      const error = new SluiceError(ErrorCodes.EMESSAGE, `The message body stream failed: ${(cause as Error)?.message ?? cause}`, {
        cause,
        permanent: true,
        command: 'DATA',
      });
      this.owner.settle(this, job as J, { type: 'rejected', error, rejected: [] });
      txn.done = true;
      this.active.splice(this.active.indexOf(txn), 1);
      this.destroy(error);
      return;
    }
    if (this.state !== 'ready') return;
    if (txn.chunking) {
      if (!txn.bdatError) await flushBdat(true);
      this.writing = false;
      if (txn.bdatError && txn.owed === 0) this.finish(txn);
      else this.pump(); // refill a BDAT window
      return;
    }
    txn.committed = true;
    this.expectTxn('DOT', txn, 0, this.options.timeouts.dataEnd);
    this.writing = false;
    this.continueAfterContent([encoder.terminator()]);
  }

  private async writeAndDrain(chunks: Buffer[]): Promise<void> {
    const socket = this.socket!;
    if (this.write(chunks)) return;
    // RFC 5321 §4.5.3.2.5: each block of content may take up to the data-block timeout.
    this.arm(this.options.timeouts.dataBlock, 'DATA block');
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
    const head = this.fifo[this.head];
    if (head) this.arm(head.timeout, head.kind);
    else this.disarm();
  }

  /** Writes a group with one syscall (cork/uncork becomes one writev). */
  private write(chunks: Buffer[]): boolean {
    const socket = this.socket;
    if (!socket || socket.destroyed) return true;
    if (chunks.length === 1) return socket.write(chunks[0]!);
    socket.cork();
    let result = true;
    for (const c of chunks) if (c.length) result = socket.write(c);
    socket.uncork();
    return result;
  }

  private finish(txn: Transaction): void {
    if (txn.done) return;
    txn.done = true;
    const index = this.active.indexOf(txn);
    if (index !== -1) this.active.splice(index, 1);
    const result = this.classify(txn);
    // RFC 5321 §4.1.1.5: a failed transaction whose MAIL was accepted leaves state on the server.
    if (result.type !== 'delivered' && txn.mail !== null && ok(txn.mail)) this.needsReset = true;
    this.lastActive = Date.now();
    this.owner.settle(this, txn.job as J, result);
    if (!this.writing) this.pump();
  }

  /** Turns a transaction's replies into its result. */
  private classify(txn: Transaction): TransactionResult {
    const rejected: RecipientResult[] = [];
    const pending: RecipientResult[] = [];
    const accepted: RecipientResult[] = [];
    const retry: string[] = [];
    const deferred: string[] = [];
    let firstFailure: { reply: Reply; address: string } | null = null;
    for (let i = 0; i < txn.to.length; i++) {
      const reply = txn.rcpt[i] ?? null;
      const address = txn.to[i]!;
      if (reply === null || isTooManyRecipients(reply)) deferred.push(address);
      else if (ok(reply)) accepted.push(recipientResult(address, reply));
      else {
        firstFailure ??= { reply, address };
        if (reply.code >= 500) rejected.push(recipientResult(address, reply));
        else {
          pending.push(recipientResult(address, reply));
          retry.push(address);
        }
      }
    }
    const mail = txn.mail;
    if (mail === null) {
      return { type: 'transient', error: this.lostError('MAIL'), rejected: [], retry: txn.to, immediate: true };
    }
    if (!ok(mail)) {
      const error = new SmtpReplyError(ErrorCodes.EENVELOPE, 'MAIL', mail);
      // 503 to a MAIL written behind a failed transaction in a BDAT window: a pipelining race, not a verdict.
      if (mail.code >= 500 && !(mail.code === 503 && txn.windowed)) {
        // Every recipient fails with MAIL's reply: the pipelined RCPTs' "503 need MAIL" says nothing about them.
        return { type: 'rejected', error, rejected: txn.to.map((address) => recipientResult(address, mail)) };
      }
      return { type: 'transient', error, rejected: [], retry: txn.to, immediate: mail.code === 503 };
    }
    if (txn.accepted === 0 || txn.loneDot) {
      const all = [...retry, ...deferred];
      if (all.length > 0) {
        const reply = firstFailure?.reply ?? CONNECTION_LOST;
        return {
          type: 'transient',
          error: new SmtpReplyError(ErrorCodes.EENVELOPE, 'RCPT', reply, `No recipient accepted: ${reply.lines.join(' ')}`),
          rejected,
          retry: all,
          immediate: false,
        };
      }
      const reply = firstFailure!.reply;
      const error = new SmtpReplyError(ErrorCodes.EENVELOPE, 'RCPT', reply, `Every recipient was rejected: ${reply.lines.join(' ')}`);
      return { type: 'rejected', error, rejected };
    }
    const recipients = accepted.map((a) => a.address);
    // The content phase.
    if (txn.data && txn.data.code !== 354) {
      const error = new SmtpReplyError(codeForCommand('DATA'), 'DATA', txn.data);
      if (txn.data.code >= 500) return { type: 'rejected', error, rejected: [...rejected, ...accepted.map((a) => ({ ...a }))] };
      return { type: 'transient', error, rejected, retry: [...recipients, ...retry, ...deferred], immediate: false };
    }
    // The first refused chunk is the verdict: replies to later chunks only say "discarded after an
    // earlier error" (RFC 3030 §2).
    const final = txn.bdatError ?? txn.final;
    if (final === null) {
      if (txn.committed) {
        return {
          type: 'unknown',
          error: new SluiceError(
            ErrorCodes.EUNKNOWN,
            'The connection was lost after the message content was sent and before the server replied: it may or may not have been delivered',
            {
              cause: this.closeError ?? undefined,
              command: txn.chunking ? 'BDAT' : 'DOT',
              outcome: 'unknown',
            },
          ),
          rejected,
        };
      }
      return {
        type: 'transient',
        error: this.lostError(txn.chunking ? 'BDAT' : 'DATA'),
        rejected,
        retry: [...recipients, ...retry, ...deferred],
        immediate: false,
      };
    }
    const command = txn.chunking ? 'BDAT' : 'DOT';
    if (ok(final)) return { type: 'delivered', reply: final, accepted, rejected, pending, deferred };
    const error = new SmtpReplyError(ErrorCodes.EMESSAGE, command, final, `The message was refused: ${final.lines.join(' ')}`);
    if (final.code >= 500)
      return {
        type: 'rejected',
        error,
        rejected: [...rejected, ...accepted.map((a) => ({ ...a, code: final.code, enhancedCode: final.enhanced, response: final.lines.join('\n') }))],
      };
    return { type: 'transient', error, rejected, retry: [...recipients, ...retry, ...deferred], immediate: false };
  }

  private lostError(command: string): SluiceError {
    const cause = this.closeError;
    if (cause && cause.code !== ErrorCodes.ECONNECTION) return cause;
    return new SluiceError(ErrorCodes.ECONNECTION, `The connection was lost before the message content was accepted${cause ? `: ${cause.message}` : ''}`, {
      cause: cause ?? undefined,
      command,
      reply: CONNECTION_LOST,
      permanent: false,
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Timers, input, close
  // ------------------------------------------------------------------------------------------------

  /**
   * One timer per connection, re-armed lazily: a reply only moves the deadline, and the timer, when it
   * fires early, sleeps again until the current deadline. It is reset only when a deadline moves earlier.
   */
  private arm(timeout: number, what: string): void {
    const deadline = Date.now() + timeout;
    this.deadline = deadline;
    this.deadlineWhat = what;
    if (this.timer && this.timerAt > deadline) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.timer) {
      this.timerAt = deadline;
      this.timer = setTimeout(this.onTimer, timeout);
    }
  }

  private disarm(): void {
    this.deadline = 0;
  }

  private readonly onTimer = () => {
    this.timer = null;
    if (this.deadline === 0 || this.state === 'closed') return;
    const left = this.deadline - Date.now();
    if (left > 0) {
      this.timerAt = this.deadline;
      this.timer = setTimeout(this.onTimer, left);
      return;
    }
    this.destroy(new SluiceError(ErrorCodes.ETIMEDOUT, `Timed out waiting for the server (${this.deadlineWhat})`, { command: this.deadlineWhat }));
  };

  private handleData(chunk: Buffer): void {
    try {
      this.parser.feed(chunk, (reply) => this.handleReply(reply));
    } catch (err) {
      const error = err instanceof SluiceError ? err : new SluiceError(ErrorCodes.EPROTOCOL, String(err), { cause: err });
      this.destroy(error);
    }
  }

  /**
   * Whether this connection keeps the process alive. The pool lets go of an idle one (a pool with nothing
   * to do must not hold a script open) and holds it again when it hands it work.
   */
  ref(hold: boolean): void {
    if (hold) {
      this.socket?.ref();
      this.timer?.ref();
    } else {
      this.socket?.unref();
      this.timer?.unref();
    }
  }

  /** Sends QUIT when idle, then closes (RFC 5321 §4.1.1.10). */
  quit(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.retiring = true;
    if (this.active.length > 0 || this.writing) return; // the last transaction's end calls pump → quit
    this.state = 'closing';
    const socket = this.socket;
    if (!socket || socket.destroyed) return this.handleClose();
    // The QUIT exchange is work: an awaited close() must not end with the process exiting under it.
    this.ref(true);
    if (!this.quitSent) {
      this.quitSent = true;
      this.expect({ kind: 'QUIT', txn: null, index: 0, timeout: this.options.timeouts.quit, resolve: null });
      socket.write('QUIT\r\n');
    }
    socket.end();
  }

  /** Closes the socket at once. Transactions in flight end as transient failures, or unknown after their content. */
  destroy(error?: SluiceError): void {
    if (this.state === 'closed') return;
    if (error) this.closeError ??= error;
    if (this.cancelPending) this.cancelPending(this.closeError ?? new SluiceError(ErrorCodes.ECONNECTION, 'The connection was closed', { command: 'CONNECT' }));
    this.socket?.destroy();
    if (!this.socket) this.handleClose();
  }

  private handleClose(): void {
    if (this.state === 'closed') return;
    const wasReady = this.state !== 'connecting';
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.socket?.destroy();
    const owedSetup = this.fifo.slice(this.head).filter((e) => e.resolve);
    const lost = this.active.length > 0 || this.fifo.length > this.head;
    const error =
      this.closeError ??
      (lost && !(this.quitSent && this.active.length === 0)
        ? new SluiceError(ErrorCodes.ECONNECTION, 'The server closed the connection', { command: 'CONNECTION', reply: CONNECTION_LOST })
        : null);
    if (error) this.closeError = error;
    this.fifo = [];
    this.head = 0;
    for (const e of owedSetup) {
      // A setup step waiting for a reply: open() fails with the reason (a timeout, a reset, a 421).
      e.reject!(
        this.closeError ??
          new SluiceError(ErrorCodes.ECONNECTION, 'The server closed the connection during setup', { command: 'CONNECTION', reply: CONNECTION_LOST }),
      );
    }
    const active = this.active;
    this.active = [];
    for (const txn of active) {
      if (txn.done) continue;
      txn.done = true;
      this.owner.settle(this, txn.job as J, this.classify(txn));
    }
    if (wasReady) this.owner.closed(this, error && this.quitSent && active.length === 0 ? null : error);
  }

  private log(level: keyof Logger, message: string): void {
    const fn = this.options.logger?.[level];
    if (fn) fn.call(this.options.logger, message, { connection: this.id });
  }
}
