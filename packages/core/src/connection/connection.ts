// Over 400 lines on purpose: the reply FIFO, the transactions in flight and the stream writer share one
// socket and one ordering (RFC 2920 §3.1: replies match commands by position only), so they stay in one
// class. Everything that can be separated is: socket.ts, setup.ts, transaction.ts, classify.ts, stream-body.ts,
// deadline.ts.
import assert from 'node:assert';
import type net from 'node:net';
import Denque from 'denque';
import { ErrorCodes, SluiceError, SmtpReplyError } from '../errors.js';
import type { PreparedMessage } from '../message.js';
import type { ConnectionOptions } from '../options.js';
import { type Capabilities, parseCapabilities } from '../protocol/capabilities.js';
import { type Reply, ReplyParser } from '../protocol/reply.js';
import { CONNECTION_LOST, type TransactionResult, classify, ok, refusedBehindDot } from './classify.js';
import { Deadline } from './deadline.js';
import { type SetupSession, setup } from './setup.js';
import { type StreamHost, writeStreamBody } from './stream-body.js';
import { WireTrace } from './trace.js';
import { type Cancel, type Chunk, type SocketListeners, attach, connectSocket, detach, drained, sessionReused, upgradeSocket, writeGroup } from './socket.js';
import type { TlsSessions } from './tls-session.js';
import { type ExpectKind, type Transaction, type Wire, newTransaction, onTransactionReply, openTransaction, refusal } from './transaction.js';

export type { TransactionResult } from './classify.js';

/**
 * The pool's side of a connection (the context object, as undici's `{ write, busy, resume, destroy }`):
 * the connection reports, the pool decides. The connection never picks a message itself.
 */
export interface ConnectionOwner<J extends PreparedMessage> {
  /**
   * The connection can write a message now: the owner calls `conn.write(job)` while `!conn.busy`, or
   * not at all. Called synchronously while a write is being built (the content of the previous message),
   * so that what the owner writes joins it (RFC 2920 §3.1).
   */
  free(conn: Connection<J>): void;
  /** A transaction ended. `streamed`: its stream body was read, so it cannot be sent again. */
  settle(conn: Connection<J>, job: J, result: TransactionResult, streamed: boolean): void;
  /** Nothing in flight and nothing was written. */
  idle(conn: Connection<J>): void;
  /** The socket closed (error is null for an orderly close). */
  closed(conn: Connection<J>, error: SluiceError | null): void;
  /** What the owner remembers about the server across connections; read when a connection opens. */
  readonly peer?: PeerMemory;
}

/** What one connection learnt about the server that every later connection should know. */
export interface PeerMemory {
  /**
   * The server refused a command written right behind the final "." (503, stricter than RFC 2920 §3.1,
   * as Haraka 3.3): the next envelope waits for the "."'s reply (2 round trips per message with DATA).
   */
  noPipeliningAfterDot: boolean;
  /**
   * The server answered the start of a pipelined group and then nothing (it offers PIPELINING but
   * reads one command per packet, or answers only the first): until this time (ms since epoch), new
   * connections go lock-step (RFC 2920 §3.2 lets a client do so) instead of paying the same timeout
   * each.
   */
  noPipeliningUntil?: number;
  /**
   * The adaptive BDAT window (the pool's policies/bdat-window.ts), or null when pinned by
   * `chunking: { window }`: how many BDAT transactions one connection may have in flight, whether BDAT
   * is still used at all (an anomaly turns it off for the server), and the content bytes in flight cap.
   */
  bdat?: { readonly size: number; readonly chunking: boolean; readonly maxBytes: number } | null;
  /** The pool's TLS sessions, offered for resumption (tls-session.ts); null or absent: a full handshake every time. */
  tls?: TlsSessions | null;
}

interface Expectation {
  kind: ExpectKind;
  txn: Transaction | null;
  index: number;
  timeout: number;
  resolve: ((reply: Reply) => void) | null;
  /** Setup steps: the connection closed before the reply. */
  reject?: (error: SluiceError) => void;
}

let nextId = 1;
/** How long a pool sends one command at a time after a pipelined group stalled (rememberStalledGroup). */
const STALLED_PIPELINING_MEMORY = 10 * 60_000;

/**
 * One SMTP connection: a socket (socket.ts), its setup (setup.ts), a FIFO of the replies it is owed, and
 * the transactions in flight (transaction.ts; classify.ts turns their replies into results). Replies are
 * matched to commands by position only (RFC 2920 §3.1).
 *
 * Message transactions are driven by replies, never by timers (deadline.ts only ends a silent server):
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
  /** The TLS handshake resumed an earlier connection's session (no certificate exchange). */
  tlsResumed = false;
  authenticated = false;
  state: 'new' | 'connecting' | 'ready' | 'closing' | 'closed' = 'new';
  /** No new transactions: message cap reached, 421 received, or the pool is closing. */
  retiring = false;
  /** Transactions started on this connection. */
  started = 0;
  lastActive = Date.now();

  private socket: net.Socket | null = null;
  private readonly parser: ReplyParser;
  private readonly fifo = new Denque<Expectation>();
  private active: Transaction[] = [];
  private needsReset = false;
  /** A stream body is being written: nothing else may be written until it is done. */
  private writing = false;
  /** While the content of a DATA transaction is being written: one more message may join that write. */
  private group: Chunk[] | null = null;
  private groupTaken = false;
  private closeError: SluiceError | null = null;
  private cancelPending: Cancel | null = null;
  private pipelining = false;
  private chunking = false;
  /** The next envelope may join the content's write (RFC 2920 §3.1), unless the server refuses that. */
  private afterDot = true;
  /** Ends the stream body being read, if the connection closes meanwhile (stream-body.ts). */
  private stopStream: (() => void) | null = null;
  private quitSent = false;
  private readonly deadline = new Deadline((what) => {
    this.rememberStalledGroup(what);
    this.destroy(new SluiceError(ErrorCodes.ETIMEDOUT, `Timed out waiting for the server (${what})`, { command: what }));
  });
  private readonly listeners: SocketListeners = {
    data: (chunk) => this.handleData(chunk),
    close: () => this.handleClose(),
    error: (err) => {
      this.closeError ??= new SluiceError(ErrorCodes.ECONNECTION, `Connection error: ${err.message}`, { cause: err, command: 'CONNECTION' });
    },
  };
  private readonly setPending = (cancel: Cancel | null) => {
    this.cancelPending = cancel;
  };
  private readonly session: SetupSession;
  private readonly wire: Wire;
  private readonly streamHost: StreamHost;
  private readonly trace: WireTrace;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly owner: ConnectionOwner<J>,
  ) {
    this.parser = new ReplyParser(options.replyLimits);
    this.trace = new WireTrace(options.logger, this.id);
    const self = this;
    this.session = {
      request: (line, timeout, what) => this.request(line, timeout, what),
      get partial() {
        return self.parser.partial;
      },
      get encrypted() {
        return self.encrypted;
      },
      get localAddress() {
        return self.socket?.localAddress;
      },
      upgrade: () => this.upgrade(),
    };
    this.wire = {
      get pipelining() {
        return self.pipelining;
      },
      get writing() {
        return self.writing;
      },
      timeouts: options.timeouts,
      expect: (kind, txn, index, timeout) => {
        if (txn) txn.owed++;
        this.expect({ kind, txn, index, timeout, resolve: null });
      },
      send: (chunks) => void writeGroup(this.socket, chunks),
      finish: (txn) => this.finish(txn),
      retire: () => {
        this.retiring = true;
      },
      violation: (error) => this.destroy(error),
      afterContent: (out) => this.afterContent(out),
      stream: (txn) => {
        this.writing = true;
        void writeStreamBody(this.streamHost, txn);
      },
      hold: (writing) => {
        this.writing = writing;
      },
    };
    this.streamHost = {
      get open() {
        return self.state === 'ready';
      },
      chunkSize: options.chunkSize,
      timeouts: options.timeouts,
      onClose: (stop) => {
        this.stopStream = stop;
      },
      waitingForBody: (waiting) => {
        if (this.state === 'closed') return;
        // RFC 5321 §4.5.3.2.5: the data-block timeout covers the wait for the next piece of the body too.
        if (waiting) this.deadline.arm(this.options.timeouts.dataBlock, 'DATA block (waiting for the message body)');
        else this.rearm();
      },
      expect: this.wire.expect,
      writeAndDrain: (chunks) => this.writeAndDrain(chunks),
      failed: (txn, error) => {
        txn.done = true;
        this.active.splice(this.active.indexOf(txn), 1);
        // A bad body is the message's fault; a spool that could not be written is not.
        const result: TransactionResult = error.permanent
          ? { type: 'rejected', error, rejected: [] }
          : { type: 'transient', error, rejected: [], retry: [], immediate: false };
        this.owner.settle(this, txn.job as J, result, true);
        this.destroy(error);
      },
      contentWritten: (out) => {
        this.writing = false;
        this.afterContent(out);
      },
      chunksWritten: (txn) => {
        this.writing = false;
        if (txn.bdatError && txn.owed === 0) this.finish(txn);
        else this.resume(); // refill a BDAT window
      },
    };
  }

  /** Transactions in flight. */
  get inFlight(): number {
    return this.active.length;
  }

  /** True when ready and nothing is in flight. */
  get isIdle(): boolean {
    return this.state === 'ready' && this.active.length === 0 && !this.writing;
  }

  /** Whether this connection can take messages at all now (open, not retiring, not holding for a stream). */
  get canAccept(): boolean {
    return this.state === 'ready' && !this.retiring && !this.writing && this.started < this.options.maxMessages;
  }

  /** False when `write(job)` may be called now. */
  get busy(): boolean {
    if (!this.canAccept) return true;
    if (this.group) return this.groupTaken;
    // Lock-step and DATA-pipelined connections start a transaction only when nothing is in flight;
    // a DATA-pipelined one takes the next message while it writes the content (see afterContent).
    const adaptive = this.owner.peer?.bdat;
    if (!this.bdat || !this.pipelining) return this.active.length >= 1;
    if (!adaptive) return this.active.length >= this.options.chunkingWindow;
    if (this.active.length >= adaptive.size) return true;
    // The adaptive window is also capped by the content in flight and by the socket's send buffer:
    // bytes still waiting in it mean the kernel is not taking them as fast as we write. While corked
    // (handleData, resume) the bytes waiting are the ones just written, not the kernel's backlog: the
    // content cap bounds those (a high-water mark of 16 KiB would cut a window of 5 KiB groups to 3).
    // A transaction in flight will free the connection again.
    if (this.active.length === 0) return false;
    const socket = this.socket;
    if (socket && socket.writableCorked === 0 && socket.writableLength > 0) return true;
    let bytes = 0;
    for (const t of this.active) bytes += t.job.size ?? 0;
    return bytes >= adaptive.maxBytes;
  }

  /** New transactions use BDAT: the server offers CHUNKING, the options allow it, and no anomaly turned it off. */
  private get bdat(): boolean {
    return this.chunking && (this.owner.peer?.bdat?.chunking ?? true);
  }

  /** Whether this connection's next transaction goes by BDAT (the pool books what it writes with it). */
  get usesBdat(): boolean {
    return this.bdat;
  }

  // ------------------------------------------------------------------------------------------------
  // Setup
  // ------------------------------------------------------------------------------------------------

  /** Connects and runs greeting, EHLO, STARTTLS and AUTH. Rejects with a SluiceError; the socket is then closed. */
  async open(): Promise<Capabilities> {
    this.state = 'connecting';
    try {
      const socket = await connectSocket(this.options, this.setPending, this.owner.peer?.tls ?? null);
      this.encrypted = this.options.secure;
      this.tlsResumed = sessionReused(socket);
      this.attachSocket(socket);
      const { capabilities, authenticated } = await setup(this.session, this.options);
      this.capabilities = capabilities;
      this.authenticated = authenticated;
      const closed = this.setupClosed();
      if (closed) throw closed;
    } catch (err) {
      const error = err instanceof SluiceError ? err : new SluiceError(ErrorCodes.ECONNECTION, String((err as Error)?.message ?? err), { cause: err });
      this.destroy(error);
      this.handleClose(); // state 'connecting': the owner hears of it through open()'s rejection
      throw error;
    }
    const caps = this.capabilities;
    this.pipelining = this.options.pipelining && caps.pipelining && (this.owner.peer?.noPipeliningUntil ?? 0) <= Date.now();
    this.chunking = this.options.chunking && caps.chunking;
    this.afterDot = !this.owner.peer?.noPipeliningAfterDot;
    this.state = 'ready';
    this.lastActive = Date.now();
    return caps;
  }

  private attachSocket(socket: net.Socket): void {
    this.socket = socket;
    attach(socket, this.listeners);
  }

  private async upgrade(): Promise<void> {
    const closed = this.setupClosed();
    if (closed) throw closed;
    const plain = this.socket!;
    detach(plain, this.listeners);
    const secure = await upgradeSocket(plain, this.options, this.setPending, this.owner.peer?.tls ?? null);
    this.encrypted = true;
    this.tlsResumed = secure.isSessionReused();
    this.attachSocket(secure);
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
      this.trace.line('debug', `C: ${line === null || what.startsWith('AUTH') ? what : line.trim()}`);
      this.expect({ kind: 'SETUP', txn: null, index: 0, timeout, resolve, reject }, what);
      if (line !== null) this.socket!.write(line);
    }).then((reply) => {
      // Some servers echo the credentials they got in their AUTH replies: trace.ts logs only the code of
      // those (auth.ts redacts the text before it reaches an error).
      this.trace.reply(what, reply);
      return reply;
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Transactions
  // ------------------------------------------------------------------------------------------------

  /** Offers this connection to its owner; retires or reports idle when nothing is in flight afterwards. */
  resume(): void {
    if (this.state !== 'ready' || this.writing) return;
    if (!this.busy) {
      // What the pool hands over now (a fresh connection fills its BDAT window at once) leaves in one
      // writev, as the writes of one read do (handleData).
      const socket = this.socket;
      socket?.cork();
      try {
        this.owner.free(this);
      } finally {
        socket?.uncork();
      }
    }
    if (this.active.length === 0 && !this.writing) {
      if (this.retiring || this.started >= this.options.maxMessages) this.quit();
      else this.owner.idle(this);
    }
  }

  /**
   * Starts a transaction for `job`. Checks the message against the server's extensions first: nothing
   * is written for a message the server cannot take (it settles 'rejected' at once).
   */
  write(job: J): void {
    assert(!this.busy, 'write() called on a busy connection');
    const group = this.group;
    if (group) this.groupTaken = true;
    this.lastActive = Date.now();
    const refused = refusal(job, this.capabilities);
    if (refused) return this.owner.settle(this, job, { type: 'rejected', error: refused, rejected: [] }, false);
    this.started++;
    if (this.started >= this.options.maxMessages) this.retiring = true;
    const txn = newTransaction(job, this.bdat, this.active.length > 0, group !== null, this.options.lmtp);
    this.active.push(txn);
    // RFC 5321 §4.1.1.5: clear a failed transaction's state before the next MAIL.
    const reset = this.needsReset;
    this.needsReset = false;
    const out = group ?? [];
    openTransaction(this.wire, txn, this.capabilities, reset, out);
    // The last message of a retiring connection, whole in this group (BDAT LAST and its bytes): QUIT
    // may end the group (RFC 2920 §3.1), and its 221 comes with that message's reply, a round trip sooner.
    if (txn.committed) this.pipelineQuit(out);
    if (!group && out.length) writeGroup(this.socket, out);
  }

  /**
   * After a message's content: with PIPELINING, the next message's envelope goes in the same write
   * (RFC 2920 §3.1), or QUIT when this connection retires (QUIT may end a group).
   */
  private afterContent(out: Chunk[]): void {
    if (this.pipelining && !this.bdat && this.afterDot && this.canAccept) {
      this.group = out;
      this.groupTaken = false;
      try {
        this.owner.free(this);
      } finally {
        this.group = null;
      }
    }
    if (this.active.length === 1) this.pipelineQuit(out);
    writeGroup(this.socket, out);
  }

  /**
   * A retiring connection's last group ends with QUIT (RFC 2920 §3.1), when it pipelines and has not
   * sent one: quit() then only waits for its reply. The caller says the group is its last.
   */
  private pipelineQuit(out: Chunk[]): void {
    if (!this.pipelining || !this.retiring || this.quitSent || this.state !== 'ready') return;
    this.quitSent = true;
    out.push('QUIT\r\n');
    this.expect({ kind: 'QUIT', txn: null, index: 0, timeout: this.options.timeouts.quit, resolve: null });
  }

  private async writeAndDrain(chunks: Chunk[]): Promise<void> {
    const socket = this.socket!;
    if (writeGroup(socket, chunks)) return;
    // RFC 5321 §4.5.3.2.5: each block of content may take up to the data-block timeout.
    this.deadline.arm(this.options.timeouts.dataBlock, 'DATA block');
    await drained(socket);
    this.rearm();
  }

  /** The deadline follows the FIFO's head again. */
  private rearm(): void {
    const head = this.fifo.peekFront();
    if (head) this.deadline.arm(head.timeout, head.kind);
    else this.deadline.disarm();
  }

  private finish(txn: Transaction): void {
    if (txn.done) return;
    txn.done = true;
    const index = this.active.indexOf(txn);
    if (index !== -1) this.active.splice(index, 1);
    const result = classify(txn, this.closeError);
    // RFC 5321 §4.1.1.5: a failed transaction whose MAIL was accepted leaves state on the server, unless
    // the final "." of its content got a reply: that ends the transaction whatever it says (§4.1.1.4).
    // (A refused BDAT LAST is not said to end it, RFC 3030 §2: RSET stays.)
    const over = !txn.chunking && txn.final !== null && txn.accepted > 0;
    if (result.type !== 'delivered' && ok(txn.mail) && !over) this.needsReset = true;
    if (refusedBehindDot(txn) && this.afterDot) {
      // Stricter than RFC 2920: for this connection and, through the owner, every later one.
      this.afterDot = false;
      if (this.owner.peer) this.owner.peer.noPipeliningAfterDot = true;
      this.trace.line('info', 'The server refuses commands pipelined behind the final ".": the next envelope waits for its reply');
    }
    this.lastActive = Date.now();
    this.owner.settle(this, txn.job as J, result, txn.streamed);
    if (!this.writing) this.resume();
  }

  // ------------------------------------------------------------------------------------------------
  // Replies, close
  // ------------------------------------------------------------------------------------------------

  /**
   * A pipelined transaction timed out after its MAIL was answered: the rest of the group was written
   * at the same time and got no reply, which is a server that does not pipeline (a slow server answers
   * late, not never, within these timeouts). Remembered for the server's later connections.
   */
  private rememberStalledGroup(what: string): void {
    const peer = this.owner.peer;
    if (!this.pipelining || !peer || (peer.noPipeliningUntil ?? 0) > Date.now()) return;
    const head = this.fifo.peekFront();
    // Only the deadline of a reply (not a DATA block's, nor a stream body's), for a command that left
    // this process with the rest of its group, behind a MAIL that was answered.
    if (!head?.txn || what !== head.kind || head.txn.mail === null || head.kind === 'DOT' || head.kind === 'BDAT_LAST') return;
    if (this.writing || (this.socket?.writableLength ?? 0) > 0) return;
    // For a while, not for the pool's life: a link that died after MAIL's reply looks the same once.
    peer.noPipeliningUntil = Date.now() + STALLED_PIPELINING_MEMORY;
    this.trace.line('info', `The server answered MAIL but not the ${head.kind} pipelined behind it: new connections send one command at a time for ${STALLED_PIPELINING_MEMORY / 60_000} minutes`);
  }

  private expect(e: Expectation, what?: string): void {
    this.fifo.push(e);
    this.trace.command(e.kind, e.txn, e.index);
    if (this.fifo.length === 1) this.deadline.arm(e.timeout, what ?? e.kind);
  }

  private handleData(chunk: Buffer): void {
    // Everything the replies of this read make us write (the next transactions of a window, each
    // settled one refilling it) leaves in one writev when the read is handled, not one per reply.
    const socket = this.socket;
    socket?.cork();
    try {
      this.parser.feed(chunk, (reply) => this.handleReply(reply));
    } catch (err) {
      const error = err instanceof SluiceError ? err : new SluiceError(ErrorCodes.EPROTOCOL, String(err), { cause: err });
      this.destroy(error);
    } finally {
      socket?.uncork();
    }
  }

  private handleReply(reply: Reply): void {
    const e = this.fifo.shift();
    if (!e) {
      // RFC 5321 §3.8: a server may send 421 at any time before closing.
      if (reply.code === 421) {
        this.retiring = true;
        this.closeError ??= new SmtpReplyError(ErrorCodes.ECONNECTION, 'CONNECTION', reply, `The server is closing the connection: ${reply.lines.join(' ')}`);
        return;
      }
      throw new SluiceError(ErrorCodes.EPROTOCOL, `Unexpected reply with no command outstanding: ${reply.lines.join(' ')}`, { reply });
    }
    if (!e.resolve) this.trace.reply(e.kind, reply); // setup replies: request() logs them
    const next = this.fifo.peekFront();
    if (next) this.deadline.arm(next.timeout, next.kind);
    else this.deadline.disarm();
    if (reply.code === 421) this.retiring = true;
    if (e.resolve) return e.resolve(reply);
    // RFC 5321 §4.1.1.10: after its reply the server closes the channel and nothing more is said
    // either way. Waiting for the server's FIN only delays close(); a server that keeps its side
    // open would hold it forever (the quit timeout covers the reply, not the FIN).
    if (e.kind === 'QUIT') return void this.socket?.destroy();
    const txn = e.txn;
    if (!txn) return; // a pipelined RSET's reply
    txn.owed--;
    assert(txn.owed >= 0, 'more replies than commands for a transaction');
    onTransactionReply(this.wire, e.kind, txn, e.index, reply);
  }

  /**
   * Whether this connection keeps the process alive. The pool lets go of an idle one (a pool with nothing
   * to do must not hold a script open) and holds it again when it hands it work.
   */
  ref(hold: boolean): void {
    if (hold) this.socket?.ref();
    else this.socket?.unref();
    this.deadline.ref(hold);
  }

  /** Sends QUIT when idle, then closes (RFC 5321 §4.1.1.10). */
  quit(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.retiring = true;
    if (this.active.length > 0 || this.writing) return; // the last transaction's end calls resume → quit
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
    const socket = this.socket;
    // Destroyed while corked (a reply in handleData that breaks the protocol): what was written in
    // this cork goes out first, as it would have without the cork, so that a transaction whose content
    // counts as written was written (it ends unknown, never resent), not dropped in the buffer.
    while (socket && !socket.destroyed && socket.writableCorked > 0) socket.uncork();
    socket?.destroy();
    if (!socket) this.handleClose();
  }

  private handleClose(): void {
    if (this.state === 'closed') return;
    const wasReady = this.state !== 'connecting';
    this.state = 'closed';
    this.deadline.clear();
    const stopStream = this.stopStream;
    this.stopStream = null;
    this.socket?.destroy();
    const owed = this.fifo.toArray();
    this.fifo.clear();
    const lost = this.active.length > 0 || owed.length > 0;
    const error =
      this.closeError ??
      (lost && !(this.quitSent && this.active.length === 0)
        ? new SluiceError(ErrorCodes.ECONNECTION, 'The server closed the connection', { command: 'CONNECTION', reply: CONNECTION_LOST })
        : null);
    if (error) this.closeError = error;
    for (const e of owed) {
      // A setup step waiting for a reply: open() fails with the reason (a timeout, a reset, a 421).
      e.reject?.(
        this.closeError ??
          new SluiceError(ErrorCodes.ECONNECTION, 'The server closed the connection during setup', { command: 'CONNECTION', reply: CONNECTION_LOST }),
      );
    }
    const active = this.active;
    this.active = [];
    for (const txn of active) {
      if (txn.done) continue;
      txn.done = true;
      this.owner.settle(this, txn.job as J, classify(txn, this.closeError), txn.streamed);
    }
    stopStream?.(); // after the transactions settled: the stream's own end sees them done
    if (wasReady) this.owner.closed(this, error && this.quitSent && active.length === 0 ? null : error);
  }
}
