import { expect } from 'vitest';
import type { TransactionReplies } from '../../src/connection/classify.js';
import { type Reply, ReplyParser } from '../../src/protocol/reply.js';

/** Reply fixtures, parsed by the real reply parser from the bytes a server sends. */
export function reply(wire: string): Reply {
  const replies: Reply[] = [];
  new ReplyParser().feed(Buffer.from(`${wire.replace(/\n/g, '\r\n')}\r\n`), (r) => replies.push(r));
  expect(replies).toHaveLength(1);
  return replies[0]!;
}

export const A = 'a@example.com';
export const B = 'b@example.com';

/** A transaction to A and B that got no reply yet, with `overrides`. */
export function txn(overrides: Partial<TransactionReplies>): TransactionReplies {
  return {
    to: [A, B],
    mail: null,
    rcpt: [null, null],
    data: null,
    final: null,
    bdatError: null,
    committed: false,
    loneDot: false,
    chunking: false,
    windowed: false,
    ...overrides,
  };
}
