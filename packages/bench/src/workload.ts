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

export function body(i: number, w: Workload): string {
  const head = `From: bench@example.com\r\nTo: user${i}.0@example.com\r\nSubject: Bench message ${i}\r\nMessage-ID: <bench-${i}@sluice.test>\r\nDate: Sun, 29 Nov 2026 12:00:00 +0000\r\n\r\n`;
  const need = Math.max(0, w.size - head.length);
  return head + FILLER.repeat(Math.ceil(need / FILLER.length)).slice(0, need);
}
