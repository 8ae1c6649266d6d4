/**
 * `sluice-relay queue`: a mailq-like listing of the spool (queued, deferred with the next attempt
 * and the last error, in flight, held). It reads the spool through its public methods; a running
 * relay adds what only it knows (in flight, the current next attempt) from its queue entries.
 */
import type { Entry, QueueState } from './queue.js';
import type { HeldInfo, Spool, SpoolArea } from './spool.js';
import { formatAge } from './status.js';

export interface QueueItem {
  id: string;
  ageSeconds: number;
  /** Bytes of the spool file (the message and its envelope line). */
  size: number;
  from: string;
  /** Recipients still to do. */
  to: string[];
  state: 'active' | 'queued' | 'deferred' | 'held';
  attempts: number;
  /** ISO time of the next attempt (deferred). */
  nextAttemptAt?: string;
  /** The last error (deferred), or why it is held. */
  lastError?: string;
}

/** At most `limit` items per area, oldest first. */
export async function listQueue(spool: Spool, live?: Map<string, Entry>, limit = 1000): Promise<QueueItem[]> {
  const now = Date.now();
  const items: QueueItem[] = [];
  const read = async (area: SpoolArea, id: string): Promise<void> => {
    try {
      const [header, stats] = await Promise.all([spool.readHeader(area, id), spool.exists(area, id)]);
      const base = { id, ageSeconds: Math.max(0, Math.round((now - header.receivedAt) / 1000)), size: stats?.size ?? 0, from: header.from };
      if (area === 'held') {
        const info = await spool.readMeta<HeldInfo>('held', id);
        items.push({ ...base, to: info?.remaining ?? header.to, state: 'held', attempts: info?.attempts ?? 0, lastError: info?.error ?? info?.reason });
        return;
      }
      const entry = live?.get(id);
      const state = entry?.state ?? (await spool.readMeta<QueueState>('queue', id)) ?? { attempts: 0, nextAttemptAt: 0 };
      const deferred = state.attempts > 0 && state.nextAttemptAt > now;
      items.push({
        ...base,
        to: state.remaining ?? header.to,
        state: entry?.busy ? 'active' : deferred ? 'deferred' : 'queued',
        attempts: state.attempts,
        ...(deferred ? { nextAttemptAt: new Date(state.nextAttemptAt).toISOString() } : {}),
        ...(state.lastError ? { lastError: state.lastError } : {}),
      });
    } catch {
      // delivered or moved meanwhile
    }
  };
  for (const area of ['queue', 'held'] as const) {
    const ids = (await spool.list(area)).sort().slice(0, limit); // ids start with the arrival time
    for (const id of ids) await read(area, id);
  }
  return items;
}

/** The listing as text, like mailq: one block per message. */
export function formatQueue(items: QueueItem[]): string {
  if (items.length === 0) return 'Mail queue is empty\n';
  const lines: string[] = [`${'ID'.padEnd(24)} ${'AGE'.padStart(8)} ${'SIZE'.padStart(9)}  STATE     SENDER / RECIPIENTS`];
  for (const m of items) {
    const state = m.state === 'deferred' ? `deferred (attempt ${m.attempts}, next ${m.nextAttemptAt})` : m.state;
    lines.push(`${m.id.padEnd(24)} ${formatAge(m.ageSeconds).padStart(8)} ${String(m.size).padStart(9)}  ${state}  <${m.from}>`);
    if (m.lastError) lines.push(`${' '.repeat(45)}(${m.lastError.slice(0, 200)})`);
    for (const r of m.to) lines.push(`${' '.repeat(45)}<${r}>`);
  }
  const held = items.filter((m) => m.state === 'held').length;
  lines.push(`-- ${items.length} message(s), ${items.filter((m) => m.state === 'deferred').length} deferred, ${held} held`);
  return `${lines.join('\n')}\n`;
}
