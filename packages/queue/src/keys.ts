/**
 * Redis key names. Every key of one account shares the hash tag `{account}` (Redis Cluster puts
 * them in one slot, so one Lua script can touch them all); the held list of a queue carries the
 * queue's name as its tag.
 */
export interface AccountKeys {
  /** ZSET leaseId → expiresAt (ms, Redis clock). */
  conns: string;
  /** HASH current, probeAt, quietUntil: the limit K in force. */
  limit: string;
  /** LIST of "a slot was freed" tokens that waiters BLPOP. */
  freed: string;
  /** The GCRA theoretical arrival time of the account's message rate. */
  rate: string;
  sent(key: string): string;
  inflight(key: string): string;
}

export function accountKeys(prefix: string, account: string): AccountKeys {
  const base = `${prefix}:{${account}}`;
  return {
    conns: `${base}:conns`,
    limit: `${base}:limit`,
    freed: `${base}:freed`,
    rate: `${base}:rate`,
    sent: (key) => `${base}:sent:${key}`,
    inflight: (key) => `${base}:inflight:${key}`,
  };
}

/** HASH jobId → JSON of the held entry (see held.ts). */
export function heldKey(prefix: string, queue: string): string {
  return `${prefix}:{${queue}}:held`;
}

export const DEFAULT_PREFIX = 'sluice';
