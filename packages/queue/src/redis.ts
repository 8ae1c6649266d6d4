/**
 * Redis connections. BullMQ and the budget each get their own clients; every client waits through an
 * outage (`maxRetriesPerRequest: null`: commands queue until ioredis reconnects) instead of failing.
 */
import { Redis, type RedisOptions } from 'ioredis';

/** ioredis options, a `redis://` URL, or an ioredis instance (duplicated, never used directly). */
export type RedisConnection = RedisOptions | string | Redis;

export function createClient(connection: RedisConnection, name: string): Redis {
  const base = { maxRetriesPerRequest: null, connectionName: name } as const;
  if (connection instanceof Redis) return connection.duplicate(base);
  if (typeof connection === 'string') return new Redis(connection, base);
  return new Redis({ ...connection, ...base });
}
