// Over 400 lines on purpose: one SMTP session of the mock server is one state machine (the command
// grammar, the pipelining flush per input batch, DATA/BDAT reading, AUTH steps, and every fault and
// misbehaviour hooked into exactly those transitions), and the faults must see the same state the
// protocol does. What can stand alone does: data.ts (DATA reading), auth.ts (SASL), faults.ts (rule
// matching), journal.ts (strict BDAT bookkeeping), replies.ts, network.ts (latency), tls.ts.
import type { SecureContext, TLSSocket } from 'node:tls';
import { type SaslStep, startSasl } from './auth.js';
import type { AuthMechanism, Config } from './config.js';
import { DataReader } from './data.js';
import type { FaultEngine, FaultEvent } from './faults.js';
import { settle, type TransactionJournal } from './journal.js';
import type { Link } from './network.js';
import { formatReply, type ParsedReply, parseReply } from './replies.js';
import { serverTls } from './tls.js';
import type { ConnectionStats, FaultCommand, FaultRule, ReceivedMessage, TransactionRecord } from './types.js';

/** What a session needs from its server. */
export interface SessionHost {
  readonly cfg: Config;
  readonly faults: FaultEngine;
  readonly tlsContext: SecureContext;
  /** Written only in strict BDAT mode. */
  readonly journal: TransactionJournal;
  /** Next server-wide transaction number. */
  nextTransaction(): number;
  /** Rate limit: may one more message start now? */
  takeRateToken(): boolean;
  /** Per-account connection cap: may this session send as `account`? */
  claimAccount(session: Session, account: string): boolean;
  queueId(): string;
  deliver(message: ReceivedMessage): void;
  sessionClosed(session: Session): void;
}

/** Where the session writes; the Link itself on a clear connection, a TLSSocket over it after TLS. */
interface Transport {
  write(data: string): void;
  end(): void;
  abort(): void;
  stopReading(): void;
}

class TlsTransport implements Transport {
  constructor(
    private readonly tls: TLSSocket,
    private readonly link: Link,
  ) {}

  write(data: string): void {
    if (!this.tls.destroyed) this.tls.write(data);
  }

  end(): void {
    this.tls.end();
  }

  abort(): void {
    // Let the encrypted bytes already written reach the link before the reset. An empty write's
    // callback runs once everything before it is flushed; 'drain' would only come after a write
    // that returned false, so it may never come.
    const kill = () => this.tls.destroy();
    if (this.tls.writableLength > 0) this.tls.write('', kill);
    else setImmediate(kill);
  }

  stopReading(): void {
    this.tls.pause();
    this.link.stopReading();
  }
}

enum Mode {
  Command,
  /** Reading SASL responses (RFC 4954 §4): lines that are not commands. */
  Sasl,
  Data,
  Bdat,
  /** After an overlong line: skip to the next LF, then read commands again. */
  Discard,
}

type Params = Record<string, string | true>;

interface Transaction {
  from: string;
  mailParams: Params;
  to: string[];
  rcptParams: Params[];
  number: number;
  onConnection: number;
  smtpUtf8: boolean;
  /** BDAT chunks so far (RFC 3030: then DATA is not allowed in this transaction). */
  bdat: { pieces: Buffer[] | null; size: number; tooBig: boolean } | null;
  /** Strict BDAT mode's record of it, else null. */
  record: TransactionRecord | null;
}

/** A BDAT chunk being consumed. */
interface Chunk {
  remaining: number;
  size: number;
  last: boolean;
  /** Reply to send once the octets are in, instead of processing them (RFC 3030 §2: the octets are
   * consumed whatever the reply). */
  error: string | null;
  rule: FaultRule | null;
  wireBytes: number;
}

/** RFC 4954 §4: AUTH lines and SASL responses may be up to 12288 octets. */
const SASL_LINE_LIMIT = 12_288;
const LF = 10;
const CR = 13;

const KNOWN_VERBS = new Set(['EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'BDAT', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'EXPN', 'HELP', 'AUTH', 'STARTTLS']);

/** ESMTP xtext (RFC 3461 §4). */
const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/;
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * One SMTP connection: parses commands from Buffers, keeps the RFC 5321 state, buffers replies and
 * writes them once per batch of input (RFC 2920 §3.2: no flush until the input buffer is empty).
 */
export class Session {
  private transport: Transport;
  private secure = false;
  private mode = Mode.Command;
  /** Unprocessed input. */
  private buf: Buffer | null = null;
  /** Replies not yet written. */
  private out = '';
  /** Processing suspended (delay fault, stall). */
  private blocked = false;
  /** QUIT, 421, drop: nothing more is read or answered. */
  private done = false;
  private helo: string | null = null;
  private esmtp = false;
  /** Greeting was a 5xx: only QUIT is served (RFC 5321 §3.1). */
  private rejected = false;
  private user: string | null = null;
  private txn: Transaction | null = null;
  private transactions = 0;
  private badCommands = 0;
  private data: DataReader | null = null;
  private chunk: Chunk | null = null;
  private sasl: { mechanism: AuthMechanism; step: SaslStep } | null = null;
  /** STARTTLS: what is left of the clear-text input is thrown away. */
  private discardInput = false;
  /** The client half-closed while processing was blocked. */
  private eofPending = false;
  /** Drop the connection after this many content bytes (drop-in-body); -1 = off. */
  private dropAfter = -1;
  /** forbidPipeliningAfterData: the rest of this read came right behind the final ".". */
  private afterDot = false;
  /** answerFirstOnly: no command of this read was executed yet. */
  private firstOfRead = false;
  /** Strict BDAT: the last transaction ended with its LAST chunk and no MAIL came since. */
  private afterLast = false;
  /** Strict BDAT: a chunk just ended, the next line must be a command. */
  private expectCommand = false;
  private timers = new Set<NodeJS.Timeout>();
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly onInput = (chunk: Buffer) => this.onData(chunk);
  private readonly onInputEnd = () => this.onEnd();

  constructor(
    private readonly host: SessionHost,
    private readonly link: Link,
    readonly stats: ConnectionStats,
    /** Beyond maxConnections: greeted with the limit reply and closed. */
    readonly overCapacity: boolean,
  ) {
    this.transport = link;
    link.onClose = () => this.onClose();
  }

  get connection(): number {
    return this.stats.id;
  }

  /** Start after the simulated TCP handshake. */
  startAfter(ms: number): void {
    this.later(ms, () => this.start());
  }

  /** Greet (or refuse), once the simulated connect round trip is over. */
  start(): void {
    if (this.link.closed) return;
    const cfg = this.host.cfg;
    if (cfg.secure) this.startTls();
    else this.link.attach(this.onInput, this.onInputEnd);
    this.armIdle();
    if (this.overCapacity) {
      this.closeWith(cfg.replies.connectionLimit);
      return;
    }
    const rule = this.match('CONNECT');
    if (rule) {
      this.applyFault(
        rule,
        (custom) => this.reply(custom?.line ?? cfg.replies.greeting),
        (failure) => {
          // RFC 5321 §3.1: after a 554 greeting the server waits for QUIT.
          if (failure.code >= 500) this.rejected = true;
        },
      );
    } else this.reply(cfg.replies.greeting);
    this.flush();
  }

  /** Server shutdown. */
  kill(): void {
    this.done = true;
    this.clearTimers();
    this.link.kill();
  }

  // ---------------------------------------------------------------- input

  private onData(chunk: Buffer): void {
    this.stats.reads++;
    if (this.done) return;
    this.idleTimer?.refresh();
    this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.blocked) return;
    this.firstOfRead = true;
    try {
      this.process();
      this.flush();
    } catch (error) {
      this.internalError(error);
    }
  }

  /**
   * A bug of ours must not take the test process down with it: the client gets a 421, the test
   * runner a warning.
   */
  private internalError(error: unknown): void {
    process.emitWarning(`internal error: ${error instanceof Error ? error.stack : String(error)}`, 'SluiceMockServerError');
    if (this.done) return;
    this.blocked = false;
    this.closeWith(formatReply(421, '4.3.0', `${this.host.cfg.hostname} Internal error, closing connection`, this.host.cfg.ext.enhancedStatusCodes));
  }

  private onEnd(): void {
    if (this.done) return;
    if (this.blocked) {
      this.eofPending = true;
      return;
    }
    // The client half-closed: answer what came before, then close our side.
    this.done = true;
    this.flush();
    this.transport.end();
  }

  private onClose(): void {
    settle(this.txn?.record, 'aborted', null);
    this.done = true;
    this.stats.closed = true;
    this.clearTimers();
    this.host.sessionClosed(this);
  }

  /** Run commands and content from the input buffer until it is exhausted or processing blocks. */
  private process(): void {
    const buf = this.buf;
    if (!buf) return;
    let pos = 0;
    loop: while (pos < buf.length && !this.blocked && !this.done) {
      switch (this.mode) {
        case Mode.Command:
        case Mode.Sasl: {
          const lf = buf.indexOf(LF, pos);
          const limit = this.lineLimit(buf, pos);
          if (lf === -1) {
            if (buf.length - pos > limit) {
              // RFC 5321 §4.5.3.1.4/§4.2.2: 500 for a line too long; skip to the next line end.
              this.bad(this.host.cfg.replies.lineTooLong);
              this.mode = Mode.Discard;
              pos = buf.length;
            }
            break loop;
          }
          const start = pos;
          pos = lf + 1;
          if (pos - start > limit) {
            if (this.mode === Mode.Sasl) this.sasl = null;
            this.mode = Mode.Command;
            this.bad(this.host.cfg.replies.lineTooLong);
            break;
          }
          // RFC 5321 §2.3.8: lines end with CRLF; a bare LF is tolerated in commands, like Postfix.
          const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
          if (this.mode === Mode.Sasl) this.onSaslLine(buf.toString('latin1', start, end));
          else if (this.host.cfg.answerFirstOnly && !this.firstOfRead)
            this.stats.commands++; // read, never answered
          else {
            this.firstOfRead = false;
            this.onCommand(buf.toString('utf8', start, end));
          }
          if (this.discardInput) {
            this.discardInput = false;
            pos = buf.length;
          }
          break;
        }
        case Mode.Data:
          pos = this.consumeData(buf, pos);
          break;
        case Mode.Bdat:
          pos = this.consumeChunk(buf, pos);
          break;
        case Mode.Discard: {
          const lf = buf.indexOf(LF, pos);
          if (lf === -1) pos = buf.length;
          else {
            pos = lf + 1;
            this.mode = Mode.Command;
          }
          break;
        }
      }
    }
    this.buf = pos < buf.length ? buf.subarray(pos) : null;
    this.afterDot = false;
  }

  private lineLimit(buf: Buffer, pos: number): number {
    const max = this.host.cfg.maxLineLength;
    if (this.mode === Mode.Sasl) return Math.max(max, SASL_LINE_LIMIT);
    // "AUTH " prefix: the initial response may be long (XOAUTH2 tokens).
    if (
      buf.length - pos >= 5 &&
      (buf[pos] | 0x20) === 0x61 &&
      (buf[pos + 1] | 0x20) === 0x75 &&
      (buf[pos + 2] | 0x20) === 0x74 &&
      (buf[pos + 3] | 0x20) === 0x68 &&
      buf[pos + 4] === 0x20
    ) {
      return Math.max(max, SASL_LINE_LIMIT);
    }
    return max;
  }

  // ---------------------------------------------------------------- output

  private reply(line: string): void {
    this.out += line;
    this.stats.replies++;
    const c = line.charCodeAt(0);
    if (c === 50 || c === 51) this.badCommands = 0; // 2xx, 3xx
  }

  /** A reply for a bad command (500-504). Too many in a row and the client is cut off. */
  private bad(line: string): void {
    if (++this.badCommands > this.host.cfg.maxBadCommands) {
      this.closeWith(this.host.cfg.replies.tooManyErrors);
      return;
    }
    this.out += line;
    this.stats.replies++;
  }

  /** Write the pending replies as one segment; only when the input is exhausted (RFC 2920 §3.2). */
  private flush(): void {
    if (this.out.length === 0 || this.blocked) return;
    this.transport.write(this.out);
    this.out = '';
    this.stats.writes++;
  }

  private forceFlush(): void {
    if (this.out.length === 0) return;
    this.transport.write(this.out);
    this.out = '';
    this.stats.writes++;
  }

  /** Reply (typically 421), flush and close: RFC 5321 §3.8. */
  private closeWith(line: string): void {
    if (line) {
      this.out += line;
      this.stats.replies++;
    }
    this.forceFlush();
    this.done = true;
    this.transport.end();
  }

  /** Destroy the connection; what was already answered still arrives. */
  private drop(): void {
    this.forceFlush();
    this.done = true;
    this.transport.abort();
  }

  private stall(): void {
    this.forceFlush();
    this.blocked = true;
    this.transport.stopReading();
  }

  private armIdle(): void {
    const idle = this.host.cfg.idleTimeout;
    if (idle > 0) {
      this.idleTimer = setTimeout(() => {
        if (!this.done) this.closeWith(this.host.cfg.replies.idle);
      }, idle);
    }
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.done) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---------------------------------------------------------------- faults

  private match(command: FaultCommand, extra?: Partial<FaultEvent>): FaultRule | null {
    const faults = this.host.faults;
    if (!faults.active) return null;
    const txn = this.txn;
    return faults.match({
      command,
      connection: this.stats.id,
      message: txn ? txn.number : 0,
      messageOnConnection: txn ? txn.onConnection : 0,
      sender: txn?.from,
      recipients: txn?.to,
      ...extra,
    });
  }

  /**
   * Apply a matched rule. `proceed` is the normal handling (given the rule's reply when that reply
   * is a success); `failed` adjusts state after an error reply; `deliver` records the message for
   * rules with `deliver: true` at DOT/BDAT_LAST.
   */
  private applyFault(rule: FaultRule, proceed: (custom?: ParsedReply) => void, failed?: (reply: ParsedReply) => void, deliver?: () => void): void {
    const cfg = this.host.cfg;
    const enhanced = cfg.ext.enhancedStatusCodes;
    switch (rule.action ?? 'reply') {
      case 'reply': {
        const parsed = parseReply(rule.reply ?? '', enhanced);
        if (parsed.code < 400) {
          proceed(parsed);
          return;
        }
        failed?.(parsed);
        // RFC 5321 §3.8: a 421 means the server is closing the channel.
        if (parsed.code === 421) this.closeWith(parsed.line);
        else if (parsed.code >= 500 && parsed.code <= 504) this.bad(parsed.line);
        else this.reply(parsed.line);
        return;
      }
      case 'close': {
        const parsed = rule.reply !== undefined ? parseReply(rule.reply, enhanced) : { code: 421, line: cfg.replies.closing };
        if (rule.deliver) deliver?.();
        failed?.(parsed);
        this.closeWith(parsed.line);
        return;
      }
      case 'drop':
      case 'drop-in-body':
        if (rule.deliver) deliver?.();
        this.drop();
        return;
      case 'stall':
        if (rule.deliver) deliver?.();
        this.stall();
        return;
      case 'unsolicited':
        proceed();
        if (!this.done) this.reply(parseReply(rule.reply ?? '', enhanced).line);
        return;
      case 'delay':
        // A slow server: nothing after this command is processed (or flushed) until the reply.
        this.blocked = true;
        this.later(rule.delayMs ?? 0, () => {
          this.blocked = false;
          try {
            proceed();
            this.process();
            this.flush();
            if (this.eofPending && !this.blocked) this.onEnd();
          } catch (error) {
            this.internalError(error);
          }
        });
        return;
    }
  }

  // ---------------------------------------------------------------- commands

  private onCommand(line: string): void {
    const stats = this.stats;
    stats.commands++;
    const sp = line.indexOf(' ');
    const verb = (sp === -1 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp === -1 ? '' : line.slice(sp + 1);
    const key = KNOWN_VERBS.has(verb) ? verb : 'UNKNOWN';
    stats.byCommand[key] = (stats.byCommand[key] ?? 0) + 1;
    const r = this.host.cfg.replies;
    if (this.expectCommand) {
      // Strict BDAT: more octets followed the chunk than it declared (RFC 3030 §2: exactly n).
      this.expectCommand = false;
      if (key === 'UNKNOWN') this.host.journal.violation(stats.id, 'size-mismatch', line);
    }
    if (this.afterDot) {
      // Not executed: what a smuggling attack would have the server run.
      this.bad(r.pipelinedAfterData);
      return;
    }

    if (this.rejected && verb !== 'QUIT') {
      this.bad(r.rejected);
      return;
    }
    switch (verb) {
      case 'EHLO':
      case 'HELO':
        return this.cmdHelo(verb, arg);
      case 'MAIL':
        return this.cmdMail(arg);
      case 'RCPT':
        return this.cmdRcpt(arg);
      case 'DATA':
        return this.cmdData(arg);
      case 'BDAT':
        return this.cmdBdat(arg);
      case 'RSET':
        return this.cmdRset(arg);
      case 'NOOP':
        // RFC 5321 §4.1.1.9: the argument, if any, is ignored.
        return this.simple('NOOP', r.noopOk);
      case 'QUIT':
        return this.cmdQuit(arg);
      case 'STARTTLS':
        return this.cmdStartTls(arg);
      case 'AUTH':
        return this.cmdAuth(arg);
      case 'VRFY':
        return arg ? this.reply(r.vrfy) : this.bad(r.syntaxRcpt);
      case 'HELP':
        return this.reply(r.help);
      case 'EXPN':
        return this.bad(r.notImplemented);
      case '':
        return this.bad(r.emptyLine);
      default:
        return this.bad(r.unknownCommand);
    }
  }

  /** NOOP-like commands: only faults can change their reply. */
  private simple(command: FaultCommand, line: string): void {
    const rule = this.match(command);
    if (rule) this.applyFault(rule, (custom) => this.reply(custom?.line ?? line));
    else this.reply(line);
  }

  private cmdHelo(verb: 'EHLO' | 'HELO', arg: string): void {
    const cfg = this.host.cfg;
    const domain = arg.trim();
    if (!domain || /\s/.test(domain)) {
      this.bad(verb === 'EHLO' ? cfg.replies.syntaxEhlo : cfg.replies.syntaxHelo);
      return;
    }
    const accept = (custom?: ParsedReply) => {
      // RFC 5321 §4.1.4: EHLO/HELO also reset any transaction.
      this.resetTransaction();
      this.helo = domain;
      this.esmtp = verb === 'EHLO';
      if (custom) this.reply(custom.line);
      else if (verb === 'HELO') this.reply(cfg.replies.heloOk);
      else this.reply(this.secure ? cfg.ehloSecure : cfg.ehloClear);
    };
    const rule = this.match(verb);
    if (rule) this.applyFault(rule, accept);
    else accept();
  }

  private cmdQuit(arg: string): void {
    const r = this.host.cfg.replies;
    if (arg.trim()) {
      this.bad(r.syntaxQuit);
      return;
    }
    const rule = this.match('QUIT');
    if (!rule) return this.closeWith(r.quit);
    this.applyFault(rule, (custom) => this.closeWith(custom?.line ?? r.quit));
    // An error reply to QUIT was sent; the connection still closes (RFC 5321 §4.1.1.10).
    if (!this.done && !this.blocked) this.closeWith('');
  }

  private cmdRset(arg: string): void {
    const r = this.host.cfg.replies;
    if (arg.trim()) {
      this.bad(r.syntaxRset);
      return;
    }
    const accept = (custom?: ParsedReply) => {
      this.resetTransaction();
      this.reply(custom?.line ?? r.rsetOk);
    };
    const rule = this.match('RSET');
    if (rule) this.applyFault(rule, accept);
    else accept();
  }

  private resetTransaction(): void {
    settle(this.txn?.record, 'reset', null);
    this.txn = null;
  }

  private cmdMail(arg: string): void {
    const cfg = this.host.cfg;
    const r = cfg.replies;
    if (!this.helo) return this.bad(r.needHelo);
    // RFC 5321 §4.1.4: MAIL inside a transaction is a sequence error.
    if (this.txn) return this.bad(r.nestedMail);
    if (cfg.requireTLS && !this.secure) return this.reply(r.tlsRequired);
    if (cfg.requireAuth && !this.user) return this.reply(r.authRequired);
    const path = parsePath(arg, 'FROM');
    if (!path) return this.bad(r.syntaxMail);
    const from = path.address;
    if (from !== '' && !validAddress(from)) return this.bad(r.badSender);
    const params = this.parseParams(path.params);
    if (typeof params === 'string') return params.startsWith('50') ? this.bad(params) : this.reply(params);
    const checked = this.checkMailParams(params);
    if (checked) return checked.startsWith('50') ? this.bad(checked) : this.reply(checked);
    const smtpUtf8 = params.SMTPUTF8 === true;
    if (!smtpUtf8 && NON_ASCII.test(from)) return this.reply(r.nonAsciiAddress);

    // From here on this is a transaction (fault rules count it).
    const number = this.host.nextTransaction();
    const onConnection = ++this.transactions;
    this.stats.transactions = this.transactions;
    if (onConnection > cfg.maxMessagesPerConnection) return this.closeWith(r.tooManyMessages);
    if (cfg.maxConnectionsPerUser !== Number.POSITIVE_INFINITY && !this.host.claimAccount(this, this.user ?? '')) {
      return this.closeWith(r.connectionLimit);
    }

    const start = (custom?: ParsedReply) => {
      if (cfg.rateLimit > 0 && !this.host.takeRateToken()) {
        this.reply(r.throttled);
        return;
      }
      this.txn = {
        from,
        mailParams: params,
        to: [],
        rcptParams: [],
        number,
        onConnection,
        smtpUtf8,
        bdat: null,
        record: cfg.strictBdat ? this.host.journal.begin(number, this.stats.id, onConnection) : null,
      };
      this.afterLast = false;
      this.reply(custom?.line ?? r.mailOk);
    };
    const rule = this.match('MAIL', { message: number, messageOnConnection: onConnection, sender: from, recipients: [] });
    if (rule) this.applyFault(rule, start);
    else start();
  }

  /** MAIL parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 RET/ENVID,
   * RFC 4954 §5 AUTH). Returns an error reply or null. */
  private checkMailParams(params: Params): string | null {
    const cfg = this.host.cfg;
    const ext = cfg.ext;
    const r = cfg.replies;
    for (const [key, value] of Object.entries(params)) {
      switch (key) {
        case 'SIZE':
          if (ext.size === false) return this.unsupported(key);
          if (typeof value !== 'string' || !/^\d{1,20}$/.test(value)) return this.invalid(key);
          // RFC 1870 §6.1: a declared size over the limit is refused at MAIL.
          if (Number(value) > cfg.maxMessageSize) return r.sizeExceeded;
          break;
        case 'BODY': {
          if (typeof value !== 'string') return this.invalid(key);
          const body = value.toUpperCase();
          if (body === '8BITMIME') {
            if (!ext.eightBitMime) return this.unsupported(key);
          } else if (body !== '7BIT') return this.invalid(key);
          break;
        }
        case 'SMTPUTF8':
          if (!ext.smtpUtf8) return this.unsupported(key);
          if (value !== true) return this.invalid(key);
          break;
        case 'RET':
          if (!ext.dsn) return this.unsupported(key);
          if (typeof value !== 'string' || !/^(FULL|HDRS)$/i.test(value)) return this.invalid(key);
          break;
        case 'ENVID':
          if (!ext.dsn) return this.unsupported(key);
          // RFC 3461 §4.4: xtext, at most 100 characters.
          if (typeof value !== 'string' || value.length > 100 || !XTEXT.test(value)) return this.invalid(key);
          break;
        case 'AUTH':
          if (ext.auth.length === 0) return this.unsupported(key);
          if (typeof value !== 'string' || (value !== '<>' && !XTEXT.test(value))) return this.invalid(key);
          break;
        default:
          return this.unsupported(key);
      }
    }
    return null;
  }

  /** RCPT parameters: RFC 3461 NOTIFY and ORCPT. */
  private checkRcptParams(params: Params): string | null {
    const ext = this.host.cfg.ext;
    for (const [key, value] of Object.entries(params)) {
      switch (key) {
        case 'NOTIFY': {
          if (!ext.dsn) return this.unsupported(key);
          if (typeof value !== 'string') return this.invalid(key);
          // RFC 3461 §4.1: NEVER, or a list of SUCCESS, FAILURE, DELAY.
          const items = value.toUpperCase().split(',');
          const ok =
            (items.length === 1 && items[0] === 'NEVER') ||
            (new Set(items).size === items.length && items.every((i) => i === 'SUCCESS' || i === 'FAILURE' || i === 'DELAY'));
          if (!ok) return this.invalid(key);
          break;
        }
        case 'ORCPT': {
          if (!ext.dsn) return this.unsupported(key);
          // RFC 3461 §4.2: addr-type ";" xtext (RFC 6533 adds utf-8-addr-xtext).
          if (typeof value !== 'string') return this.invalid(key);
          const semi = value.indexOf(';');
          if (semi <= 0 || !/^[A-Za-z0-9-]+$/.test(value.slice(0, semi))) return this.invalid(key);
          const addr = value.slice(semi + 1);
          if (!addr || !(XTEXT.test(addr) || value.slice(0, semi).toLowerCase() === 'utf-8')) return this.invalid(key);
          break;
        }
        default:
          return this.unsupported(key);
      }
    }
    return null;
  }

  private unsupported(key: string): string {
    return parseReply(`555 5.5.4 Unsupported option: ${key}`, this.host.cfg.ext.enhancedStatusCodes).line;
  }

  private invalid(key: string): string {
    return parseReply(`501 5.5.4 Bad ${key} parameter syntax`, this.host.cfg.ext.enhancedStatusCodes).line;
  }

  /** ESMTP parameters: keyword[=value] separated by spaces (RFC 5321 §4.1.2). */
  private parseParams(text: string): Params | string {
    const params: Params = {};
    if (!text) return params;
    if (!this.esmtp) return this.host.cfg.replies.paramsWithoutEhlo;
    for (const item of text.split(' ')) {
      if (!item) continue;
      const eq = item.indexOf('=');
      const key = (eq === -1 ? item : item.slice(0, eq)).toUpperCase();
      if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) return this.invalid(key || '(empty)');
      if (key in params) return parseReply(`501 5.5.4 Duplicate ${key} parameter`, this.host.cfg.ext.enhancedStatusCodes).line;
      params[key] = eq === -1 ? true : item.slice(eq + 1);
    }
    return params;
  }

  private cmdRcpt(arg: string): void {
    const cfg = this.host.cfg;
    const r = cfg.replies;
    const txn = this.txn;
    if (!txn) return this.bad(r.needMail);
    const path = parsePath(arg, 'TO');
    if (!path) return this.bad(r.syntaxRcpt);
    const to = path.address;
    // RFC 5321 §4.5.1: "postmaster" without a domain must be accepted.
    if (!validAddress(to) && to.toLowerCase() !== 'postmaster') return this.bad(r.badRecipient);
    const params = this.parseParams(path.params);
    if (typeof params === 'string') return params.startsWith('50') ? this.bad(params) : this.reply(params);
    const checked = this.checkRcptParams(params);
    if (checked) return checked.startsWith('50') ? this.bad(checked) : this.reply(checked);
    if (!txn.smtpUtf8 && NON_ASCII.test(to)) return this.reply(r.nonAsciiAddress);
    // RFC 5321 §4.5.3.1.8: 452 for too many recipients, the client sends the rest later
    // (tooManyRecipientsReply may make it a 451 or a 552, as some servers do).
    if (txn.to.length >= cfg.maxRecipients) return this.reply(r.tooManyRecipients);

    const accept = (custom?: ParsedReply) => {
      txn.to.push(to);
      txn.rcptParams.push(params);
      this.reply(custom?.line ?? r.rcptOk);
    };
    const rule = this.match('RCPT', { recipient: to });
    if (rule) this.applyFault(rule, accept);
    else accept();
  }

  private cmdData(arg: string): void {
    const cfg = this.host.cfg;
    const r = cfg.replies;
    if (arg.trim()) return this.bad(r.syntaxData);
    const txn = this.txn;
    if (!txn) return this.bad(r.needMail);
    // RFC 3030 §2: BDAT and DATA cannot be mixed in one transaction.
    if (txn.bdat) return this.bad(r.dataAfterBdat);
    // RFC 5321 §3.3: DATA without an accepted recipient gets 554 (with PIPELINING, RFC 2920 §3.1,
    // the client learns it from this reply and sends no content).
    if (txn.to.length === 0) return this.reply(r.noRecipients);
    const go = (custom?: ParsedReply) => {
      this.reply(custom?.line ?? r.dataGo);
      this.data = new DataReader(cfg.record, cfg.maxMessageSize);
      this.mode = Mode.Data;
    };
    const rule = this.match('DATA');
    if (rule && rule.action === 'drop-in-body') {
      this.dropAfter = rule.afterBytes ?? 1;
      go();
    } else if (rule) this.applyFault(rule, go);
    else go();
  }

  private consumeData(buf: Buffer, pos: number): number {
    const reader = this.data as DataReader;
    const end = reader.feed(buf, pos);
    if (this.dropAfter >= 0 && reader.wireBytes >= this.dropAfter) {
      this.dropAfter = -1;
      this.drop();
      return buf.length;
    }
    if (end === -1) return buf.length;
    this.mode = Mode.Command;
    this.data = null;
    this.dropAfter = -1;
    if (this.host.cfg.forbidPipeliningAfterData && end < buf.length) this.afterDot = true;
    const size = reader.size;
    this.endOfContent('DATA', reader.tooBig, size, () => reader.content(), this.match('DOT'));
    return end;
  }

  /**
   * The final "." of DATA or the LAST BDAT chunk: the reply that commits the message. `rule` is the
   * fault rule for this moment (DOT, or BDAT/BDAT_LAST matched when the command arrived).
   */
  private endOfContent(via: 'DATA' | 'BDAT', tooBig: boolean, size: number, content: () => Buffer | null, rule: FaultRule | null): void {
    const r = this.host.cfg.replies;
    const txn = this.txn as Transaction;
    this.txn = null;
    const journal = txn.record;
    if (journal) {
      journal.via = via;
      journal.last = true;
    }
    if (tooBig) {
      // RFC 5321 §4.5.3.1.10 / RFC 1870 §6.3: 552, message discarded, transaction over.
      settle(journal, 'refused', r.messageTooBig);
      this.reply(r.messageTooBig);
      return;
    }
    const record = (): string => {
      const id = this.host.queueId();
      settle(journal, 'accepted', `${r.queuedPrefix}${id}`);
      this.host.deliver({
        from: txn.from,
        to: txn.to,
        mailParams: txn.mailParams,
        rcptParams: txn.rcptParams,
        raw: content(),
        size,
        via,
        connection: this.stats.id,
        transaction: txn.onConnection,
        sequence: txn.number,
        secure: this.secure,
        user: this.user,
        helo: this.helo!,
        id,
      });
      return id;
    };
    const accept = (custom?: ParsedReply) => {
      const id = record();
      if (journal && custom) journal.reply = custom.line.replace(/\r\n$/, '');
      this.reply(custom?.line ?? `${r.queuedPrefix}${id}\r\n`);
    };
    // Error replies, drop, close and stall leave the message unrecorded unless the rule says
    // `deliver: true` (a server that queued it and then died).
    if (rule) {
      this.applyFault(rule, accept, (failure) => settle(journal, 'refused', failure.line), record);
      if (rule.action !== 'delay') settle(journal, 'aborted', null);
    } else accept();
  }

  /** RFC 3030 §2: BDAT size [LAST]; exactly `size` octets follow, no dot-stuffing. */
  private cmdBdat(arg: string): void {
    const cfg = this.host.cfg;
    const r = cfg.replies;
    // Without CHUNKING the server does not know BDAT, as a real one would not.
    if (!cfg.ext.chunking) return this.bad(r.unknownCommand);
    const m = /^(\d{1,15})(?: +(LAST))? *$/i.exec(arg);
    if (!m) return this.bad(r.syntaxBdat);
    const size = Number(m[1]);
    const last = m[2] !== undefined;
    const txn = this.txn;
    let error: string | null = null;
    let rule: FaultRule | null = null;
    const strict = cfg.strictBdat;
    if (strict && !txn && this.afterLast) this.host.journal.violation(this.stats.id, 'bdat-after-last', `BDAT ${arg}`);
    if (txn?.record) {
      txn.record.via = 'BDAT';
      txn.record.chunks.push(size);
    }
    if (!txn) error = r.needMail;
    else if (txn.to.length === 0) error = r.noRecipients;
    else if (strict?.refuse.has(txn.number)) error = strict.reply;
    else {
      rule = this.match('BDAT', { last });
      if (rule?.action === 'drop-in-body') {
        this.dropAfter = rule.afterBytes ?? 1;
        rule = null;
      }
    }
    // Whatever the reply, the octets are consumed (RFC 3030 §2).
    this.chunk = { remaining: size, size, last, error, rule, wireBytes: 0 };
    this.mode = Mode.Bdat;
    if (size === 0) this.endOfChunk();
  }

  private consumeChunk(buf: Buffer, pos: number): number {
    const chunk = this.chunk as Chunk;
    const take = Math.min(chunk.remaining, buf.length - pos);
    const end = pos + take;
    chunk.remaining -= take;
    chunk.wireBytes += take;
    if (this.dropAfter >= 0 && chunk.wireBytes >= this.dropAfter) {
      this.dropAfter = -1;
      this.drop();
      return buf.length;
    }
    const txn = this.txn;
    if (!chunk.error && txn && take > 0) {
      const body = (txn.bdat ??= { pieces: this.host.cfg.record ? [] : null, size: 0, tooBig: false });
      body.size += take;
      if (body.size > this.host.cfg.maxMessageSize) {
        body.tooBig = true;
        body.pieces = null;
      } else body.pieces?.push(buf.subarray(pos, end));
    }
    if (chunk.remaining === 0) this.endOfChunk();
    return end;
  }

  private endOfChunk(): void {
    const chunk = this.chunk as Chunk;
    this.chunk = null;
    this.mode = Mode.Command;
    this.dropAfter = -1;
    const r = this.host.cfg.replies;
    if (this.host.cfg.strictBdat) {
      this.expectCommand = true;
      if (chunk.last) this.afterLast = true;
      if (chunk.last && this.txn?.record) this.txn.record.last = true;
    }
    if (chunk.error) {
      settle(this.txn?.record, 'refused', chunk.error);
      // The transaction, if any, is over (RFC 3030 §2: after an error the client must not send more
      // chunks; pipelined ones get 503 and are consumed).
      this.txn = null;
      if (chunk.error.startsWith('503')) this.bad(chunk.error);
      else this.reply(chunk.error);
      return;
    }
    const txn = this.txn as Transaction;
    // An empty first chunk still makes this a BDAT transaction.
    const body = (txn.bdat ??= { pieces: this.host.cfg.record ? [] : null, size: 0, tooBig: false });
    if (chunk.last) {
      // The rule was matched when the command arrived; it applies now that the octets are in.
      const pieces = body.pieces;
      this.endOfContent('BDAT', body.tooBig, body.size, () => (pieces ? Buffer.concat(pieces, body.size) : null), chunk.rule);
      return;
    }
    if (body.tooBig) {
      settle(txn.record, 'refused', r.messageTooBig);
      this.txn = null;
      this.reply(r.messageTooBig);
      return;
    }
    const accept = (custom?: ParsedReply) =>
      this.reply(custom?.line ?? parseReply(`250 2.0.0 ${chunk.size} octets received`, this.host.cfg.ext.enhancedStatusCodes).line);
    if (chunk.rule) {
      this.applyFault(chunk.rule, accept, (failure) => {
        settle(txn.record, 'refused', failure.line);
        this.txn = null;
      });
    } else accept();
  }

  // ---------------------------------------------------------------- STARTTLS

  private cmdStartTls(arg: string): void {
    const cfg = this.host.cfg;
    const r = cfg.replies;
    if (this.secure) return this.bad(r.tlsActive);
    if (!cfg.ext.starttls) return this.bad(r.notImplemented);
    if (arg.trim()) return this.bad(r.syntaxStartTls);
    const go = (custom?: ParsedReply) => {
      this.reply(custom?.line ?? r.startTls);
      this.forceFlush();
      this.startTls();
      // RFC 3207 §4.2 and CVE-2011-0411: clear-text bytes pipelined after STARTTLS are not
      // commands of the TLS session.
      this.buf = null;
      this.discardInput = true;
    };
    const rule = this.match('STARTTLS');
    if (rule) this.applyFault(rule, go);
    else go();
  }

  /** TLS over the link; RFC 3207 §4.2: the client starts over with EHLO, nothing it said before counts. */
  private startTls(): void {
    const tls = serverTls(this.link, this.host.tlsContext);
    tls.once('secure', () => {
      this.stats.tlsResumed = tls.isSessionReused();
    });
    tls.on('data', this.onInput);
    tls.on('end', this.onInputEnd);
    this.transport = new TlsTransport(tls, this.link);
    this.secure = true;
    this.stats.secure = true;
    this.helo = null;
    this.esmtp = false;
    this.user = null;
    settle(this.txn?.record, 'reset', null);
    this.txn = null;
  }

  // ---------------------------------------------------------------- AUTH

  private cmdAuth(arg: string): void {
    const cfg = this.host.cfg;
    const r = cfg.replies;
    if (cfg.ext.auth.length === 0) return this.bad(r.authNotEnabled);
    if (!this.helo || !this.esmtp) return this.bad(r.needHelo);
    if (cfg.requireTLS && !this.secure) return this.reply(r.tlsRequired);
    if (this.user) return this.bad(r.authAlready);
    if (this.txn) return this.bad(r.authInTransaction);
    const parts = arg.trim().split(/ +/);
    if (!parts[0] || parts.length > 2) return this.bad(r.syntaxAuth);
    const mechanism = parts[0].toUpperCase() as AuthMechanism;
    if (!cfg.ext.auth.includes(mechanism)) return this.bad(r.authMechanism);
    this.saslStep(mechanism, startSasl(mechanism, parts[1], cfg));
  }

  private onSaslLine(line: string): void {
    const sasl = this.sasl as { mechanism: AuthMechanism; step: SaslStep };
    this.sasl = null;
    this.mode = Mode.Command;
    if (line === '*') {
      this.reply(this.host.cfg.replies.authCancelled);
      return;
    }
    if (sasl.step.kind !== 'challenge') return;
    this.saslStep(sasl.mechanism, sasl.step.next(line));
  }

  private saslStep(mechanism: AuthMechanism, step: SaslStep): void {
    const r = this.host.cfg.replies;
    if (step.kind === 'challenge') {
      this.sasl = { mechanism, step };
      this.mode = Mode.Sasl;
      this.reply(`334 ${step.challenge}\r\n`);
      return;
    }
    if (step.kind === 'malformed') {
      this.reply(r.authDecode);
      return;
    }
    const finish = (custom?: ParsedReply) => {
      if (step.user === null) {
        if (this.host.cfg.echoCredentialsOnFailure) this.reply(echoedFailure(step.claimed, step.secret, this.host.cfg.ext.enhancedStatusCodes));
        else this.reply(mechanism === 'XOAUTH2' ? r.xoauth2Failed : r.authFailed);
        return;
      }
      this.user = step.user;
      this.reply(custom?.line ?? r.authOk);
    };
    const rule = this.match('AUTH');
    if (rule) this.applyFault(rule, finish);
    else finish();
  }
}

/**
 * `FROM:<path> params` / `TO:<path> params` (RFC 5321 §4.1.2). A space after the colon is tolerated
 * as by most servers; a quoted local part may contain spaces and ">"; a source route is accepted and
 * ignored (RFC 5321 §4.1.1.3, appendix C).
 */
export function parsePath(arg: string, keyword: 'FROM' | 'TO'): { address: string; params: string } | null {
  const k = keyword.length;
  if (arg.length <= k || arg.slice(0, k + 1).toUpperCase() !== `${keyword}:`) return null;
  let i = k + 1;
  while (arg.charCodeAt(i) === 32) i++;
  if (arg[i] !== '<') return null;
  let j = i + 1;
  let quoted = false;
  for (; j < arg.length; j++) {
    const c = arg[j];
    if (quoted) {
      if (c === '\\') j++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '>') break;
  }
  if (j >= arg.length) return null;
  let address = arg.slice(i + 1, j);
  if (address.startsWith('@')) {
    const colon = address.indexOf(':');
    if (colon === -1) return null;
    address = address.slice(colon + 1);
  }
  const rest = arg.slice(j + 1);
  if (rest && rest[0] !== ' ') return null;
  return { address, params: rest.trim() };
}

/** local-part "@" domain, loosely (RFC 5321 §4.1.2): no controls or spaces outside quotes. */
export function validAddress(address: string): boolean {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return false;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.startsWith('"')) {
    if (local.length < 2 || !local.endsWith('"')) return false;
  } else if (/[\s<>()[\]\\,;:"@\x00-\x1f\x7f]/.test(local)) return false;
  if (domain.startsWith('[')) return /^\[[^\s\]]+\]$/.test(domain);
  return !/[\s<>()[\]\\,;:"@\x00-\x1f\x7f]/.test(domain);
}

/** echoCredentialsOnFailure: a broken server's 535 that quotes what it was given (controls removed,
 * so the reply stays one line). */
function echoedFailure(user: string | null, secret: string | null, enhanced: boolean): string {
  const clean = (text: string | null) => (text ?? '').replace(/[\x00-\x1f\x7f]/g, '?');
  return formatReply(535, '5.7.8', `Authentication failed for ${clean(user)} with password ${clean(secret)}`, enhanced);
}
