/**
 * The connection's debug trace: every command and every reply, one line each, with the connection id
 * as a field. Commands are logged as their reply is queued in the FIFO (the order they take on the wire,
 * RFC 2920 §3.1): the transaction's commands by verb and address (`MAIL FROM:<a@example.com>`,
 * `RCPT TO:<b@example.com>`; their ESMTP parameters are not repeated), content never (`.` stands for
 * it). Setup lines are logged by the connection's request() as written, AUTH as `AUTH <mechanism> ***`.
 * Replies are logged by their first line; the replies to AUTH by their code only (some servers echo
 * the credentials they got). Nothing is built when the logger has no `debug`.
 */
import { type LogLevel, log, logs } from '../log.js';
import type { Logger } from '../options.js';
import type { Reply } from '../protocol/reply.js';
import type { ExpectKind, Transaction } from './transaction.js';

/** A secret AUTH line as it may be logged and named: `AUTH PLAIN ***` (the mechanism kept), `AUTH ***` for a continuation. */
export function redactAuth(line: string): string {
  const mechanism = /^AUTH ([A-Za-z0-9-]+)/i.exec(line)?.[1];
  return mechanism ? `AUTH ${mechanism.toUpperCase()} ***` : 'AUTH ***';
}

export class WireTrace {
  private readonly fields: { connection: number };

  constructor(
    private readonly logger: Logger | undefined,
    id: number,
  ) {
    this.fields = { connection: id };
  }

  get on(): boolean {
    return logs(this.logger, 'debug');
  }

  line(level: LogLevel, message: string): void {
    log(this.logger, level, this.fields, message);
  }

  /** A command whose reply was just queued (setup commands are logged by request()). */
  command(kind: ExpectKind, txn: Transaction | null, index: number): void {
    if (kind === 'SETUP' || !this.on) return;
    this.line('debug', `C: ${render(kind, txn, index)}`);
  }

  /** A reply, by its first line; `what` is the command it answers (AUTH replies by code only). */
  reply(what: string, reply: Reply): void {
    if (!this.on) return;
    if (what.startsWith('AUTH')) return this.line('debug', `S: ${reply.code} (AUTH reply text not logged)`);
    this.line('debug', `S: ${reply.lines[0] ?? reply.code}`);
  }
}

function render(kind: ExpectKind, txn: Transaction | null, index: number): string {
  switch (kind) {
    case 'MAIL':
      return `MAIL FROM:<${txn?.job.from ?? ''}>`;
    case 'RCPT':
      return `RCPT TO:<${txn?.to[index] ?? ''}>`;
    case 'DOT':
      return txn?.loneDot ? '. (no content: every RCPT was refused)' : '<content> .';
    case 'BDAT':
      return 'BDAT <chunk>';
    case 'BDAT_LAST':
      return 'BDAT <content> LAST';
    default:
      return kind;
  }
}
