/** Job counts by state, for MailQueue.counts() and MailWorker.counts() (and the Prometheus gauges read from them). */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  completed: number;
  failed: number;
  /** Failed because their outcome is unknown: listed by held(). */
  held: number;
}

export async function jobCounts(queue: Queue, redis: Redis, heldKey: string): Promise<QueueCounts> {
  const [c, held] = await Promise.all([queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'), redis.hlen(heldKey)]);
  return {
    waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
    active: c.active ?? 0,
    delayed: c.delayed ?? 0,
    completed: c.completed ?? 0,
    failed: c.failed ?? 0,
    held,
  };
}
