/**
 * The held state: a job whose outcome is unknown (the connection broke after the content was
 * committed, or a re-run found an in-flight marker and no sent marker). It is failed in BullMQ with
 * an UnrecoverableError (never retried) and listed in a hash, with the marker that must be cleared to
 * send it again. MailQueue.held() lists it; MailQueue.release() re-enqueues it (a possible duplicate,
 * chosen by the user).
 */
import type { Redis } from 'ioredis';

export interface HeldEntry {
  jobId: string;
  account: string;
  /** The message's idempotency key (its Message-ID, or job:<id>). */
  key: string;
  /** The in-flight marker to delete on release. */
  marker: string;
  reason: string;
  /** When it was held (ms since epoch, the worker's clock: informational only). */
  heldAt: number;
}

export async function recordHeld(redis: Redis, hashKey: string, entry: HeldEntry): Promise<void> {
  await redis.hset(hashKey, entry.jobId, JSON.stringify(entry));
}

export async function listHeld(redis: Redis, hashKey: string): Promise<HeldEntry[]> {
  const all = await redis.hgetall(hashKey);
  return Object.values(all)
    .map((v) => JSON.parse(v) as HeldEntry)
    .sort((a, b) => a.heldAt - b.heldAt);
}

export async function takeHeld(redis: Redis, hashKey: string, jobId: string): Promise<HeldEntry | null> {
  const raw = await redis.hget(hashKey, jobId);
  if (!raw) return null;
  return JSON.parse(raw) as HeldEntry;
}
