import type { ProtocolViolation, TransactionRecord } from './types.js';

/**
 * What the strict BDAT mode records: every transaction from MAIL to its end, and the violations a
 * strict server holds against its clients. Kept apart from the inbox, which only holds accepted
 * messages: a test of pipelined BDAT windows (several transactions in flight) needs to see how each
 * one ended, refused ones included, and that nothing was sent again after its LAST chunk.
 */
export class TransactionJournal {
  transactions: TransactionRecord[] = [];
  violations: ProtocolViolation[] = [];

  begin(sequence: number, connection: number, transaction: number): TransactionRecord {
    const record: TransactionRecord = { sequence, connection, transaction, via: null, chunks: [], last: false, outcome: 'open', reply: null };
    this.transactions.push(record);
    return record;
  }

  violation(connection: number, kind: ProtocolViolation['kind'], line: string): void {
    this.violations.push({ connection, kind, line: line.slice(0, 80) });
  }

  /** New arrays, so a snapshot taken before stays as it was. */
  clear(): void {
    this.transactions = [];
    this.violations = [];
  }
}

/** End an open transaction record (a no-op for none, or one already ended). `line` is a reply as
 * written (CRLF-terminated) or null. */
export function settle(record: TransactionRecord | null | undefined, outcome: Exclude<TransactionRecord['outcome'], 'open'>, line: string | null): void {
  if (record?.outcome !== 'open') return;
  record.outcome = outcome;
  record.reply = line === null ? null : line.replace(/\r\n$/, '');
}
