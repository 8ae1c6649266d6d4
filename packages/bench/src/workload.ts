/** The workload every sender gets: the same messages, built lazily so that 100,000 of them cost no memory. */
export interface Workload {
  messages: number;
  /** Body size in bytes (approximate, headers included). */
  size: number;
  recipients: number;
}

const FILLER = 'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.\r\n';

export function envelope(i: number, w: Workload): { from: string; to: string[] } {
  return { from: 'bench@example.com', to: Array.from({ length: w.recipients }, (_, r) => `user${i}.${r}@example.com`) };
}

/**
 * The text after the headers, `length` characters: one string per length, made once. Built per message,
 * it cost every sender a repeat() and a slice() of 2 KiB (charged to the sender's CPU, which smtp-source
 * does not pay for its own messages); the bytes sent are the same.
 */
const fillers = new Map<number, string>();
function filler(length: number): string {
  let text = fillers.get(length);
  if (text === undefined) {
    text = FILLER.repeat(Math.ceil(length / FILLER.length)).slice(0, length);
    fillers.set(length, text);
  }
  return text;
}

export function body(i: number, w: Workload): string {
  const head = `From: bench@example.com\r\nTo: user${i}.0@example.com\r\nSubject: Bench message ${i}\r\nMessage-ID: <bench-${i}@sluice.test>\r\nDate: Sun, 29 Nov 2026 12:00:00 +0000\r\n\r\n`;
  return head + filler(Math.max(0, w.size - head.length));
}
